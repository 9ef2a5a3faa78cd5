"""Question templates over synthetic scenes, and the seeded train/test/test_paraphrase splits.

Each question is built answer-first: the split fixes a balanced list of
(question type, answer) pairs, and each template then draws a scene in which
that answer is true. `train` and `test` use the training wording of every
concept; `test_paraphrase` uses only paraphrase synonyms (see synonyms.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .data import VQADataset, VQASplit
from .scenes import MAX_OBJECTS, SceneObject, column, place_objects, random_attributes, render
from .synonyms import COLOURS, SHAPES, SIZES, attribute_word, colour_word, shape_word, size_word

COUNTS = [str(k) for k in range(5)]
ANSWERS_BY_KIND: dict[str, list[str]] = {
    "query_color": COLOURS,
    "query_shape": SHAPES,
    "count": COUNTS,
    "exist": ["yes", "no"],
    "relation": ["left", "right"],
}
ANSWER_NAMES = list(dict.fromkeys(a for answers in ANSWERS_BY_KIND.values() for a in answers))
SPLIT_WORDING = {"train": "train", "test": "train", "test_paraphrase": "paraphrase"}
Attrs = tuple[str, str, str]  # (shape, colour, size)


@dataclass
class SceneSpec:
    """Sizes and seed of a synthetic dataset."""

    train: int = 15000
    test: int = 1000
    test_paraphrase: int = 1000
    image_size: int = 64
    seed: int = 0


def _others(n: int, rng: np.random.Generator, reject: Callable[[Attrs], bool]) -> list[Attrs]:
    """n random attribute triples, none of which `reject` accepts."""
    out: list[Attrs] = []
    while len(out) < n:
        attrs = random_attributes(rng)
        if not reject(attrs):
            out.append(attrs)
    return out


def _n_objects(rng: np.random.Generator, at_least: int) -> int:
    return int(rng.integers(max(at_least, 1), MAX_OBJECTS + 1))


def query_color(answer: str, wording: str, rng: np.random.Generator) -> tuple[str, list[Attrs]]:
    shape, size, with_size = SHAPES[rng.integers(3)], SIZES[rng.integers(2)], bool(rng.integers(2))
    phrase = (size_word(size, wording, rng) + " " if with_size else "") + shape_word(shape, wording, rng)
    others = _others(_n_objects(rng, 1) - 1, rng, lambda a: a[0] == shape and (not with_size or a[2] == size))
    return f"what {attribute_word('color', wording, rng)} is the {phrase}?", [(shape, answer, size)] + others


def query_shape(answer: str, wording: str, rng: np.random.Generator) -> tuple[str, list[Attrs]]:
    colour, size, with_size = COLOURS[rng.integers(4)], SIZES[rng.integers(2)], bool(rng.integers(2))
    phrase = (size_word(size, wording, rng) + " " if with_size else "") + colour_word(colour, wording, rng)
    others = _others(_n_objects(rng, 1) - 1, rng, lambda a: a[1] == colour and (not with_size or a[2] == size))
    return f"what {attribute_word('shape', wording, rng)} is the {phrase} object?", [(answer, colour, size)] + others


def _filter(rng: np.random.Generator, kinds: list[str]) -> dict[str, str]:
    """A random attribute filter, e.g. {'colour': 'red', 'shape': 'cube'}."""
    kind = kinds[rng.integers(len(kinds))]
    return {
        "shape": SHAPES[rng.integers(3)] if "shape" in kind else None,
        "colour": COLOURS[rng.integers(4)] if "colour" in kind else None,
        "size": SIZES[rng.integers(2)] if "size" in kind else None,
    }


def _plural_phrase(f: dict[str, str], wording: str, rng: np.random.Generator) -> str:
    words = [size_word(f["size"], wording, rng)] if f["size"] else []
    words += [colour_word(f["colour"], wording, rng)] if f["colour"] else []
    words.append(shape_word(f["shape"], wording, rng, plural=True) if f["shape"] else "objects")
    return " ".join(words)


def _matching(f: dict[str, str], n: int, rng: np.random.Generator) -> list[Attrs]:
    """n attribute triples that satisfy the filter f (free attributes random)."""
    out = []
    for _ in range(n):
        shape, colour, size = random_attributes(rng)
        out.append((f["shape"] or shape, f["colour"] or colour, f["size"] or size))
    return out


def _matches(f: dict[str, str], a: Attrs) -> bool:
    return SceneObject(*a, 0.0, 0.0).matches(f["shape"], f["colour"], f["size"])


def count(answer: str, wording: str, rng: np.random.Generator) -> tuple[str, list[Attrs]]:
    k = int(answer)
    f = _filter(rng, ["colour", "shape", "size shape", "colour shape"])
    others = _others(_n_objects(rng, k) - k, rng, lambda a: _matches(f, a))
    return f"how many {_plural_phrase(f, wording, rng)} are there?", _matching(f, k, rng) + others


def exist(answer: str, wording: str, rng: np.random.Generator) -> tuple[str, list[Attrs]]:
    f = _filter(rng, ["colour shape", "size shape", "size colour shape"])
    k = int(rng.integers(1, 3)) if answer == "yes" else 0
    others = _others(_n_objects(rng, k) - k, rng, lambda a: _matches(f, a))
    return f"are there any {_plural_phrase(f, wording, rng)}?", _matching(f, k, rng) + others


def relation(answer: str, wording: str, rng: np.random.Generator) -> tuple[str, list[Attrs]]:
    """'is the A left or right of the B?'; the scene is mirrored afterwards to make `answer` true.

    The answer is the side itself rather than yes/no to "is A left of B?": that form
    makes the answer the XOR of the asked side and the true side, which a small model
    only starts to learn long after everything else.
    """
    first = (SHAPES[rng.integers(3)], COLOURS[rng.integers(4)])
    second = first
    while second == first:
        second = (SHAPES[rng.integers(3)], COLOURS[rng.integers(4)])
    a = f"{colour_word(first[1], wording, rng)} {shape_word(first[0], wording, rng)}"
    b = f"{colour_word(second[1], wording, rng)} {shape_word(second[0], wording, rng)}"
    objects = [(first[0], first[1], SIZES[rng.integers(2)]), (second[0], second[1], SIZES[rng.integers(2)])]
    objects += _others(_n_objects(rng, 2) - 2, rng, lambda x: (x[0], x[1]) in (first, second))
    return f"is the {a} left or right of the {b}?", objects


TEMPLATES = {"query_color": query_color, "query_shape": query_shape, "count": count,
             "exist": exist, "relation": relation}


def _side(objects: list[SceneObject]) -> str:
    """For a relation question: the side of object 1 on which object 0 lies."""
    return "left" if objects[0].x < objects[1].x else "right"


def make_example(kind: str, answer: str, wording: str, image_size: int,
                 rng: np.random.Generator) -> tuple[str, list[SceneObject], np.ndarray]:
    """One (question, scene objects, image) whose correct answer is `answer`."""
    while True:
        question, attrs = TEMPLATES[kind](answer, wording, rng)
        objects = place_objects(attrs, image_size, rng)
        if kind == "relation":
            if column(objects[0], image_size) == column(objects[1], image_size):
                continue  # same column: "left of" would hang on a few pixels
            if _side(objects) != answer:
                objects = [SceneObject(o.shape, o.colour, o.size, image_size - o.x, o.y) for o in objects]
        return question, objects, render(objects, image_size, rng)


def balanced_targets(n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """n (kind, answer) pairs: kinds in turn, answers in turn within a kind, then shuffled."""
    kinds = list(ANSWERS_BY_KIND)
    seen = {kind: 0 for kind in kinds}
    targets = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        answers = ANSWERS_BY_KIND[kind]
        targets.append((kind, answers[seen[kind] % len(answers)]))
        seen[kind] += 1
    return [targets[i] for i in rng.permutation(n)]


def generate_split(name: str, n: int, image_size: int, seed: int) -> VQASplit:
    """The split `name` (train | test | test_paraphrase) with n questions; same seed, same bytes."""
    rng = np.random.default_rng([seed, list(SPLIT_WORDING).index(name)])
    questions, images, kinds, answers = [], np.empty((n, image_size, image_size, 3), np.uint8), [], []
    for i, (kind, answer) in enumerate(balanced_targets(n, rng)):
        question, _objects, images[i] = make_example(kind, answer, SPLIT_WORDING[name], image_size, rng)
        questions.append(question)
        kinds.append(kind)
        answers.append(ANSWER_NAMES.index(answer))
    return VQASplit(questions=questions, answers=np.asarray(answers, np.int64),
                    image_rows=np.arange(n, dtype=np.int64), images=images, kinds=kinds)


def generate_dataset(spec: SceneSpec) -> VQADataset:
    splits = {name: generate_split(name, getattr(spec, name), spec.image_size, spec.seed) for name in SPLIT_WORDING}
    return VQADataset(splits=splits, answer_names=list(ANSWER_NAMES), image_kind="pixels", source=describe(spec))


def describe(spec: SceneSpec) -> str:
    return (f"synthetic scenes (seed {spec.seed}, {spec.image_size}px; train {spec.train}, "
            f"test {spec.test}, test_paraphrase {spec.test_paraphrase})")
