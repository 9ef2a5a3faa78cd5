"""The VQA v2 layout loader, on a tiny fabricated sample (no download), and a run on it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from w2v.config import W2VError
from w2v.vqa.config import parse_vqa_config
from w2v.vqa.data import UNKNOWN_ANSWER
from w2v.vqa.run import run_vqa
from w2v.vqa.vqa2 import VQA2Paths, load_vqa2

TRAIN = [  # (question_id, image_id, question, answer)
    (1, 10, "What is the man holding?", "Umbrella"),
    (2, 10, "Is it raining?", "yes"),
    (3, 20, "Is it sunny?", "yes"),
    (4, 20, "What animal is this?", "dog"),
    (5, 30, "Is the dog asleep?", "no"),
    (6, 30, "What colour is the dog?", "brown"),
]
VAL = [(7, 40, "Is it raining?", "yes"), (8, 10, "What is he holding?", "umbrella"), (9, 40, "What sport?", "tennis")]


def write_split(folder, name, rows):
    questions = {"questions": [{"question_id": q, "image_id": i, "question": text} for q, i, text, _ in rows]}
    annotations = {"annotations": [{"question_id": q, "image_id": i, "multiple_choice_answer": a,
                                    "answers": [{"answer": a}]} for q, i, _, a in rows]}
    (folder / f"{name}_questions.json").write_text(json.dumps(questions))
    (folder / f"{name}_annotations.json").write_text(json.dumps(annotations))


def image_features(image_id: int, regions: bool) -> np.ndarray:
    """Features whose mean encodes the image id, so rows can be traced back."""
    vector = np.full(6, float(image_id), np.float32)
    return np.stack([vector - 1, vector + 1]) if regions else vector


@pytest.fixture
def sample(tmp_path):
    write_split(tmp_path, "train", TRAIN)
    write_split(tmp_path, "val", VAL)
    features = tmp_path / "features"
    features.mkdir()
    for image_id in (10, 20, 30, 40):
        np.save(features / f"{image_id}.npy", image_features(image_id, regions=image_id == 20))
    np.savez(tmp_path / "features.npz", **{str(i): image_features(i, False) for i in (10, 20, 30, 40)})
    return tmp_path


def paths(folder, features) -> VQA2Paths:
    return VQA2Paths(train_questions=str(folder / "train_questions.json"),
                     train_annotations=str(folder / "train_annotations.json"),
                     eval_questions=str(folder / "val_questions.json"),
                     eval_annotations=str(folder / "val_annotations.json"), features=str(features), top_answers=4)


@pytest.mark.parametrize("features", ["features", "features.npz"])
def test_loads_questions_answers_and_features(sample, features):
    data = load_vqa2(paths(sample, sample / features))
    assert data.image_kind == "features" and list(data.splits) == ["train", "val"]
    # Most frequent answer first, ties alphabetical, answers lower-cased, capped at top_answers.
    assert data.answer_names == ["yes", "brown", "dog", "no"]
    train, val = data.splits["train"], data.splits["val"]
    assert train.questions == [q for _, _, q, _ in TRAIN]
    assert [data.answer_names[a] if a >= 0 else None for a in train.answers] == [None, "yes", "yes", "dog", "no", "brown"]
    assert train.answers[0] == UNKNOWN_ANSWER  # "umbrella" is outside the top 4
    assert val.answers.tolist() == [0, UNKNOWN_ANSWER, UNKNOWN_ANSWER]
    # Each question's feature row is its own image's (region features averaged).
    for split, rows in ((train, TRAIN), (val, VAL)):
        assert np.allclose(split.images[split.image_rows][:, 0], [image_id for _, image_id, _, _ in rows])


def test_layout_errors_are_one_line(sample):
    (sample / "features" / "30.npy").unlink()
    with pytest.raises(W2VError, match="no features for image 30"):
        load_vqa2(paths(sample, sample / "features"))
    with pytest.raises(W2VError, match="image features not found"):
        load_vqa2(paths(sample, sample / "nowhere"))
    (sample / "val_annotations.json").write_text(json.dumps({"annotations": [{"question_id": 7,
                                                                              "multiple_choice_answer": "yes"}]}))
    with pytest.raises(W2VError, match="2 questions .* have no annotation"):
        load_vqa2(paths(sample, sample / "features.npz"))
    (sample / "val_questions.json").write_text("{not json")
    with pytest.raises(W2VError, match="cannot read .* as JSON"):
        load_vqa2(paths(sample, sample / "features.npz"))
    (sample / "val_questions.json").write_text(json.dumps({"items": []}))
    with pytest.raises(W2VError, match="no 'questions' list"):
        load_vqa2(paths(sample, sample / "features.npz"))


def test_vqa2_config_needs_every_path():
    with pytest.raises(W2VError, match="data.vqa2.train_questions"):
        parse_vqa_config({"data": {"kind": "vqa2", "vqa2": {"top_answers": 10}},
                          "embedding": {"init": "random", "dim": 8},
                          "model": {"encoder": "mean", "hidden": 8, "channels": 4},
                          "train": {"epochs": 1, "batch_size": 2, "lr": 0.01, "seed": 1}})


def test_a_run_on_the_sample_learns_and_writes_its_outputs(sample, tmp_path):
    v = paths(sample, sample / "features.npz")
    cfg = parse_vqa_config({
        "data": {"kind": "vqa2", "vqa2": {**v.__dict__, "top_answers": 10}},
        "embedding": {"init": "random", "dim": 8},
        "model": {"encoder": "gru", "hidden": 16, "channels": 8},
        "train": {"epochs": 60, "batch_size": 6, "lr": 0.01, "seed": 1, "threads": 1, "device": "cpu"}})
    metrics = run_vqa(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "model.pt").is_file() and any((tmp_path / "run" / "tb").iterdir())
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["val_accuracy"] == metrics["val_accuracy"] and saved["eval_questions"] == {"val": 3}
    assert metrics["final_loss"] < 0.5  # six questions are memorised
    # "Is it raining?" on image 40 -> yes is answerable; "tennis" is outside the answers, so at most 2 of 3.
    assert metrics["val_accuracy"] <= 2 / 3


def official_vqa_accuracy(predicted: str, human_answers: list[str]) -> float:
    """The loop of the official VQA v2 evaluation (vqaEval.py), answers already normalised."""
    scores = []
    for left_out in range(len(human_answers)):
        others = [a for k, a in enumerate(human_answers) if k != left_out]
        scores.append(min(1.0, sum(a == predicted for a in others) / 3))
    return sum(scores) / len(scores)


def test_soft_score_is_the_official_vqa_accuracy():
    from w2v.vqa.vqa2 import vqa_soft_score

    # k of 10 annotators gave the predicted answer: 0, 0.3, 0.6, 0.9, then 1.
    for agreeing, expected in [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)]:
        humans = ["yes"] * agreeing + ["no"] * (10 - agreeing)
        assert vqa_soft_score("yes", humans) == pytest.approx(expected)
    rng = np.random.default_rng(0)
    for _ in range(200):
        humans = [str(a) for a in rng.integers(0, 4, size=10)]
        assert vqa_soft_score("1", humans) == pytest.approx(official_vqa_accuracy("1", humans))


def test_a_run_reports_the_soft_accuracy_beside_exact_match(sample, tmp_path):
    """With 10 annotators per question the run reports val_vqa_soft_accuracy, from its own predictions."""
    ten = {7: ["yes"] * 10, 8: ["umbrella"] * 3 + ["an umbrella"] * 7, 9: ["tennis"] * 2 + ["yes"] * 8}
    annotations = json.loads((sample / "val_annotations.json").read_text())
    for record in annotations["annotations"]:
        record["answers"] = [{"answer": a} for a in ten[record["question_id"]]]
    (sample / "val_annotations.json").write_text(json.dumps(annotations))
    v = paths(sample, sample / "features.npz")
    cfg = parse_vqa_config({
        "data": {"kind": "vqa2", "vqa2": {**v.__dict__, "top_answers": 10}},
        "embedding": {"init": "random", "dim": 8},
        "model": {"encoder": "mean", "hidden": 8, "channels": 4},
        "train": {"epochs": 3, "batch_size": 6, "lr": 0.01, "seed": 1, "threads": 1, "device": "cpu"}})
    import w2v.vqa.run as vqa_run

    seen = {}
    real_evaluate = vqa_run.evaluate

    def evaluate(model, data, device):
        seen["result"] = real_evaluate(model, data, device)
        return seen["result"]
    import unittest.mock

    with unittest.mock.patch.object(vqa_run, "evaluate", evaluate):
        metrics = run_vqa(cfg, tmp_path / "run")
    answers = load_vqa2(v.__class__(**{**v.__dict__, "top_answers": 10})).answer_names
    predicted = [answers[p] for p in seen["result"]["predictions"]]
    from w2v.vqa.vqa2 import vqa_soft_score

    expected = np.mean([vqa_soft_score(p, ten[q]) for p, q in zip(predicted, (7, 8, 9))])
    assert metrics["val_vqa_soft_accuracy"] == pytest.approx(expected)
    assert metrics["val_accuracy"] == pytest.approx(np.mean([p == a for p, (_, _, _, a) in zip(predicted, VAL)]))
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["val_vqa_soft_accuracy"] == metrics["val_vqa_soft_accuracy"]


def test_npz_features_are_found_without_a_search_per_image(tmp_path, monkeypatch):
    """`str(i) in archive.files` searched a list per image: O(images^2), 7.5e9 comparisons for VQA v2."""
    from numpy.lib import npyio

    from w2v.vqa.vqa2 import load_features

    searches = []

    class CountingList(list):
        def __contains__(self, item):
            searches.append(item)
            return super().__contains__(item)

    real_init = npyio.NpzFile.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.files, self._files = CountingList(self.files), CountingList(self._files)
    monkeypatch.setattr(npyio.NpzFile, "__init__", init)
    ids = list(range(500))
    np.savez(tmp_path / "f.npz", **{str(i): np.full(3, i, np.float32) for i in ids})
    features = load_features(tmp_path / "f.npz", ids[::-1])
    assert features[:, 0].tolist() == ids[::-1]
    assert len(searches) <= 1
    with pytest.raises(W2VError, match="no features for 1 images"):
        load_features(tmp_path / "f.npz", [0, 1, 999])
    (tmp_path / "bad.npz").write_bytes(b"not a zip at all")
    with pytest.raises(W2VError, match="cannot read image features"):
        load_features(tmp_path / "bad.npz", [0])
