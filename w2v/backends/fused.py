"""backend=fused: skip-gram / CBOW steps written out by hand, without autograd.

Three paths, the same objective as w2v/objective.py:
- CPU with a C compiler: w2v/kernels/sgns.c trains each chunk word2vec.c-style, one
  example at a time in text order, threads splitting the chunk (Hogwild). Batch size
  plays no part there, so quality does not depend on it.
- CUDA with Triton (w2v/kernels/sgns_triton.py): the chunk is expanded into examples
  and negatives on the device, then one kernel launch trains them word2vec-style, one
  example at a time per GPU program, Hogwild across programs. Like the C kernel, its
  result does not depend on a batch size. Its tests run it in Triton's CPU interpreter.
- Otherwise (CUDA without Triton or with backend.triton=false, or no C compiler): torch ops on
  the device. Each batch gathers its rows, computes the gradients in closed form and
  applies them with index_add_ (updates to a row that recurs in a batch are summed, as
  with autograd). On CUDA the step is torch.compile'd when that works (backend.compile=false
  turns it off). The steps are in w2v/kernels/sgns_torch.py; backend.kernel=torch takes this path on the CPU too.
The trainer hands whole chunks to `train_chunk` (step_unit "chunk") and calls
`prepare` once with the word counts, which the noise distribution needs.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from ..batches import Chunk, NoiseSampler, noise_distribution
from ..config import BackendConfig, W2VError
from ..huge_pages import table_copy
from ..kernels import MAX_NEGATIVE, load_sgns
from ..objective import Batch, Objective
from .base import Backend
from .registry import register

log = logging.getLogger("w2v")

CPU_CHUNK_TOKENS = 1 << 18  # small enough that preparing the next chunk overlaps training this one
# On an accelerator: fewer, larger transfers and launches. A chunk of 2M words expands to about
# 9M skip-gram pairs, whose ids and negatives take about 0.6 GB of device memory at the peak.
DEVICE_CHUNK_TOKENS = 1 << 21


class _MaybeCompiled:
    """torch.compile a step on CUDA; on any compile failure, warn once and stay eager."""

    def __init__(self, fn, device: torch.device, compile: bool = True):
        self.eager, self.fn = fn, fn
        if device.type == "cuda" and compile and hasattr(torch, "compile"):
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


def fused_chunk_bytes(chunk_tokens: int, window: int, negative: int, on_cpu: bool) -> int:
    """Working memory of backend=fused for one chunk, at its peak.

    CPU: the host arrays of a chunk (up to two chunk sizes when a cut sentence is carried), for
    the chunk in training and the next one being prepared: ids, sentence, window, the raw
    slice, its sentence numbers and keep draws, 8 bytes each.
    Accelerator: the chunk expanded on the device: the (n, 2 * window) grid of positions,
    context ids and masks (8 + 8 + 1 bytes a cell, plus a bool), and for every cell that
    can be a pair, its centre and context (16 bytes), negatives with their float64 draws
    (16 bytes each) and a float32 learning rate: an upper bound, as not every cell is a pair.
    """
    if on_cpu:
        return 2 * 2 * chunk_tokens * 6 * 8
    cells = chunk_tokens * 2 * window
    return cells * (8 + 8 + 2 + 16 + 16 * negative + 4)


@register("fused")
class FusedBackend(Backend):
    """Plain tensors trained in place by hand-written steps: no autograd, no optimiser."""

    step_unit = "chunk"
    losses = ("ns", "hs")  # the C, Triton and torch steps each have a hierarchical-softmax variant
    data_parallel = "tables"  # no gradients: the ranks train alone and w2v/table_sync.py combines their rows
    updates_in_place = True

    def __init__(self, input_init: torch.Tensor, output_init: torch.Tensor, config: BackendConfig | None = None):
        super().__init__()
        config = config or BackendConfig(name="fused")
        self.register_buffer("input_table", table_copy(input_init.detach()))
        self.register_buffer("output_table", table_copy(output_init.detach()))
        self.batch_size = 1024
        self.use_c = config.kernel != "torch"  # False forces the torch path on the CPU too
        self.use_triton = config.triton
        self.compile = config.compile
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
    def create(cls, input_init: torch.Tensor, output_init: torch.Tensor, device: torch.device,
               config: BackendConfig | None = None):
        if config is not None and config.kernel == "c":
            if device.type != "cpu":
                raise W2VError(f"backend.kernel=c runs on the CPU only, but the device is {device}; "
                               f"use backend.kernel=auto or train.device=cpu")
            if load_sgns() is None:
                raise W2VError("backend.kernel=c but the C kernel could not be built here (see the warning above); "
                               "use backend.kernel=auto or torch")
        return cls(input_init, output_init, config).to(device)

    @classmethod
    def estimate_bytes(cls, vocab_size, dim, objective, batch_size, device_type="cpu", world_size=1,
                       sync_method="auto"):
        table = vocab_size * dim * 4
        on_cpu = device_type == "cpu"
        chunk = fused_chunk_bytes(CPU_CHUNK_TOKENS if on_cpu else DEVICE_CHUNK_TOKENS, objective.window,
                                  objective.negative, on_cpu)
        sync = 0
        if world_size > 1:  # the copy of both tables as they were at the last sync, and the exchange's buffers
            from ..table_sync import sync_peak_bytes

            sync = sync_peak_bytes(vocab_size, dim, world_size, sync_method)
        return {"tables": 2 * table, "batch": chunk, "copies": 2 * table if on_cpu else 0, "sync": sync}

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

    def _mark(self, objective: Objective, batch: Batch) -> None:
        """Mark the rows that examples may write: every row their loss reads (objective.lookups; a superset,
        such as CBOW's masked cells, is harmless: the sync keeps only the rows that changed)."""
        if self.row_marks is not None:
            inputs, outputs = objective.lookups(batch)
            self.row_marks[0][inputs] = 1
            self.row_marks[1][outputs] = 1

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
    def train_step(self, objective: Objective, batch: Batch, lr: float) -> torch.Tensor:
        """One summed-gradient step on given examples (identical to autograd's SGD step)."""
        with torch.no_grad():
            self._mark(objective, batch)
            return objective.closed_form_step(self.input_table, self.output_table, batch.centres, batch.contexts,
                                              batch.mask, batch.negatives, lr)

    def expand(self, objective: Objective, chunk: Chunk) -> Chunk:
        return chunk  # the windows are built in the kernel, or on the device

    def plan(self, objective: Objective, chunk: Chunk, generator: torch.Generator) -> list[Chunk]:
        return [chunk] if len(chunk.ids) else []  # one step a chunk; negatives from its own streams

    def step(self, objective: Objective, chunk: Chunk | None, lr_from: float, lr_to: float):
        if chunk is None:  # under torchrun a rank may run out before the others
            return 0.0, 0
        return self.train_chunk(objective, chunk, lr_from, lr_to)

    def train_chunk(self, objective: Objective, chunk: Chunk, lr_from: float,
                    lr_to: float) -> tuple[float | torch.Tensor, int]:
        """Train every centre of a subsampled chunk, lr decaying linearly from lr_from to lr_to.

        Returns (summed loss, examples trained): pairs for skip-gram, windows for CBOW.
        """
        negative = objective.negative
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
            return kernel.train_chunk(objective.predicts_centre, self.input_table, self.output_table, chunk.ids,
                                      chunk.sentence, chunk.window, negative, self._alias, lr_from, lr_to,
                                      seed, torch.get_num_threads(), centres=(chunk.centre_lo, chunk.centre_hi),
                                      marks=self.row_marks, tree=objective.tree)
        # The C kernel checks the ids itself; the Triton kernels and torch ops do not (an id past the
        # table is a silent out-of-bounds write on a GPU), so the host checks the chunk once here.
        if len(chunk.ids) and (int(chunk.ids.min()) < 0 or int(chunk.ids.max()) >= self.input_table.shape[0]):
            raise ValueError(f"a token id in this chunk is outside the vocabulary of {self.input_table.shape[0]} "
                             f"words (a damaged token-id cache?); nothing was trained")
        if self.input_table.device.type != "cpu":
            with torch.no_grad():
                return self._train_chunk_torch(objective, chunk, lr_from, lr_to)
        # On the CPU a step is a few dozen ops on batch-sized tensors: extra intra-op threads only
        # spin and wait (8x slower with 2 threads on a busy 2-core machine, measured), so use one.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.no_grad():
                return self._train_chunk_torch(objective, chunk, lr_from, lr_to)
        finally:
            torch.set_num_threads(threads)

    def _use_triton(self, device: torch.device) -> bool:
        """The Triton kernels where they run (CUDA, or the CPU under TRITON_INTERPRET=1) unless
        backend.triton=false asks for the batched torch steps; float32 tables only."""
        if not self.use_triton or self._triton_failed or self.input_table.dtype != torch.float32:
            return False
        from ..kernels import sgns_triton  # imports triton, so only here: CPU runs with the C kernel never pay

        return sgns_triton.available(device)

    def _step(self, objective: Objective):
        fn = objective.closed_form_step
        if fn not in self._steps:
            self._steps[fn] = _MaybeCompiled(fn, self.input_table.device, self.compile)
        return self._steps[fn]

    def _train_chunk_torch(self, objective: Objective, chunk: Chunk, lr_from: float,
                           lr_to: float) -> tuple[torch.Tensor, int]:
        device = self.input_table.device
        centres, contexts, mask = objective.device_examples(chunk, device)
        n = int(centres.shape[0])  # one host sync per chunk, none per step
        loss = torch.zeros((), device=device, dtype=torch.float64)
        if n == 0:
            return loss, 0
        negatives = self._sampler.sample((n, objective.negative), self._generator)
        self._mark(objective, Batch(centres=centres, contexts=contexts, negatives=negatives, mask=mask))
        if self._use_triton(device):
            # word2vec's per-example updates, Hogwild across GPU programs: one launch per chunk,
            # each example with its own point on the chunk's linear lr decay.
            lrs = torch.linspace(lr_from, lr_to, n + 1, device=device, dtype=torch.float32)[:-1]
            try:
                return objective.triton_examples(self.input_table, self.output_table, centres, contexts, mask,
                                                 negatives, lrs), n
            except Exception as exc:  # Triton's compiler or toolchain missing on this machine, ...
                # A failed compile happens before the launch, so the tables are untouched: the
                # torch steps below train this chunk instead, and every later one.
                self._triton_failed = True
                first_line = (str(exc).strip().splitlines() or [""])[0][:200]
                log.warning(f"the Triton kernel failed ({type(exc).__name__}: {first_line}); the fused backend "
                            "uses batched torch steps from here on (backend.triton=false skips the attempt)")
        n_steps = (n + self.batch_size - 1) // self.batch_size
        lrs = torch.linspace(lr_from, lr_to, n_steps + 1, device=device, dtype=self.input_table.dtype)[:-1]
        step = self._step(objective)
        for i in range(n_steps):
            s = slice(i * self.batch_size, min(n, (i + 1) * self.batch_size))
            # A compiled step is specialised to full batches; the chunk's shorter tail runs eagerly
            # rather than compiling again for every new tail length.
            fn = step if s.stop - s.start == self.batch_size else step.eager
            loss += fn(self.input_table, self.output_table, centres[s], contexts[s], None if mask is None else mask[s],
                       negatives[s], lrs[i])
        return loss, n
