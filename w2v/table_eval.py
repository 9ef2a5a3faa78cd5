"""w2v/evaluate.py's figures (analogy, WordSim-353, SimLex-999) of a table in memory, fast enough to run while training.

gensim's `evaluate_word_analogies` asks `most_similar` once per question: about 3 s for the 4,391
questions the sample's vocabulary answers. Here all questions go through one matrix product per block
of questions (0.1 s). The rules are gensim's, so the figures are its figures (tests/test_table_eval.py):
the export order (most frequent first), its first 300,000 words, words compared upper-cased (the first,
most frequent, word of each upper-cased form stands for it), 3CosAdd over unit vectors, the question's
three words never the answer, questions and pairs with an unknown word skipped, Spearman's rho with
tied ranks averaged. Only exact ties between two candidate words could be broken differently.

The benchmark files are read from gensim's test data without importing gensim (a second).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .export import export_rows

RESTRICT_VOCAB = 300_000  # gensim's restrict_vocab default for analogies and word pairs
ANALOGIES = "questions-words.txt"
PAIRS = {"ws353": "wordsim353.tsv", "simlex": "simlex999.txt"}
# Question x word scores held at once (16 MB of float32), in one buffer kept between calls: a fresh
# one each block would be page-faulted in again every time (a third of the time on the sample).
SCORES_PER_BLOCK = 1 << 22


def gensim_test_data(name: str) -> Path:
    """A file of gensim's test data (where gensim.test.utils.datapath points), found without importing gensim."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("gensim is not installed: its test data holds the evaluation sets")
    return Path(spec.origin).parent / "test" / "test_data" / name


def read_analogies(path: Path) -> list[tuple[str, str, str, str]]:
    """The questions of a questions-words file, upper-cased; section lines and malformed lines skipped."""
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if not line.startswith(": ") and len(words) == 4:
            questions.append(tuple(w.upper() for w in words))
    return questions


def read_pairs(path: Path) -> list[tuple[str, str, float]]:
    """(WORD, WORD, similarity) of a tab-separated pairs file; comments and malformed lines skipped."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if not line or line.startswith("#") or len(parts) != 3:
            continue
        try:
            pairs.append((parts[0].upper(), parts[1].upper(), float(parts[2])))
        except ValueError:
            continue
    return pairs


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing their mean rank (scipy's rankdata 'average')."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def spearman(gold: np.ndarray, model: np.ndarray) -> float:
    """Spearman's rho; 0.0 where it is undefined (fewer than two pairs, or a constant side), as evaluate.py says."""
    if len(gold) < 2:
        return 0.0
    a, b = average_ranks(gold) - (len(gold) + 1) / 2, average_ranks(model) - (len(gold) + 1) / 2
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


class TableEvaluator:
    """Built once for a vocabulary (its words and counts); called with the input table as it trains."""

    def __init__(self, words: list[str], counts: np.ndarray):
        self.rows = export_rows(words, counts)[:RESTRICT_VOCAB]
        upper = [words[i].upper() for i in self.rows]
        first: dict[str, int] = {}
        for k in range(len(upper) - 1, -1, -1):  # the most frequent row of each upper-cased form wins
            first[upper[k]] = k
        self.canonical = np.array([first[w] for w in upper], dtype=np.int64)
        questions = read_analogies(gensim_test_data(ANALOGIES))
        self.questions = np.array([[first[w] for w in q] for q in questions if all(w in first for w in q)],
                                  dtype=np.int64).reshape(-1, 4)
        self._scores = None  # the scores buffer, made on first use
        self.pairs = {}
        for name, file in PAIRS.items():
            pairs = read_pairs(gensim_test_data(file))
            known = [(first[a], first[b], sim) for a, b, sim in pairs if a in first and b in first]
            oov = (len(pairs) - len(known)) / len(pairs) if pairs else 1.0
            self.pairs[name] = (np.array([p[:2] for p in known], dtype=np.int64).reshape(-1, 2),
                                np.array([p[2] for p in known], dtype=np.float64), oov)

    def __call__(self, table) -> dict[str, float]:
        """{'analogy_acc', 'ws353_spearman', 'ws353_oov_ratio', 'simlex_spearman', 'simlex_oov_ratio'} of a
        (V, D) table (numpy or torch, indexed by id); the table is only read."""
        if hasattr(table, "detach"):  # a torch table, perhaps on a GPU: only the evaluated rows come over
            import torch

            vectors = table.detach()[torch.as_tensor(self.rows, device=table.device)].float().cpu().numpy()
        else:
            vectors = np.asarray(table[self.rows], dtype=np.float32)  # a copy: indexing with an array
        with np.errstate(divide="ignore", invalid="ignore"):
            unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        figures = {"analogy_acc": self.analogy(unit)}
        for name, (index, gold, oov) in self.pairs.items():
            model = (unit[index[:, 0]] * unit[index[:, 1]]).sum(axis=1).astype(np.float64)
            figures[f"{name}_spearman"] = spearman(gold, model)
            figures[f"{name}_oov_ratio"] = oov
        return figures

    def analogy(self, unit: np.ndarray) -> float:
        """Share of the questions whose best-scoring word (3CosAdd), other than their three, is the answer."""
        if not len(self.questions):
            return 0.0
        correct, block = 0, max(1, SCORES_PER_BLOCK // len(unit))
        if self._scores is None or self._scores.shape[1] != len(unit):
            self._scores = np.empty((min(block, len(self.questions)), len(unit)), dtype=np.float32)
        for lo in range(0, len(self.questions), block):
            a, b, c, expected = self.questions[lo:lo + block].T
            # gensim scores by the unit mean of (b, c, -a): the same order as the plain sum.
            scores = np.matmul(unit[b] + unit[c] - unit[a], unit.T, out=self._scores[:len(a)])
            rows = np.arange(len(a))
            for given in (a, b, c):
                scores[rows, given] = -np.inf
            best = scores.argmax(axis=1)
            # Another word with the upper-cased form of one of the three is not an answer either (rare).
            while (clash := np.flatnonzero((self.canonical[best][:, None] == np.stack([a, b, c], 1)).any(1))).size:
                scores[clash, best[clash]] = -np.inf
                best[clash] = scores[clash].argmax(axis=1)
            correct += int((self.canonical[best] == expected).sum())
        return correct / len(self.questions)
