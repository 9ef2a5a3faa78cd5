"""Where the time of backend=fused goes on the CPU: chunk preparation, the C kernel, and its parts.

    python scripts/profile_fused.py                          # the bundled sample
    python scripts/profile_fused.py --corpus data/big/gcide.txt --threads 1

One epoch of the corpus, split as the trainer splits it. Printed:
- host preparation (subsampling + reduced windows, numpy, batches.epoch_chunks) per epoch;
- the kernel per epoch, for skip-gram and CBOW, wall and CPU seconds;
- the kernel against the number of negatives K (0, 1, 5, 10): the slope is the cost of one
  output row (a dot product, two axpys, a sigmoid, a random row fetch), the intercept the
  per-example cost (walking the window, the input row, the memsets);
- the same with a 200-word vocabulary, whose tables stay in L1/L2: the difference is the
  cost of cache misses on rows of a full-size vocabulary.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402

from w2v.backends import init_tables  # noqa: E402
from w2v.batches import epoch_chunks, keep_probability, noise_distribution  # noqa: E402
from w2v.config import DataConfig, VocabConfig  # noqa: E402
from w2v.corpus import open_corpus  # noqa: E402
from w2v.backends.fused import CPU_CHUNK_TOKENS  # noqa: E402
from w2v.kernels import load_sgns  # noqa: E402
from w2v.token_ids import load_or_build  # noqa: E402


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", action="append", default=[])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cache-dir", default=str(REPO / "data" / "cache"))
    args = parser.parse_args(argv)
    kernel = load_sgns()
    if kernel is None:
        print("error: no C kernel (no compiler?); nothing to profile", file=sys.stderr)
        return 2
    data = DataConfig(kind="files", paths=args.corpus) if args.corpus else DataConfig(kind="sample")
    vocab_cfg = VocabConfig(min_count=5, max_size=None, sample=1e-3)
    token_ids = load_or_build(open_corpus(data, Path(args.cache_dir)), vocab_cfg, Path(args.cache_dir),
                              show_progress=False, log=lambda msg: None)
    counts, n_words = token_ids.counts, len(token_ids.ids)
    keep = keep_probability(counts, 1e-3)
    alias = kernel.build_alias(noise_distribution(counts))

    chunks, prep_wall, _ = timed(lambda: list(epoch_chunks(token_ids.ids, token_ids.sentences, keep, 5,
                                                            np.random.default_rng(0), CPU_CHUNK_TOKENS)))
    print(f"corpus {n_words:,} words, vocabulary {len(counts) - 1:,}, {len(chunks)} chunks, "
          f"{args.threads} threads")
    print(f"host preparation of one epoch (subsample + windows): {prep_wall:.2f}s "
          f"({n_words / prep_wall / 1e6:.1f}M words/s on one core)")

    def epoch(cbow: bool, negative: int, vocab_size: int | None = None):
        size = vocab_size or len(counts)
        inp, out = init_tables(size, 100, seed=1)
        table = alias if vocab_size is None else kernel.build_alias(np.ones(size))
        total = 0
        for i, c in enumerate(chunks):
            ids = c.ids if vocab_size is None else c.ids % size
            total += kernel.train_chunk(cbow, inp, out, ids, c.sentence, c.window, negative, table, 0.025, 0.02,
                                        seed=i + 1, threads=args.threads)[1]
        return total

    print("\n| model | K | vocabulary | examples | wall s | CPU s | ns per example (CPU) | raw words/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for model in ("skipgram", "cbow"):
        for negative in (0, 1, 5, 10):
            for vocab_size in (None, 200):
                if vocab_size and negative != 5:
                    continue
                examples, wall, cpu = timed(lambda: epoch(model == "cbow", negative, vocab_size))
                print(f"| {model} | {negative} | {vocab_size or len(counts) - 1:,} | {examples:,} | {wall:.2f} | "
                      f"{cpu:.2f} | {cpu / examples * 1e9:.0f} | {n_words / wall / 1e6:.2f}M |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
