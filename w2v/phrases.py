"""Phrases: pairs of words that occur together far more often than chance become one token.

As word2vec.c's word2phrase and gensim's `Phrases` do, and with gensim's conventions, so that
the same settings find the same phrases (tests/test_phrases.py compares them):
- a pass counts every word and every pair of neighbours inside a line (a pair never crosses a line end);
- a pair (a, b) is scored as gensim's `original_scorer`:
      (count(ab) - min_count) * N / (count(a) * count(b)),
  N being gensim's len_vocab, the number of distinct words plus distinct pairs seen in the pass
  (word2vec.c multiplies by the number of words in the corpus instead, so its thresholds are larger),
  or as gensim's `npmi_scorer`, for pairs seen at least min_count times, with p(x) = count(x) / tokens:
      ln(p(ab) / (p(a) p(b))) / -ln(p(ab)), in [-1, 1];
- only words join: a token without a letter or digit (a punctuation run of vocab.pre_tokenizer=punct,
  such as "(" or ".)") is never part of a phrase, as in word2vec.c, where punctuation sticks to the
  words around it; gensim joins whatever tokens it is given, so on such tokens it would join ";_" or "(_b_)";
- a pair scoring above the threshold is a phrase; the text is then rewritten left to right, each
  occurrence of a phrase becoming one token "a_b" (a word joined to its left neighbour cannot start a
  phrase with its right one: "a b c" with both pairs phrases gives a_b c, as gensim's);
- the next pass runs on the rewritten text, so that two passes can join new_york and times.

It runs on the provisional id stream of w2v/encode.py, after the text pass and before the
vocabulary is chosen, so the text is read once whatever the passes, phrase tokens are
chosen for the vocabulary by their counts like any word, and the id cache holds the result.
Each pass reads the stream in pieces of 16M ids (a line may span pieces) and writes the rewritten
one beside it: the memory is the pair table, 16-byte slots kept at most half full, so 32-64 bytes a
distinct pair (64 MB for the 1.5M pairs of a 6M-word corpus), as gensim keeps every distinct pair too.
The pairs are counted by w2v/kernels/phrases.c; without a C compiler, by numpy (same result, slower).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .config import PhrasesConfig
from .encode import LINE_END_ID, PackedWords, ProvisionalIds

PIECE = 1 << 24  # ids read at a time
JOINER = "_"
# Bump when the phrases found for the same settings change: it keys the token-id cache.
RULES_VERSION = 1
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")


@dataclass
class PassStats:
    pairs: int  # distinct pairs counted
    phrases: int  # pairs scored above the threshold
    joined: int  # occurrences rewritten as one token
    tokens_in: int  # words before the pass (line ends not counted)
    seconds: float


def scores(pair_counts: np.ndarray, counts_a: np.ndarray, counts_b: np.ndarray, distinct: int, tokens: int,
           cfg: PhrasesConfig) -> np.ndarray:
    """The score of each pair (float64; -inf: never a phrase), from its count and its words' counts.

    distinct: gensim's len_vocab (distinct words + distinct pairs); tokens: words in the stream.
    """
    pair_counts, counts_a, counts_b = (np.asarray(x, dtype=np.float64) for x in (pair_counts, counts_a, counts_b))
    if cfg.scoring == "npmi":
        with np.errstate(divide="ignore", invalid="ignore"):
            p_ab, p_a, p_b = pair_counts / tokens, counts_a / tokens, counts_b / tokens
            npmi = np.log(p_ab / (p_a * p_b)) / -np.log(p_ab)
        # A pair that is its words' every occurrence in a one-pair text has p(ab) = 1: ln 1 / -ln 1 is nan.
        return np.where((pair_counts >= cfg.min_count) & np.isfinite(npmi), npmi, -np.inf)
    return (pair_counts - cfg.min_count) / (counts_a * counts_b) * distinct


def joinable(words: list[str]) -> np.ndarray:
    """(len(words),) bool: which words may be part of a phrase (those holding a letter or a digit)."""
    return np.fromiter((_LETTER_OR_DIGIT.search(word) is not None for word in words), bool, len(words))


def find_phrases(a: np.ndarray, b: np.ndarray, pair_counts: np.ndarray, counts: np.ndarray,
                 cfg: PhrasesConfig, may_join: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, score) of the pairs scoring above cfg.threshold, sorted by (a, b).

    a, b: every distinct pair of the pass; counts: the count of each id (counts[LINE_END_ID] ignored);
    may_join: which ids may be part of a phrase (None: all). Every pair counts in gensim's N all the same.
    """
    words = counts.copy()
    words[LINE_END_ID] = 0
    distinct = int(np.count_nonzero(words)) + len(a)
    score = scores(pair_counts, words[a], words[b], distinct, int(words.sum()), cfg)
    above = score > cfg.threshold
    if may_join is not None:
        above &= may_join[a] & may_join[b]
    keep = np.flatnonzero(above)
    order = keep[np.lexsort((b[keep], a[keep]))]
    return a[order], b[order], score[order]


def phrase_ids(words: list[str], a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(the id of each phrase "a_b", the words new to the numbering): ids from len(words) on,
    but a phrase spelled like a word already numbered (a word holding "_", or the same phrase
    from two pairs: new_york + times, new + york_times) shares its id."""
    index = {word: i for i, word in enumerate(words)}
    new: list[str] = []
    ids = np.empty(len(a), np.int32)
    for k, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        text = words[x] + JOINER + words[y]
        if text not in index:
            index[text] = len(words) + len(new)
            new.append(text)
        ids[k] = index[text]
    return ids, new


def _pieces(path: Path) -> Iterator[np.ndarray]:
    with open(path, "rb") as f:
        while len(part := np.fromfile(f, dtype=np.int32, count=PIECE)):
            yield part


def join_phrases(provisional: ProvisionalIds, cfg: PhrasesConfig, kernel=None,
                 log=lambda message: None) -> tuple[ProvisionalIds, list[PassStats]]:
    """cfg.passes passes of phrase detection over the stream; returns it rewritten (the input file is
    removed) and each pass's numbers. kernel: w2v.kernels.load_phrases(), or None for numpy."""
    # The passes add words to the numbering, so they hold it as strings (the text pass packs it to save memory;
    # phrases are opt-in and their cost is the distinct words' strings for the length of the passes).
    words = provisional.words.tolist()
    stats, may_join = [], joinable(words)
    for number in range(1, cfg.passes + 1):
        started = time.perf_counter()
        a, b, pair_counts = (_count_compiled(provisional.path, kernel) if kernel is not None
                             else _count_numpy(provisional.path))
        a, b, score = find_phrases(a, b, pair_counts, provisional.counts, cfg, may_join)
        joined_ids, new_words = phrase_ids(words, a, b)
        words = words + new_words
        may_join = np.concatenate([may_join, np.ones(len(new_words), bool)])  # a phrase holds words
        out_path = provisional.path.with_name(f"{provisional.path.stem}.phrases{number}.int32")
        join = _join_compiled if kernel is not None else _join_numpy
        counts, tokens = join(provisional.path, out_path, a, b, joined_ids, len(words), kernel)
        tokens_in = int(provisional.counts.sum() - provisional.counts[LINE_END_ID])
        joined = tokens_in - int(counts.sum() - counts[LINE_END_ID])
        stats.append(PassStats(pairs=len(pair_counts), phrases=len(a), joined=joined, tokens_in=tokens_in,
                               seconds=time.perf_counter() - started))
        provisional.path.unlink()
        provisional = ProvisionalIds(path=out_path, words=PackedWords.of(words), counts=counts, tokens=tokens)
        log(f"phrases pass {number}: {len(a):,} of {stats[-1].pairs:,} pairs scored above "
            f"{cfg.threshold:g}; {joined:,} joined in the text ({stats[-1].seconds:.1f}s, "
            f"{tokens_in / max(stats[-1].seconds, 1e-9) / 1e6:.1f}M words/s)")
    return provisional, stats


def _count_compiled(path: Path, kernel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with kernel.table() as table:
        for part in _pieces(path):
            table.count(part)
        return table.items()


def _join_compiled(path: Path, out_path: Path, a, b, joined_ids, n_ids: int, kernel) -> tuple[np.ndarray, int]:
    counts, tokens = np.zeros(n_ids, np.int64), 0
    with kernel.table() as table, open(out_path, "wb") as out:
        table.set(a, b, joined_ids.astype(np.int64))
        pieces = _pieces(path)
        part = next(pieces, np.zeros(0, np.int32))
        while True:  # one piece ahead, to know which is the last
            following = next(pieces, None)
            rewritten = table.join(part, counts, final=following is None)
            out.write(rewritten.tobytes())
            tokens += len(rewritten)
            if following is None:
                return counts, tokens
            part = following


def _pair_keys(ids: np.ndarray) -> np.ndarray:
    """(a << 32) | b of each neighbour pair of ids, as int64 (ids are below 2**31)."""
    return (ids[:-1].astype(np.int64) << 32) | ids[1:].astype(np.int64)


def _count_numpy(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keys, totals = np.zeros(0, np.int64), np.zeros(0, np.int64)
    last = np.full(1, LINE_END_ID, np.int32)
    for part in _pieces(path):
        ids = np.concatenate([last, part])
        pair_keys = _pair_keys(ids)
        pair_keys = pair_keys[(ids[:-1] != LINE_END_ID) & (ids[1:] != LINE_END_ID)]
        merged, where = np.unique(np.concatenate([keys, pair_keys]), return_inverse=True)
        totals = np.bincount(where, weights=np.concatenate([totals, np.ones(len(pair_keys), np.int64)]),
                             minlength=len(merged)).astype(np.int64)
        keys, last = merged, part[-1:]
    return (keys >> 32).astype(np.int32), (keys & 0xFFFFFFFF).astype(np.int32), totals


def _join_numpy(path: Path, out_path: Path, a, b, joined_ids, n_ids: int, kernel=None) -> tuple[np.ndarray, int]:
    """The same rewrite as phrases.c's w2v_pairs_join, a piece at a time with the last token held back."""
    order = np.argsort(_pair_keys_of(a, b))
    phrase_keys, phrase_of = _pair_keys_of(a, b)[order], joined_ids[order]
    counts, tokens = np.zeros(n_ids, np.int64), 0
    pending = np.zeros(0, np.int32)
    with open(out_path, "wb") as out:
        for part in _pieces(path):
            ids = np.concatenate([pending, part])
            keys = _pair_keys(ids)
            if len(phrase_keys):
                at = np.minimum(np.searchsorted(phrase_keys, keys), len(phrase_keys) - 1)
                hit, joined = phrase_keys[at] == keys, phrase_of[at]
            else:
                hit, joined = np.zeros(len(keys), bool), np.zeros(len(keys), np.int32)
            # Left to right: in a run of consecutive phrase starts, the 1st, 3rd, ... are joined.
            positions = np.arange(len(hit))
            run_starts = hit & ~np.concatenate([[False], hit])[:-1]
            run_start = np.maximum.accumulate(np.where(run_starts, positions, 0)) if len(hit) else positions
            starts = hit & ((positions - run_start) % 2 == 0)
            second = np.concatenate([[False], starts])  # tokens joined to their left neighbour
            rewritten = np.where(np.concatenate([starts, [False]]), np.concatenate([joined, [0]]), ids)
            # The last token waits for the next piece, unless it was joined already.
            keep = ~second
            keep[-1] = False
            out.write(rewritten[keep].astype(np.int32).tobytes())
            counts += np.bincount(rewritten[keep], minlength=n_ids)
            tokens += int(keep.sum())
            pending = ids[-1:] if not second[-1] else np.zeros(0, np.int32)
        out.write(pending.tobytes())
        counts += np.bincount(pending, minlength=n_ids)
        tokens += len(pending)
    return counts, tokens


def _pair_keys_of(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a.astype(np.int64) << 32) | b.astype(np.int64)
