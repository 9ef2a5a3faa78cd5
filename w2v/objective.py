"""The training objective, skip-gram or CBOW, with negative sampling or hierarchical softmax: the one place
that knows which.

An objective owns, side by side for its model:
- the window expansion of a subsampled chunk into examples, on the host in numpy (`examples`,
  for the backends that step batch by batch) and on the device in torch (`device_examples`,
  for backend=fused);
- the rows a step touches in each table (`lookups`, `rows_per_example`);
- the output side of each example (`output_targets`): the predicted word and its negatives, or,
  with a Huffman tree (model.loss=hs, w2v/huffman.py), the inner nodes on the predicted word's path;
- the loss, written against a backend's row lookups so that every autograd backend trains
  exactly the same objective (`loss`), and the same loss's closed-form updates in the kernels
  (`closed_form_step`, `triton_examples`, and `predicts_centre` and `tree`, the C kernel's mode).
Backends, the training loop and the memory guard ask the objective; none of them branches on a model name.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from .batches import Chunk
from .huffman import HuffmanTree, build_huffman
from .kernels.sgns_torch import cbow_step, sampled_targets, skipgram_step, tree_targets

LOSSES = ("ns", "hs")  # model.loss: negative sampling | hierarchical softmax
# Hierarchical softmax leaves an inner node alone once |score| reaches this, as word2vec.c and gensim do
# (MAX_EXP): its loss still counts. The C and Triton kernels hold the same constant. Measured: without it
# skip-gram's analogy score was below gensim's by more than the seed spread (docs/performance.md).
HS_MAX_SCORE = 6.0


@dataclass
class Batch:
    """One optimiser step of examples, on the training device.

    skip-gram: centres (B,) input words, contexts (B,) predicted words.
    CBOW:      contexts (B, 2*window) input words with mask (B, 2*window), centres (B,) predicted.
    negatives: (B, K) noise words for the predicted word of each example ((B, 0) with hierarchical softmax).
    """

    centres: torch.Tensor
    contexts: torch.Tensor
    negatives: torch.Tensor
    mask: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.centres.shape[0])


def logistic_loss(hidden: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor,
                  max_score: float | None = None) -> torch.Tensor:
    """Per-example loss -sum_t valid_t log s((2 label_t - 1) h.u_t).

    hidden (B, D), rows (B, T, D), labels and valid (B, T). Negative sampling: t = 0 is the predicted
    word (label 1), the rest its negatives (label 0; a negative equal to the predicted word is not
    valid, as word2vec and gensim skip it). Hierarchical softmax: the inner nodes of the predicted
    word's Huffman path, label 1 - code (word2vec.c's), valid up to the path's length.
    max_score: a term with |h.u_t| at or above it keeps its value but passes no gradient (word2vec.c's
    hierarchical softmax skips such a node's update).
    """
    scores = torch.bmm(rows, hidden.unsqueeze(-1)).squeeze(-1)
    terms = F.logsigmoid(scores * (2 * labels - 1))
    if max_score is not None:
        terms = torch.where(scores.detach().abs() < max_score, terms, terms.detach())
    return -(terms * valid).sum(-1)


def cbow_hidden(context_rows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the context rows (B, 2W, D) -> (B, D), with word2vec's update rule.

    The forward value is the mean. The backward pass hands the full error to
    every context word, not error / count: that is what word2vec.c and gensim
    (cbow_mean=1) do, and matching it keeps CBOW's quality and learning rate on par.
    """
    weights = mask.to(context_rows.dtype).unsqueeze(-1)
    summed = (context_rows * weights).sum(1)
    count = weights.sum(1).clamp_min(1.0)
    return summed.detach() / count + (summed - summed.detach())


# -- window expansion: numpy on the host, torch on the device ---------------------------------------

def skipgram_pairs(chunk: Chunk, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(centres, contexts) int64 arrays: every context within each centre's reduced window.

    Pairs are ordered by centre position, so a batch holds consecutive text, as in word2vec.
    """
    n = len(chunk.ids)
    is_centre = chunk.is_centre()
    centre_pos, context_pos = [], []
    for offset in range(1, window + 1):  # a loop over offsets (<= window), not over words
        left = np.arange(offset, n)
        ok = (chunk.window[left] >= offset) & (chunk.sentence[left] == chunk.sentence[left - offset]) \
            & is_centre[left]
        centre_pos.append(left[ok]); context_pos.append(left[ok] - offset)
        right = np.arange(0, n - offset)
        ok = (chunk.window[right] >= offset) & (chunk.sentence[right] == chunk.sentence[right + offset]) \
            & is_centre[right]
        centre_pos.append(right[ok]); context_pos.append(right[ok] + offset)
    centre_pos = np.concatenate(centre_pos) if centre_pos else np.zeros(0, np.int64)
    context_pos = np.concatenate(context_pos) if context_pos else np.zeros(0, np.int64)
    order = np.argsort(centre_pos, kind="stable")
    return chunk.ids[centre_pos[order]], chunk.ids[context_pos[order]]


def cbow_windows(chunk: Chunk, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centres (m,), contexts (m, 2*window) int64, mask (m, 2*window) bool) for centres with >= 1 context."""
    n = len(chunk.ids)
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    pos = np.arange(n)[:, None] + offsets[None, :]
    inside = (pos >= 0) & (pos < n)
    pos_clipped = np.clip(pos, 0, max(n - 1, 0))
    mask = inside & (np.abs(offsets)[None, :] <= chunk.window[:, None]) \
        & (chunk.sentence[pos_clipped] == chunk.sentence[:, None])
    has_context = mask.any(axis=1) & chunk.is_centre()
    contexts = np.where(mask, chunk.ids[pos_clipped], 0)
    return chunk.ids[has_context], contexts[has_context], mask[has_context]


def window_grid(ids: torch.Tensor, sentence: torch.Tensor, reduced: torch.Tensor,
                window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(context ids (n, 2W), valid (n, 2W) bool) for every centre of a chunk, on its device.

    A context is valid inside the centre's reduced window and the same sentence.
    """
    n = ids.shape[0]
    offsets = torch.cat([torch.arange(-window, 0, device=ids.device), torch.arange(1, window + 1, device=ids.device)])
    pos = torch.arange(n, device=ids.device).unsqueeze(1) + offsets.unsqueeze(0)
    inside = (pos >= 0) & (pos < n)
    pos = pos.clamp(0, max(n - 1, 0))
    valid = inside & (offsets.abs().unsqueeze(0) <= reduced.unsqueeze(1)) & (sentence[pos] == sentence.unsqueeze(1))
    return ids[pos], valid


# -- the objectives ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Objective(ABC):
    """A word2vec objective: `window` is the largest window, `negative` the negatives per example;
    `tree`: None for negative sampling, the vocabulary's Huffman tree for hierarchical softmax."""

    window: int = 5
    negative: int = 5
    tree: HuffmanTree | None = field(default=None, compare=False, repr=False)

    name: ClassVar[str]
    predicts_centre: ClassVar[bool]  # the context predicts the centre (CBOW), not the other way round

    @property
    def loss_name(self) -> str:
        """model.loss: "ns" (negative sampling) or "hs" (hierarchical softmax)."""
        return "ns" if self.tree is None else "hs"

    @abstractmethod
    def examples(self, chunk: Chunk) -> dict[str, np.ndarray]:
        """A chunk's examples on the host, in text order: the fields of a Batch, less the negatives."""

    @abstractmethod
    def select(self, ids: torch.Tensor, contexts: torch.Tensor,
               valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(centres, contexts, mask or None): the examples of a window grid, in text order."""

    def device_examples(self, chunk: Chunk, device: torch.device) -> tuple[torch.Tensor, torch.Tensor,
                                                                          torch.Tensor | None]:
        """The examples of `examples`, built on `device` in torch: (centres, contexts, mask or None)."""
        ids, sentence, reduced = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(device, non_blocking=True)
                                  for a in (chunk.ids, chunk.sentence, chunk.window))
        contexts, valid = window_grid(ids, sentence, reduced, self.window)
        valid[:chunk.centre_lo] = False  # context carried across a cut: trained in the chunk before
        valid[chunk.centre_hi:] = False  # waits for its right context in the next chunk
        return self.select(ids, contexts, valid)

    @abstractmethod
    def input_ids(self, batch: Batch) -> torch.Tensor:
        """The input-table ids the batch reads, in their batch shape."""

    @abstractmethod
    def predicted(self, centres: torch.Tensor, contexts: torch.Tensor) -> torch.Tensor:
        """(B,) the word each example predicts."""

    def lookups(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(input table ids, output table ids), flat: every row the batch's loss reads."""
        targets, _, _ = self.output_targets(self.predicted(batch.centres, batch.contexts), batch.negatives)
        return self.input_ids(batch).reshape(-1), targets.reshape(-1)

    @abstractmethod
    def input_rows(self) -> int:
        """Input rows one example reads, at most."""

    def rows_per_example(self) -> tuple[int, int]:
        """(input rows, output rows) one example reads, at most."""
        return self.input_rows(), 1 + self.negative if self.tree is None else self.tree.max_length

    @abstractmethod
    def hidden(self, backend, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden (B, D) from the input table, the predicted word of each example (B,))."""

    def output_targets(self, positive: torch.Tensor, negatives: torch.Tensor,
                       dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(output rows (B, T), labels (B, T), valid (B, T)) each example's hidden vector is scored against:
        the predicted word and its negatives, or the inner nodes on its Huffman path (negatives unused)."""
        if self.tree is None:
            return sampled_targets(positive, negatives, dtype)
        return tree_targets(positive, *self.tree.on(positive.device), dtype)

    def row_lr_scale(self, targets: torch.Tensor, rows: int | None = None) -> torch.Tensor | None:
        """(B, T) learning-rate scale of each target's output row (inner-node subsampling, w2v/huffman.py),
        or None where every row learns at lr. rows: the output table's (default: the vocabulary's)."""
        if self.tree is None or self.tree.node_lr is None:
            return None
        return self.tree.node_lr_on(targets.device, rows or len(self.tree.lengths))[targets]

    def loss(self, backend, batch: Batch) -> torch.Tensor:
        """(B,) per-example loss through the backend's lookup_input / lookup_output (autograd)."""
        hidden, positive = self.hidden(backend, batch)
        targets, labels, valid = self.output_targets(positive, batch.negatives, hidden.dtype)
        rows = backend.lookup_output(targets)
        scale = self.row_lr_scale(targets)
        if scale is not None:
            # The same values forward, but the output rows' gradient is scaled (the hidden vector's is not),
            # as the closed-form steps and kernels scale each inner node's update.
            scale = scale.unsqueeze(2).to(rows.dtype)
            rows = rows * scale + rows.detach() * (1 - scale)
        return logistic_loss(hidden, rows, labels, valid, self.max_score)

    @property
    def max_score(self) -> float | None:
        """|score| from which a target is not updated: HS_MAX_SCORE with hierarchical softmax, else None."""
        return None if self.tree is None else HS_MAX_SCORE

    def closed_form_step(self, in_table: torch.Tensor, out_table: torch.Tensor, centres: torch.Tensor,
                         contexts: torch.Tensor, mask: torch.Tensor | None, negatives: torch.Tensor,
                         lr: torch.Tensor | float) -> torch.Tensor:
        """The summed loss's SGD step on the tables in place, gradients in closed form
        (w2v/kernels/sgns_torch.py); returns the summed loss."""
        targets, labels, valid = self.output_targets(self.predicted(centres, contexts), negatives, in_table.dtype)
        return self.model_step(in_table, out_table, centres, contexts, mask, targets, labels, valid, lr,
                               self.row_lr_scale(targets, out_table.shape[0]))

    @abstractmethod
    def model_step(self, in_table, out_table, centres, contexts, mask, targets, labels, valid, lr,
                   row_scale=None) -> torch.Tensor:
        """The model's closed-form step against given output targets (row_scale: Objective.row_lr_scale)."""

    @abstractmethod
    def triton_examples(self, in_table: torch.Tensor, out_table: torch.Tensor, centres: torch.Tensor,
                        contexts: torch.Tensor, mask: torch.Tensor | None, negatives: torch.Tensor,
                        lrs: torch.Tensor) -> torch.Tensor:
        """word2vec's per-example updates in one Triton launch (w2v/kernels/sgns_triton.py); the summed loss."""

    def triton_tree(self, device: torch.device, rows: int) -> tuple[torch.Tensor, ...] | None:
        """The Huffman tree as the Triton kernels read it: (codes int8, points int64, lengths int64, learning-rate
        scale float32 of each of the output table's `rows`) or None."""
        if self.tree is None:
            return None
        codes, points, lengths = self.tree.on(device)
        return codes.to(torch.int8).contiguous(), points, lengths, self.tree.node_lr_on(device, rows)


class SkipGram(Objective):
    """Each centre's input row predicts every context word in its reduced window."""

    name = "skipgram"
    predicts_centre = False

    def examples(self, chunk):
        centres, contexts = skipgram_pairs(chunk, self.window)
        return {"centres": centres, "contexts": contexts}

    def select(self, ids, contexts, valid):
        # one pair per valid cell, in text order (row-major)
        return ids.unsqueeze(1).expand_as(contexts)[valid], contexts[valid], None

    def input_ids(self, batch):
        return batch.centres

    def predicted(self, centres, contexts):
        return contexts

    def input_rows(self):
        return 1

    def hidden(self, backend, batch):
        return backend.lookup_input(batch.centres), batch.contexts

    def model_step(self, in_table, out_table, centres, contexts, mask, targets, labels, valid, lr, row_scale=None):
        return skipgram_step(in_table, out_table, centres, targets, labels, valid, lr, self.max_score, row_scale)

    def triton_examples(self, in_table, out_table, centres, contexts, mask, negatives, lrs):
        from .kernels import sgns_triton  # imports triton: only where a Triton kernel runs

        tree = self.triton_tree(in_table.device, out_table.shape[0])
        if tree is not None:
            return sgns_triton.skipgram_hs_examples(in_table, out_table, centres, contexts, *tree, lrs)
        return sgns_triton.skipgram_examples(in_table, out_table, centres, contexts, negatives, lrs)


class CBOW(Objective):
    """The mean of the context rows predicts the centre word (gensim's cbow_mean=1)."""

    name = "cbow"
    predicts_centre = True

    def examples(self, chunk):
        centres, contexts, mask = cbow_windows(chunk, self.window)
        return {"centres": centres, "contexts": contexts, "mask": mask}

    def select(self, ids, contexts, valid):
        keep = valid.any(1)  # one window per centre with at least one context
        return ids[keep], contexts[keep], valid[keep]

    def input_ids(self, batch):
        return batch.contexts

    def predicted(self, centres, contexts):
        return centres

    def input_rows(self):
        return 2 * self.window

    def hidden(self, backend, batch):
        return cbow_hidden(backend.lookup_input(batch.contexts), batch.mask), batch.centres

    def model_step(self, in_table, out_table, centres, contexts, mask, targets, labels, valid, lr, row_scale=None):
        return cbow_step(in_table, out_table, contexts, mask, targets, labels, valid, lr, self.max_score, row_scale)

    def triton_examples(self, in_table, out_table, centres, contexts, mask, negatives, lrs):
        from .kernels import sgns_triton  # imports triton: only where a Triton kernel runs

        tree = self.triton_tree(in_table.device, out_table.shape[0])
        if tree is not None:
            return sgns_triton.cbow_hs_examples(in_table, out_table, contexts, mask, centres, *tree, lrs)
        return sgns_triton.cbow_examples(in_table, out_table, contexts, mask, centres, negatives, lrs)


OBJECTIVES: dict[str, type[Objective]] = {cls.name: cls for cls in (SkipGram, CBOW)}


def make_objective(name: str, window: int = 5, negative: int = 5, loss: str = "ns",
                   counts: np.ndarray | None = None, node_sample: float = 0.0) -> Objective:
    """The objective `name` (model.name: skipgram | cbow) with its window, and its loss (model.loss):
    "ns" with `negative` negatives, or "hs" over the Huffman tree of `counts` (then no negatives: 0),
    its inner nodes subsampled at node_sample (w2v/huffman.py; 0: none)."""
    if name not in OBJECTIVES:
        raise KeyError(f"unknown model {name!r}; valid: {', '.join(sorted(OBJECTIVES))}")
    if loss not in LOSSES:
        raise KeyError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
    if loss == "ns":
        return OBJECTIVES[name](window=window, negative=negative)
    if counts is None:
        raise ValueError("hierarchical softmax needs the vocabulary's counts for its Huffman tree")
    return OBJECTIVES[name](window=window, negative=0, tree=build_huffman(counts, node_sample))
