"""Skip-gram / CBOW negative-sampling steps in closed form, as torch ops: backend=fused off the C and Triton kernels.

Each step gathers a batch's rows, computes the gradients of the summed loss by hand and applies them
with index_add_ (updates to a row that recurs in a batch are summed, as with autograd), so one step
equals autograd's SGD step (tests/test_fused.py). Both steps take the same arguments, in the same
order, so the objective (w2v/objective.py) can hand either one to the fused backend.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def negative_sampling_update(hidden: torch.Tensor, rows: torch.Tensor, valid: torch.Tensor,
                             lr: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Closed-form SGNS gradients, already scaled by -lr (so they are added).

    hidden (B, D) input vectors; rows (B, 1+K, D) output rows, column 0 the target;
    valid (B, 1+K) float, 0 where a negative equals the target (skipped, as gensim does).
    Returns (hidden update (B, D), row updates (B, 1+K, D), summed loss ()).
    d loss / d score = sigmoid(score) - label, so the step is lr * (label - sigmoid(score)).
    """
    scores = torch.bmm(rows, hidden.unsqueeze(2)).squeeze(2)
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    g = (labels - torch.sigmoid(scores)) * valid * lr
    hidden_update = torch.bmm(g.unsqueeze(1), rows).squeeze(1)
    row_updates = g.unsqueeze(2) * hidden.unsqueeze(1)
    # -log s(x) for the target, -log s(-x) for each valid negative.
    loss = -(F.logsigmoid(scores[:, 0]).sum() + (F.logsigmoid(-scores[:, 1:]) * valid[:, 1:]).sum())
    return hidden_update, row_updates, loss


def _targets_and_valid(positive: torch.Tensor, negatives: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    targets = torch.cat([positive.unsqueeze(1), negatives], dim=1)
    valid = torch.cat([torch.ones_like(positive, dtype=torch.bool).unsqueeze(1),
                       negatives != positive.unsqueeze(1)], dim=1).to(dtype)
    return targets, valid


def skipgram_step(in_table: torch.Tensor, out_table: torch.Tensor, centres: torch.Tensor, contexts: torch.Tensor,
                  mask: None, negatives: torch.Tensor, lr: torch.Tensor | float) -> torch.Tensor:
    """One summed-gradient SGD step in place; centres (B,), contexts (B,), negatives (B, K). Returns the loss sum.

    `mask` is unused (skip-gram has one context per example); it keeps the arguments cbow_step's.
    """
    targets, valid = _targets_and_valid(contexts, negatives, in_table.dtype)
    hidden, rows = in_table[centres], out_table[targets]
    hidden_update, row_updates, loss = negative_sampling_update(hidden, rows, valid, lr)
    out_table.index_add_(0, targets.reshape(-1), row_updates.reshape(-1, out_table.shape[1]))
    in_table.index_add_(0, centres, hidden_update)
    return loss


def cbow_step(in_table: torch.Tensor, out_table: torch.Tensor, centres: torch.Tensor, contexts: torch.Tensor,
              mask: torch.Tensor, negatives: torch.Tensor, lr: torch.Tensor | float) -> torch.Tensor:
    """CBOW step in place: the context mean (B, 2W) predicts centres (B,); every context row gets the full error."""
    weights = mask.to(in_table.dtype).unsqueeze(2)
    hidden = (in_table[contexts] * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    targets, valid = _targets_and_valid(centres, negatives, in_table.dtype)
    rows = out_table[targets]
    hidden_update, row_updates, loss = negative_sampling_update(hidden, rows, valid, lr)
    out_table.index_add_(0, targets.reshape(-1), row_updates.reshape(-1, out_table.shape[1]))
    in_table.index_add_(0, contexts.reshape(-1), (hidden_update.unsqueeze(1) * weights).reshape(-1, in_table.shape[1]))
    return loss
