"""The backend contract, checked on every registered backend (tests/example_backend.py included).

A backend is built on a tiny vocabulary, driven through a chunk exactly as the training loop
drives it (prepare, expand, plan, step), and must train every example the objective makes from
that chunk, move both tables, declare its capabilities and estimate at least the memory its tables take.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests import example_backend  # noqa: F401  registers backend=example, as a new backend's module would
from w2v.backends import BACKENDS
from w2v.backends.registry import check_loss
from w2v.backends.base import DATA_PARALLEL, FLOAT_BYTES, STEP_UNITS
from w2v.batches import epoch_chunks, keep_probability
from w2v.config import BackendConfig, group_choices
from w2v.memory import estimate_bytes
from w2v.config import W2VError
from w2v.objective import LOSSES, OBJECTIVES, make_objective

CPU = torch.device("cpu")
VOCAB, DIM = 30, 8

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # fixture in conftest.py


def tiny_chunk(window: int):
    """One chunk of 400 Zipf-ish words in 20-word lines; the counts of its words."""
    rng = np.random.default_rng(0)
    ids = (rng.zipf(1.4, 400) % (VOCAB - 1) + 1).astype(np.int64)
    sentences = np.arange(0, len(ids) + 1, 20, dtype=np.int64)
    counts = np.bincount(ids, minlength=VOCAB)
    chunk = next(epoch_chunks(ids, sentences, keep_probability(counts, 0), window, rng, chunk_tokens=len(ids)))
    return chunk, counts


def built(name: str):
    gen = torch.Generator().manual_seed(0)
    input_init = (torch.rand(VOCAB, DIM, generator=gen) - 0.5) / DIM
    return BACKENDS[name].create(input_init, torch.zeros(VOCAB, DIM), CPU, BackendConfig(name=name))


def test_the_example_backend_is_registered_for_the_tests_only():
    assert BACKENDS["example"].name == "example" and "example" not in group_choices("backend")


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_capabilities_are_declared(name):
    cls = BACKENDS[name]
    assert cls.name == name
    assert cls.step_unit in STEP_UNITS and cls.data_parallel in DATA_PARALLEL
    assert all(isinstance(flag, bool) for flag in (cls.updates_in_place, cls.sparse_gradients,
                                                    cls.batch_scales_with_vocab))
    if cls.data_parallel == "tables":  # a table sync falls between chunks: one step must be one chunk
        assert cls.step_unit == "chunk"
    if cls.data_parallel == "gradients":  # gradients are summed between backward and the optimiser's update
        assert not cls.updates_in_place
    assert "ns" in cls.losses and set(cls.losses) <= set(LOSSES)


def test_a_backend_without_hierarchical_softmax_refuses_it_in_one_line():
    """backend=example writes its own SGD update and declares no loss but the default ("ns"): model.loss=hs
    is refused from that capability, naming the backends that do train it."""
    assert BACKENDS["example"].losses == ("ns",)
    check_loss(BACKENDS["example"], "ns")
    with pytest.raises(W2VError) as refused:
        check_loss(BACKENDS["example"], "hs")
    message = str(refused.value)
    assert "\n" not in message and message.startswith("backend=example cannot train model.loss=hs")
    assert "fused" in message and "dense" in message


def test_a_run_refuses_the_loss_before_reading_the_corpus(tmp_path):
    """w2v.train.run asks the capability first: nothing is read or written for a run that cannot train."""
    from tests.helpers import compose_run_config
    from w2v.train import run

    cfg = compose_run_config("model.loss=hs", "data=files", f"data.paths=[{tmp_path / 'missing.txt'}]",
                             f"cache_dir={tmp_path / 'cache'}")
    cfg.backend.name = "example"  # registered by the tests only, so not a config choice
    with pytest.raises(W2VError, match="backend=example cannot train model.loss=hs"):
        run(cfg, tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("loss_name", LOSSES)
@pytest.mark.parametrize("objective_name", sorted(OBJECTIVES))
@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_a_chunk_steps_through_the_interface_and_trains_every_example(name, objective_name, loss_name):
    if loss_name not in BACKENDS[name].losses:
        pytest.skip(f"backend={name} does not train model.loss={loss_name}")
    chunk, counts = tiny_chunk(3)
    objective = make_objective(objective_name, 3, 4, loss_name, counts)
    backend = built(name)
    backend.prepare(counts, batch_size=16, seed=1)
    before = backend.input_weights().clone(), backend.output_weights().clone()
    work = backend.plan(objective, backend.expand(objective, chunk), torch.Generator().manual_seed(2))
    assert len(work) == (1 if backend.step_unit == "chunk" else -(-len(objective.examples(chunk)["centres"]) // 16))
    losses, trained = [], 0
    for k, item in enumerate(work):
        lr_from = 0.05 * (1 - k / len(work))
        loss, examples = backend.step(objective, item, lr_from, lr_from - 0.05 / len(work))
        losses.append(float(loss))
        trained += examples
    examples = objective.examples(chunk)
    assert trained == len(examples["centres"]) > 0  # every example the objective makes, once
    # The output table starts at zero: log 2 per output row an example reads before any update (1 + K,
    # or the predicted word's path length), less once it learns.
    if objective.tree is None:
        untrained = trained * (1 + objective.negative) * np.log(2)
    else:
        predicted = examples["centres"] if objective.predicts_centre else examples["contexts"]
        untrained = objective.tree.lengths[predicted].sum() * np.log(2)
    assert 0 < sum(losses) < untrained
    for table, start in zip((backend.input_weights(), backend.output_weights()), before):
        assert not torch.equal(table, start) and torch.isfinite(table).all()
    assert backend.step(objective, None, 0.05, 0.04)[1] == 0  # a rank with nothing left takes an empty step


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_weights_are_the_live_tables(name):
    """A checkpoint restores into input_weights()/output_weights() in place: they must be the tables that train."""
    backend = built(name)
    with torch.no_grad():
        backend.input_weights().copy_(torch.full((VOCAB, DIM), 0.5))
    ids = torch.tensor([1, 2, 3])
    assert torch.equal(backend.lookup_input(ids).detach(), torch.full((3, DIM), 0.5))


@pytest.mark.parametrize("device_type", ["cpu", "cuda"])
@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_the_memory_estimate_covers_the_tables(name, device_type):
    objective = OBJECTIVES["cbow"](window=5, negative=5)
    need = BACKENDS[name].estimate_bytes(1000, 50, objective, 256, device_type)  # the backend's own part
    assert set(need) == {"tables", "batch", "copies", "sync"}  # memory.estimate_bytes adds the run's export
    assert all(isinstance(v, int) and v >= 0 for v in need.values()) and need["batch"] > 0
    if device_type == "cpu":  # both tables are in the memory checked, whatever else is
        assert need["tables"] >= 2 * 1000 * 50 * FLOAT_BYTES
    backend = built(name)
    held = sum(t.numel() * t.element_size() for t in (backend.input_weights(), backend.output_weights()))
    assert estimate_bytes(backend, VOCAB, DIM, objective, 16, "cpu")["tables"] >= held


def test_the_backend_doc_shows_the_example_that_is_tested():
    """docs/backends.md quotes tests/example_backend.py whole: the doc's example is the one the contract runs."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "backends.md").read_text()
    source = (Path(__file__).resolve().parent / "example_backend.py").read_text()
    assert source in doc
