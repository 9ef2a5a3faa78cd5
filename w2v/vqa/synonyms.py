"""The words of the synthetic scenes, with their English synonyms.

These lists were written from ordinary English usage before any word vectors
were trained or inspected, and they must not be edited to suit the vectors:
the downstream report measures whether pretrained vectors carry a question
over to synonyms the classifier never saw, and tuning the lists to the
vectors would fake that result.

For every concept the first word is the *training wording*: the only word
`train` and `test` questions use for it. The remaining words are the
*paraphrase wording*, used only in `test_paraphrase`, so none of them occurs
in any training question.

The spatial words "left" and "right" are kept in every split (they are also the
answers of relation questions): English has no single-word synonym for them that
reads naturally in a question, so relation questions are paraphrased through
their object and colour words only.
"""
from __future__ import annotations

# concept -> [(singular, plural), ...]; first entry = training wording.
SHAPE_WORDS: dict[str, list[tuple[str, str]]] = {
    "sphere": [("ball", "balls"), ("sphere", "spheres"), ("globe", "globes"), ("orb", "orbs")],
    "cube": [("cube", "cubes"), ("block", "blocks"), ("box", "boxes"), ("brick", "bricks")],
    "cone": [("cone", "cones"), ("pyramid", "pyramids"), ("triangle", "triangles")],
}

COLOUR_WORDS: dict[str, list[str]] = {
    "red": ["red", "crimson", "scarlet"],
    "blue": ["blue", "navy", "azure"],
    "green": ["green", "emerald", "jade"],
    "yellow": ["yellow", "gold", "golden"],
}

SIZE_WORDS: dict[str, list[str]] = {
    "small": ["small", "little", "tiny"],
    "large": ["big", "large", "huge"],
}

# The noun of "what colour ...?" / "what shape ...?" questions.
ATTRIBUTE_WORDS: dict[str, list[str]] = {
    "color": ["color", "colour", "hue"],
    "shape": ["shape", "form"],
}

SHAPES = list(SHAPE_WORDS)
COLOURS = list(COLOUR_WORDS)
SIZES = list(SIZE_WORDS)

WORDINGS = ("train", "paraphrase")


def _pick(options: list, wording: str, rng) -> object:
    """The training word, or a random paraphrase word."""
    if wording == "train":
        return options[0]
    if wording == "paraphrase":
        return options[1 + int(rng.integers(len(options) - 1))]
    raise ValueError(f"wording must be one of {WORDINGS}, got {wording!r}")


def shape_word(shape: str, wording: str, rng, plural: bool = False) -> str:
    singular, plural_form = _pick(SHAPE_WORDS[shape], wording, rng)
    return plural_form if plural else singular


def colour_word(colour: str, wording: str, rng) -> str:
    return _pick(COLOUR_WORDS[colour], wording, rng)


def size_word(size: str, wording: str, rng) -> str:
    return _pick(SIZE_WORDS[size], wording, rng)


def attribute_word(attribute: str, wording: str, rng) -> str:
    return _pick(ATTRIBUTE_WORDS[attribute], wording, rng)


def paraphrase_only_words() -> set[str]:
    """Every word that may appear in test_paraphrase but never in train."""
    words: set[str] = set()
    for forms in SHAPE_WORDS.values():
        for singular, plural in forms[1:]:
            words.update((singular, plural))
    for table in (COLOUR_WORDS, SIZE_WORDS, ATTRIBUTE_WORDS):
        for options in table.values():
            words.update(options[1:])
    return words


def training_concept_words() -> set[str]:
    """The concept words training questions use (one per concept, plus plurals)."""
    words: set[str] = set()
    for forms in SHAPE_WORDS.values():
        words.update(forms[0])
    for table in (COLOUR_WORDS, SIZE_WORDS, ATTRIBUTE_WORDS):
        words.update(options[0] for options in table.values())
    return words
