"""The autograd backends: torch modules hold the tables, autograd computes the gradients, torch.optim.SGD applies them.

- dense:  nn.Embedding; autograd builds a dense (vocab, dim) gradient each step.
- sparse: nn.Embedding(sparse=True); the gradient holds only the looked-up rows.
- onehot: nn.Linear(vocab, dim, bias=False) applied to one-hot rows: the literal
          "an embedding is a linear layer on one-hot inputs". Costs vocab floats
          per looked-up row, so it is for study, not for speed.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from ..objective import Batch, Objective
from .registry import register
from .base import FLOAT_BYTES, Backend


class AutogradBackend(Backend):
    """A step: the objective's loss through the lookups, backward, then the (public) optimiser's update."""

    losses = ("ns", "hs")  # whatever the objective's loss is: autograd differentiates it

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=lr)

    def optimizer_for(self, lr: float) -> torch.optim.Optimizer:
        """The optimiser (built on first use), set to learning rate lr."""
        if self.optimizer is None:
            self.optimizer = self.make_optimizer(lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return self.optimizer

    def train_step(self, objective: Objective, batch: Batch | None, lr: float,
                   sum_gradients: Callable[[list[nn.Parameter]], None] | None = None) -> torch.Tensor:
        """One SGD step on the batch; returns the summed loss (a detached scalar tensor).

        sum_gradients: under torchrun, replaces each parameter's gradient by the sum over the ranks
        before the update (w2v/distributed.py); a rank with no examples (batch None) still joins it.
        """
        optimizer = self.optimizer_for(lr)
        optimizer.zero_grad(set_to_none=True)
        if batch is not None and batch.size:
            loss = objective.loss(self, batch).sum()
            loss.backward()
        else:
            loss = torch.zeros((), device=self.step_device())
        if sum_gradients is not None:
            sum_gradients([p for p in self.parameters() if p.requires_grad])
        optimizer.step()
        return loss.detach()

    @classmethod
    def estimate_bytes(cls, vocab_size, dim, objective, batch_size, device_type="cpu", world_size=1,
                       sync_method="auto"):
        table = vocab_size * dim * FLOAT_BYTES
        # Two tables, each with a dense gradient of the same size unless the gradients are sparse.
        tables = 2 * table * (1 if cls.sparse_gradients else 2)
        batch = 4 * cls.looked_up_bytes(dim, objective, batch_size)  # rows, gradients, autograd intermediates
        return {"tables": tables, "batch": batch, "copies": 2 * table if device_type == "cpu" else 0, "sync": 0}


@register("dense")
class DenseBackend(AutogradBackend):
    """nn.Embedding tables, dense gradients."""

    def __init__(self, input_init: torch.Tensor, output_init: torch.Tensor, sparse: bool = False):
        super().__init__()
        vocab_size, dim = input_init.shape
        self.input_table = nn.Embedding(vocab_size, dim, sparse=sparse)
        self.output_table = nn.Embedding(vocab_size, dim, sparse=sparse)
        with torch.no_grad():
            self.input_table.weight.copy_(input_init)
            self.output_table.weight.copy_(output_init)

    def lookup_input(self, ids):
        return self.input_table(ids)

    def lookup_output(self, ids):
        return self.output_table(ids)

    def input_weights(self):
        return self.input_table.weight.detach()

    def output_weights(self):
        return self.output_table.weight.detach()


@register("sparse")
class SparseBackend(DenseBackend):
    """nn.Embedding(sparse=True). SGD accepts sparse gradients (so do SparseAdam and Adagrad)."""

    sparse_gradients = True

    def __init__(self, input_init: torch.Tensor, output_init: torch.Tensor):
        super().__init__(input_init, output_init, sparse=True)


class OneHotLinear(nn.Module):
    """nn.Linear(vocab, dim, bias=False) fed one-hot rows: ids (...,) -> (..., dim)."""

    def __init__(self, init: torch.Tensor):
        super().__init__()
        vocab_size, dim = init.shape
        self.linear = nn.Linear(vocab_size, dim, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(init.t())  # Linear stores (out_features, in_features)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        flat = ids.reshape(-1, 1)
        # Built in float directly: F.one_hot would first make an int64 copy twice the size.
        one_hot = torch.zeros(flat.shape[0], self.linear.in_features, device=ids.device,
                              dtype=self.linear.weight.dtype).scatter_(1, flat, 1.0)
        return self.linear(one_hot).reshape(*ids.shape, -1)


@register("onehot")
class OneHotBackend(AutogradBackend):
    """nn.Linear on one-hot rows: the same forward and gradients as nn.Embedding, at vocab floats per lookup."""

    batch_scales_with_vocab = True

    def __init__(self, input_init: torch.Tensor, output_init: torch.Tensor):
        super().__init__()
        self.input_table = OneHotLinear(input_init)
        self.output_table = OneHotLinear(output_init)

    def lookup_input(self, ids):
        return self.input_table(ids)

    def lookup_output(self, ids):
        return self.output_table(ids)

    def input_weights(self):
        return self.input_table.linear.weight.detach().t()

    def output_weights(self):
        return self.output_table.linear.weight.detach().t()

    @classmethod
    def estimate_bytes(cls, vocab_size, dim, objective, batch_size, device_type="cpu", world_size=1,
                       sync_method="auto"):
        need = super().estimate_bytes(vocab_size, dim, objective, batch_size, device_type, world_size, sync_method)
        # Each looked-up row is a one-hot vector of vocab floats, kept for the backward pass.
        need["batch"] += batch_size * sum(objective.rows_per_example()) * vocab_size * FLOAT_BYTES
        return need
