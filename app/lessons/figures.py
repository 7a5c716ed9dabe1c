"""Pure figure builders for the lessons: numbers in, a plotly Figure out (tests call them).

Same conventions as :mod:`app.figures`: Okabe–Ito colours, axes that say what they measure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from app.figures import colour
from engine import teaching

METHOD_LABELS = {
    "fine-tune": "fine-tuning (too plastic)",
    "frozen": "frozen (too stable)",
    "l2": "L2 to the old weights",
    "ewc": "EWC",
    "joint": "joint optimum",
}
METHOD_COLOURS = {"fine-tune": 5, "frozen": 6, "l2": 3, "ewc": 2, "joint": 0}
TASK_COLOURS = (1, 4)  # orange and sky blue, as in the course's cartoon


def _layout(fig: go.Figure, title: str = "", height: int = 360) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"} if title else None,
        height=height,
        margin={"l": 60, "r": 20, "t": 50 if title else 20, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        template="plotly_white",
    )
    return fig


# -- lesson 1: information -------------------------------------------------------------------


def figure_surprise(prob: float, unit: str = "bits") -> go.Figure:
    """−log p over p ∈ (0, 1], with the chosen probability marked."""
    p = np.linspace(0.005, 1.0, 200)
    s = -teaching.log_in(p, unit)
    fig = go.Figure(
        go.Scatter(x=p, y=s, mode="lines", name="surprise −log p", line={"color": colour(0)})
    )
    here = float(-teaching.log_in(np.array([prob]), unit)[0])
    fig.add_trace(
        go.Scatter(
            x=[prob],
            y=[here],
            mode="markers+text",
            text=[f"{here:.2f} {unit}"],
            textposition="top right",
            marker={"size": 12, "color": colour(1)},
            name="your outcome",
        )
    )
    fig.update_xaxes(title_text="probability of the outcome", range=[0, 1.02])
    fig.update_yaxes(title_text=f"surprise ({unit})", rangemode="tozero")
    return _layout(fig)


def figure_binary_curves(p1: float, q1: float, unit: str = "bits") -> go.Figure:
    """Two outcomes, p fixed: H(p), H(p, q) and both KL directions as q₁ sweeps (0, 1)."""
    grid = np.linspace(0.01, 0.99, 99)
    p = (p1, 1 - p1)
    rows = [teaching.information_terms(p, (g, 1 - g), unit) for g in grid]
    fig = go.Figure()
    for k, (key, name) in enumerate(
        [("H_pq", "cross-entropy H(p, q)"), ("KL_pq", "D_KL(p‖q)"), ("KL_qp", "D_KL(q‖p)")]
    ):
        fig.add_trace(
            go.Scatter(
                x=grid, y=[r[key] for r in rows], mode="lines", name=name, line={"color": colour(k)}
            )
        )
    fig.add_hline(
        y=teaching.entropy(p, unit),
        line={"dash": "dot", "color": "#888"},
        annotation_text="H(p): the floor of H(p, q)",
        annotation_position="top left",
    )
    fig.add_vline(x=q1, line={"dash": "dash", "color": colour(6), "width": 1})
    fig.update_xaxes(title_text="q₁ = q(first outcome); p is held fixed", range=[0, 1])
    fig.update_yaxes(title_text=f"{unit}", rangemode="tozero")
    return _layout(fig)


def figure_distributions(p: Sequence[float], q: Sequence[float]) -> go.Figure:
    """p and q side by side, one pair of bars per outcome."""
    names = [f"outcome {i + 1}" for i in range(len(p))]
    fig = go.Figure(
        [
            go.Bar(x=names, y=list(p), name="p (what happens)", marker_color=colour(0)),
            go.Bar(x=names, y=list(q), name="q (what the model believes)", marker_color=colour(1)),
        ]
    )
    fig.update_yaxes(title_text="probability", range=[0, 1])
    return _layout(fig, height=300)


def figure_kl_terms(terms: Mapping) -> go.Figure:
    """Per-outcome contributions: −p log q (cross-entropy), −p log p (entropy), their difference."""
    rows = terms["rows"]
    names = [f"outcome {r['outcome'] + 1}" for r in rows]
    fig = go.Figure(
        [
            go.Bar(
                x=names,
                y=[r["h_pq"] for r in rows],
                name="−p log q  (→ H(p, q))",
                marker_color=colour(1),
            ),
            go.Bar(
                x=names,
                y=[r["h_p"] for r in rows],
                name="−p log p  (→ H(p))",
                marker_color=colour(0),
            ),
            go.Bar(
                x=names,
                y=[r["kl_pq"] for r in rows],
                name="p log(p/q)  (→ D_KL(p‖q))",
                marker_color=colour(2),
            ),
        ]
    )
    fig.update_yaxes(title_text=f"contribution ({terms['unit']})")
    return _layout(fig, height=320)


# -- lesson 2 (and 4): the 2-D parameter space -------------------------------------------------


def ellipse(task, level: float, n: int = 120) -> np.ndarray:
    """Points of the level set {θ : L(θ) = level} of a quadratic task (an ellipse), n × 2."""
    w, V = np.linalg.eigh(task.A)
    t = np.linspace(0, 2 * np.pi, n)
    circle = np.stack([np.cos(t), np.sin(t)], axis=1)
    return task.center + np.sqrt(2 * level) * (circle / np.sqrt(w)) @ V.T


def figure_parameter_space(
    sp: Mapping,
    methods: Sequence[str] = teaching.METHODS,
    low_loss: float = 0.6,
    show_closed_form: bool = True,
) -> go.Figure:
    """Both tasks' loss contours (ellipses at 1, 4, 9, 16 × ``low_loss``), their low-loss
    regions (L ≤ ``low_loss``, shaded), and each method's gradient-descent path from θ*₁ to its
    end point (a ring marks the closed-form end point)."""
    task1, task2 = sp["tasks"]
    fig = go.Figure()
    for k, (task, name) in enumerate([(task1, "task 1"), (task2, "task 2")]):
        c = colour(TASK_COLOURS[k])
        for m in (4, 9, 16):
            e = ellipse(task, m * low_loss)
            fig.add_trace(
                go.Scatter(
                    x=e[:, 0],
                    y=e[:, 1],
                    mode="lines",
                    line={"color": c, "width": 1, "dash": "dot"},
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
        e = ellipse(task, low_loss)
        fig.add_trace(
            go.Scatter(
                x=e[:, 0],
                y=e[:, 1],
                mode="lines",
                fill="toself",
                fillcolor=c,
                opacity=0.35,
                line={"color": c, "width": 2},
                name=f"{name}: loss ≤ {low_loss:g}",
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[task.center[0]],
                y=[task.center[1]],
                mode="markers+text",
                text=[f"θ*{'₁₂'[k]}"],
                textposition="bottom center",
                marker={"symbol": "x", "size": 11, "color": c},
                showlegend=False,
                hovertemplate=f"minimum of {name}<extra></extra>",
            )
        )
    for m in methods:
        run = sp["methods"][m]
        c = colour(METHOD_COLOURS[m])
        path = np.asarray(run["path"])
        fig.add_trace(
            go.Scatter(
                x=path[:, 0],
                y=path[:, 1],
                mode="lines",
                name=METHOD_LABELS[m],
                line={"color": c, "width": 3},
                legendgroup=m,
                hovertemplate=f"{METHOD_LABELS[m]}<br>θ = (%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[run["end"][0]],
                y=[run["end"][1]],
                mode="markers",
                legendgroup=m,
                showlegend=False,
                marker={"size": 11, "color": c, "line": {"width": 1, "color": "white"}},
                hovertemplate=(
                    f"{METHOD_LABELS[m]} ends here<br>L₁ = {run['loss1']:.3f}, L₂ = {run['loss2']:.3f}<extra></extra>"
                ),
            )
        )
        if show_closed_form:
            fig.add_trace(
                go.Scatter(
                    x=[run["closed_form"][0]],
                    y=[run["closed_form"][1]],
                    mode="markers",
                    legendgroup=m,
                    showlegend=False,
                    marker={"size": 20, "symbol": "circle-open", "color": c},
                    hoverinfo="skip",
                )
            )
    fig.update_xaxes(title_text="θ₁ (a weight task 1 hardly cares about)", range=[-1.5, 4.5])
    fig.update_yaxes(
        title_text="θ₂ (a weight task 1 cares about)", range=[-1.5, 3.0], scaleanchor="x"
    )
    return _layout(fig, height=480)


def figure_runaway(path: np.ndarray, task1, task2) -> go.Figure:
    """Distance from θ*₁ and both losses along a gradient-descent run that runs away."""
    path = np.asarray(path)
    steps = np.arange(len(path))
    fig = go.Figure(
        [
            go.Scatter(
                x=steps,
                y=np.linalg.norm(path - task1.center, axis=1),
                name="‖θ − θ*₁‖",
                line={"color": colour(0)},
            ),
            go.Scatter(
                x=steps, y=task1.loss(path), name="task-1 loss L₁", line={"color": colour(5)}
            ),
            go.Scatter(
                x=steps, y=task2.loss(path), name="task-2 loss L₂", line={"color": colour(2)}
            ),
        ]
    )
    fig.update_xaxes(title_text="gradient-descent step")
    fig.update_yaxes(title_text="value (log scale)", type="log", exponentformat="power")
    return _layout(fig, height=320)


# -- lesson 3, 5, 6: real runs -----------------------------------------------------------------


def figure_approaches() -> go.Figure:
    """What each approach lets change while the new task trains, and whether it needs old data."""
    approaches = ["frozen features", "fine-tuning", "LwF", "joint training"]
    parts = ["feature extractor", "old task's head", "new task's head", "needs old data"]
    # 1 = trains / needed, 0 = frozen / not needed
    z = [[0, 0, 1, 0], [1, 0, 1, 0], [1, 0, 1, 0], [1, 1, 1, 1]]
    text = [
        ["frozen", "kept", "trains", "no"],
        ["trains", "kept (goes stale)", "trains", "no"],
        ["trains, pulled to old outputs", "kept", "trains", "no (new inputs stand in)"],
        ["trains", "trains", "trains", "yes"],
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=parts,
            y=approaches,
            text=text,
            texttemplate="%{text}",
            showscale=False,
            colorscale=[[0, "#e8eef6"], [1, "#9ecae1"]],
            xgap=2,
            ygap=2,
            hoverinfo="skip",
        )
    )
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, height=300)


def figure_old_new(rows: Sequence[Mapping], x: str = "label", title: str = "") -> go.Figure:
    """Accuracy on the old tasks and on the newest task after training ends, per run."""
    labels = [str(r[x]) for r in rows]
    fig = go.Figure(
        [
            go.Bar(
                x=labels,
                y=[r["old_acc"] for r in rows],
                name="old tasks (mean, at the end)",
                marker_color=colour(0),
                text=[f"{r['old_acc']:.2f}" for r in rows],
                textposition="outside",
            ),
            go.Bar(
                x=labels,
                y=[r["new_acc"] for r in rows],
                name="newest task (at the end)",
                marker_color=colour(1),
                text=[f"{r['new_acc']:.2f}" for r in rows],
                textposition="outside",
            ),
        ]
    )
    fig.update_yaxes(title_text="test accuracy (fraction, 0–1)", range=[0, 1.12])
    return _layout(fig, title, height=340)


def figure_replay_batch(fraction: float, batch: int = 32) -> go.Figure:
    """How one training batch is made up at a replay fraction f: B new samples plus
    round(B·f/(1−f)) from the buffer, so f of the enlarged batch is replayed."""
    replayed = round(batch * fraction / (1 - fraction)) if fraction < 1 else 0
    fig = go.Figure(
        [
            go.Bar(
                y=["one batch"],
                x=[batch],
                orientation="h",
                name=f"new task ({batch})",
                marker_color=colour(1),
            ),
            go.Bar(
                y=["one batch"],
                x=[replayed],
                orientation="h",
                name=f"replayed from the buffer ({replayed})",
                marker_color=colour(0),
            ),
        ]
    )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title_text="samples in the batch")
    return _layout(fig, height=200)


def figure_replay_tradeoff(rows: Sequence[Mapping]) -> go.Figure:
    """Old-task and newest-task accuracy (and ACC) against the replay fraction."""
    f = [r["fraction"] for r in rows]
    fig = go.Figure(
        [
            go.Scatter(
                x=f,
                y=[r["old_acc"] for r in rows],
                mode="lines+markers",
                name="old tasks",
                line={"color": colour(0)},
            ),
            go.Scatter(
                x=f,
                y=[r["new_acc"] for r in rows],
                mode="lines+markers",
                name="newest task",
                line={"color": colour(1)},
            ),
            go.Scatter(
                x=f,
                y=[r["acc"] for r in rows],
                mode="lines+markers",
                name="ACC (all tasks)",
                line={"color": colour(2), "dash": "dash"},
            ),
        ]
    )
    fig.update_xaxes(title_text="replay fraction (share of each batch from the buffer)", tickvals=f)
    fig.update_yaxes(title_text="test accuracy after the last task (0–1)", range=[0, 1.05])
    return _layout(fig, height=360)


# -- lesson 4: curvature ----------------------------------------------------------------------


def figure_taylor_slice(sl: Mapping) -> go.Figure:
    """Task 1's true loss along one direction against its quadratic stand-ins."""
    fig = go.Figure(
        [
            go.Scatter(
                x=sl["t"],
                y=sl["loss"],
                name="true loss L₁(θ* + t·u) − L₁(θ*)",
                line={"color": colour(0), "width": 3},
            ),
            go.Scatter(
                x=sl["t"],
                y=sl["taylor"],
                name="½ t² uᵀHu (second-order Taylor)",
                line={"color": colour(1), "dash": "dash"},
            ),
        ]
    )
    if "diagonal" in sl:
        fig.add_trace(
            go.Scatter(
                x=sl["t"],
                y=sl["diagonal"],
                name="½ t² Σ F_i u_i² (diagonal Fisher: EWC)",
                line={"color": colour(2), "dash": "dot"},
            )
        )
    fig.update_xaxes(title_text="t (distance moved along a random unit direction u)")
    fig.update_yaxes(title_text="increase of task-1 loss (nats)")
    return _layout(fig, height=340)


def figure_curvature_hist(est: Mapping, bins: int = 60) -> go.Figure:
    """Distribution of the per-parameter estimates; the vertical line is zero."""
    fig = go.Figure()
    names = {
        "fisher": "squared gradients (empirical Fisher)",
        "hutchinson": "Hutchinson's Hessian-diagonal estimate",
        "exact": "exact Hessian diagonal",
    }
    for k, key in enumerate(("fisher", "hutchinson", "exact")):
        v = est.get(key)
        if v is None:
            continue
        v = np.asarray(v, dtype=float)
        lim = np.quantile(np.abs(v), 0.99) or 1.0
        fig.add_trace(
            go.Histogram(
                x=np.clip(v, -lim, lim),
                nbinsx=bins,
                name=f"{names[key]} — {100 * est['share_negative'][key]:.0f} % < 0",
                marker_color=colour(k),
                opacity=0.6,
            )
        )
    fig.add_vline(x=0, line={"color": "#000", "width": 1})
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(
        title_text="per-parameter curvature estimate (clipped at the 99th percentile of |value|)"
    )
    fig.update_yaxes(title_text="parameters", type="log")
    return _layout(fig, height=360)


def figure_fisher_vs_hessian(est: Mapping, max_points: int = 3000) -> go.Figure:
    """Per parameter: the squared-gradient Fisher against the exact Hessian diagonal."""
    f = np.asarray(est["fisher"], dtype=float)
    h = np.asarray(est["exact"], dtype=float)
    if f.size > max_points:
        idx = np.random.default_rng(0).choice(f.size, max_points, replace=False)
        f, h = f[idx], h[idx]
    neg = h < 0
    fig = go.Figure(
        [
            go.Scatter(
                x=h[~neg],
                y=f[~neg],
                mode="markers",
                name="Hessian diagonal ≥ 0",
                marker={"size": 4, "color": colour(0), "opacity": 0.5},
            ),
            go.Scatter(
                x=h[neg],
                y=f[neg],
                mode="markers",
                name="Hessian diagonal < 0",
                marker={"size": 5, "color": colour(5), "opacity": 0.8},
            ),
        ]
    )
    fig.add_vline(x=0, line={"color": "#000", "width": 1})
    fig.update_xaxes(title_text="exact Hessian diagonal H_ii")
    fig.update_yaxes(title_text="squared-gradient Fisher F_ii (never < 0)")
    return _layout(fig, height=360)


def figure_penalty_runs(runs: Mapping[str, Mapping]) -> go.Figure:
    """Task-1 accuracy while task 2 trains under each penalty (a run that blew up stops early)."""
    fig = go.Figure()
    for k, (name, r) in enumerate(runs.items()):
        label = name if r["diverged_at"] is None else f"{name} — blew up at step {r['diverged_at']}"
        fig.add_trace(
            go.Scatter(
                x=r["step"],
                y=r["acc_task1"],
                mode="lines+markers",
                name=label,
                line={"color": colour(k)},
            )
        )
    fig.update_xaxes(title_text="gradient step on task 2")
    fig.update_yaxes(title_text="task-1 test accuracy (0–1)", range=[0, 1.05])
    return _layout(fig, height=340)


# -- lesson 5: temperature --------------------------------------------------------------------


def figure_softened(logits: Sequence[float], temperatures: Sequence[float]) -> go.Figure:
    """softmax(z/T) for several T, one group of bars per class."""
    classes = [f"class {i + 1}" for i in range(len(logits))]
    fig = go.Figure(
        [
            go.Bar(
                x=classes, y=teaching.softened(logits, T), name=f"T = {T:g}", marker_color=colour(k)
            )
            for k, T in enumerate(temperatures)
        ]
    )
    fig.update_yaxes(title_text="probability", range=[0, 1])
    return _layout(fig, height=320)


def figure_temperature_scaling(
    teacher: Sequence[float], student: Sequence[float], T_now: float
) -> go.Figure:
    """KL and its gradient against T, raw and multiplied by T² (log–log)."""
    Ts = np.geomspace(0.5, 100, 60)
    terms = [teaching.distillation_terms(teacher, student, T) for T in Ts]
    fig = go.Figure()
    for k, (key, name, dash) in enumerate(
        [
            ("kl", "KL of the softened outputs", "dot"),
            ("kl_T2", "T² · KL", "solid"),
            ("grad_norm", "‖∂KL/∂z_student‖", "dot"),
            ("grad_norm_T2", "T² · ‖∂KL/∂z_student‖", "solid"),
        ]
    ):
        fig.add_trace(
            go.Scatter(
                x=Ts,
                y=[t[key] for t in terms],
                name=name,
                line={"color": colour(k // 2), "dash": dash},
            )
        )
    fig.add_vline(x=T_now, line={"dash": "dash", "color": "#888"})
    fig.update_xaxes(title_text="temperature T (log scale)", type="log")
    fig.update_yaxes(title_text="value (log scale)", type="log", exponentformat="power")
    return _layout(fig, height=360)


# -- lesson 7, 8 --------------------------------------------------------------------------------


def figure_probe_rank(demo: Mapping) -> go.Figure:
    """Probe accuracy (left axis) and numerical rank (right axis) layer by layer."""
    layers = demo["layers"]
    fig = go.Figure(
        [
            go.Scatter(
                x=layers,
                y=demo["probe_acc"],
                mode="lines+markers",
                name="linear-probe test accuracy",
                line={"color": colour(0)},
            ),
            go.Scatter(
                x=layers,
                y=demo["rank"],
                mode="lines+markers",
                name="numerical rank",
                yaxis="y2",
                line={"color": colour(1)},
            ),
        ]
    )
    start = demo["tunnel_start"]
    fig.add_vrect(
        x0=start - 0.5,
        x1=len(layers) - 0.5,
        fillcolor="#999",
        opacity=0.12,
        line_width=0,
        annotation_text="tunnel",
        annotation_position="top left",
    )
    # update_yaxes would reach the rank axis too, so each axis is set on its own
    fig.update_layout(
        yaxis={"title": {"text": "probe accuracy (0–1)"}, "range": [0, 1.05]},
        yaxis2={
            "title": {"text": "numerical rank (σ > 10⁻³·σ₁)"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
    )
    fig.update_xaxes(title_text="layer (probe point)", type="category")
    return _layout(fig, height=360)


def figure_softmax_matrix(M: np.ndarray, title: str = "") -> go.Figure:
    """A column-stochastic matrix as a heatmap (each column sums to 1)."""
    fig = go.Figure(
        go.Heatmap(
            z=np.asarray(M),
            colorscale="Cividis",
            zmin=0,
            zmax=1,
            colorbar={"title": {"text": "value"}},
        )
    )
    fig.update_xaxes(title_text="column j")
    fig.update_yaxes(title_text="row i", autorange="reversed")
    return _layout(fig, title, height=320)
