"""Word-level vocabulary with HF `tokenizers`.

The tokenizer is a WordLevel model with NFKC + lowercase normalisation and one of two
pre-tokenizers (vocab.pre_tokenizer): `punct`, HF `Whitespace` (words and runs of
punctuation: "don't" -> don ' t), or `whitespace`, HF `WhitespaceSplit` (split on spaces
only, as word2vec.c and gensim do). The corpus itself is split by w2v/words.py, which
follows the same rules at corpus speed; the tokenizer saved beside the vectors gives
the same ids for any text. Control, format and separator characters
(NUL, zero-width space, U+2028, ...) and the U+FFFD left by undecodable bytes
all become plain spaces first, so no token can contain whitespace or an
invisible character, which the word2vec file format could not hold.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

UNK = "[UNK]"
SPECIAL_TOKENS = [UNK]
# The trainer silently caps the vocabulary at 30,000 unless told otherwise;
# "no cap" must therefore be said with an explicit, huge size.
UNCAPPED_VOCAB = 2**31 - 1
# Bump when normalisation, pre-tokenisation or line splitting changes: it keys the id cache.
TOKENIZER_VERSION = 3


def new_tokenizer(pre_tokenizer: str = "punct") -> Tokenizer:
    """An untrained tokenizer with this project's normalisation and the given pre-tokenisation."""
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.NFKC(),
        normalizers.Lowercase(),
        normalizers.Replace(Regex(r"[\p{C}\p{Z}\s\x{FFFD}]+"), " "),
    ])
    tokenizer.pre_tokenizer = (pre_tokenizers.WhitespaceSplit() if pre_tokenizer == "whitespace"
                               else pre_tokenizers.Whitespace())
    return tokenizer


def tokenizer_for_words(words: list[str], pre_tokenizer: str = "punct") -> Tokenizer:
    """A WordLevel tokenizer whose id i + 1 is words[i] (id 0 is [UNK])."""
    return tokenizer_for_vocab(dict(zip(words, range(1, len(words) + 1))), pre_tokenizer)


def tokenizer_for_vocab(vocab: dict[str, int], pre_tokenizer: str = "punct") -> Tokenizer:
    """A WordLevel tokenizer of word -> id, ids 1..len(vocab) (id 0 is [UNK]; vocab is taken over).

    The mapping is handed over as it is, in any order: the model keeps ids, not insertion order.
    """
    vocab[UNK] = 0
    tokenizer = new_tokenizer(pre_tokenizer)
    tokenizer.model = models.WordLevel(vocab, unk_token=UNK)
    tokenizer.add_special_tokens([UNK])
    return tokenizer


def train_tokenizer(line_batches: Iterable[list[str]], min_count: int, max_size: int | None,
                    show_progress: bool = False, pre_tokenizer: str = "punct") -> Tokenizer:
    """Train the WordLevel vocabulary with HF's trainer: words seen >= min_count times, at most max_size.

    The reference for w2v/encode.py's one-pass vocabulary, and for small word lists.
    """
    tokenizer = new_tokenizer(pre_tokenizer)
    trainer = trainers.WordLevelTrainer(
        vocab_size=(max_size + len(SPECIAL_TOKENS)) if max_size else UNCAPPED_VOCAB,
        min_frequency=min_count,
        special_tokens=SPECIAL_TOKENS,
        show_progress=show_progress,
    )

    def lines() -> Iterator[str]:
        for batch in line_batches:
            yield from batch

    tokenizer.train_from_iterator(lines(), trainer)
    return tokenizer


def id_to_word(tokenizer: Tokenizer) -> list[str]:
    """Index -> word for every id of the tokenizer (specials included).

    Asked id by id: get_vocab() would build a dictionary of every word first (twice the time, and
    for a vocabulary of millions, hundreds of MB more).
    """
    return [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]
