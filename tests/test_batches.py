import numpy as np
import pytest
import torch

from w2v.batches import Carry, Chunk, NoiseSampler, epoch_chunks, keep_probability, noise_distribution
from w2v.objective import cbow_windows, skipgram_pairs


def test_keep_probability_is_word2vecs_formula():
    counts = np.array([0, 1, 10, 1000, 100000])
    sample = 1e-3
    t = sample * counts.sum()
    keep = keep_probability(counts, sample)
    expected = np.minimum((np.sqrt(counts[1:] / t) + 1) * t / counts[1:], 1.0)
    np.testing.assert_allclose(keep[1:], expected)
    assert keep[0] == 0.0  # a word never seen is never kept
    assert keep[1] == 1.0 and keep[-1] < 0.2  # rare words always kept, frequent ones thinned
    np.testing.assert_array_equal(keep_probability(counts, 0.0), np.ones(5))


def _chunk(ids, sentence, window):
    return Chunk(ids=np.asarray(ids, np.int64), sentence=np.asarray(sentence, np.int64),
                 window=np.asarray(window, np.int64), raw_words=len(ids))


def brute_force_pairs(chunk):
    pairs = []
    for i in range(len(chunk.ids)):
        for j in range(len(chunk.ids)):
            if i != j and abs(i - j) <= chunk.window[i] and chunk.sentence[i] == chunk.sentence[j]:
                pairs.append((int(chunk.ids[i]), int(chunk.ids[j])))
    return sorted(pairs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_skipgram_pairs_match_a_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    n, window = 60, 4
    chunk = _chunk(rng.integers(0, 30, n), np.sort(rng.integers(0, 5, n)), rng.integers(1, window + 1, n))
    centres, contexts = skipgram_pairs(chunk, window)
    assert sorted(zip(centres.tolist(), contexts.tolist())) == brute_force_pairs(chunk)


def test_pairs_never_cross_a_sentence_boundary():
    chunk = _chunk([1, 2, 3, 4], [0, 0, 1, 1], [5, 5, 5, 5])
    pairs = set(zip(*[a.tolist() for a in skipgram_pairs(chunk, 5)]))
    assert pairs == {(1, 2), (2, 1), (3, 4), (4, 3)}


def test_cbow_windows_match_the_skipgram_pairs():
    rng = np.random.default_rng(7)
    n, window = 50, 3
    chunk = _chunk(rng.integers(0, 20, n), np.sort(rng.integers(0, 4, n)), rng.integers(1, window + 1, n))
    centres, contexts, mask = cbow_windows(chunk, window)
    assert contexts.shape == (len(centres), 2 * window) and mask.any(axis=1).all()
    from_cbow = sorted((int(c), int(x)) for c, row, m in zip(centres, contexts, mask) for x in row[m])
    assert from_cbow == brute_force_pairs(chunk)


def test_reduced_window_is_uniform_and_subsampling_keeps_the_expected_share():
    counts = np.array([0, 50000, 500, 500])
    ids = np.repeat(np.arange(1, 4), [50000, 500, 500]).astype(np.int32)
    np.random.default_rng(0).shuffle(ids)
    sentences = np.arange(0, len(ids) + 1, 100)
    keep = keep_probability(counts, 1e-3)
    rng = np.random.default_rng(1)
    chunks = list(epoch_chunks(ids, sentences, keep, window=5, rng=rng, chunk_tokens=7000))
    kept = np.concatenate([c.ids for c in chunks])
    windows = np.concatenate([c.window for c in chunks])
    share = (kept == 1).sum() / 50000
    assert abs(share - keep[1]) < 0.02  # binomial sd is ~0.002
    assert abs((kept == 2).sum() / 500 - keep[2]) < 0.07  # binomial sd is ~0.022
    freq = np.bincount(windows, minlength=6)[1:] / len(windows)
    assert windows.min() == 1 and windows.max() == 5
    np.testing.assert_allclose(freq, 0.2, atol=0.02)


def test_epoch_chunks_cover_the_range_once_and_end_on_sentence_boundaries():
    ids = np.arange(1000, dtype=np.int32) % 17 + 1
    sentences = np.array([0, 3, 250, 251, 600, 999, 1000])
    keep = np.ones(18)
    chunks = list(epoch_chunks(ids, sentences, keep, 3, np.random.default_rng(0), chunk_tokens=200))
    assert sum(c.raw_words for c in chunks) == 1000
    np.testing.assert_array_equal(np.concatenate([c.ids for c in chunks]), ids)
    pos = 0
    for c in chunks:
        pos += c.raw_words
        assert pos in sentences
    # A token range (a shard) is covered exactly too.
    part = list(epoch_chunks(ids, sentences, keep, 3, np.random.default_rng(0), 100, token_range=(250, 999)))
    assert sum(c.raw_words for c in part) == 749


def test_noise_sampler_follows_unigram_to_the_three_quarters():
    counts = np.array([0, 1000, 100, 10, 1])
    sampler = NoiseSampler(counts, torch.device("cpu"))
    draws = sampler.sample((200000,), torch.Generator().manual_seed(0)).numpy()
    freq = np.bincount(draws, minlength=5) / len(draws)
    expected = noise_distribution(counts)
    assert freq[0] == 0  # never draws a word with no count (the UNK row)
    np.testing.assert_allclose(freq, expected, atol=0.005)
    assert expected[1] / expected[2] == pytest.approx(10 ** 0.75)


def _one_long_line_and_some_short_ones(seed: int, n: int = 3000):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 50, n).astype(np.int32)
    sentences = np.array([0, 40, 41, 300, 2600, n])  # a long line, a one-word line, and others
    counts = np.bincount(ids, minlength=50) + 1
    return ids, sentences, keep_probability(counts, 1e-3)


@pytest.mark.parametrize("chunk_tokens", [7, 64, 700])
def test_chunks_cut_inside_a_line_give_exactly_the_whole_lines_pairs(chunk_tokens):
    ids, sentences, keep = _one_long_line_and_some_short_ones(seed=chunk_tokens)
    assert 0.2 < keep.mean() < 0.9  # subsampling is on: the carry must follow kept tokens only
    window = 5
    whole = list(epoch_chunks(ids, sentences, keep, window, np.random.default_rng(1), chunk_tokens=10**6))
    cut = list(epoch_chunks(ids, sentences, keep, window, np.random.default_rng(1), chunk_tokens=chunk_tokens))
    assert len(whole) == 1 and len(cut) > 3 and any(c.centre_lo > 0 for c in cut)
    assert sum(c.raw_words for c in cut) == len(ids)
    whole_pairs = skipgram_pairs(whole[0], window)
    cut_pairs = [skipgram_pairs(c, window) for c in cut]
    for k in range(2):
        np.testing.assert_array_equal(np.concatenate([p[k] for p in cut_pairs]), whole_pairs[k])
    whole_cbow = cbow_windows(whole[0], window)
    cut_cbow = [cbow_windows(c, window) for c in cut]
    for k in range(3):
        np.testing.assert_array_equal(np.concatenate([w[k] for w in cut_cbow]), whole_cbow[k])


def test_a_resumed_epoch_from_a_carry_continues_the_same_chunks():
    ids, sentences, keep = _one_long_line_and_some_short_ones(seed=3)
    chunks = list(epoch_chunks(ids, sentences, keep, 5, np.random.default_rng(4), chunk_tokens=100))
    k = next(i for i, c in enumerate(chunks) if c.centre_lo > 0)
    rng = np.random.default_rng(4)
    pos = 0
    for c in chunks[:k]:  # replay the draws up to chunk k, as a checkpoint's rng state would hold them
        rng.random((c.raw_words, 2))
        pos += c.raw_words
    carry = Carry.from_state(chunks[k].carry_in.to_state())
    resumed = next(epoch_chunks(ids, sentences, keep, 5, rng, chunk_tokens=100, token_range=(pos, len(ids)),
                                carry=carry))
    for field in ("ids", "sentence", "window"):
        np.testing.assert_array_equal(getattr(resumed, field), getattr(chunks[k], field))
    assert (resumed.centre_lo, resumed.centre_hi) == (chunks[k].centre_lo, chunks[k].centre_hi)


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_the_c_kernel_trains_as_many_examples_from_cut_chunks_as_from_the_whole_line(model):
    from w2v.backends import init_tables
    from w2v.backends.fused import FusedBackend
    from w2v.objective import make_objective

    ids, sentences, keep = _one_long_line_and_some_short_ones(seed=5)
    trained = []
    for chunk_tokens in (10**6, 50):
        backend = FusedBackend(*init_tables(50, 8, seed=0))
        if backend.kernel is None:
            pytest.skip("no C compiler here")
        backend.prepare(np.ones(50))
        chunks = epoch_chunks(ids, sentences, keep, 5, np.random.default_rng(2), chunk_tokens=chunk_tokens)
        trained.append(sum(backend.train_chunk(make_objective(model, 5, 5), c, 0.025, 0.02)[1] for c in chunks))
    assert trained[0] == trained[1] > 0
