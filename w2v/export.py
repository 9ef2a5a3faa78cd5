"""Export vectors in the word2vec format (binary or text), which gensim, word2vec.c and fastText read.

Rows go most frequent first (ties in id order), special tokens and unseen words left out.
The file is written here, not through gensim: importing gensim costs about a second,
which a run that does not evaluate should not pay. tests/test_export.py loads the files
back with gensim. Files are written atomically.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .vocab import SPECIAL_TOKENS


def has_whitespace(word: str) -> bool:
    """True when a token could not survive the word2vec format (which splits on whitespace)."""
    return any(ch.isspace() for ch in word) or word == ""


def export_rows(words: list[str], counts: np.ndarray) -> np.ndarray:
    """Ids to export, most frequent first; ties keep id order so the export is deterministic."""
    keep = [i for i, w in enumerate(words)
            if w not in SPECIAL_TOKENS and counts[i] > 0 and not has_whitespace(w)]
    keep.sort(key=lambda i: (-int(counts[i]), i))
    return np.asarray(keep, dtype=np.int64)


def write_word2vec(path: Path, words: list[str], vectors: np.ndarray, counts: np.ndarray, binary: bool = True) -> int:
    """Write the exported rows of `vectors` (V, D) to path; returns how many words were written.

    Binary: a "count dim" header line, then per word its UTF-8 bytes, a space, dim little-endian
    float32 and a newline (word2vec.c's layout; gensim reads it too). Text: the same header,
    then "word v1 v2 ..." lines.
    """
    rows = export_rows(words, counts)
    dim = vectors.shape[1]
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        out.write(f"{len(rows)} {dim}\n".encode())
        for start in range(0, len(rows), 65536):  # bounded memory for any vocabulary
            part = rows[start:start + 65536]
            block = np.ascontiguousarray(vectors[part], dtype="<f4")
            if binary:
                out.write(b"".join(words[i].encode("utf-8") + b" " + block[k].tobytes() + b"\n"
                                   for k, i in enumerate(part)))
            else:
                out.write("".join(f"{words[i]} {' '.join(str(v) for v in block[k])}\n"
                                  for k, i in enumerate(part)).encode("utf-8"))
    return len(rows)


def to_keyed_vectors(words: list[str], vectors: np.ndarray, counts: np.ndarray):
    """gensim KeyedVectors of the exported rows, carrying their counts (for evaluation)."""
    from gensim.models import KeyedVectors

    rows = export_rows(words, counts)
    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors([words[i] for i in rows], np.ascontiguousarray(vectors[rows], dtype=np.float32))
    for i in rows:
        kv.set_vecattr(words[i], "count", int(counts[i]))
    return kv
