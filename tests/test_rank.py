"""Numerical rank: known ranks, the thesis threshold, the feature cap."""

import numpy as np
import pytest
import torch

from engine.analysis.rank import covariance_spectrum, numerical_rank, rank_by_layer


def low_rank(n, p, r, seed=0, noise=0.0):
    g = np.random.default_rng(seed)
    X = g.normal(size=(n, r)) @ g.normal(size=(r, p)) + 3.0  # offset: centring must remove it
    return X + noise * g.normal(size=(n, p))


def direct_count(X, rel_tol=1e-3):
    """Singular values of np.cov, counted above rel_tol · σ₁ -- the thesis definition."""
    s = np.linalg.svd(np.cov(np.asarray(X, dtype=np.float64), rowvar=False), compute_uv=False)
    return int(np.sum(s > rel_tol * s[0]))


@pytest.mark.parametrize(("n", "p", "r"), [(200, 50, 7), (30, 100, 5), (500, 64, 1)])
def test_known_rank(n, p, r):
    assert numerical_rank(low_rank(n, p, r)) == r
    assert numerical_rank(low_rank(n, p, r, noise=1e-6)) == r  # noise far below the threshold


def test_full_rank_is_capped_by_samples_minus_one():
    # Centring removes one direction: n samples span at most n - 1.
    X = np.random.default_rng(1).normal(size=(30, 100))
    assert numerical_rank(X, rel_tol=1e-6) == 29


def test_threshold_is_relative_to_the_largest_covariance_singular_value():
    # X = U diag(s) Vᵀ with centred orthonormal U: covariance eigenvalues are exactly s²/(n-1).
    g = np.random.default_rng(2)
    n, p = 100, 6
    u, _ = np.linalg.qr(np.column_stack([np.ones(n), g.normal(size=(n, p))]))
    u = u[:, 1:]  # orthogonal to the all-ones vector, so already centred
    v, _ = np.linalg.qr(g.normal(size=(p, p)))
    ratios = np.array([1, 0.1, 0.01, 0.002, 0.0005, 1e-5])
    X = u @ np.diag(np.sqrt(ratios)) @ v.T
    assert numerical_rank(X) == 4
    assert numerical_rank(X, rel_tol=0.05) == 2
    assert numerical_rank(X, rel_tol=0.005) == 3
    assert numerical_rank(X, rel_tol=1e-4) == 5
    assert np.allclose(covariance_spectrum(X)[:6], ratios / (n - 1), rtol=1e-9, atol=1e-18)


@pytest.mark.parametrize(("n", "p"), [(200, 40), (40, 200)])  # covariance form; Gram form
def test_matches_direct_count_of_covariance_singular_values(n, p):
    g = np.random.default_rng(3)
    X = g.normal(size=(n, p)) @ np.diag(np.logspace(0, -2.5, p))  # decaying spectrum
    X = X @ np.linalg.qr(g.normal(size=(p, p)))[0]
    for tol in (1e-3, 1e-2):
        assert numerical_rank(X, rel_tol=tol) == direct_count(X, tol)
    s = np.linalg.svd(np.cov(X, rowvar=False), compute_uv=False)
    k = min(n, p)
    assert np.allclose(covariance_spectrum(X), s[:k], rtol=1e-8, atol=1e-12 * s[0])


def test_feature_cap_is_honoured():
    X = np.random.default_rng(4).normal(size=(600, 200))
    assert numerical_rank(X) == 200
    assert numerical_rank(X, max_features=50) == 50
    assert len(covariance_spectrum(X, max_features=50)) == 50
    # The subset is seeded: same seed, same spectrum; another seed, another subset.
    a = covariance_spectrum(X, max_features=50, seed=0)
    assert np.array_equal(a, covariance_spectrum(X, max_features=50, seed=0))
    assert not np.allclose(a, covariance_spectrum(X, max_features=50, seed=1))
    # A rank-5 layer keeps rank 5 on a column subset.
    assert numerical_rank(low_rank(400, 200, 5), max_features=50) == 5


def test_zero_variance_is_rank_zero():
    assert numerical_rank(np.zeros((50, 10))) == 0
    assert numerical_rank(np.full((20, 40), 7.0)) == 0  # Gram form too
    # 0.1 is not exact in binary: a rounded mean would leave ~1e-17 residuals of "rank" > 0.
    assert numerical_rank(np.full((300, 10), 0.1)) == 0
    assert numerical_rank(np.full((20, 40), 0.1)) == 0


def test_rank_by_layer_numpy_torch_and_conv_shapes():
    layers = [
        low_rank(200, 40, 3),
        torch.tensor(low_rank(200, 48, 6, seed=1), dtype=torch.float32).reshape(200, 3, 4, 4),
        np.zeros((200, 5)),
    ]
    ranks = rank_by_layer(layers)
    assert ranks == [3, 6, 0]
    assert all(isinstance(r, int) for r in ranks)
    with pytest.raises(ValueError, match="list of layer activations"):
        rank_by_layer(np.zeros((10, 3)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least 2 samples"):
        numerical_rank(np.ones((1, 4)))
    with pytest.raises(ValueError, match="rel_tol"):
        numerical_rank(np.ones((5, 4)), rel_tol=0)
