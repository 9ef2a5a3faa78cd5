"""Intrinsic evaluation with the files that ship in gensim.

    python -m w2v.evaluate PATH/vectors.bin

prints analogy accuracy (questions-words.txt, restricted to the 300,000 most
frequent words as gensim does), and the Spearman correlation on WordSim-353
and SimLex-999 (pairs with an unknown word are skipped, and their share reported).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gensim.models import KeyedVectors
from gensim.test.utils import datapath

from .cli import user_errors
from .errors import W2VError, first_line


def _word_pairs(kv: KeyedVectors, name: str):
    """gensim's (pearson, spearman, oov%), or zeros when no pair is in the vocabulary (tiny corpora)."""
    try:
        return kv.evaluate_word_pairs(datapath(name))
    except ValueError:
        return (float("nan"), 1.0), (float("nan"), 1.0), 100.0


def evaluate_vectors(kv: KeyedVectors) -> dict[str, float]:
    """{'analogy_acc', 'ws353_spearman', 'simlex_spearman', ...} for a KeyedVectors."""
    logging.getLogger("gensim").setLevel(logging.ERROR)
    try:
        analogy, _sections = kv.evaluate_word_analogies(datapath("questions-words.txt"))
    except (ValueError, ZeroDivisionError):  # no question has all four words in the vocabulary
        analogy = 0.0
    ws = _word_pairs(kv, "wordsim353.tsv")
    simlex = _word_pairs(kv, "simlex999.txt")

    def spearman(result) -> float:
        value = float(result[1][0])
        return value if value == value else 0.0  # NaN when too few pairs are known

    return {
        "analogy_acc": float(analogy),
        "ws353_spearman": spearman(ws),
        "ws353_oov_ratio": float(ws[2]) / 100.0,
        "simlex_spearman": spearman(simlex),
        "simlex_oov_ratio": float(simlex[2]) / 100.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2v.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="vectors in word2vec format (.bin binary, anything else text)")
    args = parser.parse_args(argv)
    with user_errors():
        kv = read_vectors(Path(args.path))
    metrics = evaluate_vectors(kv)
    print(f"vectors          {len(kv)} x {kv.vector_size}")
    print(f"analogy accuracy {metrics['analogy_acc']:.4f}")
    print(f"WordSim-353      {metrics['ws353_spearman']:.4f}  (oov {metrics['ws353_oov_ratio']:.0%})")
    print(f"SimLex-999       {metrics['simlex_spearman']:.4f}  (oov {metrics['simlex_oov_ratio']:.0%})")
    return 0


def read_vectors(path: Path) -> KeyedVectors:
    """A word2vec-format file (.bin binary, anything else text); one-line errors for a missing or bad one."""
    if not path.is_file():
        raise W2VError(f"no such vectors file: {path}")
    try:
        return KeyedVectors.load_word2vec_format(str(path), binary=path.suffix == ".bin")
    except Exception as exc:  # gensim raises assorted errors on a malformed file
        raise W2VError(f"cannot read {path} as word2vec format: {first_line(exc)}") from exc


if __name__ == "__main__":
    sys.exit(main())
