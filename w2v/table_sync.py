"""Reconcile the fused backend's tables across ranks: average the deltas of the rows each rank moved.

backend=fused updates its tables in place (a Hogwild C kernel on the CPU, Triton on
CUDA), so there is no gradient for torch.distributed to sum. Instead every rank
trains its shard alone for `train.sync_every` words, then the ranks exchange what
they changed since the last sync and every rank applies the same result:

    table[row] = base[row] + sum of the ranks' deltas for row / number of ranks that moved row

where `base` is the table at the last sync (identical on every rank) and a rank's
delta is its table minus `base`. A row that one rank alone moved (a rare word seen in
one shard) keeps that rank's whole update; a row that every rank moved (a frequent
word, an output row hit by negatives everywhere) gets the mean. Summing instead would
move a frequent word N times as far as any rank did (each rank pulled it toward the
same place), which overshoots as N grows; averaging over all N ranks would divide a
rare word's only update by N.

Two ways to exchange the same numbers, chosen per sync by the bytes each rank sends:
- rows:  all_gather of (touched row ids, their deltas), padded to the longest list.
         Cheap when few rows moved (short intervals, large vocabularies).
- dense: all_reduce(SUM) of the whole (V, D+1) table of deltas plus a "moved" column.
         Cheap when most rows moved (a small vocabulary: negatives reach nearly every row).
Both run on gloo (CPU tables) and NCCL (CUDA tables, which is the same code with the
tensors on the device: NCCL has no sparse all-reduce, so rows uses all_gather).
Every rank adds the gathered rows in rank order, so all ranks hold bit-identical tables.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .distributed import World

log = logging.getLogger("w2v")
METHODS = ("auto", "rows", "dense")
ROW_ID_BYTES = 8  # int64 row ids


@dataclass
class SyncReport:
    """One sync, as seen by this rank (the method and byte counts are the same on every rank)."""

    method: str  # per table (input/output): e.g. "rows/dense"
    rows_moved: int  # rows (both tables) that at least one rank moved since the last sync
    bytes_sent: int  # payload bytes this rank sends (ring algorithms; the receive side is the same)
    seconds: float


def ring_bytes(method: str, world_size: int, vocab: int, dim: int, longest: int) -> int:
    """Payload bytes one rank sends for one table with ring collectives.

    rows:  all_gather of `longest` (id, D floats) rows: (N-1) * longest * (8 + 4D).
    dense: all_reduce of V x (D+1) floats: 2 (N-1)/N * V * (D+1) * 4.
    """
    n = world_size
    if method == "rows":
        return (n - 1) * longest * (ROW_ID_BYTES + 4 * dim)
    return 2 * (n - 1) * vocab * (dim + 1) * 4 // n


class TableSync:
    """Keeps the tables as they were at the last sync, and averages the ranks' moves since then."""

    def __init__(self, tables: list[torch.Tensor], world: World, method: str = "auto"):
        if method not in METHODS:
            raise ValueError(f"sync method must be one of {METHODS}, got {method!r}")
        self.tables, self.world, self.method = tables, world, method
        self.base = [t.clone() for t in tables]  # identical on every rank (rank 0's tables were broadcast)

    def __call__(self) -> SyncReport:
        """Exchange and apply every rank's moves; afterwards the tables are identical on every rank."""
        started = time.perf_counter()
        device = self.tables[0].device
        deltas = [t - b for t, b in zip(self.tables, self.base)]
        moved = [d.ne(0).any(1).nonzero().squeeze(1) for d in deltas]  # (rows,) int64, sorted
        # Every rank's count of moved rows per table: (world, tables).
        mine = torch.tensor([len(m) for m in moved], dtype=torch.int64, device=device)
        counts = [torch.empty_like(mine) for _ in range(self.world.world_size)]
        dist.all_gather(counts, mine)
        counts = torch.stack(counts).cpu()
        methods, sent, rows_moved = [], 0, 0
        for i, (table, base, delta, rows) in enumerate(zip(self.tables, self.base, deltas, moved)):
            vocab, dim = table.shape
            longest = int(counts[:, i].max())
            method = self.method if self.method != "auto" else min(
                ("rows", "dense"), key=lambda m: ring_bytes(m, self.world.world_size, vocab, dim, longest))
            methods.append(method)
            sent += ring_bytes(method, self.world.world_size, vocab, dim, longest)
            if method == "rows":
                total, ranks = self._gather_rows(delta, rows, counts[:, i].tolist())
            else:
                total, ranks = self._reduce_dense(delta, rows)
            touched = ranks.nonzero().squeeze(1)
            rows_moved += len(touched)
            table[touched] = base[touched] + total[touched] / ranks[touched].unsqueeze(1)
            base[touched] = table[touched]
        return SyncReport(method="/".join(methods), rows_moved=rows_moved, bytes_sent=sent,
                          seconds=time.perf_counter() - started)

    def _gather_rows(self, delta: torch.Tensor, rows: torch.Tensor,
                     counts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed deltas (V, D), ranks that moved each row (V,)) from an all_gather of the moved rows."""
        longest, dim = max(counts), delta.shape[1]
        padded_rows = torch.zeros(longest, dtype=torch.int64, device=delta.device)
        padded_values = torch.zeros(longest, dim, dtype=delta.dtype, device=delta.device)
        padded_rows[: len(rows)] = rows
        padded_values[: len(rows)] = delta[rows]
        all_rows = [torch.empty_like(padded_rows) for _ in counts]
        all_values = [torch.empty_like(padded_values) for _ in counts]
        dist.all_gather(all_rows, padded_rows)
        dist.all_gather(all_values, padded_values)
        total = torch.zeros_like(delta)
        ranks = torch.zeros(delta.shape[0], dtype=delta.dtype, device=delta.device)
        # Rank by rank, in the same order everywhere: a rank's rows are unique, so each += is
        # deterministic (index_add_ on CUDA would add duplicates in any order).
        for r, n in enumerate(counts):
            total[all_rows[r][:n]] += all_values[r][:n]
            ranks[all_rows[r][:n]] += 1
        return total, ranks

    def _reduce_dense(self, delta: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same (summed deltas, ranks that moved each row) from one all_reduce of (V, D+1)."""
        both = torch.cat([delta, torch.zeros(delta.shape[0], 1, dtype=delta.dtype, device=delta.device)], dim=1)
        both[rows, -1] = 1
        dist.all_reduce(both, op=dist.ReduceOp.SUM)
        return both[:, :-1], both[:, -1]


def log_sync(report: SyncReport, number: int, world: World) -> None:
    """One run-log line per sync (rank 0)."""
    if world.is_main:
        log.info(f"sync {number}: {report.method}, {report.rows_moved} rows moved, "
                 f"{report.bytes_sent / 1e6:.2f} MB sent per rank, {report.seconds * 1e3:.0f} ms")
