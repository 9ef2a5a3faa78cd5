"""The Huffman tree of hierarchical softmax (model.loss=hs), built the way word2vec.c builds it.

Words are sorted by count, most frequent first; the two smallest of the remaining words and
inner nodes are merged, again and again, taking them from two queues: the words from the end
of the sorted list, and the inner nodes in the order they were made (their counts never fall).
On a tie the inner node is taken first, as word2vec.c's strict `<` does. Of each pair merged,
the second-smallest child gets code bit 1 (word2vec.c's `binary[min2i] = 1`).

A word's path runs from the root down: at step k the hidden vector is scored against the
output row `points[w, k]` of an inner node (rows 0..V-2 of the output table; the root is
V-2) and the label is 1 - `codes[w, k]`, the bit of the child the path goes on to.
Paths are padded to the longest with the root's row and code 0; `lengths` says how much is real.

Inner-node subsampling (`node_lr`, model.hs_node_sample): word2vec subsamples frequent words because
their many pairs teach little, but every pair still passes the root and the nodes near it, whatever was
subsampled. So each inner node's row learns at lr times word2vec's keep probability of its traffic (the
summed counts of the words below it, the threshold vocab.sample of all words), its expected share if
its updates were subsampled like a word's; the input vectors still get the full gradient. The root
(traffic: every word) then learns at about 3 % of lr with sample 1e-3, nodes of rare words at lr.
Measured on gensim's own job stream, replayed update for update: +1.3 analogy points, WS-353 unchanged; in
w2v at its defaults on three corpora, analogy +0.1 to +1.1 points for both models, WS-353 0.017-0.024 lower
on one corpus (docs/performance.md, "Hierarchical softmax", session 19).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .batches import keep_probability


@dataclass(frozen=True, eq=False)
class HuffmanTree:
    """codes (V, L) uint8, points (V, L) int32 inner-node rows, lengths (V,) int32: word w's path is
    codes[w, :lengths[w]], points[w, :lengths[w]], root first."""

    codes: np.ndarray
    points: np.ndarray
    lengths: np.ndarray
    node_lr: np.ndarray | None = None  # (V-1,) float32 learning-rate scale of each inner node's row; None: 1
    _on_device: dict = field(default_factory=dict, repr=False)

    @property
    def max_length(self) -> int:
        return int(self.codes.shape[1])

    def peak_bytes(self) -> int:
        """The tree's arrays, and at most one copy of them as the torch and Triton steps read them (float32
        codes, int64 points and lengths, node_lr over the output rows): a run's share of memory for
        hierarchical softmax."""
        cells, words = self.codes.size, len(self.lengths)
        node_lr = 0 if self.node_lr is None else self.node_lr.nbytes + words * 4  # and its copy over the output rows
        return self.codes.nbytes + self.points.nbytes + self.lengths.nbytes + cells * (4 + 8 + 1) + words * 8 + node_lr

    def node_lr_on(self, device: torch.device, rows: int) -> torch.Tensor:
        """(rows,) float32 learning-rate scale per output row on `device` (1 past the inner nodes), copied once."""
        key = ("node_lr", str(torch.device(device)), rows)
        if key not in self._on_device:
            scale = np.ones(rows, dtype=np.float32)
            if self.node_lr is not None:
                scale[:len(self.node_lr)] = self.node_lr
            self._on_device[key] = torch.from_numpy(scale).to(device)
        return self._on_device[key]

    def on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(codes float32, points int64, lengths int64) on `device`, copied there once."""
        key = str(torch.device(device))
        if key not in self._on_device:
            self._on_device[key] = (torch.from_numpy(self.codes.astype(np.float32)).to(device),
                                    torch.from_numpy(self.points.astype(np.int64)).to(device),
                                    torch.from_numpy(self.lengths.astype(np.int64)).to(device))
        return self._on_device[key]


def merge_parents(sorted_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """word2vec.c's two-queue merge over counts sorted in descending order.

    Nodes 0..V-1 are the words (in that order), V..2V-2 the inner nodes in the order they were
    made, the last one the root. Returns (parent (2V-1,) int64, -1 at the root; bit (2V-1,) uint8).
    """
    v = len(sorted_counts)
    weight = np.zeros(2 * v - 1 if v else 0, dtype=np.float64)
    weight[:v] = sorted_counts
    parent = np.full(len(weight), -1, dtype=np.int64)
    bit = np.zeros(len(weight), dtype=np.uint8)
    word, inner = v - 1, v  # the next word from the end of the sorted words; the oldest unmerged inner node
    for made in range(v, 2 * v - 1):
        pair = []
        for _ in range(2):
            if word >= 0 and (inner >= made or weight[word] < weight[inner]):
                pair.append(word)
                word -= 1
            else:
                pair.append(inner)
                inner += 1
        smallest, second = pair
        weight[made] = weight[smallest] + weight[second]
        parent[smallest] = parent[second] = made
        bit[second] = 1
    return parent, bit


def build_huffman(counts: np.ndarray, node_sample: float = 0.0) -> HuffmanTree:
    """The tree over a vocabulary's counts (V,); words with count 0 get the longest codes.

    node_sample > 0: inner-node subsampling at that threshold (`node_lr`, the module docstring); 0: none."""
    counts = np.asarray(counts, dtype=np.int64)
    v = len(counts)
    # Most frequent first; ties keep id order, which w2v/encode.py numbers in first-seen order (rare words
    # first seen together become siblings). gensim's heap orders ties otherwise. Which equal-count words
    # become siblings is a draw among equally short trees, and it moves quality as much as the seed does,
    # for gensim too: trained by gensim itself on four such trees, tech-clean skip-gram's analogy score ran
    # from 0.069 to 0.077. No tie rule was better across trees and corpora, so word2vec.c's is kept
    # (docs/performance.md, "Hierarchical softmax", session 18).
    order = np.argsort(-counts, kind="stable")
    parent, bit = merge_parents(counts[order])
    if v < 2:  # a single word needs no decision
        empty = np.zeros((v, 0))
        return HuffmanTree(empty.astype(np.uint8), empty.astype(np.int32), np.zeros(v, np.int32))
    root = 2 * v - 2
    depth = _depths(parent, root)
    lengths_sorted = depth[:v]
    width = int(lengths_sorted.max())
    codes = np.zeros((v, width), dtype=np.uint8)
    points = np.full((v, width), v - 2, dtype=np.int32)  # padding: the root's row, read but masked
    rows = np.arange(v)
    node = np.arange(v)
    # Walk every word up to the root at once; the step from `node` fills position depth[node] - 1.
    while True:
        going = node != root
        if not going.any():
            break
        at = depth[node[going]] - 1
        codes[rows[going], at] = bit[node[going]]
        points[rows[going], at] = parent[node[going]] - v
        node = np.where(going, parent[node].clip(min=0), node)
    # Back from frequency order to word ids.
    by_id = np.empty(v, dtype=np.int64)
    by_id[order] = np.arange(v)
    tree = HuffmanTree(codes[by_id], points[by_id], lengths_sorted[by_id].astype(np.int32))
    if node_sample <= 0:
        return tree
    return HuffmanTree(tree.codes, tree.points, tree.lengths,
                       keep_probability(node_counts(tree, counts), node_sample, total=float(counts.sum())).astype(np.float32))


def node_counts(tree: HuffmanTree, counts: np.ndarray) -> np.ndarray:
    """(V-1,) float64 traffic of each inner node: the summed counts of the words whose paths pass it."""
    on_path = np.arange(tree.max_length)[None, :] < tree.lengths[:, None]
    weights = np.broadcast_to(np.asarray(counts, dtype=np.float64)[:, None], on_path.shape)[on_path]
    return np.bincount(tree.points[on_path], weights=weights, minlength=max(len(counts) - 1, 0))


def _depths(parent: np.ndarray, root: int) -> np.ndarray:
    """Depth of each node: inner nodes are made after their children, so go from the root down."""
    depth = np.zeros(len(parent), dtype=np.int64)
    for node in range(root - 1, -1, -1):
        depth[node] = depth[parent[node]] + 1
    return depth
