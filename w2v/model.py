"""Skip-gram and CBOW negative-sampling losses, written against a backend's row lookups.

A backend supplies `lookup_input(ids)` and `lookup_output(ids)`, each returning
(..., dim) rows of its input and output tables; the losses here are plain
autograd code, so every autograd backend trains exactly the same objective.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Batch:
    """One optimiser step of examples, on the training device.

    skip-gram: centres (B,) input words, contexts (B,) predicted words.
    CBOW:      contexts (B, 2*window) input words with mask (B, 2*window), centres (B,) predicted.
    negatives: (B, K) noise words for the predicted word of each example.
    """

    centres: torch.Tensor
    contexts: torch.Tensor
    negatives: torch.Tensor
    mask: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.centres.shape[0])


def negative_sampling_loss(hidden: torch.Tensor, positive_rows: torch.Tensor, negative_rows: torch.Tensor,
                           negative_valid: torch.Tensor) -> torch.Tensor:
    """Per-example loss -log s(h.u+) - sum_k log s(-h.u_k).

    hidden (B, D), positive_rows (B, D), negative_rows (B, K, D), negative_valid (B, K) bool.
    A negative equal to the positive word is skipped, as word2vec and gensim do.
    """
    positive_score = (hidden * positive_rows).sum(-1)
    negative_score = torch.bmm(negative_rows, hidden.unsqueeze(-1)).squeeze(-1)
    negative_term = F.logsigmoid(-negative_score) * negative_valid
    return -(F.logsigmoid(positive_score) + negative_term.sum(-1))


def skipgram_loss(backend, batch: Batch) -> torch.Tensor:
    """(B,) loss of predicting each context word (and rejecting the negatives) from its centre."""
    hidden = backend.lookup_input(batch.centres)
    targets = torch.cat([batch.contexts.unsqueeze(1), batch.negatives], dim=1)
    rows = backend.lookup_output(targets)
    valid = batch.negatives != batch.contexts.unsqueeze(1)
    return negative_sampling_loss(hidden, rows[:, 0], rows[:, 1:], valid)


def cbow_hidden(context_rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the context rows (B, 2W, D) -> (B, D), with word2vec's update rule.

    The forward value is the mean. The backward pass hands the full error to
    every context word, not error / count: that is what word2vec.c and gensim
    (cbow_mean=1) do, and matching it keeps CBOW's quality and learning rate on par.
    """
    weights = mask.to(context_rows.dtype).unsqueeze(-1)
    summed = (context_rows * weights).sum(1)
    count = weights.sum(1).clamp_min(1.0)
    return summed.detach() / count + (summed - summed.detach())


def cbow_loss(backend, batch: Batch) -> torch.Tensor:
    """(B,) loss of predicting each centre word from the mean of its context."""
    hidden = cbow_hidden(backend.lookup_input(batch.contexts), batch.mask)
    targets = torch.cat([batch.centres.unsqueeze(1), batch.negatives], dim=1)
    rows = backend.lookup_output(targets)
    valid = batch.negatives != batch.centres.unsqueeze(1)
    return negative_sampling_loss(hidden, rows[:, 0], rows[:, 1:], valid)


LOSSES = {"skipgram": skipgram_loss, "cbow": cbow_loss}
