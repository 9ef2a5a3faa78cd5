"""Typed, validated configuration of `python -m w2v.vqa` (w2v/conf/vqa.yaml)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..config import _float, _int
from ..errors import W2VError
from .model import ModelConfig
from .questions import SceneSpec
from .training import TrainConfig
from .vqa2 import VQA2Paths


@dataclass
class EmbeddingConfig:
    init: str = "random"  # random | pretrained
    vectors: str | None = None
    tokenizer: str | None = None
    freeze: bool = False
    normalize: bool = True
    center: bool = True
    dim: int = 100


@dataclass
class VQARunConfig:
    data_kind: str
    scenes: SceneSpec
    vqa2: VQA2Paths | None
    embedding: EmbeddingConfig
    model: ModelConfig
    train: TrainConfig
    cache_dir: str = "data/cache"


def _bool(section: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise W2VError(f"{where}.{key} must be true or false, got {value!r}")
    return value


def _one_of(value: Any, key: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise W2VError(f"{key} must be one of {', '.join(options)}, got {value!r}")
    return value


def _parse_scenes(s: Mapping[str, Any]) -> SceneSpec:
    spec = SceneSpec(train=_int(s, "train", "data.scenes", 1), test=_int(s, "test", "data.scenes", 1),
                     test_paraphrase=_int(s, "test_paraphrase", "data.scenes", 1),
                     image_size=_int(s, "image_size", "data.scenes", 16), seed=_int(s, "seed", "data.scenes"))
    if spec.image_size % 16:
        raise W2VError(f"data.scenes.image_size must be a multiple of 16, got {spec.image_size}")
    return spec


def _parse_vqa2(v: Mapping[str, Any]) -> VQA2Paths:
    required = ("train_questions", "train_annotations", "eval_questions", "eval_annotations", "features")
    missing = [key for key in required if not v.get(key)]
    if missing:
        raise W2VError(f"data.kind=vqa2 needs data.vqa2.{missing[0]}=PATH (missing: {', '.join(missing)})")
    return VQA2Paths(**{key: str(v[key]) for key in required}, eval_name=str(v.get("eval_name") or "val"),
                     top_answers=_int(v, "top_answers", "data.vqa2", 1))


def parse_vqa_config(cfg: Mapping[str, Any]) -> VQARunConfig:
    """Validate a composed w2v/conf/vqa.yaml (DictConfig or dict) into a VQARunConfig."""
    d, e, m, t = (cfg.get(k) or {} for k in ("data", "embedding", "model", "train"))
    kind = _one_of(d.get("kind"), "data.kind", ("scenes", "vqa2"))
    scenes = _parse_scenes(d.get("scenes") or {}) if kind == "scenes" else SceneSpec()
    vqa2 = _parse_vqa2(d.get("vqa2") or {}) if kind == "vqa2" else None

    embedding = EmbeddingConfig(
        init=_one_of(e.get("init"), "embedding.init", ("random", "pretrained")),
        vectors=str(e["vectors"]) if e.get("vectors") else None,
        tokenizer=str(e["tokenizer"]) if e.get("tokenizer") else None,
        freeze=_bool(e, "freeze", "embedding", False), normalize=_bool(e, "normalize", "embedding", True),
        center=_bool(e, "center", "embedding", True),
        dim=_int(e, "dim", "embedding", 1))
    if embedding.init == "pretrained" and not embedding.vectors:
        raise W2VError("embedding.init=pretrained needs embedding.vectors=PATH (a vectors.bin or its run dir)")
    if embedding.init == "random" and embedding.freeze:
        raise W2VError("embedding.freeze=true needs embedding.init=pretrained (a frozen random table learns nothing)")

    model = ModelConfig(encoder=_one_of(m.get("encoder"), "model.encoder", ("gru", "mean")),
                        hidden=_int(m, "hidden", "model", 1), channels=_int(m, "channels", "model", 2))
    train = TrainConfig(epochs=_int(t, "epochs", "train", 1), batch_size=_int(t, "batch_size", "train", 1),
                        lr=_float(t, "lr", "train"), seed=_int(t, "seed", "train"),
                        threads=_int(t, "threads", "train", 1, optional=True), device=str(t.get("device", "auto")))
    if train.lr <= 0:
        raise W2VError(f"train.lr must be > 0, got {train.lr}")
    return VQARunConfig(data_kind=kind, scenes=scenes, vqa2=vqa2, embedding=embedding, model=model,
                        train=train, cache_dir=str(cfg.get("cache_dir", "data/cache")))
