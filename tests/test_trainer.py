"""The training loop drives every backend through one interface: log points count corpus words, whatever a step is."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from w2v.backends import BACKENDS, init_tables
from w2v.config import TrainConfig
from w2v.objective import SkipGram
from w2v.trainer import train

CPU = torch.device("cpu")
WORDS = 20_000

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # fixture in conftest.py


def log_points(name: str, log_every: int, monkeypatch) -> tuple[int, int]:
    """(log points, steps) of one epoch over WORDS words; fused takes 1,000-word chunks, so one step each."""
    monkeypatch.setattr("w2v.backends.fused.CPU_CHUNK_TOKENS", 1000)
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
