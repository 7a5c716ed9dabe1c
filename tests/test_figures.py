"""app.figures: the pure figure builders show exactly the numbers they are given, on labelled axes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app import figures
from engine.analysis.softmax import column_inner_products, softmax_rank_curve
from engine.analysis.toy import perturbation_accuracy, run_toy

R3 = [[0.9, 0.1, 0.2], [0.4, 0.8, 0.3], [0.3, 0.5, 0.95]]


def test_r_heatmap_shows_R_with_values_and_labelled_axes():
    fig = figures.figure_r_heatmap(R3, title="R")
    hm = fig.data[0]
    assert [list(r) for r in hm.z] == R3
    assert hm.text[1][0] == "0.40" and hm.texttemplate == "%{text}"
    assert (hm.zmin, hm.zmax) == (0.0, 1.0)
    assert hm.colorscale[0][1] == "#00224e"  # cividis: readable with colour-vision deficiencies
    assert fig.layout.xaxis.title.text == "evaluated on task i"
    assert fig.layout.yaxis.title.text == "after training task t"
    assert fig.layout.yaxis.autorange == "reversed"  # task 1 at the top, like the matrix


def test_r_heatmap_leaves_rows_not_trained_yet_empty():
    fig = figures.figure_r_heatmap(R3[:1], n_tasks=3)
    assert list(fig.data[0].z[0]) == R3[0]
    assert list(fig.data[0].z[1]) == [None, None, None]
    assert list(fig.data[0].text[2]) == ["", "", ""]


def test_task_curves_one_line_per_task_and_task_boundaries():
    curves = {
        "step": [5, 10, 15, 20],
        "phase": [0, 0, 1, 1],
        "acc": [[0.5, 0.1], [0.9, 0.1], [0.6, 0.7], [0.3, 0.95]],
    }
    fig = figures.figure_task_curves(curves)
    assert [t.name for t in fig.data] == ["task 1", "task 2", "end of a task"]
    assert list(fig.data[1].y) == [0.1, 0.1, 0.7, 0.95]
    assert list(fig.data[0].x) == [5, 10, 15, 20]
    assert list(fig.data[2].x) == [10, 10, None]  # task 1 ended at step 10
    assert "0–1" in fig.layout.yaxis.title.text and "step" in fig.layout.xaxis.title.text
    assert fig.data[0].line.color != fig.data[1].line.color


def test_task_ends():
    assert figures.task_ends({"step": [1, 2, 3, 4, 5, 6], "phase": [0, 0, 1, 1, 2, 2]}) == [2, 4]
    assert figures.task_ends({"step": [3, 6], "phase": [0, 0]}) == []  # joint: one phase


def test_stability_plasticity_numbers_and_scatter():
    old, new = figures.stability_plasticity(R3)
    assert old == pytest.approx((0.3 + 0.5) / 2)  # mean_{i<T} R[T,i]
    assert new == pytest.approx((0.9 + 0.8 + 0.95) / 3)  # mean_i R[i,i]
    fig = figures.figure_stability_plasticity([{"label": "ewc", "old": old, "new": new}])
    point = fig.data[1]
    assert (point.x[0], point.y[0], point.text[0]) == (new, old, "ewc")
    assert "new-task" in fig.layout.xaxis.title.text and "old-task" in fig.layout.yaxis.title.text


def test_compare_curves_mean_over_seen_tasks_or_one_task():
    curves = {"step": [1, 2], "phase": [0, 1], "acc": [[0.8, 0.0], [0.4, 0.9]]}
    fig = figures.figure_compare_curves({"a": curves})
    assert list(fig.data[0].y) == pytest.approx([0.8, 0.65])  # task 2 not counted before it is seen
    fig = figures.figure_compare_curves({"a": curves}, task=1)
    assert list(fig.data[0].y) == [0.0, 0.9]
    assert "task 2" in fig.layout.yaxis.title.text


def test_softmax_figures_show_the_curve():
    curve = softmax_rank_curve(n=8, c_values=[1e-3, 1.0, 1e3, 1e6])
    fig = figures.figure_softmax_rank(curve)
    assert list(fig.data[0].y) == curve["rank"] and fig.layout.xaxis.type == "log"
    assert fig.layout.shapes[0].y0 == curve["argmax_rank"]
    sv = figures.figure_singular_values(curve["c"], curve["singular_values"])
    assert len(sv.data) == 8 and sv.layout.yaxis.type == "log"
    assert sv.data[0].y[0] == pytest.approx(curve["singular_values"][0][0])
    # round-off below 1e-16·σ₁ is not drawn (a log axis would stretch to 1e-300)
    assert all(
        math.isnan(v) or v > 1e-16 * s[0]
        for tr in sv.data
        for v, s in zip(tr.y, curve["singular_values"], strict=True)
    )
    gap = figures.figure_gap_bound(curve)
    assert list(gap.data[0].y) == curve["gap"] and list(gap.data[1].y) == curve["bound"]
    ip = column_inner_products(c_values=[1e-2, 1.0, 1e2], n=5)
    fig = figures.figure_inner_products(ip)
    means = [t for t in fig.data if t.name and "mean" in t.name]
    assert means and all(0 <= v <= 1 for t in means for v in t.y if v is not None)


def test_toy_figures_show_every_loss():
    results = {loss: run_toy(loss, iters=200, record_every=20) for loss in ("mse", "ce")}
    fig = figures.figure_toy_rank(results)
    assert [t.name for t in fig.data] == ["mse", "ce"]
    assert list(fig.data[1].y) == results["ce"]["rank"]
    sv = figures.figure_toy_singular_values(results["ce"], post=True)
    assert len(sv.data) == 5 and "post-softmax" in sv.layout.yaxis.title.text
    pert = {k: perturbation_accuracy(v, sigmas=[0.0, 1.0], k=50) for k, v in results.items()}
    fig = figures.figure_perturbation(pert)
    assert list(fig.data[0].y) == pert["mse"]["accuracy"]
    assert "σ" in fig.layout.xaxis.title.text


def test_png_download_button_is_configured():
    cfg = figures.png_config("R-heatmap")
    assert cfg["toImageButtonOptions"] == {"format": "png", "filename": "R-heatmap", "scale": 2}


def test_r_matrix_pads_with_nan():
    m = figures.r_matrix([[0.5, 0.6]], 2)
    assert m[0].tolist() == [0.5, 0.6] and np.isnan(m[1]).all()


def test_sweep_figure_numeric_lines_with_error_bars_and_categorical_bars():
    from app.figures import figure_sweep

    rows = [
        {"scenario": s, "strategy.lam": lam, "n": 3, "acc_mean": a, "acc_std": 0.01, "bwt_mean": -a / 2, "bwt_std": None}
        for s, lam, a in [("task", 10, 0.8), ("task", 1, 0.7), ("class", 1, 0.2), ("class", 10, 0.25)]
    ]  # fmt: skip
    fig = figure_sweep(rows, "strategy.lam", by=["scenario"]).to_dict()
    acc_task = fig["data"][0]
    assert acc_task["name"] == "scenario=task" and list(acc_task["x"]) == [1, 10]  # sorted by x
    assert list(acc_task["y"]) == [0.7, 0.8] and list(acc_task["error_y"]["array"]) == [0.01] * 2
    assert list(fig["data"][1]["error_y"]["array"]) == [0.0, 0.0]  # one seed: no bar, not a gap
    assert fig["layout"]["xaxis"]["type"] == "linear"  # one decade: no log axis
    assert len(fig["data"]) == 4  # two groups × two metrics
    bars = figure_sweep(rows, "scenario", by=["strategy.lam"], metrics=["acc"]).to_dict()
    assert {t["type"] for t in bars["data"]} == {"bar"} and bars["layout"]["barmode"] == "group"
    assert bars["layout"]["xaxis"]["type"] == "category"


def test_svg_heatmap_carries_R_and_leaves_untrained_rows_empty():
    import re

    svg = figures.svg_r_heatmap(R3[:2], n_tasks=3, title="R")
    cells = re.findall(r'data-t="(\d)" data-i="(\d)" data-value="([0-9.]+)"', svg)
    assert [(int(t), int(i), float(v)) for t, i, v in cells] == [
        (t, i, R3[t][i]) for t in range(2) for i in range(3)
    ]
    assert svg.count("not trained yet") == 3  # the third row
    assert ">0.95<" not in svg and ">0.80<" in svg  # values printed in the trained cells only
    assert "evaluated on task i" in svg and "after training task t" in svg
    assert "after training task 1, evaluated on task 2: accuracy 0.100" in svg  # the tooltip
    # Colours follow cividis: the highest value gets the brightest cell.
    dark, bright = figures._cividis(0.1), figures._cividis(0.9)
    assert (
        f'fill="{dark}" data-t="0" data-i="1"' in svg
        and f'fill="{bright}" data-t="0" data-i="0"' in svg
    )
