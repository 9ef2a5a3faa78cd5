"""Triton kernels for backend=fused on a GPU: word2vec's per-example SGD, Hogwild across programs.

The batched torch path (w2v/kernels/sgns_torch.py) sums the updates of a whole batch before
applying them, so a frequent word's rows take one large step per batch; large
batches, which a GPU needs, then cost quality. These kernels instead do what
word2vec.c and the CPU kernel (sgns.c) do: each example reads the current rows,
and its updates land at once with atomic adds, while thousands of programs run
side by side without locks (Hogwild). Batch size then plays no part in the
result, only in the launch.

Each program trains `EXAMPLES` consecutive examples in order; one example is one
(centre, context) pair for skip-gram or one window for CBOW, with K negatives:
  score  = <h, out[t]>  for the target t (label 1) and each negative (label 0)
  g      = lr * (label - sigmoid(score))          (0 for a negative equal to the target)
  out[t] += g * h      immediately, so a repeated negative sees its own first update
  h_grad += g * out[t] (with out[t] as read before its update)
and at the end the input row(s) get h_grad: the centre for skip-gram, every valid
context word for CBOW (word2vec's full error, not divided by the window size).
With hierarchical softmax (model.loss=hs, the `_hs` kernels) the targets are the inner nodes
on the predicted word's Huffman path instead (w2v/huffman.py): label 1 - code, no negatives.

Needs the `triton` package: present with CUDA builds of PyTorch. With
TRITON_INTERPRET=1 the same kernels run on CPU tensors, one program after the
other, which is how tests/test_triton_kernel.py checks them against autograd on
a machine without a GPU.
"""
from __future__ import annotations

import os

import torch

try:  # triton ships with CUDA builds of torch; CPU builds have none
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = None

EXAMPLES_PER_PROGRAM = 16  # a few examples per program amortise its start; more would serialise work
# One warp holds a 100-float row as 32 lanes x 4 values, so a dot product is a warp shuffle
# reduction with no shared memory or barrier. Chosen by that reasoning, not yet by a GPU
# measurement: scripts/bench_gpu.py --num-warps sweeps it.
NUM_WARPS = 1


def available(device: torch.device) -> bool:
    """True when these kernels can run on tensors of `device`."""
    if triton is None:
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and os.environ.get("TRITON_INTERPRET", "0") == "1"


if triton is not None:

    @triton.jit
    def _log_sigmoid(x):
        # log(sigmoid(x)) without overflow: min(x, 0) - log(1 + exp(-|x|))
        return tl.minimum(x, 0.0) - tl.log(1.0 + tl.exp(-tl.abs(x)))

    @triton.jit
    def _train_targets(h, out_ptr, target, negatives_ptr, example, lr, cols, in_row,
                       DIM: tl.constexpr, K: tl.constexpr):
        """The target and K negatives of one example against hidden vector h: updates the output
        rows in place, returns (gradient for h, loss)."""
        h_grad = tl.zeros_like(h)
        row_ptr = out_ptr + target.to(tl.int64) * DIM + cols
        row = tl.load(row_ptr, mask=in_row, other=0.0)
        score = tl.sum(h * row, axis=0)
        g = lr * (1.0 - tl.sigmoid(score))
        h_grad += g * row
        tl.atomic_add(row_ptr, g * h, mask=in_row)
        loss = -_log_sigmoid(score)
        for k in tl.static_range(K):
            negative = tl.load(negatives_ptr + example * K + k)
            use = (negative != target).to(tl.float32)  # a negative equal to the target is skipped
            row_ptr = out_ptr + negative.to(tl.int64) * DIM + cols
            row = tl.load(row_ptr, mask=in_row, other=0.0)
            score = tl.sum(h * row, axis=0)
            g = -lr * tl.sigmoid(score) * use
            h_grad += g * row
            tl.atomic_add(row_ptr, g * h, mask=in_row)
            loss += -_log_sigmoid(-score) * use
        return h_grad, loss

    @triton.jit
    def _train_path(h, out_ptr, word, codes_ptr, points_ptr, lengths_ptr, node_lr_ptr, width, lr, cols, in_row,
                    DIM: tl.constexpr):
        """Hierarchical softmax for one example: h against the inner nodes on `word`'s Huffman path
        (output rows updated in place, each at once, at its node's share of lr: node_lr_ptr, one float per
        output row); returns (gradient for h, loss)."""
        h_grad = tl.zeros_like(h)
        loss = 0.0
        path = word.to(tl.int64) * width
        length = tl.load(lengths_ptr + word).to(tl.int32)
        for k in range(length):
            code = tl.load(codes_ptr + path + k).to(tl.float32)
            node = tl.load(points_ptr + path + k).to(tl.int64)
            row_ptr = out_ptr + node * DIM + cols
            row = tl.load(row_ptr, mask=in_row, other=0.0)
            score = tl.sum(h * row, axis=0)
            # word2vec.c leaves a saturated node alone (w2v/objective.py HS_MAX_SCORE)
            g = tl.where(tl.abs(score) < 6.0, lr * (1.0 - code - tl.sigmoid(score)), 0.0)
            h_grad += g * row
            tl.atomic_add(row_ptr, g * tl.load(node_lr_ptr + node) * h, mask=in_row)
            loss += -_log_sigmoid((1.0 - 2.0 * code) * score)
        return h_grad, loss

    @triton.jit
    def _skipgram_hs_kernel(in_ptr, out_ptr, centres_ptr, contexts_ptr, codes_ptr, points_ptr, lengths_ptr,
                            node_lr_ptr, lrs_ptr, losses_ptr, n, width, DIM: tl.constexpr, BLOCK_DIM: tl.constexpr,
                            EXAMPLES: tl.constexpr):
        program = tl.program_id(0)
        cols = tl.arange(0, BLOCK_DIM)
        in_row = cols < DIM
        total = 0.0
        for i in range(EXAMPLES):
            example = program.to(tl.int64) * EXAMPLES + i
            if example < n:
                h_ptr = in_ptr + tl.load(centres_ptr + example).to(tl.int64) * DIM + cols
                h = tl.load(h_ptr, mask=in_row, other=0.0)
                h_grad, loss = _train_path(h, out_ptr, tl.load(contexts_ptr + example), codes_ptr, points_ptr,
                                           lengths_ptr, node_lr_ptr, width, tl.load(lrs_ptr + example), cols, in_row, DIM)
                tl.atomic_add(h_ptr, h_grad, mask=in_row)
                total += loss
        tl.store(losses_ptr + program, total)

    @triton.jit
    def _cbow_hs_kernel(in_ptr, out_ptr, contexts_ptr, mask_ptr, centres_ptr, codes_ptr, points_ptr, lengths_ptr,
                        node_lr_ptr, lrs_ptr, losses_ptr, n, width, DIM: tl.constexpr, BLOCK_DIM: tl.constexpr,
                        WIDTH: tl.constexpr, EXAMPLES: tl.constexpr):
        program = tl.program_id(0)
        cols = tl.arange(0, BLOCK_DIM)
        in_row = cols < DIM
        total = 0.0
        for i in range(EXAMPLES):
            example = program.to(tl.int64) * EXAMPLES + i
            if example < n:
                h = tl.zeros((BLOCK_DIM,), dtype=tl.float32)
                count = 0.0
                for j in tl.static_range(WIDTH):
                    use = tl.load(mask_ptr + example * WIDTH + j).to(tl.float32)
                    word = tl.load(contexts_ptr + example * WIDTH + j)
                    h += use * tl.load(in_ptr + word.to(tl.int64) * DIM + cols, mask=in_row, other=0.0)
                    count += use
                h = h / tl.maximum(count, 1.0)
                h_grad, loss = _train_path(h, out_ptr, tl.load(centres_ptr + example), codes_ptr, points_ptr,
                                           lengths_ptr, node_lr_ptr, width, tl.load(lrs_ptr + example), cols, in_row, DIM)
                for j in tl.static_range(WIDTH):
                    if tl.load(mask_ptr + example * WIDTH + j) != 0:  # as _cbow_kernel: no atomic on unused slots
                        word = tl.load(contexts_ptr + example * WIDTH + j)
                        tl.atomic_add(in_ptr + word.to(tl.int64) * DIM + cols, h_grad, mask=in_row)
                total += loss
        tl.store(losses_ptr + program, total)

    @triton.jit
    def _skipgram_kernel(in_ptr, out_ptr, centres_ptr, contexts_ptr, negatives_ptr, lrs_ptr, losses_ptr, n,
                         DIM: tl.constexpr, BLOCK_DIM: tl.constexpr, K: tl.constexpr, EXAMPLES: tl.constexpr):
        program = tl.program_id(0)
        cols = tl.arange(0, BLOCK_DIM)
        in_row = cols < DIM
        total = 0.0
        for i in range(EXAMPLES):
            example = program.to(tl.int64) * EXAMPLES + i  # 64-bit: example * K may pass 2**31
            if example < n:
                centre = tl.load(centres_ptr + example)
                h_ptr = in_ptr + centre.to(tl.int64) * DIM + cols
                h = tl.load(h_ptr, mask=in_row, other=0.0)
                h_grad, loss = _train_targets(h, out_ptr, tl.load(contexts_ptr + example), negatives_ptr,
                                              example, tl.load(lrs_ptr + example), cols, in_row, DIM, K)
                tl.atomic_add(h_ptr, h_grad, mask=in_row)
                total += loss
        tl.store(losses_ptr + program, total)

    @triton.jit
    def _cbow_kernel(in_ptr, out_ptr, contexts_ptr, mask_ptr, centres_ptr, negatives_ptr, lrs_ptr, losses_ptr, n,
                     DIM: tl.constexpr, BLOCK_DIM: tl.constexpr, K: tl.constexpr, WIDTH: tl.constexpr,
                     EXAMPLES: tl.constexpr):
        program = tl.program_id(0)
        cols = tl.arange(0, BLOCK_DIM)
        in_row = cols < DIM
        total = 0.0
        for i in range(EXAMPLES):
            example = program.to(tl.int64) * EXAMPLES + i  # 64-bit: example * K may pass 2**31
            if example < n:
                h = tl.zeros((BLOCK_DIM,), dtype=tl.float32)
                count = 0.0
                for j in tl.static_range(WIDTH):
                    use = tl.load(mask_ptr + example * WIDTH + j).to(tl.float32)
                    word = tl.load(contexts_ptr + example * WIDTH + j)
                    h += use * tl.load(in_ptr + word.to(tl.int64) * DIM + cols, mask=in_row, other=0.0)
                    count += use
                h = h / tl.maximum(count, 1.0)
                h_grad, loss = _train_targets(h, out_ptr, tl.load(centres_ptr + example), negatives_ptr,
                                              example, tl.load(lrs_ptr + example), cols, in_row, DIM, K)
                for j in tl.static_range(WIDTH):
                    # skipped, not zero-added: an unused slot holds some real (often frequent) word,
                    # whose row would otherwise take a useless, contended atomic
                    if tl.load(mask_ptr + example * WIDTH + j) != 0:
                        word = tl.load(contexts_ptr + example * WIDTH + j)
                        tl.atomic_add(in_ptr + word.to(tl.int64) * DIM + cols, h_grad, mask=in_row)
                total += loss
        tl.store(losses_ptr + program, total)


def _launch_shape(n: int, dim: int) -> tuple[int, int]:
    return triton.cdiv(n, EXAMPLES_PER_PROGRAM), triton.next_power_of_2(dim)


def _lrs(lr: torch.Tensor | float, n: int, like: torch.Tensor) -> torch.Tensor:
    """One learning rate per example (a linear decay across a chunk is passed in as a tensor)."""
    if isinstance(lr, torch.Tensor) and lr.dim() == 1:
        return lr.to(device=like.device, dtype=torch.float32).contiguous()
    return torch.full((n,), float(lr), device=like.device, dtype=torch.float32)


def skipgram_examples(in_table: torch.Tensor, out_table: torch.Tensor, centres: torch.Tensor,
                      contexts: torch.Tensor, negatives: torch.Tensor, lr: torch.Tensor | float) -> torch.Tensor:
    """Train the pairs in place, one after another within a program; returns the summed loss (a tensor)."""
    n, k = negatives.shape
    dim = in_table.shape[1]
    grid, block = _launch_shape(n, dim)
    losses = torch.empty(grid, device=in_table.device, dtype=torch.float32)
    _skipgram_kernel[(grid,)](in_table, out_table, centres.contiguous(), contexts.contiguous(),
                              negatives.contiguous(), _lrs(lr, n, in_table), losses, n,
                              DIM=dim, BLOCK_DIM=block, K=k, EXAMPLES=EXAMPLES_PER_PROGRAM, num_warps=NUM_WARPS)
    return losses.sum(dtype=torch.float64)


def cbow_examples(in_table: torch.Tensor, out_table: torch.Tensor, contexts: torch.Tensor, mask: torch.Tensor,
                  centres: torch.Tensor, negatives: torch.Tensor, lr: torch.Tensor | float) -> torch.Tensor:
    """Train the windows (contexts (n, 2W), mask (n, 2W) bool) in place; returns the summed loss."""
    n, k = negatives.shape
    dim = in_table.shape[1]
    grid, block = _launch_shape(n, dim)
    losses = torch.empty(grid, device=in_table.device, dtype=torch.float32)
    _cbow_kernel[(grid,)](in_table, out_table, contexts.contiguous(), mask.to(torch.int8).contiguous(),
                          centres.contiguous(), negatives.contiguous(), _lrs(lr, n, in_table), losses, n,
                          DIM=dim, BLOCK_DIM=block, K=k, WIDTH=contexts.shape[1], EXAMPLES=EXAMPLES_PER_PROGRAM,
                          num_warps=NUM_WARPS)
    return losses.sum(dtype=torch.float64)


def skipgram_hs_examples(in_table: torch.Tensor, out_table: torch.Tensor, centres: torch.Tensor,
                         contexts: torch.Tensor, codes: torch.Tensor, points: torch.Tensor, lengths: torch.Tensor,
                         node_lr: torch.Tensor, lr: torch.Tensor | float) -> torch.Tensor:
    """Hierarchical softmax: each centre against its context's Huffman path (codes (V, L) int8, points
    (V, L) int64, lengths (V,) int64, node_lr float32 per output row, on the tables' device), in place;
    returns the summed loss."""
    n, dim = centres.shape[0], in_table.shape[1]
    grid, block = _launch_shape(n, dim)
    losses = torch.empty(grid, device=in_table.device, dtype=torch.float32)
    _skipgram_hs_kernel[(grid,)](in_table, out_table, centres.contiguous(), contexts.contiguous(), codes, points,
                                 lengths, node_lr, _lrs(lr, n, in_table), losses, n, codes.shape[1], DIM=dim, BLOCK_DIM=block,
                                 EXAMPLES=EXAMPLES_PER_PROGRAM, num_warps=NUM_WARPS)
    return losses.sum(dtype=torch.float64)


def cbow_hs_examples(in_table: torch.Tensor, out_table: torch.Tensor, contexts: torch.Tensor, mask: torch.Tensor,
                     centres: torch.Tensor, codes: torch.Tensor, points: torch.Tensor, lengths: torch.Tensor,
                     node_lr: torch.Tensor, lr: torch.Tensor | float) -> torch.Tensor:
    """Hierarchical softmax: each window's context mean against its centre's Huffman path; the summed loss."""
    n, dim = centres.shape[0], in_table.shape[1]
    grid, block = _launch_shape(n, dim)
    losses = torch.empty(grid, device=in_table.device, dtype=torch.float32)
    _cbow_hs_kernel[(grid,)](in_table, out_table, contexts.contiguous(), mask.to(torch.int8).contiguous(),
                             centres.contiguous(), codes, points, lengths, node_lr, _lrs(lr, n, in_table), losses, n,
                             codes.shape[1], DIM=dim, BLOCK_DIM=block, WIDTH=contexts.shape[1],
                             EXAMPLES=EXAMPLES_PER_PROGRAM, num_warps=NUM_WARPS)
    return losses.sum(dtype=torch.float64)
