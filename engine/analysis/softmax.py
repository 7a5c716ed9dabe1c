"""How a column-wise softmax changes the rank of a matrix (thesis 6.2.4, 6.7, Fig. 6.2.5, 6.8.1).

The thesis takes a random rank-1 matrix ``B = x yᵀ`` (x_i, y_i ~ U(-1, 1), n = 32) and looks at
``softmax(c·B)`` applied column-wise for c in [1e-5, 1e9] (c is the inverse temperature):

- c -> 0: every column tends to the uniform vector, so the rank tends to 1;
- c -> inf: every column tends to the one-hot vector of its argmax, so the rank tends to the
  rank of that one-hot matrix (2 for a rank-1 B whose y has both signs: a positive y_j picks
  argmax x, a negative one argmin x);
- in between, the rank rises well above both limits (Fig. 6.2.5).

Proposition 2 (6.2.4; Proposition 5 in appendix 6.7) bounds the spread of the spectrum of any
column-stochastic M:

    0 <= σ₁(M) - σ_n(M) <= sqrt(1 + r) - sqrt(max(1/n - r, 0)),
    r := max_i Σ_{j≠i} <m_i, m_j>,

so lowering the inner products between columns narrows the gap. Fig. 6.8.1 shows that, as c
grows, the inner products of columns sharing their argmax rise towards 1 while those of columns
with different argmax fall towards 0; :func:`column_inner_products` gives those two groups.

Numerical rank: the number of singular values above ``rel_tol · σ₁`` (thesis Eq. 6.2 uses a
threshold relative to the top singular value). The default ``rel_tol = 1e-3`` is the one the
project uses everywhere else (:mod:`engine.analysis.rank`, thesis 5.2.1). PyTorch's default
``matrix_rank`` tolerance for a float32 32x32 matrix (32 · 1.19e-7 ≈ 3.8e-6) gives the same
shape with a higher peak, but already counts 2 at c = 1e-5, where the c·x yᵀ term is still
about 3e-6 of the uniform part.

Everything is float64 numpy and returns plain Python lists and floats (JSON-serialisable).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "DEFAULT_C_VALUES",
    "argmax_one_hot",
    "column_inner_products",
    "column_softmax",
    "gap_bound",
    "random_rank_one",
    "rank_of",
    "softmax_rank_curve",
]

# 57 points, 4 per decade, from 1e-5 to 1e9 (the range of Fig. 6.2.5).
DEFAULT_C_VALUES: tuple[float, ...] = tuple(float(c) for c in np.logspace(-5, 9, 57))


def column_softmax(Z) -> np.ndarray:
    """Softmax of every column of ``Z`` (float64), via log-sum-exp.

    Subtracting each column's maximum keeps ``exp`` in range for any finite input, so c = 1e9
    gives exact one-hot columns instead of overflowing.
    """
    Z = np.asarray(Z, dtype=np.float64)
    E = np.exp(Z - Z.max(axis=0, keepdims=True))
    return E / E.sum(axis=0, keepdims=True)


def rank_of(s: np.ndarray, rel_tol: float) -> int:
    """Number of singular values ``s`` (descending) above ``rel_tol · s[0]`` (thesis Eq. 6.2)."""
    if s.size == 0 or s[0] <= 0:
        return 0
    return int(np.count_nonzero(s > rel_tol * s[0]))


def argmax_one_hot(B) -> np.ndarray:
    """Column-wise one-hot of the argmax: the limit of ``softmax(c·B)`` as c -> inf.

    Ties go to the first maximal row (numpy's argmax); softmax would split the mass instead,
    which random inputs never hit.
    """
    B = np.asarray(B, dtype=np.float64)
    H = np.zeros_like(B)
    H[B.argmax(axis=0), np.arange(B.shape[1])] = 1.0
    return H


def gap_bound(M) -> tuple[float, float, float]:
    """Proposition 2 for a column-stochastic ``M`` (m x k): ``(gap, bound, r)``.

    ``r = max_i Σ_{j≠i} <m_i, m_j>`` over columns and ``bound = sqrt(1+r) - sqrt(max(1/m - r,
    0))`` with m the length of a column (the thesis' n for a square M). ``gap`` is
    ``sqrt(λ_max(G)) - sqrt(λ_min(G))`` for the Gram matrix ``G = MᵀM`` the proof works with:
    σ₁ - σ_k for a square or tall M, and σ₁ - 0 when M has more columns than rows (G is then
    singular). The proof holds unchanged for any m x k, so the bound does too.
    """
    M = np.asarray(M, dtype=np.float64)
    m, k = M.shape
    G = M.T @ M
    off = G.sum(axis=0) - np.diag(G)  # Σ_{j≠i} <m_i, m_j>, all terms >= 0 for M >= 0
    r = float(off.max()) if k > 1 else 0.0
    bound = math.sqrt(1.0 + r) - math.sqrt(max(1.0 / m - r, 0.0))
    s = np.linalg.svd(M, compute_uv=False)
    s_min = float(s[-1]) if k <= m else 0.0
    return float(s[0]) - s_min, bound, r


def random_rank_one(n: int = 32, seed: int = 0) -> np.ndarray:
    """``B = x yᵀ`` with x_i, y_i ~ U(-1, 1) from ``numpy.random.default_rng(seed)`` (Fig. 6.2.5).

    x is drawn first, then y, so a seed always gives the same B.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, n)
    y = rng.uniform(-1.0, 1.0, n)
    return np.outer(x, y)


# -- input checks (each names the argument, as the app and the CLI show the message as is) --


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    return int(n)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_c_values(c_values) -> np.ndarray:
    if c_values is None:
        return np.asarray(DEFAULT_C_VALUES)
    try:
        c = np.asarray(c_values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"c_values must be a list of positive numbers, got {c_values!r}") from err
    if c.ndim == 0:
        c = c.reshape(1)
    if c.ndim != 1 or c.size == 0:
        raise ValueError("c_values must be a non-empty 1-D list of positive numbers")
    if not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"c_values must all be finite and > 0, got {c.tolist()}")
    return c


def _check_rel_tol(rel_tol) -> float:
    try:
        tol = float(rel_tol)
    except (TypeError, ValueError) as err:
        raise ValueError(f"rel_tol must be a number in (0, 1), got {rel_tol!r}") from err
    if not 0.0 < tol < 1.0:
        raise ValueError(f"rel_tol must be in (0, 1), got {rel_tol!r}")
    return tol


def _base_matrix(n, seed, matrix) -> tuple[np.ndarray, str]:
    """The matrix to scale: the user's (checked) or the seeded random rank-1 ``x yᵀ``."""
    if matrix is None:
        return random_rank_one(_check_n(n), _check_seed(seed)), "random rank-1 x yᵀ"
    try:
        B = np.array(matrix, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"matrix must be a 2-D array of numbers: {err}") from err
    if B.ndim != 2:
        raise ValueError(f"matrix must be 2-D, got {B.ndim}-D with shape {B.shape}")
    if B.shape[0] < 2 or B.shape[1] < 1:
        raise ValueError(f"matrix needs at least 2 rows and 1 column, got shape {B.shape}")
    if not np.all(np.isfinite(B)):
        raise ValueError("matrix must contain only finite values")
    return B, "user matrix"


def softmax_rank_curve(
    n: int = 32,
    c_values=None,
    seed: int = 0,
    matrix=None,
    rel_tol: float = 1e-3,
) -> dict:
    """Rank and spectrum of column-wise ``softmax(c·B)`` over c (thesis Fig. 6.2.5, 6.8.1 top).

    ``B`` is the seeded random rank-1 ``x yᵀ`` (n x n), or ``matrix`` (any 2-D array-like with
    at least 2 rows; ``n`` and ``seed`` are then ignored). ``c_values`` defaults to
    :data:`DEFAULT_C_VALUES` (57 log-spaced points from 1e-5 to 1e9). The rank counts singular
    values above ``rel_tol · σ₁`` (see the module docstring for why 1e-3).

    Returns a JSON-ready dict:

    - ``c``: the c values; ``rank``: numerical rank of softmax(c·B) per c;
    - ``singular_values``: all singular values per c, descending;
    - ``gap``: σ₁ - σ_n per c; ``bound``: Proposition 2's bound per c; ``r``: its r per c;
    - ``argmax_rank``: rank of the column-wise one-hot argmax (the c -> inf limit);
      ``base_rank``: rank of B itself;
    - ``peak_rank`` and ``c_at_peak`` (the first c reaching it);
    - ``shape``, ``n`` (rows), ``seed`` (None for a user matrix), ``rel_tol``, ``source``.

    Raises ``ValueError`` naming the argument for n < 2, c <= 0, a non-2-D matrix and the like.
    Identical output for identical arguments.
    """
    c = _check_c_values(c_values)
    tol = _check_rel_tol(rel_tol)
    B, source = _base_matrix(n, seed, matrix)

    ranks, svals, gaps, bounds, rs = [], [], [], [], []
    for ci in c:
        M = column_softmax(ci * B)
        s = np.linalg.svd(M, compute_uv=False)
        gap, bound, r = gap_bound(M)
        ranks.append(rank_of(s, tol))
        svals.append(s.tolist())
        gaps.append(gap)
        bounds.append(bound)
        rs.append(r)

    peak = int(np.argmax(ranks))  # first index of the maximum
    return {
        "c": c.tolist(),
        "rank": ranks,
        "singular_values": svals,
        "gap": gaps,
        "bound": bounds,
        "r": rs,
        "argmax_rank": rank_of(np.linalg.svd(argmax_one_hot(B), compute_uv=False), tol),
        "base_rank": rank_of(np.linalg.svd(B, compute_uv=False), tol),
        "peak_rank": ranks[peak],
        "c_at_peak": float(c[peak]),
        "shape": [int(B.shape[0]), int(B.shape[1])],
        "n": int(B.shape[0]),
        "seed": None if matrix is not None else int(seed),
        "rel_tol": tol,
        "source": source,
    }


def _stats(values: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """(mean, min, max) of a group, or Nones when the group is empty."""
    if values.size == 0:
        return None, None, None
    return float(values.mean()), float(values.min()), float(values.max())


def column_inner_products(
    c_values=None,
    n: int = 32,
    seed: int = 0,
    matrix=None,
    rel_tol: float = 1e-3,
) -> dict:
    """Inner products of softmax(c·B) columns, split by shared argmax (thesis Fig. 6.8.1).

    A pair of columns (i < j) is "same" when both columns of B peak in the same row (softmax
    is monotone, so this does not depend on c > 0), else "different". As c grows the "same"
    products rise towards 1 and the "different" ones fall towards 0; both start at 1/n.
    Fig. 6.8.1 uses a 5x5 B (``n=5``); the default 32 matches :func:`softmax_rank_curve`.

    Returns a JSON-ready dict with ``c``; ``argmax`` (row of each column's maximum);
    ``same_pairs`` / ``different_pairs`` (lists of [i, j]); ``same`` and ``different``, each
    ``{"mean", "min", "max", "values"}`` with one entry per c (``values`` holds every pair's
    product in the order of the pair list; statistics are None for an empty group); and, for
    the top panel of the figure, ``rank``, ``gap`` and ``bound`` per c (as in
    :func:`softmax_rank_curve`), plus ``n``, ``shape``, ``seed``, ``source``.
    """
    c = _check_c_values(c_values)
    tol = _check_rel_tol(rel_tol)
    B, source = _base_matrix(n, seed, matrix)
    k = B.shape[1]

    top = B.argmax(axis=0)
    iu, ju = np.triu_indices(k, k=1)
    same = top[iu] == top[ju]

    groups = {"same": same, "different": ~same}
    out = {g: {"mean": [], "min": [], "max": [], "values": []} for g in groups}
    ranks, gaps, bounds = [], [], []
    for ci in c:
        M = column_softmax(ci * B)
        G = M.T @ M
        prods = G[iu, ju]
        for g, mask in groups.items():
            mean, lo, hi = _stats(prods[mask])
            out[g]["mean"].append(mean)
            out[g]["min"].append(lo)
            out[g]["max"].append(hi)
            out[g]["values"].append(prods[mask].tolist())
        gap, bound, _ = gap_bound(M)
        ranks.append(rank_of(np.linalg.svd(M, compute_uv=False), tol))
        gaps.append(gap)
        bounds.append(bound)

    return {
        "c": c.tolist(),
        "argmax": top.tolist(),
        "same_pairs": np.stack([iu[same], ju[same]], axis=1).tolist(),
        "different_pairs": np.stack([iu[~same], ju[~same]], axis=1).tolist(),
        "same": out["same"],
        "different": out["different"],
        "rank": ranks,
        "gap": gaps,
        "bound": bounds,
        "n": int(B.shape[0]),
        "shape": [int(B.shape[0]), int(k)],
        "seed": None if matrix is not None else int(seed),
        "rel_tol": tol,
        "source": source,
    }
