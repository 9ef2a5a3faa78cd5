import numpy as np
import pytest
import torch

from w2v.backends import DenseBackend, init_tables
from w2v.batches import epoch_chunks
from w2v.objective import CBOW, LOSSES, OBJECTIVES, Batch, SkipGram, cbow_hidden, make_objective
from w2v.trainer import learning_rate


def test_cbow_forward_is_the_mean_and_backward_gives_every_context_the_full_error():
    rows = torch.randn(2, 4, 3, requires_grad=True)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    hidden = cbow_hidden(rows, mask)
    torch.testing.assert_close(hidden[0], rows[0, :2].mean(0))
    torch.testing.assert_close(hidden[1], rows[1].mean(0))
    upstream = torch.randn(2, 3)
    hidden.backward(upstream)
    torch.testing.assert_close(rows.grad[0, 0], upstream[0])  # not upstream / 2
    torch.testing.assert_close(rows.grad[1, 3], upstream[1])  # not upstream / 4
    assert rows.grad[0, 2:].abs().sum() == 0  # padding gets nothing


def test_skipgram_loss_is_the_negative_sampling_objective():
    torch.manual_seed(0)
    inp, out = init_tables(10, 4, seed=0)
    out = torch.randn(10, 4)
    backend = DenseBackend(inp, out)
    batch = Batch(centres=torch.tensor([1, 2]), contexts=torch.tensor([3, 4]),
                  negatives=torch.tensor([[5, 6], [4, 7]]))
    loss = SkipGram().loss(backend, batch)
    s = torch.nn.functional.logsigmoid
    expected0 = -(s(inp[1] @ out[3]) + s(-(inp[1] @ out[5])) + s(-(inp[1] @ out[6])))
    expected1 = -(s(inp[2] @ out[4]) + s(-(inp[2] @ out[7])))  # negative 4 == target: skipped
    torch.testing.assert_close(loss, torch.stack([expected0, expected1]))


def test_cbow_loss_predicts_the_centre_from_the_context_mean():
    inp, _ = init_tables(10, 4, seed=1)
    out = torch.randn(10, 4)
    backend = DenseBackend(inp, out)
    batch = Batch(centres=torch.tensor([2]), contexts=torch.tensor([[3, 4, 0]]), negatives=torch.tensor([[7]]),
                  mask=torch.tensor([[True, True, False]]))
    h = (inp[3] + inp[4]) / 2
    s = torch.nn.functional.logsigmoid
    torch.testing.assert_close(CBOW().loss(backend, batch), (-(s(h @ out[2]) + s(-(h @ out[7])))).reshape(1))


def test_learning_rate_decays_linearly_to_min_lr():
    assert learning_rate(0.025, 0.0001, 0.0) == 0.025
    assert abs(learning_rate(0.025, 0.0001, 0.5) - (0.025 + 0.0001) / 2) < 1e-12
    assert abs(learning_rate(0.025, 0.0001, 1.0) - 0.0001) < 1e-12
    assert learning_rate(0.025, 0.0001, 2.0) == learning_rate(0.025, 0.0001, 1.0)  # clamped


def test_init_tables_follow_gensim():
    inp, out = init_tables(500, 50, seed=3)  # default: gensim 4's +-1/dim
    assert inp.abs().max() <= 1.0 / 50 and inp.abs().max() > 0.9 / 50
    narrow, _ = init_tables(500, 50, seed=3, init_range=0.5)  # word2vec.c's +-0.5/dim
    assert narrow.abs().max() <= 0.5 / 50 and narrow.abs().max() > 0.45 / 50
    assert out.abs().sum() == 0
    torch.testing.assert_close(inp, init_tables(500, 50, seed=3)[0])  # seeded


def epoch_of_cut_chunks(window: int):
    """An epoch of small chunks over a short sentence and a long one: the first chunk holds a sentence
    end, later ones are cut inside the long line (context-only tokens at both ends)."""
    rng = np.random.default_rng(7)
    ids = (rng.zipf(1.3, 1000) % 40).astype(np.int64)
    sentences = np.array([0, 100, 1000], dtype=np.int64)
    chunks = list(epoch_chunks(ids, sentences, np.ones(40), window, rng, chunk_tokens=150))
    assert chunks[0].sentence[0] < chunks[0].sentence[-1]
    assert any(c.centre_lo > 0 and c.centre_hi < len(c.ids) for c in chunks)
    return chunks


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_the_device_expansion_equals_the_host_expansion(name):
    """The windows built in torch (backend=fused's torch and Triton paths) are the numpy ones (the batch
    backends'): the same examples, centre ranges and sentence bounds included."""
    objective = OBJECTIVES[name](window=4, negative=3)
    for chunk in epoch_of_cut_chunks(objective.window):
        host = objective.examples(chunk)
        centres, contexts, mask = objective.device_examples(chunk, torch.device("cpu"))
        assert len(centres) == len(host["centres"]) > 0
        if mask is None:  # skip-gram: the same pairs; each centre's contexts come in another order
            pairs = sorted(zip(centres.tolist(), contexts.tolist()))
            assert pairs == sorted(zip(host["centres"].tolist(), host["contexts"].tolist()))
            assert "mask" not in host
        else:
            np.testing.assert_array_equal(centres.numpy(), host["centres"])
            np.testing.assert_array_equal(mask.numpy(), host["mask"])
            np.testing.assert_array_equal(torch.where(mask, contexts, 0).numpy(), host["contexts"])


class RecordingBackend:
    """Lookups from random tables that remember which ids they were asked for."""

    def __init__(self, vocab: int = 20, dim: int = 3):
        self.tables, self.asked = (torch.randn(vocab, dim), torch.randn(vocab, dim)), ([], [])

    def lookup_input(self, ids):
        self.asked[0].append(ids.reshape(-1))
        return self.tables[0][ids]

    def lookup_output(self, ids):
        self.asked[1].append(ids.reshape(-1))
        return self.tables[1][ids]


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_lookups_are_the_rows_the_loss_reads(name, loss):
    """offload moves exactly `lookups`' rows and the memory guard counts `rows_per_example`: both must be
    what the loss really reads."""
    objective = make_objective(name, 2, 3, loss, counts=np.arange(20) ** 2)
    gen = torch.Generator().manual_seed(0)
    batch = Batch(centres=torch.randint(0, 20, (6,), generator=gen),
                  contexts=torch.randint(0, 20, (6, 4) if objective.predicts_centre else (6,), generator=gen),
                  negatives=torch.randint(0, 20, (6, objective.negative), generator=gen),
                  mask=torch.rand(6, 4, generator=gen) < 0.6 if objective.predicts_centre else None)
    backend = RecordingBackend()
    assert objective.loss(backend, batch).shape == (6,)
    for table, expected in enumerate(objective.lookups(batch)):
        read = torch.cat(backend.asked[table])
        assert sorted(read.tolist()) == sorted(expected.tolist())
        assert len(read) == 6 * objective.rows_per_example()[table]


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_hs_loss_is_the_sum_over_the_huffman_path(name):
    """The hierarchical-softmax loss, written out per example: sum over the predicted word's path of
    -log s((1 - 2 code) h . out[point]) (word2vec.c's label 1 - code), h the centre's row or the context mean."""
    counts = np.array([40, 3, 9, 27, 1, 15, 6, 2, 11, 5])
    objective = make_objective(name, 2, 5, "hs", counts)
    assert objective.negative == 0 and objective.loss_name == "hs"
    backend = RecordingBackend(vocab=10, dim=4)
    gen = torch.Generator().manual_seed(1)
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    batch = Batch(centres=torch.tensor([3, 4, 0]),
                  contexts=torch.randint(0, 10, (3, 4) if objective.predicts_centre else (3,), generator=gen),
                  negatives=torch.zeros((3, 0), dtype=torch.int64), mask=mask if objective.predicts_centre else None)
    inp, out = backend.tables
    tree = objective.tree
    expected = []
    for e in range(3):
        if objective.predicts_centre:
            h, word = inp[batch.contexts[e][batch.mask[e]]].mean(0), int(batch.centres[e])
        else:
            h, word = inp[batch.centres[e]], int(batch.contexts[e])
        total = 0.0
        for k in range(int(tree.lengths[word])):
            sign = 1.0 - 2.0 * float(tree.codes[word, k])
            total -= float(torch.nn.functional.logsigmoid(sign * (h @ out[int(tree.points[word, k])])))
        expected.append(total)
    torch.testing.assert_close(objective.loss(backend, batch), torch.tensor(expected), rtol=1e-5, atol=1e-6)
