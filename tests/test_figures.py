"""app.figures: the pure figure builders show exactly the numbers they are given, on labelled axes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app import figures
from engine.analysis.softmax import column_inner_products, softmax_rank_curve
from engine.analysis.toy import perturbation_accuracy, run_toy
from engine.metrics import stability_plasticity

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
    old, new = stability_plasticity(R3)
    assert old == pytest.approx((0.3 + 0.5) / 2)  # mean_{i<T} R[T,i]
    assert new == pytest.approx((0.9 + 0.8 + 0.95) / 3)  # mean_i R[i,i]
    fig = figures.figure_stability_plasticity([{"label": "ewc", "old": old, "new": new}])
    point = fig.data[1]
    assert (point.x[0], point.y[0], point.text[0]) == (new, old, "ewc")
    assert "new task" in fig.layout.xaxis.title.text and "old tasks" in fig.layout.yaxis.title.text


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
    limits = {t.name: list(t.y) for t in fig.data[1:]}  # legend entries, not labels on the lines
    assert [curve["argmax_rank"]] * 2 in limits.values() and [1, 1] in limits.values()
    assert not fig.layout.annotations and fig.layout.legend.orientation == "h"
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
    assert list(fig.data[1].customdata) == results["ce"]["rank"]  # the true ranks, hovered
    # equal ranks are drawn apart (a lift under a tenth), so no line hides another
    lifted = [y - r for y, r in zip(fig.data[0].y, results["mse"]["rank"], strict=True)]
    assert all(-0.1 < d < 0 for d in lifted)
    assert all(y - r > 0 for y, r in zip(fig.data[1].y, results["ce"]["rank"], strict=True))
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


def _boxes(points, labels):
    return [
        figures.label_box(p, spot, figures.PLOT_W, figures.PLOT_H, text)
        for p, (text, spot) in zip(points, labels, strict=True)
        if text
    ]


def _overlap(a, b) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


@pytest.mark.parametrize(
    "points",
    [
        # the reported cases: joint and replay on one spot, naive and ewc side by side
        [
            ("naive", 0.197, 0.99),
            ("ewc", 0.205, 0.985),
            ("joint", 0.93, 0.95),
            ("replay", 0.93, 0.95),
        ],
        [(name, 0.2, 0.98) for name in ("naive", "ewc", "l2", "si", "lwf")],  # five on one spot
        [("a", 0.0, 0.0), ("b", 1.0, 1.0), ("c", 0.0, 1.0), ("d", 1.0, 0.0)],  # the corners
        # split-digits class-IL: naive and ewc low right, replay and joint close, top right
        [
            ("naive", 0.0, 0.994),
            ("ewc", 0.09, 0.994),
            ("replay", 0.921, 0.969),
            ("joint", 0.941, 0.947),
        ],
    ],
)
def test_scatter_labels_overlap_neither_each_other_nor_markers(points):
    rows = [{"label": n, "old": old, "new": new} for n, old, new in points]
    labels = figures.scatter_labels(rows)
    boxes = _boxes(rows, labels)
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert _overlap(boxes[i], boxes[j]) == 0, labels
    assert all(
        0 <= b[0] and b[2] <= figures.PLOT_W and 0 <= b[1] and b[3] <= figures.PLOT_H for b in boxes
    )
    markers = [figures.to_px(r["new"], r["old"], figures.PLOT_W, figures.PLOT_H) for r in rows]
    anchors = [k for k, (text, _) in enumerate(labels) if text]
    for k, box in zip(anchors, boxes, strict=True):  # no label covers a marker it does not name
        named_here = labels[k][0].split(", ")
        assert not any(
            figures.covers(box, c)
            for j, c in enumerate(markers)
            if rows[j]["label"] not in named_here
        ), (labels[k], rows[k])
    # every run is named: alone, or in the one label of the points it coincides with
    named = [n for text, _ in labels for n in text.split(", ") if text]
    assert sorted(named) == sorted(r["label"] for r in rows)
    fig = figures.figure_stability_plasticity(rows)
    assert [(t.text[0], t.textposition) for t in fig.data[1:]] == labels
    assert len({t.marker.symbol for t in fig.data[1:]}) == len(rows)  # a shape per run
    assert all(t.showlegend is not False for t in fig.data[1:])  # and a legend names them


def test_scatter_axes_say_what_they_measure_in_words():
    fig = figures.figure_stability_plasticity([{"label": "a", "old": 0.5, "new": 0.5}])
    x, y = fig.layout.xaxis.title.text, fig.layout.yaxis.title.text
    assert "plasticity" in x and "accuracy on each new task" in x
    assert "stability" in y and "old tasks at the end" in y
    assert max(len(x), len(y)) <= 50  # fits along the plot (a longer one was cut off)
    assert not any(raw in x + y for raw in ("mean_", "R[", "{"))


def test_identical_compare_curves_stay_visible():
    curves = {"step": [1, 2], "phase": [0, 1], "acc": [[0.8, 0.0], [0.4, 0.9]]}
    fig = figures.figure_compare_curves(
        {name: curves for name in ("joint", "cumulative", "a", "b")}
    )
    styles = [(t.line.dash, t.marker.symbol) for t in fig.data]
    assert len(set(styles)) == 4 and len({d for d, _ in styles}) == 4  # a dash style per run
    assert all(list(t.y) == list(fig.data[0].y) for t in fig.data)  # the same data, still apart


def test_svg_task_curves_draw_every_point_and_task_ends():
    import re

    curves = {"step": [5, 10, 15, 20], "phase": [0, 0, 1, 1], "acc": [[0.5, 0.1], [0.9, 0.1], [0.6, 0.7], [0.3, 0.95]]}  # fmt: skip
    svg = figures.svg_task_curves(curves)
    series = dict(re.findall(r'<g class="series" data-name="([^"]+)">(.*?)</g>', svg))
    assert list(series) == ["task 1", "task 2"]
    ys = [float(v) for v in re.findall(r'data-y="([^"]+)"', series["task 2"])]
    assert ys == [0.1, 0.1, 0.7, 0.95]
    assert svg.count('class="boundary"') == 1  # task 1 ended at step 10
    empty = figures.svg_task_curves({}, n_tasks=3)  # before the first point: axes and legend
    assert empty.count('class="series"') == 3 and "<circle" not in empty


def test_coinciding_points_share_one_label_and_distant_ones_keep_their_own():
    rows = [
        {"label": "joint", "old": 0.93, "new": 0.95},
        {"label": "replay", "old": 0.93, "new": 0.951},
        {"label": "naive", "old": 0.2, "new": 0.99},
    ]
    assert [t for t, _ in figures.scatter_labels(rows)] == ["joint, replay", "", "naive"]
