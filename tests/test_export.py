import numpy as np
from gensim.models import KeyedVectors

from w2v.export import has_whitespace, save_vectors, to_keyed_vectors


def test_round_trip_in_both_formats_ordered_by_frequency(tmp_path):
    words = ["[UNK]", "rare", "common", "middle", "never"]
    counts = np.array([0, 2, 50, 10, 0])
    vectors = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    kv = to_keyed_vectors(words, vectors, counts)
    for binary, name in ((True, "v.bin"), (False, "v.txt")):
        save_vectors(kv, tmp_path / name, binary=binary)
        loaded = KeyedVectors.load_word2vec_format(str(tmp_path / name), binary=binary)
        assert loaded.index_to_key == ["common", "middle", "rare"]  # specials and unseen left out
        np.testing.assert_allclose(loaded["middle"], vectors[3], rtol=1e-5 if not binary else 0)
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_tokens_with_whitespace_never_reach_the_file(tmp_path):
    words = ["ok", "bad word", "tab\tword", "nbsp\u00a0word", "line\u2028sep"]
    kv = to_keyed_vectors(words, np.ones((5, 3), np.float32), np.array([5, 4, 3, 2, 1]))
    assert kv.index_to_key == ["ok"]
    assert has_whitespace("\u2003") and not has_whitespace("café")
