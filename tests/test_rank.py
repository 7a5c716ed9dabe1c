"""Numerical rank: known ranks, the thesis threshold, the feature cap."""

import numpy as np
import pytest
import torch

from engine.analysis import rank
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


# -- edges and defaults that change a reported rank (docs/testing.md: mutation testing) --------


def test_a_value_exactly_at_the_threshold_is_not_counted():
    # Centred orthogonal columns: covariance diag(2/3, 1/6) exactly, and 1/6 = 0.25 · 2/3
    # exactly in binary. The thesis counts singular values *above* rel_tol · σ₁.
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5], [0.0, -0.5]])
    np.testing.assert_array_equal(covariance_spectrum(X), [2 / 3, 0.5 / 3])
    assert numerical_rank(X, rel_tol=0.25) == 1
    assert numerical_rank(X, rel_tol=0.2499) == 2


def test_smallest_inputs():
    assert numerical_rank([[0.0], [1.0]]) == 1  # two samples, one feature
    assert numerical_rank(np.arange(5.0)) == 1  # a vector is n samples of one feature
    assert numerical_rank(np.zeros((5, 0))) == 0  # no features at all
    assert numerical_rank(np.arange(12).reshape(4, 3) ** 2) == 2  # integers are fine
    assert numerical_rank(np.ones((6, 4)), max_features=1) == 0
    assert numerical_rank(low_rank(50, 8, 3), max_features=1) == 1


def _only_feature_left_out_by_the_default_subset(seed=0):
    """3 samples of 8,001 features, all constant but the one the seed's subset of the default
    8,000 leaves out (the subset is the first 8,000 of a seeded ``torch.randperm``)."""
    dropped = int(torch.randperm(8001, generator=torch.Generator().manual_seed(seed))[8000])
    X = np.zeros((3, 8001))
    X[:, dropped] = [0.0, 1.0, 2.0]
    return X


def test_default_feature_cap_is_8000_with_seed_0():
    X = _only_feature_left_out_by_the_default_subset()
    assert numerical_rank(X) == 0
    assert rank_by_layer([X]) == [0]
    assert numerical_rank(X, max_features=8001) == 1
    assert rank_by_layer([X], max_features=8001) == [1]
    assert numerical_rank(X, seed=1) == rank_by_layer([X], seed=1)[0] == 1
    np.testing.assert_array_equal(covariance_spectrum(X), [0.0, 0.0, 0.0])
    assert covariance_spectrum(X, seed=1)[0] == pytest.approx(1.0)


def test_rank_by_layer_passes_its_settings_on():
    X = np.random.default_rng(5).normal(size=(40, 30)) @ np.diag(np.logspace(0, -3, 30))
    for kw in ({"rel_tol": 0.05}, {"max_features": 10, "seed": 3}):
        assert rank_by_layer([X], **kw) == [numerical_rank(X, **kw)]
    assert numerical_rank(X, rel_tol=0.05) != numerical_rank(X)


@pytest.mark.parametrize(("n", "p"), [(300, 5), (6, 300)])  # covariance form; Gram form
def test_float32_input_gets_a_float64_covariance(n, p):
    # A large common mean in float32: centring with a float32 mean would leave a residual
    # that shows in the top eigenvalue; the promise is the float64 covariance of the values.
    g = np.random.default_rng(6)
    X = (1e4 + 0.1 * g.normal(size=(n, p))).astype(np.float32)
    want = np.linalg.eigvalsh(np.cov(X.astype(np.float64), rowvar=False))[::-1][: min(n, p)]
    for given in (X, torch.tensor(X)):
        np.testing.assert_allclose(
            covariance_spectrum(given), want, rtol=1e-9, atol=1e-12 * want[0]
        )


@pytest.mark.parametrize(("n", "p"), [(60, 7), (7, 60)])  # covariance form; Gram form
def test_chunked_accumulation_equals_one_pass(n, p, monkeypatch):
    X = low_rank(n, p, 4, noise=0.01)
    whole = covariance_spectrum(X)
    monkeypatch.setattr(rank, "_CHUNK_ELEMS", 20)  # a few rows (or columns) per chunk
    np.testing.assert_allclose(covariance_spectrum(X), whole, rtol=1e-10, atol=1e-14)


def test_messages_name_the_argument():
    with pytest.raises(ValueError, match=r"^X must have a sample dimension"):
        covariance_spectrum(np.float64(3.0))
    with pytest.raises(ValueError, match=r"^the sample covariance needs at least 2 samples"):
        numerical_rank(np.ones((1, 4)))
    with pytest.raises(ValueError, match=r"^max_features must be positive, got 0"):
        numerical_rank(np.ones((5, 4)), max_features=0)
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError, match=r"^rel_tol must be in \(0, 1\)"):
            numerical_rank(np.ones((5, 4)), rel_tol=bad)
    with pytest.raises(ValueError, match=r"^acts: expected a list of layer activations"):
        rank_by_layer(np.zeros((10, 3)))
