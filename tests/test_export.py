import numpy as np
from gensim.models import KeyedVectors

from w2v.export import has_whitespace, to_keyed_vectors, write_word2vec


def test_round_trip_in_both_formats_ordered_by_frequency(tmp_path):
    words = ["[UNK]", "rare", "common", "middle", "never", "café"]
    counts = np.array([0, 2, 50, 10, 0, 10])
    vectors = np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32)
    for binary, name in ((True, "v.bin"), (False, "v.txt")):
        assert write_word2vec(tmp_path / name, words, vectors, counts, binary=binary) == 4
        loaded = KeyedVectors.load_word2vec_format(str(tmp_path / name), binary=binary)
        # specials and unseen left out; a tie (middle, café) keeps id order
        assert loaded.index_to_key == ["common", "middle", "café", "rare"]
        np.testing.assert_allclose(loaded["middle"], vectors[3], rtol=1e-6 if not binary else 0)
        np.testing.assert_allclose(loaded.vectors, to_keyed_vectors(words, vectors, counts).vectors, rtol=1e-6)
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_the_binary_file_has_word2vec_c_layout(tmp_path):
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    write_word2vec(tmp_path / "v.bin", ["a", "bb"], vectors, np.array([5, 3]))
    data = (tmp_path / "v.bin").read_bytes()
    assert data == b"2 3\n" + b"a " + vectors[0].tobytes() + b"\n" + b"bb " + vectors[1].tobytes() + b"\n"


def test_tokens_with_whitespace_never_reach_the_file(tmp_path):
    words = ["ok", "bad word", "tab\tword", "nbsp\u00a0word", "line\u2028sep"]
    kv = to_keyed_vectors(words, np.ones((5, 3), np.float32), np.array([5, 4, 3, 2, 1]))
    assert kv.index_to_key == ["ok"]
    write_word2vec(tmp_path / "v.txt", words, np.ones((5, 3), np.float32), np.array([5, 4, 3, 2, 1]), binary=False)
    assert (tmp_path / "v.txt").read_text().splitlines()[1:] == ["ok 1.0 1.0 1.0"]
    assert has_whitespace("\u2003") and not has_whitespace("café")


def test_published_files_get_the_usual_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        write_word2vec(tmp_path / "v.bin", ["a"], np.ones((1, 2), np.float32), np.array([1]))
    finally:
        os.umask(umask)
    # 0644 under umask 022, as a file made by open() would be (mkstemp alone gives 0600)
    assert (tmp_path / "v.bin").stat().st_mode & 0o777 == 0o666 & ~0o022
