"""The synthetic VQA generator: determinism, wording splits, balance, and answers that match the scene."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from w2v.vqa.questions import ANSWER_NAMES, ANSWERS_BY_KIND, SceneSpec, generate_dataset, generate_split, make_example
from w2v.vqa.scenes import GRID, RGB, column, radius
from w2v.vqa.synonyms import (ATTRIBUTE_WORDS, COLOUR_WORDS, SHAPE_WORDS, SIZE_WORDS, paraphrase_only_words,
                              training_concept_words)

SMALL = 32  # pixels; enough for the tests, four times cheaper than the default 64


def words(question: str) -> list[str]:
    return question.replace("?", " ?").split()


def test_same_seed_same_bytes_other_seed_other_data():
    a = generate_split("train", 40, SMALL, seed=3)
    b = generate_split("train", 40, SMALL, seed=3)
    c = generate_split("train", 40, SMALL, seed=4)
    assert a.questions == b.questions and a.kinds == b.kinds
    assert np.array_equal(a.answers, b.answers) and np.array_equal(a.images, b.images)
    assert a.questions != c.questions and not np.array_equal(a.images, c.images)


def test_splits_of_one_dataset_differ():
    data = generate_dataset(SceneSpec(train=30, test=30, test_paraphrase=30, image_size=SMALL, seed=0))
    assert data.splits["train"].questions != data.splits["test"].questions
    assert not np.array_equal(data.splits["train"].images, data.splits["test"].images)


def test_synonym_lists_separate_training_and_paraphrase_words():
    assert not training_concept_words() & paraphrase_only_words()
    for table in (COLOUR_WORDS, SIZE_WORDS, ATTRIBUTE_WORDS):
        for options in table.values():
            assert len(options) >= 2 and len(set(options)) == len(options)
    for forms in SHAPE_WORDS.values():
        assert len(forms) >= 2


def test_no_paraphrase_synonym_in_any_training_question():
    train = generate_split("train", 400, SMALL, seed=0)
    test = generate_split("test", 200, SMALL, seed=0)
    paraphrase = generate_split("test_paraphrase", 400, SMALL, seed=0)
    train_words = {w for q in train.questions for w in words(q)}
    assert not train_words & paraphrase_only_words()
    assert {w for q in test.questions for w in words(q)} <= train_words  # test = training wording
    para_words = [set(words(q)) for q in paraphrase.questions]
    assert all(ws & paraphrase_only_words() for ws in para_words)  # every question is paraphrased
    assert not set().union(*para_words) & training_concept_words()  # and no concept keeps its training word
    # The paraphrase split uses most of the synonym lists, not one synonym per concept.
    assert len(set().union(*para_words) & paraphrase_only_words()) >= 0.8 * len(paraphrase_only_words())


def test_answers_are_balanced_within_each_question_type():
    split = generate_split("train", 600, SMALL, seed=1)
    kinds = Counter(split.kinds)
    assert set(kinds) == set(ANSWERS_BY_KIND) and max(kinds.values()) - min(kinds.values()) <= 1
    for kind, answers in ANSWERS_BY_KIND.items():
        counts = Counter(ANSWER_NAMES[a] for a, k in zip(split.answers, split.kinds) if k == kind)
        assert set(counts) == set(answers)
        assert max(counts.values()) - min(counts.values()) <= 1, (kind, counts)


# An independent reading of a training-wording question against the scene's objects.
WORD_TO_CONCEPT = {**{forms[0][0]: ("shape", c) for c, forms in SHAPE_WORDS.items()},
                   **{forms[0][1]: ("shape", c) for c, forms in SHAPE_WORDS.items()},
                   **{opts[0]: ("colour", c) for c, opts in COLOUR_WORDS.items()},
                   **{opts[0]: ("size", c) for c, opts in SIZE_WORDS.items()}}


def describes(phrase: list[str], obj) -> bool:
    return all(getattr(obj, WORD_TO_CONCEPT[w][0]) == WORD_TO_CONCEPT[w][1] for w in phrase if w in WORD_TO_CONCEPT)


def oracle(question: str, objects) -> str:
    ws = words(question)
    if ws[:2] == ["how", "many"]:
        return str(sum(describes(ws[2:-3], o) for o in objects))
    if ws[:3] == ["are", "there", "any"]:
        return "yes" if any(describes(ws[3:-1], o) for o in objects) else "no"
    if ws[0] == "what":
        (target,) = [o for o in objects if describes(ws[4:-1], o)]  # the referred object is unique
        return target.colour if ws[1] == "color" else target.shape
    first, second = ws[2:4], ws[9:11]  # is the A A left or right of the B B ?
    (a,) = [o for o in objects if describes(first, o)]
    (b,) = [o for o in objects if describes(second, o)]
    assert column(a, SMALL) != column(b, SMALL)
    return "left" if a.x < b.x else "right"


@pytest.mark.parametrize("kind", list(ANSWERS_BY_KIND))
def test_every_answer_is_true_of_its_scene(kind):
    rng = np.random.default_rng(7)
    for i in range(60):
        answer = ANSWERS_BY_KIND[kind][i % len(ANSWERS_BY_KIND[kind])]
        question, objects, _image = make_example(kind, answer, "train", SMALL, rng)
        assert 1 <= len(objects) <= 6
        assert oracle(question, objects) == answer, question


def test_objects_are_drawn_in_their_colour_inside_their_own_cell():
    rng = np.random.default_rng(0)
    question, objects, image = make_example("count", "3", "train", 64, rng)
    cells = {(int(o.x // (64 / GRID)), int(o.y // (64 / GRID))) for o in objects}
    assert len(cells) == len(objects)  # one object per cell: no overlaps
    for obj in objects:
        r = radius(obj.size, 64)
        assert (64 / GRID) * (obj.x // (64 / GRID)) <= obj.x - r and obj.x + r <= (64 / GRID) * (obj.x // (64 / GRID) + 1)
        centre = image[int(obj.y), int(obj.x)].astype(int)
        assert np.abs(centre - np.asarray(RGB[obj.colour])).max() < 70, (obj, centre)
