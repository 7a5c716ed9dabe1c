"""summarize(): the SPEC's formulas on matrices whose metrics are known by hand."""

import math

import pytest

from engine.metrics import forgetting_per_task, summarize


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
