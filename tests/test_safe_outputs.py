"""Safe outputs: every output is published by an atomic rename, and a run never clobbers another's."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import TINY_RUN as TINY, compose_run_config, run_train
from w2v.atomic import atomic_path, write_json
from w2v.config import W2VError
from w2v.run_dir import prepare_run_dir, refuse_before_hydra

def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"run": 1})
    with pytest.raises(W2VError, match=f"^cannot write {target}: No space left on device$"):
        with atomic_path(target) as tmp:
            tmp.write_text('{"run": 2, "trunc')
            raise OSError(28, "No space left on device")
    assert json.loads(target.read_text()) == {"run": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.slow
def test_every_output_is_published_by_a_rename(tmp_path, tiny_corpus, monkeypatch):
    from w2v.train import run

    published = []
    real_replace = os.replace

    def recording_replace(src, dst):
        published.append(Path(dst).name)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    cfg = compose_run_config("data=files", f"data.paths=[{tiny_corpus}]", f"cache_dir={tmp_path / 'cache'}",
                             "export.text=true", *TINY)
    run_dir = tmp_path / "run"
    run(cfg, run_dir, show_progress=False, resolved_config="x: 1\n")
    outputs = {"vectors.bin", "vectors.txt", "tokenizer.json", "tables.pt", "metrics.json", "config.resolved.yaml"}
    assert outputs <= set(published)
    assert outputs <= {p.name for p in run_dir.iterdir()}
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_a_full_disk_while_saving_vectors_leaves_no_vectors_file(tmp_path, tiny_corpus, monkeypatch):
    import w2v.export
    from w2v.train import run

    class HalfThenFull:
        """A file whose writes store a few bytes, then find the disk full."""

        def __init__(self, path, mode):
            self.file = open(path, mode)

        def write(self, data):
            self.file.write(data[:10])
            raise OSError(28, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(w2v.export, "open", HalfThenFull, raising=False)
    cfg = compose_run_config("data=files", f"data.paths=[{tiny_corpus}]", f"cache_dir={tmp_path / 'cache'}", *TINY)
    run_dir = tmp_path / "run"
    with pytest.raises(W2VError, match="No space left on device"):
        run(cfg, run_dir, show_progress=False)
    assert not (run_dir / "vectors.bin").exists() and not (run_dir / "metrics.json").exists()
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


def test_run_dir_refusal_rules(tmp_path):
    run_dir = tmp_path / "run"
    prepare_run_dir(run_dir, resuming=False, overwrite=False)  # does not exist yet: fine
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "train.log").write_text("hydra's own files do not count\n")
    prepare_run_dir(run_dir, resuming=False, overwrite=False)
    (run_dir / "vectors.bin").write_bytes(b"old")
    (run_dir / "notes.txt").write_text("the user's file")
    with pytest.raises(W2VError, match="overwrite=true"):
        prepare_run_dir(run_dir, resuming=False, overwrite=False)
    with pytest.raises(W2VError, match="train.resume=true"):
        refuse_before_hydra([f"hydra.run.dir={run_dir}", "model=cbow"])
    refuse_before_hydra([f"hydra.run.dir={run_dir}", "train.resume=true"])
    refuse_before_hydra(["model=cbow"])  # the default run dir is a new timestamped one
    prepare_run_dir(run_dir, resuming=True, overwrite=False)
    assert (run_dir / "vectors.bin").exists()  # resuming keeps what is there
    prepare_run_dir(run_dir, resuming=False, overwrite=True)
    assert not (run_dir / "vectors.bin").exists()  # overwrite clears stale outputs first
    assert (run_dir / "notes.txt").exists() and (run_dir / ".hydra").exists()  # and only those


@pytest.mark.slow
def test_second_run_into_a_used_run_dir(tmp_path, tiny_corpus):
    run_dir = tmp_path / "run"
    base = ["data=files", f"data.paths=[{tiny_corpus}]", f"cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={run_dir}",
            *TINY]
    first = run_train([*base, "export.text=true"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    vectors = (run_dir / "vectors.bin").read_bytes()
    hydra_config = (run_dir / ".hydra" / "config.yaml").read_text()

    again = run_train([*base, "model.dim=12"], cwd=tmp_path)
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert again.stderr.strip().splitlines() == [again.stderr.strip()] and "already holds" in again.stderr
    assert (run_dir / "vectors.bin").read_bytes() == vectors
    assert (run_dir / ".hydra" / "config.yaml").read_text() == hydra_config  # refused before Hydra wrote

    finished = run_train([*base, "train.resume=true"], cwd=tmp_path)
    assert finished.returncode != 0 and "nothing to resume" in finished.stderr

    replaced = run_train([*base, "model.dim=12", "overwrite=true"], cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert not (run_dir / "vectors.txt").exists()  # the stale text export of the first run is gone
    assert json.loads((run_dir / "metrics.json").read_text())["vocab_size"] > 0
    assert (run_dir / "vectors.bin").read_bytes() != vectors
    assert (run_dir / "vectors.bin").read_bytes().split(b"\n", 1)[0].endswith(b" 12")
    log = (run_dir / "train.log").read_text()
    assert log.count("raw words in") == 1 and "nothing to resume" not in log  # the replaced runs' lines are gone


def test_a_report_is_its_table_and_a_csv_of_every_rows_keys(tmp_path):
    import csv

    from w2v.atomic import write_report

    write_report(tmp_path / "out", "bench", "| a |\n|---|\n", [{"a": 1}, {"a": 2, "b": "x"}])
    assert (tmp_path / "out" / "bench.md").read_text() == "| a |\n|---|\n"
    with open(tmp_path / "out" / "bench.csv", newline="") as f:
        assert list(csv.DictReader(f)) == [{"a": "1", "b": ""}, {"a": "2", "b": "x"}]
    assert not list((tmp_path / "out").glob(".*tmp"))
