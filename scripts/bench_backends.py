"""Cost of one training step, per backend, across vocabulary sizes: time and peak memory.

    python scripts/bench_backends.py                      # defaults: < 5 min on 2 CPU cores
    python scripts/bench_backends.py --vocab 1e3 1e4 1e5 1e6 3e6 1e7 --dims 100 300   # on a GPU

One step = forward, backward and optimiser update of a fixed skip-gram batch
(1,024 pairs x 5 negatives), through each backend's own `train_step`. Each
figure is the median over --repeats steps after --warmup steps; batches cycle
through a few pre-drawn Zipf-distributed ones, as text would. Peak memory is
what the configuration added above what was there before it was built:
torch.cuda.max_memory_allocated on CUDA; on the CPU the process's peak resident
set (VmHWM, reset before each configuration, after malloc_trim hands freed heap
pages back so that reusing them still shows), since torch allocates outside
Python's tracemalloc. A
configuration w2v.memory.estimate_bytes says would not fit in --max-gib is
skipped with "needs X GiB" (+ the init tables the benchmark holds beside it). A
backend whose step has grown with V (to over twice its first, and over 0.1 s) is
skipped as "too slow (~N s/step)" where its fastest step, scaled linearly to
the next V, would exceed --max-step-s. Use --threads 1 on a machine shared with
other jobs: competing OpenMP threads make small steps 10-40x slower.
Writes a CSV, a markdown table and a log-log PNG (step time against vocabulary size).
"""
from __future__ import annotations

import argparse
import csv
import ctypes
import gc
import io
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from w2v.atomic import atomic_path  # noqa: E402
from w2v.backends import BACKENDS, init_tables  # noqa: E402
from w2v.memory import GIB, available_bytes, estimate_bytes  # noqa: E402
from w2v.objective import Batch, SkipGram  # noqa: E402

MIB = 1024 ** 2
FIELDS = ["device", "backend", "vocab", "dim", "batch", "status", "median_ms", "min_ms", "timed_steps",
          "peak_mib", "need_gib"]


def vmstat(key: str) -> int:
    """A /proc/self/status figure in bytes (VmRSS, VmHWM); 0 where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peak(device: torch.device) -> int:
    """Start a peak-memory window; returns the baseline to subtract."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    try:  # hand freed heap pages back, so this configuration's allocations show in the resident set
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:  # "5" resets the peak resident set (VmHWM) to the current one
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return vmstat("VmRSS")


def peak_since(device: torch.device, baseline: int) -> int:
    if device.type == "cuda":
        return max(0, torch.cuda.max_memory_allocated(device) - baseline)
    return max(0, vmstat("VmHWM") - baseline)


def zipf_sampler(vocab: int, power: float, rng: np.random.Generator):
    """Draws ids with P(rank r) proportional to (r + 1) ** -power."""
    cdf = np.cumsum(np.arange(1, vocab + 1, dtype=np.float64) ** -power)
    cdf /= cdf[-1]
    return lambda *shape: torch.from_numpy(np.minimum(np.searchsorted(cdf, rng.random(shape)), vocab - 1))


def make_batches(vocab: int, batch_size: int, negative: int, device: torch.device, count: int = 4,
                 seed: int = 0) -> list[Batch]:
    """Skip-gram batches: words from a Zipf law, negatives from it raised to 0.75, as word2vec draws."""
    rng = np.random.default_rng(seed)
    words, noise = zipf_sampler(vocab, 1.0, rng), zipf_sampler(vocab, 0.75, rng)
    return [Batch(centres=words(batch_size).to(device), contexts=words(batch_size).to(device),
                  negatives=noise(batch_size, negative).to(device)) for _ in range(count)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def needed_bytes(name: str, vocab: int, dim: int, args, device: torch.device) -> tuple[int, int]:
    """(the backend's own bytes on the device, the init tables' bytes if they share that memory)."""
    need = estimate_bytes(BACKENDS[name], vocab, dim, SkipGram(args.window, args.negative), args.batch, device.type)
    two_tables = 2 * vocab * dim * 4
    if device.type == "cuda":
        return need["tables"] + need["batch"], 0
    return need["tables"] + need["batch"], two_tables


def measure(name: str, init: tuple[torch.Tensor, torch.Tensor], args, device: torch.device) -> dict:
    """Build the backend from the (V, D) init tables, warm up, time --repeats steps; returns a CSV row."""
    vocab, dim = init[0].shape
    row = {"device": device.type, "backend": name, "vocab": vocab, "dim": dim, "batch": args.batch}
    batches = make_batches(vocab, args.batch, args.negative, device)
    baseline = reset_peak(device)  # the init tables (shared by all backends) are not counted
    backend = BACKENDS[name].create(*init, device)
    steps = 0

    def timed_step() -> float:
        nonlocal steps
        sync(device)
        started = time.perf_counter()
        backend.train_step(SkipGram(args.window, args.negative), batches[steps % len(batches)], 0.025)
        sync(device)
        steps += 1
        return time.perf_counter() - started

    for _ in range(args.warmup):
        if timed_step() > 0.5:
            break  # warm enough: first-call costs are small beside a step this slow
    times = []
    while len(times) < args.repeats and (len(times) < 3 or sum(times) < args.seconds_per_config):
        times.append(timed_step())
    row.update(status="ok", median_ms=round(1000 * statistics.median(times), 3),
               min_ms=round(1000 * min(times), 3), timed_steps=len(times),
               peak_mib=round(peak_since(device, baseline) / MIB, 1))
    del backend, batches
    gc.collect()
    return row


def markdown_table(rows: list[dict], backends: list[str]) -> str:
    """One table per dim: a row per vocabulary size, a column per backend, 'ms / MiB' per cell."""
    out = io.StringIO()
    for dim in sorted({r["dim"] for r in rows}):
        out.write(f"\n**dim {dim}**: median step time (ms) / peak memory (MiB)\n\n")
        out.write("| vocab | " + " | ".join(backends) + " |\n|---:|" + "---:|" * len(backends) + "\n")
        for vocab in sorted({r["vocab"] for r in rows if r["dim"] == dim}):
            cells = []
            for name in backends:
                match = [r for r in rows if r["dim"] == dim and r["vocab"] == vocab and r["backend"] == name]
                if not match:
                    cells.append("")
                elif match[0]["status"] == "ok":
                    mark = "" if match[0]["timed_steps"] > 1 else " (1 step)"
                    peak = match[0]["peak_mib"]
                    cells.append(f"{match[0]['median_ms']:.1f} / {peak:.0f}{mark}" if peak >= 1
                                 else f"{match[0]['median_ms']:.1f} / <1{mark}")
                else:
                    cells.append(match[0]["status"])
            out.write(f"| {vocab:,} | " + " | ".join(cells) + " |\n")
    return out.getvalue()


def plot(rows: list[dict], backends: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = sorted({r["dim"] for r in rows})
    fig, axes = plt.subplots(1, len(dims), figsize=(6 * len(dims), 4.5), sharey=True, squeeze=False)
    for ax, dim in zip(axes[0], dims):
        for name in backends:
            ok = sorted((r["vocab"], r["median_ms"]) for r in rows
                        if r["dim"] == dim and r["backend"] == name and r["status"] == "ok")
            if ok:
                ax.plot(*zip(*ok), marker="o", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("vocabulary size V")
        ax.set_title(f"dim {dim}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("median step time (ms)")
    axes[0][-1].legend()
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--vocab", nargs="+", type=float, default=[1e3, 1e4, 1e5, 1e6, 3e6])
    parser.add_argument("--dims", nargs="+", type=int, default=[100, 300])
    parser.add_argument("--batch", type=int, default=1024, help="skip-gram pairs per step")
    parser.add_argument("--negative", type=int, default=5)
    parser.add_argument("--window", type=int, default=5, help="only for the memory estimate")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7, help="timed steps (at least 3)")
    parser.add_argument("--seconds-per-config", type=float, default=3.0,
                        help="stop timing a configuration after this long, once 3 steps are timed")
    parser.add_argument("--max-step-s", type=float, default=6.0,
                        help="skip a configuration whose step, scaled up from the last smaller V, would take longer")
    parser.add_argument("--max-gib", type=float, default=None,
                        help="memory a configuration may use (default: half the free memory of the device)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help="output prefix (default docs/data/bench_backends_<device>; PNG under docs/img/)")
    args = parser.parse_args(argv)

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > (os.cpu_count() or 1) and torch.get_num_threads() > 1:
        print(f"# warning: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; other jobs' threads "
              f"will slow small steps many-fold: consider --threads 1", file=sys.stderr)
    budget = args.max_gib * GIB if args.max_gib else 0.5 * available_bytes(device)
    prefix = args.out or REPO / "docs" / "data" / f"bench_backends_{device.type}"
    png = REPO / "docs" / "img" / f"{prefix.name}.png" if args.out is None else prefix.with_suffix(".png")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"# {where}; budget {budget / GIB:.1f} GiB; batch {args.batch} pairs x {args.negative} negatives",
          flush=True)

    for name in args.backends:  # first calls allocate lasting buffers (threads, caches): not the backend's cost
        warm = argparse.Namespace(**{**vars(args), "warmup": 1, "repeats": 1})
        measure(name, init_tables(100, 8, seed=1), warm, device)
    # (backend, dim) -> (vocab, fastest step in s) at its first and at its last measured vocabulary
    first_ok, last_ok, rows = {}, {}, []
    started = time.perf_counter()
    for dim in args.dims:
        for vocab in sorted(int(v) for v in args.vocab):
            init = None  # built once per (V, D), only if some backend runs
            for name in args.backends:
                need, init_bytes = needed_bytes(name, vocab, dim, args, device)
                base = {"device": device.type, "backend": name, "vocab": vocab, "dim": dim, "batch": args.batch,
                        "need_gib": round(need / GIB, 2)}
                smaller, first = last_ok.get((name, dim)), first_ok.get((name, dim))
                # A step's cost grows at most linearly in V, so the last one scaled up bounds this one.
                # Only for a backend seen to grow (2x its first step) and past fixed costs (0.1 s):
                # scaling up a flat backend's noise would skip it for nothing.
                growing = smaller and smaller[1] > max(0.1, 2 * first[1])
                projected = smaller[1] * vocab / smaller[0] if growing else 0.0
                if need + init_bytes > budget:
                    extra = f" + {init_bytes / GIB:.1f} init" if init_bytes else ""
                    row = {**base, "status": f"needs {need / GIB:.1f} GiB{extra}"}
                elif projected > args.max_step_s:
                    row = {**base, "status": f"too slow (~{projected:.0f} s/step)"}
                else:
                    init = init if init is not None else init_tables(vocab, dim, seed=1)
                    row = {**measure(name, init, args, device), "need_gib": base["need_gib"]}
                    last_ok[(name, dim)] = (vocab, row["min_ms"] / 1000)
                    first_ok.setdefault((name, dim), last_ok[(name, dim)])
                rows.append(row)
                shown = f"{row['median_ms']:10.2f} ms {row['peak_mib']:9.1f} MiB" if row["status"] == "ok" \
                    else row["status"]
                print(f"{name:8s} V={vocab:>9,} D={dim:3d}  {shown}", flush=True)
    print(f"# {time.perf_counter() - started:.0f} s")

    backends = [b for b in args.backends if any(r["backend"] == b for r in rows)]
    with atomic_path(prefix.with_suffix(".csv")) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    table = f"Measured on {where}; {args.batch} pairs x {args.negative} negatives per step; memory budget " \
        f"{budget / GIB:.1f} GiB (the shared init tables count against it on the CPU).\n" \
        + markdown_table(rows, backends)
    with atomic_path(prefix.with_suffix(".md")) as tmp:
        tmp.write_text(table, encoding="utf-8")
    plot(rows, backends, png, f"one skip-gram step, {args.batch} pairs, {where}")
    print(table)
    print(f"wrote {prefix.with_suffix('.csv')}, {prefix.with_suffix('.md')}, {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
