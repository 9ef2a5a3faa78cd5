"""The training loop drives every backend through one interface: log points count corpus words, whatever a step is."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from w2v.backends import BACKENDS, init_tables
from w2v.config import TrainConfig
from w2v.objective import SkipGram
from w2v.trainer import auto_log_every, train

CPU = torch.device("cpu")
WORDS = 20_000

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # fixture in conftest.py


def log_points(name: str, log_every: int | str, monkeypatch, chunk_tokens: int | None = 1000) -> tuple[int, int]:
    """(log points, steps) of one epoch over WORDS words; fused takes 1,000-word chunks, so one step each."""
    if chunk_tokens:
        monkeypatch.setattr("w2v.backends.fused.CPU_CHUNK_TOKENS", chunk_tokens)
    rng = np.random.default_rng(0)
    ids = (rng.zipf(1.3, WORDS) % 99 + 1).astype(np.int64)
    sentences = np.arange(0, WORDS + 1, 20, dtype=np.int64)
    counts = np.bincount(ids, minlength=100)
    backend = BACKENDS[name].create(*init_tables(100, 8, seed=1), CPU)
    points = []
    stats = train(SkipGram(window=3, negative=3), TrainConfig(epochs=1, batch_size=256, log_every=log_every), 1e-3,
                  ids, sentences, counts, backend, CPU, show_progress=False,
                  on_log=lambda step, point: points.append(step) if "train/loss" in point else None)
    assert points == sorted(points) and points[-1] == stats.steps  # the end of the run closes the last interval
    return len(points), stats.steps


@pytest.mark.parametrize("name", ["dense", "fused"])  # a step of a batch, a step of a chunk
def test_log_points_fall_every_log_every_words(name, monkeypatch):
    points, steps = log_points(name, 3000, monkeypatch)
    assert WORDS // 3000 <= points <= WORDS // 3000 + 1
    assert steps >= 20  # many steps, few points: points follow words, not steps
    assert log_points(name, 10 * WORDS, monkeypatch)[0] == 1  # only the end of the run
    points, steps = log_points(name, 1, monkeypatch)
    assert points == steps  # every step covers at least a word


@pytest.mark.parametrize("name", ["dense", "fused"])
def test_auto_log_every_draws_a_curve_in_one_epoch(name, monkeypatch):
    # The default (auto): at least 50 points in a one-epoch run, even with fused's 262k-word chunks, which
    # are longer than this whole run; they still fall where the words pass a multiple of the interval.
    monkeypatch.setattr("w2v.backends.fused.CPU_CHUNK_TOKENS", 1 << 18)
    every = auto_log_every(WORDS)
    assert every == 200  # 20,000 / 50 = 400, rounded down to 1, 2 or 5 times a power of ten
    points, _ = log_points(name, "auto", monkeypatch, chunk_tokens=None)
    assert points == WORDS // every >= 50


def test_auto_log_every_rounds_down_to_round_numbers():
    assert [auto_log_every(n) for n in (10, 49, 50, 149, 591_692, 5_581_975, 10**9)] == \
        [1, 1, 1, 2, 10_000, 100_000, 20_000_000]
    for n in range(1, 100_000, 997):
        assert 50 <= n // auto_log_every(n) <= 125 or n < 50
