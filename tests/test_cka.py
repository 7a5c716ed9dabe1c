"""CKA: the properties users rely on, checked against plain textbook evaluations."""

import warnings

import numpy as np
import pytest
import torch

from engine.analysis import cka
from engine.analysis.cka import cka_drift, cka_matrix, linear_cka

# ---------------------------------------------------------------------------------------
# Plain float64 evaluations of the thesis formulas, written as directly as possible.
# ---------------------------------------------------------------------------------------


def textbook_linear_cka(X, Y):
    """Thesis eq. 3.1 on column-centred features."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    num = np.linalg.norm(X.T @ Y, "fro") ** 2
    return num / (np.linalg.norm(X.T @ X, "fro") * np.linalg.norm(Y.T @ Y, "fro"))


def textbook_hsic_unbiased(K, L):
    """Thesis eq. 5.2, with K̃ = K - diag(K)."""
    n = K.shape[0]
    Kt = K - np.diag(np.diag(K))
    Lt = L - np.diag(np.diag(L))
    one = np.ones(n)
    return (
        np.trace(Kt @ Lt)
        + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ Kt @ Lt @ one)
    ) / (n * (n - 3))


def textbook_minibatch_cka(X, Y, n_batches):
    """Thesis eq. 5.1 over consecutive batches (np.array_split), raw (uncentred) Grams."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    xy = xx = yy = 0.0
    for idx in np.array_split(np.arange(len(X)), n_batches):
        K, L = X[idx] @ X[idx].T, Y[idx] @ Y[idx].T
        xy += textbook_hsic_unbiased(K, L)
        xx += textbook_hsic_unbiased(K, K)
        yy += textbook_hsic_unbiased(L, L)
    return xy / (np.sqrt(xx) * np.sqrt(yy))


def relu_layers(n=400, widths=(8, 16, 32, 24), seed=0):
    """A small random ReLU network's activations: correlated, non-centred, like real layers."""
    g = np.random.default_rng(seed)
    h = g.normal(size=(n, 12))
    out = []
    for w in widths:
        h = np.maximum(h @ g.normal(size=(h.shape[1], w)) / np.sqrt(h.shape[1]) + 0.5, 0)
        out.append(h)
    return out


def orthogonal(p, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(p, p)))
    return q


METHODS = ["linear", "minibatch"]


def cka_of(X, Y, method, **kw):
    return cka_matrix([X], [Y], method=method, batch_size=100, **kw)[0, 0]


# The default works in float32 with float64 sums (promised: within 1e-5 of float64);
# dtype=float64 checks the algebra itself to ~1e-10.
F64 = {"dtype": torch.float64}


# ---------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_identical_inputs_give_one(method):
    X = relu_layers()[2]
    assert cka_of(X, X, method) == pytest.approx(1.0, abs=1e-6)
    assert cka_of(X, X, method, **F64) == pytest.approx(1.0, abs=1e-12)
    assert cka_matrix([X], method=method)[0, 0] == 1.0
    assert linear_cka(X, X) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_invariant_to_orthogonal_transform_and_isotropic_scaling(method):
    X, Y = relu_layers()[1:3]
    Q1, Q2 = orthogonal(X.shape[1], seed=2), orthogonal(Y.shape[1], seed=1)
    for kw, tol in (({}, 1e-6), (F64, 1e-10)):
        base = cka_of(X, Y, method, **kw)
        assert cka_of(X, Y @ Q2, method, **kw) == pytest.approx(base, abs=tol)
        assert cka_of(X @ Q1, Y, method, **kw) == pytest.approx(base, abs=tol)
        assert cka_of(3.7 * X, Y, method, **kw) == pytest.approx(base, abs=tol)
        assert cka_of(X, 0.01 * Y, method, **kw) == pytest.approx(base, abs=tol)


@pytest.mark.parametrize("method", METHODS)
def test_not_invariant_to_general_invertible_map(method):
    g = np.random.default_rng(3)
    X = g.normal(size=(500, 10))
    A = np.diag(np.logspace(0, 2, 10)) @ orthogonal(10, seed=4)  # invertible, not orthogonal
    assert abs(np.linalg.det(A)) > 1
    assert cka_of(X, X, method) == pytest.approx(1.0)
    assert cka_of(X, X @ A, method) < 0.9


def test_linear_cka_matches_textbook_formula():
    g = np.random.default_rng(5)
    for n, p, q in [(300, 20, 40), (50, 120, 80), (200, 1, 7)]:  # feature form and Gram form
        X = g.normal(size=(n, p)) + 2.0
        Y = np.tanh(X[:, :1] @ g.normal(size=(1, q))) + 0.3 * g.normal(size=(n, q))
        assert linear_cka(X, Y) == pytest.approx(textbook_linear_cka(X, Y), abs=1e-6)


def test_minibatch_matches_textbook_estimator():
    X, Y = relu_layers(n=300)[1:3]
    for batch_size in (
        50,
        64,
        300,
    ):  # even split; near-equal split (300 // 64 = 4 batches); one batch
        want = textbook_minibatch_cka(X, Y, 300 // batch_size)
        for kw, tol in (({}, 1e-6), (F64, 1e-10)):
            got = cka_matrix([X], [Y], method="minibatch", batch_size=batch_size, seed=None, **kw)
            assert got[0, 0] == pytest.approx(want, abs=tol)


def test_minibatch_approaches_full_batch_unbiased_value():
    g = np.random.default_rng(0)
    n = 1024
    X = g.normal(size=(n, 32))
    Y = np.maximum(X @ g.normal(size=(32, 48)), 0) + g.normal(size=(n, 48))
    full = cka_matrix([X], [Y], method="minibatch", batch_size=n)[0, 0]  # one batch of n

    def rms_error(m):  # over a few shufflings of the samples into batches
        vals = [
            cka_matrix([X], [Y], method="minibatch", batch_size=m, seed=s)[0, 0] for s in range(4)
        ]
        return np.sqrt(np.mean((np.array(vals) - full) ** 2))

    small, large = rms_error(8), rms_error(256)
    assert large < small / 2
    assert large < 0.005
    # ... and the unbiased full-batch value is close to the plain (biased) linear CKA.
    assert full == pytest.approx(linear_cka(X, Y), abs=0.02)


@pytest.mark.parametrize(
    ("n", "widths"),
    [(400, (8, 16, 32, 24)), (40, (60, 90, 120))],  # feature form; Gram form
)
def test_cka_matrix_equals_pairwise_linear_cka(n, widths):
    acts = relu_layers(n=n, widths=widths)
    other = relu_layers(n=n, widths=widths[::-1], seed=9)
    for kw, tol in (({}, 1e-6), (F64, 1e-10)):
        self_m = cka_matrix(acts, **kw)
        cross = cka_matrix(acts, other, **kw)
        assert self_m.shape == (len(acts), len(acts))
        assert cross.shape == (len(acts), len(other))
        for i, a in enumerate(acts):
            for j, b in enumerate(acts):
                assert self_m[i, j] == pytest.approx(linear_cka(a, b), abs=tol)
            for j, b in enumerate(other):
                assert cross[i, j] == pytest.approx(textbook_linear_cka(a, b), abs=tol)


def test_both_linear_forms_are_used_and_agree(monkeypatch):
    calls = []
    for name in ("_linear_feature_form", "_linear_gram_form"):
        real = getattr(cka, name)
        monkeypatch.setattr(cka, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    wide = relu_layers(n=30, widths=(50, 70))
    narrow = relu_layers(n=500, widths=(4, 6))
    gram = cka_matrix(wide)
    feat = cka_matrix(narrow)
    assert calls == ["_linear_gram_form", "_linear_feature_form"]
    layers = [cka._Layer(torch.as_tensor(a), torch.float64) for a in wide]
    h_f, *_ = cka._linear_feature_form(layers, None)
    h_g, *_ = cka._linear_gram_form(layers, None)
    assert torch.allclose(h_f, h_g, rtol=1e-10)
    assert gram[0, 1] == pytest.approx(linear_cka(*wide), abs=1e-6)
    assert feat[0, 1] == pytest.approx(linear_cka(*narrow), abs=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_self_matrix_is_symmetric_with_unit_diagonal(method):
    m = cka_matrix(relu_layers(), method=method, batch_size=64)
    assert np.array_equal(m, m.T)
    assert np.array_equal(np.diag(m), np.ones(len(m)))
    assert np.all(m <= 1 + 1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_numpy_torch_and_conv_shaped_inputs(method):
    acts = relu_layers(n=200, widths=(12, 48))
    from_numpy = cka_matrix(acts, method=method)
    from_torch = cka_matrix([torch.tensor(a, dtype=torch.float32) for a in acts], method=method)
    mixed = cka_matrix([acts[0], torch.tensor(acts[1])], method=method)
    assert np.allclose(from_numpy, from_torch, atol=1e-6)
    assert np.allclose(from_numpy, mixed, atol=1e-6)
    conv = [acts[0], acts[1].reshape(200, 3, 4, 4)]  # trailing dims are flattened
    assert np.allclose(cka_matrix(conv, method=method), from_numpy, atol=1e-12)
    assert isinstance(linear_cka(torch.tensor(acts[0]), acts[1]), float)


@pytest.fixture
def reduced_fp32_matmul():
    """Another part of the program asked for fast (TF32 / bf16) float32 matmuls."""
    prev = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    yield
    torch.set_float32_matmul_precision(prev)


@pytest.mark.parametrize("method", METHODS)
def test_float32_is_within_1e5_of_float64(method, reduced_fp32_matmul):
    # Non-centred ReLU features with a large common mean: the hard case for float32.
    acts = [a * 100 + 50 for a in relu_layers(n=1024, widths=(16, 64, 128, 32))]
    ref = cka_matrix(acts, method=method, batch_size=256, dtype=torch.float64)
    f32 = cka_matrix(
        [torch.tensor(a, dtype=torch.float32) for a in acts], method=method, dtype=torch.float32
    )
    assert np.abs(f32 - ref).max() < 1e-5
    assert torch.get_float32_matmul_precision() == "medium"  # the caller's setting survives


@pytest.mark.parametrize("method", METHODS)
def test_large_common_mean_keeps_accuracy(method):
    # Un-normalised features: mean/std ~ 1e4. Raw-Gram formulas lose every digit here even in
    # float64 (torch-cka returns NaN); centring first is exact for both estimators.
    acts = [(a + 1e4).astype(np.float32) for a in relu_layers(n=512, widths=(16, 64, 32))]
    centred = [a.astype(np.float64) - a.astype(np.float64).mean(0) for a in acts]
    got = cka_matrix(acts, method=method, batch_size=128)
    want = cka_matrix(centred, method=method, batch_size=128, **F64)
    assert not np.isnan(got).any()
    assert np.abs(got - want).max() < 1e-5


def test_mismatched_samples_raise_value_error():
    X, Y = np.ones((10, 3)), np.ones((11, 3))
    with pytest.raises(ValueError, match="same number of samples"):
        linear_cka(X, Y)
    with pytest.raises(ValueError, match="same number of samples"):
        cka_matrix([X, Y])
    with pytest.raises(ValueError, match="same number of samples"):
        cka_matrix([X], [Y], method="minibatch")


def test_bad_arguments_raise_value_error():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="method"):
        cka_matrix([X], method="rbf")
    with pytest.raises(ValueError, match="list of layer activations"):
        cka_matrix(X)
    with pytest.raises(ValueError, match="batch_size"):
        cka_matrix([X], method="minibatch", batch_size=3)
    with pytest.raises(ValueError, match="at least 4 samples"):
        cka_matrix([X[:3]], method="minibatch")
    with pytest.raises(ValueError, match="at least 2 samples"):
        cka_matrix([X[:1]])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("value", [0.0, 0.1])  # 0.1 has no exact binary mean
def test_constant_layer_gives_nan_not_error(method, value):
    X = np.random.default_rng(0).normal(size=(64, 4))
    dead = np.full((64, 8), value)
    assert np.isnan(linear_cka(X, dead))
    m = cka_matrix([X, dead], method=method, batch_size=16)
    assert m[0, 0] == 1.0 and np.isnan(m[0, 1]) and np.isnan(m[1, 1])
    assert np.isnan(cka_matrix([X], [dead], method=method, batch_size=16)).all()


@pytest.mark.parametrize("method", METHODS)
def test_cka_drift(method):
    g = np.random.default_rng(7)
    # Three checkpoints of a 2-layer model: each checkpoint perturbs the previous one.
    ckpts = [relu_layers(n=300, widths=(10, 20))]
    for _ in range(2):
        ckpts.append([a + 0.5 * g.normal(size=a.shape) for a in ckpts[-1]])
    d = cka_drift(ckpts, method=method, batch_size=100)
    assert d.shape == (2, 3, 3)
    for layer in range(2):
        assert np.allclose(d[layer], d[layer].T)
        assert np.allclose(np.diag(d[layer]), 1.0)
        if method == "linear":
            assert d[layer, 0, 2] == pytest.approx(linear_cka(ckpts[0][layer], ckpts[2][layer]))
        assert d[layer, 0, 1] > d[layer, 0, 2]  # drift grows with distance from the reference
    with pytest.raises(ValueError, match="same number of layers"):
        cka_drift([ckpts[0], ckpts[1][:1]])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", METHODS)
def test_cuda_matches_cpu(method):
    acts = [a * 10 + 5 for a in relu_layers(n=1024, widths=(16, 64, 128))]
    cpu = cka_matrix(acts, method=method)
    gpu = cka_matrix(
        [torch.tensor(a, dtype=torch.float32, device="cuda") for a in acts], method=method
    )
    assert np.abs(gpu - cpu).max() < 1e-5


# ---------------------------------------------------------------------------------------
# Edges that change a reported number (docs/testing.md: mutation testing)
# ---------------------------------------------------------------------------------------


def test_minibatch_with_unequal_batches_weights_each_by_its_own_size():
    # 301 samples in 3 batches of 101, 100, 100: each batch's HSIC is normalised by its own
    # m(m − 3) before averaging (eq. 5.1); equal batches would hide a wrong normaliser.
    X, Y = relu_layers(n=301)[1:3]
    want = textbook_minibatch_cka(X, Y, 3)
    got = cka_matrix([X], [Y], method="minibatch", batch_size=100, seed=None, **F64)
    assert got[0, 0] == pytest.approx(want, abs=1e-10)


def test_minibatch_between_models_with_different_depths():
    acts = relu_layers(n=200, widths=(8, 16, 12))
    other = relu_layers(n=200, widths=(10, 6), seed=4)
    got = cka_matrix(acts, other, method="minibatch", batch_size=50, seed=None, **F64)
    assert got.shape == (3, 2)
    for i, a in enumerate(acts):
        for j, b in enumerate(other):
            assert got[i, j] == pytest.approx(textbook_minibatch_cka(a, b, 4), abs=1e-10)


def test_minibatch_shuffles_with_seed_0_by_default():
    X, Y = relu_layers(n=200)[1:3]
    default = cka_matrix([X], [Y], method="minibatch", batch_size=50)
    assert np.array_equal(default, cka_matrix([X], [Y], method="minibatch", batch_size=50, seed=0))
    for other_seed in (None, 1):
        shuffled = cka_matrix([X], [Y], method="minibatch", batch_size=50, seed=other_seed)
        assert not np.array_equal(default, shuffled)


def test_gram_form_with_a_narrow_first_layer():
    # Wide overall (the Gram form is chosen) but the first layer has fewer features than
    # samples: n must come from the rows, not the columns.
    acts = relu_layers(n=60, widths=(3, 400))
    other = relu_layers(n=60, widths=(500,), seed=2)
    self_m, cross = cka_matrix(acts, **F64), cka_matrix(acts, other, **F64)
    assert self_m[0, 1] == pytest.approx(textbook_linear_cka(*acts), abs=1e-10)
    for i, a in enumerate(acts):
        assert cross[i, 0] == pytest.approx(textbook_linear_cka(a, other[0]), abs=1e-10)
    one = cka_matrix(acts[1:], other, **F64)  # a single wide layer on each side
    assert one[0, 0] == pytest.approx(textbook_linear_cka(acts[1], other[0]), abs=1e-10)


def test_feature_form_with_more_than_512_features():
    X = relu_layers(n=400, widths=(600,))[0]
    Y = relu_layers(n=400, widths=(8,), seed=3)[0]
    assert cka_matrix([X], [Y], **F64)[0, 0] == pytest.approx(textbook_linear_cka(X, Y), abs=1e-10)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("n", "widths"), [(300, (6, 9)), (30, (50, 70))])  # feature; Gram
def test_results_do_not_depend_on_how_the_work_is_chunked(method, n, widths, monkeypatch):
    acts = relu_layers(n=n, widths=widths)
    other = relu_layers(n=n, widths=widths[::-1], seed=5)
    kw = {"method": method, "batch_size": 10, **F64}
    whole = [cka_matrix(acts, **kw), cka_matrix(acts, other, **kw)]
    monkeypatch.setattr(cka, "_BLOCK_ELEMS", 2048)  # several row chunks per form
    monkeypatch.setattr(cka, "_MAX_DOT", 16)  # several column chunks per inner product
    chunked = [cka_matrix(acts, **kw), cka_matrix(acts, other, **kw)]
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_float32_handles_activations_near_its_range_limits(method):
    # Squares of 1e±25 over- or underflow float32; rows are rescaled by a power of two first.
    X, Y = relu_layers(n=256, widths=(16, 24))
    want = cka_matrix([X], [Y], method=method, batch_size=64, **F64)[0, 0]
    for a, b in ((1e-25, 1e25), (1e30, 1e-30)):
        xs = [torch.tensor(a * X, dtype=torch.float32), torch.tensor(b * Y, dtype=torch.float32)]
        got = cka_matrix(xs, method=method, batch_size=64)
        assert got[0, 1] == pytest.approx(want, abs=1e-5)
        got = cka_matrix(xs[:1], xs[1:], method=method, batch_size=64)
        assert got[0, 0] == pytest.approx(want, abs=1e-5)
    tiny = 1e-3 * X  # ||XᵀX|| · ||YᵀY|| well below 1 is still a valid denominator
    assert linear_cka(tiny, Y) == pytest.approx(linear_cka(X, Y), abs=1e-12)


def test_float32_minibatch_of_1024_stays_within_1e5():
    # One batch of 1024: the <U(K), U(L)> sums run over a million Gram entries, which a plain
    # float32 dot product gets wrong by ~7e-5; they are accumulated in float64 chunks.
    acts = [a * 100 + 50 for a in relu_layers(n=1024, widths=(16, 64, 128, 32))]
    ref = cka_matrix(acts, method="minibatch", batch_size=1024, dtype=torch.float64)
    f32 = cka_matrix(
        [torch.tensor(a, dtype=torch.float32) for a in acts], method="minibatch", batch_size=1024
    )
    assert np.abs(f32 - ref).max() < 1e-5


@pytest.mark.parametrize(("method", "seed"), [("linear", 3), ("minibatch", 5)])
def test_identical_layers_of_two_models_never_exceed_one(method, seed):
    # float32 rounding puts HSIC(X, X') a hair above sqrt(HSIC(X, X) HSIC(X', X')) for these
    # inputs (1 + 2e-16 linear, 1 + 6e-8 minibatch); CKA is reported clipped to at most 1.
    X = np.random.default_rng(seed).normal(size=(50, 7)).astype(np.float32)
    got = cka_matrix([X], [X.copy()], method=method, batch_size=16)[0, 0]
    assert got <= 1.0
    assert got == pytest.approx(1.0, abs=1e-6)


def test_smallest_valid_inputs():
    X = np.random.default_rng(1).normal(size=(4, 3))
    assert cka_matrix([X[:2], X[2:]], method="linear")[0, 1] == pytest.approx(1.0)  # n = 2
    four = cka_matrix([X], [X[:, :2]], method="minibatch", batch_size=4)  # n = m = 4
    assert np.isfinite(four).all()
    assert cka_matrix([X], [X], method="minibatch", batch_size=4)[0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("method", METHODS)
def test_constant_layer_is_nan_without_warnings(method):
    X = np.random.default_rng(0).normal(size=(64, 4))
    dead = np.zeros((64, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(linear_cka(X, dead))
        assert np.isnan(cka_matrix([X, dead], method=method, batch_size=16)[0, 1])
        assert np.isnan(cka_matrix([X], [dead], method=method, batch_size=16)).all()


def test_messages_name_the_argument():
    X, X11 = np.ones((10, 3)), np.ones((11, 3))
    scalar = np.float64(1.0)
    cases = [
        (lambda: linear_cka(scalar, X), r"^X: activations must have a sample dimension"),
        (lambda: linear_cka(X, scalar), r"^Y: activations must have a sample dimension"),
        (lambda: linear_cka(X, X11), r"\(rows\): X has 10, Y has 11$"),
        (lambda: cka_matrix([X, scalar]), r"^acts_a\[1\]: activations must have a sample"),
        (lambda: cka_matrix([X], [X, scalar]), r"^acts_b\[1\]: activations must have a sample"),
        (lambda: cka_matrix([X], [X11]), r"\(rows\): acts_a\[0\] has 10, acts_b\[0\] has 11$"),
        (lambda: cka_matrix([]), r"^acts_a: no layers given$"),
        (lambda: cka_matrix([X], []), r"^acts_b: no layers given$"),
        (lambda: cka_matrix(X), r"^acts_a: expected a list of layer activations"),
        (lambda: cka_matrix([X], X), r"^acts_b: expected a list of layer activations"),
        (lambda: cka_drift([]), r"^acts_by_task: no checkpoints given$"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def test_cka_drift_passes_its_settings_to_cka_matrix():
    g = np.random.default_rng(8)
    ckpts = [relu_layers(n=200, widths=(10, 20))]
    ckpts.append([a + 0.5 * g.normal(size=a.shape) for a in ckpts[-1]])
    assert np.array_equal(cka_drift(ckpts), cka_drift(ckpts, method="linear"))
    d = cka_drift(ckpts, method="minibatch", batch_size=40, seed=None)
    for layer in range(2):
        want = cka_matrix([c[layer] for c in ckpts], method="minibatch", batch_size=40, seed=None)
        assert np.array_equal(d[layer], want)
    assert not np.array_equal(d, cka_drift(ckpts, method="minibatch"))


def test_linear_cka_centres_float32_input_in_float64():
    # Columns with a large common mean: a float32 mean would be off by ~1e-3 and leave that
    # offset in every row; linear_cka promises a float64 evaluation of the given values.
    g = np.random.default_rng(9)
    X = (1e4 + g.normal(size=(200, 6))).astype(np.float32)
    Y = (1e4 + X[:, :3] @ g.normal(size=(3, 5)) + g.normal(size=(200, 5))).astype(np.float32)
    want = textbook_linear_cka(X.astype(np.float64), Y.astype(np.float64))
    assert linear_cka(X, Y) == pytest.approx(want, abs=1e-9)
    assert linear_cka(torch.tensor(X), torch.tensor(Y)) == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_integer_half_and_3d_inputs_are_read_as_float32_matrices(method):
    # Integers and float16 / bfloat16 are widened to float32 (squares of a half above 256
    # overflow); trailing dimensions, however many, are flattened into features.
    g = np.random.default_rng(10)
    ints = g.integers(0, 50, size=(128, 6))
    big = torch.tensor(g.normal(size=(128, 8)) * 300)
    kw = {"method": method, "batch_size": 32}
    for half in (torch.float16, torch.bfloat16):
        h = big.to(half)
        want = cka_matrix([ints.astype(np.float32), h.float()], **kw)
        assert np.array_equal(cka_matrix([ints, h], **kw), want)
    X = g.normal(size=(128, 12))
    flat = cka_matrix([X, ints], **kw)
    assert np.array_equal(cka_matrix([X.reshape(128, 3, 4), ints], **kw), flat)
    assert linear_cka(ints, X) == pytest.approx(linear_cka(ints.astype(np.float64), X), abs=1e-12)
