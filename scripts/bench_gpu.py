"""GPU throughput of backend=fused on a generated Zipf corpus, and quality on real text, per model and path.

    python scripts/bench_gpu.py --num-warps 1 2 4               # speed: 50M Zipf tokens; quality: tech-clean
    python scripts/bench_gpu.py --device cpu --tokens 2e5 --paths torch --batch-sizes 4096 \
        --quality-max-lines 3000 --quality-epochs 1            # a quick smoke run anywhere (no GPU)

Speed: the corpus is generated in memory: --tokens ids drawn from a Zipf law (p(rank) ~ 1/rank^a)
over --vocab words, in lines of --line-words. That is acceptable for throughput alone
(issue 4). Each (model, path, batch size) trains one epoch through the project's trainer after a
short warm-up run (compilation, caches), and is timed to the end of the GPU's work.

Quality: a Zipf corpus has no meaning, and Hogwild at GPU parallelism (thousands of programs
updating the same frequent rows at once) may cost quality that speed alone hides. So each
(model, path, setting) also trains --quality-epochs epochs on real text (--quality-corpus,
default data/big/tech-clean.txt) through `w2v.train.run`, for each --quality-seeds, and is scored
on analogy / WS-353 / SimLex; the same runs with the CPU C kernel (one process, all cores: the
reference whose quality docs/performance.md records) come first in the table. --no-quality skips it.

Paths:
  triton  w2v/kernels/sgns_triton.py: per-example updates, Hogwild (batch size does not apply),
          at each --num-warps
  torch   batched closed-form steps with index_add_ (backend.triton=false), at each --batch-sizes
Writes a CSV and a markdown table to --out.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from w2v.atomic import atomic_path  # noqa: E402
from w2v.backends import init_tables, make_backend  # noqa: E402
from w2v.config import BackendConfig, TrainConfig  # noqa: E402
from w2v.kernels import sgns_triton  # noqa: E402
from w2v.objective import make_objective  # noqa: E402
from w2v.trainer import train  # noqa: E402

QUALITY = ("analogy_acc", "ws353_spearman", "simlex_spearman")


def zipf_corpus(tokens: int, vocab: int, exponent: float, line_words: int, seed: int):
    """(ids int32, sentence offsets int64, counts int64): ids 1..vocab-1 (0 is reserved), Zipf by rank."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocab) ** exponent
    cdf = np.cumsum(weights / weights.sum())
    ids = np.empty(tokens, np.int32)
    step = 1 << 24  # draw in slices: bounded temporary memory
    for start in range(0, tokens, step):
        n = min(step, tokens - start)
        ids[start:start + n] = np.searchsorted(cdf, rng.random(n), side="right").clip(max=vocab - 2) + 1
    sentences = np.append(np.arange(0, tokens, line_words, dtype=np.int64), np.int64(tokens))
    counts = np.bincount(ids, minlength=vocab).astype(np.int64)
    return ids, sentences, counts


def train_config(args, batch_size: int) -> TrainConfig:
    return TrainConfig(epochs=1, batch_size=batch_size, device=args.device, seed=1, log_every=10**12)


def timed_run(model: str, path: str, setting: int, corpus, args, device: torch.device) -> dict:
    """One epoch after a warm-up; setting = batch size (torch path) or warps per program (triton)."""
    ids, sentences, counts = corpus
    # kernel=torch: on a CPU smoke run, time the torch/triton code rather than the C kernel
    backend = make_backend("fused", *init_tables(len(counts), args.dim, seed=1), device,
                           BackendConfig("fused", kernel="torch", triton=path == "triton"))
    cfg = train_config(args, setting if path == "torch" else args.batch_sizes[0])
    objective = make_objective(model, args.window, args.negative)
    warm = min(len(ids), max(args.line_words, len(ids) // 50))
    warm_end = int(np.searchsorted(sentences, warm))
    train(objective, cfg, args.sample, ids[:int(sentences[warm_end])], sentences[:warm_end + 1], counts, backend,
          device, show_progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    stats = train(objective, cfg, args.sample, ids, sentences, counts, backend, device, show_progress=args.progress)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    return {"model": model, "path": path, "setting": f"batch {setting}" if path == "torch" else f"{setting} warps",
            "tokens": len(ids), "seconds": round(seconds, 3), "raw_words_per_s": len(ids) / seconds,
            "examples_per_s": stats.examples / seconds, "final_loss": stats.final_loss}


def markdown(rows: list[dict], header: str) -> str:
    lines = [header, "", "| model | path | setting | raw words/s | examples/s | seconds | final loss |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['path']} | {r['setting']} | {r['raw_words_per_s'] / 1e6:.1f}M | "
                     f"{r['examples_per_s'] / 1e6:.1f}M | {r['seconds']:.2f} | {r['final_loss']:.4f} |")
    return "\n".join(lines) + "\n"


def quality_run(model: str, path: str, setting: int, seed: int, args, device: torch.device) -> dict:
    """Train `model` on the real corpus with one path (cpu-c: the C kernel on the CPU, the reference)."""
    from w2v.config import parse_config
    from w2v.train import run

    saved_warps = sgns_triton.NUM_WARPS
    if path == "triton":
        sgns_triton.NUM_WARPS = setting
    data = {"kind": "files", "paths": [str(args.quality_corpus)], "max_lines": args.quality_max_lines}
    cfg = parse_config({
        "model": {"name": model, "dim": args.dim, "window": args.window, "negative": args.negative},
        # kernel=torch: the torch path on a CPU smoke run
        "backend": {"name": "fused", "kernel": "torch" if path == "torch" else "auto", "triton": path == "triton"},
        "data": data,
        "vocab": {"min_count": args.quality_min_count, "max_size": None, "sample": args.sample},
        "train": {"epochs": args.quality_epochs, "lr": 0.025, "min_lr": 0.0001,
                  "batch_size": setting if path == "torch" else 1024,
                  "device": "cpu" if path == "cpu-c" else str(device), "threads": None, "seed": seed,
                  "log_every": 1_000_000},
        "export": {"text": False, "projector_words": 0}, "evaluate": True, "cache_dir": str(args.cache_dir)})
    run_dir = args.out / "quality" / f"{model}-{path}-{setting}-seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)  # this script's own earlier output: a run dir must be new
    try:
        metrics = run(cfg, run_dir, show_progress=args.progress)
    finally:
        sgns_triton.NUM_WARPS = saved_warps
    label = {"cpu-c": "C kernel, CPU (reference)", "triton": f"{setting} warps", "torch": f"batch {setting}"}[path]
    return {"model": model, "path": path, "setting": label, "seed": seed, "train_s": round(metrics["train_s"], 3),
            "raw_words_per_s": metrics["words_per_sec_raw"], **{k: metrics[k] for k in QUALITY}}


def quality_markdown(rows: list[dict], header: str) -> str:
    """Mean (and each seed's value) per (model, path, setting)."""
    lines = [header, "", "| model | path | setting | seeds | raw words/s | analogy | WS-353 | SimLex |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["path"], r["setting"]), []).append(r)

    def cell(values: list[float]) -> str:
        mean = f"{sum(values) / len(values):.4f}"
        return mean if len(values) == 1 else f"{mean} ({' '.join(f'{v:.4f}' for v in values)})"

    for (model, path, setting), runs in groups.items():
        speed = sorted(r["raw_words_per_s"] for r in runs)[len(runs) // 2]
        lines.append(f"| {model} | {path} | {setting} | {', '.join(str(r['seed']) for r in runs)} | "
                     f"{speed / 1e6:.2f}M | " + " | ".join(cell([r[k] for r in runs]) for k in QUALITY) + " |")
    return "\n".join(lines) + "\n"


def write_table(rows: list[dict], text: str, out: Path, name: str) -> None:
    with atomic_path(out / f"{name}.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with atomic_path(out / f"{name}.md") as tmp:
        tmp.write_text(text)
    print(f"wrote {out / (name + '.csv')} and {out / (name + '.md')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=float, default=50e6)
    parser.add_argument("--vocab", type=int, default=100_000)
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent a")
    parser.add_argument("--line-words", type=int, default=1000)
    parser.add_argument("--models", nargs="+", default=["skipgram", "cbow"], choices=["skipgram", "cbow"])
    parser.add_argument("--paths", nargs="+", default=["triton", "torch"], choices=["triton", "torch"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[16384, 65536])
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negative", type=int, default=5)
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--num-warps", nargs="+", type=int, default=[sgns_triton.NUM_WARPS],
                        help="Triton path: warps per program, one run per value (e.g. 1 2 4)")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--no-quality", dest="quality", action="store_false", help="speed only")
    parser.add_argument("--quality-corpus", type=Path, default=REPO / "data" / "big" / "tech-clean.txt")
    parser.add_argument("--quality-epochs", type=int, default=3)
    parser.add_argument("--quality-seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--quality-min-count", type=int, default=5)
    parser.add_argument("--quality-max-lines", type=int, default=None, help="read only the first N lines (smoke)")
    parser.add_argument("--cache-dir", type=Path, default=REPO / "data" / "cache")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_gpu"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA device (use --device cpu for a smoke run)",
              file=sys.stderr)
        return 2
    if "triton" in args.paths and not sgns_triton.available(device):
        print(f"note: the Triton kernels cannot run on {device} here; timing the torch path only", file=sys.stderr)
        args.paths = [p for p in args.paths if p != "triton"]
    if not args.paths:
        return 2
    if args.quality and not args.quality_corpus.is_file():
        print(f"error: no quality corpus at {args.quality_corpus} (python scripts/make_corpora.py builds "
              f"data/big/; or give --quality-corpus, or --no-quality)", file=sys.stderr)
        return 2

    started = time.perf_counter()
    corpus = zipf_corpus(int(args.tokens), args.vocab, args.zipf, args.line_words, seed=0)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    header = (f"{where}; Zipf corpus: {int(args.tokens):,} tokens, vocabulary {args.vocab:,}, a={args.zipf}, "
              f"lines of {args.line_words}; dim {args.dim}, window {args.window}, negative {args.negative}, "
              f"sample {args.sample}; one epoch after a warm-up (generated in {time.perf_counter() - started:.0f}s)")
    print(header, flush=True)
    rows = []
    for model in args.models:
        for path in args.paths:
            for setting in (args.batch_sizes if path == "torch" else args.num_warps):
                if path == "triton":
                    sgns_triton.NUM_WARPS = setting
                rows.append(timed_run(model, path, setting, corpus, args, device))
                r = rows[-1]
                print(f"  {model} {path} {r['setting']}: {r['raw_words_per_s'] / 1e6:.1f}M raw words/s "
                      f"({r['seconds']:.2f}s, loss {r['final_loss']:.4f})", flush=True)
    table = markdown(rows, header)
    print("\n" + table)
    args.out.mkdir(parents=True, exist_ok=True)
    write_table(rows, table, args.out, "bench_gpu")
    if not args.quality:
        return 0

    # Quality on real text: the CPU C kernel first (the reference), then every path timed above.
    setups = [("cpu-c", 0)] + [(path, setting) for path in args.paths
                               for setting in (args.batch_sizes if path == "torch" else args.num_warps)]
    quality = []
    for model in args.models:
        for path, setting in setups:
            for seed in args.quality_seeds:
                quality.append(quality_run(model, path, setting, seed, args, device))
                r = quality[-1]
                print(f"  quality {model} {path} {r['setting']} seed {seed}: "
                      + ", ".join(f"{k} {r[k]:.4f}" for k in QUALITY), flush=True)
    header = (f"{where} against the CPU C kernel; {args.quality_corpus.name}"
              f"{f' (first {args.quality_max_lines} lines)' if args.quality_max_lines else ''}, "
              f"{args.quality_epochs} epochs, dim {args.dim}, window {args.window}, negative {args.negative}, "
              f"sample {args.sample}, min_count {args.quality_min_count}; mean over seeds (each seed)")
    text = quality_markdown(quality, header)
    print("\n" + text)
    write_table(quality, text, args.out, "bench_gpu_quality")
    return 0


if __name__ == "__main__":
    sys.exit(main())
