"""From token ids to training examples, with word2vec's sampling semantics.

- Frequent words are subsampled with word2vec's formula, redrawn every epoch:
  keep(w) = (sqrt(f_w / t) + 1) * t / f_w, capped at 1, where t = sample * total.
- Each centre word draws a reduced window b in [1, window] (uniform), as gensim does.
- Windows never cross a sentence (line) boundary.
- Negatives come from the unigram distribution raised to 0.75.
All of it is vectorised numpy / torch over chunks of the id array: there is no
Python loop per word or pair.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch


def keep_probability(counts: np.ndarray, sample: float) -> np.ndarray:
    """(vocab,) float64 probability of keeping each word occurrence; 1 when sample == 0."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
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
class Chunk:
    """A run of whole sentences after subsampling, ready to be cut into examples."""

    ids: np.ndarray  # (n,) int64 kept tokens, in corpus order
    sentence: np.ndarray  # (n,) int64 sentence number of each token
    window: np.ndarray  # (n,) int64 reduced window of each centre, in [1, window]
    raw_words: int  # corpus words this chunk covers, before subsampling


def epoch_chunks(ids: np.ndarray, sentences: np.ndarray, keep_prob: np.ndarray, window: int,
                 rng: np.random.Generator, chunk_tokens: int = 1 << 20,
                 token_range: tuple[int, int] | None = None) -> Iterator[Chunk]:
    """One epoch over ids[token_range], as chunks of about chunk_tokens raw tokens.

    Chunks end on sentence boundaries, so windows are exact; a sentence longer
    than chunk_tokens is its own chunk.
    """
    lo, hi = token_range if token_range is not None else (0, len(ids))
    pos = lo
    while pos < hi:
        target = min(hi, pos + chunk_tokens)
        # Extend to the next sentence boundary at or after target (within range).
        s = int(np.searchsorted(sentences, target, side="left"))
        end = min(hi, int(sentences[s])) if s < len(sentences) else hi
        if end <= pos:
            end = hi
        raw = np.asarray(ids[pos:end], dtype=np.int64)
        sentence_of = np.searchsorted(sentences, np.arange(pos, end), side="right") - 1
        kept = rng.random(len(raw)) < keep_prob[raw]
        kept_ids = raw[kept]
        yield Chunk(
            ids=kept_ids,
            sentence=sentence_of[kept],
            window=rng.integers(1, window + 1, size=len(kept_ids)),
            raw_words=end - pos,
        )
        pos = end


def skipgram_pairs(chunk: Chunk, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(centres, contexts) int64 arrays: every context within each centre's reduced window.

    Pairs are ordered by centre position, so a batch holds consecutive text, as in word2vec.
    """
    n = len(chunk.ids)
    centre_pos, context_pos = [], []
    for offset in range(1, window + 1):  # a loop over offsets (<= window), not over words
        left = np.arange(offset, n)
        ok = (chunk.window[left] >= offset) & (chunk.sentence[left] == chunk.sentence[left - offset])
        centre_pos.append(left[ok]); context_pos.append(left[ok] - offset)
        right = np.arange(0, n - offset)
        ok = (chunk.window[right] >= offset) & (chunk.sentence[right] == chunk.sentence[right + offset])
        centre_pos.append(right[ok]); context_pos.append(right[ok] + offset)
    centre_pos = np.concatenate(centre_pos) if centre_pos else np.zeros(0, np.int64)
    context_pos = np.concatenate(context_pos) if context_pos else np.zeros(0, np.int64)
    order = np.argsort(centre_pos, kind="stable")
    return chunk.ids[centre_pos[order]], chunk.ids[context_pos[order]]


def cbow_windows(chunk: Chunk, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centres (m,), contexts (m, 2*window) int64, mask (m, 2*window) bool) for centres with >= 1 context."""
    n = len(chunk.ids)
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    pos = np.arange(n)[:, None] + offsets[None, :]
    inside = (pos >= 0) & (pos < n)
    pos_clipped = np.clip(pos, 0, max(n - 1, 0))
    mask = inside & (np.abs(offsets)[None, :] <= chunk.window[:, None]) \
        & (chunk.sentence[pos_clipped] == chunk.sentence[:, None])
    has_context = mask.any(axis=1)
    contexts = np.where(mask, chunk.ids[pos_clipped], 0)
    return chunk.ids[has_context], contexts[has_context], mask[has_context]
