"""The training loop: chunks of ids -> batches -> backend steps, with lr decay and logging.

Reads top to bottom: for each epoch, subsample a chunk of the corpus, expand it
into examples on the host (vectorised numpy), move them to the device in one
copy, draw their negatives there, and step through them batch by batch.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from .batches import Chunk, NoiseSampler, cbow_windows, epoch_chunks, keep_probability, skipgram_pairs
from .config import RunConfig
from .model import Batch


@dataclass
class TrainStats:
    raw_words: int = 0  # corpus words processed, summed over epochs (gensim's raw count)
    effective_words: int = 0  # words left after subsampling, summed over epochs
    examples: int = 0  # pairs (skip-gram) or windows (CBOW) trained
    steps: int = 0
    train_seconds: float = 0.0
    final_loss: float = float("nan")  # mean loss per example over the last logging interval


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
          show_progress: bool = True, token_range: tuple[int, int] | None = None) -> TrainStats:
    """Train `backend` in place over cfg.train.epochs epochs of ids[token_range]."""
    model, train_cfg = cfg.model, cfg.train
    rng = np.random.default_rng(train_cfg.seed)
    generator = torch.Generator(device=device).manual_seed(train_cfg.seed)
    sampler = NoiseSampler(counts, device)
    if hasattr(backend, "prepare"):  # a fused backend draws its own negatives and sizes its own steps
        backend.prepare(counts=counts, batch_size=train_cfg.batch_size, seed=train_cfg.seed)
    keep = keep_probability(counts, cfg.vocab.sample)
    lo, hi = token_range if token_range is not None else (0, len(ids))
    corpus_words = hi - lo
    total_words = corpus_words * train_cfg.epochs
    stats = TrainStats()
    interval_loss = torch.zeros((), device=device, dtype=torch.float64)
    interval_examples, interval_words, interval_start = 0, 0, time.perf_counter()
    bar = tqdm(total=total_words, unit="w", unit_scale=True, desc="training", disable=not show_progress,
               smoothing=0.1)

    def log_point(lr: float) -> None:
        """Close a logging interval: true mean loss per example since the last point."""
        nonlocal interval_examples, interval_words, interval_start
        elapsed = time.perf_counter() - interval_start
        stats.final_loss = float(interval_loss) / max(interval_examples, 1)
        point = {"train/loss": stats.final_loss, "train/lr": lr,
                 "perf/words_per_sec": interval_words / max(elapsed, 1e-9)}
        bar.set_postfix(loss=f"{stats.final_loss:.4f}", lr=f"{lr:.5f}")
        if on_log:
            on_log(stats.steps, point)
        interval_loss.zero_()
        interval_examples, interval_words, interval_start = 0, 0, time.perf_counter()

    started = time.perf_counter()
    # Expanding the next chunk on the host overlaps with training on the current one
    # (numpy releases the GIL for the heavy parts).
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        for epoch in range(train_cfg.epochs):
            chunks = epoch_chunks(ids, sentences, keep, model.window, rng, token_range=(lo, hi),
                                  chunk_tokens=getattr(backend, "chunk_tokens", 1 << 20))

            def expand_next(chunks=chunks):
                chunk = next(chunks, None)
                if chunk is None:
                    return None
                if getattr(backend, "expands_chunks", False):  # it builds its own windows
                    return chunk, {"centres": chunk.ids}
                return chunk, chunk_examples(chunk, model.name, model.window)

            pending = pool.submit(expand_next)
            while True:
                item = pending.result()
                if item is None:
                    break
                chunk, examples = item
                pending = pool.submit(expand_next)
                stats.effective_words += len(chunk.ids)
                words_before = stats.raw_words
                if len(examples["centres"]) == 0:
                    stats.raw_words += chunk.raw_words
                    bar.update(chunk.raw_words)
                    continue
                if hasattr(backend, "train_chunk"):
                    # A fused backend takes the whole chunk in one call and decays lr inside it.
                    lr_from = learning_rate(train_cfg.lr, train_cfg.min_lr, words_before / total_words)
                    lr_to = learning_rate(train_cfg.lr, train_cfg.min_lr,
                                          (words_before + chunk.raw_words) / total_words)
                    loss_sum, n_examples = backend.train_chunk(model.name, model.window, model.negative, chunk,
                                                               examples, lr_from, lr_to)
                    interval_loss += loss_sum
                    interval_examples += n_examples
                    stats.examples += n_examples
                    stats.steps += 1
                    stats.raw_words = words_before + chunk.raw_words
                    bar.update(chunk.raw_words)
                    interval_words += chunk.raw_words
                    if stats.steps % max(1, train_cfg.log_every // 50) == 0:
                        log_point(lr_to)
                    continue
                done_in_chunk = 0
                for batch, fraction in device_batches(examples, train_cfg.batch_size, model.negative, sampler,
                                                      generator, device):
                    progress = (words_before + fraction * chunk.raw_words) / total_words
                    lr = learning_rate(train_cfg.lr, train_cfg.min_lr, progress)
                    interval_loss += backend.train_step(model.name, batch, lr)
                    interval_examples += batch.size
                    stats.examples += batch.size
                    stats.steps += 1
                    words_now = int(fraction * chunk.raw_words)
                    bar.update(words_now - done_in_chunk)
                    interval_words += words_now - done_in_chunk
                    done_in_chunk = words_now
                    if stats.steps % train_cfg.log_every == 0:
                        log_point(lr)
                stats.raw_words = words_before + chunk.raw_words
                bar.update(chunk.raw_words - done_in_chunk)
                interval_words += chunk.raw_words - done_in_chunk
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    stats.train_seconds = time.perf_counter() - started
    if interval_examples:  # the last, partial logging interval
        stats.final_loss = float(interval_loss) / interval_examples
    return stats
