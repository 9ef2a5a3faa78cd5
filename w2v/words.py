"""Text -> words at corpus speed: the tokenizer's rules (w2v/vocab.py) in Python's C string code.

The HF tokenizer in w2v/vocab.py defines what a word is: NFKC, lowercase, every
control / format / separator character (\\p{C}, \\p{Z}, \\s, U+FFFD) to a space, then
either `Whitespace` (\\w+|[^\\w\\s]+, "punct") or `WhitespaceSplit` ("whitespace").
Run through the tokenizer itself, that costs 0.4-0.9M words/s on 2 cores (its
normaliser tracks an alignment per character); the same rules written with
unicodedata, str.lower, str.split and one compiled regex run at about 2M words/s per
core (docs/performance.md, "Preprocessing"). tests/test_words.py checks that both give
the same words on tricky text.

`split_block` turns a block of lines into a flat word list in which LINE_END marks
each line end, so a whole block is split with a few C calls and no Python work per line.
"""
from __future__ import annotations

import re
import sys
import unicodedata

LINE_END = "\x00"  # a control character: normalisation turns every one in the text into a space
PRE_TOKENIZERS = ("punct", "whitespace")

# For pure-ASCII text the classes are small and exact.
# Every kind of space but the plain one becomes a plain space (leaving ' ' itself out of the
# class saves a substitution per word), except \n, which marks line ends.
_ASCII_SPACE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]+")  # \p{C}, \p{Z}, \s in ASCII
_ASCII_WORDS = re.compile(r"[0-9A-Za-z_]+|[^0-9A-Za-z_ ]+")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]+")
_unicode_patterns: dict[str, re.Pattern] | None = None


def _char_class(codepoints: list[int]) -> str:
    """A regex character class (without brackets) for sorted code points, as ranges."""
    parts, start, prev = [], None, None
    for cp in codepoints + [-2]:
        if start is None:
            start = prev = cp
        elif cp == prev + 1:
            prev = cp
        else:
            parts.append(f"\\U{start:08x}" if start == prev else f"\\U{start:08x}-\\U{prev:08x}")
            start = prev = cp
    return "".join(parts)


def _unicode() -> dict[str, re.Pattern]:
    """The classes over all of Unicode, built once per process (about 0.1 s).

    Python's re tests a class of BMP characters with one bitmap lookup, but walks a list
    of every range beyond the BMP (hundreds here) for each character outside the class:
    so each pattern comes twice, a fast BMP-only one, and the full one, used only on the
    few stretches of text around astral characters (emoji, maths letters, rare CJK).
    """
    global _unicode_patterns
    if _unicode_patterns is None:
        space, word = [], []
        # Planes 4-13 are unassigned (Cn) and planes 15-16 private use (Co): all spaces, no
        # need to ask each code point. The other planes are asked one code point at a time.
        for first, last in ((0, 0x3FFFF), (0xE0000, 0xEFFFF)):
            for cp, category in enumerate(map(unicodedata.category, map(chr, range(first, last + 1))), first):
                if category[0] in "CZ" or cp == 0xFFFD:  # \s is inside \p{C} + \p{Z}
                    if cp not in (0x0A, 0x20):
                        space.append(cp)
                # Rust regex's \w: Alphabetic (letters, Nl), marks, decimal digits, connector punctuation.
                elif category[0] in "LM" or category in ("Nl", "Nd", "Pc"):
                    word.append(cp)
        unasked = f"\\U00040000-\\U000dffff\\U000f0000-\\U{sys.maxunicode:08x}"
        patterns = {}
        for plane, limit in (("bmp", 0xFFFF), ("all", sys.maxunicode)):
            w = _char_class([cp for cp in word if cp <= limit])
            spaces = _char_class([cp for cp in space if cp <= limit]) + (unasked if plane == "all" else "")
            patterns[f"space_{plane}"] = re.compile(f"[{spaces}]+")
            patterns[f"words_{plane}"] = re.compile(f"[{w}]+|[^{w} ]+")
        _unicode_patterns = patterns
    return _unicode_patterns


def prepare() -> None:
    """Build the Unicode classes now (before worker processes fork, so that they inherit them)."""
    _unicode()


def normalise(text: str) -> str:
    """The tokenizer's normaliser, except that '\\n' survives (it marks line ends)."""
    if text.isascii():
        return _ASCII_SPACE.sub(" ", text.lower())
    # The tokenizer lowercases one character at a time; str.lower() alone would turn a
    # word-final capital sigma into the final form, so take the plain one first.
    text = unicodedata.normalize("NFKC", text).replace("\u03a3", "\u03c3").lower()
    # Replaced in two steps, a run of spaces may become two spaces: the same words.
    text = _unicode()["space_bmp"].sub(" ", text)
    return _ASTRAL.sub(_astral_spaces, text)


def _astral_spaces(run: re.Match) -> str:
    return _unicode()["space_all"].sub(" ", run.group())


def _find_words(text: str) -> list[str]:
    """HF Whitespace's words of normalised text: the full pattern only between the spaces around
    astral characters (no word contains a space, so the pieces split exactly as the whole)."""
    fast, full = _unicode()["words_bmp"], _unicode()["words_all"]
    found, pos = [], 0
    while True:
        astral = _ASTRAL.search(text, pos)
        if astral is None:
            return found + fast.findall(text, pos)
        lo = max(pos, text.rfind(" ", pos, astral.start()))
        hi = text.find(" ", astral.end())
        hi = len(text) if hi < 0 else hi
        found += fast.findall(text, pos, lo)
        found += full.findall(text, lo, hi)
        pos = hi


def split_block(text: str, pre_tokenizer: str = "punct") -> list[str]:
    """Words of a block of lines, with LINE_END after every '\\n' of the block.

    A block may end inside a line; its last words then belong to the line the next block continues.
    """
    text = normalise(text).replace("\n", f" {LINE_END} ")
    if pre_tokenizer == "whitespace":
        return text.split()
    if text.isascii():
        return _ASCII_WORDS.findall(text)
    return _find_words(text)
