"""summarize(): the SPEC's formulas on matrices whose metrics are known by hand."""

import math
import warnings

import numpy as np
import pytest

from engine.metrics import forgetting_per_task, old_new_accuracy, summarize


def test_hand_computed_three_tasks():
    R = [
        [0.9, 0.1, 0.2],
        [0.6, 0.8, 0.3],
        [0.5, 0.7, 0.95],
    ]
    b = [0.1, 0.2, 0.1]
    m = summarize(R, b)
    assert m["acc"] == pytest.approx((0.5 + 0.7 + 0.95) / 3)
    assert m["learning_acc"] == pytest.approx((0.9 + 0.8 + 0.95) / 3)
    assert m["bwt"] == pytest.approx(((0.5 - 0.9) + (0.7 - 0.8)) / 2)
    assert m["fwt"] == pytest.approx(((0.1 - 0.2) + (0.3 - 0.1)) / 2)
    # FM_0 = max(0.9, 0.6) - 0.5, FM_1 = max(0.1, 0.8) - 0.7
    assert m["forgetting"] == pytest.approx((0.4 + 0.1) / 2)
    assert forgetting_per_task(R) == pytest.approx([0.4, 0.1])
    assert m["rem"] == pytest.approx((0.5 / 0.9 + 0.7 / 0.8) / 2 * 100)


def test_no_forgetting_and_catastrophic_forgetting():
    perfect = [[1.0, 0.0], [1.0, 1.0]]
    assert summarize(perfect)["bwt"] == 0.0
    assert summarize(perfect)["forgetting"] == 0.0
    assert summarize(perfect)["fwt"] is None  # no baseline, no FWT
    lost = [[1.0, 0.0], [0.0, 1.0]]
    assert summarize(lost)["bwt"] == -1.0
    assert summarize(lost)["acc"] == 0.5


def test_single_task_has_nothing_to_forget():
    m = summarize([[0.8]], [0.1])
    assert (m["acc"], m["bwt"], m["forgetting"], m["fwt"]) == (0.8, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("bad", [[], [[1.0, 0.5]], [[1.0], [0.5]], [[[1.0]]]])
def test_non_square_is_refused(bad):
    with pytest.raises(ValueError, match="square"):
        summarize(bad)


def test_baseline_length_checked():
    with pytest.raises(ValueError, match="baseline"):
        summarize([[1.0, 0.0], [0.5, 1.0]], [0.1])


def test_values_are_plain_floats():
    m = summarize([[0.9, 0.1], [0.4, 0.8]], [0.5, 0.5])
    assert all(isinstance(v, float) and math.isfinite(v) for v in m.values())


# -- pinned formulas (docs/testing.md: mutation testing) ---------------------------------------
# Four tasks with a non-uniform baseline and a task whose accuracy keeps rising after it was
# learned (task 1: 0.70 → 0.80 → 0.90), so every index and every axis in the formulas matters:
# FWT must subtract b_i (not b_{i−1}), forgetting must take its maximum over the rows before the
# last (the rising task forgets −0.10, not 0) and down each column (not along each row).
R4 = [
    [0.60, 0.30, 0.20, 0.10],
    [0.50, 0.70, 0.25, 0.15],
    [0.40, 0.80, 0.75, 0.35],
    [0.55, 0.90, 0.50, 0.85],
]
B4 = [0.10, 0.20, 0.30, 0.05]


def test_four_tasks_rising_accuracy_non_uniform_baseline():
    m = summarize(R4, B4)
    assert m["acc"] == pytest.approx(0.70, abs=1e-12)
    assert m["learning_acc"] == pytest.approx(0.725, abs=1e-12)
    # (0.55 − 0.60) + (0.90 − 0.70) + (0.50 − 0.75) = −0.10
    assert m["bwt"] == pytest.approx(-0.10 / 3, abs=1e-12)
    # R[0,1] − b_1 + R[1,2] − b_2 + R[2,3] − b_3 = 0.10 − 0.05 + 0.30; against b_{i−1}: 0.30
    assert m["fwt"] == pytest.approx(0.35 / 3, abs=1e-12)
    # FM = (0.60 − 0.55, 0.80 − 0.90, 0.75 − 0.50); with the final row in the max: 0.30 / 3
    assert m["forgetting"] == pytest.approx(0.20 / 3, abs=1e-12)
    assert m["rem"] == pytest.approx((0.55 / 0.60 + 0.90 / 0.70 + 0.50 / 0.75) / 3 * 100)
    assert forgetting_per_task(R4) == pytest.approx([0.05, -0.10, 0.25], abs=1e-12)


def test_fwt_with_two_tasks_is_one_difference():
    assert summarize([[0.9, 0.35], [0.6, 0.8]], [0.2, 0.1])["fwt"] == pytest.approx(0.25)


def test_forgetting_per_task_of_two_and_one_tasks():
    assert forgetting_per_task([[0.9, 0.35], [0.6, 0.8]]) == pytest.approx([0.3])
    assert forgetting_per_task([[0.8]]) == []


def test_single_task_remembers_everything():
    assert summarize([[0.8]])["rem"] == 100.0


def test_a_task_never_learned_counts_zero_in_rem_without_warnings():
    # R[1,1] = 0: its ratio is defined as 0 (not inf, nan or 1), quietly; R[0,0] > 0 keeps
    # the first ratio, so the guard must look at every diagonal entry, not only the first.
    R = [
        [0.8, 0.1, 0.1],
        [0.4, 0.0, 0.1],
        [0.6, 0.3, 0.9],
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = summarize(R)
        zero_over_zero = summarize([[0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.5, 0.0, 1.0]])
    assert m["rem"] == pytest.approx((0.6 / 0.8 + 0.0) / 2 * 100)
    assert zero_over_zero["rem"] == pytest.approx((1.0 + 0.0) / 2 * 100)


def test_float32_input_is_summarised_in_float64():
    # Accuracies often arrive as float32 arrays; the metrics are float64 means of their values.
    r32 = np.array(R4, dtype=np.float32)
    r64 = r32.astype(np.float64)
    assert summarize(r32)["acc"] == float(r64[-1].mean())
    assert summarize(r32)["learning_acc"] == float(np.diag(r64).mean())


def test_old_new_accuracy_splits_the_final_row():
    old, new = old_new_accuracy(R4)
    assert old == pytest.approx((0.55 + 0.90 + 0.50) / 3, abs=1e-12)
    assert new == 0.85
    assert isinstance(old, float) and isinstance(new, float)
    assert old_new_accuracy([[0.9, 0.1], [0.4, 0.95]]) == (pytest.approx(0.4), 0.95)
    with pytest.raises(ValueError, match=r"^R needs at least two tasks to split old from new$"):
        old_new_accuracy([[1.0]])
    with pytest.raises(ValueError, match="square"):
        old_new_accuracy([[1.0, 0.5]])
