"""The one-pass encoder (w2v/encode.py via w2v/token_ids.py) against a plain reference encoder."""
import bz2
import gzip
import random
from collections import Counter

import numpy as np
import pytest

from w2v.config import DataConfig, VocabConfig
from w2v.corpus import open_corpus
from w2v.token_ids import load_or_build
from w2v.vocab import UNK, new_tokenizer

from tests.helpers import TRICKY, tokenizer_words


@pytest.fixture(autouse=True, params=["c", "python"])
def splitter(request, monkeypatch):
    """Every test here runs with the compiled splitter (w2v/kernels/words.c) and with the Python path."""
    from w2v.kernels import load_words

    if request.param == "c" and load_words() is None:
        pytest.skip("no C compiler on this machine")
    monkeypatch.setenv("W2V_NO_C", "1" if request.param == "python" else "0")
    return request.param


def reference_encoding(text: str, min_count: int, pre_tokenizer: str = "punct"):
    """Line by line through the HF tokenizer: (vocabulary, ids per non-empty line, counts)."""
    lines = [tokenizer_words(line, pre_tokenizer) for line in text.split("\n")]
    counts = Counter(w for line in lines for w in line)
    first_seen = {w: i for i, w in reversed(list(enumerate(w for line in lines for w in line)))}
    vocab = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], first_seen[w]))
    index = {w: i + 1 for i, w in enumerate(vocab)}
    encoded = [[index[w] for w in line if w in index] for line in lines]
    return [UNK] + vocab, [ids for ids in encoded if ids], counts


def tricky_corpus(seed: int, n_lines: int = 300) -> str:
    rng = random.Random(seed)
    common = ["the", "of", "Σοφία", "naïve", "walk-in", "don't", "日本", "\U0001d400x"]
    lines = []
    for _ in range(n_lines):
        words = [rng.choice(common) if rng.random() < 0.7 else "".join(rng.choice(TRICKY) for _ in range(5))
                 for _ in range(rng.randint(0, 30))]
        lines.append(" ".join(words))
    lines.append(" ".join(rng.choice(common) for _ in range(3000)))  # one long line, cut across blocks
    return "\n".join(lines)  # no line end after the last line


def build(tmp_path, text: bytes | str, name="c.txt", **kwargs):
    path = tmp_path / name
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    with opener(path, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    vocab = VocabConfig(min_count=kwargs.pop("min_count", 2), pre_tokenizer=kwargs.pop("pre_tokenizer", "punct"))
    corpus = open_corpus(DataConfig(kind="files", paths=[str(path)], max_lines=kwargs.pop("max_lines", None)),
                         tmp_path)
    return load_or_build(corpus, vocab, tmp_path / "cache", show_progress=False, log=lambda m: None, **kwargs)


@pytest.mark.parametrize("workers,block_bytes", [(1, 1 << 20), (1, 97), (2, 251)])
@pytest.mark.parametrize("pre_tokenizer", ["punct", "whitespace"])
def test_ids_counts_and_lines_equal_the_reference(tmp_path, workers, block_bytes, pre_tokenizer):
    text = tricky_corpus(seed=block_bytes)
    token_ids = build(tmp_path, text, workers=workers, block_bytes=block_bytes, pre_tokenizer=pre_tokenizer)
    vocab, lines, counts = reference_encoding(text, 2, pre_tokenizer)
    words = [None] * token_ids.vocab_size
    for word, i in token_ids.tokenizer.get_vocab().items():
        words[i] = word
    assert words == vocab
    assert np.asarray(token_ids.ids).tolist() == [i for line in lines for i in line]
    assert np.diff(token_ids.sentences).tolist() == [len(line) for line in lines]
    assert token_ids.counts.tolist() == [0] + [counts[w] for w in vocab[1:]]


def test_the_saved_tokenizer_encodes_any_line_as_the_cache_does(tmp_path):
    text = tricky_corpus(seed=3, n_lines=100)
    token_ids = build(tmp_path, text, block_bytes=64)
    unk = token_ids.tokenizer.token_to_id(UNK)
    offsets = token_ids.sentences
    lines = [ids for ids in ([i for i in token_ids.tokenizer.encode(line).ids if i != unk]
                             for line in text.split("\n")) if ids]
    assert [np.asarray(token_ids.ids[offsets[s]:offsets[s + 1]]).tolist() for s in range(len(offsets) - 1)] == lines


@pytest.mark.parametrize("name", ["c.txt.gz", "c.txt.bz2"])
def test_compressed_files_and_crlf_give_the_same_ids(tmp_path, name):
    text = tricky_corpus(seed=5, n_lines=50)
    (tmp_path / "plain").mkdir()
    plain = build(tmp_path / "plain", text, block_bytes=128)
    packed = build(tmp_path, text.replace("\n", "\r\n"), name=name, block_bytes=128)
    np.testing.assert_array_equal(plain.ids, packed.ids)
    np.testing.assert_array_equal(plain.sentences, packed.sentences)


def test_a_line_without_spaces_longer_than_many_blocks_is_read(tmp_path):
    token_ids = build(tmp_path, "ab" * 5000 + "\nab ab\n", min_count=1, block_bytes=64)
    assert len(token_ids.ids) >= 3 and token_ids.sentences[-1] == len(token_ids.ids)


def test_max_lines_counts_line_ends_across_blocks(tmp_path):
    text = "".join(f"w{i % 3} w{i % 3} x\n" for i in range(100))
    token_ids = build(tmp_path, text, min_count=1, block_bytes=50, max_lines=7)
    assert len(token_ids.sentences) - 1 == 7 and len(token_ids.ids) == 21


def test_undecodable_bytes_are_replaced_and_counted(tmp_path):
    token_ids = build(tmp_path, b"good words \xff\xfe here\ngood words here\n", min_count=2)
    assert token_ids.replaced_chars == 2
    assert len(token_ids.ids) == 6
