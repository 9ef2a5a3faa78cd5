"""Export vectors in word2vec format through gensim's KeyedVectors.

Counts are set on every key, so gensim writes rows most-frequent first.
Special tokens are left out. Files are written atomically.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors

from .atomic import atomic_path
from .vocab import SPECIAL_TOKENS


def has_whitespace(word: str) -> bool:
    """True when a token could not survive the word2vec format (which splits on whitespace)."""
    return any(ch.isspace() for ch in word) or word == ""


def to_keyed_vectors(words: list[str], vectors: np.ndarray, counts: np.ndarray) -> KeyedVectors:
    """KeyedVectors of every real word with a non-zero count, carrying its count."""
    keep = [i for i, w in enumerate(words)
            if w not in SPECIAL_TOKENS and counts[i] > 0 and not has_whitespace(w)]
    # Most frequent first; ties keep id order so the export is deterministic.
    keep.sort(key=lambda i: (-int(counts[i]), i))
    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors([words[i] for i in keep], np.ascontiguousarray(vectors[keep], dtype=np.float32))
    for i in keep:
        kv.set_vecattr(words[i], "count", int(counts[i]))
    return kv


def save_vectors(kv: KeyedVectors, path: Path, binary: bool = True) -> None:
    """Write `path` in word2vec format (binary or text), atomically."""
    with atomic_path(path) as tmp:
        kv.save_word2vec_format(str(tmp), binary=binary)
