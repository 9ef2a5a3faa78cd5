"""Train gensim's Word2Vec and this project side by side on the same tokens; print speed and quality.

    python scripts/compare_gensim.py                       # the bundled sample, both models
    python scripts/compare_gensim.py --corpus big.txt      # any text file (repeat --corpus for more)
    python scripts/compare_gensim.py --backend dense --models cbow --epochs 3

Both sides see identical sentences: the corpus is tokenised once by this project's
tokenizer (NFKC, lowercase, whitespace/punctuation split, min_count), and gensim is fed
those very words, decoded from the token-id cache (gensim cuts sentences at 10,000 words,
so long lines are handed to it in 10,000-word pieces). Speeds are raw words per second of
training time (corpus words x epochs / seconds in train(), tokenisation and vocabulary
excluded) with the same word count for both sides. gensim runs with workers = cores.
Both start from the same initial range: model.init_range=1.0, the project default and gensim 4's
+-1/dim (--init-range 0.5 tries word2vec.c's). gensim is told
total_words, so it decays alpha by words as w2v does. Each side starts from its own default
learning rate: gensim's alpha 0.025, w2v's train.lr (0.03; --lr 0.025 runs both at gensim's).

End to end (on by default; --no-end-to-end skips it): each side also runs the way a user
runs it, cold. w2v: `python -m w2v.train` with a fresh token-id cache, evaluate=false,
timed from launch to vectors written. gensim: build_vocab + train over LineSentence
readers of the same files (its usual way in; it splits on whitespace only, so on
raw text the two see slightly different words), timed in process, as gensim users
measure it. The ratio w2v / gensim is printed next to the training-only ratio.
The fixed cost (imports, config, kernel load: a run on a 6-word corpus) is printed apart.
Writes compare_gensim.csv and compare_gensim.md to --out.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from w2v.atomic import write_report  # noqa: E402
from w2v.config import TrainConfig, VocabConfig, W2VError, parse_config  # noqa: E402
from w2v.corpus import open_corpus  # noqa: E402
from w2v.evaluate import evaluate_vectors  # noqa: E402
from w2v.token_ids import load_or_build  # noqa: E402
from w2v.train import run  # noqa: E402
from w2v.vocab import id_to_word  # noqa: E402

FASTEST_BACKEND = "fused"
GENSIM_MAX_WORDS = 10_000  # gensim's MAX_WORDS_IN_BATCH: longer sentences are truncated
METRICS = ("analogy_acc", "ws353_spearman", "simlex_spearman")


def run_config(args, model: str, backend: str) -> dict:
    data = {"kind": "files", "paths": args.corpus} if args.corpus else {"kind": "sample"}
    return {
        "model": {"name": model, "dim": args.dim, "window": args.window, "negative": args.negative,
                  "init_range": args.init_range},
        "backend": {"name": backend}, "data": {**data, "max_lines": args.max_lines},
        "vocab": {"min_count": args.min_count, "max_size": None, "sample": args.sample,
                  "pre_tokenizer": getattr(args, "pre_tokenizer", VocabConfig.pre_tokenizer)},  # bench_hs reuses this
        "train": {"epochs": args.epochs, "lr": args.lr, "min_lr": 0.0001, "batch_size": args.batch_size,
                  "device": args.device, "threads": args.workers, "seed": args.seed, "log_every": 1_000_000},
        "export": {"text": False, "projector_words": 0}, "evaluate": True, "cache_dir": args.cache_dir,
    }


def gensim_sentences(token_ids) -> list[list[str]]:
    """The token-id cache decoded to words, one list per line, cut into gensim-sized pieces."""
    words = np.array(id_to_word(token_ids.tokenizer), dtype=object)
    ids, bounds = token_ids.ids, token_ids.sentences
    sentences = []
    for s in range(len(bounds) - 1):
        line = words[np.asarray(ids[bounds[s]:bounds[s + 1]])].tolist()
        sentences.extend(line[i:i + GENSIM_MAX_WORDS] for i in range(0, len(line), GENSIM_MAX_WORDS))
    return sentences


def train_gensim(sentences, model: str, args, corpus_words: int) -> dict:
    from gensim.models import Word2Vec

    w2v = Word2Vec(vector_size=args.dim, window=args.window, negative=args.negative, hs=0,
                   sample=args.sample, min_count=args.min_count, sg=int(model == "skipgram"), cbow_mean=1,
                   alpha=0.025, min_alpha=0.0001, workers=args.workers, seed=args.seed)
    w2v.build_vocab(sentences)
    started = time.perf_counter()
    # total_words (not total_examples) makes gensim decay alpha by words, as this project does. By
    # examples it decays by sentence count, which on a corpus mixing long and short lines (the
    # sample: long Wikipedia articles first, short Lee documents after) keeps alpha high through
    # most of the words, and is a different schedule, not the same hyperparameters.
    w2v.train(sentences, total_words=w2v.corpus_total_words, epochs=args.epochs)
    seconds = time.perf_counter() - started
    return {"system": "gensim", "model": model, "train_s": seconds,
            "words_per_sec": corpus_words * args.epochs / seconds, "vocab": len(w2v.wv),
            **evaluate_vectors(w2v.wv)}


def train_ours(args, model: str, backend: str, out_dir: Path, corpus_words: int) -> dict:
    cfg = parse_config(run_config(args, model, backend))
    run_dir = out_dir / f"w2v-{model}-{backend}"
    shutil.rmtree(run_dir, ignore_errors=True)  # this script's own previous output: a run dir must be new
    metrics = run(cfg, run_dir, show_progress=False)
    torch_path = backend == "fused" and os.environ.get("W2V_NO_C", "") not in ("", "0")
    return {"system": f"w2v {backend}" + (" (torch path, W2V_NO_C=1)" if torch_path else ""), "model": model, "train_s": metrics["train_s"],
            "words_per_sec": corpus_words * args.epochs / metrics["train_s"], "vocab": metrics["vocab_size"],
            **{k: metrics[k] for k in METRICS}}


class LineSentences:
    """gensim's LineSentence over several files, restartable (gensim reads the corpus once per epoch)."""

    def __init__(self, paths: list[str]):
        self.paths = paths

    def __iter__(self):
        from gensim.models.word2vec import LineSentence

        for path in self.paths:
            yield from LineSentence(path)


def gensim_end_to_end(model: str, args) -> float:
    """Seconds of gensim's build_vocab + train over the raw files."""
    from gensim.models import Word2Vec

    sentences = LineSentences(args.corpus)
    started = time.perf_counter()
    w2v = Word2Vec(vector_size=args.dim, window=args.window, negative=args.negative, hs=0, sample=args.sample,
                   min_count=args.min_count, sg=int(model == "skipgram"), workers=args.workers, seed=args.seed)
    w2v.build_vocab(sentences)
    w2v.train(sentences, total_examples=w2v.corpus_count, epochs=args.epochs)
    return time.perf_counter() - started


def w2v_command(paths: list[str], model: str, args, run_dir: Path, cache_dir: Path, defaults: bool) -> list[str]:
    command = [sys.executable, "-m", "w2v.train", "data=files", f"data.paths=[{','.join(paths)}]",
               f"model={model}", f"train.epochs={args.epochs}", f"train.seed={args.seed}", "evaluate=false",
               f"cache_dir={cache_dir}", f"hydra.run.dir={run_dir}", "export.projector_words=0"]
    if not defaults:
        command += [f"model.dim={args.dim}", f"model.window={args.window}", f"model.negative={args.negative}",
                    f"vocab.sample={args.sample}", f"vocab.min_count={args.min_count}",
                    f"vocab.pre_tokenizer={args.pre_tokenizer}", f"train.threads={args.workers}"]
    return command


def w2v_end_to_end(paths: list[str], model: str, args) -> float:
    """Seconds from launching `python -m w2v.train` to its exit, vectors written, with a cold token cache."""
    with tempfile.TemporaryDirectory(prefix="w2v-e2e-") as tmp:
        command = w2v_command(paths, model, args, Path(tmp) / "run", Path(tmp) / "cache", defaults=False)
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if result.returncode != 0 or not (Path(tmp) / "run" / "vectors.bin").exists():
            raise RuntimeError(f"w2v.train failed: {result.stderr[-2000:]}")
    return seconds


def fixed_cost(args, repeats: int = 3) -> float:
    """Median seconds of a whole w2v run on a 6-word corpus: imports, config, kernel load, export."""
    with tempfile.TemporaryDirectory(prefix="w2v-fixed-") as tmp:
        tiny = Path(tmp) / "tiny.txt"
        tiny.write_text("a b c a b c\n" * 4)  # no subsampling below: it would leave no pair
        times = []
        for i in range(repeats):
            command = w2v_command([str(tiny)], "skipgram", args, Path(tmp) / f"run{i}", Path(tmp) / "cache",
                                  defaults=True) + ["vocab.min_count=1", "vocab.sample=0"]
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True)
            times.append(time.perf_counter() - started)
    return float(np.median(times))


def summarise(rows: list[dict]) -> list[dict]:
    """One row per (model, system): the mean over seeds of speed and quality, and the spread of WS-353."""
    out = []
    for key in dict.fromkeys((r["model"], r["system"]) for r in rows):
        group = [r for r in rows if (r["model"], r["system"]) == key]
        keys = ("train_s", "words_per_sec", *METRICS) + (("e2e_s",) if all("e2e_s" in r for r in group) else ())
        mean = {k: float(np.mean([r[k] for r in group])) for k in keys}
        out.append({"model": key[0], "system": key[1], "seeds": len(group), **mean,
                    **{f"{k}_sd": float(np.std([r[k] for r in group], ddof=1)) if len(group) > 1 else 0.0
                       for k in METRICS}})
    return out


def table(rows: list[dict]) -> list[str]:
    """Markdown lines: each system next to the gensim row of the same model (means over seeds)."""
    head = ("| model | system | train words/s | train time vs gensim | end to end | e2e time vs gensim "
            "| analogy | Δ | WS-353 | Δ | SimLex | Δ |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = list(head)
    for row in rows:
        ref = next(r for r in rows if r["model"] == row["model"] and r["system"] == "gensim")
        deltas = [row[k] - ref[k] for k in METRICS]
        e2e = (f"{row['e2e_s']:.1f}s | {row['e2e_s'] / ref['e2e_s']:.2f}x" if "e2e_s" in row and "e2e_s" in ref
               else "- | -")
        quality = " | ".join(f"{row[k]:.4f} ± {row[k + '_sd']:.4f} | {d:+.4f}" for k, d in zip(METRICS, deltas))
        lines.append(f"| {row['model']} | {row['system']} | {row['words_per_sec'] / 1e6:.2f}M | "
                     f"{ref['words_per_sec'] / row['words_per_sec']:.2f}x | {e2e} | {quality} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", default=[], help="text file (repeatable); default: the sample")
    parser.add_argument("--backend", action="append", default=[],
                        help=f"w2v backend (repeatable); default: {FASTEST_BACKEND}, the fastest")
    parser.add_argument("--models", nargs="+", default=["skipgram", "cbow"], choices=["skipgram", "cbow"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negative", type=int, default=5)
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--init-range", type=float, default=1.0,
                        help="w2v model.init_range; 1.0 = the project default and gensim 4's +-1/dim (word2vec.c: 0.5)")
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--pre-tokenizer", choices=["punct", "whitespace"], default=VocabConfig.pre_tokenizer,
                        help="w2v's vocab.pre_tokenizer; gensim is fed the same tokens either way")
    parser.add_argument("--lr", type=float, default=TrainConfig.lr, help="w2v's train.lr (gensim keeps alpha 0.025)")
    parser.add_argument("--batch-size", type=int, default=1024, help="for the batched backends (and fused on a GPU)")
    parser.add_argument("--device", default="cpu", help="w2v's train.device: cpu | cuda | auto")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gensim workers = w2v threads")
    parser.add_argument("--seeds", type=int, default=1, help="repeat with seeds 1..N and report means")
    parser.add_argument("--max-lines", type=int, default=None)
    parser.add_argument("--cache-dir", default="data/cache")
    parser.add_argument("--out", default="outputs/compare_gensim")
    parser.add_argument("--no-end-to-end", dest="end_to_end", action="store_false",
                        help="skip the cold whole-command timings (need --corpus)")
    args = parser.parse_args(argv)
    backends = args.backend or [FASTEST_BACKEND]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    args.seed = 1
    try:
        probe = parse_config(run_config(args, args.models[0], backends[0]))
        token_ids = load_or_build(open_corpus(probe.data, Path(args.cache_dir)), probe.vocab, Path(args.cache_dir),
                                  show_progress=False, log=lambda msg: None)
    except W2VError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    corpus_words = len(token_ids.ids)
    sentences = gensim_sentences(token_ids)
    print(f"corpus: {corpus_words:,} words, {len(token_ids.sentences) - 1:,} lines, vocabulary "
          f"{token_ids.vocab_size - 1:,}; {args.epochs} epochs, {args.workers} workers/threads", flush=True)

    rows = []
    for model in args.models:
        for seed in range(1, args.seeds + 1):
            args.seed = seed
            end_to_end = args.end_to_end and bool(args.corpus)
            rows.append({**train_gensim(sentences, model, args, corpus_words), "seed": seed})
            if end_to_end:
                rows[-1]["e2e_s"] = gensim_end_to_end(model, args)
            print(f"  gensim {model} seed {seed}: train {rows[-1]['train_s']:.1f}s"
                  + (f", end to end {rows[-1]['e2e_s']:.1f}s" if end_to_end else ""), flush=True)
            for backend in backends:
                rows.append({**train_ours(args, model, backend, out_dir, corpus_words), "seed": seed})
                if end_to_end and backend == FASTEST_BACKEND:
                    rows[-1]["e2e_s"] = w2v_end_to_end(args.corpus, model, args)
                print(f"  w2v {backend} {model} seed {seed}: train {rows[-1]['train_s']:.1f}s"
                      + (f", end to end {rows[-1]['e2e_s']:.1f}s" if "e2e_s" in rows[-1] else ""), flush=True)

    startup = fixed_cost(args)
    lines = [f"corpus: {corpus_words:,} words ({', '.join(args.corpus) or 'bundled sample'}), "
             f"dim {args.dim}, window {args.window}, negative {args.negative}, sample {args.sample}, "
             f"min_count {args.min_count}, {args.epochs} epochs, {args.workers} workers, "
             f"mean ± sd of {args.seeds} seed(s); 'vs gensim' columns are time ratios (lower is faster)", "",
             *table(summarise(rows)), "",
             f"w2v fixed cost (a whole run on a 6-word corpus: imports, config, kernel load): {startup:.2f}s"]
    print("\n" + "\n".join(lines))
    write_report(out_dir, "compare_gensim", "\n".join(lines), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
