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


def test_the_tokenizer_of_a_fresh_build_is_the_one_a_cache_hit_reads_back(tmp_path):
    """A fresh build keeps the tokenizer it saved instead of parsing it back: the same vocabulary, ids and text."""
    text = "Σοφία walks. Σοφία talks; don't walk\nthe end, the end\n"
    fresh, hit = _build(tmp_path, text, min_count=1), _build(tmp_path, text, min_count=1)
    assert not fresh.cache_hit and hit.cache_hit
    assert fresh.tokenizer.get_vocab() == hit.tokenizer.get_vocab() and fresh.tokenizer.get_vocab_size() > 8
    assert fresh.tokenizer.to_str() == hit.tokenizer.to_str()
    for line in text.splitlines() + ["unseen ΣΟΦΊΑ words"]:
        assert fresh.tokenizer.encode(line).ids == hit.tokenizer.encode(line).ids


def test_empty_corpus_and_empty_vocabulary_are_user_errors(tmp_path):
    with pytest.raises(W2VError, match="empty"):
        _build(tmp_path, "   \n\t\n")
    with pytest.raises(W2VError, match="min_count"):
        _build(tmp_path, "all words here differ\n", min_count=5)


@pytest.mark.parametrize("piece", [1, 3, 7, 1 << 24])
def test_final_ids_and_sentence_offsets_do_not_depend_on_the_piece_size(tmp_path, piece):
    """write_final_ids streams ids and offsets piece by piece: lines with no kept word (also across a piece
    cut) are dropped, and a last line without a line end is kept, as a line-by-line reference does."""
    from w2v.encode import LINE_END_ID, PackedWords, ProvisionalIds, write_final_ids

    rng = np.random.default_rng(4)
    provisional_ids = rng.choice(6, size=400, p=[0.25, 0.3, 0.2, 0.1, 0.1, 0.05]).astype(np.int32)
    provisional_ids[:3] = LINE_END_ID  # empty lines first
    final_of = np.array([-1, 1, -1, 2, -1, 3], dtype=np.int32)  # words 2 and 4 are rare: dropped
    path = tmp_path / "provisional.int32"
    path.write_bytes(provisional_ids.tobytes())
    provisional = ProvisionalIds(path, PackedWords.of(["\0", "a", "b", "c", "d", "e"]), np.zeros(6, np.int64),
                                 len(provisional_ids))
    tokens, n_sentences = write_final_ids(provisional, final_of, tmp_path / "ids.int32", tmp_path / "s.npy", piece)

    lines, line = [], []
    for i in provisional_ids.tolist():
        if i == LINE_END_ID:
            lines.append(line)
            line = []
        elif final_of[i] >= 0:
            line.append(int(final_of[i]))
    lines = [kept for kept in lines + [line] if kept]
    assert (tmp_path / "ids.int32").read_bytes() == np.array(sum(lines, []), np.int32).tobytes()
    offsets = np.load(tmp_path / "s.npy")
    assert offsets.dtype == np.int64 and offsets.tolist() == np.cumsum([0] + [len(k) for k in lines]).tolist()
    assert (tokens, n_sentences) == (offsets[-1], len(lines)) and provisional_ids[-1] != LINE_END_ID
    assert not (tmp_path / "s.npy.raw").exists()


def test_encoding_a_corpus_does_not_import_torch(tmp_path):
    """The text pass and the vocabulary need no torch: importing it costs about 130 MB and a second, which
    the preprocessing measurements (scripts/bench_scaling.py) would count as the pass's own."""
    import subprocess
    import sys
    from pathlib import Path

    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c a b\n" * 10)
    code = ("import sys; from pathlib import Path; from w2v.config import DataConfig, VocabConfig; "
            "from w2v.corpus import open_corpus; from w2v.token_ids import load_or_build; "
            f"c = Path({str(tmp_path)!r}); "
            f"ids = load_or_build(open_corpus(DataConfig(kind='files', paths=[{str(corpus)!r}]), c), "
            "VocabConfig(min_count=1), c, show_progress=False, log=lambda m: None); "
            "print(ids.vocab_size, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.stdout.split() == ["4", "False"]
