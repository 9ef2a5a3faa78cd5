"""Question words -> embedding rows: random, or from this project's vectors.bin + tokenizer.json.

Questions are split into words with the normaliser and pre-tokenizer of the
tokenizer.json saved beside the vectors, so "What colour?" becomes the same
tokens the vectors were trained on ("what", "colour", "?").

Row layout of the embedding (`QuestionEmbedding`):
  rows [0, n_extra)  always trainable: 0 = padding (zero, no gradient), 1 = unknown
                     word, then every question word the vectors lack (OOV rows);
  rows [n_extra, ..) the pretrained vectors of the question words they have,
                     loaded with nn.Embedding.from_pretrained (frozen or not).
With embedding.init=random every word is an "extra" row, so nothing is pretrained.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from ..errors import W2VError, first_line

PAD, UNK = "[PAD]", "[UNK]"


def load_tokenizer(path: Path | None):
    """The tokenizer.json saved with the vectors; without one, this project's fresh normalisation."""
    from tokenizers import Tokenizer

    from ..vocab import new_tokenizer

    if path is None:
        return new_tokenizer()
    if not path.is_file():
        raise W2VError(f"tokenizer not found: {path} (it is written beside vectors.bin by python -m w2v.train; "
                       "or give embedding.tokenizer=PATH)")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the tokenizers error is a long Rust message
        raise W2VError(f"cannot read tokenizer {path}: {first_line(exc)}") from None


def question_words(tokenizer, text: str) -> list[str]:
    """The words of a question, as the vectors' tokenizer splits and normalises them."""
    normalized = tokenizer.normalizer.normalize_str(text) if tokenizer.normalizer else text
    return [word for word, _span in tokenizer.pre_tokenizer.pre_tokenize_str(normalized)]


def load_vectors(path: Path):
    """gensim KeyedVectors from a word2vec binary file, or one clear error."""
    from gensim.models import KeyedVectors

    if not path.is_file():
        raise W2VError(f"vectors not found: {path} (train them with python -m w2v.train, or fix embedding.vectors)")
    try:
        return KeyedVectors.load_word2vec_format(str(path), binary=True)
    except Exception as exc:
        raise W2VError(f"cannot read {path} as a word2vec binary file: {first_line(exc)}") from None


def resolve_vectors_paths(vectors: str, tokenizer: str | None) -> tuple[Path, Path]:
    """(vectors.bin, tokenizer.json); a run directory may be given for the vectors."""
    vectors_path = Path(vectors).expanduser()
    if vectors_path.is_dir():
        vectors_path = vectors_path / "vectors.bin"
    if not vectors_path.is_file():
        raise W2VError(f"vectors not found: {vectors_path} (train them with python -m w2v.train, "
                       "or fix embedding.vectors)")
    tokenizer_path = Path(tokenizer).expanduser() if tokenizer else vectors_path.parent / "tokenizer.json"
    return vectors_path, tokenizer_path


@dataclass
class QuestionVocab:
    """Row of every question word; words[:n_extra] are the always-trainable rows."""

    words: list[str]
    n_extra: int
    oov_words: list[str]  # question words missing from the vectors (pretrained mode only)

    def __post_init__(self):
        self.row = {word: i for i, word in enumerate(self.words)}

    def encode(self, tokens: list[str]) -> list[int]:
        return [self.row.get(token, 1) for token in tokens]


def build_vocab(token_lists: Iterable[list[str]], known: set[str] | None) -> QuestionVocab:
    """Rows for every word in the questions; `known` = the vectors' words (None = random init)."""
    seen = list(dict.fromkeys(token for tokens in token_lists for token in tokens))
    if known is None:
        return QuestionVocab(words=[PAD, UNK] + seen, n_extra=2 + len(seen), oov_words=[])
    oov = [w for w in seen if w not in known]
    return QuestionVocab(words=[PAD, UNK] + oov + [w for w in seen if w in known],
                         n_extra=2 + len(oov), oov_words=oov)


def random_rows(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """(n, dim) N(0, 1) rows (nn.Embedding's own init): L2 norm ~sqrt(dim), as normalised pretrained rows."""
    return torch.randn(n, dim, generator=generator)


class QuestionEmbedding(nn.Module):
    """Lookup over the row layout above; ids (...,) int64 -> (..., dim) float32."""

    def __init__(self, n_extra: int, dim: int, pretrained: torch.Tensor | None, freeze: bool,
                 generator: torch.Generator):
        super().__init__()
        self.n_extra = n_extra
        self.extra = nn.Embedding(n_extra, dim, padding_idx=0)
        with torch.no_grad():
            self.extra.weight.copy_(random_rows(n_extra, dim, generator))
            self.extra.weight[0].zero_()
        self.pretrained = None if pretrained is None else nn.Embedding.from_pretrained(pretrained, freeze=freeze)

    @property
    def dim(self) -> int:
        return self.extra.embedding_dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        extra = self.extra(ids.clamp(max=self.n_extra - 1))
        if self.pretrained is None:
            return extra
        pretrained = self.pretrained((ids - self.n_extra).clamp(min=0))
        return torch.where((ids < self.n_extra).unsqueeze(-1), extra, pretrained)


def make_embedding(vocab: QuestionVocab, kv, dim: int, freeze: bool, normalize: bool,
                   generator: torch.Generator, center: bool = True) -> QuestionEmbedding:
    """The embedding for `vocab`: pretrained rows from KeyedVectors `kv`, or all random when kv is None.

    center: subtract the mean of every vector in the file first. Word2vec vectors share a
    large common component (often most of a vector's norm), under which co-hyponyms such
    as "red" and "blue" look alike; removing it is the usual first post-processing step.
    normalize: then rescale each row to norm sqrt(dim), the scale of the random rows.
    """
    if kv is None:
        return QuestionEmbedding(vocab.n_extra, dim, None, freeze=False, generator=generator)
    words = vocab.words[vocab.n_extra:]
    if not words:
        raise W2VError(f"none of the {len(vocab.oov_words)} question words has a vector in the given vectors "
                       f"(trained on a corpus of other words?); embedding.init=pretrained has nothing to start from")
    rows = np.stack([kv[w] for w in words])
    rows = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))
    if center:
        rows = rows - torch.from_numpy(np.asarray(kv.vectors, np.float32).mean(axis=0))
    if normalize:
        # word2vec norms grow with frequency; rescaled to norm sqrt(dim), every word sits on the
        # random rows' scale, where the GRU's default init responds to its input.
        rows = rows * (rows.shape[1] ** 0.5 / rows.norm(dim=1, keepdim=True).clamp(min=1e-8))
    return QuestionEmbedding(vocab.n_extra, kv.vector_size, rows, freeze=freeze, generator=generator)
