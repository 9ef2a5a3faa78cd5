"""Time and memory against corpus size, tokenisation included: 1x, 10x and 50x a Zipf corpus.

    python scripts/bench_scaling.py                                   # 1x 10x 50x of 5.5M words (50x: ~1.8 GB text)
    python scripts/bench_scaling.py --base-words 200000 --scales 1 2  # smoke test, seconds

The corpus is generated: word ranks r = floor(V ** u), u uniform, so p(r) ~ 1/r up to V (50M),
written as "w<rank>", 25 words a line. Its long tail grows the vocabulary with the corpus as real
text does (min_count 5: ~77k words at 1x, ~3.9M at 50x); distinct words grow faster (1.7M, ~27M).
Files go in --data and are reused when present (written under a temp name, then renamed).

Each scale runs two fresh processes, so no peak carries over: (1) open_corpus + load_or_build
into an empty cache folder (cold), split by wrapping the names w2v/token_ids.py imports:
"text pass (vocabulary counts + ids)" = number_corpus (split, number and count every word, in
forked workers); "vocabulary + final ids" = the rest of load_or_build (vocabulary choice,
write_final_ids, tokenizer); (2) one epoch of w2v.train.run from that cache: fused backend,
skip-gram, dim 100, window 5, negative 5. Time: its train_s; memory: the whole run, export included.

Memory is the peak anonymous memory of the phase, summed over the process and its encoder
workers (Pss_Anon of /proc/<pid>/smaps_rollup, sampled every 0.1 s; proportional, so pages a
fork shares count once). The id files are memory-mapped or written through the page cache:
reclaimable file cache, not the program's memory, so RSS overstates it (VmHWM, reset per phase,
and the workers' RUSAGE_CHILDREN maxrss are in the CSV). Heap freed by the text pass but not
returned to the system still counts in the next phase.

Verdicts (issue 10, target 4), each scale against 1x:
  time linear    seconds per million words of each phase within 15% (prep phases: corpus words;
                 training: in-vocabulary tokens, which it trains on; their share grows with size)
  memory flat    peak anonymous memory less what must grow with the words, within 10%.
                 Subtracted: training, the two tables (2 x vocab x dim x 4 bytes); text pass, the
                 word dictionaries (the main process's + each worker's: entries x bytes an entry,
                 measured here on a dict + list of "w<n>" strings); vocabulary + final ids, the
                 list of distinct words it keeps (bytes a string + list slot, measured) + 12 bytes
                 a word of counts and id maps. Distinct words: all ever seen, rare ones included.
Writes bench_scaling.csv and bench_scaling.md to --out (default outputs/bench_scaling/).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PHASES = [("text", "text pass (vocabulary counts + ids)"), ("final", "vocabulary + final ids"),
          ("train", "training, 1 epoch")]
LINE_WORDS, PIECE_WORDS, DIM = 25, 5_000_000, 100
BYTES_PER_WORD = 6.5  # "w" + ~4.3 digits + separator, for the disk check
MIB = 1 << 20


def corpus_path(folder: Path, words: int, ranks: int, seed: int) -> Path:
    return folder / f"zipf-{words}w-V{ranks}-seed{seed}.txt"


def zipf_corpus(folder: Path, words: int, ranks: int, seed: int) -> Path:
    """The corpus file of `words` words (made once): each piece of 5M words its own seeded draws."""
    from w2v.atomic import atomic_path

    path = corpus_path(folder, words, ranks, seed)
    if path.exists() and path.stat().st_size >= 2 * words:  # a complete file: it was renamed into place
        return path
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        for k, start in enumerate(range(0, words, PIECE_WORDS)):
            u = np.random.default_rng([seed, k]).random(min(PIECE_WORDS, words - start))
            tokens = np.floor(ranks ** u).astype(np.int64).astype("S12").tolist()
            lines = [b" w".join(tokens[i:i + LINE_WORDS]) for i in range(0, len(tokens), LINE_WORDS)]
            out.write(b"w" + b"\nw".join(lines) + b"\n")
    return path


def pss_anon_kib(pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("Pss_Anon:")), 0)
    except OSError:  # a worker that just exited
        return 0


def child_pids() -> list[str]:
    pids = []
    for task in os.listdir("/proc/self/task"):  # a child is listed under the thread that forked it
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                pids += f.read().split()
        except OSError:
            pass
    return pids


def status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next((int(line.split()[1]) for line in f if line.startswith(field + ":")), 0)


class PeakSampler(threading.Thread):
    """Samples anonymous memory of this process + its children; take() returns the peak since the last take()."""

    def __init__(self, every_s: float = 0.1):
        super().__init__(daemon=True)
        self.every_s, self.peak_kib, self.lock = every_s, 0, threading.Lock()
        self.start()

    def sample(self) -> None:
        kib = pss_anon_kib() + sum(pss_anon_kib(pid) for pid in child_pids())
        with self.lock:
            self.peak_kib = max(self.peak_kib, kib)

    def run(self):
        while True:  # a daemon thread: it ends with the process
            time.sleep(self.every_s)
            self.sample()

    def take(self) -> float:
        self.sample()
        with self.lock:
            peak, self.peak_kib = self.peak_kib, 0
        return peak / 1024


def reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0), so each phase gets its own peak


def dictionary_cost(n: int = 300_000) -> tuple[float, float]:
    """Bytes per entry of a word dictionary as the encoder keeps one (str -> int dict + list), and of the list alone."""
    before = status_kib("RssAnon")
    words = [f"w{i}" for i in range(10_000_000, 10_000_000 + n)]
    listed = status_kib("RssAnon")
    index = {word: i for i, word in enumerate(words)}
    full = status_kib("RssAnon")
    del index, words
    return (full - before) * 1024 / n, (listed - before) * 1024 / n


def child_prepare(args) -> dict:
    import w2v.encode as encode
    import w2v.token_ids as token_ids
    from w2v.config import DataConfig, VocabConfig
    from w2v.corpus import open_corpus

    sampler, marks = PeakSampler(), {}
    number_corpus, write_final_ids = token_ids.number_corpus, token_ids.write_final_ids

    def timed_number_corpus(*a, **k):
        marks["text_start"], marks["setup_anon"] = time.perf_counter(), sampler.take()
        reset_hwm()
        provisional = number_corpus(*a, **k)
        marks.update(text_end=time.perf_counter(), text_anon=sampler.take(), text_hwm=status_kib("VmHWM") / 1024,
                     # The workers keep no dictionary between blocks: the main process's is the only one.
                     distinct=len(provisional.words) - 1, worker_entries=0,
                     workers=encode.os.cpu_count() if Path(args.child).stat().st_size >= encode.PARALLEL_MIN_BYTES else 1,
                     workers_maxrss=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        reset_hwm()
        return provisional

    def timed_write_final_ids(*a, **k):
        started = time.perf_counter()
        offsets = write_final_ids(*a, **k)
        marks["write_final_ids_s"] = time.perf_counter() - started
        return offsets

    token_ids.number_corpus, token_ids.write_final_ids = timed_number_corpus, timed_write_final_ids
    started, cache = time.perf_counter(), Path(args.cache)
    corpus = open_corpus(DataConfig(kind="files", paths=[args.child]), cache)
    ids = token_ids.load_or_build(corpus, VocabConfig(min_count=5), cache, show_progress=False, log=lambda m: None)
    ended = time.perf_counter()
    return {"setup_s": marks["text_start"] - started, "text_s": marks["text_end"] - marks["text_start"],
            "final_s": ended - marks["text_end"], "final_anon": sampler.take(), "final_hwm": status_kib("VmHWM") / 1024,
            "tokens": len(ids.ids), "vocab": ids.vocab_size - 1,
            **{k: marks[k] for k in ("setup_anon", "text_anon", "text_hwm", "distinct", "worker_entries", "workers",
                                     "workers_maxrss", "write_final_ids_s")}}


def child_train(args) -> dict:
    from w2v.config import parse_config
    from w2v.train import run

    cfg = parse_config({
        "model": {"name": "skipgram", "dim": DIM, "window": 5, "negative": 5}, "backend": {"name": "fused"},
        "data": {"kind": "files", "paths": [args.child], "max_lines": None},
        "vocab": {"min_count": 5, "max_size": None, "sample": 1e-3},
        "train": {"epochs": 1, "lr": 0.025, "min_lr": 0.0001, "batch_size": 1024, "device": "cpu", "threads": None,
                  "seed": 1, "log_every": 1_000_000},
        "export": {"text": False, "projector_words": 0}, "evaluate": False, "cache_dir": args.cache})
    sampler = PeakSampler()
    run_dir = Path(args.cache) / "run"  # inside the scale's cache folder: removed with it
    metrics = run(cfg, run_dir, show_progress=False)
    return {"train_s": metrics["train_s"], "train_anon": sampler.take(), "train_hwm": status_kib("VmHWM") / 1024,
            "train_tokens": metrics["corpus_words"], "train_vocab": metrics["vocab_size"]}


def in_child(mode: str, corpus: Path, cache: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", str(corpus), "--mode", mode, "--cache", str(cache)],
                            check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def residual(row: dict, phase: str, cost: tuple[float, float]) -> float:
    """Peak anonymous MiB less what grows with the vocabulary (see the module docstring)."""
    per_entry, per_listed = cost
    grows = {"text": per_entry * (row["distinct"] + row["worker_entries"]),
             "final": (per_listed + 12) * row["distinct"],
             "train": 2 * row["vocab"] * DIM * 4}[phase]
    return row[f"{phase}_anon"] - grows / MIB


def report(rows: list[dict], cost: tuple[float, float]) -> list[str]:
    base = rows[0]
    lines = [f"Zipf corpus (p(r) ~ 1/r, V = {base['ranks']:,}), min_count 5; fused skip-gram, dim {DIM}, window 5, "
             f"negative 5, 1 epoch; {os.cpu_count()} cores. Peak anon: anonymous MiB, process + encoder workers; "
             f"less own growth: less the dictionaries (entry {cost[0]:.0f} B, listed word {cost[1]:.0f} B) or "
             f"tables (2 x vocab x {DIM} x 4 B), see the script's docstring.", "",
             "| scale | words | vocabulary | distinct words | phase | s | s / M words | vs 1x | peak anon MiB "
             "| less own growth | vs 1x |", "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    verdicts = []
    for p, name in PHASES:
        time_ratio = [r[p + "_s_per_m"] / base[p + "_s_per_m"] for r in rows]
        rest = [residual(r, p, cost) for r in rows]
        for r, t, m in zip(rows, time_ratio, rest):
            r[p + "_rest_mib"] = m
        linear = all(abs(t - 1) <= 0.15 for t in time_ratio)
        flat = all(abs(m / rest[0] - 1) <= 0.10 for m in rest)
        verdicts.append(f"- {name}: time linear within 15%: {'yes' if linear else 'NO'}; "
                        f"memory flat within 10% (less own growth): {'yes' if flat else 'NO'}")
    for r in rows:
        for p, name in PHASES:
            lines.append(f"| {r['scale']}x | {r['words']:,} | {r['vocab']:,} | {r['distinct']:,} | {name} | "
                         f"{r[p + '_s']:.1f} | {r[p + '_s_per_m']:.2f} | "
                         f"{r[p + '_s_per_m'] / base[p + '_s_per_m']:.2f}x | "
                         f"{r[p + '_anon']:,.0f} | {r[p + '_rest_mib']:,.0f} | "
                         f"{r[p + '_rest_mib'] / base[p + '_rest_mib'] - 1:+.0%} |")
    return lines + [""] + verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--base-words", type=int, default=5_500_000)
    parser.add_argument("--ranks", type=int, default=50_000_000, help="V: the rarest possible word's rank")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", default=str(REPO / "data" / "big" / "zipf"))
    parser.add_argument("--out", default=str(REPO / "outputs" / "bench_scaling"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["prepare", "train"], help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps((child_prepare if args.mode == "prepare" else child_train)(args)))
        return 0

    data, out = Path(args.data), Path(args.out)
    data.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [args.base_words * s for s in args.scales]
    text_bytes = sum(w * BYTES_PER_WORD for w in sizes if not corpus_path(data, w, args.ranks, args.seed).exists())
    # One scale's cache at a time: provisional + final int32 ids (line ends too), then vectors.bin (~6 B a word).
    cache_bytes = 16 * max(sizes)
    same_disk = data.stat().st_dev == out.stat().st_dev
    for folder, needed in [(data, text_bytes + cache_bytes)] if same_disk else [(data, text_bytes), (out, cache_bytes)]:
        if shutil.disk_usage(folder).free < needed:
            print(f"not enough disk: {folder} needs about {needed / 1e9:.1f} GB free, "
                  f"has {shutil.disk_usage(folder).free / 1e9:.1f} GB")
            return 1

    cost = dictionary_cost()
    rows = []
    for scale, words in zip(args.scales, sizes):
        started = time.perf_counter()
        corpus = zipf_corpus(data, words, args.ranks, args.seed)
        print(f"  {scale}x: corpus {corpus.name} ready in {time.perf_counter() - started:.0f}s", flush=True)
        cache = out / f"cache-x{scale}"
        shutil.rmtree(cache, ignore_errors=True)  # a cold token-id cache
        try:
            row = {"scale": scale, "words": words, "ranks": args.ranks, **in_child("prepare", corpus, cache),
                   **in_child("train", corpus, cache)}
        finally:
            shutil.rmtree(cache, ignore_errors=True)  # 50x: ~1 GB of ids
        for p, _ in PHASES:
            row[p + "_s_per_m"] = row[p + "_s"] / (row["train_tokens"] if p == "train" else words) * 1e6
        rows.append(row)
        print(f"  {scale}x: vocabulary {row['vocab']:,}, distinct words {row['distinct']:,}; " + ", ".join(
            f"{p} {row[p + '_s']:.1f}s {row[p + '_anon']:,.0f} MiB" for p, _ in PHASES), flush=True)

    lines = report(rows, cost)
    print("\n" + "\n".join(lines))
    from w2v.atomic import write_report
    write_report(out, "bench_scaling", "\n".join(lines), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
