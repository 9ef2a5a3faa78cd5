"""The backend interface: where the two word2vec tables live, how they learn, and what a backend can do.

A backend holds an input table and an output table of shape (vocab, dim) and trains them with
plain SGD on the summed per-example loss of the objective (w2v/objective.py), so that each
example moves its rows by lr * gradient, as word2vec's per-pair updates do.

The training loop (w2v/trainer.py) drives every backend the same way, per chunk of subsampled text:
    expanded = backend.expand(objective, chunk)        # host side, in a worker thread
    work = backend.plan(objective, expanded, generator) # the chunk's steps: one per batch, or one
    loss, examples = backend.step(objective, work[k], lr_from, lr_to)
and asks the class attributes below, never the backend's name, what else a run needs.
A new backend is one module that subclasses Backend and is registered (w2v/backends/__init__.py;
docs/backends.md has a complete example).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn as nn

from ..batches import NoiseSampler
from ..config import BackendConfig
from ..objective import Batch, Objective

FLOAT_BYTES = 4
STEP_UNITS = ("batch", "chunk")
DATA_PARALLEL = ("gradients", "tables", None)


def init_tables(vocab_size: int, dim: int, seed: int, init_range: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """word2vec's initialisation: input rows uniform in +-init_range/dim, output rows zero. (V, D) float32 each.

    The default 1.0 is gensim 4's (model.init_range); word2vec.c uses 0.5, which measured worse
    (docs/performance.md, "Quality vs gensim").
    """
    generator = torch.Generator().manual_seed(seed)
    input_table = (torch.rand(vocab_size, dim, generator=generator) * 2 - 1) * (init_range / dim)
    return input_table, torch.zeros(vocab_size, dim)


class Backend(nn.Module, ABC):
    """Two (V, D) tables and the way they learn. Capabilities are class attributes, read before building one."""

    name: ClassVar[str] = "base"  # the config's backend.name; set by @register
    # "batch": one step per train.batch_size examples, expanded on the host by the objective;
    # "chunk": one step takes a whole subsampled chunk (the backend expands it itself).
    step_unit: ClassVar[str] = "batch"
    # How ranks under torchrun combine their work: "gradients": summed before every update
    # (w2v/distributed.py); "tables": each rank trains alone and the rows they moved are combined
    # between chunks (w2v/table_sync.py; needs step_unit "chunk"); None: not data-parallel (refused).
    data_parallel: ClassVar[str | None] = "gradients"
    updates_in_place: ClassVar[bool] = False  # moves its tables itself: no torch optimiser, no autograd update
    sparse_gradients: ClassVar[bool] = False  # its gradients hold only the looked-up rows
    batch_scales_with_vocab: ClassVar[bool] = False  # a looked-up row costs vocabulary-many floats (onehot)
    chunk_tokens: int = 1 << 20  # corpus words per chunk the loop hands over
    # The model.loss values it trains: "ns" (negative sampling), "hs" (hierarchical softmax). A backend that
    # trains through objective.loss gets both from the objective; one that writes its own updates lists
    # what it implements. The default is the conservative one: a run asking for another loss is refused.
    losses: ClassVar[tuple[str, ...]] = ("ns",)
    optimizer: torch.optim.Optimizer | None = None  # built on the first step by make_optimizer (autograd backends)

    @classmethod
    def create(cls, input_init: torch.Tensor, output_init: torch.Tensor, device: torch.device,
               config: BackendConfig | None = None) -> "Backend":
        """Build on `device` from the initial tables; `config` holds the backend's own keys (backend.*)."""
        return cls(input_init, output_init).to(device)

    # -- the tables ----------------------------------------------------------------------------
    @abstractmethod
    def input_weights(self) -> torch.Tensor:
        """(V, D) the input table (the word vectors that get exported), as the backend holds it."""

    @abstractmethod
    def output_weights(self) -> torch.Tensor:
        """(V, D) the output table."""

    @abstractmethod
    def lookup_input(self, ids: torch.Tensor) -> torch.Tensor:
        """(..., D) input rows of `ids`, through autograd where the backend learns by it."""

    @abstractmethod
    def lookup_output(self, ids: torch.Tensor) -> torch.Tensor:
        """(..., D) output rows of `ids`."""

    def step_device(self) -> torch.device:
        """Where a step's examples and negatives live."""
        return self.input_weights().device

    # -- memory --------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def estimate_bytes(cls, vocab_size: int, dim: int, objective: Objective, batch_size: int,
                       device_type: str = "cpu", world_size: int = 1, sync_method: str = "auto") -> dict[str, int]:
        """Bytes one rank allocates on its training device, at the peak of each kind:

        'tables': weights + gradients; 'batch': the per-step working set; 'copies': the initial tables
        while the backend copies them (on the CPU); 'sync': what combining the ranks' work holds.
        """

    @staticmethod
    def looked_up_bytes(dim: int, objective: Objective, batch_size: int) -> int:
        """The rows one batch reads from both tables, in bytes."""
        return batch_size * sum(objective.rows_per_example()) * dim * FLOAT_BYTES

    # -- training, as the loop drives it ------------------------------------------------------
    def prepare(self, counts: np.ndarray, batch_size: int = 1024, seed: int = 1) -> None:
        """Once before training: the noise distribution (unigram^0.75 of counts) and the batch size."""
        self.batch_size = batch_size
        self.sampler = NoiseSampler(counts, self.step_device())

    def expand(self, objective: Objective, chunk) -> Any:
        """A chunk's host-side work, done in a worker thread while the previous chunk trains."""
        return objective.examples(chunk)

    def plan(self, objective: Objective, expanded: Any, generator: torch.Generator) -> list:
        """The chunk's steps, as `step` takes them: Batches of batch_size examples, negatives drawn from `generator`."""
        return list(device_batches(expanded, self.batch_size, objective.negative, self.sampler, generator,
                                   self.step_device()))

    def step(self, objective: Objective, work: Any, lr_from: float, lr_to: float) -> tuple[torch.Tensor | float, int]:
        """One step of the loop at learning rate lr_to; (summed loss, examples trained). `work` None: nothing to do."""
        if work is None:
            return 0.0, 0
        return self.train_step(objective, work, lr_to), work.size

    @abstractmethod
    def train_step(self, objective: Objective, batch: Batch, lr: float) -> torch.Tensor:
        """One plain SGD step on the summed loss of `batch`; returns that loss (a detached scalar)."""

    def track_rows(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Start marking the rows training writes: (input, output) uint8 per row, 1 = written since the table
        sync last cleared it (w2v/table_sync.py). None: this backend cannot say, and a sync compares whole tables."""
        return None

    def loop_state(self) -> dict | None:
        """What a checkpoint needs to continue the backend's own random streams (None: nothing)."""
        return None

    def load_loop_state(self, state: dict) -> None:
        """Continue from loop_state() after a resume (called after prepare)."""

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        raise NotImplementedError(f"backend={self.name} applies its updates itself: it has no torch optimiser")

    def restore_optimizer(self, state: dict, lr: float) -> None:
        """Rebuild the optimiser from a checkpoint's state."""
        self.optimizer = self.make_optimizer(lr)
        self.optimizer.load_state_dict(state)


def device_batches(examples: dict[str, np.ndarray], batch_size: int, negative: int, sampler: NoiseSampler,
                   generator: torch.Generator, device: torch.device):
    """Move a chunk's examples to the device once, draw their negatives there, and slice batches."""
    on_device = {k: torch.from_numpy(v).to(device, non_blocking=True) for k, v in examples.items()}
    n = len(examples["centres"])
    if n == 0:
        return
    negatives = sampler.sample((n, negative), generator)
    for start in range(0, n, batch_size):
        end = min(n, start + batch_size)
        yield Batch(centres=on_device["centres"][start:end], contexts=on_device["contexts"][start:end],
                    negatives=negatives[start:end],
                    mask=on_device["mask"][start:end] if "mask" in on_device else None)
