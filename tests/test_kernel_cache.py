"""The C kernel's build cache trusts only what this user alone could have written, and says why it falls back."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import w2v.kernels as kernels

needs_cc = pytest.mark.skipif(kernels._compiler() is None, reason="no C compiler on this machine")
PLANTED = r"""
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen("%s", "w");
    if (f) { fputs("the planted library ran\n", f); fclose(f); }
}
"""


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """No kernel loaded yet in this process, temp folders made under tmp_path/tmp."""
    monkeypatch.setattr(kernels, "_loaded", {})
    monkeypatch.delenv("W2V_NO_C", raising=False)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path


def plant(cache: Path, marker: Path) -> Path:
    """A library under the cache's own name for this machine, whose loading creates `marker`."""
    source = cache.parent / "planted.c"
    source.write_text(PLANTED % marker)
    target = cache / f"sgns-{kernels._key(kernels._compiler())}.so"
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([kernels._compiler(), "-shared", "-fPIC", str(source), "-o", str(target)], check=True)
    return target


@needs_cc
@pytest.mark.parametrize("how", ["world_writable_folder", "group_writable_library", "someone_elses_folder"])
def test_a_library_planted_in_a_cache_others_control_is_never_loaded(fresh, monkeypatch, caplog, how):
    cache, marker = fresh / "shared-cache", fresh / "planted-ran"
    monkeypatch.setenv("W2V_KERNEL_CACHE", str(cache))
    planted = plant(cache, marker)
    if how == "world_writable_folder":
        cache.chmod(0o777)
    elif how == "group_writable_library":
        cache.chmod(0o700)
        planted.chmod(0o775)
    else:
        cache.chmod(0o700)
        real_uid = os.getuid()
        monkeypatch.setattr(kernels.os, "getuid", lambda: real_uid + 1)
    with caplog.at_level(logging.WARNING, logger="w2v"):
        kernel = kernels.load_sgns()
    assert kernel is not None and not marker.exists()  # a kernel, and not the planted one
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    if how == "world_writable_folder":  # this user's folder: made private; the library, unrecorded, rebuilt
        assert "made it private (700)" in warnings[0] and kernels.not_private(cache) is None
        assert kernels.hash_matches(planted)
    else:
        assert "is not private" in warnings[0] and "W2V_KERNEL_CACHE" in warnings[0]
    assert list((fresh / "tmp").iterdir()) == []  # the private build folder is gone once loaded


@needs_cc
def test_a_library_someone_else_owns_is_refused(fresh, monkeypatch, caplog):
    """The folder is ours, the library (with a matching recorded hash) is another user's: not loaded."""
    cache, marker = fresh / "cache", fresh / "planted-ran"
    monkeypatch.setenv("W2V_KERNEL_CACHE", str(cache))
    planted = plant(cache, marker)
    cache.chmod(0o700)
    (cache / (planted.name + ".sha256")).write_text(kernels._sha256(planted))
    real_lstat, uid = Path.lstat, os.getuid()

    class Stat:
        def __init__(self, st):
            self.st_mode, self.st_uid = st.st_mode, uid + 1

    monkeypatch.setattr(Path, "lstat", lambda self: Stat(real_lstat(self)) if self == planted else real_lstat(self))
    with caplog.at_level(logging.WARNING, logger="w2v"):
        assert kernels.load_sgns() is not None
    assert not marker.exists()
    assert any(f"belongs to uid {uid + 1}" in r.getMessage() for r in caplog.records)


@needs_cc
def test_a_private_cache_is_used_and_a_corrupt_library_is_rebuilt_once(fresh, monkeypatch, caplog):
    cache = fresh / "cache"
    monkeypatch.setenv("W2V_KERNEL_CACHE", str(cache))
    first = kernels.library_path()
    assert first.parent == cache and kernels.not_private(cache) is None and kernels.not_private(first) is None
    first.write_bytes(first.read_bytes()[:1000])  # truncated: dlopen fails
    with caplog.at_level(logging.WARNING, logger="w2v"):
        kernel = kernels.load_sgns()
    assert kernel is not None and not caplog.records  # rebuilt in place, silently
    assert first.stat().st_size > 1000


def test_a_library_that_will_not_load_is_rebuilt_once_then_the_real_cause_is_said(fresh, monkeypatch, caplog):
    built = []
    so = fresh / "cache" / "sgns-x.so"

    def library_path(rebuild=False, errors=None, private=False, source=kernels.SOURCE):
        built.append(rebuild)
        assert private == rebuild
        so.parent.mkdir(exist_ok=True)
        so.write_bytes(b"\x7fELF")
        return so

    def cdll(path):
        raise OSError(f"{path}: failed to map segment from shared object")
    monkeypatch.setattr(kernels, "library_path", library_path)
    monkeypatch.setattr(kernels.ctypes, "CDLL", cdll)
    with caplog.at_level(logging.WARNING, logger="w2v"):
        assert kernels.load_sgns() is None
    assert built == [False, True]  # one rebuild (outside the cache: it could not map the cached code)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "failed to map segment" in warnings[0] and "noexec" in warnings[0]
    assert "no C compiler" not in warnings[0]


@needs_cc
@pytest.mark.skipif(not os.path.ismount("/tmp/noexec"), reason="needs a noexec mount at /tmp/noexec (checked by hand)")
def test_a_noexec_cache_is_said_and_the_kernel_built_elsewhere(fresh, monkeypatch, caplog):
    monkeypatch.setenv("W2V_KERNEL_CACHE", "/tmp/noexec/w2v-test")
    with caplog.at_level(logging.WARNING, logger="w2v"):
        assert kernels.load_sgns() is not None
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "failed to map segment" in warnings[0] and "noexec" in warnings[0]
    shutil.rmtree("/tmp/noexec/w2v-test", ignore_errors=True)


def test_no_compiler_says_so(fresh, monkeypatch, caplog):
    monkeypatch.setattr(kernels, "_compiler", lambda: None)
    with caplog.at_level(logging.WARNING, logger="w2v"):
        assert kernels.load_sgns() is None
    assert [r.getMessage() for r in caplog.records][-1].startswith("no C kernel: no C compiler")


def test_without_a_compiler_the_corpus_is_split_by_python_with_the_same_ids(fresh, monkeypatch, caplog):
    from w2v.config import DataConfig, VocabConfig
    from w2v.corpus import open_corpus
    from w2v.token_ids import load_or_build

    (fresh / "c.txt").write_text("Naïve walk-in, the walk-in\nthe end\n" * 5)
    corpus = open_corpus(DataConfig(kind="files", paths=[str(fresh / "c.txt")]), fresh)
    expected = load_or_build(corpus, VocabConfig(min_count=1), fresh / "with", show_progress=False, log=lambda m: None)
    monkeypatch.setattr(kernels, "_loaded", {})
    monkeypatch.setattr(kernels, "_compiler", lambda: None)
    with caplog.at_level(logging.WARNING, logger="w2v"):
        assert kernels.load_words() is None
        got = load_or_build(corpus, VocabConfig(min_count=1), fresh / "without", show_progress=False,
                            log=lambda m: None)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "no C compiler" in warnings[0] and "Python path" in warnings[0]
    assert got.ids.tolist() == expected.ids.tolist() and got.counts.tolist() == expected.counts.tolist()


@needs_cc
def test_an_unwritable_cache_builds_in_a_temp_folder_that_is_removed(fresh, monkeypatch):
    blocker = fresh / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("W2V_KERNEL_CACHE", str(blocker / "kernels"))
    assert kernels.load_sgns() is not None
    assert list((fresh / "tmp").iterdir()) == []  # was one leaked w2v-kernels-* folder per process


def test_more_negatives_than_the_kernel_holds_are_said_once(monkeypatch, caplog):
    import numpy as np
    import torch

    from w2v.backends import init_tables
    from w2v.backends.fused import FusedBackend
    from w2v.kernels import MAX_NEGATIVE
    from tests.helpers import zipf_chunk
    from w2v.objective import make_objective

    backend = FusedBackend(*init_tables(50, 8, seed=0))
    if backend.kernel is None:
        pytest.skip("no C kernel here: nothing to fall back from")
    chunk = zipf_chunk(400)
    backend.prepare(counts=np.bincount(chunk.ids, minlength=50), batch_size=64, seed=1)
    with caplog.at_level(logging.WARNING, logger="w2v"):
        for _ in range(2):
            backend.train_chunk(make_objective("skipgram", 2, MAX_NEGATIVE + 1), chunk, 0.025, 0.02)
        backend.train_chunk(make_objective("skipgram", 2, MAX_NEGATIVE), chunk, 0.025, 0.02)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and f"model.negative={MAX_NEGATIVE + 1}" in warnings[0]
    assert "torch" in warnings[0]
