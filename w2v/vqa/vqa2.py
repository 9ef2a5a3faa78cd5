"""Real data in the VQA v2 layout, with precomputed image features.

    questions JSON:   {"questions": [{"question_id", "image_id", "question"}, ...]}
    annotations JSON: {"annotations": [{"question_id", "multiple_choice_answer"}, ...]}
    features:         a folder of <image_id>.npy files, or one .npz whose keys are image ids;
                      each is a (D,) vector or (K, D) region features (averaged over K).

The answer classes are the `top_answers` most frequent training answers; a training
question with another answer is skipped, an evaluation question with one is scored wrong.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import W2VError
from .data import UNKNOWN_ANSWER, VQADataset, VQASplit


@dataclass
class VQA2Paths:
    train_questions: str
    train_annotations: str
    eval_questions: str
    eval_annotations: str
    features: str
    eval_name: str = "val"
    top_answers: int = 1000


def _read_json(path: Path, key: str) -> list[dict]:
    if not path.is_file():
        raise W2VError(f"VQA file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise W2VError(f"cannot read {path} as JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
        raise W2VError(f"{path} has no {key!r} list; expected the VQA v2 layout {{\"{key}\": [...]}}")
    return doc[key]


def _field(record: dict, key: str, path: Path):
    if not isinstance(record, dict) or key not in record:
        raise W2VError(f"a record in {path} has no {key!r} field")
    return record[key]


def normalize_answer(answer: str) -> str:
    return " ".join(str(answer).lower().split())


def read_questions(questions_path: Path, annotations_path: Path) -> list[tuple[int, str, str]]:
    """[(image_id, question, answer)] joined on question_id, in the questions file's order."""
    answers = {}
    for record in _read_json(annotations_path, "annotations"):
        answers[_field(record, "question_id", annotations_path)] = normalize_answer(
            _field(record, "multiple_choice_answer", annotations_path))
    rows, missing = [], 0
    for record in _read_json(questions_path, "questions"):
        qid = _field(record, "question_id", questions_path)
        if qid not in answers:
            missing += 1
            continue
        rows.append((int(_field(record, "image_id", questions_path)), str(_field(record, "question", questions_path)),
                     answers[qid]))
    if missing:
        raise W2VError(f"{missing} questions in {questions_path} have no annotation in {annotations_path}")
    if not rows:
        raise W2VError(f"no questions in {questions_path}")
    return rows


def _as_vector(array: np.ndarray, where: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2:  # region features: one image vector is their mean
        array = array.mean(axis=0)
    if array.ndim != 1 or array.size == 0:
        raise W2VError(f"image features {where} must be (D,) or (K, D), got shape {array.shape}")
    return array


def load_features(path: Path, image_ids: list[int]) -> np.ndarray:
    """(len(image_ids), D) float32, row i = features of image_ids[i]."""
    if path.is_dir():
        def fetch(image_id: int) -> np.ndarray:
            file = path / f"{image_id}.npy"
            if not file.is_file():
                raise W2VError(f"no features for image {image_id}: {file} is missing")
            return _as_vector(np.load(file, allow_pickle=False), str(file))
        rows = [fetch(i) for i in image_ids]
    elif path.is_file() and path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            missing = [i for i in image_ids if str(i) not in archive.files]
            if missing:
                raise W2VError(f"no features for {len(missing)} images (first: {missing[0]}) in {path}")
            rows = [_as_vector(archive[str(i)], f"{path}[{i}]") for i in image_ids]
    else:
        raise W2VError(f"image features not found: {path} (give a folder of <image_id>.npy files or an .npz)")
    dims = {row.shape[0] for row in rows}
    if len(dims) > 1:
        raise W2VError(f"image features in {path} have different sizes: {sorted(dims)}")
    return np.stack(rows)


def answer_vocabulary(answers: list[str], top: int) -> list[str]:
    """The `top` most frequent answers; ties broken alphabetically so the order is reproducible."""
    counts = Counter(answers)
    return sorted(counts, key=lambda a: (-counts[a], a))[:top]


def load_vqa2(paths: VQA2Paths) -> VQADataset:
    """Train and one evaluation split from VQA v2 files, sharing one feature matrix."""
    if paths.top_answers < 1:
        raise W2VError(f"data.vqa2.top_answers must be >= 1, got {paths.top_answers}")
    train = read_questions(Path(paths.train_questions), Path(paths.train_annotations))
    evaluation = read_questions(Path(paths.eval_questions), Path(paths.eval_annotations))
    answer_names = answer_vocabulary([answer for _, _, answer in train], paths.top_answers)
    answer_id = {a: i for i, a in enumerate(answer_names)}
    image_ids = sorted({image_id for image_id, _, _ in train + evaluation})
    image_row = {image_id: i for i, image_id in enumerate(image_ids)}
    features = load_features(Path(paths.features), image_ids)

    def split(rows: list[tuple[int, str, str]]) -> VQASplit:
        return VQASplit(questions=[q for _, q, _ in rows],
                        answers=np.asarray([answer_id.get(a, UNKNOWN_ANSWER) for _, _, a in rows], np.int64),
                        image_rows=np.asarray([image_row[i] for i, _, _ in rows], np.int64),
                        images=features, kinds=[])

    source = (f"VQA v2 layout: {len(train)} train questions ({paths.train_questions}), {len(evaluation)} "
              f"{paths.eval_name} questions, {len(image_ids)} images of {features.shape[1]} features")
    return VQADataset(splits={"train": split(train), paths.eval_name: split(evaluation)},
                      answer_names=answer_names, image_kind="features", source=source)
