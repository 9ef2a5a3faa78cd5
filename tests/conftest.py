"""Shared fixtures. Tests never reach the network and never need a GPU. Shared helpers: tests/helpers.py."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import zipf_text

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
