import numpy as np

from w2v.config import DataConfig, VocabConfig, W2VError
from w2v.corpus import open_corpus
from w2v.token_ids import load_or_build

import pytest


def _build(tmp_path, text, min_count=2, max_size=None):
    path = tmp_path / "c.txt"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    corpus = open_corpus(DataConfig(kind="files", paths=[str(path)]), tmp_path)
    return load_or_build(corpus, VocabConfig(min_count=min_count, max_size=max_size), tmp_path / "cache",
                         show_progress=False, log=lambda msg: None)


def test_ids_counts_and_sentences_describe_the_corpus(tmp_path):
    text = "the cat sat\nthe dog sat rare\n\nthe end end\n"
    token_ids = _build(tmp_path, text)
    words = {i: w for w, i in token_ids.tokenizer.get_vocab().items()}
    decoded = [words[i] for i in token_ids.ids]
    # 'cat', 'dog', 'rare' occur once (< min_count 2) and are dropped, as gensim drops them.
    assert decoded == ["the", "sat", "the", "sat", "the", "end", "end"]
    assert token_ids.sentences.tolist() == [0, 2, 4, 7]  # the empty line holds no sentence
    assert token_ids.counts[token_ids.tokenizer.token_to_id("the")] == 3
    assert token_ids.counts.sum() == len(token_ids.ids)
    assert isinstance(token_ids.ids, np.memmap) and token_ids.ids.dtype == np.int32


def test_second_run_hits_the_cache_and_a_setting_change_misses_it(tmp_path):
    text = "a b c a b c a b\n" * 3
    first = _build(tmp_path, text)
    second = _build(tmp_path, text)
    assert not first.cache_hit and second.cache_hit
    np.testing.assert_array_equal(first.ids, second.ids)
    assert not _build(tmp_path, text, min_count=3).cache_hit


def test_empty_corpus_and_empty_vocabulary_are_user_errors(tmp_path):
    with pytest.raises(W2VError, match="empty"):
        _build(tmp_path, "   \n\t\n")
    with pytest.raises(W2VError, match="min_count"):
        _build(tmp_path, "all words here differ\n", min_count=5)
