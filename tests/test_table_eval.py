"""The figures logged while training (w2v/table_eval.py) are gensim's figures (w2v/evaluate.py) for the same table."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from w2v.evaluate import evaluate_vectors
from w2v.export import to_keyed_vectors
from w2v.table_eval import ANALOGIES, PAIRS, TableEvaluator, average_ranks, gensim_test_data, read_analogies, \
    read_pairs

FIGURES = ("analogy_acc", "ws353_spearman", "ws353_oov_ratio", "simlex_spearman", "simlex_oov_ratio")


def planted_table(seed: int, noise: float) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(words, counts, table) over the benchmark words, with each analogy pair's offset planted.

    Pairs (a, b) of a question share their section's offset, so 3CosAdd answers part of the questions:
    a word in several pairs (a country with a capital and a currency) keeps its first placement only,
    and the noise decides the rest. Some words come twice, the capitalised copy rarer, which gensim
    (and the evaluator) fold into the lower-case word's upper-cased form; the table has an [UNK] row 0.
    """
    rng = np.random.default_rng(seed)
    questions = read_analogies(gensim_test_data(ANALOGIES))
    pair_words = {w for name in PAIRS.values() for a, b, _ in read_pairs(gensim_test_data(name)) for w in (a, b)}
    vocab = sorted({w.lower() for q in questions for w in q} | {w.lower() for w in pair_words})
    vocab = [w for w in vocab if rng.random() < 0.8]  # some questions and pairs unknown
    dim = 32
    vectors = {w: rng.normal(size=dim) for w in vocab}
    placed, offsets = set(), {}
    for a, b, _, _ in questions:
        a, b = a.lower(), b.lower()
        if a in vectors and b in vectors and b not in placed:
            section = offsets.setdefault((len(a) + len(b)) % 5, rng.normal(size=dim) * 2)
            vectors[b] = vectors[a] + section + rng.normal(size=dim) * noise
            placed.add(b)
    capitalised = [w.capitalize() for w in vocab[::40]]
    words = ["[UNK]", *vocab, *capitalised]
    table = np.stack([np.zeros(dim), *(vectors[w] for w in vocab), *rng.normal(size=(len(capitalised), dim))])
    counts = np.concatenate([[0], rng.integers(100, 10_000, len(vocab)), rng.integers(1, 100, len(capitalised))])
    return words, counts, table.astype(np.float32)


@pytest.mark.parametrize("seed, noise", [(0, 0.5), (1, 1.5)])
def test_figures_equal_gensims(seed, noise):
    words, counts, table = planted_table(seed, noise)
    expected = evaluate_vectors(to_keyed_vectors(words, table, counts))
    evaluator = TableEvaluator(words, counts)
    for given in (table, torch.from_numpy(table)):
        got = evaluator(given)
        assert got["analogy_acc"] == expected["analogy_acc"]
        for key in FIGURES[1:]:
            assert got[key] == pytest.approx(expected[key], abs=1e-9)
    assert 0.1 < got["analogy_acc"] < 0.9  # some questions right, some wrong: the count is what is compared
    assert len(evaluator.questions) > 1000 and got["ws353_oov_ratio"] > 0.1
    assert abs(got["ws353_spearman"]) > 0 and abs(got["simlex_spearman"]) > 0


def test_no_benchmark_word_gives_evaluates_zeros():
    words, counts, table = ["[UNK]", "qqq", "zzz"], np.array([0, 5, 3]), np.eye(3, dtype=np.float32)
    got = TableEvaluator(words, counts)(table)
    assert got == pytest.approx(evaluate_vectors(to_keyed_vectors(words, table, counts)))
    assert got == {"analogy_acc": 0.0, "ws353_spearman": 0.0, "ws353_oov_ratio": 1.0, "simlex_spearman": 0.0,
                   "simlex_oov_ratio": 1.0}


def test_average_ranks_share_ties():
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0])).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]
