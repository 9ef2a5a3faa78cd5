"""The GPU kernels of backend=fused (w2v/kernels/sgns_triton.py), checked on the CPU.

Triton's interpreter (TRITON_INTERPRET=1) runs the kernels on CPU tensors, one program
after the other and each program's examples in order, so the result must equal autograd
SGD on batches of one example, in order: word2vec's update. Needs the `triton` package,
which CUDA builds of torch bring; on a CPU-only install these tests skip.

Triton reads TRITON_INTERPRET when it is first imported (its own tl.sigmoid & co. are
built then), so each check runs in a fresh interpreter process with the variable set;
the `check_*` functions are that process's work, the `test_*` functions start it.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import cbow_batch, hs_example, saturating, single, skipgram_batch, tables
from w2v.backends import DenseBackend
from w2v.objective import Batch, SkipGram, make_objective

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")

TESTS = Path(__file__).resolve().parent


def run_in_interpreter(check: str) -> None:
    """Run check_<name>() of this file in a new process under TRITON_INTERPRET=1; fail with its stderr."""
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_triton_kernel as t; t.check_{check}()"
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]


def _kernels():
    import w2v.kernels.sgns_triton as kernels

    torch.set_num_threads(1)
    assert kernels.available(torch.device("cpu")), "TRITON_INTERPRET=1 must be set before triton is imported"
    return kernels


def run_kernel(kernels, model: str, inp, out, batch: Batch, lr):
    if model == "skipgram":
        return kernels.skipgram_examples(inp, out, batch.centres, batch.contexts, batch.negatives, lr)
    return kernels.cbow_examples(inp, out, batch.contexts, batch.mask, batch.centres, batch.negatives, lr)


def check_kernel_equals_autograd_one_example_at_a_time():
    for model, make in [("skipgram", skipgram_batch), ("cbow", cbow_batch)]:
        _one_example_at_a_time(_kernels(), model, make)


def test_kernel_equals_autograd_one_example_at_a_time():
    run_in_interpreter("kernel_equals_autograd_one_example_at_a_time")


def _one_example_at_a_time(kernels, model, make):
    batch = make(n=40)  # more than one program's worth of examples
    inp, out = tables()
    dense = DenseBackend(inp, out)
    loss_dense = sum(float(dense.train_step(make_objective(model), single(batch, i), lr=0.3)) for i in range(batch.size))
    k_in, k_out = inp.clone(), out.clone()
    loss = run_kernel(kernels, model, k_in, k_out, batch, 0.3)
    assert float(loss) == pytest.approx(loss_dense, rel=1e-5)
    torch.testing.assert_close(k_in, dense.input_weights(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(k_out, dense.output_weights(), rtol=1e-5, atol=1e-6)
    assert not torch.equal(k_in, inp) and not torch.equal(k_out, out)


def test_hs_kernels_equal_autograd_one_example_at_a_time():
    run_in_interpreter("hs_kernels_equal_autograd_one_example_at_a_time")


def check_hs_kernels_equal_autograd_one_example_at_a_time():
    """Hierarchical softmax through the objective's triton_examples (the fused backend's call), against
    autograd SGD on batches of one, in order; with and without inner-node subsampling."""
    _kernels()
    for model, make, node_sample in [("skipgram", skipgram_batch, 0.0), ("cbow", cbow_batch, 0.0),
                                     ("skipgram", skipgram_batch, 0.05), ("cbow", cbow_batch, 0.05)]:
        objective, batch = hs_example(model, make, n=40, node_sample=node_sample)
        inp, out = tables()
        inp = saturating(objective, inp, out, batch, 3.0)  # saturated nodes: no update on either side
        dense = DenseBackend(inp, out)
        loss_dense = sum(float(dense.train_step(objective, single(batch, i), lr=0.3)) for i in range(batch.size))
        k_in, k_out = inp.clone(), out.clone()
        lrs = torch.full((batch.size,), 0.3)
        loss = objective.triton_examples(k_in, k_out, batch.centres, batch.contexts, batch.mask, batch.negatives, lrs)
        assert float(loss) == pytest.approx(loss_dense, rel=1e-5), model
        torch.testing.assert_close(k_in, dense.input_weights(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(k_out, dense.output_weights(), rtol=1e-5, atol=1e-6)
        assert not torch.equal(k_out, out)


def test_each_example_takes_its_own_learning_rate():
    run_in_interpreter("each_example_takes_its_own_learning_rate")


def check_each_example_takes_its_own_learning_rate():
    """A chunk's linear decay arrives as one lr per example: the same as stepping with each in turn."""
    batch = skipgram_batch(n=20)
    lrs = torch.linspace(0.5, 0.05, batch.size)
    kernels = _kernels()
    inp, out = tables()
    dense = DenseBackend(inp, out)
    for i in range(batch.size):
        dense.train_step(SkipGram(), single(batch, i), lr=float(lrs[i]))
    k_in, k_out = inp.clone(), out.clone()
    run_kernel(kernels, "skipgram", k_in, k_out, batch, lrs)
    torch.testing.assert_close(k_in, dense.input_weights(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(k_out, dense.output_weights(), rtol=1e-5, atol=1e-6)


def test_a_repeated_negative_sees_its_own_first_update():
    run_in_interpreter("a_repeated_negative_sees_its_own_first_update")


def check_a_repeated_negative_sees_its_own_first_update():
    """word2vec updates an output row as soon as it is used; a summed batch step would not."""
    kernels = _kernels()
    batch = skipgram_batch(n=1)
    a, b = [w for w in range(1, 30) if w != int(batch.contexts[0])][:2]
    batch.negatives[0] = torch.tensor([a, a, a, b, b])
    inp, out = tables()
    dense = DenseBackend(inp.clone(), out.clone())
    summed_loss = float(dense.train_step(SkipGram(), batch, lr=0.5))  # all five read the old row 7 and row 9
    k_in, k_out = inp.clone(), out.clone()
    loss = float(run_kernel(kernels, "skipgram", k_in, k_out, batch, 0.5))
    assert loss != pytest.approx(summed_loss, rel=1e-6)  # later copies scored against updated rows
    # By hand: each target in turn, with the output row updated right after its use.
    h, h_grad, expected = inp[batch.centres[0]].clone(), torch.zeros(inp.shape[1]), out.clone()
    for target, label in [(int(batch.contexts[0]), 1.0)] + [(int(t), 0.0) for t in batch.negatives[0]]:
        score = float(h @ expected[target])
        g = 0.5 * (label - torch.sigmoid(torch.tensor(score)))
        h_grad += g * expected[target]
        expected[target] += g * h
    torch.testing.assert_close(k_out, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(k_in[batch.centres[0]], h + h_grad, rtol=1e-5, atol=1e-6)


def test_the_fused_backend_trains_chunks_through_the_kernel():
    run_in_interpreter("the_fused_backend_trains_chunks_through_the_kernel")


def check_the_fused_backend_trains_chunks_through_the_kernel():
    """Off the C kernel, on a device where triton runs, a chunk goes to the kernel in one call,
    every example with its own learning rate between the chunk's ends."""
    import numpy as np

    from w2v.batches import Chunk
    from w2v.backends.fused import FusedBackend

    kernels = _kernels()
    calls = []
    real = kernels.skipgram_examples

    def spy(inp, out, centres, contexts, negatives, lr):
        calls.append((centres.clone(), contexts.clone(), negatives.clone(), lr.clone()))
        return real(inp, out, centres, contexts, negatives, lr)

    kernels.skipgram_examples = spy  # a process of its own: nothing to restore
    inp, out = tables(vocab=30)
    backend = FusedBackend(inp, out)
    backend.use_c = False
    backend.prepare(np.arange(30, dtype=np.int64) + 1, batch_size=8, seed=1)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 30, 50).astype(np.int32)
    chunk = Chunk(ids=ids, sentence=np.repeat(np.arange(5), 10).astype(np.int64),
                  window=rng.integers(1, 3, 50).astype(np.int64), raw_words=50)
    loss, trained = backend.train_chunk(make_objective("skipgram", 2, 5), chunk, 0.4, 0.2)
    assert len(calls) == 1  # one launch for the whole chunk, not one per batch of 8
    centres, contexts, negatives, lrs = calls[0]
    assert trained == len(centres) > 50 and negatives.shape == (len(centres), 5)
    assert float(lrs[0]) == pytest.approx(0.4) and float(lrs[-1]) > 0.2 and bool((lrs[1:] <= lrs[:-1]).all())
    assert float(loss) > 0


@pytest.mark.parametrize("model", ["skipgram", "cbow", "skipgram_hs", "cbow_hs"])
def test_kernels_compile_for_a_hopper_gpu(model):
    """The interpreter runs Python, so it misses what only the compiler checks (types carried
    through loops and branches, pointer arithmetic). Compile for sm_90 (H100/H200), which Triton
    does without a GPU, down to machine code: one atomic add per row an example touches."""
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("compiling needs triton imported without the interpreter")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from w2v.kernels import sgns_triton

    pointers = {"in_ptr": "*fp32", "out_ptr": "*fp32"}
    tail = {"negatives_ptr": "*i64", "lrs_ptr": "*fp32", "losses_ptr": "*fp32", "n": "i32"}
    sizes = {"DIM": 100, "BLOCK_DIM": 128, "K": 5, "EXAMPLES": sgns_triton.EXAMPLES_PER_PROGRAM}
    if model.endswith("_hs"):  # the path's rows in a loop of the path's length: one atomic add in it
        tail = {"codes_ptr": "*i8", "points_ptr": "*i64", "lengths_ptr": "*i64", "node_lr_ptr": "*fp32", "lrs_ptr": "*fp32",
                "losses_ptr": "*fp32", "n": "i32", "width": "i32"}
        del sizes["K"]
    if model == "skipgram_hs":
        fn, signature = sgns_triton._skipgram_hs_kernel, {**pointers, "centres_ptr": "*i64", "contexts_ptr": "*i64",
                                                          **tail}
        touched = 1 + 1  # centre, the path's rows
    elif model == "cbow_hs":
        fn = sgns_triton._cbow_hs_kernel
        signature = {**pointers, "contexts_ptr": "*i64", "mask_ptr": "*i8", "centres_ptr": "*i64", **tail}
        sizes["WIDTH"] = 10
        touched = 10 + 1  # every context slot, the path's rows
    elif model == "skipgram":
        fn, signature = sgns_triton._skipgram_kernel, {**pointers, "centres_ptr": "*i64", "contexts_ptr": "*i64", **tail}
        touched = 1 + 1 + 5  # centre, context, negatives
    else:
        fn = sgns_triton._cbow_kernel
        signature = {**pointers, "contexts_ptr": "*i64", "mask_ptr": "*i8", "centres_ptr": "*i64", **tail}
        sizes["WIDTH"] = 10
        touched = 10 + 1 + 5  # every context slot, centre, negatives
    signature.update({name: "constexpr" for name in sizes})
    compiled = triton.compile(ASTSource(fn=fn, signature=signature, constexprs=sizes),
                              target=GPUTarget("cuda", 90, 32))
    assert compiled.asm["cubin"]  # machine code for the card
    ptx = compiled.asm["ptx"]
    assert ptx.count("atom.global") + ptx.count("red.global") == touched
