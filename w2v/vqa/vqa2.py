"""Real data in the VQA v2 layout, with precomputed image features.

    questions JSON:   {"questions": [{"question_id", "image_id", "question"}, ...]}
    annotations JSON: {"annotations": [{"question_id", "multiple_choice_answer", "answers"}, ...]}
                      ("answers": the 10 annotators' [{"answer": ...}], optional)
    features:         a folder of <image_id>.npy files, or one .npz whose keys are image ids;
                      each is a (D,) vector or (K, D) region features (averaged over K).

The answer classes are the `top_answers` most frequent training answers; a training
question with another answer is skipped, an evaluation question with one is scored wrong.

Two scores are reported for an evaluation split: `<split>_accuracy`, exact match with
`multiple_choice_answer`, and `<split>_vqa_soft_accuracy`, the VQA v2 accuracy of the
official evaluation, min(#annotators who gave the predicted answer / 3, 1) averaged over
the 10 sets of 9 of the 10 annotators (`vqa_soft_score`), over the questions that list
their annotators' answers. Answers are compared after lower-casing and collapsing spaces
only; the official script also strips punctuation and articles and maps number words to
digits, so its figure can be slightly higher.
"""
from __future__ import annotations

import json
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import W2VError
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


def vqa_soft_score(predicted: str, human_answers: list[str]) -> float:
    """The official VQA accuracy of one predicted answer (normalised) against the annotators' answers.

    For each annotator left out in turn: min(#other annotators who gave `predicted` / 3, 1); the mean of
    those (10 subsets of 9 for VQA v2's 10 annotators). 3 or more agreeing of 10 -> 1.0, 2 -> 0.6, 1 -> 0.3.
    """
    matches = [answer == predicted for answer in human_answers]
    total = sum(matches)
    return sum(min((total - m) / 3, 1.0) for m in matches) / len(matches) if matches else float("nan")


def _human_answers(record: dict, path: Path) -> list[str]:
    answers = record.get("answers") or []
    if not isinstance(answers, list):
        raise W2VError(f"a record in {path} has an 'answers' field that is not a list")
    return [normalize_answer(a["answer"]) for a in answers if isinstance(a, dict) and "answer" in a]


def read_questions(questions_path: Path, annotations_path: Path) -> list[tuple[int, str, str, list[str]]]:
    """[(image_id, question, answer, annotators' answers)] joined on question_id, in the questions file's order."""
    answers, humans = {}, {}
    for record in _read_json(annotations_path, "annotations"):
        qid = _field(record, "question_id", annotations_path)
        answers[qid] = normalize_answer(_field(record, "multiple_choice_answer", annotations_path))
        humans[qid] = _human_answers(record, annotations_path)
    rows, missing = [], 0
    for record in _read_json(questions_path, "questions"):
        qid = _field(record, "question_id", questions_path)
        if qid not in answers:
            missing += 1
            continue
        rows.append((int(_field(record, "image_id", questions_path)), str(_field(record, "question", questions_path)),
                     answers[qid], humans[qid]))
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
        # An .npz is a zip of <key>.npy members. Its members are indexed once in a dict: np.load's
        # NpzFile searches its list of keys on every lookup (`key in self.files`), O(images^2)
        # for VQA v2's 123k images.
        try:
            with zipfile.ZipFile(path) as archive:
                members = {info.filename[:-4]: info for info in archive.infolist() if info.filename.endswith(".npy")}
                missing = [i for i in image_ids if str(i) not in members]
                if missing:
                    raise W2VError(f"no features for {len(missing)} images (first: {missing[0]}) in {path}")
                rows = []
                for i in image_ids:
                    with archive.open(members[str(i)]) as member:
                        rows.append(_as_vector(np.lib.format.read_array(member, allow_pickle=False), f"{path}[{i}]"))
        except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
            raise W2VError(f"cannot read image features {path}: {exc}") from None
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
    answer_names = answer_vocabulary([answer for _, _, answer, _ in train], paths.top_answers)
    answer_id = {a: i for i, a in enumerate(answer_names)}
    image_ids = sorted({image_id for image_id, _, _, _ in train + evaluation})
    image_row = {image_id: i for i, image_id in enumerate(image_ids)}
    features = load_features(Path(paths.features), image_ids)

    def split(rows: list[tuple[int, str, str, list[str]]]) -> VQASplit:
        return VQASplit(questions=[q for _, q, _, _ in rows],
                        answers=np.asarray([answer_id.get(a, UNKNOWN_ANSWER) for _, _, a, _ in rows], np.int64),
                        image_rows=np.asarray([image_row[i] for i, _, _, _ in rows], np.int64),
                        images=features, kinds=[], human_answers=[h for _, _, _, h in rows])

    source = (f"VQA v2 layout: {len(train)} train questions ({paths.train_questions}), {len(evaluation)} "
              f"{paths.eval_name} questions, {len(image_ids)} images of {features.shape[1]} features")
    return VQADataset(splits={"train": split(train), paths.eval_name: split(evaluation)},
                      answer_names=answer_names, image_kind="features", source=source)
