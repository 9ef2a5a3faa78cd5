"""Generated scene datasets, cached on disk by their spec so repeated runs skip generation."""
from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from .data import VQADataset, VQASplit
from .questions import ANSWER_NAMES, SceneSpec, describe, generate_dataset

# Bump whenever the renderer, templates or synonym lists change: it keys the cache.
GENERATOR_VERSION = 2


def cache_file(spec: SceneSpec, cache_dir: Path) -> Path:
    key = json.dumps({"version": GENERATOR_VERSION, **asdict(spec)}, sort_keys=True)
    return cache_dir / "vqa_scenes" / f"scenes-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"


def _save(dataset: VQADataset, path: Path) -> None:
    arrays = {}
    for name, split in dataset.splits.items():
        arrays.update({f"{name}/questions": np.asarray(split.questions), f"{name}/answers": split.answers,
                       f"{name}/images": split.images, f"{name}/kinds": np.asarray(split.kinds)})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


class DamagedCache(ValueError):
    """The cache file loads but does not hold what _save writes."""


def _load(path: Path, spec: SceneSpec) -> VQADataset:
    """The cached dataset, checked against its spec: shapes, dtypes and every answer id in range."""
    splits = {}
    with np.load(path, allow_pickle=False) as archive:
        for name in ("train", "test", "test_paraphrase"):
            images, answers = archive[f"{name}/images"], archive[f"{name}/answers"]
            questions, kinds = archive[f"{name}/questions"].tolist(), archive[f"{name}/kinds"].tolist()
            n = getattr(spec, name)
            if (images.shape != (n, spec.image_size, spec.image_size, 3) or images.dtype != np.uint8
                    or answers.shape != (n,) or not np.issubdtype(answers.dtype, np.integer)
                    or len(questions) != n or len(kinds) != n
                    or (n and (answers.min() < 0 or answers.max() >= len(ANSWER_NAMES)))):
                raise DamagedCache(f"{name} split does not match the spec")
            splits[name] = VQASplit(questions=questions, answers=answers, image_rows=np.arange(n), images=images,
                                    kinds=kinds)
    return VQADataset(splits=splits, answer_names=list(ANSWER_NAMES), image_kind="pixels", source=describe(spec))


def load_or_generate(spec: SceneSpec, cache_dir: Path | None, log=print) -> VQADataset:
    """The dataset of `spec`, from the cache when it is there; generated (and cached) otherwise."""
    if cache_dir is None:
        return generate_dataset(spec)
    path = cache_file(spec, cache_dir)
    if path.exists():
        try:
            return _load(path, spec)
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            log(f"scene cache {path} is unreadable ({type(exc).__name__}: {str(exc)[:100]}); generating again")
    dataset = generate_dataset(spec)
    _save(dataset, path)
    return dataset

