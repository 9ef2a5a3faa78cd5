"""Data-parallel training over processes started by torchrun, with torch.distributed.

torchrun gives each worker RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR
and MASTER_PORT in its environment; a plain `python -m w2v.train` has none of
them and runs as a world of one, where every collective below is a no-op.

How the ranks cooperate:
- Each rank trains on its own shard of the token ids (`shard_blocks`: blocks dealt out in turn,
  the default; or `shard_range`: one contiguous range a rank).
- After every backward pass the gradients of both tables are SUMMED over the ranks
  (`DataParallelStep`). The loss is a sum over examples, as in word2vec, where each
  pair moves its rows by lr * gradient; so N ranks with batch_size B take the step a
  single process takes with N * B examples.
    dense / onehot: all_reduce(SUM) of the dense gradient (gloo on CPU, NCCL on CUDA).
    sparse: NCCL has no sparse all-reduce, so every rank all-gathers the touched rows
            and their gradient rows and builds one sparse gradient from all of them.
            The same code runs on gloo and NCCL.
- backend=fused makes no gradients (it trains whole chunks in place): its ranks train
  alone and w2v/table_sync.py combines the moves of the rows they changed between chunks.
- Every rank takes the same number of steps: before each chunk the ranks agree on
  the largest number of batches, and a rank with fewer takes empty steps (a zero
  gradient that still joins the collective).
- Errors, barriers and checkpoint state travel on a gloo "control" group with a long
  timeout, because rank 0 may tokenise for a long time while the others wait.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from .errors import W2VError, first_line

T = TypeVar("T")
# Rank 0 may spend a long time tokenising a big corpus while the others wait for it.
CONTROL_TIMEOUT = timedelta(hours=6)
TRAIN_TIMEOUT = timedelta(minutes=30)


@dataclass
class World:
    """Who this process is among the training processes. A default World is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    control_group: Any = None  # gloo group for objects and barriers; None in a world of one

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0  # this process does the logging and writes every output

    def broadcast_object(self, obj: T) -> T:
        """rank 0's `obj` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.control_group)
        return box[0]

    def gather_objects(self, obj: T) -> list[T]:
        """[obj of rank 0, obj of rank 1, ...] on every rank."""
        if not self.distributed:
            return [obj]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.control_group)
        return out

    def gather_ints(self, values: list[int]) -> np.ndarray:
        """(world_size, len(values)) int64: every rank's values, on every rank."""
        row = torch.tensor(values, dtype=torch.int64)
        if not self.distributed:
            return row.numpy()[None, :]
        out = [torch.empty_like(row) for _ in range(self.world_size)]
        dist.all_gather(out, row, group=self.control_group)
        return torch.stack(out).numpy()

    def any_flag(self, flags: list[bool]) -> list[bool]:
        """Element-wise OR over the ranks, so that every rank takes the same decision."""
        if not self.distributed:
            return flags
        t = torch.tensor(flags, dtype=torch.int32)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.control_group)
        return [bool(x) for x in t.tolist()]

    def sum_floats(self, values: list[float]) -> list[float]:
        if not self.distributed:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, group=self.control_group)
        return t.tolist()

    def on_main(self, fn: Callable[[], T]) -> T | None:
        """Run fn on rank 0 while the others wait; a W2VError there is raised on every rank.

        Returns fn's result on rank 0 and None elsewhere.
        """
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except W2VError as exc:
                error = str(exc)
        error = self.broadcast_object(error)
        if error is not None:
            raise W2VError(error)
        return result

    def on_every_rank(self, fn: Callable[[], T]) -> T:
        """Run fn on every rank; if any rank raises W2VError, every rank raises the first one."""
        result, error = None, None
        try:
            result = fn()
        except W2VError as exc:
            error = str(exc)
        errors = [e for e in self.gather_objects(error) if e is not None]
        if errors:
            raise W2VError(errors[0])
        return result

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def launched_world_size() -> int:
    """WORLD_SIZE as torchrun sets it (1 when not launched by torchrun)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise W2VError(f"WORLD_SIZE must be an integer, got {os.environ['WORLD_SIZE']!r}") from None


def launched_rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        raise W2VError(f"RANK must be an integer, got {os.environ['RANK']!r}") from None


def start_world(device_type: str, init_method: str = "env://") -> World:
    """Join the process group torchrun set up: gloo for CPU tables, NCCL for CUDA ones."""
    world_size = launched_world_size()
    if world_size == 1:
        return World()
    rank = launched_rank()
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group(backend=backend, init_method=init_method, rank=rank, world_size=world_size,
                                timeout=TRAIN_TIMEOUT)
    except (RuntimeError, ValueError) as exc:
        raise W2VError(f"cannot join the torchrun process group ({backend}): {first_line(exc)}") from exc
    control = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)
    return World(rank=rank, world_size=world_size, local_rank=local_rank, local_world_size=local_world,
                 control_group=control)


def shard_range(sentences: np.ndarray, rank: int, world_size: int) -> tuple[int, int]:
    """[lo, hi) token range of this rank's shard: equal token counts, cut on sentence ends.

    A cut moves to the nearest sentence end unless that would leave a shard with less
    than half its share (one enormous line): then it falls inside the sentence, which
    only loses the few pairs that straddle the cut.
    """
    n_tokens = int(sentences[-1])

    def cut(k: int) -> int:
        if k <= 0:
            return 0
        if k >= world_size:
            return n_tokens
        ideal = n_tokens * k // world_size
        i = int(np.searchsorted(sentences, ideal))
        candidates = [int(sentences[j]) for j in (i - 1, i) if 0 <= j < len(sentences)]
        nearest = min(candidates, key=lambda b: abs(b - ideal))
        return nearest if abs(nearest - ideal) <= n_tokens / world_size / 2 else ideal

    return cut(rank), cut(rank + 1)


def shard_blocks(sentences: np.ndarray, rank: int, world_size: int, block_tokens: int) -> list[tuple[int, int]]:
    """This rank's [lo, hi) token ranges when the shards interleave: the corpus is cut into
    blocks of about block_tokens (on sentence ends, as shard_range cuts), and rank r takes
    blocks r, r + N, r + 2N, ... So at any moment the ranks train neighbouring stretches of
    text, as one process would, instead of N distant parts of the corpus at once.
    """
    n_tokens = int(sentences[-1])
    blocks = max(world_size, -(-n_tokens // max(1, block_tokens)))
    cuts = [shard_range(sentences, k, blocks)[0] for k in range(blocks)] + [n_tokens]
    return [(cuts[k], cuts[k + 1]) for k in range(rank, blocks, world_size) if cuts[k + 1] > cuts[k]]


def check_data_parallel(backend) -> None:
    """Refuse a backend (class or instance) that declares no way to combine the ranks' work.

    data_parallel "gradients" (dense, sparse, onehot): summed every step (DataParallelStep);
    "tables" (fused): trained alone and combined between chunks (w2v/table_sync.py);
    None (offload applies SGD on host tables in its own step): nothing to synchronise.
    """
    cls = backend if isinstance(backend, type) else type(backend)
    if cls.data_parallel is None:
        raise W2VError(f"backend={cls.name} does not support data-parallel training under torchrun "
                       f"(it updates its tables outside autograd); use backend=fused, dense, sparse or onehot")


def broadcast_tables(backend, world: World) -> None:
    """Make every rank start from rank 0's tables (after a resume, or to rule out any drift)."""
    if not world.distributed:
        return
    with torch.no_grad():
        for tensor in backend.state_dict().values():
            dist.broadcast(tensor, src=0)


class DataParallelStep:
    """The loop's step for a backend whose gradients are summed over every rank before the update.

    Used instead of backend.step when world_size > 1 and backend.data_parallel == "gradients";
    a `None` batch is an empty step for a rank that has run out of examples in this chunk.
    """

    def __init__(self, backend, world: World):
        if backend.data_parallel != "gradients":
            raise TypeError(f"backend={backend.name} makes no autograd gradients to sum")
        self.backend, self.world = backend, world

    def __call__(self, objective, batch, lr_from: float, lr_to: float) -> tuple[torch.Tensor, int]:
        loss = self.backend.train_step(objective, batch, lr_to, sum_gradients=self.sum_gradients)
        return loss, batch.size if batch is not None else 0

    def sum_gradients(self, params: list[torch.Tensor]) -> None:
        """Replace each parameter's gradient by the sum over the ranks (zeros for a rank without one)."""
        for p in params:
            if self.backend.sparse_gradients:
                p.grad = all_gather_sparse(p.grad, p, self.world)
            else:
                p.grad = all_reduce_dense(p.grad, p)


def all_reduce_dense(grad: torch.Tensor | None, param: torch.Tensor) -> torch.Tensor:
    """Sum of every rank's dense gradient (zeros stand in for a rank that had no examples)."""
    grad = torch.zeros_like(param) if grad is None else grad
    dist.all_reduce(grad, op=dist.ReduceOp.SUM)
    return grad


def all_gather_sparse(grad: torch.Tensor | None, param: torch.Tensor, world: World) -> torch.Tensor:
    """Sum of every rank's sparse row gradient, as one sparse (V, D) tensor with every rank's rows.

    Ranks touch different numbers of rows, so each pads its (rows, values) to the
    largest count before the all_gather, and the padding is cut off afterwards.
    """
    dim = param.shape[1]
    if grad is None:
        rows = torch.zeros(0, dtype=torch.int64, device=param.device)
        values = torch.zeros(0, dim, dtype=param.dtype, device=param.device)
    else:
        grad = grad.coalesce()
        rows, values = grad.indices()[0], grad.values()
    count = torch.tensor([rows.numel()], dtype=torch.int64, device=param.device)
    counts = [torch.empty_like(count) for _ in range(world.world_size)]
    dist.all_gather(counts, count)
    counts = [int(c) for c in counts]
    longest = max(counts)
    padded_rows = torch.zeros(longest, dtype=torch.int64, device=param.device)
    padded_values = torch.zeros(longest, dim, dtype=param.dtype, device=param.device)
    padded_rows[: len(rows)] = rows
    padded_values[: len(rows)] = values
    all_rows = [torch.empty_like(padded_rows) for _ in range(world.world_size)]
    all_values = [torch.empty_like(padded_values) for _ in range(world.world_size)]
    dist.all_gather(all_rows, padded_rows)
    dist.all_gather(all_values, padded_values)
    rows = torch.cat([r[:n] for r, n in zip(all_rows, counts)])
    values = torch.cat([v[:n] for v, n in zip(all_values, counts)])
    return torch.sparse_coo_tensor(rows.unsqueeze(0), values, param.shape, check_invariants=False)
