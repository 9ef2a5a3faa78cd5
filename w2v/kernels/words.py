"""Typed wrapper over w2v/kernels/words.c: the words of text blocks, numbered, with ASCII text split in C.

Pieces of text holding non-ASCII characters (between ASCII whitespace) are split by
w2v/words.py, all of a block's in one call (`WordsKernel.prepare`), and their words handed
to the C code, which numbers every word in text order (`Numbering`); so the ids equal
those of w2v/encode.py's Python path.
"""
from __future__ import annotations

import ctypes

import numpy as np

from ..words import split_block

_ptr, _i64, _int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int


class WordsKernel:
    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        lib.w2v_nonascii_pieces.argtypes = [ctypes.c_char_p, _i64, _ptr, _i64, ctypes.POINTER(_i64)]
        lib.w2v_nonascii_pieces.restype = _i64
        lib.w2v_words_new.argtypes, lib.w2v_words_new.restype = [], _ptr
        lib.w2v_words_free.argtypes, lib.w2v_words_free.restype = [_ptr], None
        lib.w2v_words_distinct.argtypes, lib.w2v_words_distinct.restype = [_ptr], _i64
        lib.w2v_words_bytes.argtypes, lib.w2v_words_bytes.restype = [_ptr], _i64
        lib.w2v_words_starts.argtypes, lib.w2v_words_starts.restype = [_ptr, _ptr], None
        lib.w2v_words_counts.argtypes, lib.w2v_words_counts.restype = [_ptr, _ptr], None
        lib.w2v_words_text.argtypes, lib.w2v_words_text.restype = [_ptr, ctypes.POINTER(_i64)], _ptr
        lib.w2v_words_number.argtypes = [_ptr, ctypes.c_char_p, _i64, _int, ctypes.c_char_p, _i64, _ptr, _i64]
        lib.w2v_words_number.restype = _i64

    def prepare(self, block: str, pre_tokenizer: str) -> tuple[bytes, bytes]:
        """(the block as UTF-8, the words of its non-ASCII pieces): what Numbering.number takes.

        The Python part of the work: it needs no table, so it can run in another process.
        """
        # surrogatepass: a lone surrogate (possible in a hub dataset's strings) survives the round trip.
        data = block.encode("utf-8", "surrogatepass")
        if block.isascii():
            return data, b""
        joined = np.empty(len(data) * 2 + 1, dtype=np.uint8)  # each piece and its '\n'
        pieces = _i64()
        size = self.lib.w2v_nonascii_pieces(data, len(data), joined.ctypes.data, len(joined), ctypes.byref(pieces))
        if size < 0:
            raise MemoryError("w2v_nonascii_pieces: buffer too small")
        # Each piece's words end with split_block's LINE_END ("\0"), which w2v_words_number reads as "piece ends".
        text = joined[:size].tobytes().decode("utf-8", "surrogatepass")
        return data, " ".join(split_block(text, pre_tokenizer)).encode("utf-8", "surrogatepass")

    def numbering(self, pre_tokenizer: str) -> Numbering:
        return Numbering(self.lib, pre_tokenizer)

    def number_block(self, block: str, pre_tokenizer: str) -> tuple[np.ndarray, list[str]]:
        """(the block's words as indexes into its distinct words (int32), its distinct words in first-seen order)."""
        with self.numbering(pre_tokenizer) as numbering:
            ids = numbering.number(*self.prepare(block, pre_tokenizer))
            return ids, numbering.words()


class Numbering:
    """A C table numbering words in first-seen order across every block given to `number`."""

    def __init__(self, lib: ctypes.CDLL, pre_tokenizer: str):
        self.lib, self.punct = lib, int(pre_tokenizer != "whitespace")
        self.table = lib.w2v_words_new()
        if not self.table:
            raise MemoryError("w2v_words_new: out of memory")

    def number(self, data: bytes, given: bytes) -> np.ndarray:
        """The ids (int32) of the words of a prepared block (WordsKernel.prepare), new words numbered next."""
        ids = np.empty(len(data) + len(given) + 1, dtype=np.int32)  # a word takes at least a byte and a space
        count = self.lib.w2v_words_number(self.table, data, len(data), self.punct, given, len(given), ids.ctypes.data,
                                          len(ids))
        if count == -1:
            raise MemoryError("w2v_words_number: out of memory")
        if count < 0:
            raise RuntimeError(f"w2v_words_number failed ({count}): words.c and w2v/kernels/words.py disagree")
        return ids[:count]

    def __len__(self) -> int:
        return self.lib.w2v_words_distinct(self.table)

    def allocated_bytes(self) -> int:
        """Bytes of the C table that grow with the distinct words (their bytes, plus 32-48 bytes each)."""
        return self.lib.w2v_words_bytes(self.table)

    def starts(self) -> np.ndarray:
        """(len(self) + 1,) int64: word i is text()[starts[i]:starts[i + 1] - 1] (a space follows each)."""
        starts = np.empty(len(self) + 1, dtype=np.int64)
        self.lib.w2v_words_starts(self.table, starts.ctypes.data)
        return starts

    def counts(self) -> np.ndarray:
        """(len(self),) int64 occurrences of each word so far, by id."""
        counts = np.empty(len(self), dtype=np.int64)
        self.lib.w2v_words_counts(self.table, counts.ctypes.data)
        return counts

    def text(self) -> bytes:
        """Every word numbered so far, in id order, as UTF-8, each followed by a space (no word holds one)."""
        size = _i64()
        address = self.lib.w2v_words_text(self.table, ctypes.byref(size))
        return ctypes.string_at(address, size.value)

    def words(self) -> list[str]:
        """Every word numbered so far, in id order."""
        return self.text().decode("utf-8", "surrogatepass").split(" ")[:-1]

    def close(self) -> None:
        if self.table:
            self.lib.w2v_words_free(self.table)
            self.table = None

    def __enter__(self) -> Numbering:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
