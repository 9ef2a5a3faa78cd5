"""Memory guard: ask the backend what it will allocate, and refuse before allocating it.

Dying of out-of-memory half-way through a run wastes the tokenisation and the
training so far; a one-line refusal with the figure and a way out does not.
Each backend estimates its own bytes (Backend.estimate_bytes); this module reads the free
memory and words the refusal.
"""
from __future__ import annotations

import os

import torch

from .config import W2VError
from .objective import Objective

GIB = 1024 ** 3
# Host memory of the end of a run, measured (docs/performance.md, "Memory against corpus length"):
# the words as strings, the rows to export and each 64k-row block of vectors.bin as it is written
# (150 MB for 776k words), with the noise and subsampling arrays still held.
EXPORT_FIXED_BYTES = 64 << 20
EXPORT_WORD_BYTES = 192


def estimate_bytes(backend, vocab_size: int, dim: int, objective: Objective, batch_size: int,
                   device_type: str = "cpu", world_size: int = 1, sync_method: str = "auto") -> dict[str, int]:
    """What `backend` (a Backend class or instance) allocates on one rank's device: Backend.estimate_bytes,
    plus 'export': on the CPU, the end of the run (the word list and the buffers of writing the vectors,
    after training and beside the tables; on an accelerator this is host memory), whatever the backend."""
    cls = backend if isinstance(backend, type) else type(backend)
    need = cls.estimate_bytes(vocab_size, dim, objective, batch_size, device_type, world_size, sync_method)
    if objective.tree is not None:  # hierarchical softmax: the Huffman tree sits beside the tables
        need["tables"] += objective.tree.peak_bytes()
    need["export"] = EXPORT_FIXED_BYTES + EXPORT_WORD_BYTES * vocab_size if device_type == "cpu" else 0
    return need


def available_bytes(device: torch.device) -> int:
    """Free memory on the device: CUDA's free memory, or the host's MemAvailable."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_fits(backend, vocab_size: int, dim: int, objective: Objective, batch_size: int, device: torch.device,
               available: int | None = None, headroom: float = 0.9, world_size: int = 1,
               sync_method: str = "auto") -> None:
    """Raise W2VError naming the figure and a remedy when the estimate exceeds the free memory (one rank's).

    backend: a Backend class or instance.
    """
    cls = backend if isinstance(backend, type) else type(backend)
    need = estimate_bytes(cls, vocab_size, dim, objective, batch_size, device.type, world_size, sync_method)
    free = available_bytes(device) if available is None else available
    total = sum(need.values())
    if total <= headroom * free:
        return
    where = f"{device.type} memory"
    if cls.batch_scales_with_vocab and need["batch"] > need["tables"]:
        rows = batch_size * sum(objective.rows_per_example())
        raise W2VError(
            f"backend={cls.name} needs {need['batch'] / GIB:.1f} GiB for its batches of vocabulary-long rows "
            f"({vocab_size} words x {rows} rows), but only {free / GIB:.1f} GiB of {where} is free; "
            f"use backend=sparse or a smaller train.batch_size")
    synced = f", table sync {need['sync'] / GIB:.1f}" if need["sync"] else ""
    raise W2VError(
        f"backend={cls.name} needs {total / GIB:.1f} GiB ({vocab_size} words x {dim} dims: tables "
        f"{need['tables'] / GIB:.1f}, working set {need['batch'] / GIB:.1f}, initial copies {need['copies'] / GIB:.1f}"
        f"{synced}, export {need['export'] / GIB:.1f}), "
        f"but only {free / GIB:.1f} GiB of {where} is free; use backend=sparse"
        f"{' or backend=offload (tables in host memory)' if device.type == 'cuda' else ''}, "
        f"{'train.sync_method=dense (the smallest sync buffers), fewer ranks a host, ' if need['sync'] else ''}"
        f"or a smaller vocab.max_size")
