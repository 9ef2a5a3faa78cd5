"""A corpus that is one long line (text8's shape): bounded memory, and stops honoured inside the line."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from w2v.checkpoint import CHECKPOINT_NAME

ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
# The peak RSS of a child process tree, read by a wrapper that runs it.
PEAK_RSS = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode); "
            "sys.stderr.write(r.stderr[-3000:])")


def zipf_words(n: int, vocab: int = 20000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1)
    return np.array([f"w{i}" for i in range(vocab)])[rng.choice(vocab, size=n, p=p / p.sum())]


def write_corpus(path: Path, words: np.ndarray, line_words: int | None) -> Path:
    if line_words is None:
        path.write_text(" ".join(words) + "\n")
    else:
        path.write_text("\n".join(" ".join(words[i:i + line_words]) for i in range(0, len(words), line_words)) + "\n")
    return path


def command(corpus: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "w2v.train", "data=files", f"data.paths=[{corpus}]",
            f"cache_dir={run_dir.parent / 'cache'}", f"hydra.run.dir={run_dir}", "evaluate=false",
            "export.projector_words=0", *extra]


@pytest.mark.slow
def test_a_one_line_corpus_trains_in_the_memory_of_the_same_text_in_lines(tmp_path):
    words = zipf_words(3_000_000)
    peaks = {}
    for shape, line_words in (("one line", None), ("lines", 20)):
        corpus = write_corpus(tmp_path / f"{line_words}.txt", words, line_words)
        run = subprocess.run([sys.executable, "-c", PEAK_RSS, *command(corpus, tmp_path / f"run-{line_words}",
                                                                       "train.epochs=1")],
                             env=ENV, capture_output=True, text=True, timeout=600)
        peak_kib, returncode = map(int, run.stdout.split())
        assert returncode == 0, run.stderr
        peaks[shape] = peak_kib / 1024
    # Before chunks could be cut inside a line, 3M words on one line took about 3 GB (1 GB per million).
    assert peaks["one line"] < peaks["lines"] + 100, peaks
    assert peaks["one line"] < 1000, peaks


@pytest.mark.slow
def test_a_stop_inside_a_long_line_is_prompt_and_resumes_to_the_uninterrupted_vectors(tmp_path):
    from gensim.models import KeyedVectors

    corpus = write_corpus(tmp_path / "one-line.txt", zipf_words(1_000_000, vocab=5000), None)
    args = ["train.epochs=6", "train.threads=1", "model.dim=32", "train.checkpoint_every=300000"]
    reference = subprocess.run(command(corpus, tmp_path / "reference", *args), env=ENV, capture_output=True,
                               text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]

    run_dir = tmp_path / "stopped"
    process = subprocess.Popen(command(corpus, run_dir, *args), env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    checkpoint = run_dir / CHECKPOINT_NAME
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the first periodic checkpoint: training is inside the line
    asked = time.monotonic()
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert time.monotonic() - asked < 5, "the stop request took 5 s or more"
    assert process.returncode == 128 + signal.SIGINT, err[-2000:]
    state = torch.load(checkpoint, weights_only=True)["loop"]
    mine = state["ranks"][0]
    assert state["stats"]["raw_words"] < 6 * 1_000_000
    assert mine["carry"] is not None and len(mine["carry"]["ids"]) > 0  # stopped inside the line

    resumed = subprocess.run(command(corpus, run_dir, *args, "train.resume=true"), env=ENV, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    want = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    assert metrics["raw_words"] == want["raw_words"] == 6 * metrics["corpus_words"]
    assert metrics["examples"] == want["examples"]
    got = KeyedVectors.load_word2vec_format(str(run_dir / "vectors.bin"), binary=True)
    ref = KeyedVectors.load_word2vec_format(str(tmp_path / "reference" / "vectors.bin"), binary=True)
    assert got.index_to_key == ref.index_to_key
    np.testing.assert_allclose(got.vectors, ref.vectors, atol=1e-5)
