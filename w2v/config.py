"""Typed, validated run configuration.

Hydra composes the YAML tree in w2v/conf/ (shipped inside the package); `parse_config` turns it into these plain
dataclasses and checks every value before any work starts, so a bad value ends
in one clear line instead of a failure half-way through training.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import W2VError

CONF_DIR = Path(__file__).resolve().parent / "conf"


def group_choices(group: str) -> list[str]:
    """The options of a Hydra config group, e.g. group_choices("backend") -> ["dense", ...]."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@dataclass
class ModelConfig:
    name: str = "skipgram"  # skipgram | cbow
    dim: int = 100
    window: int = 5
    negative: int = 5  # unused with loss=hs
    loss: str = "ns"  # ns: negative sampling | hs: hierarchical softmax (a Huffman tree, no negatives)
    init_range: float = 1.0  # input rows start uniform in +-init_range/dim: 1.0 gensim 4 (0.5 word2vec.c)
    # loss=hs: each inner node's row learns at lr x vocab.sample's keep probability of its traffic (w2v/huffman.py)
    hs_node_subsampling: bool = True


FUSED_KERNELS = ("auto", "c", "torch")  # backend=fused on the CPU: the C kernel when it builds, the C kernel, torch ops


@dataclass
class BackendConfig:
    name: str = "fused"
    # backend=fused only (conf/backend/fused.yaml): which implementation trains, recorded in config.resolved.yaml.
    kernel: str = "auto"  # auto | c | torch: on the CPU, the C kernel (auto: when it builds) or batched torch ops
    triton: bool = True  # on a GPU, the Triton kernels where they run; false: batched torch ops
    compile: bool = True  # torch.compile the batched torch step on CUDA


@dataclass
class DataConfig:
    kind: str = "sample"  # sample | files | hub
    paths: list[str] = field(default_factory=list)
    name: str | None = None
    config: str | None = None
    split: str = "train"
    column: str = "text"
    max_lines: int | None = None  # read only the first N lines (quick trials)
    revision: str | None = None  # hub: a branch, tag or commit of the dataset (None: main)


@dataclass
class VocabConfig:
    min_count: int = 5
    max_size: int | None = None
    sample: float = 1e-3
    pre_tokenizer: str = "punct"  # punct: words and punctuation runs (HF Whitespace); whitespace: split on spaces


@dataclass
class PhrasesConfig:
    """Bigram detection before the vocabulary (w2v/phrases.py); passes=0 (phrases=none) turns it off."""
    passes: int = 0
    threshold: float = 10.0  # a pair joins when its score is above this (npmi: in [-1, 1])
    min_count: int = 5  # gensim's Phrases min_count: subtracted from the pair's count (npmi: its least count)
    scoring: str = "default"  # default (word2vec.c / gensim original_scorer) | npmi


# backend=fused under torchrun (w2v/table_sync.py): how the tables are exchanged, and how the
# ranks' moves of a row combine (one rule, or one per table as "input/output").
SYNC_METHODS = ("auto", "rows", "dense")
SYNC_COMBINES = ("sum", "mean")


@dataclass
class TrainConfig:
    epochs: int = 5
    lr: float = 0.03  # gensim: 0.025; see w2v/conf/config.yaml
    min_lr: float = 0.0001
    batch_size: int = 1024
    device: str = "auto"
    threads: int | None = None
    seed: int = 1
    log_every: int | str = "auto"  # corpus words (all ranks) between TensorBoard points; auto: trainer.py decides
    # corpus words (all ranks) between evaluations of the input table: "epoch", a number, or None (off)
    eval_every: int | str | None = "epoch"
    init_from: str | None = None  # an earlier run dir to continue from (w2v/continued.py)
    sync_every: int = 1 << 18  # backend=fused under torchrun: corpus words per rank between table syncs
    sync_method: str = "auto"  # auto | rows | dense: how the fused tables are exchanged (w2v/table_sync.py)
    # sum | mean (over the ranks that moved a row) | one per table, input/output: how the ranks' moves combine
    sync_combine: str = "mean/sum"
    shards: str = "interleaved"  # under torchrun: interleaved (blocks of sync_every, dealt in turn) | contiguous


@dataclass
class ExportConfig:
    text: bool = False
    tables: bool = True  # tables.pt: both tables and the counts, which train.init_from continues from
    projector_words: int = 5000


@dataclass
class RunConfig:
    model: ModelConfig
    backend: BackendConfig
    data: DataConfig
    vocab: VocabConfig
    train: TrainConfig
    export: ExportConfig
    phrases: PhrasesConfig = field(default_factory=PhrasesConfig)
    evaluate: bool = True
    cache_dir: str = "data/cache"


def _int(section: Mapping[str, Any], key: str, where: str, minimum: int | None = None,
         optional: bool = False) -> int | None:
    value = section.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise W2VError(f"{where}.{key} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise W2VError(f"{where}.{key} must be >= {minimum}, got {value}")
    return value


def _float(section: Mapping[str, Any], key: str, where: str) -> float:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise W2VError(f"{where}.{key} must be a number, got {value!r}")
    return float(value)


def _bool(section: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise W2VError(f"{where}.{key} must be true or false, got {value!r}")
    return value


def _choice(value: Any, group: str) -> str:
    valid = group_choices(group)
    if value not in valid:
        raise W2VError(f"unknown {group} {value!r}; valid: {', '.join(valid)}")
    return value


def parse_config(cfg: Mapping[str, Any]) -> RunConfig:
    """Validate a composed Hydra config (DictConfig or dict) into a RunConfig."""
    m, b, d, v, t, e = (cfg.get(k) or {} for k in ("model", "backend", "data", "vocab", "train", "export"))
    model = ModelConfig(
        name=_choice(m.get("name"), "model"),
        dim=_int(m, "dim", "model", 1),
        window=_int(m, "window", "model", 1),
        negative=_int(m, "negative", "model", 1),
        loss=str(m.get("loss", ModelConfig.loss)),
        init_range=_float(m, "init_range", "model") if "init_range" in m else ModelConfig.init_range,
        hs_node_subsampling=_bool(m, "hs_node_subsampling", "model", ModelConfig.hs_node_subsampling),
    )
    if model.loss not in ("ns", "hs"):
        raise W2VError(f"model.loss must be ns (negative sampling) or hs (hierarchical softmax), got {model.loss!r}")
    if model.init_range <= 0:
        raise W2VError(f"model.init_range must be > 0, got {model.init_range}")
    backend = BackendConfig(name=_choice(b.get("name"), "backend"), kernel=str(b.get("kernel", BackendConfig.kernel)),
                            triton=_bool(b, "triton", "backend", BackendConfig.triton),
                            compile=_bool(b, "compile", "backend", BackendConfig.compile))
    if backend.kernel not in FUSED_KERNELS:
        raise W2VError(f"backend.kernel must be {', '.join(FUSED_KERNELS)}, got {backend.kernel!r}")

    kind = _choice(d.get("kind"), "data")
    paths = d.get("paths") or []
    if isinstance(paths, str):
        paths = [paths]
    data = DataConfig(kind=kind, paths=[str(p) for p in paths], name=d.get("name"), config=d.get("config"),
                      split=str(d.get("split", "train")), column=str(d.get("column", "text")),
                      max_lines=_int(d, "max_lines", "data", 1, optional=True),
                      revision=None if d.get("revision") is None else str(d.get("revision")))
    if kind == "files" and not data.paths:
        raise W2VError("data.paths is empty; give files with data.paths=[a.txt,b.txt]")
    if kind == "hub" and not data.name:
        raise W2VError("data.name is required for data=hub, e.g. data.name=wikitext")

    vocab = VocabConfig(min_count=_int(v, "min_count", "vocab", 1),
                        max_size=_int(v, "max_size", "vocab", 1, optional=True),
                        sample=_float(v, "sample", "vocab"),
                        pre_tokenizer=str(v.get("pre_tokenizer", VocabConfig.pre_tokenizer)))
    if vocab.pre_tokenizer not in ("punct", "whitespace"):
        raise W2VError(f"vocab.pre_tokenizer must be punct or whitespace, got {vocab.pre_tokenizer!r}")
    if vocab.sample < 0:
        raise W2VError(f"vocab.sample must be >= 0 (0 disables subsampling), got {vocab.sample}")

    train = TrainConfig(epochs=_int(t, "epochs", "train", 1), lr=_float(t, "lr", "train"),
                        min_lr=_float(t, "min_lr", "train"), batch_size=_int(t, "batch_size", "train", 1),
                        device=str(t.get("device", "auto")), threads=_int(t, "threads", "train", 1, optional=True),
                        seed=_int(t, "seed", "train"), log_every=parse_log_every(t.get("log_every", "auto")),
                        eval_every=parse_eval_every(t.get("eval_every", "epoch")),
                        init_from=parse_init_from(t.get("init_from")),
                        sync_every=_int(t, "sync_every", "train", 1) if "sync_every" in t else TrainConfig.sync_every,
                        sync_method=str(t.get("sync_method", TrainConfig.sync_method)),
                        sync_combine=str(t.get("sync_combine", TrainConfig.sync_combine)),
                        shards=str(t.get("shards", TrainConfig.shards)))
    if train.shards not in ("contiguous", "interleaved"):
        raise W2VError(f"train.shards must be contiguous or interleaved, got {train.shards!r}")
    if train.sync_combine.count("/") > 1 or any(c not in SYNC_COMBINES for c in train.sync_combine.split("/")):
        raise W2VError(f"train.sync_combine must be sum, mean, or input/output (sum/mean, mean/sum), "
                       f"got {train.sync_combine!r}")
    if train.sync_method not in SYNC_METHODS:
        raise W2VError(f"train.sync_method must be auto, rows or dense, got {train.sync_method!r}")
    if train.lr <= 0:
        raise W2VError(f"train.lr must be > 0, got {train.lr}")
    if not 0 <= train.min_lr <= train.lr:
        raise W2VError(f"train.min_lr must be between 0 and train.lr={train.lr}, got {train.min_lr}")
    if train.device not in ("auto", "cpu", "cuda") and not train.device.startswith("cuda:"):
        raise W2VError(f"train.device must be auto, cpu or cuda, got {train.device!r}")

    export = ExportConfig(text=bool(e.get("text", False)), tables=_bool(e, "tables", "export", ExportConfig.tables),
                          projector_words=_int(e, "projector_words", "export", 0))
    return RunConfig(model=model, backend=backend, data=data, vocab=vocab, train=train, export=export,
                     phrases=parse_phrases(cfg.get("phrases") or {}),
                     evaluate=bool(cfg.get("evaluate", True)), cache_dir=str(cfg.get("cache_dir", "data/cache")))


def is_count(value: Any) -> bool:
    """An int >= 1 (a bool is not one, though Python says it is an int)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def parse_log_every(value: Any) -> int | str:
    """train.log_every: a number of corpus words, or auto (null too: about an epoch's words / 50, trainer.py)."""
    if value is None or value == "auto":
        return "auto"
    if is_count(value):
        return value
    raise W2VError(f"train.log_every must be auto or a number of corpus words >= 1, got {value!r}")


def parse_eval_every(value: Any) -> int | str | None:
    """train.eval_every: epoch, a number of corpus words, or null / 0 / false (no evaluation while training)."""
    if value is None or value is False or value == 0:
        return None
    if value == "epoch":
        return value
    if is_count(value):
        return value
    raise W2VError(f"train.eval_every must be epoch, a number of corpus words, or 0 / null to turn it off; "
                   f"got {value!r}")


def parse_init_from(value: Any) -> str | None:
    """train.init_from: null, or the run dir of an earlier finished run."""
    if value is None or value is False or value == "":
        return None
    if not isinstance(value, str):
        raise W2VError(f"train.init_from must be the run dir of an earlier run, got {value!r}")
    return value


def parse_phrases(p: Mapping[str, Any]) -> PhrasesConfig:
    """Validate the phrases group; the ranges are gensim's Phrases' (threshold > 0, npmi's in [-1, 1])."""
    default = PhrasesConfig()
    phrases = PhrasesConfig(passes=_int(p, "passes", "phrases", 0) if "passes" in p else default.passes,
                            threshold=_float(p, "threshold", "phrases") if "threshold" in p else default.threshold,
                            min_count=_int(p, "min_count", "phrases", 1) if "min_count" in p else default.min_count,
                            scoring=str(p.get("scoring", default.scoring)))
    if phrases.scoring not in ("default", "npmi"):
        raise W2VError(f"phrases.scoring must be default or npmi, got {phrases.scoring!r}")
    if phrases.scoring == "default" and phrases.threshold <= 0:
        raise W2VError(f"phrases.threshold must be > 0 with phrases.scoring=default, got {phrases.threshold}")
    if phrases.scoring == "npmi" and not -1 <= phrases.threshold <= 1:
        raise W2VError(f"phrases.threshold must be in [-1, 1] with phrases.scoring=npmi, got {phrases.threshold}")
    return phrases
