"""backend=fused on one host: 1 rank x 2 threads against 2 ranks x 1 thread (torchrun, gloo), per sync interval.

    python scripts/bench_distributed.py --corpus data/big/tech-clean.txt                 # speed, 1 epoch
    python scripts/bench_distributed.py --corpus data/big/tech-clean.txt --pairs 0 \\
        --quality-seeds 1 2 3 --quality-epochs 3 --sync-every 262144                  # quality, 3 seeds
    python scripts/bench_distributed.py --corpus data/big/tech-clean.txt --pairs 1 \\
        --sync-every 262144 --min-counts 1 5 20                                           # bytes against vocabulary
    python scripts/bench_distributed.py --pairs 0 --methods-vocab 26450 262144 1048576   # rows vs dense, timed

Speed: each pair runs `python -m w2v.train train.threads=2` (one process, no syncs), then
`torchrun --nproc-per-node=2 ... train.threads=1 train.sync_every=S` for each S, and takes each
run's raw words/s from its metrics.json (training time only, tokenisation excluded: the cache is
built before the first pair). The ratio 2x1 / 1x2 is taken pair by pair, so a machine whose speed
drifts (other jobs) still compares like with like; the table gives medians. The load average
at the start and end is printed with the table: on a busy machine the figures mean little.

Quality: the same two set-ups for each seed, `--quality-epochs` epochs, evaluate=true
(analogy, WS-353, SimLex), at the first --sync-every.

Bytes: rows moved and bytes sent per rank per sync come from the 2-rank runs' metrics; with
--min-counts the 2-rank run is repeated at other vocab.min_count values (larger vocabularies).
Methods: with --methods-vocab, two gloo ranks time one TableSync of a (V, 100) table with
10 %, 50 % and 90 % of its rows moved, by all_gather of the rows and by all_reduce of the table.
Writes bench_distributed.md / .csv to --out (default outputs/bench_distributed/).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
           CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO))

from w2v.atomic import write_report  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_run(corpus: Path, cache: Path, ranks: int, overrides: list[str]) -> dict:
    """One training run in a fresh run dir; returns its metrics.json."""
    with tempfile.TemporaryDirectory(prefix="bench_distributed_") as tmp:
        args = ["-m", "w2v.train", "data=files", f"data.paths=[{corpus}]", f"cache_dir={cache}",
                f"hydra.run.dir={tmp}/run", "backend=fused", "export.projector_words=0", *overrides]
        if ranks == 1:
            command = [sys.executable, *args, "train.threads=2"]
        else:
            command = [str(Path(sys.executable).parent / "torchrun"), f"--nproc-per-node={ranks}",
                       "--master-addr=127.0.0.1", f"--master-port={free_port()}", *args, "train.threads=1"]
        done = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"run failed ({' '.join(command[-6:])}):\n{done.stderr[-2000:]}")
        return json.loads((Path(tmp) / "run" / "metrics.json").read_text())


def time_methods(rank: int, init_file: str, vocabs: list[int], out: str) -> None:
    """One of two ranks: median seconds of a sync by each method, per vocabulary and share of rows moved."""
    import time

    import torch

    from w2v.distributed import start_world
    from w2v.table_sync import TableSync

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2")
    torch.set_num_threads(1)
    world = start_world("cpu", init_method=f"file://{init_file}")
    results = []
    for vocab in vocabs:
        table = torch.zeros(vocab, 100)
        for share in (0.1, 0.5, 0.9):
            moved = torch.randperm(vocab, generator=torch.Generator().manual_seed(rank))[:int(share * vocab)]
            for method in ("rows", "dense"):
                sync, seconds = TableSync([table], world, method), []
                for _ in range(3):
                    table[moved] += 0.001
                    started = time.perf_counter()
                    report = sync()
                    seconds.append(time.perf_counter() - started)
                results.append({"vocab": vocab, "share": share, "method": method,
                                "seconds": sorted(seconds)[1], "mb": report.bytes_sent / 1e6})
    if rank == 0:
        Path(out).write_text(json.dumps(results))
    world.close()


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO / "data" / "big" / "tech-clean.txt")
    parser.add_argument("--cache", type=Path, default=REPO / "data" / "cache")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--sync-every", type=int, nargs="+", default=[262144, 65536, 1048576])
    parser.add_argument("--pairs", type=int, default=3, help="speed: A/B repetitions (0 skips speed)")
    parser.add_argument("--min-counts", type=int, nargs="*", default=[], help="bytes: other vocab.min_count values")
    parser.add_argument("--methods-vocab", type=int, nargs="*", default=[], help="time rows vs dense at these V")
    parser.add_argument("--quality-seeds", type=int, nargs="*", default=[])
    parser.add_argument("--quality-epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_distributed")
    args = parser.parse_args()
    if not args.corpus.is_file() and (args.pairs or args.min_counts or args.quality_seeds):
        raise SystemExit(f"error: no corpus at {args.corpus}; give one with --corpus")
    common = [f"train.epochs={args.epochs}", "evaluate=false"]
    lines, rows = [f"corpus {args.corpus.name}, backend=fused skip-gram, load average at start {load()}", ""], []

    if args.pairs:
        train_run(args.corpus, args.cache, 1, [*common, "train.epochs=1", "data.max_lines=10"])  # warm the kernel
        speeds: dict[str, list[dict]] = {}
        for _ in range(args.pairs):
            single = train_run(args.corpus, args.cache, 1, common)
            speeds.setdefault("1x2", []).append({**single, "ratio": 1.0})
            for every in args.sync_every:
                two = train_run(args.corpus, args.cache, 2, [*common, f"train.sync_every={every}"])
                ratio = two["words_per_sec_raw"] / single["words_per_sec_raw"]
                speeds.setdefault(f"2x1 sync {every}", []).append({**two, "ratio": ratio})
        lines += [f"speed: {args.epochs} epoch(s), {args.pairs} pairs, medians", "",
                  "| set-up | raw words/s | 2x1 / 1x2 (per pair) | syncs | MB sent per rank per sync "
                  "| sync share of training |", "|---|---|---|---|---|---|"]
        for name, runs in speeds.items():
            syncs = runs[0]["syncs"]
            row = {"setup": name, "words_per_sec_raw": statistics.median(r["words_per_sec_raw"] for r in runs),
                   "ratio": statistics.median(r["ratio"] for r in runs),
                   "ratios": " ".join(f"{r['ratio']:.3f}" for r in runs), "syncs": syncs,
                   "mb_per_sync": runs[0]["sync_bytes_per_rank"] / max(syncs, 1) / 1e6,
                   "sync_share": statistics.median(r["sync_s"] / r["train_s"] for r in runs),
                   "vocab": runs[0]["vocab_size"]}
            rows.append(row)
            lines.append(f"| {name} | {row['words_per_sec_raw'] / 1e6:.2f}M | {row['ratio']:.3f} ({row['ratios']}) | "
                         f"{syncs} | {row['mb_per_sync']:.2f} | {row['sync_share']:.1%} |")
        lines += ["", f"load average at the end of the speed runs {load()}", ""]

    if args.min_counts:
        lines += [f"bytes against vocabulary (2 ranks, sync every {args.sync_every[0]} words a rank)", "",
                  "| vocab.min_count | vocabulary | MB sent per rank per sync | syncs |", "|---|---|---|---|"]
        for min_count in args.min_counts:
            two = train_run(args.corpus, args.cache, 2, [*common, f"train.sync_every={args.sync_every[0]}",
                                                          f"vocab.min_count={min_count}"])
            mb = two["sync_bytes_per_rank"] / max(two["syncs"], 1) / 1e6
            rows.append({"setup": f"min_count {min_count}", "vocab": two["vocab_size"], "mb_per_sync": mb,
                         "syncs": two["syncs"]})
            lines.append(f"| {min_count} | {two['vocab_size']} | {mb:.2f} | {two['syncs']} |")
        lines.append("")

    if args.methods_vocab:
        import torch.multiprocessing as mp

        with tempfile.TemporaryDirectory() as tmp:
            mp.spawn(time_methods, args=(f"{tmp}/rendezvous", args.methods_vocab, f"{tmp}/out.json"), nprocs=2)
            timed = json.loads(Path(f"{tmp}/out.json").read_text())
        lines += ["one sync of one (V, 100) table, 2 gloo ranks on this host, median of 3", "",
                  "| V | rows moved | rows: ms | rows: MB sent per rank | dense: ms | dense: MB sent per rank |",
                  "|---|---|---|---|---|---|"]
        for i in range(0, len(timed), 2):
            r, d = timed[i], timed[i + 1]
            lines.append(f"| {r['vocab']} | {r['share']:.0%} | {r['seconds'] * 1e3:.0f} | {r['mb']:.1f} | "
                         f"{d['seconds'] * 1e3:.0f} | {d['mb']:.1f} |")
            rows += [{"setup": f"method {x['method']}", **x} for x in (r, d)]
        lines.append("")

    if args.quality_seeds:
        every = args.sync_every[0]
        setups = {"1 rank x 2 threads": (1, []),
                  f"2 ranks x 1 thread, sync {every}": (2, [f"train.sync_every={every}"])}
        lines += [f"quality: {args.quality_epochs} epochs, seeds {args.quality_seeds}, mean (sd)", "",
                  "| set-up | analogy | WS-353 | SimLex | raw words/s |", "|---|---|---|---|---|"]
        for name, (ranks, extra) in setups.items():
            runs = [train_run(args.corpus, args.cache, ranks,
                              [f"train.epochs={args.quality_epochs}", f"train.seed={seed}", "evaluate=true", *extra])
                    for seed in args.quality_seeds]
            cells = []
            for key in ("analogy_acc", "ws353_spearman", "simlex_spearman"):
                values = [r[key] for r in runs]
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.mean(values):.4f} ({sd:.4f})")
                rows.append({"setup": f"quality {name}", "metric": key, "values": " ".join(f"{v:.4f}" for v in values)})
            speed = statistics.median(r["words_per_sec_raw"] for r in runs)
            lines.append(f"| {name} | {' | '.join(cells)} | {speed / 1e6:.2f}M |")
        lines += ["", f"load average at the end {load()}"]

    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    write_report(args.out, "bench_distributed", text, rows)


if __name__ == "__main__":
    main()
