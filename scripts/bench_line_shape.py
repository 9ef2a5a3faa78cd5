"""The same text as lines and as one long line (text8's shape): quality, time and peak memory.

    python scripts/bench_line_shape.py --lines data/big/tech-clean.txt --seeds 3
    python scripts/bench_line_shape.py --lines data/big/tech-clean.txt --seeds 0 --big-copies 9   # 50M words, one line

For each seed and model, `python -m w2v.train` runs with the project's defaults (3 epochs here)
on the corpus as given (one sentence per line) and on the same words joined into one line
(made here, next to --out). Quality (analogy, WS-353, SimLex) comes from each run's
metrics.json; peak RSS is the largest of the run's processes (encoder workers included).
On one line, windows also span what were line ends, so a few more pairs are trained: the
figures should agree within seed noise, not exactly.
--big-copies K also trains one epoch (evaluate=false) on K copies of the text as ONE line, cold,
to show memory stays bounded whatever the line length (issue 10: 50M words within 2 GB).
Writes bench_line_shape.csv and .md to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from w2v.atomic import atomic_path, write_report  # noqa: E402

# Runs a command and prints the peak RSS (KiB) of its process tree, then its exit status.
PEAK_RSS = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.PIPE, text=True); sys.stderr.write(r.stderr[-2000:] if r.returncode else ''); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
METRICS = ("analogy_acc", "ws353_spearman", "simlex_spearman")


def one_line_copy(source: Path, target: Path, copies: int = 1) -> Path:
    """The words of `source`, `copies` times, as a single line (no line end at all)."""
    if target.exists():
        return target
    with atomic_path(target) as tmp, open(tmp, "wb") as out:
        for copy in range(copies):
            with open(source, "rb") as f:
                first = True
                while block := f.read(1 << 24):
                    if copy and first:
                        out.write(b" ")
                    first = False
                    out.write(block.replace(b"\n", b" "))
    return target


def train(corpus: Path, model: str, seed: int, work: Path, *extra: str) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    command = [sys.executable, "-m", "w2v.train", "data=files", f"data.paths=[{corpus}]", f"model={model}",
               "train.epochs=3", f"train.seed={seed}", f"cache_dir={work / 'cache'}", f"hydra.run.dir={run_dir}",
               "export.projector_words=0", *extra]
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, *command], capture_output=True, text=True,
                         env=dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1"))
    peak_kib, status = map(int, out.stdout.split())
    if status != 0:
        raise SystemExit(f"w2v.train failed on {corpus}: {out.stderr.strip().splitlines()[-1:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {**{k: metrics.get(k) for k in (*METRICS, "train_s", "wall_s", "tokenize_s", "corpus_words", "examples")},
            "peak_rss_mib": peak_kib / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", required=True, help="a corpus with one sentence per line")
    parser.add_argument("--models", nargs="+", default=["skipgram", "cbow"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--big-copies", type=int, default=0)
    parser.add_argument("--out", default="outputs/bench_line_shape")
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = Path(args.lines)
    shapes = {"lines": lines, "one line": one_line_copy(lines, out_dir / f"{lines.stem}-oneline.txt")}
    rows = []
    with tempfile.TemporaryDirectory(prefix="w2v-shape-") as tmp:
        for model in args.models:
            for seed in range(1, args.seeds + 1):
                for shape, corpus in shapes.items():
                    rows.append({"model": model, "shape": shape, "seed": seed,
                                 **train(corpus, model, seed, Path(tmp))})
                    print(f"  {model} {shape} seed {seed}: " + ", ".join(f"{k} {rows[-1][k]:.4f}" for k in METRICS),
                          flush=True)
        if args.big_copies:
            big = one_line_copy(lines, out_dir / f"{lines.stem}-x{args.big_copies}-oneline.txt", args.big_copies)
            row = train(big, "skipgram", 1, Path(tmp), "train.epochs=1", "evaluate=false")
            rows.append({"model": "skipgram", "shape": f"one line, {args.big_copies} copies, 1 epoch", "seed": 1, **row})
            print(f"  {rows[-1]['shape']}: {row['corpus_words']:,} words, peak RSS {row['peak_rss_mib']:.0f} MiB")
    lines_out = ["| model | shape | runs | analogy | WS-353 | SimLex | tokenize s | train s | peak RSS MiB |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key in dict.fromkeys((r["model"], r["shape"]) for r in rows):
        group = [r for r in rows if (r["model"], r["shape"]) == key]

        def stat(k):
            values = [r[k] for r in group if r[k] is not None]
            if not values:
                return "-"
            sd = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
            return f"{statistics.mean(values):.4f}{sd}"
        lines_out.append(f"| {key[0]} | {key[1]} | {len(group)} | {stat(METRICS[0])} | {stat(METRICS[1])} | "
                         f"{stat(METRICS[2])} | {statistics.median(r['tokenize_s'] for r in group):.1f} | "
                         f"{statistics.median(r['train_s'] for r in group):.1f} | "
                         f"{max(r['peak_rss_mib'] for r in group):.0f} |")
    text = f"corpus: {lines} ({rows[0]['corpus_words']:,} words), project defaults, 3 epochs, mean ± sd over seeds; " \
           f"load average at the end {os.getloadavg()[0]:.1f}\n\n" + "\n".join(lines_out)
    print("\n" + text)
    write_report(out_dir, "bench_line_shape", text, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
