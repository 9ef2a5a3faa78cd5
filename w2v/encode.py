"""One pass over the corpus text: blocks -> words -> ids, counted.

Two ways, with the same result (tests/test_words.py checks it):
- compiled (w2v/kernels/words.c, when a C compiler is at hand): one C table splits the ASCII
  text, numbers every word in first-seen order ("provisional ids") and counts it, in a second
  thread, while the main thread reads the next blocks and has w2v/words.py split the pieces
  of text that hold non-ASCII characters;
- Python: worker processes split blocks (w2v/words.py) and number each block's distinct words;
  the main process maps them into one numbering, and a bincount per 16M ids counts them.
Either way the block's ids are appended to a file, line ends included (as LINE_END_ID).
Nothing is done per line in Python and nothing grows with the line length, so a corpus that
is one 100M-word line passes in the same memory as one of short lines.

The vocabulary is then chosen from the counts (w2v/token_ids.py), and a numpy pass maps
provisional ids to final ones. The vocabulary pass and the encoding pass of a two-pass design
are thus one text pass.
"""
from __future__ import annotations

import collections
import multiprocessing
import os
import shutil
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .words import LINE_END, split_block
from .words import prepare as prepare_words

LINE_END_ID = 0
# Below this many bytes of text, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 8 << 20
IN_FLIGHT = 3  # blocks handed to each worker ahead of the one being merged

_pre_tokenizer = "punct"  # set in each worker process by _start_worker
_kernel = None  # the compiled splitter (w2v/kernels/words.py), or None: the Python path


def _start_worker(pre_tokenizer: str, kernel=None, in_pool: bool = False) -> None:
    global _pre_tokenizer, _kernel
    _pre_tokenizer, _kernel = pre_tokenizer, kernel
    if in_pool:
        # Ctrl-C reaches the whole process group: the main process reports it in one line and
        # ends the pool; a worker printing its own KeyboardInterrupt traceback would only add noise.
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _number_block(block: str) -> tuple[np.ndarray, list[str]]:
    """(the block's words as indexes into its distinct words (int32), its distinct words in first-seen order).

    Workers keep nothing between blocks, so their memory does not grow with the vocabulary;
    the one dictionary of every word seen lives in the main process.
    """
    words = split_block(block, _pre_tokenizer)
    position: dict[str, int] = {}
    # len(position) is read before each setdefault: a word new to the block gets the next index.
    local_ids = np.array([position.setdefault(word, len(position)) for word in words], dtype=np.int32)
    return local_ids, list(position)


class PackedWords:
    """Words by id, packed: their UTF-8 bytes, each followed by a space (no word holds one).

    The pass keeps every distinct word it sees, most of them too rare for the vocabulary: at 275M
    words of long-tailed text, 27M of them. As Python strings they would take about 60 bytes each
    (1.6 GB); packed, their bytes and an 8-byte offset each. Only the chosen few become strings.
    """

    def __init__(self, text: bytes, starts: np.ndarray):
        self.text = text
        self.starts = starts  # (len + 1,) int64: word i is text[starts[i]:starts[i + 1] - 1]

    @classmethod
    def of(cls, words: Iterable[str]) -> PackedWords:
        text = "".join(word + " " for word in words).encode("utf-8", "surrogatepass")
        ends = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == ord(" "))
        return cls(text, np.concatenate([np.zeros(1, np.int64), ends + 1]))

    def __len__(self) -> int:
        return len(self.starts) - 1

    def _pieces_of(self, ids: np.ndarray, piece: int) -> Iterator[bytes]:
        """The bytes of the given words, each with its space, in that order, `piece` words at a time: the byte
        positions take 16 bytes a byte while they are made (64k words: 8 MB; a million: 130 MB, which set
        the vocabulary phase's peak at 10x bench_scaling.py), and no index array grows with them all."""
        data = np.frombuffer(self.text, dtype=np.uint8)
        for lo in range(0, len(ids), piece):
            part = np.asarray(ids[lo:lo + piece], dtype=np.int64)
            starts, lengths = self.starts[part], self.starts[part + 1] - self.starts[part]  # each with its space
            # Byte positions of every selected word, in order: each word's start, then +1 up to its space.
            first = np.cumsum(lengths) - lengths
            positions = np.repeat(starts - first, lengths) + np.arange(int(lengths.sum()))
            yield data[positions].tobytes()

    def select(self, ids: np.ndarray, piece: int = 1 << 16) -> list[str]:
        """The words of the given ids, in that order."""
        found = []
        for text in self._pieces_of(ids, piece):
            found += text.decode("utf-8", "surrogatepass").split(" ")[:-1]
        return found

    def subset(self, ids: np.ndarray, piece: int = 1 << 16) -> PackedWords:
        """The words of the given ids, in that order, packed on their own: a copy of their bytes only, so that
        the rest (every distinct word of a corpus) can be freed before any of them becomes a Python string."""
        ids = np.asarray(ids, dtype=np.int64)
        lengths = self.starts[ids + 1] - self.starts[ids]
        return PackedWords(b"".join(self._pieces_of(ids, piece)),
                           np.concatenate([np.zeros(1, np.int64), np.cumsum(lengths)]))

    def tolist(self) -> list[str]:
        return self.text.decode("utf-8", "surrogatepass").split(" ")[:-1]


@dataclass
class ProvisionalIds:
    """The result of the pass: ids in first-seen numbering, on disk."""

    path: Path  # int32 ids, LINE_END_ID after every line
    words: PackedWords  # provisional id -> word (word 0 is LINE_END)
    counts: np.ndarray  # (len(words),) int64 occurrences of each word (LINE_END: lines)
    tokens: int  # entries in the file, line ends included


def number_corpus(blocks: Iterable[str], out_path: Path, pre_tokenizer: str = "punct",
                  workers: int | None = None, total_bytes: int | None = None, kernel=None) -> ProvisionalIds:
    """Split and number every block into out_path; workers=None chooses by corpus size and cores.

    kernel: the compiled splitter (w2v.kernels.load_words()), or None for the Python path.
    """
    if workers is None:
        workers = os.cpu_count() or 1
        if total_bytes is not None and total_bytes < PARALLEL_MIN_BYTES:
            workers = 1
    number = _number_compiled if kernel is not None else _number_python
    words, counts, tokens = number(blocks, out_path, pre_tokenizer, workers, kernel)
    return ProvisionalIds(path=out_path, words=words, counts=counts, tokens=tokens)


def _number_python(blocks: Iterable[str], out_path: Path, pre_tokenizer: str, workers: int,
                   kernel=None) -> tuple[PackedWords, np.ndarray, int]:
    """Workers split and number blocks (w2v/words.py); this process maps each block's numbering into one.
    Returns (words by id, their counts, tokens written)."""
    # Every word seen, numbered in first-seen order (a dict keeps insertion order, so its keys
    # are also the id -> word list). It is the pass's one structure that grows: with the number of
    # distinct words, about 100 bytes each, as gensim's raw vocabulary does.
    index: dict[str, int] = {LINE_END: LINE_END_ID}
    tokens = 0
    with open(out_path, "wb") as out:
        for local_ids, distinct in _numbered(blocks, pre_tokenizer, workers):
            # len(index) is read before each setdefault: a new word gets the next number.
            ids = np.fromiter([index.setdefault(word, len(index)) for word in distinct], dtype=np.int32,
                              count=len(distinct))
            out.write(ids[local_ids].tobytes())
            tokens += len(local_ids)
    counts = np.zeros(len(index), dtype=np.int64)
    for piece in _pieces(out_path):
        counts += np.bincount(piece, minlength=len(index))  # one bincount per 16M ids
    return PackedWords.of(index), counts, tokens


def _number_compiled(blocks: Iterable[str], out_path: Path, pre_tokenizer: str, workers: int,
                     kernel) -> tuple[PackedWords, np.ndarray, int]:
    """One C table (w2v/kernels/words.c) numbers and counts every block's words, in corpus order.

    The numbering runs in a second thread (ctypes releases the GIL), while this one reads the
    next blocks and splits their non-ASCII pieces (the Python part), so the two overlap on two
    cores. With more than two workers, blocks holding non-ASCII text are prepared in worker
    processes (for text that is mostly not ASCII, where the Python part dominates); with two,
    both cores are already busy, and sending blocks to processes would only add copies.
    Its memory grows with the distinct words (their bytes, plus 32-64 bytes each), not more.
    """
    tokens = 0
    with kernel.numbering(pre_tokenizer) as numbering, open(out_path, "wb") as out, \
            ThreadPoolExecutor(1, thread_name_prefix="w2v-numbering") as numberer:
        if numbering.number(b"\n", b"").tolist() != [LINE_END_ID]:
            raise RuntimeError("the C numbering did not give the line end the id LINE_END_ID")

        def number_and_write(prepared: tuple[bytes, bytes]) -> int:
            ids = numbering.number(*prepared)
            out.write(ids.data)
            return len(ids)

        pending: collections.deque = collections.deque()
        for prepared in _prepared(blocks, pre_tokenizer, workers, kernel):
            pending.append(numberer.submit(number_and_write, prepared))
            if len(pending) > IN_FLIGHT:
                tokens += pending.popleft().result()
        while pending:
            tokens += pending.popleft().result()
        counts = numbering.counts()
        counts[LINE_END_ID] -= 1  # the line end numbered first, not in the corpus
        return PackedWords(numbering.text(), numbering.starts()), counts, tokens


def _prepare_block(block: str) -> tuple[bytes, bytes]:
    return _kernel.prepare(block, _pre_tokenizer)


def _prepared(blocks: Iterable[str], pre_tokenizer: str, workers: int, kernel) -> Iterator[tuple[bytes, bytes]]:
    """Each block as WordsKernel.prepare gives it, in corpus order: ASCII blocks here (there is nothing
    to do but encode them), the others in worker processes when there are more than two."""
    return _in_order(_prepare_block, blocks, pre_tokenizer, kernel, workers if workers > 2 else 1,
                     here=str.isascii)


class _Done:
    """A result computed in this process, with AsyncResult's get()."""

    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


def _in_order(work, blocks: Iterable[str], pre_tokenizer: str, kernel, workers: int, here=None) -> Iterator:
    """work(block) for every block, in corpus order; in forked worker processes when workers > 1,
    except the blocks for which here(block) is true, done in this process."""
    _start_worker(pre_tokenizer, kernel)
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(work, blocks)
        return
    # fork: the workers need nothing but this module, and start in milliseconds. They inherit the
    # Unicode classes built here once, instead of building them each.
    prepare_words()
    with multiprocessing.get_context("fork").Pool(workers, _start_worker, (pre_tokenizer, kernel, True)) as pool:
        # At most IN_FLIGHT blocks per worker are read ahead: Pool.imap would read the whole corpus
        # into its queue as fast as the disk allows (far faster than splitting), unbounded memory.
        pending: collections.deque = collections.deque()
        for block in blocks:
            pending.append(_Done(work(block)) if here is not None and here(block)
                           else pool.apply_async(work, (block,)))
            while pending and (len(pending) >= IN_FLIGHT * workers or isinstance(pending[0], _Done)):
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _pieces(path: Path, piece: int = 1 << 24) -> Iterator[np.ndarray]:
    """The int32 ids of a file, 16M at a time. Read, not memory-mapped: the mapped pages of a big
    file would count in the process's memory while it is read."""
    with open(path, "rb") as f:
        while len(part := np.fromfile(f, dtype=np.int32, count=piece)):
            yield part


def _numbered(blocks: Iterable[str], pre_tokenizer: str, workers: int) -> Iterator[tuple[np.ndarray, list[str]]]:
    return _in_order(_number_block, blocks, pre_tokenizer, None, workers)


def choose_vocabulary(counts: np.ndarray, min_count: int, max_size: int | None) -> np.ndarray:
    """Provisional ids of the vocabulary, most frequent first (ties: first seen first).

    counts: (n,) int64 per provisional id; id 0 (line ends) never qualifies.
    """
    candidates = np.flatnonzero(counts >= min_count)
    candidates = candidates[candidates != LINE_END_ID]
    order = candidates[np.argsort(-counts[candidates], kind="stable")]
    return order[:max_size] if max_size else order


def write_final_ids(provisional: ProvisionalIds, final_of: np.ndarray, ids_path: Path, sentences_path: Path,
                    piece: int = 1 << 20) -> tuple[int, int]:
    """Map provisional ids to final ones into ids_path, dropping ids mapped to < 0 (rare words), and write
    the sentence offsets to sentences_path (int64 .npy): sentence s is ids[offsets[s]:offsets[s+1]],
    empty lines dropped. Returns (ids written, sentences).

    final_of: (len(words),) int32 final id of each provisional id, -1 to drop it.
    The offsets go to disk piece by piece, as the ids do: 8 bytes a line would otherwise be the one
    thing here that grows with the corpus (88 MB for 11M lines, three times over while filtered).
    A piece of 1M ids takes about 22 MB of temporaries (16M took 350 MB), and no more time.
    """
    written, last, offsets = 0, 0, 1
    raw_path = sentences_path.with_name(sentences_path.name + ".raw")
    with open(ids_path, "wb") as out, open(raw_path, "wb") as raw:
        raw.write(np.zeros(1, np.int64).tobytes())
        for part in _pieces(provisional.path, piece):
            mapped = final_of[part]
            kept_at = np.flatnonzero(mapped >= 0)
            # A line ends after the kept words before its LINE_END (a search in the kept positions:
            # a cumulative sum over every id is several times slower).
            ends = written + np.searchsorted(kept_at, np.flatnonzero(part == LINE_END_ID))
            # Offsets only grow; one equal to the last kept one ends a line with no kept word.
            ends = ends[np.diff(ends, prepend=last) > 0]
            raw.write(ends.tobytes())
            offsets += len(ends)
            last = int(ends[-1]) if len(ends) else last
            out.write(mapped[kept_at].astype(np.int32, copy=False).tobytes())
            written += len(kept_at)
        if written > last:  # a last line without a line end
            raw.write(np.array([written], np.int64).tobytes())
            offsets += 1
    with open(raw_path, "rb") as raw, open(sentences_path, "wb") as out:
        np.lib.format.write_array_header_1_0(out, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.int64)),
                                                   "fortran_order": False, "shape": (offsets,)})
        shutil.copyfileobj(raw, out, 1 << 24)
    raw_path.unlink()
    return written, offsets - 1
