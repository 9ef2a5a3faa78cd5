"""backend=offload: both tables stay in host memory; each step moves only the batch's rows.

For vocabularies whose two (V, D) tables do not fit in GPU memory. One step:
  1. find the unique ids the loss will look up in each table (sorted);
  2. gather those rows on the host (into pinned memory when CUDA is present) and
     copy them to the device on an upload stream;
  3. on the device: the loss, its gradient with respect to the gathered rows
     (autograd), and the SGD update delta = -lr * gradient;
  4. copy delta back on a download stream and add it into the host table (index_add_).

Write-back runs one step behind: step t's deltas are added to the host tables
during step t+1, after step t+1's kernels are queued, so the host-side
index_add_ of step t overlaps the device compute of step t+1, and step t's
download overlaps step t+1's host-side gather. Rows that step t+1 gathers
before step t's write-back are stale only where step t changed them; those
are patched on the device from step t's updated rows, so every step sees
exactly the weights plain SGD would: the result equals `dense` up to float
summation order. (The trainer hands over ids on the device, so reading them
back is one sync per step: the next batch's rows cannot be fetched before the
current batch's compute has finished.)

On a CPU-only machine the same code runs, the copies being no-ops; keeping the
one-step-behind write-back and the patch there too means the CPU tests check
the logic the GPU relies on.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..objective import Batch, Objective
from .base import FLOAT_BYTES, Backend
from .registry import register


@dataclass
class StepRows:
    """The rows one step took from one table, and what it did to them."""

    ids_host: torch.Tensor  # (n,) sorted unique int64 ids, on the host
    ids: torch.Tensor  # the same ids on the compute device
    rows: torch.Tensor | None = None  # (n, D) on the device; an autograd leaf during the step
    updated: torch.Tensor | None = None  # (n, D) rows + delta, on the device (patches the next step)
    delta_host: torch.Tensor | None = None  # (n, D) -lr * gradient, on the host once `downloaded` fired
    downloaded: torch.cuda.Event | None = None


def patch_stale_rows(rows: torch.Tensor, ids: torch.Tensor, previous: StepRows) -> torch.Tensor:
    """Replace the rows of `ids` that the previous step changed by their updated values.

    Both id lists are sorted and unique; torch.where (not a boolean mask) keeps it free of syncs.
    """
    pos = torch.searchsorted(previous.ids, ids).clamp_max_(len(previous.ids) - 1)
    hit = previous.ids[pos] == ids
    return torch.where(hit.unsqueeze(1), previous.updated[pos], rows)


@register("offload")
class OffloadBackend(Backend):
    """Tables in host memory, rows moved per step, SGD applied on the host."""

    losses = ("ns", "hs")  # moves the rows objective.lookups names and differentiates objective.loss
    data_parallel = None  # SGD on host tables in its own step: no gradients for the ranks to sum
    updates_in_place = True

    def __init__(self, input_init: torch.Tensor, output_init: torch.Tensor,
                 device: torch.device | str = "cpu"):
        super().__init__()
        self.device = torch.device(device)
        self.on_cuda = self.device.type == "cuda"
        # One host copy per table, page-locked for a CUDA device: copies from pinned memory are
        # asynchronous and run at full bus speed. Plain attributes, not buffers: Module.to() must
        # never move them.
        self.tables = [torch.empty(t.shape, dtype=t.dtype, pin_memory=self.on_cuda).copy_(t.detach())
                       for t in (input_init, output_init)]
        if self.on_cuda:
            self.upload_stream = torch.cuda.Stream(self.device)
            self.download_stream = torch.cuda.Stream(self.device)
        self.current: list[StepRows | None] = [None, None]  # this step's rows, per table
        self.previous: list[StepRows | None] = [None, None]  # last step's, write-back pending

    @classmethod
    def create(cls, input_init: torch.Tensor, output_init: torch.Tensor, device: torch.device, config=None):
        return cls(input_init, output_init, device)

    def step_device(self) -> torch.device:
        return self.device

    @classmethod
    def estimate_bytes(cls, vocab_size, dim, objective, batch_size, device_type="cpu", world_size=1,
                       sync_method="auto"):
        table = vocab_size * dim * FLOAT_BYTES
        return {
            # Only looked-up rows reach an accelerator; without one, the tables are in the memory checked.
            "tables": 2 * table if device_type == "cpu" else 0,
            "batch": 4 * cls.looked_up_bytes(dim, objective, batch_size),  # rows, gradients, autograd intermediates
            "copies": 2 * table if device_type == "cpu" else 0, "sync": 0}

    # -- lookups used by the losses ------------------------------------------------------------
    def lookup_input(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lookup(0, ids)

    def lookup_output(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lookup(1, ids)

    def lookup(self, table: int, ids: torch.Tensor) -> torch.Tensor:
        """(..., D) rows of `ids`: from this step's gathered rows, or from the host outside a step."""
        step = self.current[table]
        if step is None:
            self.flush()
            return self.tables[table][ids.cpu()].to(ids.device)
        return step.rows[torch.searchsorted(step.ids, ids)]

    def input_weights(self) -> torch.Tensor:
        self.flush()
        return self.tables[0]

    def output_weights(self) -> torch.Tensor:
        self.flush()
        return self.tables[1]

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        raise NotImplementedError("backend=offload applies plain SGD itself, on the host tables")

    # -- one step -------------------------------------------------------------------------------
    def train_step(self, objective: Objective, batch: Batch, lr: float) -> torch.Tensor:
        """One SGD step on the batch; returns the summed loss (a detached scalar on the device)."""
        for table, ids in enumerate(objective.lookups(batch)):
            self.current[table] = self.fetch_rows(table, ids)
        try:
            loss = objective.loss(self, batch).sum()
            loss.backward()
            for table in (0, 1):
                self.start_update(self.current[table], lr)
        finally:
            finished, self.current = self.current, [None, None]
        # Step t's kernels are queued; the host now writes back step t-1 while the device works.
        for table in (0, 1):
            self.write_back(table, self.previous[table])
        self.previous = finished
        return loss.detach()

    def fetch_rows(self, table: int, ids: torch.Tensor) -> StepRows:
        """Gather the unique rows of `ids` from the host table onto the device, up to date."""
        unique = torch.unique(ids)  # sorted
        step = StepRows(ids_host=unique.cpu(), ids=unique.to(self.device))
        host = self.tables[table]
        if self.on_cuda:
            staging = torch.empty((len(step.ids_host), host.shape[1]), dtype=host.dtype, pin_memory=True)
            torch.index_select(host, 0, step.ids_host, out=staging)
            compute = torch.cuda.current_stream(self.device)
            with torch.cuda.stream(self.upload_stream):
                # Allocated on the upload stream; the host allocator keeps `staging` until the copy is done.
                rows = staging.to(self.device, non_blocking=True)
            compute.wait_stream(self.upload_stream)
            rows.record_stream(compute)  # used on the compute stream too: not to be reused before that
        else:
            rows = host.index_select(0, step.ids_host)  # a copy: the host table is not touched
        previous = self.previous[table]
        if previous is not None:
            rows = patch_stale_rows(rows, step.ids, previous)
        step.rows = rows.requires_grad_(True)
        return step

    def start_update(self, step: StepRows, lr: float) -> None:
        """Compute the SGD delta on the device and start copying it to the host."""
        grad = step.rows.grad if step.rows.grad is not None else torch.zeros_like(step.rows)
        delta = grad.mul(-lr)
        step.updated = step.rows.detach() + delta
        step.rows = None  # drops the autograd graph
        if not self.on_cuda:
            step.delta_host = delta
            return
        compute = torch.cuda.current_stream(self.device)
        step.delta_host = torch.empty(delta.shape, dtype=delta.dtype, pin_memory=True)
        step.downloaded = torch.cuda.Event()
        self.download_stream.wait_stream(compute)
        with torch.cuda.stream(self.download_stream):
            step.delta_host.copy_(delta, non_blocking=True)
            step.downloaded.record()
        delta.record_stream(self.download_stream)

    def write_back(self, table: int, step: StepRows | None) -> None:
        """Add a finished step's deltas into the host table (its ids are unique, so add == set)."""
        if step is None:
            return
        if step.downloaded is not None:
            step.downloaded.synchronize()
        self.tables[table].index_add_(0, step.ids_host, step.delta_host)

    def flush(self) -> None:
        """Apply the pending write-back, so the host tables hold every update so far."""
        for table in (0, 1):
            self.write_back(table, self.previous[table])
        self.previous = [None, None]

