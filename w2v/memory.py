"""Memory guard: estimate what a backend will allocate, and refuse before allocating it.

Dying of out-of-memory half-way through a run wastes the tokenisation and the
training so far; a one-line refusal with the figure and a way out does not.
"""
from __future__ import annotations

import os

import torch

from .config import W2VError

FLOAT_BYTES = 4
GIB = 1024 ** 3


def rows_per_step(model_name: str, batch_size: int, window: int, negative: int) -> tuple[int, int]:
    """(input rows, output rows) looked up by one optimiser step."""
    input_rows = batch_size * (2 * window if model_name == "cbow" else 1)
    return input_rows, batch_size * (1 + negative)


def estimate_bytes(backend: str, vocab_size: int, dim: int, model_name: str, batch_size: int,
                   window: int, negative: int) -> dict[str, int]:
    """Bytes on the training device: 'tables' (weights + gradients) and 'batch' (per-step working set)."""
    table = vocab_size * dim * FLOAT_BYTES
    input_rows, output_rows = rows_per_step(model_name, batch_size, window, negative)
    looked_up = (input_rows + output_rows) * dim * FLOAT_BYTES
    if backend in ("dense", "onehot"):
        tables = 2 * table * 2  # two tables, each with a dense gradient of the same size
    elif backend == "offload":
        tables = 0  # the tables stay in host memory; only looked-up rows reach the device
    else:
        tables = 2 * table
    batch = 4 * looked_up  # rows, their gradients, and the autograd intermediates
    if backend == "onehot":
        # Each looked-up row is a one-hot vector of vocab floats, kept for the backward pass.
        batch += (input_rows + output_rows) * vocab_size * FLOAT_BYTES
    return {"tables": tables, "batch": batch}


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


def check_fits(backend: str, vocab_size: int, dim: int, model_name: str, batch_size: int, window: int,
               negative: int, device: torch.device, available: int | None = None, headroom: float = 0.9) -> None:
    """Raise W2VError naming the figure and a remedy when the estimate exceeds the free memory."""
    need = estimate_bytes(backend, vocab_size, dim, model_name, batch_size, window, negative)
    if backend == "offload" and device.type == "cpu":  # no device to offload to: its tables are in this memory
        need["tables"] = 2 * vocab_size * dim * FLOAT_BYTES
    free = available_bytes(device) if available is None else available
    total = need["tables"] + need["batch"]
    if total <= headroom * free:
        return
    where = f"{device.type} memory"
    if backend == "onehot" and need["batch"] > need["tables"]:
        raise W2VError(
            f"backend=onehot needs {need['batch'] / GIB:.1f} GiB for its one-hot batches "
            f"({vocab_size} words x {sum(rows_per_step(model_name, batch_size, window, negative))} rows), "
            f"but only {free / GIB:.1f} GiB of {where} is free; use backend=sparse or a smaller train.batch_size")
    raise W2VError(
        f"backend={backend} needs {total / GIB:.1f} GiB ({vocab_size} words x {dim} dims, two tables), "
        f"but only {free / GIB:.1f} GiB of {where} is free; use backend=sparse"
        f"{' or backend=offload (tables in host memory)' if device.type == 'cuda' else ''}, "
        f"or a smaller vocab.max_size")
