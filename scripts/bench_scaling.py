"""Time and memory against corpus length: train on 1x, 4x and 16x copies of a corpus.

    python scripts/bench_scaling.py                      # the bundled sample, backend=fused, skip-gram
    python scripts/bench_scaling.py --corpus data/big/gcide.txt --copies 1 4 16 --model cbow

Each size is trained in its own fresh process (same settings, 1 epoch by default), after
its token-id cache has been built in another process, so the figures cover training only.
Printed per size: training seconds, seconds per million words, wall seconds of the child,
peak RSS (VmHWM) and peak anonymous RSS (RssAnon, sampled every 20 ms). The token ids are
a memory-mapped file: the pages of it that training has read are page cache, counted in
RSS but reclaimable and shared, so "memory stays flat" is judged on anonymous memory
(tables, batches, Python objects). Targets (issue 4): seconds per word constant (time
linear) and peak anonymous RSS within 10% of the 1x run. Writes CSV + markdown to --out.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class PeakSampler(threading.Thread):
    """Samples RssAnon until stopped; `peak_kib` is the highest value seen."""

    def __init__(self, every_s: float = 0.02):
        super().__init__(daemon=True)
        self.every_s, self.peak_kib, self.done = every_s, 0, threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak_kib = max(self.peak_kib, status_kib("RssAnon"))
            self.done.wait(self.every_s)


def child_config(args, corpus: Path, evaluate: bool = False) -> dict:
    return {
        "model": {"name": args.model, "dim": 100, "window": 5, "negative": 5},
        "backend": {"name": args.backend}, "data": {"kind": "files", "paths": [str(corpus)], "max_lines": None},
        # k copies multiply every count by k: min_count 5k keeps exactly the 1x vocabulary, so every
        # size trains the same tables and only the corpus length changes.
        "vocab": {"min_count": 5 * args.copies_now, "max_size": None, "sample": 1e-3},
        "train": {"epochs": args.epochs, "lr": 0.025, "min_lr": 0.0001, "batch_size": 1024, "device": "cpu",
                  "threads": None, "seed": 1, "log_every": 200},
        "export": {"text": False, "projector_words": 0}, "evaluate": evaluate, "cache_dir": args.cache_dir,
    }


def child(args) -> int:
    """In a fresh process: build the id cache (--prepare) or train once and print the figures as JSON."""
    from w2v.config import parse_config
    from w2v.corpus import open_corpus
    from w2v.token_ids import load_or_build
    from w2v.train import run

    cfg = parse_config(child_config(args, Path(args.child)))
    if args.prepare:
        load_or_build(open_corpus(cfg.data, Path(args.cache_dir)), cfg.vocab, Path(args.cache_dir),
                      show_progress=False, log=lambda msg: None)
        return 0
    sampler = PeakSampler()
    sampler.start()
    started = time.perf_counter()
    run_dir = Path(args.out) / f"run-{Path(args.child).stem}"
    shutil.rmtree(run_dir, ignore_errors=True)  # this script's own previous output: a run dir must be new
    metrics = run(cfg, run_dir, show_progress=False)
    sampler.done.set()
    sampler.join()
    print(json.dumps({"words": metrics["corpus_words"], "vocab": metrics["vocab_size"], "train_s": metrics["train_s"],
                      "run_s": time.perf_counter() - started, "peak_rss_mib": status_kib("VmHWM") / 1024,
                      "peak_anon_mib": max(sampler.peak_kib, status_kib("RssAnon")) / 1024}))
    return 0


def corpus_sources(args) -> list[Path]:
    if args.corpus:
        return [Path(p) for p in args.corpus]
    from w2v.corpus import sample_paths
    return sample_paths(Path(args.cache_dir))


def write_copies(sources: list[Path], copies: int, target: Path) -> Path:
    """One text file holding `copies` copies of the sources, one after another."""
    import bz2
    import gzip

    from w2v.atomic import atomic_path

    if target.exists():
        return target
    opener = {".gz": gzip.open, ".bz2": bz2.open}
    with atomic_path(target) as tmp, open(tmp, "wb") as out:
        for _ in range(copies):
            for src in sources:
                with opener.get(src.suffix, open)(src, "rb") as f:
                    data = f.read()
                out.write(data if data.endswith(b"\n") else data + b"\n")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", default=[], help="text file(s); default: the bundled sample")
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--model", default="skipgram", choices=["skipgram", "cbow"])
    parser.add_argument("--backend", default="fused")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--cache-dir", default=str(REPO / "data" / "cache"))
    parser.add_argument("--out", default=str(REPO / "outputs" / "bench_scaling"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--copies-now", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sources = corpus_sources(args)
    name = "-".join(p.stem for p in sources)[:60]
    common = [sys.executable, __file__, "--model", args.model, "--backend", args.backend, "--epochs",
              str(args.epochs), "--cache-dir", args.cache_dir, "--out", str(out)]
    rows = []
    for copies in args.copies:
        corpus = write_copies(sources, copies, out / f"{name}-x{copies}.txt")
        child_args = [*common, "--child", str(corpus), "--copies-now", str(copies)]
        subprocess.run([*child_args, "--prepare"], check=True)
        result = subprocess.run(child_args, check=True, capture_output=True, text=True)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        rows.append({"copies": copies, **figures, "s_per_mword": figures["train_s"] / figures["words"] * 1e6})
        print(f"  x{copies}: {figures['words']:,} words, vocabulary {figures['vocab']:,}, train {figures['train_s']:.1f}s, "
              f"peak anon {figures['peak_anon_mib']:.0f} MiB", flush=True)

    base = rows[0]
    lines = [f"backend={args.backend} model={args.model} epochs={args.epochs}, copies of {name}", "",
             "| copies | words | train s | s / M words | vs 1x | child wall s | peak RSS MiB | peak anon MiB | vs 1x |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['copies']} | {r['words']:,} | {r['train_s']:.1f} | {r['s_per_mword']:.2f} | "
                     f"{r['s_per_mword'] / base['s_per_mword']:.2f}x | {r['run_s']:.1f} | {r['peak_rss_mib']:.0f} | "
                     f"{r['peak_anon_mib']:.0f} | {r['peak_anon_mib'] / base['peak_anon_mib'] - 1:+.1%} |")
    print("\n" + "\n".join(lines))
    (out / "bench_scaling.md").write_text("\n".join(lines) + "\n")
    with open(out / "bench_scaling.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
