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
# Host memory of the end of a run, measured (docs/performance.md, "Memory against corpus length"):
# the words as strings, the rows to export and each 64k-row block of vectors.bin as it is written
# (150 MB for 776k words), with the noise and subsampling arrays still held.
EXPORT_FIXED_BYTES = 64 << 20
EXPORT_WORD_BYTES = 192


def rows_per_step(model_name: str, batch_size: int, window: int, negative: int) -> tuple[int, int]:
    """(input rows, output rows) looked up by one optimiser step."""
    input_rows = batch_size * (2 * window if model_name == "cbow" else 1)
    return input_rows, batch_size * (1 + negative)


def fused_chunk_bytes(chunk_tokens: int, window: int, negative: int, on_cpu: bool) -> int:
    """Working memory of backend=fused for one chunk, at its peak.

    CPU: the host arrays of a chunk (up to two chunk sizes when a cut sentence is carried), for
    the chunk in training and the next one being prepared: ids, sentence, window, the raw
    slice, its sentence numbers and keep draws, 8 bytes each.
    Accelerator: the chunk expanded on the device: the (n, 2 * window) grid of positions,
    context ids and masks (8 + 8 + 1 bytes a cell, plus a bool), and for every cell that
    can be a pair, its centre and context (16 bytes), negatives with their float64 draws
    (16 bytes each) and a float32 learning rate: an upper bound, as not every cell is a pair.
    """
    if on_cpu:
        return 2 * 2 * chunk_tokens * 6 * 8
    cells = chunk_tokens * 2 * window
    return cells * (8 + 8 + 2 + 16 + 16 * negative + 4)


def estimate_bytes(backend: str, vocab_size: int, dim: int, model_name: str, batch_size: int,
                   window: int, negative: int, device_type: str = "cpu", world_size: int = 1,
                   sync_method: str = "auto") -> dict[str, int]:
    """Bytes one rank allocates on its training device, at the peak of each kind:

    'tables': weights + gradients; 'batch': the per-step (or, for fused, per-chunk) working set;
    'copies': on the CPU, the initial tables, which coexist with the backend's own copy while it
    is built (on an accelerator they stay in host memory);
    'sync': backend=fused under torchrun (world_size > 1): the copy of both tables as they were at
    the last sync, and the exchange's buffers at their peak (w2v/table_sync.py, sync_peak_bytes);
    'export': on the CPU, the end of the run: the word list and the buffers of writing the vectors
    (after training, with the tables; on an accelerator this is host memory).
    """
    from .fused import CPU_CHUNK_TOKENS, DEVICE_CHUNK_TOKENS

    on_cpu = device_type == "cpu"
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
    if backend == "fused":
        batch = fused_chunk_bytes(CPU_CHUNK_TOKENS if on_cpu else DEVICE_CHUNK_TOKENS, window, negative, on_cpu)
    copies = 2 * table if on_cpu else 0
    sync = 0
    if backend == "fused" and world_size > 1:
        from .table_sync import sync_peak_bytes
        sync = sync_peak_bytes(vocab_size, dim, world_size, sync_method)
    export = EXPORT_FIXED_BYTES + EXPORT_WORD_BYTES * vocab_size if on_cpu else 0
    return {"tables": tables, "batch": batch, "copies": copies, "sync": sync, "export": export}


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
               negative: int, device: torch.device, available: int | None = None, headroom: float = 0.9,
               world_size: int = 1, sync_method: str = "auto") -> None:
    """Raise W2VError naming the figure and a remedy when the estimate exceeds the free memory (one rank's)."""
    need = estimate_bytes(backend, vocab_size, dim, model_name, batch_size, window, negative, device.type,
                          world_size, sync_method)
    if backend == "offload" and device.type == "cpu":  # no device to offload to: its tables are in this memory
        need["tables"] = 2 * vocab_size * dim * FLOAT_BYTES
    free = available_bytes(device) if available is None else available
    total = sum(need.values())
    if total <= headroom * free:
        return
    where = f"{device.type} memory"
    if backend == "onehot" and need["batch"] > need["tables"]:
        raise W2VError(
            f"backend=onehot needs {need['batch'] / GIB:.1f} GiB for its one-hot batches "
            f"({vocab_size} words x {sum(rows_per_step(model_name, batch_size, window, negative))} rows), "
            f"but only {free / GIB:.1f} GiB of {where} is free; use backend=sparse or a smaller train.batch_size")
    synced = f", table sync {need['sync'] / GIB:.1f}" if need["sync"] else ""
    raise W2VError(
        f"backend={backend} needs {total / GIB:.1f} GiB ({vocab_size} words x {dim} dims: tables "
        f"{need['tables'] / GIB:.1f}, working set {need['batch'] / GIB:.1f}, initial copies {need['copies'] / GIB:.1f}"
        f"{synced}, export {need['export'] / GIB:.1f}), "
        f"but only {free / GIB:.1f} GiB of {where} is free; use backend=sparse"
        f"{' or backend=offload (tables in host memory)' if device.type == 'cuda' else ''}, "
        f"{'train.sync_method=dense (the smallest sync buffers), fewer ranks a host, ' if need['sync'] else ''}"
        f"or a smaller vocab.max_size")
