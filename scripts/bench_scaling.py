"""Time and memory against corpus size, tokenisation included: 1x, 10x and 50x a Zipf corpus.

    python scripts/bench_scaling.py                                   # 1x 10x 50x of 5.5M words (50x: ~1.8 GB text)
    python scripts/bench_scaling.py --base-words 200000 --scales 1 2  # smoke test, seconds
    python scripts/bench_scaling.py --scales 1 10 --runs 3 --skip-train --with-rows docs/data/bench_scaling.csv
                          # the first two phases again at 1x and 10x, medians of 3 cold runs; 50x and training kept

The corpus is generated: word ranks r = floor(V ** u), u uniform, so p(r) ~ 1/r up to V (50M),
written as "w<rank>", 25 words a line. Its long tail grows the vocabulary with the corpus as real
text does (min_count 5: 77k words at 1x, 776k at 10x, about 3.9M at 50x); distinct words grow too
(1.7M, 10M, about 27M). Files go in --data and are reused when present (written under a temp name,
then renamed).

Each scale runs two fresh processes, so no peak carries over: (1) open_corpus + load_or_build
into an empty cache folder (cold), split into its two phases by wrapping the names
w2v/token_ids.py imports: "text pass" = number_corpus (split, number and count every word: the
vocabulary pass and the encoding pass of a two-pass design, in one pass); "vocabulary + final
ids" = the rest of load_or_build (choosing the vocabulary, mapping the ids to it, building and
saving its tokenizer, opening the cache); (2) one epoch of w2v.train.run from that cache: fused
backend, skip-gram, dim 100, window 5, negative 5, 2 threads. Its time: the trainer's train_s;
its memory: the whole run, table initialisation and export included.

Time: wall seconds, and CPU seconds (process_time, every thread, plus the encoder workers): on a
shared machine wall time also measures the neighbours, CPU time much less. Linear means seconds
per million words constant: for the text and vocabulary phases, per corpus word; for training,
per in-vocabulary token (what it trains on; their share of the corpus grows with its size).
Verdict: the largest per-word cost within 15% of the smallest.

Memory: the peak anonymous memory of the phase, summed over the process and its encoder workers
(RssAnon of /proc/<pid>/status, sampled every 0.1 s, and once more at the moments of a phase's peak:
the end of the text pass, the backend's copy of the tables; on 2 cores the compiled pass starts no
workers, so no page is counted twice). The id files are memory-mapped or
written through the page cache: reclaimable file cache, not the program's memory. "Rest" is
that peak less what must grow with the vocabulary or the distinct words:
  text pass      the C table of distinct words (its slots, entries and text, read from the table),
                 the copy of their bytes with an 8-byte offset each, and their counts (8 bytes each),
                 all held at the pass's end, where it is sampled once more;
  vocabulary     the larger of: the packed distinct words with 13 bytes each of counts, id map and
                 selection (while the ids are mapped), and the tokenizer (while it is built and saved,
                 the distinct words freed);
  training       (the epoch itself, from the trainer's start to its end) the two tables (2 x vocab x
                 dim x 4 bytes), the loaded tokenizer, and 48 bytes a word of counts, noise and
                 subsampling arrays.
The tokenizer's bytes per word are measured in a separate process for the same number of words
(built from packed words and saved; loaded), as its hash tables' bytes per word change with size. The whole run's peak, set-up and export
                 included, is in the CSV (run_anon), and in the memory guard's table.
Verdict: every scale's rest within 10% of the smallest scale's.

The memory guard (w2v/memory.py) is checked against the training run: its estimate for the run
against the anonymous memory the run added from just before it allocated the tables to its peak.
Writes bench_scaling.csv and bench_scaling.md to --out (default outputs/bench_scaling/), with the
load average before and after each process.
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
CAPPED = ("capped", "training, vocabulary capped at 1x's")  # with --cap-vocab: corpus size alone
LINE_WORDS, PIECE_WORDS, DIM = 25, 5_000_000, 100
BYTES_PER_WORD = 6.5  # "w" + ~4.3 digits + separator, for the disk check
TRAIN_ARRAY_BYTES = 48  # per vocabulary word: counts, keep probabilities, two noise tables, the alias table
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


def anon_kib(pid: int | str = "self") -> int:
    """RssAnon of a process: a counter the kernel keeps. (smaps_rollup's Pss_Anon walks every page table
    entry at each read: sampled 10 times a second, it cost 11% of the text pass's CPU time at 10x.)"""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("RssAnon:")), 0)
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
        kib = anon_kib() + sum(anon_kib(pid) for pid in child_pids())
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


def tokenizer_cost(n: int) -> dict:
    """Bytes per vocabulary word (peak anonymous growth) of building and saving a tokenizer of n words
    "w<rank>" from packed words, as load_or_build does, and of loading the saved one, as training does.
    Run in a fresh process per vocabulary size: a hash table's bytes per word change with its size."""
    import tempfile

    from tokenizers import Tokenizer

    from w2v.encode import PackedWords
    from w2v.vocab import tokenizer_for_vocab

    packed = PackedWords.of(f"w{i}" for i in range(10_000_000, 10_000_000 + n))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tokenizer.json"
        before = status_kib("RssAnon")
        reset_hwm()
        tokenizer = tokenizer_for_vocab(dict(zip(packed.select(np.arange(n)), range(1, n + 1))))
        path.write_text(tokenizer.to_str(pretty=True), encoding="utf-8")
        built = status_kib("VmHWM") - status_kib("RssFile") - status_kib("RssShmem") - before
        del tokenizer
        before = status_kib("RssAnon")
        tokenizer = Tokenizer.from_file(str(path))
        loaded = status_kib("RssAnon") - before
        del tokenizer
    return {"tokenizer_built_b": built * 1024 / n, "tokenizer_loaded_b": loaded * 1024 / n}


def cpu_seconds() -> float:
    """CPU time of this process (every thread) and of its finished children (encoder workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def child_prepare(args) -> dict:
    import w2v.token_ids as token_ids
    from w2v.config import DataConfig, VocabConfig
    from w2v.corpus import open_corpus
    from w2v.kernels.words import Numbering

    sampler, marks = PeakSampler(), {"table_bytes": 0}
    number_corpus, close = token_ids.number_corpus, Numbering.close

    def timed_number_corpus(*a, **k):
        marks.update(text_start=time.perf_counter(), text_cpu0=cpu_seconds(), setup_anon=sampler.take())
        provisional = number_corpus(*a, **k)
        words = provisional.words
        marks.update(text_end=time.perf_counter(), text_cpu1=cpu_seconds(), text_anon=sampler.take(),
                     distinct=len(words) - 1, packed_bytes=len(words.text) + words.starts.nbytes)
        return provisional

    def measured_close(self):  # the pass's peak: the table, and the words, starts and counts taken from it
        if self.table:
            marks["table_bytes"] = max(marks["table_bytes"], self.allocated_bytes())
            sampler.sample()
        close(self)

    token_ids.number_corpus, Numbering.close = timed_number_corpus, measured_close
    started, cache = time.perf_counter(), Path(args.cache)
    # --repeat k: the file k times over as one corpus, min_count k times 5: the same distinct words and vocabulary.
    corpus = open_corpus(DataConfig(kind="files", paths=[args.child] * args.repeat), cache)
    ids = token_ids.load_or_build(corpus, VocabConfig(min_count=5 * args.repeat), cache, show_progress=False,
                                  log=lambda m: None)
    ended, ended_cpu = time.perf_counter(), cpu_seconds()
    return {"setup_s": marks["text_start"] - started, "text_s": marks["text_end"] - marks["text_start"],
            "text_cpu": marks["text_cpu1"] - marks["text_cpu0"], "final_s": ended - marks["text_end"],
            "final_cpu": ended_cpu - marks["text_cpu1"], "final_anon": sampler.take(), "tokens": len(ids.ids),
            "lines": len(ids.sentences) - 1, "vocab": ids.vocab_size - 1,
            **{k: marks[k] for k in ("setup_anon", "text_anon", "distinct", "table_bytes", "packed_bytes")}}


def child_train(args) -> dict:
    import w2v.train as train_module
    from w2v.config import parse_config
    from w2v.backends import BACKENDS
    from w2v.memory import estimate_bytes
    from w2v.objective import make_objective

    cfg = parse_config({
        "model": {"name": "skipgram", "dim": DIM, "window": 5, "negative": 5}, "backend": {"name": "fused"},
        "data": {"kind": "files", "paths": [args.child], "max_lines": None},
        "vocab": {"min_count": 5, "max_size": args.max_size, "sample": 1e-3},
        "train": {"epochs": 1, "lr": 0.025, "min_lr": 0.0001, "batch_size": 1024, "device": "cpu", "threads": None,
                  "seed": 1, "log_every": 1_000_000},
        "export": {"text": False, "projector_words": 0}, "evaluate": False, "cache_dir": args.cache})
    sampler, marks = PeakSampler(), {}
    init_tables, make_backend, train = train_module.init_tables, train_module.make_backend, train_module.train

    def measured_init_tables(*a, **k):  # the point where the memory guard's estimate starts
        marks["before_tables_anon"] = anon_kib() / 1024
        return init_tables(*a, **k)

    def measured_make_backend(*a, **k):  # the initial tables and the backend's copy, all four at once
        backend = make_backend(*a, **k)
        sampler.sample()
        marks["four_tables_anon"] = anon_kib() / 1024
        return backend

    def timed_train(*a, **k):
        marks["setup_anon"] = sampler.take()  # loading the cache, the tables and the backend's copy
        started = cpu_seconds()
        stats = train(*a, **k)
        marks["train_cpu"], marks["train_anon"] = cpu_seconds() - started, sampler.take()  # the epoch alone
        return stats

    train_module.init_tables, train_module.make_backend, train_module.train = (measured_init_tables,
                                                                               measured_make_backend, timed_train)
    run_dir = Path(args.cache) / f"run-max{args.max_size or 0}"  # inside the scale's cache folder: removed with it
    metrics = train_module.run(cfg, run_dir, show_progress=False)
    guard = estimate_bytes(BACKENDS["fused"], metrics["vocab_size"], DIM, make_objective("skipgram"), 1024, "cpu")
    run_anon = max(marks["setup_anon"], marks["train_anon"], sampler.take())  # export included
    return {"train_s": metrics["train_s"], "train_cpu": marks["train_cpu"], "train_anon": marks["train_anon"],
            "run_anon": run_anon,
            "before_tables_anon": marks["before_tables_anon"], "four_tables_anon": marks["four_tables_anon"],
            "guard_mib": sum(guard.values()) / MIB,
            "train_tokens": metrics["corpus_words"], "kept_words": metrics["effective_words"],
            "train_vocab": metrics["vocab_size"]}


def in_child(mode: str, corpus: Path, cache: Path, max_size: int | None = None) -> dict:
    command = [sys.executable, __file__, "--child", str(corpus), "--mode", mode, "--cache", str(cache)]
    result = subprocess.run(command + (["--max-size", str(max_size)] if max_size else []), check=True,
                            stdout=subprocess.PIPE, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def median_row(runs: list[dict]) -> dict:
    """Each measured number's median over runs of the same phase, and the spread of the two phases' CPU seconds:
    at 1x the vocabulary phase is a fifth of a CPU second, so one run's ratio to it carries the load's noise."""
    row = {key: float(np.median([r[key] for r in runs])) if isinstance(runs[0][key], float) else runs[0][key]
           for key in runs[0]}
    for key in ("text_cpu", "final_cpu"):
        row[key + "_min"], row[key + "_max"] = min(r[key] for r in runs), max(r[key] for r in runs)
    return {**row, "prepare_runs": len(runs)}


def own_growth(row: dict, phase: str) -> float:
    """MiB of the phase's peak that grow with the vocabulary or the distinct words (see the module docstring)."""
    distinct, vocab = row["distinct"] + 1, row["vocab"] + 1
    if phase in ("train", "capped"):
        vocab = row[phase + "_vocab"] + 1  # the words the run exported, and [UNK]
        loaded = row["tokenizer_loaded_b"] if phase == "train" else row["capped_tokenizer_loaded_b"]
        return (2 * vocab * DIM * 4 + (loaded + TRAIN_ARRAY_BYTES) * vocab) / MIB
    if phase == "text":
        return (row["table_bytes"] + row["packed_bytes"] + 8 * distinct) / MIB
    # The distinct words go before the tokenizer is built: the larger of the two.
    return max(row["packed_bytes"] + 13 * distinct, row["tokenizer_built_b"] * vocab) / MIB


def report(rows: list[dict]) -> list[str]:
    base = rows[0]
    lines = [f"Zipf corpus (p(r) ~ 1/r, V = {base['ranks']:,}), min_count 5; fused skip-gram, dim {DIM}, window 5, "
             f"negative 5, 1 epoch; {os.cpu_count()} cores. s / M: per million corpus words (text, vocabulary) or "
             f"in-vocabulary tokens (training). Peak anon: anonymous MiB, process + encoder workers; own growth: "
             f"what grows with the vocabulary or the distinct words (see the script's docstring); rest: peak less own "
             f"growth.", "",
             "| scale | load | words | vocabulary | distinct words | phase | wall s | s / M | vs 1x | CPU s | CPU s / M "
             "| vs 1x | peak anon MiB | own growth MiB | rest MiB | vs 1x |",
             "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    verdicts, phases = [], [(p, name) for p, name in PHASES + [CAPPED] if all(p + "_s" in r for r in rows)]
    for p, name in phases:
        for r in rows:
            r[p + "_own_mib"] = own_growth(r, p)
            r[p + "_rest_mib"] = r[p + "_anon"] - r[p + "_own_mib"]
        spread = {key: max(r[key] for r in rows) / min(r[key] for r in rows)
                  for key in (p + "_s_per_m", p + "_cpu_per_m", p + "_rest_mib")}
        verdicts.append(
            f"- {name}: wall s / M max/min {spread[p + '_s_per_m']:.2f}, CPU s / M max/min "
            f"{spread[p + '_cpu_per_m']:.2f} (linear within 15%: wall {'yes' if spread[p + '_s_per_m'] <= 1.15 else 'NO'}"
            f", CPU {'yes' if spread[p + '_cpu_per_m'] <= 1.15 else 'NO'}); rest max/min "
            f"{spread[p + '_rest_mib']:.2f} (flat within 10%: {'yes' if spread[p + '_rest_mib'] <= 1.10 else 'NO'})")
    for r in rows:
        for p, name in phases:
            vocab = r["capped_vocab"] if p == "capped" else r["vocab"]
            load = "train_load_" if p in ("train", "capped") and "train_load_before" in r else "load_"
            lines.append(f"| {r['scale']}x | {r[load + 'before']:.1f}-{r[load + 'after']:.1f} | {r['words']:,} | "
                         f"{vocab:,} | {r['distinct']:,} | {name} | {r[p + '_s']:.1f} | {r[p + '_s_per_m']:.3f} | "
                         f"{r[p + '_s_per_m'] / base[p + '_s_per_m']:.2f}x | {r[p + '_cpu']:.1f} | "
                         f"{r[p + '_cpu_per_m']:.3f} | {r[p + '_cpu_per_m'] / base[p + '_cpu_per_m']:.2f}x | "
                         f"{r[p + '_anon']:,.0f} | {r[p + '_own_mib']:,.0f} | {r[p + '_rest_mib']:,.0f} | "
                         f"{r[p + '_rest_mib'] / base[p + '_rest_mib'] - 1:+.0%} |")
    guard = ["", "Memory guard (w2v/memory.py) against the training run: its estimate, and the anonymous memory the "
                 "run added from just before it allocated the tables to its peak (set-up, the epoch and export).", "",
             "| scale | vocabulary | run peak MiB | before the tables MiB | added MiB | guard estimate MiB "
             "| estimate >= added |", "|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        added = r["run_anon"] - r["before_tables_anon"]
        guard.append(f"| {r['scale']}x | {r['vocab']:,} | {r['run_anon']:,.0f} | {r['before_tables_anon']:,.0f} | "
                     f"{added:,.0f} | {r['guard_mib']:,.0f} | {'yes' if r['guard_mib'] >= added else 'NO'} |")
    return lines + [""] + verdicts + guard


def read_rows(path: Path) -> list[dict]:
    """The rows of an earlier bench_scaling.csv, numbers as numbers."""
    import csv

    def number(text: str):
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    with open(path, newline="") as f:
        return [{key: number(value) for key, value in row.items()} for row in csv.DictReader(f)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--base-words", type=int, default=5_500_000)
    parser.add_argument("--ranks", type=int, default=50_000_000, help="V: the rarest possible word's rank")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", default=str(REPO / "data" / "big" / "zipf"))
    parser.add_argument("--out", default=str(REPO / "outputs" / "bench_scaling"))
    parser.add_argument("--with-rows", help="bench_scaling.csv of an earlier run of this script: its rows join the "
                                            "report, before this run's (to run the largest scale on its own)")
    parser.add_argument("--skip-train", action="store_true",
                        help="only the text and vocabulary phases (with --with-rows: training from the earlier rows)")
    parser.add_argument("--runs", type=int, default=1,
                        help="cold runs of the text and vocabulary phases per scale; the report gives each number's "
                             "median (and the CPU seconds' range in the CSV)")
    parser.add_argument("--cap-vocab", action="store_true",
                        help="also train each larger scale with its vocabulary capped at 1x's size (vocab.max_size): "
                             "how training time grows with the corpus alone, the tables' size fixed")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--max-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["prepare", "train", "tokenizer"], help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)  # scripts/bench_scaling_checks.py
    args = parser.parse_args(argv)
    if args.child:
        if args.mode == "tokenizer":
            print(json.dumps(tokenizer_cost(args.max_size)))
        else:
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

    earlier = {row["scale"]: row for row in read_rows(Path(args.with_rows))} if args.with_rows else {}
    rows = [row for scale, row in earlier.items() if scale not in args.scales]
    for scale, words in zip(args.scales, sizes):
        started = time.perf_counter()
        corpus = zipf_corpus(data, words, args.ranks, args.seed)
        print(f"  {scale}x: corpus {corpus.name} ready in {time.perf_counter() - started:.0f}s", flush=True)
        cache = out / f"cache-x{scale}"
        shutil.rmtree(cache, ignore_errors=True)  # a cold token-id cache
        # A scale measured again keeps from its earlier row only what this run does not measure.
        row = {**earlier.get(scale, {}), "scale": scale, "words": words, "ranks": args.ranks,
               "load_before": os.getloadavg()[0]}
        if args.skip_train and scale in earlier:  # the training rows keep the load they ran under
            row.setdefault("train_load_before", earlier[scale]["load_before"])
            row.setdefault("train_load_after", earlier[scale]["load_after"])
        try:
            prepared = []
            for _ in range(args.runs):
                shutil.rmtree(cache, ignore_errors=True)  # each run cold; the last one's cache stays for training
                prepared.append(in_child("prepare", corpus, cache))
            row.update(median_row(prepared))
            if not args.skip_train:
                row.update(in_child("train", corpus, cache))
            if args.cap_vocab and not args.skip_train:
                capped = in_child("train", corpus, cache, max_size=rows[0]["vocab"] if rows else row["vocab"])
                row.update({"capped_" + key[len("train_"):] if key.startswith("train_") else "capped_" + key: value
                            for key, value in capped.items()})
        finally:
            shutil.rmtree(cache, ignore_errors=True)  # 50x: ~1 GB of ids
        row["load_after"] = os.getloadavg()[0]
        for p, _ in PHASES + ([CAPPED] if "capped_s" in row else []):
            per = (row[p + "_tokens"] if p in ("train", "capped") else words) / 1e6
            row[p + "_s_per_m"], row[p + "_cpu_per_m"] = row[p + "_s"] / per, row[p + "_cpu"] / per
        rows.append(row)
        print(f"  {scale}x: vocabulary {row['vocab']:,}, distinct words {row['distinct']:,}; " + ", ".join(
            f"{p} {row[p + '_s']:.1f}s {row[p + '_anon']:,.0f} MiB" for p, _ in PHASES if p + "_s" in row), flush=True)

    for row in rows:  # the tokenizer's bytes per word, at each run's vocabulary size
        row.update(in_child("tokenizer", Path("-"), Path("-"), max_size=row["vocab"] + 1))
        if "capped_vocab" in row:
            row["capped_tokenizer_loaded_b"] = in_child("tokenizer", Path("-"), Path("-"),
                                                        max_size=row["capped_vocab"] + 1)["tokenizer_loaded_b"]
    rows.sort(key=lambda row: row["scale"])
    lines = report(rows)
    print("\n" + "\n".join(lines))
    from w2v.atomic import write_report
    write_report(out, "bench_scaling", "\n".join(lines), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
