"""`python -m w2v.vqa`: the real Hydra config, a tiny end-to-end run, and one-line user errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from gensim.models import KeyedVectors

from tests.helpers import compose_config
from w2v.errors import W2VError
from w2v.vocab import train_tokenizer
from w2v.vqa.config import parse_vqa_config


def run_vqa_cli(args: list[str], cwd):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, "-m", "w2v.vqa", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def compose_vqa(overrides: list[str]) -> dict:
    return compose_config(*overrides, config_name="vqa")


def test_default_config_is_valid_and_overrides_are_checked():
    cfg = parse_vqa_config(compose_vqa([]))
    assert cfg.data_kind == "scenes" and cfg.embedding.init == "random" and cfg.model.encoder == "gru"
    frozen = parse_vqa_config(compose_vqa(["embedding.init=pretrained", "embedding.vectors=/x", "embedding.freeze=true"]))
    assert frozen.embedding.freeze and frozen.embedding.vectors == "/x"
    for bad, message in ((["embedding.init=pretrained"], "needs embedding.vectors"),
                         (["embedding.freeze=true"], "needs embedding.init=pretrained"),
                         (["model.encoder=lstm"], "model.encoder must be one of"),
                         (["data.scenes.image_size=40"], "multiple of 16"),
                         (["train.lr=0"], "train.lr must be > 0")):
        with pytest.raises(W2VError, match=message):
            parse_vqa_config(compose_vqa(bad))


@pytest.mark.slow
def test_tiny_pretrained_frozen_run_writes_outputs(tmp_path):
    words = ["what", "color", "shape", "is", "the", "big", "small", "ball", "cube", "red", "blue", "?", "object"]
    kv = KeyedVectors(vector_size=6)
    kv.add_vectors(words, np.random.default_rng(0).normal(size=(len(words), 6)).astype(np.float32))
    vectors = tmp_path / "vectors"
    vectors.mkdir()
    kv.save_word2vec_format(str(vectors / "vectors.bin"), binary=True)
    train_tokenizer([[" ".join(words)]], min_count=1, max_size=None).save(str(vectors / "tokenizer.json"))
    run_dir = tmp_path / "run"
    sizes = ["data.scenes.train=40", "data.scenes.test=10", "data.scenes.test_paraphrase=10",
             "data.scenes.image_size=32", "train.epochs=1", "train.threads=1", "model.hidden=16", "model.channels=8"]
    done = run_vqa_cli([f"hydra.run.dir={run_dir}", f"cache_dir={tmp_path / 'cache'}", "embedding.init=pretrained",
                        f"embedding.vectors={vectors}", "embedding.freeze=true", *sizes], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0 <= metrics["test_accuracy"] <= 1 and 0 <= metrics["test_paraphrase_accuracy"] <= 1
    assert metrics["pretrained_row_max_change"] == 0.0
    assert metrics["embedding_dim"] == 6 and metrics["oov_words"] == len(metrics["oov_list"]) > 0
    assert "crimson" in metrics["paraphrase_words_oov"] or "scarlet" in metrics["paraphrase_words_oov"]
    assert (run_dir / "model.pt").is_file() and (tmp_path / "cache" / "vqa_scenes").is_dir()

    again = run_vqa_cli([f"hydra.run.dir={run_dir}", f"cache_dir={tmp_path / 'cache'}", *sizes], cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0 and "overwrite=true" in again.stderr


def test_user_error_is_one_line_and_exit_2(tmp_path):
    done = run_vqa_cli([f"hydra.run.dir={tmp_path / 'run'}", "embedding.init=pretrained",
                        f"embedding.vectors={tmp_path / 'missing'}"], cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: vectors not found") and done.stderr.strip().count("\n") == 0
