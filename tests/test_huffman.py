"""w2v/huffman.py: the Huffman tree of hierarchical softmax is optimal, prefix-free and word2vec.c's."""
from __future__ import annotations

import heapq

import numpy as np
import pytest

from w2v.huffman import build_huffman, node_counts


def optimal_cost(counts) -> int:
    """The least weighted path length sum(count * code length) of any binary prefix code: the sum of the
    merge costs of the textbook heap algorithm (independent of the two-queue merge under test)."""
    heap = [int(c) for c in counts]
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        cost += merged
        heapq.heappush(heap, merged)
    return cost


def paths(tree) -> list[tuple[int, ...]]:
    return [tuple(tree.codes[w, :tree.lengths[w]].tolist()) for w in range(len(tree.lengths))]


COUNTS = {
    "zipf": (5000 / np.arange(1, 200)).astype(np.int64) + 1,
    "ties": np.array([7, 7, 7, 7, 3, 3, 3, 1, 1, 1, 1, 1]),
    "unsorted with zeros": np.array([3, 0, 50, 1, 1, 9, 0, 12, 12, 2]),
    "random": np.random.default_rng(4).integers(1, 10_000, 500),
    "two": np.array([5, 2]),
}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_the_codes_are_an_optimal_prefix_code(name):
    counts = COUNTS[name]
    tree = build_huffman(counts)
    lengths = tree.lengths.astype(np.int64)
    assert int((counts * lengths).sum()) == optimal_cost(counts)  # Huffman: least weighted path length
    assert sum(2.0 ** -lengths) == pytest.approx(1.0, abs=1e-12)  # Kraft: a full binary tree, no unused branch
    codes = paths(tree)
    assert len(set(codes)) == len(codes)
    for a in codes:  # prefix-free
        assert not any(b != a and b[:len(a)] == a for b in codes)
    more_frequent = counts[:, None] > counts[None, :]  # a more frequent word never has a longer code
    assert not (more_frequent & (lengths[:, None] > lengths[None, :])).any()


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_points_are_inner_node_rows_shared_along_common_prefixes(name):
    """Points are rows 0..V-2, the root (V-2) first; two words share the inner node at each step of their
    common code prefix, and part at distinct ones; V-1 inner nodes in all, each with two children."""
    counts = COUNTS[name]
    tree = build_huffman(counts)
    v = len(counts)
    node_of = {}  # code prefix -> the inner node reached by it
    for w in range(v):
        length = tree.lengths[w]
        assert tree.points[w, 0] == v - 2
        for k in range(length):
            prefix = tuple(tree.codes[w, :k].tolist())
            assert node_of.setdefault(prefix, int(tree.points[w, k])) == tree.points[w, k]
    assert sorted(node_of.values()) == list(range(v - 1))


def test_word2vec_c_merge_order_and_bits():
    """Worked by hand from word2vec.c's CreateBinaryTree on counts 5, 1, 3, 3, 10, 0 (ids 0-5):
    sorted 10, 5, 3, 3, 1, 0; the merged counts are 0+1 -> n0, n0 (1) + 3 -> n1, 3 + n1 (4) -> n2,
    5 + n2 (7) -> n3, 10 + n3 (12) -> n4, the root; of each pair the second-smallest child gets bit 1."""
    tree = build_huffman(np.array([5, 1, 3, 3, 10, 0]))
    expected = {  # id: (codes, points), root first; rows: n0..n4 = 0..4
        4: ([0], [4]),
        0: ([1, 0], [4, 3]),
        2: ([1, 1, 0], [4, 3, 2]),
        3: ([1, 1, 1, 1], [4, 3, 2, 1]),
        1: ([1, 1, 1, 0, 1], [4, 3, 2, 1, 0]),
        5: ([1, 1, 1, 0, 0], [4, 3, 2, 1, 0]),
    }
    for word, (codes, points) in expected.items():
        length = tree.lengths[word]
        assert (tree.codes[word, :length].tolist(), tree.points[word, :length].tolist()) == (codes, points), word


def test_padding_is_the_root_row_and_a_single_word_has_no_path():
    tree = build_huffman(COUNTS["zipf"])
    for w in range(len(tree.lengths)):
        assert (tree.points[w, tree.lengths[w]:] == len(tree.lengths) - 2).all()
        assert (tree.codes[w, tree.lengths[w]:] == 0).all()
    single = build_huffman(np.array([4]))
    assert single.lengths.tolist() == [0] and single.codes.shape == (1, 0)


def test_the_memory_guard_counts_the_tree():
    """A (V, L) tree of codes and points for a large vocabulary is not small: the estimate includes it."""
    from w2v.backends import BACKENDS
    from w2v.memory import estimate_bytes
    from w2v.objective import make_objective

    counts = COUNTS["random"]
    ns, hs = (estimate_bytes(BACKENDS["fused"], len(counts), 50, make_objective("skipgram", 5, 5, loss, counts), 1024)
              for loss in ("ns", "hs"))
    tree = build_huffman(counts)
    assert hs["tables"] - ns["tables"] == tree.peak_bytes() >= tree.codes.size * 18
    subsampled = make_objective("skipgram", 5, 5, "hs", counts, node_sample=1e-3).tree
    assert subsampled.peak_bytes() - tree.peak_bytes() == (2 * len(counts) - 1) * 4  # node_lr and its device copy


def test_node_subsampling_is_word2vecs_keep_probability_of_each_inner_nodes_traffic():
    """node_lr[n] = (sqrt(c_n / t) + 1) t / c_n capped at 1, where c_n sums the counts of the words below
    inner node n and t = sample x the word total; sample 0 gives no scale at all."""
    counts = np.array([0, 400, 200, 100, 60, 30, 5, 5])
    tree = build_huffman(counts, node_sample=0.05)
    traffic = node_counts(tree, counts)
    root = len(counts) - 2
    assert traffic[root] == counts.sum()
    for node in range(len(counts) - 1):  # every inner node's traffic is the words below it, walked from the paths
        below = [w for w in range(len(counts)) if node in tree.points[w, :tree.lengths[w]].tolist()]
        assert traffic[node] == counts[below].sum()
    t = 0.05 * counts.sum()
    expected = np.minimum(1.0, (np.sqrt(traffic / t) + 1) * t / traffic)
    np.testing.assert_allclose(tree.node_lr, expected, rtol=1e-6)
    assert tree.node_lr[root] < 0.5 and tree.node_lr.min() == tree.node_lr[root] and tree.node_lr.max() == 1.0
    # the same codes and points as the tree without it
    plain = build_huffman(counts)
    assert plain.node_lr is None
    np.testing.assert_array_equal(plain.codes, tree.codes)
    np.testing.assert_array_equal(plain.points, tree.points)
