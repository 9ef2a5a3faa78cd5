"""Typed wrapper over w2v/kernels/words.c: a text block's words, numbered, with ASCII split in C.

Pieces of text holding non-ASCII characters (between ASCII whitespace) are split by
w2v/words.py, all of a block's in one call, and their words handed to the C code, which
numbers every word in text order; so the result equals w2v/encode.py's Python path.
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
        lib.w2v_number_words.argtypes = [ctypes.c_char_p, _i64, _int, ctypes.c_char_p, _i64, _ptr, _i64, _ptr, _i64,
                                         ctypes.POINTER(_i64), ctypes.POINTER(_i64)]
        lib.w2v_number_words.restype = _i64

    def nonascii_words(self, data: bytes, pre_tokenizer: str) -> bytes:
        """The words of data's non-ASCII pieces, as w2v_number_words takes them."""
        joined = np.empty(len(data) * 2 + 1, dtype=np.uint8)  # each piece and its '\n'
        pieces = _i64()
        size = self.lib.w2v_nonascii_pieces(data, len(data), joined.ctypes.data, len(joined), ctypes.byref(pieces))
        if size < 0:
            raise MemoryError("w2v_nonascii_pieces: buffer too small")
        # Each piece's words end with split_block's LINE_END ("\0"), which w2v_number_words reads as "piece ends".
        return " ".join(split_block(joined[:size].tobytes().decode("utf-8"), pre_tokenizer)).encode("utf-8")

    def number_block(self, block: str, pre_tokenizer: str) -> tuple[np.ndarray, list[str]]:
        """(the block's words as indexes into its distinct words (int32), its distinct words in first-seen order)."""
        # surrogatepass: a lone surrogate (possible in a hub dataset's strings) survives the round trip.
        data = block.encode("utf-8", "surrogatepass")
        given = b"" if block.isascii() else self.nonascii_words(data, pre_tokenizer)
        ids = np.empty(len(data) + len(given) + 1, dtype=np.int32)
        words = np.empty(2 * len(data) + len(given) + 2, dtype=np.uint8)
        distinct, words_len = _i64(), _i64()
        count = self.lib.w2v_number_words(data, len(data), int(pre_tokenizer != "whitespace"), given, len(given),
                                          ids.ctypes.data, len(ids), words.ctypes.data, len(words),
                                          ctypes.byref(distinct), ctypes.byref(words_len))
        if count == -1:
            raise MemoryError("w2v_number_words: out of memory")
        if count < 0:
            raise RuntimeError(f"w2v_number_words failed ({count}): words.c and w2v/kernels/words.py disagree")
        # Each distinct word is followed by a space (no word holds one), the last one too.
        names = words[:words_len.value].tobytes().decode("utf-8", "surrogatepass").split(" ")[:-1]
        return ids[:count].copy(), names
