"""Skip-gram / CBOW steps in closed form, as torch ops: backend=fused off the C and Triton kernels.

Each example's output side is a row of (targets, labels, valid): with negative sampling the predicted
word (label 1) and its negatives (label 0, invalid where equal to the predicted word); with
hierarchical softmax the inner nodes on the predicted word's Huffman path (label 1 - code, valid
up to the path's length). Either way the loss is -sum valid * log s((2 label - 1) * score); with
hierarchical softmax a node whose |score| reaches HS_MAX_SCORE is not updated (word2vec.c's MAX_EXP).
Each step gathers a batch's rows, computes the gradients of the summed loss by hand and applies them
with index_add_ (updates to a row that recurs in a batch are summed, as with autograd), so one step
equals autograd's SGD step (tests/test_fused.py). The objective (w2v/objective.py) builds the
targets and hands them to the step of its model.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def logistic_update(hidden: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor,
                    lr: torch.Tensor | float,
                    max_score: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Closed-form gradients of the binary logistic losses, already scaled by -lr (so they are added).

    hidden (B, D) input vectors; rows (B, T, D) output rows; labels (B, T) 1 or 0; valid (B, T) float.
    max_score: a target with |score| at or above it is not updated (hierarchical softmax, as word2vec.c).
    Returns (hidden update (B, D), row updates (B, T, D), summed loss ()).
    d loss / d score = sigmoid(score) - label, so the step is lr * (label - sigmoid(score)).
    """
    scores = torch.bmm(rows, hidden.unsqueeze(2)).squeeze(2)
    g = (labels - torch.sigmoid(scores)) * valid * lr
    if max_score is not None:
        g = g * (scores.abs() < max_score)
    hidden_update = torch.bmm(g.unsqueeze(1), rows).squeeze(1)
    row_updates = g.unsqueeze(2) * hidden.unsqueeze(1)
    loss = -(F.logsigmoid(scores * (2 * labels - 1)) * valid).sum()
    return hidden_update, row_updates, loss


def sampled_targets(positive: torch.Tensor, negatives: torch.Tensor,
                    dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Negative sampling: (targets (B, 1+K), labels, valid); a negative equal to the target is skipped (gensim)."""
    targets = torch.cat([positive.unsqueeze(1), negatives], dim=1)
    labels = torch.zeros(targets.shape, dtype=dtype, device=targets.device)
    labels[:, 0] = 1.0
    valid = torch.cat([torch.ones_like(positive, dtype=torch.bool).unsqueeze(1),
                       negatives != positive.unsqueeze(1)], dim=1).to(dtype)
    return targets, labels, valid


def tree_targets(positive: torch.Tensor, codes: torch.Tensor, points: torch.Tensor, lengths: torch.Tensor,
                 dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hierarchical softmax: (inner-node rows (B, L), labels 1 - code, valid up to each path's length).

    codes (V, L) float, points (V, L) int64, lengths (V,) int64: w2v/huffman.py's tree on the device.
    """
    width = codes.shape[1]
    valid = torch.arange(width, device=positive.device).unsqueeze(0) < lengths[positive].unsqueeze(1)
    return points[positive], (1.0 - codes[positive]).to(dtype), valid.to(dtype)


def skipgram_step(in_table: torch.Tensor, out_table: torch.Tensor, centres: torch.Tensor, targets: torch.Tensor,
                  labels: torch.Tensor, valid: torch.Tensor, lr: torch.Tensor | float,
                  max_score: float | None = None, row_scale: torch.Tensor | None = None) -> torch.Tensor:
    """One summed-gradient SGD step in place: each centre's (B,) input row against its targets (B, T).
    row_scale (B, T): each target row's share of lr (hierarchical softmax's inner-node subsampling), or None."""
    hidden, rows = in_table[centres], out_table[targets]
    hidden_update, row_updates, loss = logistic_update(hidden, rows, labels, valid, lr, max_score)
    if row_scale is not None:
        row_updates = row_updates * row_scale.unsqueeze(2)
    out_table.index_add_(0, targets.reshape(-1), row_updates.reshape(-1, out_table.shape[1]))
    in_table.index_add_(0, centres, hidden_update)
    return loss


def cbow_step(in_table: torch.Tensor, out_table: torch.Tensor, contexts: torch.Tensor, mask: torch.Tensor,
              targets: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor,
              lr: torch.Tensor | float, max_score: float | None = None,
              row_scale: torch.Tensor | None = None) -> torch.Tensor:
    """CBOW step in place: the context mean (B, 2W) against the targets; every context row gets the full error.
    row_scale: as skipgram_step's."""
    weights = mask.to(in_table.dtype).unsqueeze(2)
    hidden = (in_table[contexts] * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    rows = out_table[targets]
    hidden_update, row_updates, loss = logistic_update(hidden, rows, labels, valid, lr, max_score)
    if row_scale is not None:
        row_updates = row_updates * row_scale.unsqueeze(2)
    out_table.index_add_(0, targets.reshape(-1), row_updates.reshape(-1, out_table.shape[1]))
    in_table.index_add_(0, contexts.reshape(-1), (hidden_update.unsqueeze(1) * weights).reshape(-1, in_table.shape[1]))
    return loss
