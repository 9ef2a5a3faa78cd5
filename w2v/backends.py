"""Embedding backends: where the two word2vec tables live and how they are updated.

Every backend holds an input table and an output table of shape (vocab, dim)
and trains them with plain SGD on the summed per-example loss, so that each
example moves its rows by lr * gradient, as word2vec's per-pair updates do.

- dense:  nn.Embedding; autograd builds a dense (vocab, dim) gradient each step.
- sparse: nn.Embedding(sparse=True); the gradient holds only the looked-up rows.
- onehot: nn.Linear(vocab, dim, bias=False) applied to one-hot rows: the literal
          "an embedding is a linear layer on one-hot inputs". Costs vocab floats
          per looked-up row, so it is for study, not for speed.
Register a new backend in BACKENDS; train.py picks it by `backend.name`.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .model import LOSSES, Batch
from .fused import FusedBackend  # hand-written steps, no autograd (not an EmbeddingBackend subclass)


def init_tables(vocab_size: int, dim: int, seed: int, init_range: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """word2vec's initialisation: input rows uniform in +-init_range/dim, output rows zero. (V, D) float32 each.

    The default 1.0 is gensim 4's (model.init_range); word2vec.c uses 0.5, which measured worse
    (docs/performance.md, "Quality vs gensim").
    """
    generator = torch.Generator().manual_seed(seed)
    input_table = (torch.rand(vocab_size, dim, generator=generator) * 2 - 1) * (init_range / dim)
    return input_table, torch.zeros(vocab_size, dim)


class EmbeddingBackend(nn.Module):
    """Base class: autograd computes the gradients, torch.optim.SGD applies them."""

    name = "base"
    sparse_gradients = False

    def lookup_input(self, ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def lookup_output(self, ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def input_weights(self) -> torch.Tensor:
        """(V, D) the input table (the word vectors that get exported)."""
        raise NotImplementedError

    def output_weights(self) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def create(cls, input_init: torch.Tensor, output_init: torch.Tensor, device: torch.device):
        """Build on `device`; a backend that keeps its tables elsewhere (offload) overrides this."""
        return cls(input_init, output_init).to(device)

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=lr)

    def train_step(self, model_name: str, batch: Batch, lr: float) -> torch.Tensor:
        """One SGD step on the batch; returns the summed loss (a detached scalar tensor)."""
        if not hasattr(self, "_optimizer"):
            self._optimizer = self.make_optimizer(lr)
        for group in self._optimizer.param_groups:
            group["lr"] = lr
        loss = LOSSES[model_name](self, batch).sum()
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._optimizer.step()
        return loss.detach()


class DenseBackend(EmbeddingBackend):
    name = "dense"

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


class SparseBackend(DenseBackend):
    """nn.Embedding(sparse=True). SGD accepts sparse gradients (so do SparseAdam and Adagrad)."""

    name = "sparse"
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


class OneHotBackend(EmbeddingBackend):
    name = "onehot"

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


BACKENDS: dict[str, type[EmbeddingBackend]] = {
    "dense": DenseBackend,
    "sparse": SparseBackend,
    "onehot": OneHotBackend,
    "fused": FusedBackend,
}
from . import offload  # noqa: E402,F401  adds BACKENDS["offload"] (it subclasses EmbeddingBackend)


def make_backend(name: str, input_init: torch.Tensor, output_init: torch.Tensor,
                 device: torch.device) -> EmbeddingBackend:
    """Build backend `name` with the given initial tables, on `device`."""
    if name not in BACKENDS:
        raise KeyError(f"unknown backend {name!r}; valid: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name].create(input_init, output_init, device)
