"""The training loop: chunks of ids -> backend steps, with lr decay, logging and checkpoints.

Reads top to bottom: for each epoch, subsample a chunk of this rank's shard; the backend
expands it on the host (in a worker thread, overlapping the previous chunk's training) and
turns it into steps, one per batch or one for the whole chunk (Backend.step_unit); the loop
takes them at a learning rate that decays linearly with the corpus words done.

With several ranks (torchrun) the ranks agree, before each chunk, on how many steps
it takes and how many corpus words it covers, so that every rank takes the same
steps at the same learning rate. How the ranks combine their work is the backend's
capability (Backend.data_parallel): gradients summed every step (w2v/distributed.py), or
tables trained alone and combined by w2v/table_sync.py every train.sync_every words a rank,
before every checkpoint and at the end. After any step the loop can checkpoint (on
SIGINT/SIGTERM, or every train.checkpoint_every words); the checkpoint records the RNG
states as they were *before* the current chunk was drawn, so a resumed run redraws the
same chunk and skips the steps already taken.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from .backends.base import Backend
from .batches import Carry, Chunk, epoch_chunks, keep_probability
from .checkpoint import Checkpointing
from .config import TrainConfig
from .distributed import DataParallelStep, World
from .objective import Objective
from .table_sync import TableSync, log_sync


@dataclass
class TrainStats:
    """Totals over all ranks (identical on every rank)."""

    raw_words: int = 0  # corpus words processed, summed over epochs (gensim's raw count)
    effective_words: int = 0  # words left after subsampling, summed over epochs
    examples: int = 0  # pairs (skip-gram) or windows (CBOW) trained
    steps: int = 0
    train_seconds: float = 0.0
    final_loss: float = float("nan")  # mean loss per example over the last logging interval
    final_lr: float = float("nan")  # learning rate of the last step taken
    interrupted: str | None = None  # the signal that stopped the run early (after a checkpoint)
    syncs: int = 0  # a backend that syncs tables, under torchrun: table syncs (w2v/table_sync.py)
    sync_bytes: int = 0  # payload bytes one rank sent over all syncs
    sync_seconds: float = 0.0  # time in syncs (part of train_seconds)


LOG_POINTS_PER_EPOCH = 50


def auto_log_every(epoch_words: int) -> int:
    """train.log_every=auto: an epoch's words / LOG_POINTS_PER_EPOCH, rounded down to 1, 2 or 5 times a power
    of ten, so that points fall on round word counts and an epoch has 50 to 125 of them."""
    target = max(1, epoch_words // LOG_POINTS_PER_EPOCH)
    power = 10 ** (len(str(target)) - 1)
    return max(m * power for m in (1, 2, 5) if m * power <= target)


def learning_rate(start: float, end: float, progress: float) -> float:
    """Linear decay from start to end as progress goes 0 -> 1 (gensim's alpha -> min_alpha)."""
    return start - (start - end) * min(max(progress, 0.0), 1.0)


class Progress:
    """The run's totals and what it reports: logging intervals, examples summed over the ranks, table syncs.

    Every method that sums over the ranks is called at the same point on every rank.
    """

    def __init__(self, stats: TrainStats, world: World, device: torch.device, bar, sync: TableSync | None,
                 on_log: Callable[[int, dict], None] | None, words_done: float):
        self.stats, self.world, self.bar, self.sync, self.on_log = stats, world, bar, sync, on_log
        # This logging interval: this rank's loss and examples, the words of all ranks.
        self.loss = torch.zeros((), device=device, dtype=torch.float64)
        self.examples, self.words, self.started, self.words_at_point = 0, 0, time.perf_counter(), words_done
        self.unsummed_examples = 0  # trained by this rank since the last sum over the ranks into stats
        self.last_sync_words = words_done  # corpus words (all ranks) when the tables were last made identical

    def took_step(self, loss: torch.Tensor | float, trained: int, lr: float, words_before: float,
                  words_now: float) -> None:
        self.loss += loss
        self.examples += trained
        self.unsummed_examples += trained
        self.stats.steps, self.stats.final_lr = self.stats.steps + 1, lr
        self.bar.update(int(words_now) - self.bar.n)
        self.words += int(words_now) - int(words_before)

    def count_examples(self) -> None:
        self.stats.examples += int(self.world.sum_floats([float(self.unsummed_examples)])[0])
        self.unsummed_examples = 0

    def sync_tables(self, words_now: float) -> None:
        """Combine the ranks' tables (w2v/table_sync.py) if they moved since the last sync."""
        if self.sync is None or words_now <= self.last_sync_words:
            return
        report, stats = self.sync(), self.stats
        stats.syncs, stats.sync_bytes = stats.syncs + 1, stats.sync_bytes + report.bytes_sent
        stats.sync_seconds += report.seconds
        self.count_examples()
        self.last_sync_words = words_now
        log_sync(report, stats.syncs, self.world)
        if self.on_log and self.world.is_main:
            self.on_log(stats.steps, {"sync/bytes_sent_per_rank": report.bytes_sent,
                                      "sync/rows_moved": report.rows_moved, "sync/seconds": report.seconds})

    def evaluate(self, on_eval: Callable[[int], None], words_now: float) -> float:
        """Run on_eval on rank 0 with every rank's work in the tables; returns the seconds it took, which
        the interval's words/s leaves out."""
        self.sync_tables(words_now)
        started = time.perf_counter()
        if self.world.is_main:
            on_eval(self.stats.steps)
        seconds = time.perf_counter() - started
        self.started += seconds
        return seconds

    def close_interval(self) -> tuple[float, float, int, float]:
        """(loss sum, examples, words, seconds) of the interval, over every rank; the next one starts."""
        seconds = time.perf_counter() - self.started
        loss_sum, n_examples = self.world.sum_floats([float(self.loss), float(self.examples)])
        words = self.words
        self.loss.zero_()
        self.examples, self.words, self.started = 0, 0, time.perf_counter()
        return loss_sum, n_examples, words, seconds

    def log_point(self, lr: float, words_now: float) -> None:
        """Close a logging interval: true mean loss per example (over all ranks) since the last point."""
        loss_sum, n_examples, words, seconds = self.close_interval()
        self.words_at_point = words_now
        self.stats.final_loss = loss_sum / max(n_examples, 1)
        point = {"train/loss": self.stats.final_loss, "train/lr": lr,
                 "perf/words_per_sec": words / max(seconds, 1e-9)}
        self.bar.set_postfix(loss=f"{self.stats.final_loss:.4f}", lr=f"{lr:.5f}")
        if self.on_log and self.world.is_main:
            self.on_log(self.stats.steps, point)

    def finish(self, device: torch.device) -> TrainStats:
        """Close the last, partial logging interval (over all ranks) and the bar."""
        self.bar.close()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        loss_sum, n_examples, _, _ = self.close_interval()
        if n_examples:
            self.stats.final_loss = loss_sum / n_examples
        return self.stats


def resumed_state(resume: dict, world: World, rng: np.random.Generator, generator: torch.Generator,
                  backend: Backend) -> tuple[TrainStats, int, int, int, int, Carry]:
    """(stats, epoch, steps done in its chunk, words done, corpus position, carry) from a checkpoint's loop
    state; sets the random streams where they stood before the chunk was drawn."""
    mine = resume["ranks"][world.rank]
    rng.bit_generator.state = mine["rng_state"]
    generator.set_state(mine["generator_state"])
    if mine.get("backend") is not None:
        backend.load_loop_state(mine["backend"])  # the backend's own random streams continue too
    return (TrainStats(**resume["stats"]), resume["epoch"], resume["batches_done"], resume["global_words"],
            mine["chunk_pos"], Carry.from_state(mine.get("carry")))  # carry: a stop inside a long line


def train(objective: Objective, train_cfg: TrainConfig, sample: float, ids: np.ndarray, sentences: np.ndarray,
          counts: np.ndarray, backend: Backend, device: torch.device,
          on_log: Callable[[int, dict], None] | None = None, show_progress: bool = True,
          token_range: tuple[int, int] | list[tuple[int, int]] | None = None, world: World | None = None,
          checkpointing: Checkpointing | None = None, resume: dict | None = None,
          on_eval: Callable[[int], None] | None = None) -> TrainStats:
    """Train `backend` in place on `objective` over train_cfg.epochs epochs of ids[token_range] (this rank's shard).

    sample: vocab.sample, the subsampling threshold. token_range: one [lo, hi) range, or a list of
    them trained in order (interleaved shards). resume: the "loop" part of a checkpoint, to continue
    exactly where it stopped. on_eval(step): called on rank 0, between steps, each time the corpus words
    pass a multiple of train_cfg.eval_every (an epoch's words for "epoch"), except at the end of the run;
    its time counts neither as training time nor in words/s.
    """
    world = world or World()
    step = DataParallelStep(backend, world) if world.distributed and backend.data_parallel == "gradients" \
        else backend.step
    # Table-syncing backends (fused) train alone on each rank; the syncs combine the rows moved. A backend
    # that marks the rows it writes (track_rows) spares each sync a compare of the whole tables.
    sync = (TableSync([backend.input_weights(), backend.output_weights()], world, train_cfg.sync_method,
                      train_cfg.sync_combine, marks=backend.track_rows())
            if world.distributed and backend.data_parallel == "tables" else None)
    # Rank 0 draws what a single process draws; other ranks get independent streams.
    seed = train_cfg.seed + 1_000_003 * world.rank
    backend.prepare(counts, batch_size=train_cfg.batch_size, seed=seed)
    rng = np.random.default_rng(train_cfg.seed if world.rank == 0 else [train_cfg.seed, world.rank])
    generator = torch.Generator(device=device).manual_seed(seed)
    keep = keep_probability(counts, sample)
    ranges = [(0, len(ids))] if token_range is None else \
        [token_range] if isinstance(token_range, tuple) else list(token_range)
    lo = ranges[0][0] if ranges else 0
    epoch_words = max(1, int(world.gather_ints([sum(b - a for a, b in ranges)])[:, 0].sum()))
    total_words = epoch_words * train_cfg.epochs
    log_every = auto_log_every(epoch_words) if train_cfg.log_every == "auto" else train_cfg.log_every
    eval_every = epoch_words if train_cfg.eval_every == "epoch" else train_cfg.eval_every
    eval_every = eval_every if on_eval is not None else None
    stats, start_epoch, skip_steps, words_done, pos, carry = TrainStats(), 0, 0, 0, lo, None
    if resume is not None:
        stats, start_epoch, skip_steps, words_done, pos, carry = resumed_state(resume, world, rng, generator, backend)
    seconds_before = stats.train_seconds
    chunk_tokens = backend.chunk_tokens
    if sync is not None:
        chunk_tokens = min(chunk_tokens, train_cfg.sync_every)  # a sync falls between chunks
    if train_cfg.log_every == "auto":
        # A step (a whole chunk, for fused) logs at most one point: chunks no longer than the interval
        # give every interval its point, so a one-epoch run draws a curve. A chunk runs on to the next
        # line end, up to twice chunk_tokens (w2v/batches.py): hence half.
        chunk_tokens = min(chunk_tokens, max(1, log_every // 2))
    # A backend that syncs tables takes one step per chunk: sync after every `sync_steps` steps
    # (of the same count on every rank).
    sync_steps = max(1, train_cfg.sync_every // chunk_tokens)
    bar = tqdm(total=total_words, initial=words_done, unit="w", unit_scale=True, desc="training",
               disable=not (show_progress and world.is_main), smoothing=0.1)
    progress = Progress(stats, world, device, bar, sync, on_log, words_done)

    started = last_save_time = time.perf_counter()
    words_at_last_save, paused_seconds, words_at_eval = words_done, 0.0, words_done
    # Expanding the next chunk on the host overlaps with training on the current one
    # (numpy releases the GIL for the heavy parts).
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        for epoch in range(start_epoch, train_cfg.epochs):
            chunks = shard_chunks(ids, sentences, keep, objective.window, rng, ranges, pos, chunk_tokens, carry)
            carry = None

            def expand_next(chunks=chunks):
                rng_state = rng.bit_generator.state  # a fresh dict: where this chunk's draws start
                chunk = next(chunks, None)
                return rng_state, chunk, None if chunk is None else backend.expand(objective, chunk)

            pending = pool.submit(expand_next)
            while True:
                rng_state, chunk, expanded = pending.result()
                if chunk is not None:
                    pending = pool.submit(expand_next)
                generator_state = generator.get_state()  # before this chunk's negatives are drawn
                work = backend.plan(objective, expanded, generator) if chunk is not None else []
                # Every rank learns every rank's step count and words, so all take the same steps.
                plan = world.gather_ints([chunk is not None, len(work), chunk.raw_words if chunk else 0,
                                          len(chunk.ids) if chunk else 0])
                if not plan[:, 0].any():
                    break  # every shard is done with this epoch
                n_steps, chunk_words = int(plan[:, 1].max()), int(plan[:, 2].sum())
                if skip_steps:
                    # A resumed run: its checkpoint was written after step skip_steps of this chunk, not at
                    # the chunk's start, so the next save (and evaluation) counts from there, as it would have.
                    words_at_last_save = words_at_eval = words_done + skip_steps / n_steps * chunk_words
                for k in range(skip_steps, n_steps):
                    words_before = words_done + k / n_steps * chunk_words
                    words_now = words_done + (k + 1) / n_steps * chunk_words
                    lr_from = learning_rate(train_cfg.lr, train_cfg.min_lr, words_before / total_words)
                    lr = learning_rate(train_cfg.lr, train_cfg.min_lr, words_now / total_words)
                    # None: this rank ran out of work in this chunk (it still joins the others' collectives)
                    loss_sum, trained = step(objective, work[k] if k < len(work) else None, lr_from, lr)
                    progress.took_step(loss_sum, trained, lr, words_before, words_now)
                    # On multiples of sync_steps, so that an extra sync (before a checkpoint) shifts none of the rest.
                    if sync is not None and stats.steps % sync_steps == 0:
                        progress.sync_tables(words_now)
                    # A point each time the words pass a multiple of log_every: the same points whatever the
                    # step sizes before, so a resumed run logs (and ends its last interval) where an uninterrupted one does.
                    if words_now // log_every > progress.words_at_point // log_every:
                        progress.log_point(lr, words_now)
                    if eval_every and words_now < total_words and words_now // eval_every > words_at_eval // eval_every:
                        words_at_eval = words_now
                        paused_seconds += progress.evaluate(on_eval, words_now)
                    if checkpointing is None:
                        continue
                    stop, due = world.any_flag([
                        checkpointing.stop is not None and checkpointing.stop.requested,
                        checkpointing.policy.due(words_now, words_at_last_save, time.perf_counter() - last_save_time)])
                    if stop or due:
                        progress.sync_tables(words_now)  # rank 0 saves tables that hold every rank's work
                        progress.count_examples()
                        save_started = time.perf_counter()
                        stats.train_seconds = seconds_before + save_started - started - paused_seconds
                        mine = {"chunk_pos": pos, "rng_state": rng_state, "generator_state": generator_state,
                                "carry": chunk.carry_in.to_state() if chunk is not None and chunk.carry_in else None,
                                "backend": backend.loop_state()}
                        checkpointing.save({"epoch": epoch, "batches_done": k + 1, "global_words": words_done,
                                            "stats": {**asdict(stats), "interrupted": None},
                                            "ranks": world.gather_objects(mine)})
                        last_save_time, words_at_last_save = time.perf_counter(), words_now
                        paused_seconds += last_save_time - save_started
                    if stop:
                        stats.interrupted = (checkpointing.stop.signal_name or "a stop request") \
                            if checkpointing.stop is not None and checkpointing.stop.requested else "another rank"
                        return progress.finish(device)
                skip_steps = 0
                words_done += chunk_words
                stats.raw_words += chunk_words
                stats.effective_words += int(plan[:, 3].sum())
                bar.update(words_done - bar.n)
                pos = chunk.end if chunk is not None else pos
            pos = lo
        progress.sync_tables(words_done)  # every rank ends with the same tables
        progress.count_examples()
        if progress.words:  # the last, partial interval gets its point too (the same test on every rank)
            progress.log_point(stats.final_lr, words_done)
        stats.train_seconds = seconds_before + time.perf_counter() - started - paused_seconds
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return progress.finish(device)


def shard_chunks(ids: np.ndarray, sentences: np.ndarray, keep: np.ndarray, window: int, rng: np.random.Generator,
                 ranges: list[tuple[int, int]], pos: int, chunk_tokens: int, carry) -> Iterator[Chunk]:
    """One epoch over this rank's ranges, from corpus position pos on (a resumed run starts inside one)."""
    for a, b in ranges:
        if b > pos:
            yield from epoch_chunks(ids, sentences, keep, window, rng, token_range=(max(a, pos), b),
                                    chunk_tokens=chunk_tokens, carry=carry)
            carry = None
