"""The run configuration: the packaged YAML, its dataclasses, and the checks on every value."""
from dataclasses import fields, is_dataclass

import pytest
import torch

from tests.helpers import compose_config as compose_cfg
from w2v.config import (CONF_DIR, BackendConfig, DataConfig, ExportConfig, ModelConfig, RunConfig, TrainConfig,
                        VocabConfig, W2VError, parse_config)
from w2v.run_dir import RunOptions


def test_defaults_are_gensims():
    cfg = parse_config(compose_cfg())
    assert (cfg.model.name, cfg.model.dim, cfg.model.window, cfg.model.negative) == ("skipgram", 100, 5, 5)
    assert (cfg.vocab.min_count, cfg.vocab.sample) == (5, 1e-3)
    assert (cfg.train.epochs, cfg.train.lr, cfg.train.min_lr) == (5, 0.03, 0.0001)
    assert cfg.data.kind == "sample" and cfg.train.device == "auto"
    assert cfg.model.init_range == 1.0  # gensim 4's +-1/dim: word2vec.c's 0.5 measured worse (issue 11)
    assert cfg.model.loss == "ns" and parse_config(compose_cfg("model.loss=hs")).model.loss == "hs"


def test_dataclass_defaults_are_the_yaml_defaults(tmp_path):
    """A config built in code (tests, scripts) is the run a user gets with no overrides, key by key."""
    composed = compose_cfg()
    defaults = RunConfig(model=ModelConfig(), backend=BackendConfig(), data=DataConfig(), vocab=VocabConfig(),
                         train=TrainConfig(), export=ExportConfig())
    run_options = {"train": {"resume", "checkpoint_every"}}  # RunOptions' keys, compared below
    for section in fields(RunConfig):
        default = getattr(defaults, section.name)
        if not is_dataclass(default):
            assert composed[section.name] == default, section.name
            continue
        yaml_keys = set(composed[section.name]) - run_options.get(section.name, set())
        field_names = {f.name for f in fields(default)}
        assert yaml_keys <= field_names, f"{section.name}: YAML keys without a field: {yaml_keys - field_names}"
        if section.name != "data":  # data=sample names only what a sample run reads; the other groups the rest
            assert field_names <= yaml_keys, f"{section.name}: fields missing from the YAML: {field_names - yaml_keys}"
        for key in yaml_keys:
            assert composed[section.name][key] == getattr(default, key), f"{section.name}.{key}"
    assert parse_config(composed) == defaults
    assert RunOptions.from_config(composed, tmp_path) == RunOptions()


def test_vqa_dataclass_defaults_are_the_yaml_defaults():
    from w2v.vqa.config import EmbeddingConfig, VQARunConfig, parse_vqa_config
    from w2v.vqa.model import ModelConfig as VQAModelConfig
    from w2v.vqa.questions import SceneSpec
    from w2v.vqa.training import TrainConfig as VQATrainConfig

    composed = compose_cfg(config_name="vqa")
    defaults = VQARunConfig(data_kind="scenes", scenes=SceneSpec(), vqa2=None, embedding=EmbeddingConfig(),
                            model=VQAModelConfig(), train=VQATrainConfig())
    for section, default in (("embedding", defaults.embedding), ("model", defaults.model),
                             ("train", defaults.train), ("scenes", defaults.scenes)):
        values = composed["data"]["scenes"] if section == "scenes" else composed[section]
        assert set(values) == {f.name for f in fields(default)}, section
        for key, value in values.items():
            assert value == getattr(default, key), f"{section}.{key}"
    assert parse_vqa_config(composed) == defaults


def test_shared_model_keys_are_written_once():
    """model/skipgram.yaml and model/cbow.yaml name the objective; what both share sits in config.yaml."""
    import yaml

    shared = yaml.safe_load((CONF_DIR / "config.yaml").read_text())["model"]
    objectives = {path.stem: yaml.safe_load(path.read_text()) for path in (CONF_DIR / "model").glob("*.yaml")}
    assert set(objectives) == {"skipgram", "cbow"}
    for name, own in objectives.items():
        assert own["name"] == name and not set(own) & set(shared), name
    for name in objectives:
        assert compose_cfg(f"model={name}")["model"] == {"name": name, **shared}


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
    ("model.loss=softmax", "model.loss must be ns .* or hs"),
    ("model.init_range=wide", "model.init_range must be a number"),
    ("backend.kernel=cuda", "backend.kernel must be auto, c, torch"),
    ("backend.triton=maybe", "backend.triton must be true or false"),
    ("backend.compile=1", "backend.compile must be true or false"),
    ("train.log_every=0", "train.log_every must be auto or a number"),
    ("train.eval_every=weekly", "train.eval_every must be epoch, a number of corpus words, or 0"),
    ("train.eval_every=-5", "train.eval_every must be epoch"),
    ("train.init_from=5", "train.init_from must be the run dir"),
    ("export.tables=maybe", "export.tables must be true or false"),
])
def test_invalid_values_are_named(override, message):
    with pytest.raises(W2VError, match=message):
        parse_config(compose_cfg(override))


@pytest.mark.parametrize("override, log_every, eval_every", [
    ("train.log_every=auto", "auto", "epoch"), ("train.log_every=null", "auto", "epoch"),
    ("train.log_every=500", 500, "epoch"), ("train.eval_every=0", "auto", None),
    ("train.eval_every=null", "auto", None), ("train.eval_every=false", "auto", None),
    ("train.eval_every=100000", "auto", 100_000),
])
def test_log_and_eval_intervals(override, log_every, eval_every):
    train = parse_config(compose_cfg(override)).train
    assert (train.log_every, train.eval_every) == (log_every, eval_every)


def test_unknown_choice_lists_the_valid_ones():
    cfg = compose_cfg()
    cfg["backend"]["name"] = "nope"
    with pytest.raises(W2VError, match=r"unknown backend 'nope'; valid: .*dense.*onehot.*sparse"):
        parse_config(cfg)


def test_files_without_paths_is_an_error():
    with pytest.raises(W2VError, match="data.paths is empty"):
        parse_config(compose_cfg("data=files"))
