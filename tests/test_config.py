import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from w2v.config import CONF_DIR, W2VError, parse_config


def compose_cfg(*overrides):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return OmegaConf.to_container(compose(config_name="config", overrides=list(overrides)), resolve=True)


def test_defaults_are_gensims():
    cfg = parse_config(compose_cfg())
    assert (cfg.model.name, cfg.model.dim, cfg.model.window, cfg.model.negative) == ("skipgram", 100, 5, 5)
    assert (cfg.vocab.min_count, cfg.vocab.sample) == (5, 1e-3)
    assert (cfg.train.epochs, cfg.train.lr, cfg.train.min_lr) == (5, 0.025, 0.0001)
    assert cfg.data.kind == "sample" and cfg.train.device == "auto"
    assert cfg.model.init_range == 1.0  # gensim 4's +-1/dim: word2vec.c's 0.5 measured worse (issue 11)


def test_init_range_sets_the_width_of_the_input_rows():
    from w2v.backends import init_tables

    dim = 50
    narrow, _ = init_tables(2000, dim, seed=3, init_range=0.5)  # word2vec.c's +-0.5/dim
    wide, out = init_tables(2000, dim, seed=3)  # the default, gensim 4's +-1/dim
    assert float(narrow.abs().max()) <= 0.5 / dim and float(narrow.abs().max()) > 0.49 / dim
    assert float(wide.abs().max()) <= 1.0 / dim and float(wide.abs().max()) > 0.98 / dim
    assert abs(float(narrow.mean())) < 0.01 / dim  # centred on zero
    assert torch.allclose(wide, 2 * narrow)  # same draws, scaled: the seed fixes the pattern
    assert not out.any()  # output rows start at zero


def test_the_fused_paths_are_config_keys():
    """The switches that were environment variables are backend.* keys, so the resolved config records them."""
    cfg = parse_config(compose_cfg("backend.kernel=torch", "backend.triton=false"))
    assert (cfg.backend.name, cfg.backend.kernel, cfg.backend.triton, cfg.backend.compile) == \
        ("fused", "torch", False, True)
    defaults = parse_config(compose_cfg()).backend
    assert (defaults.kernel, defaults.triton, defaults.compile) == ("auto", True, True)


def test_groups_compose():
    cfg = parse_config(compose_cfg("model=cbow", "backend=sparse", "data=files", "data.paths=[a.txt]"))
    assert (cfg.model.name, cfg.backend.name, cfg.data.paths) == ("cbow", "sparse", ["a.txt"])


@pytest.mark.parametrize("override, message", [
    ("model.dim=0", "model.dim must be >= 1"),
    ("model.window=0", "model.window must be >= 1"),
    ("model.negative=-1", "model.negative must be >= 1"),
    ("train.epochs=0", "train.epochs must be >= 1"),
    ("train.lr=0", "train.lr must be > 0"),
    ("train.lr=-0.1", "train.lr must be > 0"),
    ("model.dim=abc", "model.dim must be an integer"),
    ("train.device=tpu", "train.device must be"),
    ("vocab.min_count=0", "vocab.min_count must be >= 1"),
    ("model.init_range=0", "model.init_range must be > 0"),
    ("model.init_range=wide", "model.init_range must be a number"),
    ("backend.kernel=cuda", "backend.kernel must be auto, c, torch"),
    ("backend.triton=maybe", "backend.triton must be true or false"),
    ("backend.compile=1", "backend.compile must be true or false"),
])
def test_invalid_values_are_named(override, message):
    with pytest.raises(W2VError, match=message):
        parse_config(compose_cfg(override))


def test_unknown_choice_lists_the_valid_ones():
    cfg = compose_cfg()
    cfg["backend"]["name"] = "nope"
    with pytest.raises(W2VError, match=r"unknown backend 'nope'; valid: .*dense.*onehot.*sparse"):
        parse_config(cfg)


def test_files_without_paths_is_an_error():
    with pytest.raises(W2VError, match="data.paths is empty"):
        parse_config(compose_cfg("data=files"))
