"""The numbers behind the Learn page's lessons (engine/teaching.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import tiny_config

from engine import teaching
from engine.kinds import lesson_curvature as lc
from engine.runner import run

# -- lesson 1: entropy, cross-entropy, KL ------------------------------------------------------


def test_course_kl_example_in_bits():
    p, q = teaching.COURSE_P, teaching.COURSE_Q
    assert round(teaching.kl_divergence(p, q), 2) == 0.74
    assert round(teaching.kl_divergence(q, p), 2) == 0.53
    assert teaching.entropy(p) == pytest.approx(1.0)
    assert round(teaching.entropy(q), 2) == 0.47


def test_kl_is_cross_entropy_minus_entropy_term_by_term():
    t = teaching.information_terms((0.2, 0.5, 0.3), (0.6, 0.1, 0.3), "nats")
    for row in t["rows"]:
        assert row["kl_pq"] == pytest.approx(row["h_pq"] - row["h_p"])
    assert t["KL_pq"] == pytest.approx(t["H_pq"] - t["H_p"])
    assert t["KL_pq"] == pytest.approx(sum(r["kl_pq"] for r in t["rows"]))
    assert t["KL_qp"] == pytest.approx(
        teaching.kl_divergence((0.6, 0.1, 0.3), (0.2, 0.5, 0.3), "nats")
    )


def test_bits_and_nats_differ_by_ln2():
    p, q = (0.3, 0.7), (0.8, 0.2)
    assert teaching.kl_divergence(p, q, "nats") == pytest.approx(
        math.log(2) * teaching.kl_divergence(p, q, "bits")
    )


def test_kl_zero_only_for_equal_and_infinite_where_q_rules_out_an_outcome():
    assert teaching.kl_divergence((0.4, 0.6), (0.4, 0.6)) == pytest.approx(0.0, abs=1e-15)
    assert teaching.kl_divergence((0.5, 0.5), (1.0, 0.0)) == math.inf
    # an outcome p never produces costs nothing, whatever q says about it
    assert teaching.kl_divergence((1.0, 0.0), (0.5, 0.5)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("p", "q", "field"),
    [
        ((0.5, 0.6), (0.5, 0.5), "p must sum to 1"),
        ((0.5, 0.5), (-0.1, 1.1), "q must hold"),
        ((1.0,), (1.0,), "p must list"),
        ((0.5, 0.5), (0.2, 0.3, 0.5), "same number of outcomes"),
    ],
)
def test_bad_distributions_are_named(p, q, field):
    with pytest.raises(ValueError, match=field):
        teaching.kl_divergence(p, q)


def test_unknown_unit_is_refused():
    with pytest.raises(ValueError, match="unit must be one of bits, nats"):
        teaching.entropy((0.5, 0.5), "dits")


# -- lesson 2: the 2-D stability–plasticity problem --------------------------------------------


@pytest.mark.parametrize("method", ["fine-tune", "l2", "ewc", "joint"])
@pytest.mark.parametrize("lam", [0.1, 1.0, 10.0])
def test_gradient_descent_converges_to_the_closed_form(method, lam):
    tasks = teaching.default_tasks()
    run = teaching.gd_path(method, tasks, lam)
    assert run["converged"] and not run["diverged"]
    np.testing.assert_allclose(run["path"][-1], teaching.end_point(method, tasks, lam), atol=1e-6)


def test_closed_form_is_the_penalised_minimiser():
    task1, task2 = teaching.default_tasks()
    F, lam = np.diag([0.3, 2.0]), 4.0
    theta = teaching.penalised_optimum(task2.A, task2.center, F, task1.center, lam)
    grad = task2.grad(theta) + lam * F @ (theta - task1.center)
    np.testing.assert_allclose(grad, 0.0, atol=1e-12)
    expected = np.linalg.inv(task2.A + lam * F) @ (task2.A @ task2.center + lam * F @ task1.center)
    np.testing.assert_allclose(theta, expected, atol=1e-12)


def test_end_points_of_the_extremes():
    task1, task2 = tasks = teaching.default_tasks()
    np.testing.assert_allclose(teaching.end_point("fine-tune", tasks), task2.center)
    np.testing.assert_allclose(teaching.end_point("frozen", tasks), task1.center)
    assert teaching.gd_path("frozen", tasks)["steps"] == 0
    # huge λ: L2 and EWC barely leave task 1's minimum
    for method in ("l2", "ewc"):
        assert np.linalg.norm(teaching.end_point(method, tasks, 1e6) - task1.center) < 1e-3


def test_full_fisher_at_lambda_one_is_joint_training():
    tasks = teaching.default_tasks()
    F = teaching.fisher_matrix(tasks[0], "full")
    np.testing.assert_allclose(
        teaching.end_point("ewc", tasks, 1.0, F), teaching.end_point("joint", tasks), atol=1e-12
    )


def test_ewc_keeps_task_one_better_than_l2_at_equal_cost_to_task_two():
    """The lesson's claim: at λ = 1 EWC ends with both losses below L2's."""
    sp = teaching.stability_plasticity(1.0)
    ewc, l2 = sp["methods"]["ewc"], sp["methods"]["l2"]
    assert ewc["loss1"] < l2["loss1"] and ewc["loss2"] < l2["loss2"]
    assert ewc["loss1"] < 0.6 and ewc["loss2"] < 0.6  # inside both default low-loss regions
    assert sp["methods"]["fine-tune"]["loss1"] > 3 and sp["methods"]["frozen"]["loss2"] > 3


def test_empirical_fisher_approaches_the_diagonal():
    task1, _ = teaching.default_tasks()
    diag = teaching.fisher_matrix(task1, "diagonal")
    few = teaching.fisher_matrix(task1, "empirical", n_samples=10)
    many = teaching.fisher_matrix(task1, "empirical", n_samples=200_000)
    assert np.all(np.diag(few) >= 0)
    np.testing.assert_allclose(np.diag(many), np.diag(diag), rtol=0.02)
    assert np.count_nonzero(many - np.diag(np.diag(many))) == 0


def test_negative_fisher_entry_has_no_end_point_and_gd_runs_away():
    task1, task2 = tasks = teaching.default_tasks()
    F = np.diag([-0.5, 5.0])
    with pytest.raises(ValueError, match="unbounded below"):
        teaching.penalised_optimum(task2.A, task2.center, F, task1.center, 10.0)
    run = teaching.gd_path("ewc", tasks, 10.0, F)
    assert run["diverged"] and not run["converged"]
    assert np.linalg.norm(run["path"][-1]) > 1e6
    assert task2.loss(run["path"][-1]) + 5.0 * (F[0, 0] * run["path"][-1][0] ** 2) < -1e10


def test_bad_lambda_and_method_are_named():
    with pytest.raises(ValueError, match="lam"):
        teaching.end_point("l2", lam=-1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        teaching.gd_path("sgd")
    with pytest.raises(ValueError, match="positive definite"):
        teaching.QuadraticTask(np.zeros(2), np.diag([1.0, -1.0]))


# -- lesson 4: curvature of a real small network ------------------------------------------------


@pytest.fixture(scope="module")
def small_net():
    return lc.train_first_task(width=8, depth=1, epochs=3)


@pytest.fixture(scope="module")
def small_curvature(small_net):
    return lc.curvature_estimates(small_net, probes=4, exact=True)


def test_squared_gradients_never_negative_hessian_estimates_often_are(small_curvature):
    est = small_curvature
    assert est["n_params"] == 64 * 8 + 8 + 8 * 10 + 10
    assert torch.all(est["fisher"] >= 0)
    assert est["share_negative"]["fisher"] == 0.0
    assert est["share_negative"]["hutchinson"] > 0.2
    # a ReLU net is piecewise linear in every single weight: its exact diagonal is Gauss–Newton, ≥ 0
    assert est["exact"].min() > -1e-6


def test_hutchinson_is_unbiased_for_the_exact_diagonal(small_net, small_curvature):
    many = lc.curvature_estimates(small_net, probes=400, seed=1)["hutchinson"]
    exact = small_curvature["exact"]
    # the estimate's error shrinks like 1/√probes; with 400 probes it tracks the exact diagonal
    assert torch.corrcoef(torch.stack([many, exact]))[0, 1] > 0.9


def test_smooth_net_before_convergence_has_negative_exact_curvature():
    net = lc.train_first_task(width=8, depth=1, epochs=1, activation="tanh")
    est = lc.curvature_estimates(net, probes=2, exact=True)
    assert est["share_negative"]["exact"] > 0.0
    assert est["share_negative"]["fisher"] == 0.0


def test_ewc_with_hessian_estimates_blows_up_with_squared_gradients_it_does_not(
    small_net, small_curvature
):
    est = small_curvature
    good = lc.continue_with_penalty(small_net, est["fisher"], 100.0, steps=60, lr=0.05)
    bad = lc.continue_with_penalty(small_net, est["hutchinson"], 100.0, steps=60, lr=0.05)
    assert good["diverged_at"] is None and min(good["penalty"]) >= 0
    assert bad["diverged_at"] is not None or bad["penalty"][-1] < -1e6
    assert min(bad["penalty"]) < 0
    # the trained net is untouched by the demonstration
    assert lc.continue_with_penalty(small_net, None, 0.0, steps=0)["acc_task1"][0] == pytest.approx(
        good["acc_task1"][0]
    )


def test_taylor_slice_matches_near_the_minimum(small_net, small_curvature):
    sl = lc.taylor_slice(small_net, small_curvature["fisher"], radius=0.05, n=11)
    assert abs(sl["slope"]) < 0.1
    # near θ*: loss increase ≈ slope·t + ½ curvature t²
    for t, lv in zip(sl["t"], sl["loss"], strict=True):
        assert lv == pytest.approx(sl["slope"] * t + 0.5 * sl["curvature"] * t * t, abs=2e-4)
    assert len(sl["diagonal"]) == 11 and min(sl["diagonal"]) >= 0


def test_penalty_weights_must_match_the_parameters(small_net):
    with pytest.raises(ValueError, match="one entry per parameter"):
        lc.continue_with_penalty(small_net, torch.ones(3), 1.0, steps=1)


# -- lesson 5: softened targets ----------------------------------------------------------------


def test_softening_flattens_and_the_lecture_form_agrees():
    z = [4.0, 1.0, 0.0, -2.0]
    p1, p4 = teaching.softened(z, 1.0), teaching.softened(z, 4.0)
    assert p1.sum() == pytest.approx(1.0) and p4.sum() == pytest.approx(1.0)
    assert teaching.entropy(p4) > teaching.entropy(p1)
    np.testing.assert_allclose(teaching.softened(z, 1e6), 0.25, atol=1e-5)
    np.testing.assert_allclose(teaching.lecture_softening(p1, 4.0), p4, atol=1e-12)


def test_t_squared_keeps_the_distillation_gradient_comparable():
    t, s = [6.0, 3.5, 3.0, 0.5, -1.0], [3.0, 3.0, 1.0, 1.0, 0.0]
    raw = [teaching.distillation_terms(t, s, T)["grad_norm"] for T in (4.0, 40.0)]
    scaled = [teaching.distillation_terms(t, s, T)["grad_norm_T2"] for T in (4.0, 40.0)]
    assert raw[0] / raw[1] > 50  # the raw gradient collapses ~1/T²
    assert 0.5 < scaled[0] / scaled[1] < 2.0
    d = teaching.distillation_terms(t, s, 2.0)
    assert d["kl_T2"] == pytest.approx(4.0 * d["kl"])
    np.testing.assert_allclose(d["grad"], (d["student"] - d["teacher"]) / 2.0)


def test_distillation_gradient_matches_autograd():
    t, s, T = [2.0, -1.0, 0.5], [0.0, 1.0, 0.3], 3.0
    st = torch.tensor(s, dtype=torch.float64, requires_grad=True)
    p = torch.softmax(torch.tensor(t, dtype=torch.float64) / T, 0)
    kl = (p * (p.log() - torch.log_softmax(st / T, 0))).sum()
    kl.backward()
    np.testing.assert_allclose(
        teaching.distillation_terms(t, s, T)["grad"], st.grad.numpy(), atol=1e-12
    )
    assert teaching.distillation_terms(t, s, T)["kl"] == pytest.approx(kl.item())


def test_bad_temperature_is_named():
    with pytest.raises(ValueError, match="temperature T"):
        teaching.softened([1.0, 2.0], 0.0)


# -- lessons 3, 5, 6: real runs condensed ------------------------------------------------------


def test_old_new_accuracy():
    R = [[0.9, 0.1, 0.2], [0.5, 0.95, 0.1], [0.3, 0.6, 0.99]]
    assert teaching.old_new_accuracy(R) == (pytest.approx(0.45), 0.99)
    with pytest.raises(ValueError, match="two tasks"):
        teaching.old_new_accuracy([[1.0]])


def test_replay_tradeoff_runs_through_the_store():
    base = tiny_config(
        strategy={"name": "replay", "buffer_size": 50}, train__epochs=1, model__width=16
    )
    rows = teaching.replay_tradeoff(base, run, (0.0, 0.5))
    assert [r["fraction"] for r in rows] == [0.0, 0.5]
    assert not any(r["cached"] for r in rows)
    assert rows[0]["old_acc"] < rows[1]["old_acc"]  # rehearsal keeps some of the old classes
    again = teaching.replay_tradeoff(base, run, (0.0, 0.5))
    assert all(r["cached"] for r in again)
    assert [r["acc"] for r in again] == [r["acc"] for r in rows]
    with pytest.raises(ValueError, match="strategy.name must be 'replay'"):
        teaching.replay_tradeoff(tiny_config(), run, (0.5,))
