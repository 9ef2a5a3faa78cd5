"""Large CPU tables are advised onto transparent huge pages (w2v/huge_pages.py); small ones are left alone."""
from pathlib import Path

import pytest
import torch

from w2v import huge_pages
from w2v.huge_pages import MIN_BYTES, table_copy

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
THP_OFFERED = THP.exists() and "[never]" not in THP.read_text()


def vm_flags(address: int) -> list[str]:
    """The VmFlags of the mapping of this process that holds `address` (/proc/self/smaps)."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= address < hi
        elif inside and line.startswith("VmFlags:"):
            return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")


def test_a_copy_has_the_values_and_is_contiguous():
    table = torch.arange(24, dtype=torch.float32).reshape(4, 6).t()  # not contiguous
    copy = table_copy(table)
    assert copy.is_contiguous() and torch.equal(copy, table)
    assert copy.data_ptr() != table.data_ptr()


@pytest.mark.skipif(not THP_OFFERED, reason="no transparent huge pages here")
def test_a_large_table_is_advised_onto_huge_pages():
    rows = MIN_BYTES // (100 * 4) + 1
    large = table_copy(torch.ones(rows, 100))
    middle = large.data_ptr() + large.numel() * 2  # half way through: inside the advised whole pages
    assert "hg" in vm_flags(middle)  # "hg": MADV_HUGEPAGE given for this range
    assert torch.all(large == 1)


def test_only_tables_of_min_bytes_or_more_are_advised(monkeypatch):
    advised = []
    monkeypatch.setattr(huge_pages, "advise_huge_pages", lambda address, length: advised.append(length) or True)
    table_copy(torch.ones(1000, 100))
    assert advised == []
    table_copy(torch.ones(MIN_BYTES // 400, 100))  # just under MIN_BYTES
    assert advised == []
    rows = -(-MIN_BYTES // 400)
    table_copy(torch.ones(rows, 100))
    assert advised == [rows * 400]


def test_only_whole_huge_pages_inside_the_range_are_advised():
    page = huge_pages.HUGE_PAGE_BYTES
    assert not huge_pages.advise_huge_pages(page + 64, page)  # no whole 2 MiB page inside: nothing asked


def test_the_fused_backend_keeps_its_tables_on_the_advised_copies():
    from w2v.backends.fused import FusedBackend

    rows = MIN_BYTES // (100 * 4) + 1
    backend = FusedBackend(torch.zeros(rows, 100), torch.zeros(rows, 100))
    for table in (backend.input_table, backend.output_table):
        assert table.is_contiguous() and table.shape == (rows, 100)
        if THP_OFFERED:
            assert "hg" in vm_flags(table.data_ptr() + table.numel() * 2)
