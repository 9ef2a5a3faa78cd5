"""Continued training (train.init_from=RUN_DIR): go on from an earlier run on a new corpus, as gensim's
`build_vocab(update=True)` followed by `train`.

A finished run leaves what this needs beside its vectors: `tokenizer.json` (its words and their ids)
and `tables.pt` (both tables and the word counts it trained with; `save_tables`, export.tables=true).
The new run keeps every earlier word at its id and row, appends the new corpus's words that pass
vocab.min_count in it (most frequent first, fresh rows initialised as usual), and trains with the
counts of both corpora added up (an earlier word absent from the new corpus keeps its count), so the
noise distribution and subsampling follow the updated counts, as gensim's do. Its tokenizer maps
earlier words to their ids and new words to the appended ids; the token-id cache keys the new
corpus's encoding by the earlier vocabulary (w2v/token_ids.py), so an encoding made for another
vocabulary is never reused. The exported vectors go most frequent first by the updated counts
(w2v/export.py), although ids no longer do.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import save_atomically
from .encode import LINE_END_ID, ProvisionalIds, choose_vocabulary
from .errors import W2VError, first_line
from .vocab import UNK

TABLES_NAME = "tables.pt"
FORMAT = "w2v-tables"
VERSION = 1


def save_tables(path: Path, input_table: torch.Tensor, output_table: torch.Tensor, counts: np.ndarray,
                loss: str = "ns") -> None:
    """Write both tables, the counts and the loss (model.loss) atomically, for a later train.init_from."""
    payload = {"format": FORMAT, "version": VERSION, "loss": loss, "input": input_table.detach().float().cpu(),
               "output": output_table.detach().float().cpu(), "counts": torch.from_numpy(np.asarray(counts, np.int64))}
    save_atomically(path, payload)


@dataclass
class EarlierRun:
    """What train.init_from reads from an earlier run dir."""

    run_dir: Path
    words: dict[str, int]  # word -> id, the ids 1..len(words) (0 is [UNK])
    input_table: torch.Tensor  # (vocab_size, dim)
    output_table: torch.Tensor  # (vocab_size, dim)
    counts: np.ndarray  # (vocab_size,) int64: the counts the earlier run trained with
    pre_tokenizer: str  # punct | whitespace, as its tokenizer splits
    loss: str  # model.loss of the earlier run: ns (output rows are words) | hs (Huffman inner nodes)
    fingerprint: str  # SHA-256 of its tokenizer.json: keys the new corpus's token-id cache entry

    @property
    def vocab_size(self) -> int:
        return len(self.counts)

    @property
    def dim(self) -> int:
        return self.input_table.shape[1]

    def updated_counts(self, new_counts: np.ndarray) -> np.ndarray:
        """The new corpus's counts (by the extended vocabulary's ids) plus the earlier run's."""
        counts = np.array(new_counts, dtype=np.int64)
        counts[:self.vocab_size] += self.counts
        return counts

    def place_rows(self, input_table: torch.Tensor, output_table: torch.Tensor) -> None:
        """Copy the earlier rows over freshly initialised (vocab_size', dim) tables, in place."""
        input_table[:self.vocab_size] = self.input_table
        output_table[:self.vocab_size] = self.output_table


def _unusable(run_dir: Path, what: str) -> W2VError:
    return W2VError(f"train.init_from: {run_dir} {what}; give the run dir of a finished run "
                    f"(one that wrote vectors.bin, tokenizer.json and {TABLES_NAME})")


def load_earlier_run(value: str) -> EarlierRun:
    """Read and check an earlier run dir; W2VError in one line if it lacks what continuing needs."""
    run_dir = Path(value).expanduser()
    if not run_dir.is_dir():
        raise W2VError(f"train.init_from: no run dir at {value}")
    for name in ("tokenizer.json", TABLES_NAME):
        if not (run_dir / name).is_file():
            raise _unusable(run_dir, f"has no {name}" + (" (runs before continued training existed, and "
                                                         "export.tables=false, do not write it)"
                                                         if name == TABLES_NAME else ""))
    try:
        text = (run_dir / "tokenizer.json").read_bytes()
        spec = json.loads(text)
        vocab = dict(spec["model"]["vocab"])
        pre_tokenizer = "whitespace" if (spec.get("pre_tokenizer") or {}).get("type") == "WhitespaceSplit" \
            else "punct"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _unusable(run_dir, f"has an unreadable tokenizer.json ({first_line(exc)[:100]})") from None
    try:
        payload = torch.load(run_dir / TABLES_NAME, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file reaches any corner of the unpickler
        raise _unusable(run_dir, f"has an unreadable {TABLES_NAME} ({first_line(exc)[:100]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or payload.get("version") != VERSION:
        raise _unusable(run_dir, f"has a {TABLES_NAME} that is not w2v's tables file version {VERSION}")
    input_table, output_table, counts = (payload.get(k) for k in ("input", "output", "counts"))
    if not all(isinstance(t, torch.Tensor) for t in (input_table, output_table, counts)):
        raise _unusable(run_dir, f"has an incomplete {TABLES_NAME}")
    vocab.pop(UNK, None)
    size = len(vocab) + 1
    if (input_table.ndim != 2 or input_table.shape != output_table.shape or input_table.shape[0] != size
            or counts.shape != (size,) or sorted(vocab.values()) != list(range(1, size))):
        raise _unusable(run_dir, f"holds tables of {tuple(input_table.shape)} and {tuple(output_table.shape)}, "
                                 f"{tuple(counts.shape)} counts and a tokenizer of {size} ids, which do not match")
    return EarlierRun(run_dir=run_dir, words=vocab, input_table=input_table.float(),
                      output_table=output_table.float(), counts=counts.numpy().astype(np.int64),
                      pre_tokenizer=pre_tokenizer, loss=str(payload.get("loss", "ns")), fingerprint=hashlib.sha256(text).hexdigest()[:20])


def extend_vocabulary(provisional: ProvisionalIds, known: dict[str, int], min_count: int, max_size: int | None,
                      piece: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """(final id of each provisional id or -1, provisional ids of the new words) for a new corpus.

    Known words keep their ids whatever their count in this corpus; a new word needs min_count
    occurrences in it (gensim's update rule), and new words get the ids after the known ones, most
    frequent first (ties: first seen first). max_size caps the whole vocabulary.
    """
    n = len(provisional.words)
    final_of = np.full(n, -1, dtype=np.int32)
    for lo in range(0, n, piece):  # every distinct word of the corpus, looked up a million at a time
        hi = min(n, lo + piece)
        words = provisional.words.select(np.arange(lo, hi))
        final_of[lo:hi] = np.fromiter((known.get(w, -1) for w in words), dtype=np.int32, count=hi - lo)
    final_of[LINE_END_ID] = -1
    # Known words are not candidates: they keep their ids (min_count >= 1, so a count of 0 never qualifies).
    new = choose_vocabulary(np.where(final_of < 0, provisional.counts, 0), min_count, None)
    if max_size is not None:
        new = new[:max(0, max_size - len(known))]
    final_of[new] = np.arange(len(known) + 1, len(known) + 1 + len(new), dtype=np.int32)
    return final_of, new
