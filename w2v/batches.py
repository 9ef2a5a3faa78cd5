"""From token ids to subsampled chunks and noise words, with word2vec's sampling semantics.

- Frequent words are subsampled with word2vec's formula, redrawn every epoch:
  keep(w) = (sqrt(f_w / t) + 1) * t / f_w, capped at 1, where t = sample * total.
- Each centre word draws a reduced window b in [1, window] (uniform), as gensim does.
- Windows never cross a sentence (line) boundary (the objective, w2v/objective.py, expands them).
- Negatives come from the unigram distribution raised to 0.75.
All of it is vectorised numpy / torch over chunks of the id array: there is no
Python loop per word or pair.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch


def keep_probability(counts: np.ndarray, sample: float, total: float | None = None) -> np.ndarray:
    """(vocab,) float64 probability of keeping each word occurrence; 1 when sample == 0.

    total: the corpus size the threshold is a fraction of (default counts.sum(); the Huffman tree's
    inner nodes pass the word total, as their counts overlap)."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    threshold = sample * (counts.sum() if total is None else total)
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = (np.sqrt(counts / threshold) + 1.0) * threshold / counts
    keep[counts == 0] = 0.0
    return np.minimum(keep, 1.0)


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """(vocab,) float64 negative-sampling probabilities, proportional to count**power."""
    weights = np.asarray(counts, dtype=np.float64) ** power
    return weights / weights.sum()


class NoiseSampler:
    """Draws negative ids from the noise distribution on any device (inverse-CDF lookup)."""

    def __init__(self, counts: np.ndarray, device: torch.device, power: float = 0.75):
        cdf = np.cumsum(noise_distribution(counts, power))
        cdf[-1] = 1.0 + 1e-9  # a draw of exactly 1.0 must still land on the last word
        self.cdf = torch.as_tensor(cdf, dtype=torch.float64, device=device)
        self.device = device

    def sample(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        """int64 ids of the given shape."""
        u = torch.rand(shape, generator=generator, device=self.device, dtype=torch.float64)
        return torch.searchsorted(self.cdf, u)


@dataclass
class Carry:
    """The kept tokens at the end of a chunk cut inside a sentence, handed to the next chunk.

    The first `trained` of them were centres already and are context only next time; the
    rest (the last `window` kept tokens) wait for the right context the next chunk brings.
    """

    ids: np.ndarray  # (m,) int64
    sentence: np.ndarray  # (m,) int64
    window: np.ndarray  # (m,) int64
    trained: int

    @classmethod
    def empty(cls) -> "Carry":
        return cls(*(np.zeros(0, np.int64) for _ in range(3)), trained=0)

    def to_state(self) -> dict:
        """Plain lists and ints, for a checkpoint."""
        return {"ids": self.ids.tolist(), "sentence": self.sentence.tolist(), "window": self.window.tolist(),
                "trained": self.trained}

    @classmethod
    def from_state(cls, state: dict | None) -> "Carry":
        if not state:
            return cls.empty()
        return cls(*(np.asarray(state[k], dtype=np.int64) for k in ("ids", "sentence", "window")),
                   trained=int(state["trained"]))


@dataclass
class Chunk:
    """A run of text after subsampling, ready to be cut into examples.

    Only positions centre_lo..centre_hi-1 are centres; the tokens around them are context
    carried across a chunk cut inside a long line, so no window is lost at the cut.
    """

    ids: np.ndarray  # (n,) int64 kept tokens, in corpus order
    sentence: np.ndarray  # (n,) int64 sentence number of each token
    window: np.ndarray  # (n,) int64 reduced window of each centre, in [1, window]
    raw_words: int  # corpus words this chunk covers, before subsampling
    centre_lo: int = 0
    centre_hi: int | None = None  # None: every position up to the end
    carry_in: Carry | None = None  # what this chunk started from (a checkpoint stores it)
    end: int = -1  # corpus position where this chunk's raw words end (epoch_chunks sets it)

    def __post_init__(self):
        if self.centre_hi is None:
            self.centre_hi = len(self.ids)

    def is_centre(self) -> np.ndarray:
        """(n,) bool: which positions are centres here."""
        flags = np.zeros(len(self.ids), dtype=bool)
        flags[self.centre_lo:self.centre_hi] = True
        return flags


def epoch_chunks(ids: np.ndarray, sentences: np.ndarray, keep_prob: np.ndarray, window: int,
                 rng: np.random.Generator, chunk_tokens: int = 1 << 20,
                 token_range: tuple[int, int] | None = None, carry: Carry | None = None) -> Iterator[Chunk]:
    """One epoch over ids[token_range], as chunks of about chunk_tokens raw tokens.

    A chunk ends on a sentence boundary when one lies within chunk_tokens of the target
    size; otherwise (one long line, text8's shape) it is cut inside the sentence, and the
    last `window` kept tokens become centres of the next chunk, which also carries the
    `window` tokens before them as context. Pairs are then exactly those of the uncut
    line, and memory stays bounded by chunk_tokens whatever the line length. The random
    draws of each token are the same however the corpus is chunked.
    `carry`: where a resumed run left off inside a line.
    """
    lo, hi = token_range if token_range is not None else (0, len(ids))
    pos = lo
    carry = carry if carry is not None else Carry.empty()
    while pos < hi:
        target = min(hi, pos + chunk_tokens)
        # Extend to the next sentence boundary at or after target, unless that is far away.
        s = int(np.searchsorted(sentences, target, side="left"))
        end = min(hi, int(sentences[s])) if s < len(sentences) else hi
        if end <= pos or end - target > chunk_tokens:
            end = target
        raw = np.asarray(ids[pos:end], dtype=np.int64)
        sentence_of = np.searchsorted(sentences, np.arange(pos, end), side="right") - 1
        # Two uniform draws per corpus token, in corpus order: whether it is kept, and its reduced
        # window. A token's draws therefore do not depend on where chunks are cut.
        draws = rng.random((len(raw), 2))
        kept = draws[:, 0] < keep_prob[raw]
        kept_ids = raw[kept]
        reduced = 1 + (draws[kept, 1] * window).astype(np.int64)
        chunk_ids = np.concatenate([carry.ids, kept_ids])
        chunk_sentence = np.concatenate([carry.sentence, sentence_of[kept]])
        chunk_window = np.concatenate([carry.window, reduced])
        n = len(chunk_ids)
        cut_inside = end < hi and int(sentences[np.searchsorted(sentences, end)]) != end
        centre_hi = max(carry.trained, n - window) if cut_inside else n
        yield Chunk(ids=chunk_ids, sentence=chunk_sentence, window=chunk_window, raw_words=end - pos,
                    centre_lo=carry.trained, centre_hi=centre_hi, carry_in=carry, end=end)
        if cut_inside:
            start = max(0, centre_hi - window)
            carry = Carry(chunk_ids[start:], chunk_sentence[start:], chunk_window[start:], trained=centre_hi - start)
        else:
            carry = Carry.empty()
        pos = end
