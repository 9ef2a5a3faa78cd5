"""The shell the entry points share (w2v/cli.py, w2v/errors.py): one-line errors, device, run options, gensim's log."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from tests.helpers import compose_config
from w2v.cli import command_line_values, resolve_device, user_errors
from w2v.errors import W2VError, first_line
from w2v.run_dir import RunOptions, parse_overwrite, prepare_run_dir, refuse_before_hydra
from w2v.vqa.__main__ import VQA_OUTPUTS


@pytest.mark.parametrize("exc, expected", [
    (RuntimeError(""), "RuntimeError"),
    (OSError(), "OSError"),
    (ValueError("  \n\n"), "ValueError"),
    (ValueError("\n  the reason  \n a long trace\nmore"), "the reason"),
    (KeyError("k"), "'k'"),
])
def test_first_line_of_any_exception_is_one_nonblank_line(exc, expected):
    assert first_line(exc) == expected


def test_a_tokenizer_that_fails_without_a_message_is_still_one_line(tmp_path, monkeypatch):
    import tokenizers

    import w2v.vocab  # noqa: F401  imported before the patch: its `from tokenizers import Tokenizer` must bind the real one
    from w2v.vqa.embeddings import load_tokenizer

    class Unreadable:
        @staticmethod
        def from_file(path):
            raise RuntimeError("")  # str(exc).splitlines() is []: indexing it raised IndexError

    path = tmp_path / "tokenizer.json"
    path.write_text("{}")
    monkeypatch.setattr(tokenizers, "Tokenizer", Unreadable)
    with pytest.raises(W2VError, match=f"^cannot read tokenizer {path}: RuntimeError$"):
        load_tokenizer(path)


def test_a_user_error_is_one_line_on_stderr_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        with user_errors():
            raise W2VError("train.lr must be > 0, got 0")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: train.lr must be > 0, got 0\n"


def test_a_stop_on_a_signal_says_stopped_and_exits_128_plus_the_signal(capsys):
    from w2v.train import Interrupted

    with pytest.raises(SystemExit) as exit_info:
        with user_errors():
            raise Interrupted("SIGTERM received: stopped after step 3", 128 + 15)
    assert exit_info.value.code == 143
    assert capsys.readouterr().err == "stopped: SIGTERM received: stopped after step 3\n"


def test_device_resolution(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu", local_rank=1) == torch.device("cpu")
    with pytest.raises(W2VError, match="no CUDA device is available"):
        resolve_device("cuda")
    with pytest.raises(W2VError, match="train.device must be auto, cpu or cuda, got 'tpu'"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda", local_rank=3) == torch.device("cuda", 3)  # one GPU per rank
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_command_line_values_are_typed_as_hydra_types_them():
    argv = ["hydra.run.dir=/tmp/a b", "train.resume=true", "+overwrite=false", "model=cbow", "--multirun",
            "data.paths=[a,b", "~train.checkpoint_every"]
    values = command_line_values(argv, ("hydra.run.dir", "train.resume", "overwrite", "data.paths",
                                        "train.checkpoint_every"))
    # the unparsable data.paths is Hydra's to report; a deletion sets no value
    assert values == {"hydra.run.dir": "/tmp/a b", "train.resume": True, "overwrite": False}
    assert command_line_values(["train.resume=null", "overwrite=1"], ("train.resume", "overwrite")) == \
        {"train.resume": None, "overwrite": 1}


@pytest.mark.parametrize("value", ["true", "false", "null", "yes", "1", "'true'"])
def test_overwrite_means_the_same_before_hydra_and_in_the_composed_config(tmp_path, value):
    """One parse: what refuse_before_hydra reads from the command line is what the run reads from its config."""
    def outcome(parse):
        try:
            return parse()
        except W2VError as exc:
            return str(exc)

    before = outcome(lambda: parse_overwrite(command_line_values([f"overwrite={value}"], ("overwrite",))["overwrite"]))
    composed = outcome(lambda: RunOptions.from_config(compose_config(f"overwrite={value}"), tmp_path).overwrite)
    assert before == composed
    if value in ("true", "false", "null"):
        assert before is (value == "true")
    else:
        assert before.startswith("overwrite must be true or false")


def test_resume_means_the_same_before_hydra_and_in_the_composed_config(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "vectors.bin").write_bytes(b"old")
    for value, resumes in (("true", True), ("false", False), ("null", False), ("''", False)):
        args = [f"hydra.run.dir={run_dir}", f"train.resume={value}"]
        options = RunOptions.from_config(compose_config(f"train.resume={value}"), run_dir)
        assert options.resuming is resumes, value
        if resumes:
            refuse_before_hydra(args)
        else:
            with pytest.raises(W2VError, match="already holds"):
                refuse_before_hydra(args)


def test_vqa_run_dir_names_its_own_outputs_and_offers_no_resume(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "vectors.bin").write_bytes(b"a w2v.train output: not the VQA command's")
    refuse_before_hydra([f"hydra.run.dir={run_dir}"], VQA_OUTPUTS, resumable=False)
    (run_dir / "model.pt").write_bytes(b"old")
    with pytest.raises(W2VError, match="already holds .*model.pt") as refused:
        refuse_before_hydra([f"hydra.run.dir={run_dir}", "train.resume=true"], VQA_OUTPUTS, resumable=False)
    assert "resume" not in str(refused.value) and "overwrite=true" in str(refused.value)
    refuse_before_hydra([f"hydra.run.dir={run_dir}", "overwrite=true"], VQA_OUTPUTS, resumable=False)
    prepare_run_dir(run_dir, resuming=False, overwrite=True, outputs=VQA_OUTPUTS, resumable=False)
    assert not (run_dir / "model.pt").exists() and (run_dir / "vectors.bin").exists()


def test_evaluate_reports_a_missing_or_malformed_file_in_one_line(tmp_path, capsys):
    from w2v.evaluate import main

    bad = tmp_path / "vectors.txt"
    bad.write_text("3 2\nonly-a-word\n")
    for path, message in ((tmp_path / "missing.bin", "error: no such vectors file: "),
                          (bad, f"error: cannot read {bad} as word2vec format: ")):
        with pytest.raises(SystemExit) as exit_info:
            main([str(path)])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.startswith(message) and err.count("\n") == 1


def test_gensim_info_lines_stay_out_of_the_log(tmp_path, caplog):
    from gensim.models import KeyedVectors

    from w2v.evaluate import read_vectors
    from w2v.vqa.embeddings import load_vectors

    kv = KeyedVectors(vector_size=4)
    kv.add_vectors(["a", "b", "c"], np.eye(3, 4, dtype=np.float32))
    path = tmp_path / "vectors.bin"
    kv.save_word2vec_format(str(path), binary=True)
    caplog.set_level(logging.INFO)  # Hydra's root level during a run
    logging.getLogger("w2v").info("a line of w2v's own")
    read_vectors(path)
    load_vectors(path)
    assert "a line of w2v's own" in caplog.messages  # INFO lines are captured...
    assert [r.getMessage() for r in caplog.records if r.name.startswith("gensim") and r.levelno < logging.WARNING] \
        == []  # ...but not gensim's ("loading projection weights", "KeyedVectors lifecycle event")
