"""Which rows of the tables move in a step, per backend and optimiser.

Under SGD and SparseAdam a step changes exactly the looked-up rows; every other
row stays bit-identical. Under dense Adam (and SGD with momentum) rows looked up
in an earlier step keep moving after they leave the batch: the optimiser's
running averages carry their past gradients. That is the trap the doc warns of.
"""
import pytest
import torch

from w2v.backends import BACKENDS
from w2v.objective import Batch, SkipGram

CPU = torch.device("cpu")
VOCAB, DIM, LR = 24, 5, 0.05
OPTIMISERS = {
    "SGD": None,  # the backend's own optimiser
    "SparseAdam": lambda params, lr: torch.optim.SparseAdam(list(params), lr=lr),
    "Adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
    "SGD+momentum": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "AdamW": lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=0.01),
}
# (backend, optimiser, do rows looked up in step 1 but not in step 2 still move in step 2?)
CASES = [("dense", "SGD", False), ("sparse", "SGD", False), ("onehot", "SGD", False), ("offload", "SGD", False),
         ("sparse", "SparseAdam", False), ("dense", "Adam", True), ("onehot", "Adam", True),
         ("dense", "SGD+momentum", True)]


def skipgram_batch(words: range, gen: torch.Generator) -> Batch:
    """Centres, contexts and negatives all drawn from `words`."""
    pick = lambda *shape: torch.tensor(list(words))[torch.randint(0, len(words), shape, generator=gen)]  # noqa: E731
    return Batch(centres=pick(6), contexts=pick(6), negatives=pick(6, 3))


def rows_changed(before: torch.Tensor, after: torch.Tensor) -> set[int]:
    """Rows that are not bit-identical."""
    return set(torch.nonzero((before != after).any(dim=1)).flatten().tolist())


def make(backend_name: str, optimiser: str):
    gen = torch.Generator().manual_seed(0)
    backend = BACKENDS[backend_name].create(torch.randn(VOCAB, DIM, generator=gen),
                                            torch.randn(VOCAB, DIM, generator=gen), CPU)
    if OPTIMISERS[optimiser] is not None:
        backend.make_optimizer = lambda lr: OPTIMISERS[optimiser](backend.parameters(), lr)
    return backend


def snapshot(backend) -> tuple[torch.Tensor, torch.Tensor]:
    return backend.input_weights().clone(), backend.output_weights().clone()


@pytest.mark.parametrize("backend_name, optimiser, momentum_carries", CASES)
def test_which_rows_move(backend_name, optimiser, momentum_carries):
    gen = torch.Generator().manual_seed(1)
    first, second = skipgram_batch(range(0, 6), gen), skipgram_batch(range(10, 16), gen)
    backend = make(backend_name, optimiser)
    start = snapshot(backend)

    backend.train_step(SkipGram(), first, LR)
    after_first = snapshot(backend)
    input_rows = set(first.centres.tolist())
    output_rows = set(first.contexts.tolist()) | set(first.negatives.flatten().tolist())
    # Step 1: exactly the looked-up rows change, whatever the optimiser (nothing has history yet).
    assert rows_changed(start[0], after_first[0]) == input_rows
    assert rows_changed(start[1], after_first[1]) == output_rows

    backend.train_step(SkipGram(), second, LR)
    after_second = snapshot(backend)
    second_input = set(second.centres.tolist())
    second_output = set(second.contexts.tolist()) | set(second.negatives.flatten().tolist())
    moved_in = rows_changed(after_first[0], after_second[0])
    moved_out = rows_changed(after_first[1], after_second[1])
    if momentum_carries:
        # The trap: step 1's rows keep moving although step 2 never looked them up.
        assert moved_in == second_input | input_rows
        assert moved_out == second_output | output_rows
    else:
        assert moved_in == second_input and moved_out == second_output
    # Rows no step has looked up stay bit-identical under every optimiser here (no weight decay).
    never = set(range(VOCAB)) - input_rows - output_rows - second_input - second_output
    assert never and not (rows_changed(start[0], after_second[0]) | rows_changed(start[1], after_second[1])) & never


def test_weight_decay_moves_every_row_in_the_first_step():
    # Decoupled weight decay shrinks the whole table each step: no row is left alone.
    backend = make("dense", "AdamW")
    start = snapshot(backend)
    backend.train_step(SkipGram(), skipgram_batch(range(0, 6), torch.Generator().manual_seed(1)), LR)
    assert rows_changed(start[0], backend.input_weights()) == set(range(VOCAB))
    assert rows_changed(start[1], backend.output_weights()) == set(range(VOCAB))


def test_offload_refuses_a_torch_optimiser():
    backend = make("offload", "SGD")
    with pytest.raises(NotImplementedError, match="plain SGD"):
        backend.make_optimizer(LR)
