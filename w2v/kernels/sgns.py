"""The ctypes wrapper of sgns.c (skip-gram and CBOW, negative sampling or hierarchical softmax).

w2v/kernels/__init__.py builds and loads the library (load_sgns); this module only types its entry
points and checks what is handed to them, as words.py and phrases.py do for their kernels.
"""
from __future__ import annotations

import ctypes

import numpy as np

MAX_NEGATIVE = 64  # the kernel keeps one example's negatives on the stack (MAX_NEGATIVE_AHEAD in sgns.c)
_ptr, _i64, _f32, _f64, _int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_double, ctypes.c_int


class SgnsKernel:
    """Typed wrappers over the C entry points. Tables are contiguous float32 CPU tensors."""

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        lib.w2v_init_tables.argtypes, lib.w2v_init_tables.restype = [], None
        lib.w2v_build_alias.argtypes, lib.w2v_build_alias.restype = [_ptr, _i64, _ptr, _ptr], _int
        lib.w2v_train_chunk.argtypes = [_int, _ptr, _ptr, _i64, _ptr, _ptr, _ptr, _i64, _i64, _i64, _i64, _ptr, _ptr,
                                        _i64,
                                        _f32, _f32, ctypes.c_uint64, _int, _ptr, _ptr, _ptr, _ptr, _ptr, _i64, _ptr,
                                        ctypes.POINTER(_f64), ctypes.POINTER(_i64)]
        lib.w2v_train_chunk.restype = _int
        lib.w2v_train_examples.argtypes = [_int, _ptr, _ptr, _i64, _ptr, _ptr, _ptr, _i64, _ptr, _i64, _i64, _f32,
                                           _ptr, _ptr, _ptr, _i64, _ptr]
        lib.w2v_train_examples.restype = _f64
        lib.w2v_draw_noise.argtypes = [_ptr, _ptr, _i64, ctypes.c_uint64, _i64, _ptr]
        lib.w2v_draw_noise.restype = None
        lib.w2v_changed_rows.argtypes = [_ptr, _ptr, _i64, _i64, _ptr, _ptr]
        lib.w2v_changed_rows.restype = _i64
        lib.w2v_init_tables()

    def build_alias(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Alias table (threshold uint32 (V,), alias int32 (V,)) for sampling proportional to weights."""
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        threshold = np.zeros(len(weights), dtype=np.uint32)
        alias = np.zeros(len(weights), dtype=np.int32)
        if self.lib.w2v_build_alias(weights.ctypes.data, len(weights), threshold.ctypes.data, alias.ctypes.data):
            raise MemoryError("cannot allocate the alias table")
        return threshold, alias

    def draw_noise(self, alias_table: tuple[np.ndarray, np.ndarray], n: int, seed: int) -> np.ndarray:
        threshold, alias = alias_table
        draws = np.empty(n, dtype=np.int64)
        self.lib.w2v_draw_noise(threshold.ctypes.data, alias.ctypes.data, len(threshold), seed, n, draws.ctypes.data)
        return draws

    def train_chunk(self, cbow: bool, in_table: torch.Tensor, out_table: torch.Tensor, ids: np.ndarray,
                    sentence: np.ndarray, window: np.ndarray, negative: int,
                    alias_table: tuple[np.ndarray, np.ndarray], lr_from: float, lr_to: float, seed: int,
                    threads: int, centres: tuple[int, int] | None = None,
                    marks: tuple[torch.Tensor, torch.Tensor] | None = None, tree=None) -> tuple[float, int]:
        """Train the centres[0]..centres[1]-1 of a chunk (default: all) in place; returns (summed loss, examples).

        Tokens outside `centres` serve only as context (a window carried across a chunk cut).
        marks: (input, output) uint8 tensors of one byte per table row; every row written is set to 1.
        tree: None (negative sampling), or a w2v.huffman.HuffmanTree over the same vocabulary
        (hierarchical softmax; `negative` is then unused).
        """
        threshold, alias = alias_table
        if min(in_table.shape[0], out_table.shape[0]) < len(threshold):
            raise ValueError(f"tables of {in_table.shape[0]} and {out_table.shape[0]} rows for a noise table over "
                             f"{len(threshold)} words: the kernel checks ids against the noise table's length")
        tree_args = _tree_args(tree, len(threshold))
        marks_ptrs = (None, None) if marks is None else tuple(_row_marks(m, t) for m, t in zip(marks, (in_table, out_table)))
        ids, sentence, window = (np.ascontiguousarray(a, dtype=np.int64) for a in (ids, sentence, window))
        centre_lo, centre_hi = centres if centres is not None else (0, len(ids))
        loss, examples = _f64(), _i64()
        status = self.lib.w2v_train_chunk(int(cbow), in_table.data_ptr(), out_table.data_ptr(), in_table.shape[1],
                                          ids.ctypes.data, sentence.ctypes.data, window.ctypes.data, len(ids),
                                          centre_lo, centre_hi, negative, threshold.ctypes.data, alias.ctypes.data, len(threshold),
                                          lr_from, lr_to, seed & (2**64 - 1), threads, *marks_ptrs, *tree_args,
                                          ctypes.byref(loss), ctypes.byref(examples))
        if status == -3:
            raise ValueError(f"centre range {centres} outside a chunk of {len(ids)} tokens")
        if status == -4:
            raise ValueError(f"a token id in this chunk is outside the vocabulary of {len(threshold)} words "
                             f"(a damaged token-id cache?); nothing was trained")
        if status == -2:
            raise ValueError(f"the C kernel takes at most {MAX_NEGATIVE} negatives, got {negative}")
        if status:
            raise MemoryError("the C kernel could not allocate its per-thread buffers")
        return loss.value, examples.value

    def changed_rows(self, table: torch.Tensor, base: torch.Tensor, marks: torch.Tensor | None = None) -> torch.Tensor:
        """Sorted int64 ids of the rows where table != base in any element: all rows, or only those marked
        (then the marks are cleared). table and base: contiguous float32 CPU tensors of the same shape."""
        import torch

        if table.shape != base.shape or not (table.is_contiguous() and base.is_contiguous()) \
                or table.dtype != torch.float32 or base.dtype != torch.float32:
            raise ValueError(f"changed_rows takes two contiguous float32 tables of one shape, got {table.shape} "
                             f"{table.dtype} and {base.shape} {base.dtype}")
        rows = torch.empty(table.shape[0], dtype=torch.int64)
        n = self.lib.w2v_changed_rows(table.data_ptr(), base.data_ptr(), table.shape[0], table.shape[1],
                                      None if marks is None else _row_marks(marks, table), rows.data_ptr())
        return rows[:n]

    def train_examples(self, cbow: bool, in_table: torch.Tensor, out_table: torch.Tensor, centres: torch.Tensor,
                       contexts: torch.Tensor, mask: torch.Tensor | None, negatives: torch.Tensor,
                       lr: float, tree=None) -> float:
        """Apply given examples one after another (word2vec's order); returns the summed loss.
        tree: a w2v.huffman.HuffmanTree for hierarchical softmax (negatives unused), or None."""
        import torch  # here, not at the top: the text pass loads this module and does not need torch

        centres, contexts, negatives = (t.to(torch.int64).contiguous() for t in (centres, contexts, negatives))
        vocab = min(in_table.shape[0], out_table.shape[0])
        for name, ids in (("centre", centres), ("context", contexts), ("negative", negatives)):
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
                raise ValueError(f"a {name} id is outside the vocabulary of {vocab} words; nothing was trained")
        width = contexts.shape[1] if cbow else 1
        mask_u8 = (mask if mask is not None else torch.ones_like(contexts, dtype=torch.bool)).to(torch.uint8)
        mask_u8 = mask_u8.contiguous()
        return self.lib.w2v_train_examples(int(cbow), in_table.data_ptr(), out_table.data_ptr(), in_table.shape[1],
                                           centres.data_ptr(), contexts.data_ptr(), mask_u8.data_ptr(), width,
                                           negatives.data_ptr(), len(centres), negatives.shape[1], lr,
                                           *_tree_args(tree, in_table.shape[0]))


def _tree_args(tree, vocab: int) -> tuple:
    """(codes, points, lengths, width, node_lr) as the kernel takes them: addresses into the tree's own contiguous
    arrays (the tree outlives the call), or NULLs for negative sampling (and for node_lr when the tree has none)."""
    if tree is None:
        return None, None, None, 0, None
    if tree.codes.shape[0] != vocab:
        raise ValueError(f"a Huffman tree over {tree.codes.shape[0]} words for a vocabulary of {vocab}")
    arrays = (tree.codes, tree.points, tree.lengths)
    if not all(a.flags.c_contiguous for a in arrays) or (tree.codes.dtype, tree.points.dtype, tree.lengths.dtype) \
            != (np.uint8, np.int32, np.int32):
        raise ValueError("the Huffman tree's arrays must be contiguous uint8 codes, int32 points and int32 lengths")
    node_lr = tree.node_lr
    if node_lr is not None and (node_lr.dtype != np.float32 or not node_lr.flags.c_contiguous
                                or len(node_lr) != max(vocab - 1, 0)):
        raise ValueError(f"the Huffman tree's node_lr must be {max(vocab - 1, 0)} contiguous float32s")
    return (tree.codes.ctypes.data, tree.points.ctypes.data, tree.lengths.ctypes.data, tree.codes.shape[1],
            None if node_lr is None else node_lr.ctypes.data)


def _row_marks(marks, table) -> int:
    """The address of a table's row marks: one contiguous uint8 per row (the kernel writes through it)."""
    import torch

    if marks.dtype != torch.uint8 or not marks.is_contiguous() or marks.device.type != "cpu" \
            or marks.shape != (table.shape[0],):
        raise ValueError(f"row marks must be a contiguous uint8 CPU tensor of {table.shape[0]} bytes, got "
                         f"{marks.dtype} {tuple(marks.shape)} on {marks.device}")
    return marks.data_ptr()
