"""Reconcile the fused backend's tables across ranks: combine the moves of the rows each rank changed.

backend=fused updates its tables in place (a Hogwild C kernel on the CPU, Triton on
CUDA), so there is no gradient for torch.distributed to sum. Instead every rank
trains its shard alone for `train.sync_every` words, then the ranks exchange what
they changed since the last sync and every rank applies the same result:

    sum:  table[row] = base[row] + sum of the ranks' deltas for row
    mean: table[row] = base[row] + that sum / number of ranks that moved row

where `base` is the table at the last sync (identical on every rank) and a rank's
delta is its table minus `base`. The rule is chosen per table (`train.sync_combine`,
input/output); the default, mean/sum, averages the input table and sums the output table
(measured in docs/distributed.md):
- output rows are moved by both ranks almost all the time (as negatives), each time a little:
  their moves add up as in one process, so they are summed; averaging them halves the
  learning of nearly every row (analogy 0.078 -> 0.057 on tech-clean).
- an input row moves only where its word is a centre, in consistent steps toward where the
  word's contexts pull it. A word seen in both shards is pulled the whole way by each rank
  alone, so the sum takes it about twice as far (SimLex 0.137 -> 0.120); the mean does not,
  and a rare word that one rank moved keeps its whole move under both rules.

Two ways to exchange the same numbers, chosen per sync by the bytes each rank sends:
- rows:  all_gather of (touched row ids, their deltas), padded to the longest list.
         Cheap when few rows moved (short intervals, large vocabularies).
- dense: all_reduce(SUM) of the whole (V, D+1) table of deltas plus a "moved" column.
         Cheap when most rows moved (a small vocabulary: negatives reach nearly every row).
Both run on gloo (CPU tables) and NCCL (CUDA tables, which is the same code with the
tensors on the device: NCCL has no sparse all-reduce, so rows uses all_gather).
Every rank adds the gathered rows in rank order, so all ranks hold bit-identical tables.

Finding the rows a rank moved: the fused backend marks every row it writes (a byte per row,
`marks`), so a sync compares only the marked rows with `base` and clears the marks; without marks
it compares whole tables. On the CPU the compare is the C kernel's (w2v_changed_rows), elsewhere
torch ops; both find the same rows.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .config import SYNC_COMBINES, SYNC_METHODS
from .distributed import World
from .kernels import load_sgns

log = logging.getLogger("w2v")
METHODS, COMBINES = SYNC_METHODS, SYNC_COMBINES
ROW_ID_BYTES = 8  # int64 row ids
FLOAT_BYTES = 4


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


def sync_peak_bytes(vocab: int, dim: int, world_size: int, method: str = "auto", tables: int = 2) -> int:
    """Memory a rank's TableSync holds beyond the tables themselves, at its peak (an upper bound).

    base:  a copy of every table, kept between syncs.
    dense: the (V, D+1) all-reduce buffer, and up to twice as much again for the collective's own scratch
           (measured with gloo, when the moved rows' sums were also taken out of the buffer): 3 x V x (D+1) floats.
    rows:  this rank's L padded (id, delta) rows, of 8 + 4D bytes, while they are sent; the N x L rows
           gathered from every rank, twice (the collective receives into one flat buffer, then copies
           into the per-rank tensors); later the gathered rows and the U <= N x L distinct rows' sums,
           which is less: (2N + 1) L rows, L the longest list, at most V. With "auto", rows is only
           chosen while it sends fewer bytes than dense, i.e. while L < 2 V (D+1) / (N (D+2))
           (ring_bytes), which bounds it.
    Then the sums get their base rows added (one more (U, D) temporary). Tables are reconciled one at a
    time, so only one table's exchange is live at once.
    """
    n, row = world_size, 8 + FLOAT_BYTES * dim
    base = tables * vocab * dim * FLOAT_BYTES
    dense = 3 * vocab * (dim + 1) * FLOAT_BYTES
    longest = vocab if method == "rows" else min(vocab, 2 * vocab * (dim + 1) // max(1, n * (dim + 2)) + 1)
    rows = (2 * n + 1) * longest * row
    apply = 2 * vocab * dim * FLOAT_BYTES
    exchange = {"dense": dense, "rows": rows}.get(method, max(dense, rows))
    # Around them: the (V, D) bool mask that finds the moved rows (torch ops; the C compare needs none),
    # and a few (V,) int64 id lists.
    small = vocab * dim + 4 * vocab * ROW_ID_BYTES
    return base + max(exchange, apply) + small


class TableSync:
    """Keeps the tables as they were at the last sync, and combines the ranks' moves since then."""

    def __init__(self, tables: list[torch.Tensor], world: World, method: str = "auto", combine: str = "sum",
                 marks: list[torch.Tensor] | tuple[torch.Tensor, ...] | None = None):
        # combine: one rule for every table, or one per table: "sum/mean" sums the input table's moves
        # and averages the output table's.
        # marks: None (compare whole tables), or per table a uint8 (V,) tensor in which training sets a
        # row's byte whenever it writes the row (FusedBackend.track_rows); every row that differs from
        # base must be marked. The sync clears them.
        combines = combine.split("/") if "/" in combine else [combine] * len(tables)
        if method not in METHODS or len(combines) != len(tables) or any(c not in COMBINES for c in combines):
            raise ValueError(f"sync method must be one of {METHODS} and combine one of {COMBINES} (or one per "
                             f"table, input/output), got {method!r}, {combine!r}")
        if marks is not None and [len(m) for m in marks] != [len(t) for t in tables]:
            raise ValueError(f"one mark per row of every table: {[len(m) for m in marks]} marks for tables of "
                             f"{[len(t) for t in tables]} rows")
        self.tables, self.world, self.method, self.combines = tables, world, method, combines
        self.marks = marks
        self.base = [t.clone() for t in tables]  # identical on every rank (rank 0's tables were broadcast)
        on_cpu = all(t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous() for t in tables)
        self.kernel = load_sgns() if on_cpu else None  # the C compare; None: torch ops

    def moved_rows(self, i: int) -> torch.Tensor:
        """Sorted ids of the rows of table i that differ from base (any element), among the marked rows when
        there are marks (which it clears)."""
        table, base = self.tables[i], self.base[i]
        marks = None if self.marks is None else self.marks[i]
        if self.kernel is not None:
            return self.kernel.changed_rows(table, base, marks)
        if marks is None:
            return table.ne(base).any(1).nonzero().squeeze(1)
        marked = marks.nonzero().squeeze(1)
        marks.zero_()
        return marked[table.index_select(0, marked).ne(base.index_select(0, marked)).any(1)]

    def __call__(self) -> SyncReport:
        """Exchange and apply every rank's moves; afterwards the tables are identical on every rank."""
        started = time.perf_counter()
        device = self.tables[0].device
        moved = [self.moved_rows(i) for i in range(len(self.tables))]  # sorted row ids
        # Every rank's count of moved rows per table: (world, tables).
        mine = torch.tensor([len(m) for m in moved], dtype=torch.int64, device=device)
        counts = [torch.empty_like(mine) for _ in range(self.world.world_size)]
        dist.all_gather(counts, mine)
        counts = torch.stack(counts).cpu()
        methods, sent, rows_moved = [], 0, 0
        for i, (table, base, rows) in enumerate(zip(self.tables, self.base, moved)):
            vocab, dim = table.shape
            longest = int(counts[:, i].max())
            method = self.method if self.method != "auto" else min(
                ("rows", "dense"), key=lambda m: ring_bytes(m, self.world.world_size, vocab, dim, longest))
            methods.append(method)
            sent += ring_bytes(method, self.world.world_size, vocab, dim, longest)
            if method == "dense":
                rows_moved += self._reduce_dense(table, base, rows, self.combines[i] == "mean")
                continue
            touched, total, ranks = self._gather_rows(table, base, rows, counts[:, i].tolist())
            rows_moved += len(touched)
            if self.combines[i] == "mean":
                total /= ranks.unsqueeze(1)
            total += base.index_select(0, touched)  # in place: one (rows, D) temporary, counted by sync_peak_bytes
            table.index_copy_(0, touched, total)
            base.index_copy_(0, touched, total)
            del total
        return SyncReport(method="/".join(methods), rows_moved=rows_moved, bytes_sent=sent,
                          seconds=time.perf_counter() - started)

    def _gather_rows(self, table: torch.Tensor, base: torch.Tensor, rows: torch.Tensor,
                     counts: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rows any rank moved (U,), their summed deltas (U, D), how many ranks moved each (U,)),
        from an all_gather of every rank's moved rows and deltas."""
        longest, dim = max(counts), table.shape[1]
        padded_rows = torch.zeros(longest, dtype=torch.int64, device=table.device)
        padded_values = torch.zeros(longest, dim, dtype=table.dtype, device=table.device)
        padded_rows[: len(rows)] = rows
        torch.sub(table.index_select(0, rows), base.index_select(0, rows), out=padded_values[: len(rows)])
        all_rows = [torch.empty_like(padded_rows) for _ in counts]
        all_values = [torch.empty_like(padded_values) for _ in counts]
        dist.all_gather(all_rows, padded_rows)
        dist.all_gather(all_values, padded_values)
        del padded_values
        touched, where = torch.unique(torch.cat([r[:n] for r, n in zip(all_rows, counts)]), return_inverse=True)
        total = torch.zeros(len(touched), dim, dtype=table.dtype, device=table.device)
        ranks = torch.zeros(len(touched), dtype=table.dtype, device=table.device)
        # Rank by rank, in the same order everywhere: a rank's rows are unique, so each index_add_ adds
        # one value to each row and is deterministic (on CUDA, index_add_ of repeated rows adds them in
        # any order; here no call repeats a row).
        offset = 0
        for values, n in zip(all_values, counts):
            total.index_add_(0, where[offset:offset + n], values[:n])
            ranks.index_add_(0, where[offset:offset + n], torch.ones(n, dtype=ranks.dtype, device=ranks.device))
            offset += n
        return touched, total, ranks

    def _reduce_dense(self, table: torch.Tensor, base: torch.Tensor, rows: torch.Tensor, mean: bool) -> int:
        """One all_reduce of (V, D+1): every delta, and a 1 in the last column if moved; applied to the whole
        table at once (the dense method is chosen when most rows moved, where whole-table passes beat
        gathering and scattering rows). Returns the number of rows any rank moved."""
        dim = table.shape[1]
        both = torch.empty(table.shape[0], dim + 1, dtype=table.dtype, device=table.device)
        torch.sub(table, base, out=both[:, :dim])
        both[:, dim] = 0
        both[rows, dim] = 1
        dist.all_reduce(both, op=dist.ReduceOp.SUM)
        sums, ranks = both[:, :dim], both[:, dim]
        if mean:  # a row no rank moved sums to zero and stays zero: divide it by 1, not 0
            sums /= ranks.clamp(min=1).unsqueeze(1)
        # base + sum, as the rows method adds them; a row no rank moved adds zeros.
        base += sums
        table.copy_(base)
        return int(ranks.count_nonzero())


def log_sync(report: SyncReport, number: int, world: World) -> None:
    """One run-log line per sync (rank 0)."""
    if world.is_main:
        log.info(f"sync {number}: {report.method}, {report.rows_moved} rows moved, "
                 f"{report.bytes_sent / 1e6:.2f} MB sent per rank, {report.seconds * 1e3:.0f} ms")
