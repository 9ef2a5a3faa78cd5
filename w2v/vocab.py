"""Word-level vocabulary with HF `tokenizers`.

The tokenizer is a WordLevel model with NFKC + lowercase normalisation and a
whitespace/punctuation pre-tokenizer. Control, format and separator characters
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
# Bump when normalisation or pre-tokenisation changes: it keys the id cache.
TOKENIZER_VERSION = 2


def new_tokenizer() -> Tokenizer:
    """An untrained tokenizer with this project's normalisation and pre-tokenisation."""
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.NFKC(),
        normalizers.Lowercase(),
        normalizers.Replace(Regex(r"[\p{C}\p{Z}\s\x{FFFD}]+"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def train_tokenizer(line_batches: Iterable[list[str]], min_count: int, max_size: int | None,
                    show_progress: bool = False) -> Tokenizer:
    """Train the WordLevel vocabulary: words seen >= min_count times, at most max_size of them."""
    tokenizer = new_tokenizer()
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
    """Index -> word for every id of the tokenizer (specials included)."""
    vocab = tokenizer.get_vocab()
    words = [""] * len(vocab)
    for word, idx in vocab.items():
        words[idx] = word
    return words
