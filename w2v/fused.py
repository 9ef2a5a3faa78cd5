"""backend=fused: skip-gram / CBOW steps written out by hand, without autograd.

Two paths, the same objective as w2v/model.py:
- CPU with a C compiler: w2v/kernels/sgns.c trains each chunk word2vec.c-style, one
  example at a time in text order, threads splitting the chunk (Hogwild). Batch size
  plays no part there, so quality does not depend on it.
- CUDA with Triton (w2v/kernels/sgns_triton.py): the chunk is expanded into examples
  and negatives on the device, then one kernel launch trains them word2vec-style, one
  example at a time per GPU program, Hogwild across programs. Like the C kernel, its
  result does not depend on a batch size. Untimed so far: no GPU was lent to the
  sessions that wrote it (its tests run it in Triton's CPU interpreter).
- Otherwise (CUDA without Triton or with W2V_TRITON=0, or no C compiler): torch ops on
  the device. Each batch gathers its rows, computes the gradients in closed form and
  applies them with index_add_ (updates to a row that recurs in a batch are summed, as
  with autograd). On CUDA the step is torch.compile'd when that works (W2V_COMPILE=0
  turns it off).
The trainer hands whole chunks to `train_chunk` (`expands_chunks = True`) and calls
`prepare` once with the word counts, which the noise distribution needs.
"""
from __future__ import annotations

import logging
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .batches import Chunk, NoiseSampler, noise_distribution
from .kernels import MAX_NEGATIVE, load_sgns
from .model import Batch

log = logging.getLogger("w2v")

CPU_CHUNK_TOKENS = 1 << 18  # small enough that preparing the next chunk overlaps training this one
# On an accelerator: fewer, larger transfers and launches. A chunk of 2M words expands to about
# 9M skip-gram pairs, whose ids and negatives take about 0.6 GB of device memory at the peak.
DEVICE_CHUNK_TOKENS = 1 << 21


def negative_sampling_update(hidden: torch.Tensor, rows: torch.Tensor, valid: torch.Tensor,
                             lr: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Closed-form SGNS gradients, already scaled by -lr (so they are added).

    hidden (B, D) input vectors; rows (B, 1+K, D) output rows, column 0 the target;
    valid (B, 1+K) float, 0 where a negative equals the target (skipped, as gensim does).
    Returns (hidden update (B, D), row updates (B, 1+K, D), summed loss ()).
    d loss / d score = sigmoid(score) - label, so the step is lr * (label - sigmoid(score)).
    """
    scores = torch.bmm(rows, hidden.unsqueeze(2)).squeeze(2)
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    g = (labels - torch.sigmoid(scores)) * valid * lr
    hidden_update = torch.bmm(g.unsqueeze(1), rows).squeeze(1)
    row_updates = g.unsqueeze(2) * hidden.unsqueeze(1)
    # -log s(x) for the target, -log s(-x) for each valid negative.
    loss = -(F.logsigmoid(scores[:, 0]).sum() + (F.logsigmoid(-scores[:, 1:]) * valid[:, 1:]).sum())
    return hidden_update, row_updates, loss


def _targets_and_valid(positive: torch.Tensor, negatives: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    targets = torch.cat([positive.unsqueeze(1), negatives], dim=1)
    valid = torch.cat([torch.ones_like(positive, dtype=torch.bool).unsqueeze(1),
                       negatives != positive.unsqueeze(1)], dim=1).to(dtype)
    return targets, valid


def skipgram_step(in_table: torch.Tensor, out_table: torch.Tensor, centres: torch.Tensor, contexts: torch.Tensor,
                  negatives: torch.Tensor, lr: torch.Tensor | float) -> torch.Tensor:
    """One summed-gradient SGD step in place; centres (B,), contexts (B,), negatives (B, K). Returns the loss sum."""
    targets, valid = _targets_and_valid(contexts, negatives, in_table.dtype)
    hidden, rows = in_table[centres], out_table[targets]
    hidden_update, row_updates, loss = negative_sampling_update(hidden, rows, valid, lr)
    out_table.index_add_(0, targets.reshape(-1), row_updates.reshape(-1, out_table.shape[1]))
    in_table.index_add_(0, centres, hidden_update)
    return loss


def cbow_step(in_table: torch.Tensor, out_table: torch.Tensor, contexts: torch.Tensor, mask: torch.Tensor,
              centres: torch.Tensor, negatives: torch.Tensor, lr: torch.Tensor | float) -> torch.Tensor:
    """CBOW step in place: the context mean (B, 2W) predicts centres (B,); every context row gets the full error."""
    weights = mask.to(in_table.dtype).unsqueeze(2)
    hidden = (in_table[contexts] * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    targets, valid = _targets_and_valid(centres, negatives, in_table.dtype)
    rows = out_table[targets]
    hidden_update, row_updates, loss = negative_sampling_update(hidden, rows, valid, lr)
    out_table.index_add_(0, targets.reshape(-1), row_updates.reshape(-1, out_table.shape[1]))
    in_table.index_add_(0, contexts.reshape(-1), (hidden_update.unsqueeze(1) * weights).reshape(-1, in_table.shape[1]))
    return loss


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


class _MaybeCompiled:
    """torch.compile a step on CUDA; on any compile failure, warn once and stay eager."""

    def __init__(self, fn, device: torch.device):
        self.eager, self.fn = fn, fn
        if device.type == "cuda" and os.environ.get("W2V_COMPILE", "1") != "0" and hasattr(torch, "compile"):
            self.fn = torch.compile(fn, dynamic=False)

    def __call__(self, *args):
        if self.fn is self.eager:
            return self.eager(*args)
        try:
            return self.fn(*args)
        except Exception as exc:  # inductor missing a toolchain, an unsupported op, ...
            log.warning(f"torch.compile failed ({type(exc).__name__}); the fused step runs eagerly")
            self.fn = self.eager
            return self.eager(*args)


MASK64 = (1 << 64) - 1


def chunk_seed(run_seed: int, chunk: int) -> int:
    """The C kernel's random seed for one chunk: splitmix64's output mix of (run_seed, chunk).

    Mixed, not just scaled: the kernel's generator advances its state by 0x9E3779B97F4A7C15 per
    draw, so seeds that differ by a multiple of that constant (as `(a + chunk) * constant` did)
    give every chunk the previous chunk's negatives shifted by one draw.
    """
    z = (run_seed * 1_000_003 + chunk + 1) * 0x9E3779B97F4A7C15 & MASK64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & MASK64
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & MASK64
    return z ^ (z >> 31)


class FusedBackend(nn.Module):
    """The EmbeddingBackend interface (w2v/backends.py), without autograd or an optimiser.

    A plain nn.Module rather than an EmbeddingBackend subclass, so that backends.py can
    import it at the top without an import cycle.
    """

    name = "fused"
    sparse_gradients = False
    expands_chunks = True  # the trainer hands over subsampled chunks; windows are built here

    def __init__(self, input_init: torch.Tensor, output_init: torch.Tensor):
        super().__init__()
        self.register_buffer("input_table", input_init.detach().clone().contiguous())
        self.register_buffer("output_table", output_init.detach().clone().contiguous())
        self.batch_size = 1024
        self.use_c = True  # False forces the torch path on the CPU too (tests, comparisons)
        self.seed = 0
        self._chunks_done = 0
        self._counts = None
        self._alias = None  # (threshold, alias) for the C kernel, built on first use
        self._said_negative = False  # model.negative above the C kernel's limit: warned once
        self._sampler = None  # NoiseSampler for the torch path
        self._generator = None
        self._steps = {}
        self._triton_failed = False  # set after a Triton kernel fails; the torch steps take over
        self.row_marks = None  # (input, output) uint8 per row once track_rows() is called: 1 = written since cleared

    @classmethod
    def create(cls, input_init: torch.Tensor, output_init: torch.Tensor, device: torch.device):
        return cls(input_init, output_init).to(device)

    # -- tables -----------------------------------------------------------------------
    def input_weights(self):
        return self.input_table

    def output_weights(self):
        return self.output_table

    def lookup_input(self, ids):
        return self.input_table[ids]

    def lookup_output(self, ids):
        return self.output_table[ids]

    def track_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """From now on, set a byte to 1 for every table row that training writes (every path does: the C
        kernel as it writes, the Triton and torch paths from their examples). The table sync reads and
        clears them (w2v/table_sync.py), so that it compares only those rows with their last synced copy."""
        self.row_marks = tuple(torch.zeros(t.shape[0], dtype=torch.uint8, device=t.device)
                               for t in (self.input_table, self.output_table))
        return self.row_marks

    def _mark(self, model_name: str, centres: torch.Tensor, contexts: torch.Tensor, negatives: torch.Tensor) -> None:
        """Mark the rows that examples may write (a superset is harmless: the sync keeps the rows that changed).
        Skip-gram writes its centres' input rows, CBOW its contexts'; both write targets' and negatives' output rows."""
        if self.row_marks is not None:
            inputs, targets = (centres, contexts) if model_name == "skipgram" else (contexts, centres)
            self.row_marks[0][inputs.reshape(-1)] = 1
            self.row_marks[1][targets.reshape(-1)] = 1
            self.row_marks[1][negatives.reshape(-1)] = 1

    @property
    def kernel(self):
        """The C kernel when the tables live on the CPU and one could be built, else None."""
        if not self.use_c or self.input_table.device.type != "cpu" or self.input_table.dtype != torch.float32:
            return None
        return load_sgns()

    @property
    def chunk_tokens(self) -> int:
        return CPU_CHUNK_TOKENS if self.input_table.device.type == "cpu" else DEVICE_CHUNK_TOKENS

    def prepare(self, counts: np.ndarray, batch_size: int = 1024, seed: int = 1) -> None:
        """Set the noise distribution (unigram^0.75 of counts), the torch path's batch size and the seed."""
        self.batch_size, self.seed, self._chunks_done = batch_size, seed, 0
        device = self.input_table.device
        self._counts, self._alias = np.asarray(counts), None
        self._sampler = NoiseSampler(counts, device)
        self._generator = torch.Generator(device=device).manual_seed(seed)

    def loop_state(self) -> dict:
        """What a checkpoint needs to continue the same random streams: the chunk counter that
        seeds the C kernel's per-chunk negatives, and the torch path's generator."""
        return {"chunks_done": self._chunks_done,
                "generator": None if self._generator is None else self._generator.get_state()}

    def load_loop_state(self, state: dict) -> None:
        """Undo prepare()'s fresh start after a resume (call after prepare)."""
        self._chunks_done = int(state["chunks_done"])
        if state.get("generator") is not None and self._generator is not None:
            self._generator.set_state(state["generator"])

    # -- training ---------------------------------------------------------------------
    def train_step(self, model_name: str, batch: Batch, lr: float) -> torch.Tensor:
        """One summed-gradient step on given examples (identical to autograd's SGD step)."""
        with torch.no_grad():
            self._mark(model_name, batch.centres, batch.contexts, batch.negatives)
            if model_name == "skipgram":
                return skipgram_step(self.input_table, self.output_table, batch.centres, batch.contexts,
                                     batch.negatives, lr)
            return cbow_step(self.input_table, self.output_table, batch.contexts, batch.mask, batch.centres,
                             batch.negatives, lr)

    def train_chunk(self, model_name: str, window: int, negative: int, chunk: Chunk, examples: dict,
                    lr_from: float, lr_to: float) -> tuple[float | torch.Tensor, int]:
        """Train every centre of a subsampled chunk, lr decaying linearly from lr_from to lr_to.

        Returns (summed loss, examples trained): pairs for skip-gram, windows for CBOW.
        """
        if self._sampler is None:
            raise RuntimeError("FusedBackend.prepare(counts=...) must be called before training")
        self._chunks_done += 1
        kernel = self.kernel
        if kernel is not None and negative > MAX_NEGATIVE and not self._said_negative:
            log.warning(f"model.negative={negative} is more than the C kernel's {MAX_NEGATIVE}: backend=fused "
                        f"trains with its batched torch steps instead (several times slower; updates summed over "
                        f"train.batch_size examples, as backend=dense does)")
            self._said_negative = True
        if kernel is not None and negative <= MAX_NEGATIVE:
            if self._alias is None:
                self._alias = kernel.build_alias(noise_distribution(self._counts))
            seed = chunk_seed(self.seed, self._chunks_done)
            return kernel.train_chunk(model_name == "cbow", self.input_table, self.output_table, chunk.ids,
                                      chunk.sentence, chunk.window, negative, self._alias, lr_from, lr_to,
                                      seed, torch.get_num_threads(), centres=(chunk.centre_lo, chunk.centre_hi),
                                      marks=self.row_marks)
        if self.input_table.device.type != "cpu":
            with torch.no_grad():
                return self._train_chunk_torch(model_name, window, negative, chunk, lr_from, lr_to)
        # On the CPU a step is a few dozen ops on batch-sized tensors: extra intra-op threads only
        # spin and wait (8x slower with 2 threads on a busy 2-core machine, measured), so use one.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.no_grad():
                return self._train_chunk_torch(model_name, window, negative, chunk, lr_from, lr_to)
        finally:
            torch.set_num_threads(threads)

    def _use_triton(self, device: torch.device) -> bool:
        """The Triton kernels where they run (CUDA, or the CPU under TRITON_INTERPRET=1) unless
        W2V_TRITON=0 asks for the batched torch steps; float32 tables only."""
        if (os.environ.get("W2V_TRITON", "1") == "0" or self._triton_failed
                or self.input_table.dtype != torch.float32):
            return False
        from .kernels import sgns_triton  # imports triton, so only here: CPU runs with the C kernel never pay

        return sgns_triton.available(device)

    def _step(self, model_name: str):
        if model_name not in self._steps:
            fn = skipgram_step if model_name == "skipgram" else cbow_step
            self._steps[model_name] = _MaybeCompiled(fn, self.input_table.device)
        return self._steps[model_name]

    def _train_chunk_torch(self, model_name: str, window: int, negative: int, chunk: Chunk,
                           lr_from: float, lr_to: float) -> tuple[torch.Tensor, int]:
        device = self.input_table.device
        ids, sentence, reduced = (torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(device, non_blocking=True)
                                  for a in (chunk.ids, chunk.sentence, chunk.window))
        contexts, valid = window_grid(ids, sentence, reduced, window)
        valid[:chunk.centre_lo] = False  # context carried across a cut: trained in the chunk before
        valid[chunk.centre_hi:] = False  # waits for its right context in the next chunk
        if model_name == "skipgram":  # one pair per valid cell, in text order (row-major)
            centres = ids.unsqueeze(1).expand_as(contexts)[valid]
            contexts, mask = contexts[valid], None
        else:  # one window per centre with at least one context
            keep = valid.any(1)
            centres, contexts, mask = ids[keep], contexts[keep], valid[keep]
        n = int(centres.shape[0])  # one host sync per chunk, none per step
        loss = torch.zeros((), device=device, dtype=torch.float64)
        if n == 0:
            return loss, 0
        negatives = self._sampler.sample((n, negative), self._generator)
        self._mark(model_name, centres, contexts, negatives)
        if self._use_triton(device):
            from .kernels import sgns_triton

            # word2vec's per-example updates, Hogwild across GPU programs: one launch per chunk,
            # each example with its own point on the chunk's linear lr decay.
            lrs = torch.linspace(lr_from, lr_to, n + 1, device=device, dtype=torch.float32)[:-1]
            try:
                if model_name == "skipgram":
                    return sgns_triton.skipgram_examples(self.input_table, self.output_table, centres, contexts,
                                                         negatives, lrs), n
                return sgns_triton.cbow_examples(self.input_table, self.output_table, contexts, mask, centres,
                                                 negatives, lrs), n
            except Exception as exc:  # Triton's compiler or toolchain missing on this machine, ...
                # A failed compile happens before the launch, so the tables are untouched: the
                # torch steps below train this chunk instead, and every later one.
                self._triton_failed = True
                first_line = (str(exc).strip().splitlines() or [""])[0][:200]
                log.warning(f"the Triton kernel failed ({type(exc).__name__}: {first_line}); the fused backend "
                            "uses batched torch steps from here on (W2V_TRITON=0 skips the attempt)")
        n_steps = (n + self.batch_size - 1) // self.batch_size
        lrs = torch.linspace(lr_from, lr_to, n_steps + 1, device=device, dtype=self.input_table.dtype)[:-1]
        step = self._step(model_name)
        for i in range(n_steps):
            s = slice(i * self.batch_size, min(n, (i + 1) * self.batch_size))
            # A compiled step is specialised to full batches; the chunk's shorter tail runs eagerly
            # rather than compiling again for every new tail length.
            fn = step if s.stop - s.start == self.batch_size else step.eager
            if model_name == "skipgram":
                loss += fn(self.input_table, self.output_table, centres[s], contexts[s], negatives[s], lrs[i])
            else:
                loss += fn(self.input_table, self.output_table, contexts[s], mask[s], centres[s], negatives[s], lrs[i])
        return loss, n
