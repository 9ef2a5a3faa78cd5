"""The training loop: chunks of ids -> batches -> backend steps, with lr decay and logging.

Reads top to bottom: for each epoch, subsample a chunk of this rank's shard, expand
it into examples on the host (vectorised numpy), move them to the device in one
copy, draw their negatives there, and step through them batch by batch.

With several ranks (torchrun) the ranks agree, before each chunk, on how many steps
it takes and how many corpus words it covers, so that every rank takes the same
steps at the same learning rate (w2v/distributed.py syncs the gradients; backend=fused
has none, so its ranks train alone and w2v/table_sync.py combines the rows they moved
every train.sync_every words a rank, before every checkpoint and at the end). After any
step the loop can checkpoint (on SIGINT/SIGTERM, or every train.checkpoint_every);
the checkpoint records the RNG states as they were *before* the current chunk was
drawn, so a resumed run redraws the same chunk and skips the steps already taken.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from .batches import Carry, Chunk, NoiseSampler, cbow_windows, epoch_chunks, keep_probability, skipgram_pairs
from .checkpoint import Checkpointing
from .config import RunConfig
from .distributed import DataParallelStep, World
from .model import Batch
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
    syncs: int = 0  # backend=fused under torchrun: table syncs (w2v/table_sync.py)
    sync_bytes: int = 0  # payload bytes one rank sent over all syncs
    sync_seconds: float = 0.0  # time in syncs (part of train_seconds)


def learning_rate(start: float, end: float, progress: float) -> float:
    """Linear decay from start to end as progress goes 0 -> 1 (gensim's alpha -> min_alpha)."""
    return start - (start - end) * min(max(progress, 0.0), 1.0)


def chunk_examples(chunk: Chunk, model_name: str, window: int) -> dict[str, np.ndarray]:
    """Host-side expansion of a chunk into example arrays."""
    if model_name == "skipgram":
        centres, contexts = skipgram_pairs(chunk, window)
        return {"centres": centres, "contexts": contexts}
    centres, contexts, mask = cbow_windows(chunk, window)
    return {"centres": centres, "contexts": contexts, "mask": mask}


def device_batches(examples: dict[str, np.ndarray], batch_size: int, negative: int, sampler: NoiseSampler,
                   generator: torch.Generator, device: torch.device) -> Iterator[tuple[Batch, float]]:
    """Move a chunk's examples to the device once, draw negatives there, and slice batches.

    Yields (batch, fraction of the chunk done after this batch).
    """
    on_device = {k: torch.from_numpy(v).to(device, non_blocking=True) for k, v in examples.items()}
    n = len(examples["centres"])
    negatives = sampler.sample((n, negative), generator)
    for start in range(0, n, batch_size):
        end = min(n, start + batch_size)
        yield Batch(centres=on_device["centres"][start:end], contexts=on_device["contexts"][start:end],
                    negatives=negatives[start:end],
                    mask=on_device["mask"][start:end] if "mask" in on_device else None), end / n


def train(cfg: RunConfig, ids: np.ndarray, sentences: np.ndarray, counts: np.ndarray, backend,
          device: torch.device, on_log: Callable[[int, dict], None] | None = None,
          show_progress: bool = True, token_range: tuple[int, int] | list[tuple[int, int]] | None = None,
          world: World | None = None,
          checkpointing: Checkpointing | None = None, resume: dict | None = None) -> TrainStats:
    """Train `backend` in place over cfg.train.epochs epochs of ids[token_range] (this rank's shard).

    token_range: one [lo, hi) range, or a list of them trained in order (interleaved shards).

    resume: the "loop" part of a checkpoint, to continue exactly where it stopped.
    """
    world = world or World()
    model, train_cfg = cfg.model, cfg.train
    fused = hasattr(backend, "train_chunk")  # takes whole chunks and decays lr inside them
    step = DataParallelStep(backend, world) if world.distributed and not fused else backend.train_step
    # fused under torchrun: no gradients; each rank trains alone and the syncs combine the rows moved.
    # A backend that marks the rows it writes (track_rows) spares each sync a compare of the whole tables.
    sync = (TableSync([backend.input_weights(), backend.output_weights()], world, train_cfg.sync_method,
                      train_cfg.sync_combine, marks=backend.track_rows() if hasattr(backend, "track_rows") else None)
            if fused and world.distributed else None)
    if hasattr(backend, "prepare"):  # rank 0 draws the negatives a single process draws
        backend.prepare(counts, batch_size=train_cfg.batch_size, seed=train_cfg.seed + 1_000_003 * world.rank)
    # Rank 0 draws what a single process draws; other ranks get independent streams.
    rng = np.random.default_rng(train_cfg.seed if world.rank == 0 else [train_cfg.seed, world.rank])
    generator = torch.Generator(device=device).manual_seed(train_cfg.seed + 1_000_003 * world.rank)
    sampler = NoiseSampler(counts, device)
    keep = keep_probability(counts, cfg.vocab.sample)
    ranges = [(0, len(ids))] if token_range is None else \
        [token_range] if isinstance(token_range, tuple) else list(token_range)
    lo = ranges[0][0] if ranges else 0
    total_words = max(1, int(world.gather_ints([sum(b - a for a, b in ranges)])[:, 0].sum()) * train_cfg.epochs)

    stats, start_epoch, skip_steps, words_done, pos, carry = TrainStats(), 0, 0, 0, lo, None
    if resume is not None:
        stats = TrainStats(**resume["stats"])
        start_epoch, skip_steps, words_done = resume["epoch"], resume["batches_done"], resume["global_words"]
        mine = resume["ranks"][world.rank]
        pos = mine["chunk_pos"]
        carry = Carry.from_state(mine.get("carry"))  # a stop inside a long line
        rng.bit_generator.state = mine["rng_state"]
        generator.set_state(mine["generator_state"])
        if mine.get("backend") is not None and hasattr(backend, "load_loop_state"):
            backend.load_loop_state(mine["backend"])  # fused: its own per-chunk seeds continue too
    seconds_before = stats.train_seconds
    chunk_tokens = getattr(backend, "chunk_tokens", 1 << 20)
    if sync is not None:
        chunk_tokens = min(chunk_tokens, train_cfg.sync_every)  # a sync falls between chunks
    # fused takes one step per chunk: sync after every `sync_steps` steps (of the same count on every rank).
    sync_steps = max(1, train_cfg.sync_every // chunk_tokens)
    # Corpus words (all ranks) trained when the tables were last made identical: the same on every rank.
    last_sync_words, unsynced_examples = words_done, 0

    def sync_tables(words_now: float) -> None:
        nonlocal last_sync_words, unsynced_examples
        report = sync()
        stats.syncs, stats.sync_bytes = stats.syncs + 1, stats.sync_bytes + report.bytes_sent
        stats.sync_seconds += report.seconds
        stats.examples += int(world.sum_floats([float(unsynced_examples)])[0])
        last_sync_words, unsynced_examples = words_now, 0
        log_sync(report, stats.syncs, world)
        if on_log and world.is_main:
            on_log(stats.steps, {"sync/bytes_sent_per_rank": report.bytes_sent, "sync/rows_moved": report.rows_moved,
                                 "sync/seconds": report.seconds})

    interval_loss = torch.zeros((), device=device, dtype=torch.float64)
    interval_examples, interval_words, interval_start = 0, 0, time.perf_counter()
    bar = tqdm(total=total_words, initial=words_done, unit="w", unit_scale=True, desc="training",
               disable=not (show_progress and world.is_main), smoothing=0.1)

    def log_point(lr: float) -> None:
        """Close a logging interval: true mean loss per example (over all ranks) since the last point."""
        nonlocal interval_examples, interval_words, interval_start
        elapsed = time.perf_counter() - interval_start
        loss_sum, n_examples = world.sum_floats([float(interval_loss), float(interval_examples)])
        stats.final_loss = loss_sum / max(n_examples, 1)
        point = {"train/loss": stats.final_loss, "train/lr": lr,
                 "perf/words_per_sec": interval_words / max(elapsed, 1e-9)}
        bar.set_postfix(loss=f"{stats.final_loss:.4f}", lr=f"{lr:.5f}")
        if on_log and world.is_main:
            on_log(stats.steps, point)
        interval_loss.zero_()
        interval_examples, interval_words, interval_start = 0, 0, time.perf_counter()

    started = last_save_time = time.perf_counter()
    words_at_last_save, saving_seconds = words_done, 0.0
    # Expanding the next chunk on the host overlaps with training on the current one
    # (numpy releases the GIL for the heavy parts).
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        for epoch in range(start_epoch, train_cfg.epochs):
            chunks = shard_chunks(ids, sentences, keep, model.window, rng, ranges, pos, chunk_tokens, carry)
            carry = None

            def expand_next(chunks=chunks):
                rng_state = rng.bit_generator.state  # a fresh dict: where this chunk's draws start
                chunk = next(chunks, None)
                if chunk is None:
                    return rng_state, None, None
                if getattr(backend, "expands_chunks", False):  # it builds its own windows
                    return rng_state, chunk, {"centres": chunk.ids}
                return rng_state, chunk, chunk_examples(chunk, model.name, model.window)

            pending = pool.submit(expand_next)
            while True:
                rng_state, chunk, examples = pending.result()
                if chunk is not None:
                    pending = pool.submit(expand_next)
                generator_state = generator.get_state()  # before this chunk's negatives are drawn
                n_examples = 0 if chunk is None else len(examples["centres"])
                if fused:
                    batches = [None] if n_examples else []
                else:
                    batches = [b for b, _ in device_batches(examples, train_cfg.batch_size, model.negative,
                                                            sampler, generator, device)] if n_examples else []
                # Every rank learns every rank's step count and words, so all take the same steps.
                plan = world.gather_ints([chunk is not None, len(batches), chunk.raw_words if chunk else 0,
                                          len(chunk.ids) if chunk else 0, n_examples])
                if not plan[:, 0].any():
                    break  # every shard is done with this epoch
                n_steps, chunk_words = int(plan[:, 1].max()), int(plan[:, 2].sum())
                for k in range(skip_steps, n_steps):
                    lr_from = learning_rate(train_cfg.lr, train_cfg.min_lr,
                                            (words_done + k / n_steps * chunk_words) / total_words)
                    words_now = words_done + (k + 1) / n_steps * chunk_words
                    lr = learning_rate(train_cfg.lr, train_cfg.min_lr, words_now / total_words)
                    if fused:
                        if chunk is not None:  # under torchrun a rank may run out before the others
                            loss_sum, trained = backend.train_chunk(model.name, model.window, model.negative,
                                                                    chunk, examples, lr_from, lr)
                            interval_loss += loss_sum
                            interval_examples += trained
                            if sync is None:
                                stats.examples += trained
                            else:
                                unsynced_examples += trained
                    else:
                        batch = batches[k] if k < len(batches) else None  # None: this rank ran out
                        interval_loss += step(model.name, batch, lr)
                        interval_examples += batch.size if batch is not None else 0
                    stats.steps, stats.final_lr = stats.steps + 1, lr
                    # On multiples of sync_steps, so that an extra sync (before a checkpoint) shifts none of the rest.
                    if sync is not None and stats.steps % sync_steps == 0:
                        sync_tables(words_now)
                    bar.update(int(words_now) - bar.n)
                    interval_words += int(words_now) - int(words_done + k / n_steps * chunk_words)
                    if stats.steps % (max(1, train_cfg.log_every // 50) if fused else train_cfg.log_every) == 0:
                        log_point(lr)
                    if checkpointing is None:
                        continue
                    stop, due = world.any_flag([
                        checkpointing.stop is not None and checkpointing.stop.requested,
                        checkpointing.policy.due(words_now, words_at_last_save, time.perf_counter() - last_save_time)])
                    if stop or due:
                        if sync is not None and words_now > last_sync_words:
                            sync_tables(words_now)  # rank 0 saves tables that hold every rank's work
                        save_started = time.perf_counter()
                        stats.train_seconds = seconds_before + save_started - started - saving_seconds
                        mine = {"chunk_pos": pos, "rng_state": rng_state, "generator_state": generator_state,
                                "carry": chunk.carry_in.to_state() if chunk is not None and chunk.carry_in else None,
                                "backend": backend.loop_state() if hasattr(backend, "loop_state") else None}
                        checkpointing.save({"epoch": epoch, "batches_done": k + 1, "global_words": words_done,
                                            "stats": {**asdict(stats), "interrupted": None},
                                            "ranks": world.gather_objects(mine)})
                        last_save_time, words_at_last_save = time.perf_counter(), words_now
                        saving_seconds += last_save_time - save_started
                    if stop:
                        stats.interrupted = (checkpointing.stop.signal_name or "a stop request") \
                            if checkpointing.stop is not None and checkpointing.stop.requested else "another rank"
                        return _finish(stats, world, device, interval_loss, interval_examples, bar, pool)
                skip_steps = 0
                words_done += chunk_words
                stats.raw_words += chunk_words
                stats.effective_words += int(plan[:, 3].sum())
                if not fused:
                    stats.examples += int(plan[:, 4].sum())
                bar.update(words_done - bar.n)
                pos = chunk.end if chunk is not None else pos
            pos = lo
        if sync is not None and words_done > last_sync_words:
            sync_tables(words_done)  # every rank ends with the same tables
        stats.train_seconds = seconds_before + time.perf_counter() - started - saving_seconds
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return _finish(stats, world, device, interval_loss, interval_examples, bar, pool)


def shard_chunks(ids: np.ndarray, sentences: np.ndarray, keep: np.ndarray, window: int, rng: np.random.Generator,
                 ranges: list[tuple[int, int]], pos: int, chunk_tokens: int, carry) -> Iterator[Chunk]:
    """One epoch over this rank's ranges, from corpus position pos on (a resumed run starts inside one)."""
    for a, b in ranges:
        if b > pos:
            yield from epoch_chunks(ids, sentences, keep, window, rng, token_range=(max(a, pos), b),
                                    chunk_tokens=chunk_tokens, carry=carry)
            carry = None


def _finish(stats: TrainStats, world: World, device: torch.device, interval_loss: torch.Tensor,
            interval_examples: int, bar, pool) -> TrainStats:
    """Close the last, partial logging interval (over all ranks) and release the bar and thread."""
    pool.shutdown(wait=False, cancel_futures=True)
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    loss_sum, n_examples = world.sum_floats([float(interval_loss), float(interval_examples)])
    if n_examples:
        stats.final_loss = loss_sum / n_examples
    return stats
