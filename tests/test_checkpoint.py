"""Checkpoints: atomic, weights_only, and a killed run that resumes to the uninterrupted result."""
from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import zipf_text
from w2v.backends import init_tables, make_backend
from w2v.checkpoint import (CHECKPOINT_NAME, CheckpointPolicy, Checkpointing, check_run_key, load_checkpoint,
                            resume_path, restore_backend, save_checkpoint)
from w2v.config import (BackendConfig, DataConfig, ExportConfig, ModelConfig, RunConfig, TrainConfig, VocabConfig,
                        W2VError)
from w2v.objective import make_objective
from w2v.signals import StopRequest
from w2v.trainer import train


def test_checkpoint_every_takes_words_or_minutes():
    assert CheckpointPolicy.parse(None) == CheckpointPolicy()
    assert CheckpointPolicy.parse(5000).every_words == 5000
    assert CheckpointPolicy.parse("5000").every_words == 5000
    assert CheckpointPolicy.parse("30min").every_seconds == 1800
    assert CheckpointPolicy.parse("1.5m").every_seconds == 90
    for bad in (0, -3, "soon", "0min", 2.5, True):
        with pytest.raises(W2VError, match="train.checkpoint_every"):
            CheckpointPolicy.parse(bad)
    policy = CheckpointPolicy(every_words=100)
    assert not policy.due(150, 60, 0.0) and policy.due(160, 60, 0.0)
    assert CheckpointPolicy(every_seconds=60).due(0, 0, 61.0)


def test_resume_needs_a_checkpoint(tmp_path):
    assert resume_path(False, tmp_path) is None and resume_path(None, tmp_path) is None
    # Stopped (or killed) before its first checkpoint: resume=true starts it from the beginning.
    assert resume_path(True, tmp_path) is None
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(W2VError, match="nothing to resume"):  # a finished run
        resume_path(True, tmp_path)
    with pytest.raises(W2VError, match="no checkpoint file"):
        resume_path(str(tmp_path / "missing.pt"), tmp_path)
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"x")
    assert resume_path(True, tmp_path) == tmp_path / CHECKPOINT_NAME


class _Exploit:
    """A pickle that would create a file when unpickled without weights_only."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_with_pickled_code_is_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.pt"
    with open(bad, "wb") as f:
        pickle.dump({"format": "w2v-checkpoint", "x": _Exploit(marker)}, f, protocol=2)
    with pytest.raises(W2VError, match="cannot read checkpoint"):
        load_checkpoint(bad)
    assert not marker.exists()
    # Damaged files: random bytes, and a real checkpoint cut short or with bytes flipped. Each
    # reaches a different corner of the unpickler (IndexError, KeyError, struct.error, ...).
    rng = np.random.default_rng(0)
    good = tmp_path / "good.pt"
    torch.save({"format": "w2v-checkpoint", "tables": {"input": torch.ones(50, 4)}}, good)
    intact = good.read_bytes()
    damaged = [rng.bytes(int(rng.integers(1, 2000))) for _ in range(200)]
    damaged += [b"\x80\x02" + rng.bytes(int(rng.integers(1, 200))) for _ in range(200)]  # pickle header, then junk
    damaged += [intact[:int(cut)] for cut in rng.integers(1, len(intact), 20)]
    for _ in range(20):
        flipped = bytearray(intact)
        flipped[int(rng.integers(len(flipped)))] ^= 0xFF
        damaged.append(bytes(flipped))
    for i, data in enumerate(damaged):
        (tmp_path / "junk.pt").write_bytes(data)
        try:
            load_checkpoint(tmp_path / "junk.pt")
        except W2VError as exc:
            assert "checkpoint" in str(exc) and "\n" not in str(exc), (i, str(exc))
        # a flipped byte inside tensor data still loads: a checkpoint has no checksum
    torch.save({"some": "dict"}, tmp_path / "other.pt")
    with pytest.raises(W2VError, match="not a w2v checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    from w2v.checkpoint import FORMAT, VERSION

    torch.save({"format": FORMAT, "version": VERSION, "run_key": {}, "loop": {}, "tables": {"input": torch.ones(2)}},
               tmp_path / "partial.pt")
    with pytest.raises(W2VError, match="is incomplete"):
        load_checkpoint(tmp_path / "partial.pt")


def test_resuming_with_other_settings_is_refused(tmp_path):
    with pytest.raises(W2VError, match=r"dim=16 \(now 32\)"):
        check_run_key({"dim": 16, "model": "cbow"}, {"dim": 32, "model": "cbow"}, tmp_path / "c.pt")
    check_run_key({"dim": 16}, {"dim": 16}, tmp_path / "c.pt")
    # an hs checkpoint from before inner-node subsampling trained every node at the full rate
    with pytest.raises(W2VError, match=r"hs_node_subsampling=False \(now True\)"):
        check_run_key({"loss": "hs"}, {"loss": "hs", "hs_node_subsampling": True}, tmp_path / "c.pt")
    check_run_key({"loss": "hs"}, {"loss": "hs", "hs_node_subsampling": False}, tmp_path / "c.pt")


def test_save_is_atomic_and_loads_with_weights_only(tmp_path, monkeypatch):
    backend = make_backend("sparse", *init_tables(20, 4, seed=1), torch.device("cpu"))
    path = tmp_path / CHECKPOINT_NAME
    save_checkpoint(path, backend, {"epoch": 0}, {"dim": 4})
    first = path.read_bytes()
    payload = torch.load(path, weights_only=True)  # plain tensors and containers only
    assert torch.equal(payload["tables"]["input"], backend.input_weights())

    def crash_half_way(obj, f, *args, **kwargs):
        f.write(first[: len(first) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", crash_half_way)
    with pytest.raises(W2VError, match=f"^cannot write {path}: No space left on device$"):
        save_checkpoint(path, backend, {"epoch": 1}, {"dim": 4})
    assert path.read_bytes() == first  # the previous checkpoint survives a failed save
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]  # no temp file left behind


def tiny_config(model: str, backend: str, batch_size: int = 64) -> RunConfig:
    return RunConfig(model=ModelConfig(name=model, dim=8, window=3, negative=3), backend=BackendConfig(backend),
                     data=DataConfig(kind="files"), vocab=VocabConfig(min_count=1, sample=1e-2),
                     train=TrainConfig(epochs=2, batch_size=batch_size, threads=1, log_every=1, device="cpu"),
                     export=ExportConfig())


def toy_corpus(n_tokens: int = 1500, vocab: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.zipf(1.3, n_tokens).clip(1, vocab - 1).astype(np.int32)
    sentences = np.arange(0, n_tokens + 1, 25, dtype=np.int64)
    return ids, sentences, np.bincount(ids, minlength=vocab).astype(np.int64)


@pytest.mark.parametrize("backend, model", [("dense", "skipgram"), ("sparse", "cbow"), ("onehot", "cbow"),
                                            ("fused", "skipgram"), ("fused", "cbow"), ("fused-torch", "skipgram")])
def test_stopped_and_resumed_training_equals_uninterrupted(backend, model, monkeypatch, one_torch_thread):
    """In process: stop after step 7 (mid-chunk, mid-epoch), restore into a new backend, finish.

    fused takes one step per chunk, so its chunks are made small here to give it many steps;
    one thread, because its Hogwild threads would race (not reproducible even uninterrupted).
    """
    kernel = "torch" if backend == "fused-torch" else "auto"
    backend = backend.removesuffix("-torch")
    monkeypatch.setattr("w2v.backends.fused.CPU_CHUNK_TOKENS", 100)
    cfg = tiny_config(model, backend, batch_size=128)
    ids, sentences, counts = toy_corpus()
    cpu = torch.device("cpu")

    def fresh():
        return make_backend(backend, *init_tables(len(counts), 8, seed=1), cpu, BackendConfig(backend, kernel=kernel))

    reference = fresh()
    objective = make_objective(cfg.model.name, cfg.model.window, cfg.model.negative)
    expected = train(objective, cfg.train, cfg.vocab.sample, ids, sentences, counts, reference, cpu, show_progress=False)

    saved = {}
    stop = StopRequest()
    first = fresh()

    def save(loop_state):
        saved["payload"] = {"loop": loop_state, "tables": {"input": first.input_weights().clone(),
                                                         "output": first.output_weights().clone()},
                            "optimizer": first.optimizer.state_dict() if first.optimizer is not None else None}

    def on_log(step, _point):
        if step == 7:
            stop.request(signal.SIGTERM)

    partial = train(objective, cfg.train, cfg.vocab.sample, ids, sentences, counts, first, cpu, show_progress=False,
                    on_log=on_log, checkpointing=Checkpointing(CheckpointPolicy(), save, stop))
    assert partial.interrupted == "SIGTERM" and partial.steps == 7
    loop = saved["payload"]["loop"]
    assert loop["stats"]["steps"] == 7 and loop["batches_done"] >= 1  # stopped inside a chunk
    assert loop["stats"]["raw_words"] < 2 * len(ids)

    second = fresh()
    restore_backend(second, saved["payload"], cfg.train.lr)
    resumed = train(objective, cfg.train, cfg.vocab.sample, ids, sentences, counts, second, cpu, show_progress=False,
                    resume=saved["payload"]["loop"])
    assert resumed.raw_words == expected.raw_words == 2 * len(ids)  # every word once per epoch
    assert (resumed.steps, resumed.examples, resumed.effective_words) == \
        (expected.steps, expected.examples, expected.effective_words)
    assert resumed.final_lr == pytest.approx(expected.final_lr, abs=1e-12)
    assert torch.allclose(second.input_weights(), reference.input_weights(), atol=1e-6)
    assert torch.allclose(second.output_weights(), reference.output_weights(), atol=1e-6)


# ---- the real command line, killed by a signal part-way -------------------------------------------

# backend=dense: its many small steps give the signal a window to land mid-run on any machine.
ARGS = ["backend=dense", "model.dim=16", "vocab.min_count=2", "train.epochs=2", "evaluate=false", "train.batch_size=64",
        "export.projector_words=0", "train.checkpoint_every=2000", "train.log_every=50", "train.threads=1"]


def command(corpus: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "w2v.train", "data=files", f"data.paths=[{corpus}]",
            f"cache_dir={run_dir.parent / 'cache'}", f"hydra.run.dir={run_dir}", *ARGS, *extra]


ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    corpus = root / "corpus.txt"
    corpus.write_text(zipf_text(12000), encoding="utf-8")
    run_dir = root / "reference"
    result = subprocess.run(command(corpus, run_dir), env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return corpus, run_dir, json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_killed_run_resumes_to_the_uninterrupted_result(uninterrupted, signum):
    from gensim.models import KeyedVectors

    corpus, reference_dir, reference = uninterrupted
    run_dir = reference_dir.parent / f"killed-{signum}"
    process = subprocess.Popen(command(corpus, run_dir), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    checkpoint = run_dir / CHECKPOINT_NAME
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # the first periodic checkpoint shows that training is under way
    process.send_signal(signum)
    _out, err = process.communicate(timeout=240)
    assert process.returncode == 128 + signum, err[-2000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("stopped: ") and "train.resume=true" in last and "checkpoint" in last
    assert not (run_dir / "vectors.bin").exists()
    state = torch.load(checkpoint, weights_only=True)["loop"]
    assert 0 < state["stats"]["steps"] < reference["steps"]
    if signum == signal.SIGTERM:
        return  # the resume is the same as after SIGINT; checked once, below

    resumed = subprocess.run(command(corpus, run_dir, "train.resume=true"), env=ENV, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed"] is True and not checkpoint.exists()
    # Every corpus word counted exactly once per epoch over the two processes together.
    assert metrics["raw_words"] == 2 * metrics["corpus_words"] == reference["raw_words"]
    for key in ("steps", "examples", "effective_words"):
        assert metrics[key] == reference[key], key
    assert metrics["final_lr"] == pytest.approx(reference["final_lr"], abs=1e-12)
    assert metrics["final_loss"] == pytest.approx(reference["final_loss"], abs=0.02)
    got = KeyedVectors.load_word2vec_format(str(run_dir / "vectors.bin"), binary=True)
    want = KeyedVectors.load_word2vec_format(str(reference_dir / "vectors.bin"), binary=True)
    assert got.index_to_key == want.index_to_key
    assert np.allclose(got.vectors, want.vectors, atol=1e-4)


def test_a_resumed_run_checkpoints_where_the_uninterrupted_run_does(one_torch_thread):
    """Resumed from its 2nd word-count checkpoint, a run writes the 3rd, 4th, ... at the same steps.

    Counting from the chunk's start instead of the saved step moved every later save one step early.
    """
    cfg = tiny_config("skipgram", "dense", batch_size=32)
    ids, sentences, counts = toy_corpus()
    cpu = torch.device("cpu")
    objective = make_objective(cfg.model.name, cfg.model.window, cfg.model.negative)
    policy = CheckpointPolicy(every_words=len(ids) // 7)

    def run(resume=None):
        backend = make_backend("dense", *init_tables(len(counts), 8, seed=1), cpu, BackendConfig("dense"))
        saves = []

        def save(loop_state):
            saves.append({"loop": loop_state, "tables": {"input": backend.input_weights().clone(),
                                                        "output": backend.output_weights().clone()},
                          "optimizer": backend.optimizer.state_dict() if backend.optimizer is not None else None})

        if resume is not None:
            restore_backend(backend, resume, cfg.train.lr)
        train(objective, cfg.train, cfg.vocab.sample, ids, sentences, counts, backend, cpu, show_progress=False,
              resume=None if resume is None else resume["loop"],
              checkpointing=Checkpointing(policy, save, StopRequest()))
        return saves

    def where(saves):
        return [(s["loop"]["epoch"], s["loop"]["global_words"], s["loop"]["batches_done"]) for s in saves]

    uninterrupted = run()
    assert len(uninterrupted) >= 6
    # the saves fall inside chunks, where the bug showed
    assert any(s["loop"]["batches_done"] > 1 for s in uninterrupted[1:])
    resumed = run(resume=uninterrupted[1])
    assert where(resumed) == where(uninterrupted)[2:]
