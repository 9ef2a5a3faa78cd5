"""w2v/words.py, and the compiled splitter (w2v/kernels/words.c), split text exactly as the HF tokenizer
they stand in for (w2v/vocab.py)."""
import random

import pytest

from tests.helpers import TRICKY, tokenizer_words
from w2v.kernels import load_words
from w2v.words import LINE_END, normalise, split_block

needs_c = pytest.mark.skipif(load_words() is None, reason="no C compiler on this machine")


def compiled_split(text: str, pre_tokenizer: str) -> list[str]:
    """The words of the compiled splitter, in text order."""
    ids, distinct = load_words().number_block(text, pre_tokenizer)
    return [distinct[i] for i in ids]


SPLITTERS = [pytest.param(split_block, id="python"), pytest.param(compiled_split, id="c", marks=needs_c)]

@pytest.mark.parametrize("split", SPLITTERS)
@pytest.mark.parametrize("pre_tokenizer", ["punct", "whitespace"])
def test_split_block_equals_the_tokenizer_on_random_tricky_text(pre_tokenizer, split):
    rng = random.Random(7)
    for _ in range(1500):
        lines = ["".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 40))) for _ in range(rng.randint(1, 4))]
        expected = [w for line in lines for w in tokenizer_words(line, pre_tokenizer) + [LINE_END]]
        assert split("\n".join(lines) + "\n", pre_tokenizer) == expected, lines


@pytest.mark.parametrize("split", SPLITTERS)
def test_ascii_text_takes_the_same_rules(split):
    line = "Don't STOP\tthe walk-in,  ok?\x07end\x7f"
    assert split(line + "\n", "punct") == tokenizer_words(line, "punct") + [LINE_END]
    assert split(line + "\n", "whitespace") == tokenizer_words(line, "whitespace") + [LINE_END]
    assert split(line + "\n", "punct") == ["don", "'", "t", "stop", "the", "walk", "-", "in", ",", "ok", "?",
                                            "end", LINE_END]


def test_cuts_at_ascii_whitespace_and_controls_are_safe_under_nfkc():
    """What lets the C path cut text there (w2v/kernels/words.c): over every code point, no NFKC
    composition has an ASCII character second or an ASCII space or control first, no ASCII character
    is a combining mark, and no character normalises to an ASCII control (a space is harmless)."""
    import sys
    import unicodedata

    cut_bytes = {chr(c) for c in [*range(0x21), 0x7F]}
    assert not any(unicodedata.combining(chr(c)) for c in range(128))
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        char = chr(cp)
        decomposition = unicodedata.decomposition(char)
        if decomposition and not decomposition.startswith("<"):  # canonical: NFKC may compose it back
            parts = [chr(int(part, 16)) for part in decomposition.split()]
            assert not (len(parts) == 2 and (parts[1].isascii() or parts[0] in cut_bytes)), hex(cp)
        if not char.isascii():
            assert not (set(unicodedata.normalize("NFKC", char)) & (cut_bytes - {" "})), hex(cp)


@needs_c
@pytest.mark.parametrize("pre_tokenizer", ["punct", "whitespace"])
def test_every_ascii_byte_next_to_non_ascii_text_splits_as_the_tokenizer(pre_tokenizer):
    """Each ASCII character (controls included) before, after and between characters that NFKC changes
    or composes with: the C path cuts the text only where the tokenizer's rules allow."""
    neighbours = ["\u0301", "\u0338", "ﬁ", "Σ", "é", "\u00a0", "\U0001d400", "\ufffd", "\u200b", "日"]
    for code in range(128):
        for other in neighbours:
            line = f"x{chr(code)}{other}{chr(code)}Y {other}{chr(code)}{chr(code)}{other}"
            expected = tokenizer_words(line.replace("\n", " "), pre_tokenizer)
            got = [w for w in compiled_split(line + "\n", pre_tokenizer) if w != LINE_END]
            assert got == expected, (code, other)


@needs_c
@pytest.mark.parametrize("pre_tokenizer", ["punct", "whitespace"])
def test_the_c_path_numbers_random_mixed_text_as_the_python_path(pre_tokenizer):
    """Same words, same distinct words in the same first-seen order, on ASCII text with non-ASCII pieces."""
    from w2v import encode

    rng = random.Random(11)
    ascii_words = ["The", "of", "walk-in", "don't", "x_1", "a.b", "(c)", "42", "\x07bell", "tab\there"]
    for _ in range(300):
        pieces = [rng.choice(ascii_words) if rng.random() < 0.8 else "".join(rng.choice(TRICKY) for _ in range(4))
                  for _ in range(rng.randint(0, 60))]
        text = "".join(p + rng.choice([" ", " ", "\n", "\t", "\r\n", "  "]) for p in pieces)
        encode._start_worker(pre_tokenizer, None)
        ids_python, distinct_python = encode._number_block(text)
        ids_c, distinct_c = load_words().number_block(text, pre_tokenizer)
        assert distinct_c == distinct_python, text
        assert ids_c.tolist() == ids_python.tolist(), text


def test_normalise_keeps_line_ends_and_nothing_else_invisible():
    text = normalise("A\u00a0B\u200bC\nΣΑΣ\u2028x")
    assert text.split("\n") == ["a b c", "σασ x"]


@needs_c
@pytest.mark.parametrize("pre_tokenizer", ["punct", "whitespace"])
@pytest.mark.parametrize("workers", [1, 3])  # 3: non-ASCII blocks prepared in worker processes
def test_the_c_pass_gives_the_python_pass_ids_and_counts(tmp_path, pre_tokenizer, workers):
    """w2v/encode.py's whole pass over many blocks of mixed text: same words, ids file and counts either way."""
    import numpy as np

    from w2v.encode import number_corpus

    rng = random.Random(5)
    ascii_words = ["The", "of", "walk-in", "don't", "x_1", "a.b", "(c)", "42", "\x07bell", "tab\there", "ĳ"]
    blocks = []
    for _ in range(40):
        pieces = [rng.choice(ascii_words) if rng.random() < 0.9 else "".join(rng.choice(TRICKY) for _ in range(3))
                  for _ in range(rng.randint(0, 400))]
        blocks.append("".join(p + rng.choice([" ", " ", "\n", "\t", "  "]) for p in pieces))
    blocks[3] = "plain ascii only\n" * 50
    results = [number_corpus(iter(blocks), tmp_path / f"{way}.int32", pre_tokenizer, workers=workers,
                             kernel=load_words() if way == "c" else None) for way in ("c", "python")]
    c, python = results
    assert c.words.tolist() == python.words.tolist() and c.tokens == python.tokens
    np.testing.assert_array_equal(c.words.starts, python.words.starts)  # the C table's offsets
    np.testing.assert_array_equal(c.counts, python.counts)
    assert c.path.read_bytes() == python.path.read_bytes()


def fnv1a(word: str) -> int:
    """words.c's hash of a word's UTF-8 bytes (32-bit FNV-1a)."""
    h = 2166136261
    for byte in word.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


@needs_c
def test_the_c_table_tells_apart_words_of_one_hash_and_keeps_ids_as_it_grows():
    """Across blocks, with 3 table growths and words that share a hash (one pair of different lengths,
    one pair of one length), ids follow first-seen order and counts are exact."""
    import numpy as np

    same_hash = [("w86801", "w1406888"), ("w688822", "w1199279")]  # found by a search over "w<n>"
    assert all(fnv1a(a) == fnv1a(b) for a, b in same_hash)
    rng = random.Random(3)
    vocabulary = [f"w{n}" for n in rng.sample(range(10**6), 60_000)] + [w for pair in same_hash for w in pair]
    blocks = [" ".join(rng.choice(vocabulary[:2_000] if rng.random() < 0.5 else vocabulary)
                       for _ in range(rng.randint(1, 20_000))) + "\n" for _ in range(12)]
    blocks.append("W86801 w1406888\nw1406888 w688822 w1199279 w86801\n")  # W: lowercased to its pair's word
    numbering_python: dict[str, int] = {}
    expected = [numbering_python.setdefault(w, len(numbering_python))
                for block in blocks for w in (block.lower().replace("\n", " \0 ").split())]
    with load_words().numbering("punct") as numbering:
        ids = np.concatenate([numbering.number(block.encode(), b"") for block in blocks])
        assert numbering.words() == list(numbering_python)
        assert ids.tolist() == expected
        np.testing.assert_array_equal(numbering.counts(), np.bincount(expected, minlength=len(numbering_python)))
    # The 16k-slot table doubles when half full: at 8k, 16k and 32k distinct words.
    assert len(numbering_python) > 1 << 15


def test_packed_words_select_any_ids_in_any_order():
    import numpy as np

    from w2v.encode import PackedWords

    words = [LINE_END, "the", "Σοφία", "日本", "\U0001d400x", "a", "don't", "naïve"] + [f"w{i}" for i in range(50)]
    packed = PackedWords.of(words)
    assert len(packed) == len(words) and packed.tolist() == words
    ids = np.array([7, 0, 2, 2, 57, 3, 4, 1, 30])
    assert packed.select(ids, piece=4) == [words[i] for i in ids]
    assert packed.select(np.array([], dtype=np.int64)) == []
    subset = packed.subset(ids, piece=4)  # its own bytes: the words kept once the rest is freed
    assert len(subset) == len(ids) and subset.tolist() == [words[i] for i in ids]
    assert subset.select(np.array([8, 1])) == [words[30], words[0]]
    assert len(subset.text) < len(packed.text)
    assert len(packed.subset(np.array([], dtype=np.int64))) == 0
