"""Deep-linear toy (thesis 6.2.1-6.2.5): MSE vs cross-entropy vs dynamic temperature."""

import json

import numpy as np
import pytest

from engine.analysis.toy import (
    LOSSES,
    logit_grad,
    perturbation_accuracy,
    run_toy,
    toy_loss,
    weight_grads,
)


@pytest.fixture(scope="module")
def runs():
    """The three losses with the defaults, from the same initial network (seed 0)."""
    return {loss: run_toy(loss) for loss in LOSSES}


@pytest.fixture(scope="module")
def robustness(runs):
    sigmas = [0.0, 0.1, 0.2, 0.3, 0.5, 1.0]
    return {loss: perturbation_accuracy(r, sigmas) for loss, r in runs.items()}


# -- the gradients the training loop uses --


@pytest.mark.parametrize("loss", LOSSES)
def test_logit_gradient_matches_finite_differences(loss):
    A = np.random.default_rng(0).normal(size=(4, 4))
    G = logit_grad(A, loss)
    eps = 1e-6
    num = np.zeros_like(A)
    for idx in np.ndindex(A.shape):
        E = np.zeros_like(A)
        E[idx] = eps
        num[idx] = (toy_loss(A + E, loss) - toy_loss(A - E, loss)) / (2 * eps)
    np.testing.assert_allclose(G, num, atol=1e-8)


def test_weight_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    Ws = [rng.normal(size=(3, 3)) for _ in range(3)]

    def f(W1, W2, W3):
        return toy_loss(W3 @ W2 @ W1, "ce")

    grads = weight_grads(*Ws, logit_grad(Ws[2] @ Ws[1] @ Ws[0], "ce"))
    eps = 1e-6
    for layer in range(3):
        num = np.zeros((3, 3))
        for idx in np.ndindex(3, 3):
            plus = [w.copy() for w in Ws]
            minus = [w.copy() for w in Ws]
            plus[layer][idx] += eps
            minus[layer][idx] -= eps
            num[idx] = (f(*plus) - f(*minus)) / (2 * eps)
        np.testing.assert_allclose(grads[layer], num, atol=1e-8)


@pytest.mark.parametrize("loss", LOSSES)
def test_training_loop_takes_the_gradient_step(loss):
    """One step of run_toy equals one step of W -= lr·grad with the tested gradients."""
    r0 = run_toy(loss, iters=1, lr=0.3, init_scale=0.5, seed=7)
    rng = np.random.default_rng(7)
    Ws = [0.5 * rng.standard_normal((5, 5)) for _ in range(3)]
    grads = weight_grads(*Ws, logit_grad(Ws[2] @ Ws[1] @ Ws[0], loss))
    for w, g, got in zip(Ws, grads, r0["weights"], strict=True):
        np.testing.assert_allclose(got, w - 0.3 * g, rtol=1e-12, atol=1e-14)


# -- the thesis' contrast --


def test_mse_ends_at_full_rank(runs):
    f = runs["mse"]["final"]
    assert f["rank"] == 5
    assert f["accuracy"] == 1.0
    np.testing.assert_allclose(f["singular_values"], 1.0, atol=1e-3)  # Fig. 6.2.3 left


def test_cross_entropy_stalls_at_low_rank_with_perfect_accuracy(runs):
    f = runs["ce"]["final"]
    assert f["accuracy"] == 1.0
    assert f["rank"] == 2
    assert f["rank_centered"] == 2
    s = f["singular_values"]
    assert s[1] > 10 and s[2] < 1e-2  # two modes grew far past 1, the rest did not (Fig 6.2.3)
    # It has stalled: the rank was already 2 halfway through training.
    r = runs["ce"]
    assert set(r["rank"][len(r["rank"]) // 2 :]) == {2}


def test_post_softmax_spectrum_settles_at_one_for_ce(runs):
    """Fig. 6.2.4: as the top pre-softmax values grow, all post-softmax values go to 1."""
    post = runs["ce"]["singular_values_post"]
    assert post[0][1] < 0.01  # near-uniform columns at the start: one value ~1, rest ~0
    np.testing.assert_allclose(post[-1], 1.0, atol=1e-3)


def test_dynamic_temperature_recovers_full_rank(runs):
    f = runs["ce-dynamic"]["final"]
    assert f["accuracy"] == 1.0
    # Full rank of what a softmax can see (d - 1 = 4), like MSE's identity and unlike CE.
    assert f["rank_centered"] == 4 == runs["mse"]["final"]["rank_centered"]
    assert f["rank"] >= 4 > runs["ce"]["final"]["rank"]
    s = np.asarray(f["singular_values"][:4])
    assert s.min() / s.max() > 0.99  # four equal singular values: a scaled centred identity
    A = np.asarray(runs["ce-dynamic"]["product"])
    C, D = A - A.mean(axis=0), np.eye(5) - 1 / 5
    np.testing.assert_allclose(C / np.linalg.norm(C), D / np.linalg.norm(D), atol=1e-3)


def test_phase_one_collapse(runs):
    """Fig. 6.2.1: every loss starts full rank and collapses before phase 2."""
    for r in runs.values():
        assert r["rank"][0] == 5
        assert min(r["rank"]) <= 3
    assert min(runs["ce"]["rank"]) == 1


def test_full_rank_solutions_are_more_robust(robustness):
    """Fig. 6.2.2: the rank-2 CE solution loses accuracy under noise much faster."""
    mse, ce, dyn = (np.asarray(robustness[k]["accuracy"]) for k in LOSSES)
    assert mse[0] == ce[0] == dyn[0] == 1.0
    for i, sigma in enumerate(robustness["mse"]["sigma"]):
        if sigma >= 0.1:
            assert mse[i] > ce[i]
        if 0.1 <= sigma <= 0.5:
            assert mse[i] - ce[i] > 0.05
    np.testing.assert_allclose(dyn, mse, atol=0.01)  # the green curve hides behind the blue


def test_perturbation_accuracy_shape_and_determinism(runs, robustness):
    p = robustness["mse"]
    assert p["loss"] == "mse" and p["k"] == 1000
    assert len(p["per_class"]) == len(p["sigma"]) and len(p["per_class"][0]) == 5
    np.testing.assert_allclose(np.mean(p["per_class"], axis=1), p["accuracy"])
    assert perturbation_accuracy(runs["mse"], p["sigma"]) == p
    assert perturbation_accuracy(runs["mse"], [0.5], seed=1) != perturbation_accuracy(
        runs["mse"], [0.5], seed=2
    )
    json.dumps(p)


# -- the result itself --


def test_result_structure(runs):
    r = runs["mse"]
    n = len(r["iteration"])
    assert r["iteration"][0] == 0 and r["iteration"][-1] == r["iters"]
    assert n == r["iters"] // r["record_every"] + 1
    for key in ("loss_value", "rank", "rank_centered", "singular_values", "accuracy"):
        assert len(r[key]) == n
    assert len(r["singular_values_post"]) == n
    assert np.asarray(r["weights"]).shape == (3, 5, 5)
    np.testing.assert_allclose(
        r["product"], np.linalg.multi_dot(np.asarray(r["weights"])[::-1]), atol=1e-12
    )
    assert r["diverged"] is False
    json.dumps(r)


@pytest.mark.parametrize("loss", LOSSES)
def test_recorded_loss_and_accuracy_match_the_final_product(runs, loss):
    r = runs[loss]
    A = np.asarray(r["product"])
    assert r["final"]["loss_value"] == pytest.approx(toy_loss(A, loss), rel=1e-9, abs=1e-15)
    assert r["final"]["accuracy"] == np.mean(A.argmax(axis=0) == np.arange(5))
    s = np.linalg.svd(A, compute_uv=False)
    np.testing.assert_allclose(r["final"]["singular_values"], s, rtol=1e-9, atol=1e-12 * s[0])


def test_identical_for_a_fixed_seed():
    a = run_toy("ce", iters=300, record_every=50, seed=3)
    assert a == run_toy("ce", iters=300, record_every=50, seed=3)
    assert a != run_toy("ce", iters=300, record_every=50, seed=4)


def test_same_seed_same_initial_network():
    first = {loss: run_toy(loss, iters=1)["singular_values"][0] for loss in LOSSES}
    assert first["mse"] == first["ce"] == first["ce-dynamic"]


def test_record_every_not_dividing_iters():
    r = run_toy("mse", iters=25, record_every=10)
    assert r["iteration"] == [0, 10, 20, 25]


def test_divergence_is_reported_not_raised():
    r = run_toy("mse", iters=200, lr=50.0, init_scale=1.0, record_every=1)
    assert r["diverged"] is True
    assert len(r["iteration"]) < 201
    # What comes back is the last finite record, so it stays plottable and JSON-clean.
    assert np.all(np.isfinite(r["weights"])) and np.all(np.isfinite(r["singular_values"]))
    json.dumps(r, allow_nan=False)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"loss": "hinge"}, "loss"),
        ({"d": 1}, "d"),
        ({"iters": 0}, "iters"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"init_scale": -1.0}, "init_scale"),
        ({"record_every": 0}, "record_every"),
        ({"seed": -2}, "seed"),
        ({"rel_tol": 1.5}, "rel_tol"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        run_toy(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"sigmas": [-0.1]}, "sigmas"), ({"sigmas": []}, "sigmas"), ({"k": 0}, "k")],
)
def test_perturbation_bad_input(runs, kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        perturbation_accuracy(runs["mse"], **kwargs)
    with pytest.raises(ValueError, match="^result "):
        perturbation_accuracy({"loss": "mse"})


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
def test_contrast_holds_across_seeds(seed):
    mse, ce, dyn = (run_toy(loss, seed=seed, record_every=100) for loss in LOSSES)
    assert mse["final"]["rank"] == 5 and mse["final"]["accuracy"] == 1.0
    assert ce["final"]["rank"] <= 3 and ce["final"]["accuracy"] == 1.0
    assert dyn["final"]["rank_centered"] == 4 and dyn["final"]["accuracy"] == 1.0
    acc = {r["loss"]: perturbation_accuracy(r, [0.3])["accuracy"][0] for r in (mse, ce, dyn)}
    assert acc["mse"] - acc["ce"] > 0.05
    assert abs(acc["mse"] - acc["ce-dynamic"]) < 0.01
