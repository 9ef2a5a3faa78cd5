"""Large CPU tables on transparent huge pages, where Linux offers them.

The fused kernel reads a random output row for every negative. Once the tables outgrow the caches,
each such read also misses the TLB with 4 KiB pages (a 1.5 GB table spans 390k of them; the TLB
holds a few thousand), and the page walk misses the caches too. With 2 MiB pages the TLB covers
gigabytes: at a 3.9M-word vocabulary the skip-gram kernel took 0.83-0.87x the time, while at 28k-776k
words it made no measurable difference (docs/performance.md, "Where the time goes").
Linux gives huge pages to memory that asks for them (madvise) when
/sys/kernel/mm/transparent_hugepage/enabled is "madvise" (a common default) or "always"; elsewhere
the advice does nothing, and nothing else changes.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

import torch

MIN_BYTES = 64 << 20  # smaller tables sit largely in cache: no gain measured there
HUGE_PAGE_BYTES = 2 << 20
MADV_HUGEPAGE = 14  # linux/mman.h


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        return libc
    except (OSError, AttributeError):
        return None


def advise_huge_pages(address: int, length: int) -> bool:
    """Ask for huge pages on the whole 2 MiB pages inside [address, address + length). True if asked."""
    if not sys.platform.startswith("linux"):
        return False
    start = -(-address // HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES
    end = (address + length) // HUGE_PAGE_BYTES * HUGE_PAGE_BYTES
    libc = _libc()
    if end <= start or libc is None:
        return False
    return libc.madvise(start, end - start, MADV_HUGEPAGE) == 0


def table_copy(table: torch.Tensor) -> torch.Tensor:
    """A contiguous copy of `table`; a CPU one of MIN_BYTES or more is advised onto huge pages before
    the copy first touches its pages (advice given later would wait for the kernel's background merging)."""
    copy = torch.empty(table.shape, dtype=table.dtype, device=table.device)
    size = copy.numel() * copy.element_size()
    if copy.device.type == "cpu" and size >= MIN_BYTES:
        advise_huge_pages(copy.data_ptr(), size)
    return copy.copy_(table)
