"""Softmax rank lab (thesis 6.2.4, 6.7): the rank curve, Proposition 2, the inner products."""

import json

import numpy as np
import pytest

from engine.analysis.softmax import (
    DEFAULT_C_VALUES,
    argmax_one_hot,
    column_inner_products,
    column_softmax,
    gap_bound,
    random_rank_one,
    rank_of,
    softmax_rank_curve,
)


@pytest.fixture(scope="module")
def curve():
    return softmax_rank_curve()


def test_default_grid_spans_the_thesis_range():
    assert len(DEFAULT_C_VALUES) == 57
    assert DEFAULT_C_VALUES[0] == pytest.approx(1e-5)
    assert DEFAULT_C_VALUES[-1] == pytest.approx(1e9)
    assert np.all(np.diff(DEFAULT_C_VALUES) > 0)


def test_column_softmax_is_stable_and_stochastic():
    Z = np.array([[1e9, -1e9, 0.0], [0.0, 1e9, 0.0], [-3.0, 2.0, 0.0]])
    M = column_softmax(Z)
    assert np.all(np.isfinite(M))
    np.testing.assert_allclose(M.sum(axis=0), 1.0)
    np.testing.assert_allclose(M[:, 0], [1, 0, 0], atol=1e-300)
    np.testing.assert_allclose(M[:, 2], [1 / 3] * 3)


def test_rank_curve_rises_then_falls_to_argmax_rank(curve):
    """Fig. 6.2.5: rank 1 as c -> 0, a peak above 2, then the one-hot argmax rank (2)."""
    rank = curve["rank"]
    assert curve["base_rank"] == 1
    assert curve["argmax_rank"] == 2  # y has both signs: columns pick argmax x or argmin x
    assert rank[:5] == [1] * 5
    assert max(rank) > 2
    peak = int(np.argmax(rank))
    assert 0 < peak < len(rank) - 1
    assert 1e-3 < curve["c"][peak] < 1e5  # intermediate temperature
    assert rank[-5:] == [curve["argmax_rank"]] * 5
    assert curve["peak_rank"] == max(rank)


@pytest.mark.parametrize("seed", range(5))
def test_shape_holds_for_other_seeds(seed):
    r = softmax_rank_curve(seed=seed)
    assert r["rank"][0] == 1
    assert max(r["rank"]) > 2
    assert r["rank"][-1] == r["argmax_rank"]


def test_returned_structure_is_json_ready(curve):
    n_c = len(curve["c"])
    for key in ("rank", "singular_values", "gap", "bound", "r"):
        assert len(curve[key]) == n_c
    assert all(len(s) == 32 for s in curve["singular_values"])
    assert all(isinstance(v, int) for v in curve["rank"])
    assert all(isinstance(v, float) for v in curve["gap"] + curve["bound"])
    json.dumps(curve)


def test_singular_values_are_descending_and_match_rank(curve):
    for s, rank in zip(curve["singular_values"], curve["rank"], strict=True):
        s = np.asarray(s)
        assert np.all(np.diff(s) <= 1e-12)
        assert rank == int(np.sum(s > 1e-3 * s[0]))


@pytest.mark.parametrize("n", [2, 5, 32])
@pytest.mark.parametrize("seed", range(4))
def test_gap_never_exceeds_proposition_2_bound(n, seed):
    r = softmax_rank_curve(n=n, seed=seed)
    gap, bound = np.asarray(r["gap"]), np.asarray(r["bound"])
    assert np.all(gap >= -1e-12)
    assert np.all(gap <= bound + 1e-9)


def test_bound_is_attained_in_the_argmax_limit(curve):
    """At c -> inf M is one-hot: σ₁ = sqrt(largest group), σ_n = 0, r = group - 1."""
    assert curve["gap"][-1] == pytest.approx(curve["bound"][-1], abs=1e-9)


def test_bound_formula_on_hand_made_matrices():
    # Uniform columns: every inner product is 1/n, so r = (n-1)/n.
    n = 4
    gap, bound, r = gap_bound(np.full((n, n), 1 / n))
    assert r == pytest.approx((n - 1) / n)
    assert bound == pytest.approx(np.sqrt(1 + r) - np.sqrt(max(1 / n - r, 0)))
    assert gap == pytest.approx(1.0)  # σ₁ = 1, σ_n = 0
    # Identity: r = 0, σ₁ = σ_n = 1, bound = 1 - sqrt(1/n).
    gap, bound, r = gap_bound(np.eye(n))
    assert (gap, r) == (pytest.approx(0.0), 0.0)
    assert bound == pytest.approx(1 - np.sqrt(1 / n))


def test_identical_for_a_fixed_seed_and_different_across_seeds():
    assert softmax_rank_curve(seed=3) == softmax_rank_curve(seed=3)
    assert (
        softmax_rank_curve(seed=3)["singular_values"]
        != softmax_rank_curve(seed=4)["singular_values"]
    )
    np.testing.assert_array_equal(random_rank_one(8, 1), random_rank_one(8, 1))


def test_random_matrix_is_rank_one_with_uniform_entries():
    B = random_rank_one(32, 0)
    assert np.linalg.matrix_rank(B) == 1
    assert np.all(np.abs(B) <= 1)


def test_user_matrix_proposition_3():
    """Proposition 3 (appendix 6.6): a rank-2 B whose softmax at large c is I, rank n."""
    n = 6
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    A = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # unit rows
    B = A @ A.T
    r = softmax_rank_curve(matrix=B, c_values=[1e-6, 1.0, 1e3])
    assert r["base_rank"] == 2
    assert r["argmax_rank"] == n
    assert r["rank"][0] == 1
    assert r["rank"][-1] == n
    assert r["seed"] is None and r["source"] == "user matrix"


def test_user_matrix_may_be_rectangular_and_nested_lists():
    B = np.random.default_rng(0).normal(size=(4, 7))
    r = softmax_rank_curve(matrix=B.tolist(), c_values=[0.1, 1, 10, 1e6])
    assert r["shape"] == [4, 7]
    assert all(len(s) == 4 for s in r["singular_values"])
    assert np.all(np.asarray(r["gap"]) <= np.asarray(r["bound"]) + 1e-9)


def test_argmax_one_hot():
    B = np.array([[1.0, -2.0], [3.0, 0.5]])
    np.testing.assert_array_equal(argmax_one_hot(B), [[0, 0], [1, 1]])
    # Integer input still gives a float64 one-hot, like every other output here.
    H = argmax_one_hot([[1, -2], [3, 0]])
    assert H.dtype == np.float64
    np.testing.assert_array_equal(H, [[0.0, 0.0], [1.0, 1.0]])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"c_values": [1.0, 0.0]}, "c_values"),
        ({"c_values": [-1.0]}, "c_values"),
        ({"c_values": []}, "c_values"),
        ({"c_values": [np.inf]}, "c_values"),
        ({"c_values": "abc"}, "c_values"),
        ({"n": 1}, "n"),
        ({"n": 2.5}, "n"),
        ({"seed": -1}, "seed"),
        ({"matrix": [1.0, 2.0, 3.0]}, "matrix"),
        ({"matrix": np.zeros((2, 2, 2))}, "matrix"),
        ({"matrix": [[1.0, np.nan], [0.0, 1.0]]}, "matrix"),
        ({"matrix": [[1.0, 2.0]]}, "matrix"),
        ({"rel_tol": 0.0}, "rel_tol"),
        ({"rel_tol": 1.0}, "rel_tol"),
        ({"rel_tol": 1.5}, "rel_tol"),
        ({"rel_tol": "tight"}, "rel_tol"),
        ({"seed": True}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"c_values": [[1.0, 2.0]]}, "c_values"),
        ({"matrix": [[1.0, 2.0], [3.0]]}, "matrix"),
        ({"matrix": [[1.0, None], [0.0, 1.0]]}, "matrix"),
    ],
)
@pytest.mark.parametrize("fn", [softmax_rank_curve, column_inner_products])
def test_bad_input_raises_naming_the_argument(fn, kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        fn(**kwargs)


def test_inner_products_bifurcate():
    """Fig. 6.8.1: same-argmax pairs tend to 1, different-argmax pairs to 0, both from 1/n."""
    n = 32
    q = column_inner_products(n=n)
    same, diff = q["same"], q["different"]
    assert len(q["same_pairs"]) + len(q["different_pairs"]) == n * (n - 1) // 2
    assert q["same_pairs"] and q["different_pairs"]
    # c -> 0: uniform columns, every inner product is 1/n.
    assert same["min"][0] == pytest.approx(1 / n, rel=1e-3)
    assert diff["max"][0] == pytest.approx(1 / n, rel=1e-3)
    # c -> inf: one-hot columns.
    assert same["min"][-1] == pytest.approx(1.0)
    assert diff["max"][-1] == pytest.approx(0.0, abs=1e-12)
    # The groups separate and stay apart.
    assert np.all(np.asarray(same["mean"]) >= np.asarray(diff["mean"]) - 1e-15)
    assert np.all(np.diff(diff["mean"]) <= 1e-12)  # different-argmax products only fall
    json.dumps(q)


def test_inner_products_agree_with_direct_computation():
    B = random_rank_one(5, 1)
    q = column_inner_products(c_values=[3.0], matrix=B)
    M = column_softmax(3.0 * B)
    for (i, j), v in zip(q["same_pairs"], q["same"]["values"][0], strict=True):
        assert v == pytest.approx(M[:, i] @ M[:, j])
    for (i, j), v in zip(q["different_pairs"], q["different"]["values"][0], strict=True):
        assert v == pytest.approx(M[:, i] @ M[:, j])
    assert q["argmax"] == B.argmax(axis=0).tolist()


def test_inner_products_empty_group_gives_none():
    B = np.outer([1.0, 0.5, 0.1], [1.0, 0.3, 0.7])  # every column peaks in row 0
    q = column_inner_products(matrix=B, c_values=[1.0])
    assert q["different_pairs"] == []
    assert q["different"]["mean"] == [None]
    json.dumps(q)


def test_inner_products_carry_the_top_panel_and_describe_the_matrix():
    B = np.random.default_rng(2).normal(size=(4, 6))
    cs = [0.5, 5.0, 50.0]
    q = column_inner_products(c_values=cs, matrix=B, rel_tol=1e-2)
    curve = softmax_rank_curve(c_values=cs, matrix=B, rel_tol=1e-2)
    assert set(q) == {
        "c",
        "argmax",
        "same_pairs",
        "different_pairs",
        "same",
        "different",
        "rank",
        "gap",
        "bound",
        "n",
        "shape",
        "seed",
        "rel_tol",
        "source",
    }
    assert q["c"] == cs
    assert (q["rank"], q["gap"], q["bound"]) == (curve["rank"], curve["gap"], curve["bound"])
    assert all(isinstance(v, int) for v in q["rank"])
    assert q["n"] == 4 and q["shape"] == [4, 6]
    assert (q["seed"], q["rel_tol"], q["source"]) == (None, 1e-2, "user matrix")


def test_inner_products_default_to_the_seeded_32x32_matrix():
    q = column_inner_products(c_values=[1.0])
    assert (q["n"], q["shape"], q["seed"]) == (32, [32, 32], 0)
    assert q["source"] == "random rank-1 x yᵀ"
    assert q["argmax"] == random_rank_one(32, 0).argmax(axis=0).tolist()
    q = column_inner_products(c_values=[1.0], n=5, seed=2)
    assert (q["n"], q["seed"]) == (5, 2)
    assert q["argmax"] == random_rank_one(5, 2).argmax(axis=0).tolist()


# -- closed forms and edges that change a reported number (docs/testing.md: mutation testing) --


def test_rank_of_counts_strictly_above_the_relative_threshold():
    assert rank_of(np.array([4.0, 0.5, 0.03]), 0.1) == 2  # threshold 0.4
    assert rank_of(np.array([1.0, 0.25]), 0.25) == 1  # exactly at the threshold: not counted
    assert rank_of(np.array([2.0]), 1e-3) == 1
    assert rank_of(np.zeros(3), 1e-3) == 0
    assert rank_of(np.array([]), 1e-3) == 0


def test_gap_is_between_the_extreme_singular_values():
    # σ = 3, 2, 1: the gap is σ₁ − σ_n = 2, whatever sits in between.
    M = np.diag([3.0, 2.0, 1.0])
    assert gap_bound(M)[0] == pytest.approx(2.0)
    # More columns than rows: MᵀM is singular, so σ_min(G) = 0 and the gap is σ₁ itself.
    wide = np.array([[0.7, 0.2, 0.5, 0.1], [0.3, 0.8, 0.5, 0.9]])
    s = np.linalg.svd(wide, compute_uv=False)
    assert gap_bound(wide)[0] == pytest.approx(s[0])
    # A single column has no other column to overlap: r = 0, and bound = 1 − sqrt(1/m).
    gap, bound, r = gap_bound(np.array([[0.25], [0.75]]))
    assert r == 0.0 and gap == 0.0
    assert bound == pytest.approx(1 - np.sqrt(0.5))


def test_float32_input_is_evaluated_in_float64():
    M32 = column_softmax(random_rank_one(6, 2) * 3).astype(np.float32)
    M64 = M32.astype(np.float64)
    assert gap_bound(M32) == gap_bound(M64)
    Z32 = (random_rank_one(6, 2) * 30).astype(np.float32)
    assert column_softmax(Z32).dtype == np.float64
    np.testing.assert_array_equal(column_softmax(Z32), column_softmax(Z32.astype(np.float64)))


def test_random_matrix_defaults_and_source():
    np.testing.assert_array_equal(random_rank_one(), random_rank_one(32, 0))
    assert random_rank_one().shape == (32, 32)


def test_rank_curve_describes_its_input(curve):
    assert (curve["n"], curve["shape"], curve["seed"]) == (32, [32, 32], 0)
    assert (curve["rel_tol"], curve["source"]) == (1e-3, "random rank-1 x yᵀ")
    assert curve["c_at_peak"] == curve["c"][curve["rank"].index(curve["peak_rank"])]
    B = random_rank_one(32, 0)
    for ci, r in zip(curve["c"][::8], curve["r"][::8], strict=True):
        assert r == gap_bound(column_softmax(ci * B))[2]
    wide = softmax_rank_curve(matrix=np.ones((4, 7)) + np.eye(4, 7), c_values=[1.0])
    assert (wide["n"], wide["shape"]) == (4, [4, 7])


def test_scalar_c_and_the_smallest_matrices():
    assert softmax_rank_curve(c_values=2.0, n=3)["c"] == [2.0]
    two_rows = softmax_rank_curve(matrix=[[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]], c_values=[1e3])
    assert two_rows["rank"] == [2]
    one_column = softmax_rank_curve(matrix=[[1.0], [0.0], [2.0]], c_values=[1e3])
    assert one_column["rank"] == [1] and one_column["r"] == [0.0]


def test_c_values_of_the_wrong_shape_are_named_as_such():
    with pytest.raises(ValueError, match=r"^c_values must be a non-empty 1-D list of positive"):
        softmax_rank_curve(c_values=[[1.0, 2.0]])
