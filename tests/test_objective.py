import torch

from w2v.backends import DenseBackend, init_tables
from w2v.objective import CBOW, Batch, SkipGram, cbow_hidden
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
