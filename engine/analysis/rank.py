"""Numerical rank of layer representations (thesis 5.2.1).

The rank of a layer is the number of singular values of the sample covariance of its
representations above ``rel_tol · σ₁`` (thesis: σ₁ · 10⁻³). A low rank means the layer maps
inputs onto few directions -- the "tunnel" of the thesis. For wide layers at most
``max_features`` (8,000 in the thesis) randomly chosen features are used, with a fixed seed so
the same layer always gets the same subset.

The covariance is symmetric positive semi-definite, so its singular values are its
eigenvalues; they are computed in float64 with ``eigvalsh`` on the p x p covariance or, when
there are fewer samples than features, on the n x n Gram ``XcXcᵀ/(n-1)``, whose nonzero
eigenvalues are the same.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.analysis.stats import column_means

__all__ = ["covariance_spectrum", "numerical_rank", "rank_by_layer"]

# Rows (or columns) converted to float64 at once: bounds the extra memory to ~256 MB.
_CHUNK_ELEMS = 1 << 25


def _feature_subset(p: int, max_features: int, seed: int) -> torch.Tensor | None:
    """Sorted indices of ``max_features`` random features (seeded), or None to keep all."""
    if max_features < 1:
        raise ValueError(f"max_features must be positive, got {max_features}")
    if p <= max_features:
        return None
    perm = torch.randperm(p, generator=torch.Generator().manual_seed(seed))
    return perm[:max_features].sort().values


def covariance_spectrum(X, max_features: int = 8000, seed: int = 0) -> np.ndarray:
    """Singular values of the sample covariance of ``X`` (n x p, trailing dims flattened).

    Returns the ``min(n, p')`` largest values in descending order as float64 (p' = features
    kept after subsampling; the rest are zero). Tiny negative rounding is clipped to 0.
    """
    x = torch.as_tensor(X)
    if x.ndim == 0:
        raise ValueError("X must have a sample dimension, got a scalar")
    x = x.reshape(x.shape[0], -1)
    if not x.is_floating_point():
        x = x.double()
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"the sample covariance needs at least 2 samples, got {n}")
    cols = _feature_subset(x.shape[1], max_features, seed)
    if cols is not None:
        x = x[:, cols.to(x.device)]
    p = x.shape[1]
    with torch.no_grad():
        if p <= n:
            # p x p covariance, accumulated over row chunks around the float64 mean.
            mean = column_means(x, torch.float64)
            m = torch.zeros(p, p, dtype=torch.float64, device=x.device)
            step = max(1, _CHUNK_ELEMS // max(p, 1))
            for i in range(0, n, step):
                z = x[i : i + step].to(torch.float64) - mean
                m += z.T @ z
        else:
            # n x n Gram; centring is per column, so column chunks are centred on their own.
            m = torch.zeros(n, n, dtype=torch.float64, device=x.device)
            step = max(1, _CHUNK_ELEMS // n)
            for j in range(0, p, step):
                z = x[:, j : j + step]
                z = z.to(torch.float64) - column_means(z, torch.float64)
                m += z @ z.T
        eig = torch.linalg.eigvalsh(m / (n - 1))
    return eig.flip(0).clamp_min(0).cpu().numpy()


def numerical_rank(X, rel_tol: float = 1e-3, *, max_features: int = 8000, seed: int = 0) -> int:
    """Number of covariance singular values above ``rel_tol · σ₁`` (thesis 5.2.1).

    ``X`` is n x p (tensor or array; trailing dims flattened). Constant data has rank 0.
    """
    if not 0 < rel_tol < 1:
        raise ValueError(f"rel_tol must be in (0, 1), got {rel_tol}")
    s = covariance_spectrum(X, max_features=max_features, seed=seed)
    if s.size == 0 or not s[0] > 0:
        return 0
    return int(np.count_nonzero(s > rel_tol * s[0]))


def rank_by_layer(
    acts, rel_tol: float = 1e-3, *, max_features: int = 8000, seed: int = 0
) -> list[int]:
    """:func:`numerical_rank` of each layer in ``acts`` (a list of n x p_l activations)."""
    if isinstance(acts, (torch.Tensor, np.ndarray)):
        raise ValueError("acts: expected a list of layer activations, got a single array")
    return [numerical_rank(a, rel_tol, max_features=max_features, seed=seed) for a in acts]
