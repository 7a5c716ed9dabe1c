"""column_means (engine.analysis.stats): the centring shared by CKA and rank."""

import torch

from engine.analysis.stats import column_means

F64 = torch.float64


def test_means_of_varying_columns():
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]])
    assert torch.equal(column_means(x, F64), torch.tensor([3.0, 3.0], dtype=F64))


def test_a_constant_column_centres_to_exact_zeros():
    # 65 copies of 0.1 average to 0.10000000000000003 in float64: subtracting that would leave
    # a constant feature with ~1e-17 "variance". Column 1 agrees with row 0 on the first 64
    # rows (the quick screen) and only then varies: it must not be taken for a constant.
    x = torch.full((65, 2), 0.1, dtype=F64)
    x[64, 1] = 1.0
    assert x[:, 0].mean().item() != 0.1
    mean = column_means(x, F64)
    assert torch.equal((x - mean)[:, 0], torch.zeros(65, dtype=F64))
    assert mean[1].item() == x[:, 1].mean().item()


def test_float32_constants_are_kept_exactly_in_the_wider_dtype():
    x = torch.full((7, 3), 0.1, dtype=torch.float32)
    x[:, 2] = torch.arange(7.0)
    mean = column_means(x, F64)
    assert mean.dtype == F64
    assert mean[0].item() == x[0, 0].item()  # 0.10000000149011612, the float32 value itself
    assert mean[2].item() == 3.0


def test_one_row_and_no_rows():
    assert torch.equal(
        column_means(torch.tensor([[1.5, -2.0]]), F64), torch.tensor([1.5, -2.0], dtype=F64)
    )
    empty = column_means(torch.empty(0, 3), F64)
    assert empty.shape == (3,) and torch.isnan(empty).all()
