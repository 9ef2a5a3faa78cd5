"""The VQA model's pooling: where a question-tuned unit fires must be readable."""
import torch

from w2v.vqa.model import CellFusion, position_pooling


def _grid(cells_on: dict[int, list[int]], units: int = 3) -> torch.Tensor:
    """(1, 16, units) features of a 4x4 grid: unit u is 1 on the cells listed for it."""
    x = torch.zeros(1, 16, units)
    for unit, cells in cells_on.items():
        x[0, cells, unit] = 1.0
    return x


def test_position_pooling_reads_left_right_and_up_down():
    # cell index = row * 4 + col; unit 0 on the left column, unit 1 on the right column,
    # unit 2 on the top-left and bottom-right corners (which balance out).
    x = _grid({0: [0, 4, 8, 12], 1: [3, 7, 11, 15], 2: [0, 15]})
    xs, ys = position_pooling(x).view(2, 3)
    assert xs[0] < 0 < xs[1]
    assert torch.allclose(xs[0], -xs[1])
    assert torch.allclose(ys[:2], torch.zeros(2), atol=1e-6)  # whole columns: no vertical bias
    assert abs(float(xs[2])) < 1e-6 and abs(float(ys[2])) < 1e-6


def test_position_pooling_orders_two_objects_by_column():
    # "is A left of B": a unit per object; the reading of A is below B's exactly when A's column is.
    for col_a in range(4):
        for col_b in range(4):
            if col_a == col_b:
                continue
            x = _grid({0: [4 + col_a], 1: [8 + col_b]}, units=2)
            xs = position_pooling(x).view(2, 2)[0]
            assert (xs[0] < xs[1]) == (col_a < col_b)


def test_position_pooling_is_zero_where_nothing_fires():
    assert torch.equal(position_pooling(torch.zeros(2, 16, 5)), torch.zeros(2, 10))


def test_fusion_output_has_its_declared_width():
    torch.manual_seed(0)
    fusion = CellFusion(channels=8, hidden=16)
    out = fusion(torch.randn(3, 16, 8), torch.randn(3, 16))
    assert out.shape == (3, fusion.out_dim)
