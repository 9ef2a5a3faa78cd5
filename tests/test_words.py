"""w2v/words.py splits text exactly as the HF tokenizer it stands in for (w2v/vocab.py)."""
import random

import pytest

from w2v.vocab import new_tokenizer
from w2v.words import LINE_END, normalise, split_block

# Characters where a hand-written normaliser or splitter would most likely differ from the
# tokenizer's: capital sigma (str.lower() would give the final form), ligatures, fullwidth
# letters, dotted capital I, combining marks (Rust's \w has them, Python's does not),
# Devanagari vowel signs, connector punctuation, digits outside ASCII, every kind of space and
# invisible character, U+FFFD, private use and unassigned code points, astral letters and emoji.
TRICKY = list("abc XYZ,.'-!?\t\r09_") + list(
    "ΣΑΣ ς éé ﬁ ½ ² ① Ⅻ ａｂ İ ß ǅ \u00a0\u2003\u200b\u2028\u2029\u0085\ufeff\ufffd\x00\x1f\x7f"
    "\u0301\u0915\u093f\u203f‿ 日本語 한국 ٣ 𝟙 \U0001F600 \ue000 \U000e0001 \u0378 \U0001d400 ")


def tokenizer_words(line: str, pre_tokenizer: str) -> list[str]:
    tokenizer = new_tokenizer(pre_tokenizer)
    normalised = tokenizer.normalizer.normalize_str(line)
    return [piece for piece, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalised)]


@pytest.mark.parametrize("pre_tokenizer", ["punct", "whitespace"])
def test_split_block_equals_the_tokenizer_on_random_tricky_text(pre_tokenizer):
    rng = random.Random(7)
    for _ in range(1500):
        lines = ["".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 40))) for _ in range(rng.randint(1, 4))]
        expected = [w for line in lines for w in tokenizer_words(line, pre_tokenizer) + [LINE_END]]
        assert split_block("\n".join(lines) + "\n", pre_tokenizer) == expected, lines


def test_ascii_text_takes_the_same_rules():
    line = "Don't STOP\tthe walk-in,  ok?\x07end\x7f"
    assert split_block(line + "\n") == tokenizer_words(line, "punct") + [LINE_END]
    assert split_block(line + "\n", "whitespace") == tokenizer_words(line, "whitespace") + [LINE_END]
    assert split_block(line + "\n") == ["don", "'", "t", "stop", "the", "walk", "-", "in", ",", "ok", "?", "end",
                                        LINE_END]


def test_normalise_keeps_line_ends_and_nothing_else_invisible():
    text = normalise("A\u00a0B\u200bC\nΣΑΣ\u2028x")
    assert text.split("\n") == ["a b c", "σασ x"]
