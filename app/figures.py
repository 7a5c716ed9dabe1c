"""Pure figure builders: data in, a plotly Figure out (tests build them without a browser).

Colours are readable with colour-vision deficiencies: matrices use the cividis scale, lines the
Okabe–Ito palette. Axes say what they measure and in which unit; accuracies are fractions 0–1.
Every figure is shown with :func:`png_config`, whose modebar button saves it as a PNG.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

# The app and the HTML report draw R with one function (SVG: on screen before plotly loads).
from engine.report.svg import (  # noqa: F401 (svg_r_heatmap: app/live.py draws R with it)
    Series,
    r_matrix,
    svg_lines,
    svg_r_heatmap,
)
from engine.report.svg import cividis as _cividis

# Okabe & Ito (2008), the yellow last: it is faint on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
MATRIX_SCALE = "Cividis"
ACC_AXIS = "test accuracy (fraction, 0–1)"
STEP_AXIS = "training step (minibatches, all tasks)"
# Marker shapes per run, so runs whose points coincide still read apart (with dashes per run).
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "triangle-down")
NEW_TASK_AXIS = "learning: accuracy on each new task (plasticity)"
OLD_TASK_AXIS = "remembering: old tasks at the end (stability)"


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def dash(i: int) -> str:
    """Line styles for curves that can coincide (the toy's MSE and dynamic temperature do)."""
    return ("solid", "dash", "dot", "dashdot")[i % 4]


def png_config(filename: str) -> dict:
    """plotly config whose modebar camera button downloads the figure as ``filename``.png."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
    }


def legend_below(fig: go.Figure) -> go.Figure:
    """The legend in a row under the plot: long names beside it squeezed the plot itself."""
    fig.update_layout(legend={"orientation": "h", "y": -0.22, "x": 0, "yanchor": "top"})
    fig.update_layout(margin={"b": 110})
    return fig


def layout(fig: go.Figure, title: str = "", height: int = 380) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"} if title else None,
        height=height,
        margin={"l": 60, "r": 20, "t": 50 if title else 20, "b": 50},
    )
    return fig


# -- continual learning ------------------------------------------------------------------------


def figure_r_heatmap(
    R: Sequence[Sequence[float]], n_tasks: int | None = None, title: str = "", height: int = 380
) -> go.Figure:
    """R[t,i] as an annotated heatmap: rows = after training task t, columns = evaluated on task i.

    Rows not trained yet stay empty; tasks are numbered from 1 as in the literature.
    """
    m = r_matrix(R, n_tasks)
    T = m.shape[0]
    labels = [str(i + 1) for i in range(T)]
    z = [[None if math.isnan(v) else float(v) for v in row] for row in m]
    text = [["" if v is None else f"{v:.2f}" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            text=text,
            texttemplate="%{text}",
            colorscale=MATRIX_SCALE,
            zmin=0.0,
            zmax=1.0,
            colorbar={"title": {"text": "accuracy"}},
            hovertemplate="after training task %{y}<br>evaluated on task %{x}<br>accuracy %{z:.3f}<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    fig.update_xaxes(title_text="evaluated on task i", type="category", side="bottom")
    fig.update_yaxes(title_text="after training task t", type="category", autorange="reversed")
    return layout(fig, title, height)


def task_ends(curves: Mapping) -> list[int]:
    """Training step at which each phase ended (the last evaluation point of each phase)."""
    phases, steps = curves.get("phase") or [], curves.get("step") or []
    ends = [
        steps[i] for i in range(len(phases)) if i + 1 == len(phases) or phases[i + 1] != phases[i]
    ]
    return ends[:-1]  # the last one is the end of training, not a boundary


def figure_task_curves(
    curves: Mapping, boundaries: Sequence[int] | None = None, title: str = "", height: int = 380
) -> go.Figure:
    """Accuracy of every task on its test split over training steps (the blog's plot).

    ``curves`` has ``step`` (global minibatch count) and ``acc`` (one list of per-task
    accuracies per point); ``boundaries`` are the steps where one task's training ended
    (dotted lines; from :func:`task_ends` when the curves carry ``phase``).
    """
    steps = list(curves.get("step") or [])
    acc = np.asarray(curves.get("acc") or [], dtype=float).reshape(len(steps), -1)
    fig = go.Figure()
    for i in range(acc.shape[1]):
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=acc[:, i],
                mode="lines+markers",
                name=f"task {i + 1}",
                line={"color": colour(i)},
                marker={"size": 5},
                hovertemplate=f"task {i + 1}<br>step %{{x}}<br>accuracy %{{y:.3f}}<extra></extra>",
            )
        )
    if boundaries is None:
        boundaries = task_ends(curves)
    if boundaries:  # one trace of dotted segments (add_vline per boundary costs ~50 ms each)
        fig.add_trace(
            go.Scatter(
                x=[x for b in boundaries for x in (b, b, None)],
                y=[y for _ in boundaries for y in (0, 1.02, None)],
                mode="lines",
                line={"dash": "dot", "color": "#888", "width": 1},
                name="end of a task",
                hoverinfo="skip",
                showlegend=False,
            )
        )
    fig.update_xaxes(title_text=STEP_AXIS, rangemode="tozero")
    fig.update_yaxes(title_text=ACC_AXIS, range=[0, 1.02])
    return layout(fig, title, height)


def svg_task_curves(
    curves: Mapping,
    boundaries: Sequence[int] | None = None,
    title: str = "",
    height: int = 380,
    n_tasks: int | None = None,
) -> str:
    """:func:`figure_task_curves` as inline SVG: on screen with the page, with no plotting code
    to load first, so the live view's curves grow with its heatmap from the first point."""
    steps = list(curves.get("step") or [])
    if steps:
        acc = np.asarray(curves.get("acc") or [], dtype=float).reshape(len(steps), -1)
        columns = [acc[:, i].tolist() for i in range(acc.shape[1])]
    else:  # before the first point: the axes and the legend, so nothing moves when it comes
        columns = [[] for _ in range(n_tasks or 0)]
    series = [Series(f"task {i + 1}", steps, y, colour=colour(i)) for i, y in enumerate(columns)]
    if boundaries is None:
        boundaries = task_ends(curves)
    return svg_lines(
        series,
        STEP_AXIS,
        ACC_AXIS,
        title=title,
        y_range=(0.0, 1.02),
        vlines=list(boundaries or ()),
        height=height,
    )


# Where plotly can put a point's label, in order of preference, as the label box's offset from
# the point: (x of the box's left edge, y of its top edge) in units of (label width w, label
# height h, marker radius r); screen y grows downwards.
LABEL_SPOTS: dict[str, Callable[[float, float, float], tuple[float, float]]] = {
    "top center": lambda w, h, r: (-w / 2, -r - h),
    "bottom center": lambda w, h, r: (-w / 2, r),
    "middle right": lambda w, h, r: (r, -h / 2),
    "middle left": lambda w, h, r: (-r - w, -h / 2),
    "top right": lambda w, h, r: (0.7 * r, -0.7 * r - h),
    "bottom right": lambda w, h, r: (0.7 * r, 0.7 * r),
    "top left": lambda w, h, r: (-0.7 * r - w, -0.7 * r - h),
    "bottom left": lambda w, h, r: (-0.7 * r - w, 0.7 * r),
}
SCATTER_RANGE = (-0.02, 1.05)
CHAR_PX, LABEL_PX, MARKER_PX = 7.0, 15.0, 8.0  # a label character's width, a label's height, r
# The plot area the labels are placed for: a half-width column of a wide page (narrower than
# most screens give it, so labels placed apart here stay apart on a wider plot).
PLOT_W, PLOT_H = 420.0, 320.0


def to_px(x: float, y: float, width: float, height: float) -> tuple[float, float]:
    lo, hi = SCATTER_RANGE
    return (x - lo) / (hi - lo) * width, (1 - (y - lo) / (hi - lo)) * height


def label_box(
    point: Mapping, spot: str, width: float, height: float, text: str | None = None
) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) in pixels of ``point``'s label (``text``, else its label)
    placed at ``spot`` on a plot area ``width`` × ``height`` px spanning SCATTER_RANGE."""
    cx, cy = to_px(point["new"], point["old"], width, height)
    w, h = CHAR_PX * len(str(point["label"] if text is None else text)), LABEL_PX
    dx, dy = LABEL_SPOTS[spot](w, h, MARKER_PX)
    return cx + dx, cy + dy, cx + dx + w, cy + dy + h


def _overlap(a: tuple, b: tuple) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def covers(box: tuple, centre: tuple[float, float], r: float = MARKER_PX) -> bool:
    """Whether a label box covers any of a round marker of radius ``r`` at ``centre``."""
    x = min(max(centre[0], box[0]), box[2])
    y = min(max(centre[1], box[1]), box[3])
    return math.dist((x, y), centre) < r


def scatter_labels(
    points: Sequence[Mapping], width: float = PLOT_W, height: float = PLOT_H
) -> list[tuple[str, str]]:
    """(text, plotly textposition) per point, so that no label overlaps another or a marker
    ("naive" and "ewc" side by side used to read "nthive").

    Points whose markers touch share one label ("joint, replay") on the first of them; the
    others get none (their marker shapes differ, and the legend names every run). Then each
    label in turn takes the spot that collides least with the markers, the labels placed so far
    and the plot's edges."""
    centres = [to_px(p["new"], p["old"], width, height) for p in points]
    group_of: list[int] = []
    for k, (x, y) in enumerate(centres):
        near = [
            j
            for j in range(k)
            if group_of[j] == j and math.dist((x, y), centres[j]) < 2 * MARKER_PX
        ]
        group_of.append(near[0] if near else k)
    texts = [
        ", ".join(str(p["label"]) for j, p in enumerate(points) if group_of[j] == k)
        if group_of[k] == k
        else ""
        for k in range(len(points))
    ]
    placed: list[tuple] = []
    out = []
    for k, p in enumerate(points):
        if not texts[k]:
            out.append(("", "top center"))
            continue
        best, best_cost = "top center", math.inf
        for spot in LABEL_SPOTS:
            box = label_box(p, spot, width, height, texts[k])
            cost = sum(_overlap(box, b) for b in placed)
            cost += sum(
                4 * MARKER_PX**2 for j, c in enumerate(centres) if j != k and covers(box, c)
            )
            area = (box[2] - box[0]) * (box[3] - box[1])
            cost += area - _overlap(box, (0, 0, width, height))  # off the plot
            if cost < best_cost - 1e-9:
                best, best_cost = spot, cost
        placed.append(label_box(p, best, width, height, texts[k]))
        out.append((texts[k], best))
    return out


def figure_stability_plasticity(
    rows: Sequence[Mapping], title: str = "", height: int = 460
) -> go.Figure:
    """One point per run: x = new-task accuracy, y = old-task accuracy (both 0–1).

    ``rows`` are dicts with ``label``, ``old`` and ``new`` (see :func:`stability_plasticity`).
    The top-right corner is a learner that both learns and remembers every task. Labels are
    placed apart (:func:`scatter_labels`), each run has its own marker shape, and a legend
    names them too.
    """
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"dash": "dot", "color": "#bbb"},
            showlegend=False,
            hoverinfo="skip",
        )
    )
    labels = scatter_labels(rows)
    for k, (row, (text, spot)) in enumerate(zip(rows, labels, strict=True)):
        fig.add_trace(
            go.Scatter(
                x=[row["new"]],
                y=[row["old"]],
                mode="markers+text",
                text=[text],
                textposition=spot,
                name=row["label"],
                marker={
                    "size": 13,
                    "color": colour(k),
                    "symbol": SYMBOLS[k % len(SYMBOLS)],
                    "opacity": 0.85,
                    "line": {"width": 1, "color": "white"},
                },
                hovertemplate=f"{row['label']}<br>new-task accuracy %{{x:.3f}}<br>old-task accuracy %{{y:.3f}}<extra></extra>",
            )
        )
    fig.update_xaxes(title_text=NEW_TASK_AXIS, range=list(SCATTER_RANGE))
    fig.update_yaxes(title_text=OLD_TASK_AXIS, range=list(SCATTER_RANGE))
    fig.update_layout(legend={"orientation": "h", "y": -0.2, "x": 0})
    fig = layout(fig, title, height)
    fig.update_layout(margin={"b": 90})  # the legend under the x-axis title
    return fig


def seen_task_mean(curves: Mapping) -> list[float]:
    """Mean accuracy over the tasks trained so far at each curve point (all tasks without phases)."""
    acc = np.asarray(curves.get("acc") or [], dtype=float)
    if acc.size == 0:
        return []
    phases = curves.get("phase")
    if not phases:
        return acc.mean(axis=1).tolist()
    return [float(row[: min(len(row), p + 1)].mean()) for row, p in zip(acc, phases, strict=True)]


def figure_compare_curves(
    curves_by_label: Mapping[str, Mapping],
    task: int | None = None,
    title: str = "",
    height: int = 380,
) -> go.Figure:
    """Overlaid curves of several runs: accuracy on ``task`` (0-based), or, with ``task=None``,
    the mean accuracy over the tasks trained so far."""
    fig = go.Figure()
    for k, (label, curves) in enumerate(curves_by_label.items()):
        steps = list(curves.get("step") or [])
        if task is None:
            y = seen_task_mean(curves)
        else:
            acc = np.asarray(curves.get("acc") or [], dtype=float).reshape(len(steps), -1)
            y = acc[:, task].tolist() if task < acc.shape[1] else []
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=y,
                mode="lines+markers",
                name=label,
                # Runs can coincide (joint and cumulative, two values that change nothing):
                # a dash style and a marker shape each keep every one visible.
                line={"color": colour(k), "dash": dash(k)},
                marker={"size": 6, "symbol": SYMBOLS[k % len(SYMBOLS)]},
            )
        )
    what = (
        "mean accuracy on the tasks seen so far" if task is None else f"accuracy on task {task + 1}"
    )
    fig.update_xaxes(title_text=STEP_AXIS, rangemode="tozero")
    fig.update_yaxes(title_text=f"{what} (0–1)", range=[0, 1.02])
    return layout(fig, title, height)


# -- sweeps --------------------------------------------------------------------------------------

SWEEP_METRICS = {
    "acc": "ACC: final mean accuracy (0–1)",
    "bwt": "BWT: backward transfer (−forgetting)",
    "forgetting": "forgetting (0–1)",
}


def is_number(v) -> bool:
    """A plotted number: int or float, not bool (True is an int to Python)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def figure_sweep(
    rows: Sequence[Mapping],
    x: str,
    by: Sequence[str] = (),
    metrics: Sequence[str] = ("acc", "bwt"),
    title: str = "",
    height: int = 380,
) -> go.Figure:
    """A sweep's summary rows (``engine.sweep.SweepResult.summary``) as one panel per metric:
    the metric's mean over seeds against the setting ``x``, error bars ± one sample standard
    deviation, one line per combination of the ``by`` settings. A numeric ``x`` gives lines (on a
    log axis when it spans two decades or more), any other gives grouped bars."""
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1, cols=len(metrics), subplot_titles=[SWEEP_METRICS[m] for m in metrics]
    )
    usable = [r for r in rows if r.get(x) is not None]
    numeric = bool(usable) and all(is_number(r[x]) for r in usable)
    groups: dict[tuple, list[Mapping]] = {}
    for r in usable:
        groups.setdefault(tuple(r.get(b) for b in by), []).append(r)
    for k, (group, members) in enumerate(groups.items()):
        members = sorted(members, key=lambda r: r[x]) if numeric else members
        name = ", ".join(f"{b.rsplit('.', 1)[-1]}={v}" for b, v in zip(by, group, strict=True))
        xs = [r[x] if numeric else str(r[x]) for r in members]
        for col, m in enumerate(metrics, start=1):
            ys = [r.get(f"{m}_mean") for r in members]
            errors = [r.get(f"{m}_std") or 0.0 for r in members]
            style = {
                "x": xs,
                "y": ys,
                "name": name or m,
                "legendgroup": name,
                "showlegend": col == 1 and bool(name),
                "error_y": {"type": "data", "array": errors, "visible": True},
                "marker": {"color": colour(k)},
                "customdata": [[e, r.get("n")] for e, r in zip(errors, members, strict=True)],
                "hovertemplate": f"{x}=%{{x}}<br>{m}=%{{y:.3f}} ± %{{customdata[0]:.3f}}"
                "<br>seeds: %{customdata[1]}<extra>%{fullData.name}</extra>",
            }
            trace = (
                go.Scatter(mode="lines+markers", line={"color": colour(k)}, **style)
                if numeric
                else go.Bar(**style)
            )
            fig.add_trace(trace, row=1, col=col)
    positive = [r[x] for r in usable if numeric and r[x] > 0]
    log = numeric and len(positive) == len(usable) and max(positive) >= 100 * min(positive)
    fig.update_xaxes(
        title_text=f"{x}{' (log scale)' if log else ''}",
        type="log" if log else ("linear" if numeric else "category"),
    )
    for col, m in enumerate(metrics, start=1):
        if m in ("acc", "forgetting"):
            fig.update_yaxes(range=[0, 1.02], row=1, col=col)
    if not numeric:
        fig.update_layout(barmode="group")
    fig.update_layout(legend={"title": {"text": ", ".join(b.rsplit(".", 1)[-1] for b in by)}})
    return layout(fig, title, height)


# -- softmax lab -----------------------------------------------------------------------------


def _log_c_axis(fig: go.Figure) -> None:
    fig.update_xaxes(
        title_text="c (inverse temperature; log scale)", type="log", exponentformat="power"
    )


def figure_softmax_rank(curve: Mapping, title: str = "", height: int = 380) -> go.Figure:
    """Numerical rank of column-wise softmax(c·B) against c (thesis Fig. 6.2.5)."""
    fig = go.Figure(
        go.Scatter(
            x=curve["c"],
            y=curve["rank"],
            mode="lines+markers",
            name="rank of softmax(c·B)",
            line={"color": colour(0)},
        )
    )
    # The two limits as legend entries, not annotations: a label on the plot sat on the lines.
    c = [curve["c"][0], curve["c"][-1]]
    for y, name, style, k in (
        (curve["argmax_rank"], f"c → ∞: one-hot argmax, rank {curve['argmax_rank']}", "dash", 1),
        (1, "c → 0: uniform columns, rank 1", "dot", 2),
    ):
        fig.add_trace(
            go.Scatter(
                x=c, y=[y, y], mode="lines", name=name, line={"dash": style, "color": colour(k)}
            )
        )
    _log_c_axis(fig)
    fig.update_yaxes(
        title_text=f"numerical rank (σ > {curve.get('rel_tol', 1e-3):g}·σ₁)", rangemode="tozero"
    )
    return legend_below(layout(fig, title, height))


def figure_singular_values(
    c: Sequence[float],
    singular_values: Sequence[Sequence[float]],
    title: str = "",
    height: int = 380,
    x_title: str | None = None,
    log_x: bool = True,
) -> go.Figure:
    """Every singular value σ_k against c (or iterations), one line per k, log y."""
    s = np.asarray(singular_values, dtype=float)
    fig = go.Figure()
    n = s.shape[1] if s.ndim == 2 else 0
    # Below 1e-16·σ₁ a singular value is float64 round-off, not signal: leave it out.
    floor = 1e-16 * s[:, :1] if n else 0.0
    for k in range(n):
        y = np.where(s[:, k] > floor[:, 0], s[:, k], np.nan)
        shade = k / max(1, n - 1)
        fig.add_trace(
            go.Scatter(
                x=list(c),
                y=y,
                mode="lines",
                name=f"σ{k + 1}",
                showlegend=n <= 10,
                line={"color": _cividis(shade), "width": 1.5},
            )
        )
    if log_x:
        _log_c_axis(fig)
    if x_title:
        fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text="singular value (log scale)", type="log", exponentformat="power")
    return layout(fig, title, height)


def figure_gap_bound(curve: Mapping, title: str = "", height: int = 380) -> go.Figure:
    """Measured σ₁ − σ_n of softmax(c·B) against Proposition 2's bound (thesis 6.2.4)."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=curve["c"],
            y=curve["gap"],
            mode="lines+markers",
            name="measured σ₁ − σ_n",
            line={"color": colour(0)},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=curve["c"],
            y=curve["bound"],
            mode="lines",
            name="bound √(1+r) − √(max(1/n − r, 0))",
            line={"color": colour(5), "dash": "dash"},
        )
    )
    _log_c_axis(fig)
    fig.update_yaxes(title_text="spectral gap σ₁ − σ_n (no unit)", rangemode="tozero")
    return legend_below(layout(fig, title, height))


def figure_inner_products(ip: Mapping, title: str = "", height: int = 380) -> go.Figure:
    """Inner products of softmax columns sharing their argmax vs not (thesis Fig. 6.8.1)."""
    fig = go.Figure()
    for k, (group, label) in enumerate(
        (("same", "same argmax"), ("different", "different argmax"))
    ):
        stats = ip[group]
        if not any(v is not None for v in stats["mean"]):
            continue
        c = ip["c"]
        fig.add_trace(
            go.Scatter(
                x=c,
                y=stats["max"],
                mode="lines",
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=c,
                y=stats["min"],
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=_rgba(colour(k * 5), 0.2),
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=c,
                y=stats["mean"],
                mode="lines",
                name=f"{label} (mean, min–max band)",
                line={"color": colour(k * 5)},
            )
        )
    _log_c_axis(fig)
    fig.update_yaxes(title_text="⟨m_i, m_j⟩ of two softmax columns", range=[-0.02, 1.02])
    return legend_below(layout(fig, title, height))


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def figure_toy_rank(
    results: Mapping[str, Mapping], centered: bool = False, title: str = "", height: int = 380
) -> go.Figure:
    """Rank of the toy's output over gradient-descent iterations, one line per loss."""
    key = "rank_centered" if centered else "rank"
    fig = go.Figure()
    n = len(results)
    for k, (loss, res) in enumerate(results.items()):
        # Ranks are whole numbers and two losses often share one (MSE and the dynamic
        # temperature both end at d): each line is lifted a hair, so none hides another;
        # the hover shows the true rank.
        lift = (k - (n - 1) / 2) * 0.08
        fig.add_trace(
            go.Scatter(
                x=res["iteration"],
                y=[r + lift for r in res[key]],
                customdata=res[key],
                mode="lines",
                name=loss,
                line={"color": colour(k), "shape": "hv", "dash": dash(k), "width": 3 - k * 0.7},
                hovertemplate=f"{loss}<br>iteration %{{x}}<br>rank %{{customdata}}<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="iteration (full-batch gradient steps)")
    what = "rank of the centred logits" if centered else "rank of the logits A = W₃W₂W₁"
    fig.update_yaxes(title_text=f"{what} (σ > 10⁻³·σ₁)", rangemode="tozero", dtick=1)
    return layout(fig, title, height)


def figure_toy_singular_values(
    result: Mapping, post: bool = False, title: str = "", height: int = 380
) -> go.Figure:
    """The toy's singular values over iterations, before (logits) or after the softmax."""
    s = result["singular_values_post" if post else "singular_values"]
    fig = figure_singular_values(
        result["iteration"],
        s,
        title=title,
        height=height,
        log_x=False,
        x_title="iteration (full-batch gradient steps)",
    )
    what = "post-softmax" if post else "pre-softmax (logits)"
    fig.update_yaxes(title_text=f"{what} singular value (log scale)")
    return fig


def figure_perturbation(
    perturbations: Mapping[str, Mapping], title: str = "", height: int = 380
) -> go.Figure:
    """Accuracy on Gaussian-perturbed inputs e_i + σξ against σ, one line per loss (Fig. 6.2.2)."""
    fig = go.Figure()
    for k, (loss, res) in enumerate(perturbations.items()):
        fig.add_trace(
            go.Scatter(
                x=res["sigma"],
                y=res["accuracy"],
                mode="lines+markers",
                name=loss,
                line={"color": colour(k), "dash": dash(k)},
            )
        )
    fig.update_xaxes(title_text="noise σ (standard deviation per coordinate)")
    fig.update_yaxes(title_text=ACC_AXIS, range=[0, 1.02])
    return layout(fig, title, height)
