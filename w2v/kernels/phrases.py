"""Typed wrapper over w2v/kernels/phrases.c: adjacent id pairs counted in a hash table, then joined."""
from __future__ import annotations

import ctypes

import numpy as np

_ptr, _i64, _int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int


class PairsKernel:
    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        lib.w2v_pairs_new.argtypes, lib.w2v_pairs_new.restype = [], _ptr
        lib.w2v_pairs_free.argtypes, lib.w2v_pairs_free.restype = [_ptr], None
        lib.w2v_pairs_size.argtypes, lib.w2v_pairs_size.restype = [_ptr], _i64
        lib.w2v_pairs_count.argtypes, lib.w2v_pairs_count.restype = [_ptr, _ptr, _i64], _int
        lib.w2v_pairs_items.argtypes, lib.w2v_pairs_items.restype = [_ptr, _ptr, _ptr, _ptr], None
        lib.w2v_pairs_set.argtypes, lib.w2v_pairs_set.restype = [_ptr, _ptr, _ptr, _ptr, _i64], _int
        lib.w2v_pairs_join.argtypes = [_ptr, _ptr, _i64, _ptr, _ptr, _int]
        lib.w2v_pairs_join.restype = _i64

    def table(self) -> Pairs:
        return Pairs(self.lib)


class Pairs:
    """A C hash table from an id pair (a, b) to a value: its count while counting, its phrase id for joining.

    Both `count` and `join` take the id stream piece after piece and carry across a cut what they
    need, so a line may span pieces.
    """

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        self.table = lib.w2v_pairs_new()
        if not self.table:
            raise MemoryError("w2v_pairs_new: out of memory")

    def count(self, ids: np.ndarray) -> None:
        """Count the pairs of the next piece of the stream (int32 ids, LINE_END 0 between lines)."""
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        if self.lib.w2v_pairs_count(self.table, ids.ctypes.data, len(ids)):
            raise MemoryError("w2v_pairs_count: out of memory for the pair table")

    def __len__(self) -> int:
        return self.lib.w2v_pairs_size(self.table)

    def items(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a int32, b int32, value int64) of every pair, in table order."""
        n = len(self)
        a, b, values = np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.int64)
        self.lib.w2v_pairs_items(self.table, a.ctypes.data, b.ctypes.data, values.ctypes.data)
        return a, b, values

    def set(self, a: np.ndarray, b: np.ndarray, values: np.ndarray) -> None:
        a, b = (np.ascontiguousarray(x, dtype=np.int32) for x in (a, b))
        values = np.ascontiguousarray(values, dtype=np.int64)
        if self.lib.w2v_pairs_set(self.table, a.ctypes.data, b.ctypes.data, values.ctypes.data, len(a)):
            raise MemoryError("w2v_pairs_set: out of memory")

    def join(self, ids: np.ndarray, counts: np.ndarray, final: bool) -> np.ndarray:
        """The next piece of the stream with this table's pairs joined into their values (phrase ids).

        counts (int64, one per id of the result) is incremented for every id written; final: the
        stream ends with this piece (the token held back for its successor is written too).
        """
        ids = np.ascontiguousarray(ids, dtype=np.int32)
        if counts.dtype != np.int64 or not counts.flags.c_contiguous:
            raise TypeError("counts must be a contiguous int64 array")
        out = np.empty(len(ids) + 1, np.int32)
        n = self.lib.w2v_pairs_join(self.table, ids.ctypes.data, len(ids), out.ctypes.data, counts.ctypes.data,
                                    int(final))
        return out[:n]

    def close(self) -> None:
        if self.table:
            self.lib.w2v_pairs_free(self.table)
            self.table = None

    def __enter__(self) -> Pairs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
