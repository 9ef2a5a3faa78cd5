"""nn.Embedding is a Linear layer on one-hot rows: same forward, same gradient, same SGD training.

Random vocabulary sizes, dims and batches with repeated indices. Every registered
backend's `train_step` is one plain SGD step on the summed loss, so one step must
leave the weights `dense` leaves. Whole training runs must match too, for every
backend whose loop step is a batch; a backend whose step is a whole chunk (its own
negatives, its own batching) trains differently by design.
"""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests import example_backend  # noqa: F401  registers backend=example (docs/backends.md): it must train as dense does
from w2v.backends import BACKENDS, init_tables
from w2v.config import TrainConfig
from w2v.objective import OBJECTIVES, Batch, make_objective
from w2v.trainer import train

CPU = torch.device("cpu")
STEP_BACKENDS = sorted(name for name in BACKENDS if name != "dense")
RUN_BACKENDS = sorted(name for name, cls in BACKENDS.items() if name != "dense" and cls.step_unit == "batch")
CASES = range(6)  # seeds: each draws its own vocabulary size, dim and batch shape


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # fixture in conftest.py


def random_case(seed: int):
    """(vocab, dim, ids) with ids of a random 1-3 dim shape, drawn from few words so they repeat."""
    gen = torch.Generator().manual_seed(seed)
    vocab = int(torch.randint(2, 400, (1,), generator=gen))
    dim = int(torch.randint(1, 48, (1,), generator=gen))
    shape = tuple(int(s) for s in torch.randint(2, 12, (int(torch.randint(1, 4, (1,), generator=gen)),),
                                                generator=gen))
    ids = torch.randint(0, max(1, vocab // 8), shape, generator=gen)
    ids.view(-1)[-1] = ids.view(-1)[0]  # at least one repeated index, whatever the draw
    return vocab, dim, ids, gen


def embedding_and_linear(vocab: int, dim: int, gen: torch.Generator):
    embedding = nn.Embedding(vocab, dim)
    linear = nn.Linear(vocab, dim, bias=False)
    with torch.no_grad():
        embedding.weight.copy_(torch.randn(vocab, dim, generator=gen))
        linear.weight.copy_(embedding.weight.t())  # Linear keeps (out_features, in_features)
    return embedding, linear


@pytest.mark.parametrize("seed", CASES)
def test_embedding_equals_linear_on_one_hot_exactly(seed):
    vocab, dim, ids, gen = random_case(seed)
    embedding, linear = embedding_and_linear(vocab, dim, gen)
    one_hot = F.one_hot(ids, vocab).float()
    # A one-hot row times W adds one product w * 1 to zeros: exact, not just close.
    assert torch.equal(embedding(ids), linear(one_hot))
    assert torch.equal(embedding(ids), one_hot @ embedding.weight)


@pytest.mark.parametrize("seed", CASES)
def test_dense_sparse_and_linear_gradients_agree(seed):
    vocab, dim, ids, gen = random_case(seed)
    embedding, linear = embedding_and_linear(vocab, dim, gen)
    sparse = nn.Embedding(vocab, dim, sparse=True)
    with torch.no_grad():
        sparse.weight.copy_(embedding.weight)
    upstream = torch.randn(*ids.shape, dim, generator=gen)
    (embedding(ids) * upstream).sum().backward()
    (linear(F.one_hot(ids, vocab).float()) * upstream).sum().backward()
    (sparse(ids) * upstream).sum().backward()

    # The reference: each row's gradient is the sum of the upstream rows of its occurrences.
    expected = torch.zeros(vocab, dim).index_add_(0, ids.reshape(-1), upstream.reshape(-1, dim))
    assert sparse.weight.grad.is_sparse and not embedding.weight.grad.is_sparse
    torch.testing.assert_close(embedding.weight.grad, expected)
    torch.testing.assert_close(linear.weight.grad.t(), expected)
    torch.testing.assert_close(sparse.weight.grad.coalesce().to_dense(), expected)
    # The sparse gradient stores only looked-up rows (as many entries as lookups, before coalescing).
    assert sparse.weight.grad._nnz() == ids.numel()
    untouched = torch.ones(vocab, dtype=torch.bool)
    untouched[ids.reshape(-1)] = False
    assert torch.all(embedding.weight.grad[untouched] == 0)


def random_batch(model_name: str, vocab: int, size: int, gen: torch.Generator, window: int = 3,
                 negative: int = 4) -> Batch:
    """A batch over few words (heavy repeats), with a CBOW mask that leaves some windows short."""
    hot = max(2, vocab // 4)
    centres = torch.randint(0, hot, (size,), generator=gen)
    negatives = torch.randint(0, vocab, (size, negative), generator=gen)
    if model_name == "skipgram":
        return Batch(centres=centres, contexts=torch.randint(0, hot, (size,), generator=gen), negatives=negatives)
    mask = torch.rand(size, 2 * window, generator=gen) < 0.7
    mask[:, 0] = True
    contexts = torch.randint(0, hot, (size, 2 * window), generator=gen) * mask
    return Batch(centres=centres, contexts=contexts, negatives=negatives, mask=mask)


@pytest.mark.parametrize("model_name", ["skipgram", "cbow"])
@pytest.mark.parametrize("seed", CASES)
def test_one_sgd_step_leaves_identical_weights_in_every_backend(model_name, seed):
    vocab, dim, _ids, gen = random_case(seed)
    vocab = max(vocab, 8)
    batch_size = int(torch.randint(1, 40, (1,), generator=gen))
    input_init = torch.randn(vocab, dim, generator=gen) * 0.3
    output_init = torch.randn(vocab, dim, generator=gen) * 0.3  # non-zero, so both tables move
    batch = random_batch(model_name, vocab, batch_size, gen)
    after = {}
    for name in ["dense", *STEP_BACKENDS]:
        backend = BACKENDS[name].create(input_init, output_init, CPU)
        torch.testing.assert_close(backend.lookup_input(batch.negatives), input_init[batch.negatives])
        loss = backend.train_step(OBJECTIVES[model_name](), batch, lr=0.1)
        after[name] = (loss, backend.input_weights().clone(), backend.output_weights().clone())
    dense_loss, dense_in, dense_out = after["dense"]
    assert not torch.equal(dense_in, input_init) and not torch.equal(dense_out, output_init)
    for name in STEP_BACKENDS:
        loss, vectors_in, vectors_out = after[name]
        torch.testing.assert_close(loss, dense_loss, msg=f"{name} loss")
        torch.testing.assert_close(vectors_in, dense_in, atol=1e-6, rtol=1e-5, msg=f"{name} input table")
        torch.testing.assert_close(vectors_out, dense_out, atol=1e-6, rtol=1e-5, msg=f"{name} output table")


def synthetic_corpus(vocab: int = 60, n_tokens: int = 2400, seed: int = 0):
    """(ids, sentence offsets, counts): Zipf-distributed words in 20-word lines."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1)
    ids = rng.choice(vocab, size=n_tokens, p=p / p.sum()).astype(np.int64)
    sentences = np.arange(0, n_tokens + 1, 20, dtype=np.int64)
    return ids, sentences, np.bincount(ids, minlength=vocab)


SHORT_RUN = TrainConfig(epochs=1, lr=0.05, min_lr=0.001, batch_size=48, seed=3)


def train_vectors(name: str, model_name: str) -> tuple[torch.Tensor, torch.Tensor, float]:
    ids, sentences, counts = synthetic_corpus()
    input_init, output_init = init_tables(len(counts), 12, seed=5)
    backend = BACKENDS[name].create(input_init, output_init, CPU)
    stats = train(make_objective(model_name, window=3, negative=4), SHORT_RUN, 1e-2, ids, sentences, counts, backend,
                  CPU, show_progress=False)
    assert stats.steps > 20
    return backend.input_weights().clone(), backend.output_weights().clone(), stats.final_loss


@pytest.mark.parametrize("model_name", ["skipgram", "cbow"])
def test_short_training_run_gives_the_same_vectors_in_every_backend(model_name):
    dense_in, dense_out, dense_loss = train_vectors("dense", model_name)
    input_init, _ = init_tables(60, 12, seed=5)
    assert (dense_in - input_init).abs().max() > 0.05  # training really moved the vectors
    for name in RUN_BACKENDS:
        vectors_in, vectors_out, loss = train_vectors(name, model_name)
        torch.testing.assert_close(vectors_in, dense_in, atol=1e-5, rtol=1e-4, msg=f"{name} input vectors")
        torch.testing.assert_close(vectors_out, dense_out, atol=1e-5, rtol=1e-4, msg=f"{name} output vectors")
        assert loss == pytest.approx(dense_loss, rel=1e-5)
