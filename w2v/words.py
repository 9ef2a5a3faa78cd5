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
With the compiled splitter (w2v/kernels/words.c) it splits only the pieces of text that
hold non-ASCII characters; without a C compiler, all of it.
"""
from __future__ import annotations

import functools
import re
import unicodedata

LINE_END = "\x00"  # a control character: normalisation turns every one in the text into a space
PRE_TOKENIZERS = ("punct", "whitespace")

# For pure-ASCII text the classes are small and exact.
# Every kind of space but the plain one becomes a plain space (leaving ' ' itself out of the
# class saves a substitution per word), except \n, which marks line ends.
_ASCII_SPACE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]+")  # \p{C}, \p{Z}, \s in ASCII
_ASCII_WORDS = re.compile(r"[0-9A-Za-z_]+|[^0-9A-Za-z_ ]+")
_SPACE_CATEGORIES = "CZ"  # with U+FFFD: what the normaliser turns into a space
_WORD_CATEGORIES = ("Nl", "Nd", "Pc")  # with L* and M*: Rust regex's \w
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
    """The classes over the BMP, built once per process (about 0.05 s).

    Characters beyond the BMP (emoji, maths letters, rare CJK) are classified one at a time
    (`_is_space`, `_is_word`) on the few stretches of text around them: a regex class over all
    of Unicode would take five times longer to build (every astral code point asked), and
    Python's re walks a list of every range beyond the BMP for each character it tests.
    """
    global _unicode_patterns
    if _unicode_patterns is None:
        space, word = [], []
        for cp, category in enumerate(map(unicodedata.category, map(chr, range(0x10000)))):
            if category[0] in _SPACE_CATEGORIES or cp == 0xFFFD:
                if cp not in (0x0A, 0x20):
                    space.append(cp)
            elif category[0] in "LM" or category in _WORD_CATEGORIES:
                word.append(cp)
        w = _char_class(word)
        _unicode_patterns = {"space_bmp": re.compile(f"[{_char_class(space)}]+"),
                             "words_bmp": re.compile(f"[{w}]+|[^{w} ]+")}
    return _unicode_patterns


@functools.lru_cache(maxsize=None)
def _category(char: str) -> str:
    return unicodedata.category(char)


def _is_space(char: str) -> bool:
    """\\p{C}, \\p{Z}, \\s and U+FFFD: what the normaliser turns into a space (\\s is inside \\p{C} + \\p{Z})."""
    return _category(char)[0] in _SPACE_CATEGORIES or char == "\ufffd"


def _is_word(char: str) -> bool:
    """Rust regex's \\w: Alphabetic (letters, Nl), marks, decimal digits, connector punctuation."""
    category = _category(char)
    return category[0] in "LM" or category in _WORD_CATEGORIES


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
    return "".join(" " if _is_space(char) else char for char in run.group())


def _words_by_char(text: str) -> list[str]:
    """\\w+|[^\\w\\s]+ over spaced text, one character at a time: for the stretches around astral characters."""
    found, run, run_is_word = [], [], False
    for char in text:
        if char == " ":
            if run:
                found.append("".join(run))
            run = []
            continue
        is_word = _is_word(char)
        if run and is_word != run_is_word:
            found.append("".join(run))
            run = []
        run.append(char)
        run_is_word = is_word
    if run:
        found.append("".join(run))
    return found


def _find_words(text: str) -> list[str]:
    """HF Whitespace's words of normalised text: one character at a time only between the spaces around
    astral characters (no word contains a space, so the pieces split exactly as the whole)."""
    fast = _unicode()["words_bmp"]
    found, pos = [], 0
    while True:
        astral = _ASTRAL.search(text, pos)
        if astral is None:
            return found + fast.findall(text, pos)
        lo = max(pos, text.rfind(" ", pos, astral.start()))
        hi = text.find(" ", astral.end())
        hi = len(text) if hi < 0 else hi
        found += fast.findall(text, pos, lo)
        found += _words_by_char(text[lo:hi])
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
