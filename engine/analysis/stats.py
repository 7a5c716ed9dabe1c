"""Small numerical helpers shared by the representation analyses (CKA, rank)."""

from __future__ import annotations

import torch

__all__ = ["column_means"]


def column_means(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Column means of the n x p ``x`` computed in ``dtype``, exact for constant columns.

    A rounded mean would leave a constant (e.g. dead) feature with ~1e-17 residuals whose
    "CKA" or "rank" is noise; taking the constant itself centres it to exact zeros, so a
    constant layer reliably yields NaN CKA and rank 0.
    """
    mean = x.mean(0, dtype=dtype)
    if x.shape[0] == 0:
        return mean
    # Cheap screen on the first rows, then a full check of the few columns that pass it.
    maybe = (x[:64] == x[0]).all(0).nonzero().squeeze(1)
    if maybe.numel():
        const = maybe[(x[:, maybe] == x[0, maybe]).all(0)]
        mean[const] = x[0, const].to(dtype)
    return mean
