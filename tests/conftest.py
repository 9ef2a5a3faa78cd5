"""Shared fixtures. Tests never reach the network and never need a GPU."""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


def zipf_text(n_words: int, vocab: int = 300, seed: int = 0, line_words: int = 20) -> str:
    """Deterministic Zipf-ish text with topic structure, one sentence per line."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]
    weights = [1.0 / (i + 1) for i in range(vocab)]
    lines, line = [], []
    for _ in range(n_words):
        line.append(rng.choices(words, weights)[0])
        if len(line) == line_words:
            lines.append(" ".join(line))
            line = []
    if line:
        lines.append(" ".join(line))
    return "\n".join(lines) + "\n"


@pytest.fixture
def one_torch_thread():
    """One torch thread: the same arithmetic order run to run, and no spinning on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text(zipf_text(6000), encoding="utf-8")
    return path


def run_train(args: list[str], cwd: Path, timeout: int = 300):
    """Run `python -m w2v.train ARGS` in a subprocess, offline, on the CPU."""
    import subprocess

    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, "-m", "w2v.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
