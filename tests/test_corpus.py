import bz2
import gzip

import pytest

from w2v.config import DataConfig, W2VError
from w2v.corpus import check_paths, open_corpus, sample_paths, wide_encoding


def test_reads_plain_gzip_and_bzip2_files(tmp_path):
    (tmp_path / "a.txt").write_text("one two\nthree\n")
    with gzip.open(tmp_path / "b.txt.gz", "wt") as f:
        f.write("four five\n")
    with bz2.open(tmp_path / "c.txt.bz2", "wt") as f:
        f.write("six\n")
    corpus = open_corpus(DataConfig(kind="files", paths=[str(tmp_path / n) for n in
                                                        ("a.txt", "b.txt.gz", "c.txt.bz2")]), tmp_path)
    lines = [line for batch in corpus.line_batches() for line in batch]
    assert lines == ["one two", "three", "four five", "six"]


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"good words\nbad \xff\xfe here\n")
    corpus = open_corpus(DataConfig(kind="files", paths=[str(tmp_path / "bad.txt")]), tmp_path)
    lines = [line for batch in corpus.line_batches() for line in batch]
    assert lines[0] == "good words" and lines[1].startswith("bad ") and lines[1].endswith(" here")
    assert corpus.replaced_chars == 2


def test_max_lines_limits_the_stream(tmp_path):
    (tmp_path / "a.txt").write_text("".join(f"line {i}\n" for i in range(5000)))
    corpus = open_corpus(DataConfig(kind="files", paths=[str(tmp_path / "a.txt")], max_lines=2500), tmp_path)
    assert sum(len(b) for b in corpus.line_batches()) == 2500


def test_bad_paths_fail_with_one_clear_line(tmp_path):
    with pytest.raises(W2VError, match="not found"):
        check_paths([str(tmp_path / "missing.txt")])
    with pytest.raises(W2VError, match="directory"):
        check_paths([str(tmp_path)])
    with pytest.raises(W2VError, match="empty"):
        check_paths([])


def test_fingerprint_changes_when_a_file_changes(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("hello\n")
    before = open_corpus(DataConfig(kind="files", paths=[str(path)]), tmp_path).fingerprint()
    path.write_text("hello again\n")
    after = open_corpus(DataConfig(kind="files", paths=[str(path)]), tmp_path).fingerprint()
    assert before != after


def test_sample_is_real_english_shipped_with_gensim(tmp_path):
    paths = sample_paths(tmp_path)
    wiki = paths[0].read_text(encoding="utf-8")
    assert len(wiki.split()) > 300_000 and " the " in wiki and "'''" not in wiki
    assert paths[1].name == "lee_background.cor"


def test_wide_encodings_are_recognised_and_utf8_is_not_mistaken_for_them():
    text = "the quick brown fox jumps over the lazy dog\n" * 20
    for codec, name in [("utf-16", "UTF-16"), ("utf-16-le", "UTF-16"), ("utf-16-be", "UTF-16"),
                        ("utf-32", "UTF-32")]:
        assert wide_encoding(text.encode(codec)[:4096]) == name, codec
    assert wide_encoding(text.encode("utf-8")) is None
    assert wide_encoding("naïve café — 東京\n".encode("utf-8") * 50) is None
    assert wide_encoding(text.replace(" ", "\x00").encode("utf-8")) is None  # stray NULs are not UTF-16
    assert wide_encoding(b"") is None


def test_a_utf16_file_is_refused_in_one_line_naming_the_fix(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello world\n" * 100, encoding="utf-16")
    with pytest.raises(W2VError, match=r"is UTF-16 text; w2v reads UTF-8.*iconv -f UTF-16 -t UTF-8"):
        check_paths([str(path)])


def test_hub_rows_become_blocks_with_replaced_characters_counted_once(monkeypatch):
    from w2v.config import DataConfig
    from w2v.corpus import REPLACEMENT_CHAR, Corpus

    class Rows:  # stands in for a streamed hub dataset (tests never reach the network)
        def iter(self, batch_size):
            yield {"text": [f"a{REPLACEMENT_CHAR} b", "c d", None]}

    corpus = Corpus(kind="hub", hub=DataConfig(kind="hub", name="x"), max_lines=2)
    monkeypatch.setattr(corpus, "_dataset", lambda: Rows())
    assert "".join(corpus.text_blocks()) == f"a{REPLACEMENT_CHAR} b\nc d\n"
    assert corpus.replaced_chars == 1
