"""Is bench_scaling.py's growth of cost per word the hardware or this project's code? Two checks.

    python scripts/bench_scaling_checks.py                         # gensim at 1x 10x, the 1x corpus x1 x10 x50
    python scripts/bench_scaling_checks.py --gensim-scales 1 10 50 --repeats 1 10
    python scripts/bench_scaling_checks.py --gensim-scales --with-rows outputs/bench_scaling/bench_scaling_checks.csv
                                                           # the repeats again, gensim's rows kept
    python scripts/bench_scaling_checks.py --base-words 200000 --gensim-scales 1 2 --repeats 1 2   # smoke test

1. gensim on the same Zipf files as bench_scaling.py (made by it; --data): skip-gram, dim 100, window 5,
   negative 5, sample 1e-3, min_count 5, 2 workers, 1 epoch, over gensim's LineSentence, each scale in a
   fresh process. Its phases, timed one by one: "text pass" = scan_vocab (reading, splitting and counting
   every word into a dict), "vocabulary" = prepare_vocab (min_count, subsampling, the noise table),
   "tables" = prepare_weights (allocating and initialising the two tables), "training" = one epoch of
   train(). If gensim's cost per word grows with the corpus as this project's does, the growth comes with
   the tables' size (caches, DRAM), not with either implementation.
2. Fixed distinct words: the 1x corpus read k times over as one corpus (its path given k times, streamed:
   no k-times file is written) through this project's text pass and vocabulary phase, with min_count
   5k, so the distinct words (1.7M) and the vocabulary (77k) stay those of 1x while the tokens grow k
   times. If the cost per word stays flat, both phases are O(tokens) for tables of a fixed size.

Time: CPU seconds (process_time: every thread of the process, gensim's workers included) and wall seconds,
per million corpus words (text pass, vocabulary, tables) or in-vocabulary tokens (training, as in
bench_scaling.py). Memory: peak anonymous memory (RssAnon, sampled every 0.1 s) of each phase; for gensim's
training, also that peak less its two tables (2 x vocab x dim x 4 bytes). The load average before and
after each process is recorded. Writes bench_scaling_checks.csv and .md to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scaling import DIM, MIB, REPO, PeakSampler, cpu_seconds, read_rows, zipf_corpus  # noqa: E402

GENSIM_PHASES = [("text", "text pass (scan_vocab)"), ("vocab", "vocabulary (prepare_vocab)"),
                 ("tables", "tables (prepare_weights)"), ("train", "training, 1 epoch")]
REPEAT_PHASES = [("text", "text pass (vocabulary counts + ids)"), ("final", "vocabulary + final ids")]


def child_gensim(path: str, workers: int) -> dict:
    """Each phase of gensim's build_vocab and one epoch of train, timed and sampled one at a time."""
    import logging

    import numpy as np
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    logging.disable(logging.CRITICAL)
    sampler, row = PeakSampler(), {}
    model = Word2Vec(vector_size=DIM, window=5, negative=5, hs=0, sample=1e-3, min_count=5, sg=1, workers=workers,
                     seed=1)
    row["setup_anon"] = sampler.take()

    def phase(name: str, work):
        wall, cpu = time.perf_counter(), cpu_seconds()
        result = work()
        row.update({name + "_s": time.perf_counter() - wall, name + "_cpu": cpu_seconds() - cpu,
                    name + "_anon": sampler.take()})
        return result

    total_words, corpus_count = phase("text", lambda: model.scan_vocab(corpus_iterable=LineSentence(path)))
    model.corpus_count, model.corpus_total_words = corpus_count, total_words
    row.update(words=total_words, lines=corpus_count, distinct=len(model.raw_vocab))
    phase("vocab", lambda: model.prepare_vocab())
    phase("tables", lambda: model.prepare_weights())
    counts = np.asarray(model.wv.expandos["count"])
    row.update(vocab=len(model.wv), train_tokens=int(counts.sum()))
    phase("train", lambda: model.train(LineSentence(path), total_examples=corpus_count, epochs=1))
    row["tables_mib"] = 2 * len(model.wv) * DIM * 4 / MIB
    return row


def in_child(command: list[str]) -> dict:
    result = subprocess.run([sys.executable, __file__, *command], check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def per_million(row: dict, phases: list[tuple[str, str]]) -> None:
    for p, _ in phases:
        per = (row["train_tokens"] if p == "train" else row["words"]) / 1e6
        row[p + "_s_per_m"], row[p + "_cpu_per_m"] = row[p + "_s"] / per, row[p + "_cpu"] / per


def table(rows: list[dict], phases: list[tuple[str, str]], label: str, extra: dict | None = None) -> list[str]:
    """Rows by phase, then size: per-word cost against the first row's, and the verdict per phase."""
    lines = [f"| {label} | load | words | vocabulary | distinct words | phase | wall s | CPU s | CPU s / M | vs first "
             f"| peak anon MiB |" + "".join(f" {name} |" for name in (extra or {})),
             "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|" + "---:|" * len(extra or {})]
    verdicts = []
    for p, name in phases:
        base = rows[0][p + "_cpu_per_m"]
        for r in rows:
            cells = "".join(f" {f(r, p)} |" for f in (extra or {}).values())
            lines.append(f"| {r['size']} | {r['load_before']:.1f}-{r['load_after']:.1f} | {r['words']:,} | "
                         f"{r['vocab']:,} | {r['distinct']:,} | {name} | {r[p + '_s']:.1f} | {r[p + '_cpu']:.1f} | "
                         f"{r[p + '_cpu_per_m']:.3f} | {r[p + '_cpu_per_m'] / base:.2f}x | {r[p + '_anon']:,.0f} |"
                         + cells)
        spread = max(r[p + "_cpu_per_m"] for r in rows) / min(r[p + "_cpu_per_m"] for r in rows)
        growth = max(r[p + "_cpu_per_m"] for r in rows) / base  # a cost per word that falls is still O(words)
        verdicts.append(f"- {name}: CPU s / M max/min {spread:.2f} (linear within 15%: "
                        f"{'yes' if spread <= 1.15 else 'NO'}); largest against the first {growth:.2f} "
                        f"(grows by at most 15%: {'yes' if growth <= 1.15 else 'NO'})")
    return lines + [""] + verdicts


def print_row(label: str, row: dict, phases) -> None:
    print(f"  {label}: " + ", ".join(f"{p} {row[p + '_cpu']:.1f} CPU s {row[p + '_anon']:,.0f} MiB" for p, _ in phases),
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gensim-scales", type=int, nargs="*", default=[1, 10])
    parser.add_argument("--repeats", type=int, nargs="*", default=[1, 10, 50])
    parser.add_argument("--base-words", type=int, default=5_500_000)
    parser.add_argument("--ranks", type=int, default=50_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="gensim's worker threads")
    parser.add_argument("--data", default=str(REPO / "data" / "big" / "zipf"))
    parser.add_argument("--out", default=str(REPO / "outputs" / "bench_scaling"))
    parser.add_argument("--with-rows", help="bench_scaling_checks.csv of an earlier run: its rows that this run does "
                                            "not measure again join the report")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_gensim(args.child, args.workers)))
        return 0

    data, out = Path(args.data), Path(args.out)
    data.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    report = []
    earlier = read_rows(Path(args.with_rows)) if args.with_rows else []
    measured = {("gensim", f"{scale}x") for scale in args.gensim_scales} | {("repeat", f"1x read {k} times")
                                                                              for k in args.repeats}
    kept = [row for row in earlier if (row["check"], row["size"]) not in measured]
    gensim_rows, repeat_rows = [r for r in kept if r["check"] == "gensim"], [r for r in kept if r["check"] == "repeat"]
    for scale in args.gensim_scales:
        corpus = zipf_corpus(data, args.base_words * scale, args.ranks, args.seed)
        row = {"check": "gensim", "size": f"{scale}x", "load_before": os.getloadavg()[0]}
        row.update(in_child(["--child", str(corpus), "--workers", str(args.workers)]))
        row["load_after"] = os.getloadavg()[0]
        per_million(row, GENSIM_PHASES)
        gensim_rows.append(row)
        print_row(f"gensim {scale}x", row, GENSIM_PHASES)
    if args.repeats:
        corpus = zipf_corpus(data, args.base_words, args.ranks, args.seed)
    for k in args.repeats:
        cache = out / f"cache-repeat{k}"
        shutil.rmtree(cache, ignore_errors=True)
        row = {"check": "repeat", "size": f"1x read {k} times", "load_before": os.getloadavg()[0]}
        try:
            row.update(json.loads(subprocess.run(
                [sys.executable, str(Path(__file__).with_name("bench_scaling.py")), "--child", str(corpus), "--mode",
                 "prepare", "--cache", str(cache), "--repeat", str(k)],
                check=True, stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        row.update(load_after=os.getloadavg()[0], words=args.base_words * k)
        per_million(row, REPEAT_PHASES)
        repeat_rows.append(row)
        print_row(f"1x read {k} times", row, REPEAT_PHASES)
    gensim_rows.sort(key=lambda r: r["words"])
    repeat_rows.sort(key=lambda r: r["words"])
    if gensim_rows:
        report += [f"gensim {__import__('gensim').__version__}, skip-gram, dim {DIM}, window 5, negative 5, sample "
                   f"1e-3, min_count 5, {args.workers} workers, 1 epoch, LineSentence; {os.cpu_count()} cores. CPU s / M:"
                   " per million corpus words, or in-vocabulary tokens for training.", ""]
        report += table(gensim_rows, GENSIM_PHASES, "gensim scale", {
            "tables MiB": lambda r, p: f"{r['tables_mib']:,.0f}",
            "peak less tables MiB": lambda r, p: f"{r[p + '_anon'] - r['tables_mib']:,.0f}" if p == "train" else ""})
        report.append("")
    if repeat_rows:
        report += ["Fixed distinct words: the 1x corpus read k times as one corpus, min_count 5k (w2v, cold cache).",
                   ""]
        report += table(repeat_rows, REPEAT_PHASES, "corpus")
    rows = gensim_rows + repeat_rows
    print("\n" + "\n".join(report))
    from w2v.atomic import write_report
    write_report(out, "bench_scaling_checks", "\n".join(report), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
