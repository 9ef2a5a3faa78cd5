"""Trust nothing on disk: damaged token-id caches, hub revisions, concurrent encoders, files that are not text."""
from __future__ import annotations

import gzip
import json
import logging
import multiprocessing
import os
import random
import re
import sqlite3
import struct
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import zipf_text
from w2v.config import DataConfig, VocabConfig, W2VError
from w2v.corpus import NONTEXT_SHARE, Corpus, check_paths, nontext_share, open_corpus
from w2v.token_ids import CHECKSUMMED_FILES, file_checksum, load_or_build

QUIET = dict(show_progress=False, log=lambda msg: None)


def build(tmp_path: Path, text: str = None, **kwargs):
    path = tmp_path / "c.txt"
    if not path.exists():
        path.write_text(text or zipf_text(3000, vocab=80), encoding="utf-8")
    corpus = open_corpus(DataConfig(kind="files", paths=[str(path)]), tmp_path)
    return load_or_build(corpus, VocabConfig(min_count=2), tmp_path / "cache", **QUIET, **kwargs)


def reseal(folder: Path) -> None:
    """Recompute meta.json's checksums, as if the damage had been done by code that wrote a valid-looking entry."""
    meta = json.loads((folder / "meta.json").read_text())
    meta["checksums"] = {name: file_checksum(folder / name) for name in CHECKSUMMED_FILES}
    (folder / "meta.json").write_text(json.dumps(meta))


def damage_flip_a_byte(folder):
    with open(folder / "ids.int32", "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0x40]))


def damage_truncate_ids(folder):
    os.truncate(folder / "ids.int32", (folder / "ids.int32").stat().st_size // 2)


def damage_stale_ids_past_the_vocabulary(folder):
    """ids of a bigger vocabulary with a consistent checksum: the C kernel would index past its tables."""
    vocab_size = json.loads((folder / "meta.json").read_text())["vocab_size"]
    ids = np.fromfile(folder / "ids.int32", dtype=np.int32)
    ids[len(ids) // 2] = vocab_size + 1000
    ids.tofile(folder / "ids.int32")
    reseal(folder)


def damage_negative_id(folder):
    ids = np.fromfile(folder / "ids.int32", dtype=np.int32)
    ids[-1] = -7
    ids.tofile(folder / "ids.int32")
    reseal(folder)


def damage_counts_of_another_vocabulary(folder):
    counts = np.load(folder / "counts.npy")
    np.save(folder / "counts.npy", counts[:-3])
    reseal(folder)


def damage_sentence_offsets(folder):
    sentences = np.load(folder / "sentences.npy")
    sentences[1] = sentences[-1] + 50
    np.save(folder / "sentences.npy", sentences)
    reseal(folder)


def damage_meta_json(folder):
    (folder / "meta.json").write_text('{"tokens": 12')


def damage_tokenizer(folder):
    (folder / "tokenizer.json").write_text("{}")


def damage_missing_file(folder):
    (folder / "counts.npy").unlink()


DAMAGE = [damage_flip_a_byte, damage_truncate_ids, damage_stale_ids_past_the_vocabulary, damage_negative_id,
          damage_counts_of_another_vocabulary, damage_sentence_offsets, damage_meta_json, damage_tokenizer,
          damage_missing_file]


@pytest.mark.parametrize("damage", DAMAGE, ids=[d.__name__[len("damage_"):] for d in DAMAGE])
def test_a_damaged_token_id_cache_is_refused_in_one_line_saying_to_delete_it(tmp_path, damage):
    first = build(tmp_path)
    folder = first.tokenizer_path.parent
    assert json.loads((folder / "meta.json").read_text())["checksums"].keys() == set(CHECKSUMMED_FILES)
    assert build(tmp_path).cache_hit  # an intact entry opens
    del first
    damage(folder)
    with pytest.raises(W2VError) as refused:
        build(tmp_path)
    message = str(refused.value)
    assert "\n" not in message and f"rm -r {folder}" in message and "damaged" in message


def test_hub_revision_and_resolved_commit_key_the_cache(monkeypatch):
    import datasets

    commit = {"sha": "1111"}
    asked = []

    class Builder:
        def __init__(self, name, config, revision=None):
            asked.append(revision)
            self.hash = commit["sha"]

    monkeypatch.setattr(datasets, "load_dataset_builder", Builder)
    hub = DataConfig(kind="hub", name="someone/corpus", config=None)
    before = Corpus(kind="hub", hub=hub).fingerprint()
    assert Corpus(kind="hub", hub=hub).fingerprint() == before  # same commit: cache hit
    commit["sha"] = "2222"  # the dataset changed on the hub
    after = Corpus(kind="hub", hub=hub).fingerprint()
    assert after != before
    pinned = Corpus(kind="hub", hub=DataConfig(kind="hub", name="someone/corpus", revision="v1.0")).fingerprint()
    assert pinned not in (before, after) and asked[-1] == "v1.0"


def test_data_revision_is_a_config_key():
    from tests.helpers import compose_run_config

    cfg = compose_run_config("data=hub", "data.revision=abc123")
    assert cfg.data.revision == "abc123"
    assert compose_run_config("data=hub").data.revision is None


# --- concurrent encoders ---------------------------------------------------------------------------------------

def _encode_in_child(corpus_path: str, cache: str, barrier, results) -> None:
    """One 'run': encode the corpus; every child reaches the rename together, so all of them race for it."""
    import w2v.token_ids as token_ids

    real_replace = os.replace

    def replace_together(src, dst):
        if Path(src).name.startswith(".ids-"):
            barrier.wait(timeout=60)
        return real_replace(src, dst)

    token_ids.os.replace = replace_together
    try:
        corpus = open_corpus(DataConfig(kind="files", paths=[corpus_path]), Path(cache))
        got = load_or_build(corpus, VocabConfig(min_count=2), Path(cache), workers=1, **QUIET)
        results.put(("ok", file_checksum(got.tokenizer_path.parent / "ids.int32"), len(got.ids)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put(("failed", f"{type(exc).__name__}: {exc}", 0))
        raise


@pytest.mark.parametrize("runs", [2, 4])
def test_concurrent_runs_encoding_one_new_corpus_all_succeed(tmp_path, runs):
    corpus = tmp_path / "c.txt"
    corpus.write_text(zipf_text(4000, vocab=100), encoding="utf-8")
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(runs), ctx.Queue()
    children = [ctx.Process(target=_encode_in_child, args=(str(corpus), str(tmp_path / "cache"), barrier, results))
                for _ in range(runs)]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=60)
    assert [o[0] for o in outcomes] == ["ok"] * runs, outcomes
    assert len({o[1:] for o in outcomes}) == 1  # every run reads the same ids
    assert all(child.exitcode == 0 for child in children)
    entries = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(entries) == 1 and entries[0].startswith("ids-"), entries  # one entry, no temp folder left
    assert build(tmp_path).cache_hit  # and it is intact


def test_a_killed_encoders_temp_folder_is_removed_by_a_later_build_and_a_live_one_is_not(tmp_path):
    cache = tmp_path / "cache"
    dead, live = cache / ".ids-dead", cache / ".ids-live"
    for folder in (dead, live):
        folder.mkdir(parents=True)
        (folder / "provisional.int32").write_bytes(b"\0" * 64)
    hours_ago = time.time() - 2 * 3600
    for path in (dead / "provisional.int32", dead):
        os.utime(path, (hours_ago, hours_ago))
    build(tmp_path)
    assert not dead.exists() and live.exists()


# --- files that are not text -----------------------------------------------------------------------------------

def make_png(path: Path, rng: random.Random) -> None:
    """A real PNG: signature, IHDR, one IDAT of a noisy 128x128 RGB image, IEND."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + rng.randbytes(128 * 3) for _ in range(128))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 128, 128, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def make_binary(kind: str, folder: Path) -> Path:
    rng = random.Random(kind)
    if kind == "zip":
        path = folder / "corpus.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("corpus.txt", zipf_text(8000, vocab=2000))
    elif kind == "png":
        make_png(path := folder / "photo.png", rng)
    elif kind == "gzipped_model":
        import torch

        path = folder / "model.pt.gz"
        torch.save({"weight": torch.randn(300, 64, generator=torch.Generator().manual_seed(0))}, folder / "m.pt")
        path.write_bytes(gzip.compress((folder / "m.pt").read_bytes()))  # checked decompressed
    elif kind == "sqlite":
        path = folder / "notes.db"
        with sqlite3.connect(path) as db:
            db.execute("create table notes (id integer primary key, body text)")
            db.executemany("insert into notes (body) values (?)",
                           [(f"note {i}: the quick brown fox jumps over the lazy dog",) for i in range(3000)])
        db.close()
    elif kind == "tar_gz_of_text":  # mostly text once decompressed, but its headers are not
        import tarfile

        (folder / "a.txt").write_text(zipf_text(3000, vocab=300) * 6, encoding="utf-8")  # ~110 KB
        path = folder / "texts.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            archive.add(folder / "a.txt", arcname="a.txt")
    elif kind == "random_bytes":
        (path := folder / "random.txt").write_bytes(rng.randbytes(1 << 20))
    elif kind == "elf_executable":
        path = Path(os.path.realpath(sys.executable))
    elif kind == "float32_vectors":
        path = folder / "vectors.npy"
        np.save(path, np.random.default_rng(0).standard_normal((2000, 50)).astype(np.float32))
    return path


def make_text(kind: str, folder: Path) -> tuple[Path, int]:
    """(a file that is text, the undecodable byte sequences in it)."""
    text = zipf_text(20000, vocab=500)
    path = folder / f"{kind}.txt"
    if kind == "utf8":
        path.write_text(text + "naïve café — 東京 Σοφία\n" * 50, encoding="utf-8")
        return path, 0
    if kind == "a_few_broken_bytes":  # e.g. a UTF-8 file cut and pasted with a Latin-1 one, twice
        data = bytearray(text.encode())
        for at in (1000, 50_000, 90_000):
            data[at:at] = b" caf\xe9 "
        path.write_bytes(bytes(data))
        return path, 3
    if kind == "latin1_prose":  # real prose in Latin-1: each accented letter is an undecodable byte
        prose = ("Le cœur a ses raisons que la raison ne connaît point. Élève, où est la bibliothèque ? "
                 "Ça va très bien, merci ; à demain. ").replace("œ", "oe")
        path.write_bytes((prose * 500).encode("latin-1"))
        return path, (prose * 500).count("é") + sum((prose * 500).count(c) for c in "ÉàèîùÇê")
    if kind == "nul_separated":  # find -print0 style
        path.write_bytes(text.replace(" ", "\x00").encode())
        return path, 0
    if kind == "ansi_coloured_log":
        path.write_bytes(b"".join(b"\x1b[32mINFO\x1b[0m step %d loss 0.%03d words/s 1.2M\n" % (i, i % 997)
                                  for i in range(3000)))
        return path, 0
    raise ValueError(kind)


BINARIES = ["zip", "png", "gzipped_model", "sqlite", "tar_gz_of_text", "random_bytes", "elf_executable",
            "float32_vectors"]
TEXTS = ["utf8", "a_few_broken_bytes", "latin1_prose", "nul_separated", "ansi_coloured_log"]


@pytest.mark.parametrize("kind", BINARIES)
def test_a_file_that_is_not_text_is_refused_naming_the_file_and_the_share(tmp_path, kind):
    path = make_binary(kind, tmp_path)
    with pytest.raises(W2VError) as refused:
        check_paths([str(path)])
    message = str(refused.value)
    assert "\n" not in message and f"corpus file {path} is not text" in message
    share = int(re.search(r"(\d+)% of its (?:first \d+ KB|\d+ bytes) are undecodable bytes or control characters", message)[1])
    head = gzip.decompress(path.read_bytes())[:1 << 16] if path.suffix == ".gz" else path.read_bytes()[:1 << 16]
    assert share == round(100 * nontext_share(head))
    if kind == "sqlite":  # pages full of English sentences: caught by its signature, not by the share
        assert "SQLite database" in message and 0.10 < nontext_share(head) < NONTEXT_SHARE
    elif kind == "tar_gz_of_text":
        assert "a tar archive" in message and nontext_share(head) < NONTEXT_SHARE
    else:  # the share alone refuses it, with a clear margin
        assert nontext_share(head) >= NONTEXT_SHARE + 0.05


@pytest.mark.parametrize("kind", TEXTS)
def test_text_passes_the_check_even_with_some_undecodable_bytes(tmp_path, kind):
    path, broken = make_text(kind, tmp_path)
    assert check_paths([str(path)]) == [path.resolve()]
    assert nontext_share(path.read_bytes()[:1 << 16]) < NONTEXT_SHARE - 0.05
    corpus = open_corpus(DataConfig(kind="files", paths=[str(path)]), tmp_path)
    assert sum(block.count("\n") for block in corpus.text_blocks()) > 0
    assert corpus.replaced_by_file == ({str(path.resolve()): broken} if broken else {})


def test_the_share_ignores_a_character_cut_by_the_end_of_the_head():
    head = ("東京 " * 1000).encode()
    assert nontext_share(head[:-1]) == 0.0 and nontext_share(head[:-2]) == 0.0


def test_a_few_broken_bytes_train_and_the_log_names_the_file_and_the_count(tmp_path, caplog):
    from tests.helpers import TINY_RUN as TINY, compose_run_config
    from w2v.train import run

    good, _ = make_text("utf8", tmp_path)
    broken, n_broken = make_text("a_few_broken_bytes", tmp_path)
    cfg = compose_run_config("data=files", f"data.paths=[{good},{broken}]", f"cache_dir={tmp_path / 'cache'}",
                             "backend=dense", *TINY)
    with caplog.at_level(logging.WARNING, logger="w2v"):
        metrics = run(cfg, tmp_path / "run", show_progress=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [w for w in warnings if "undecodable" in w] == [
        f"{broken.resolve()}: replaced {n_broken} undecodable byte sequences with U+FFFD (read as spaces)"]
    assert metrics["replaced_by_file"] == {str(broken.resolve()): n_broken}
    assert (tmp_path / "run" / "vectors.bin").stat().st_size > 0
