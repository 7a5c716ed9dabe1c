"""Pure figure builders for the Tunnel and Representations pages: results in, plotly out.

Same conventions as app/figures.py: cividis for matrices, the Okabe–Ito palette for lines,
labelled axes, accuracies as fractions 0–1. Layers are numbered from 1 like the thesis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.figures import ACC_AXIS, MATRIX_SCALE, colour, dash, layout

LAYER_AXIS = "layer (1 = first hidden layer)"
RANK_AXIS = "numerical rank of the representations"


def layer_numbers(layers: Sequence[str]) -> list[int]:
    return list(range(1, len(layers) + 1))


def figure_tunnel(result: Mapping, title: str = "", height: int = 420) -> go.Figure:
    """Rank by layer (left axis) — with the logits as a last point, where the rank collapses to
    about the number of classes — and ID / OOD probe accuracy by layer (right axis), the raw
    input's probe as a dotted reference; the tunnel (from the 95 % start) shaded, named in the
    legend so no label sits on a line."""
    layers = result["layers"]
    x = layer_numbers(layers)
    logits_x = len(layers) + 1
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    ranks, rank_x, names = list(result["rank"]), list(x), list(layers)
    if result.get("logits_rank") is not None:
        ranks.append(result["logits_rank"])
        rank_x.append(logits_x)
        names.append("logits")
    fig.add_trace(
        go.Scatter(
            x=rank_x,
            y=ranks,
            name="rank",
            mode="lines+markers",
            line={"color": colour(0)},
            customdata=names,
            hovertemplate="%{customdata}<br>rank %{y}<extra></extra>",
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=result["probe"]["test_acc"],
            name="probe accuracy (in distribution)",
            mode="lines+markers",
            line={"color": colour(1), "dash": dash(1)},
        ),
        secondary_y=True,
    )
    ood = result.get("ood")
    if ood:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=ood["acc"],
                name=f"probe accuracy (OOD: {ood['name']})",
                mode="lines+markers",
                line={"color": colour(2), "dash": dash(2)},
            ),
            secondary_y=True,
        )
    inputs = (result.get("input_probe") or {}).get("test_acc")
    if inputs is not None:
        fig.add_trace(
            go.Scatter(
                x=[0.5, len(layers) + 0.5],
                y=[inputs, inputs],
                name="probe on the raw input",
                mode="lines",
                line={"color": colour(1), "dash": "dot", "width": 1},
                hovertemplate=f"input probe {inputs:.3f}<extra></extra>",
            ),
            secondary_y=True,
        )
    start = (result.get("tunnel_start") or {}).get("0.95")
    if start:
        fig.add_vrect(
            x0=start["layer"] - 0.5,
            x1=len(layers) + 0.5,
            fillcolor="grey",
            opacity=0.15,
            line_width=0,
            showlegend=True,
            name=f"tunnel (from layer {start['layer']}: 95 % of the gain over the input)",
        )
    ticks = [*x, logits_x] if result.get("logits_rank") is not None else x
    labels = [str(i) for i in x] + (["logits"] if len(ticks) > len(x) else [])
    fig.update_xaxes(title_text=LAYER_AXIS, tickvals=ticks, ticktext=labels)
    fig.update_yaxes(title_text=RANK_AXIS, rangemode="tozero", secondary_y=False)
    lo, ticks = probe_axis(result)
    fig.update_yaxes(
        title_text=f"probe {ACC_AXIS}",
        range=[lo, 1.005],
        tickvals=ticks,
        showgrid=False,  # one grid, the rank axis's: two would cross at odd heights
        secondary_y=True,
    )
    fig.update_layout(legend={"orientation": "h", "y": -0.25})
    return layout(fig, title, height)


def probe_axis(result: Mapping) -> tuple[float, list[float]]:
    """The probe axis from a round number under the lowest probe to 1, with round ticks: on
    0–1 the rise from 0.91 to 0.94 that the page is about would be a flat line at the top."""
    values = [*result["probe"]["test_acc"], *((result.get("ood") or {}).get("acc") or [])]
    values += [(result.get("input_probe") or {}).get("test_acc")]
    low = min((v for v in values if v is not None), default=0.0)
    span = 1.0 - low
    step = next(s for s in (0.01, 0.02, 0.05, 0.1, 0.2) if span / s <= 6)
    lo = max(0.0, math.floor((low - step / 2) / step) * step)
    ticks = [round(lo + k * step, 4) for k in range(int(round((1.0 - lo) / step)) + 1)]
    return lo, ticks


def figure_cka(
    matrix: Sequence[Sequence[float]],
    x_labels: Sequence[str],
    y_labels: Sequence[str] | None = None,
    title: str = "",
    x_title: str = "layer",
    y_title: str = "layer",
    height: int = 420,
) -> go.Figure:
    """A CKA matrix (rows = y, columns = x) on a fixed 0–1 cividis scale."""
    y_labels = list(x_labels) if y_labels is None else list(y_labels)
    fig = go.Figure(
        go.Heatmap(
            z=np.asarray(matrix, dtype=float).tolist(),  # plain JSON lists, not typed arrays
            x=list(x_labels),
            y=y_labels,
            zmin=0.0,
            zmax=1.0,
            colorscale=MATRIX_SCALE,
            colorbar={"title": "CKA"},
            hovertemplate=f"{y_title} %{{y}}<br>{x_title} %{{x}}<br>CKA %{{z:.3f}}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text=x_title, type="category")
    fig.update_yaxes(title_text=y_title, type="category", autorange="reversed")
    return layout(fig, title, height)


def figure_rank_lines(
    lines: Mapping[str, Sequence[float]],
    layers: Sequence[str],
    title: str = "",
    height: int = 400,
) -> go.Figure:
    """Rank by layer, one line per entry of ``lines`` (a temperature, a task)."""
    x = layer_numbers(layers)
    fig = go.Figure()
    for i, (name, rank) in enumerate(lines.items()):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=rank,
                name=name,
                mode="lines+markers",
                line={"color": colour(i), "dash": dash(i)},
            )
        )
    fig.update_xaxes(title_text=LAYER_AXIS, dtick=1)
    fig.update_yaxes(title_text=RANK_AXIS, rangemode="tozero")
    return layout(fig, title, height)


def figure_repforget(result: Mapping, title: str = "", height: int = 600) -> go.Figure:
    """Thesis Figs. 3.3.2–3.3.3 side by side, one column per model of a repforget result
    (discriminative, autoencoder, VAE). Top: the accuracy of every frozen task probe after each
    later task, with chance dashed. Bottom: the CKA drift of the penultimate layer on each task's
    own images, from the end of that task on."""
    names = {"discriminative": "discriminative", "autoencoder": "autoencoder", "vae": "VAE"}
    models = [m for m in result.get("models", names) if result.get(m)]
    T = result["tasks"]
    titles = [
        names.get(m, m) + (f" (β = {result[m]['beta']:g})" if "beta" in result[m] else "")
        for m in models
    ]
    fig = make_subplots(
        rows=2,
        cols=len(models),
        shared_xaxes=True,
        shared_yaxes=True,
        subplot_titles=titles,
        vertical_spacing=0.1,
        horizontal_spacing=0.04,
    )
    for c, m in enumerate(models, start=1):
        P, drift = result[m]["probe_acc"], result[m]["penultimate_drift"]
        for j in range(T):
            style = {"color": colour(j), "dash": dash(j)}
            fig.add_trace(
                go.Scatter(
                    x=list(range(j + 1, T + 1)),
                    y=[P[t][j] for t in range(j, T)],
                    name=f"task {j + 1}",
                    legendgroup=f"task {j + 1}",
                    showlegend=c == 1,
                    mode="lines+markers",
                    line=style,
                    hovertemplate=f"{names.get(m, m)}: probe of task {j + 1}"
                    "<br>after task %{x}<br>accuracy %{y:.3f}<extra></extra>",
                ),
                row=1,
                col=c,
            )
            if drift[j] is not None:
                fig.add_trace(
                    go.Scatter(
                        x=list(range(j + 1, j + 1 + len(drift[j]))),
                        y=drift[j],
                        name=f"task {j + 1}",
                        legendgroup=f"task {j + 1}",
                        showlegend=False,
                        mode="lines+markers",
                        line=style,
                        hovertemplate=f"{names.get(m, m)}: task {j + 1}'s images"
                        "<br>after task %{x}<br>CKA %{y:.3f}<extra></extra>",
                    ),
                    row=2,
                    col=c,
                )
    chance = {1 / len(k) for k in result.get("task_classes", [])}
    if len(chance) == 1:  # one dashed line only when every task has the same class count
        fig.add_hline(
            y=chance.pop(), line={"dash": "dash", "color": "grey", "width": 1}, row=1, col="all"
        )
    fig.update_xaxes(dtick=1, range=[0.7, T + 0.3])
    fig.update_xaxes(title_text="after training task", row=2)
    fig.update_yaxes(range=[0, 1.02])
    fig.update_yaxes(title_text="frozen probe accuracy", row=1, col=1)
    fig.update_yaxes(title_text="CKA to the task's end (penultimate)", row=2, col=1)
    fig.update_layout(
        legend={"orientation": "h", "y": -0.12, "title": {"text": "probe / images of"}}
    )
    return layout(fig, title, height)
