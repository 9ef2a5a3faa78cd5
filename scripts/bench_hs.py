"""Hierarchical softmax (model.loss=hs) against gensim's (hs=1, negative=0): quality and speed, same tokens.

    python scripts/bench_hs.py                                             # the bundled sample
    python scripts/bench_hs.py --corpus data/big/tech-clean.txt --corpus sample --seeds 3

For each corpus (a text file, or `sample` for the bundled one), each model (skip-gram, CBOW) and
each seed: gensim's Word2Vec with hs=1, negative=0 and this project's backend=fused with
model.loss=hs, on identical sentences (scripts/compare_gensim.py's decoding of the token-id
cache), the same epochs, dim, window, sample and min_count, gensim workers = w2v threads.
Quality: analogy, WS-353 and SimLex (w2v/evaluate.py, the same for both); speed: corpus words
x epochs / seconds in training (tokenisation excluded). Each row records the 1-minute load average
before and after its run, since a busy machine slows whichever side it hits.
--same-tree adds a third row per model: gensim trained on w2v's Huffman tree (w2v/huffman.py's codes and
points handed to gensim in place of its own). Every tree of these counts gives the same code lengths, but
which equal-count words end up siblings differs, and that choice moves the quality of either trainer
by more than its seeds do (docs/performance.md, "Hierarchical softmax", session 18). The third row
separates the two: gensim's own tree against gensim on w2v's is the tree; that row against w2v is the trainer.
--one-worker-gensim adds gensim with 1 worker. gensim's workers write the shared inner-node rows with no lock
and every hs example writes the root, so with several workers some of those writes are lost, which moves
gensim's figures (tech-clean skip-gram, 5 epochs: analogy +0.5 points, WS-353 -0.016 with 2 workers against 1);
w2v's threads lose no update, like one gensim worker (docs/performance.md, "Hierarchical softmax", session 19).
Prints a table (mean ± sd over seeds; time ratio w2v / gensim; each figure's difference from gensim's own row
with Welch's t, where |t| < 2 is within seed noise) and writes bench_hs.md / bench_hs.csv to --out. Epochs
default to the project's train.epochs, so the table measures the defaults.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from compare_gensim import METRICS, gensim_sentences, run_config, summarise  # noqa: E402

from w2v.atomic import write_report  # noqa: E402
from w2v.config import W2VError, parse_config  # noqa: E402
from w2v.corpus import open_corpus  # noqa: E402
from w2v.evaluate import evaluate_vectors  # noqa: E402
from w2v.huffman import build_huffman  # noqa: E402
from w2v.token_ids import load_or_build  # noqa: E402
from w2v.vocab import id_to_word  # noqa: E402
from w2v.config import TrainConfig  # noqa: E402
from w2v.train import run  # noqa: E402


def load() -> float:
    return os.getloadavg()[0]


def hs_config(args, model: str) -> dict:
    config = run_config(args, model, "fused")
    config["model"]["loss"] = "hs"
    return config


def hand_tree_to_gensim(gensim_model, token_ids) -> None:
    """Replace gensim's Huffman codes and points with w2v's tree over the same counts, word by word.

    w2v's vocabulary has one word more than gensim's, the count-0 [UNK] at id 0 (w2v/vocab.py), a leaf of
    w2v's tree that no training example reaches; w2v's V-1 inner nodes are then exactly gensim's V_gensim
    rows of syn1, so points index gensim's output table as they do w2v's."""
    tree = build_huffman(np.asarray(token_ids.counts))
    if len(gensim_model.syn1) != len(tree.lengths) - 1:
        raise W2VError(f"gensim kept {len(gensim_model.syn1)} words, w2v {len(tree.lengths) - 1}: not the same vocabulary")
    ids = {word: i for i, word in enumerate(id_to_word(token_ids.tokenizer))}
    for index, word in enumerate(gensim_model.wv.index_to_key):
        i = ids[word]
        length = tree.lengths[i]
        gensim_model.wv.set_vecattr(index, "code", tree.codes[i, :length].astype(np.uint8))
        gensim_model.wv.set_vecattr(index, "point", tree.points[i, :length].astype(np.uint32))


def train_gensim_hs(sentences, model: str, args, corpus_words: int, tree_of=None, workers: int | None = None) -> dict:
    """gensim hs=1, negative=0; with tree_of (a token-id cache), on w2v's Huffman tree of its counts;
    workers: gensim's worker threads (default args.workers)."""
    from gensim.models import Word2Vec

    before = load()
    workers = args.workers if workers is None else workers
    w2v = Word2Vec(vector_size=args.dim, window=args.window, hs=1, negative=0, sample=args.sample,
                   min_count=args.min_count, sg=int(model == "skipgram"), cbow_mean=1, alpha=0.025,
                   min_alpha=0.0001, workers=workers, seed=args.seed)
    w2v.build_vocab(sentences)
    if tree_of is not None:
        hand_tree_to_gensim(w2v, tree_of)
    started = time.perf_counter()
    w2v.train(sentences, total_words=w2v.corpus_total_words, epochs=args.epochs)  # alpha decays by words, as ours
    seconds = time.perf_counter() - started
    system = ("gensim hs" if tree_of is None else "gensim hs, w2v's tree") + \
        (f", {workers} worker" if workers != args.workers else "")
    return {"system": system, "model": model, "train_s": seconds, "words_per_sec": corpus_words * args.epochs / seconds,
            "vocab": len(w2v.wv), "load_before": before, "load_after": load(), **evaluate_vectors(w2v.wv)}


def train_ours_hs(args, model: str, out_dir: Path, corpus_words: int) -> dict:
    cfg = parse_config(hs_config(args, model))
    run_dir = out_dir / f"w2v-{model}-hs"
    shutil.rmtree(run_dir, ignore_errors=True)  # this script's own previous output: a run dir must be new
    before = load()
    metrics = run(cfg, run_dir, show_progress=False)
    return {"system": "w2v fused hs", "model": model, "train_s": metrics["train_s"],
            "words_per_sec": corpus_words * args.epochs / metrics["train_s"], "vocab": metrics["vocab_size"],
            "load_before": before, "load_after": load(), **{k: metrics[k] for k in METRICS}}


def welch_t(row: dict, ref: dict, key: str) -> float:
    """(row mean - ref mean) / its standard error, each side's seed sd over its own seeds (Welch's t)."""
    se = np.sqrt(row[key + "_sd"] ** 2 / row["seeds"] + ref[key + "_sd"] ** 2 / ref["seeds"])
    return (row[key] - ref[key]) / se if se > 0 else float("nan")


def table(rows: list[dict]) -> list[str]:
    """Markdown lines. Each figure of a non-gensim row carries its difference from gensim's own row and
    Welch's t: |t| < 2 is within seed noise (about a 5 % two-sided test at 6 or more seeds a side)."""
    lines = ["| corpus | model | system | train words/s | w2v speed vs gensim | analogy | WS-353 | SimLex | load 1-min |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        ref = next(r for r in rows if (r["corpus"], r["model"], r["system"]) == (row["corpus"], row["model"], "gensim hs"))
        speed = f"{row['words_per_sec'] / ref['words_per_sec']:.2f}x" if row is not ref else "1"
        quality = " | ".join(f"{row[k]:.4f} ± {row[k + '_sd']:.4f}" + (
            "" if row is ref else f" ({row[k] - ref[k]:+.4f}, t {welch_t(row, ref, k):+.1f})") for k in METRICS)
        lines.append(f"| {row['corpus']} | {row['model']} | {row['system']} | {row['words_per_sec'] / 1e6:.3f}M | "
                     f"{speed} | {quality} | {row['load_min']:.1f}-{row['load_max']:.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", default=[],
                        help="text file, or 'sample' for the bundled corpus (repeatable); default: sample")
    parser.add_argument("--models", nargs="+", default=["skipgram", "cbow"], choices=["skipgram", "cbow"])
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs, help="default: the project's train.epochs")
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr,
                        help="w2v's train.lr (default: the project's; gensim keeps alpha 0.025)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gensim workers = w2v threads")
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds 1..N; the table gives mean ± sd and Welch's t against gensim (use 6+ to judge noise)")
    parser.add_argument("--max-lines", type=int, default=None)
    parser.add_argument("--cache-dir", default="data/cache")
    parser.add_argument("--same-tree", action="store_true",
                        help="also train gensim on w2v's Huffman tree (a third row per model: tree against trainer)")
    parser.add_argument("--one-worker-gensim", action="store_true",
                        help="add gensim with 1 worker: its updates in order, as w2v's (see the module docstring)")
    parser.add_argument("--out", default="outputs/bench_hs")
    args = parser.parse_args(argv)
    # compare_gensim's run_config reads these; hs ignores negatives, the fused C kernel the batch size
    args.negative, args.init_range, args.batch_size, args.device, args.seed = 5, 1.0, 1024, "cpu", 1
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    rows, summary = [], []
    for corpus in args.corpus or ["sample"]:
        args.corpus = [] if corpus == "sample" else [corpus]  # run_config: no files = the bundled sample
        try:
            probe = parse_config(hs_config(args, args.models[0]))
            token_ids = load_or_build(open_corpus(probe.data, Path(args.cache_dir)), probe.vocab,
                                      Path(args.cache_dir), show_progress=False, log=lambda msg: None)
        except W2VError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        corpus_words, name = len(token_ids.ids), Path(corpus).name
        sentences = gensim_sentences(token_ids)
        print(f"{name}: {corpus_words:,} words, vocabulary {token_ids.vocab_size - 1:,}; {args.epochs} epochs, "
              f"{args.workers} workers/threads", flush=True)
        corpus_rows = []
        for model in args.models:
            for seed in range(1, args.seeds + 1):
                args.seed = seed
                runs = [lambda: train_gensim_hs(sentences, model, args, corpus_words)]
                if args.same_tree:
                    runs.append(lambda: train_gensim_hs(sentences, model, args, corpus_words, tree_of=token_ids))
                if args.one_worker_gensim and args.workers != 1:
                    runs.append(lambda: train_gensim_hs(sentences, model, args, corpus_words, workers=1))
                runs.append(lambda: train_ours_hs(args, model, out_dir, corpus_words))
                for run_one in runs:
                    row = run_one()
                    corpus_rows.append({**row, "corpus": name, "corpus_words": corpus_words, "seed": seed})
                    print(f"  {row['system']} {model} seed {seed}: {row['train_s']:.1f}s, "
                          f"{row['words_per_sec'] / 1e6:.3f}M words/s, analogy {row['analogy_acc']:.4f}, "
                          f"load {row['load_before']:.1f}->{row['load_after']:.1f}", flush=True)
        for group in summarise(corpus_rows):
            loads = [r[k] for r in corpus_rows if (r["model"], r["system"]) == (group["model"], group["system"])
                     for k in ("load_before", "load_after")]
            summary.append({**group, "corpus": name, "load_min": min(loads), "load_max": max(loads)})
        rows += corpus_rows

    lines = [f"hierarchical softmax, w2v backend=fused model.loss=hs vs gensim hs=1 negative=0: dim {args.dim}, "
             f"window {args.window}, sample {args.sample}, min_count {args.min_count}, {args.epochs} epochs, "
             f"{args.workers} workers, w2v train.lr {args.lr:g} against gensim's alpha 0.025, mean ± sd of "
             f"{args.seeds} seed(s); speed = train words/s ratio (higher: w2v "
             f"faster)", "", *table(summary)]
    print("\n" + "\n".join(lines))
    write_report(out_dir, "bench_hs", "\n".join(lines), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
