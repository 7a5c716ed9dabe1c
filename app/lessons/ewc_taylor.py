"""Lesson 4 — EWC from a Taylor expansion, and why its weights must be squared gradients.

The live parts run on a real small network: the engine's MLP trained on the first split-digits
task, its task-1 loss along a direction, three curvature estimates per parameter, and task 2
trained under EWC penalties built from each.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app.lessons import configs
from app.lessons import figures as lf
from app.lessons.base import Step, TryIt, chart, kept, kept_choice, render_step
from app.lessons.runs import lesson_result
from engine import teaching

SLUG = "ewc-taylor"
TITLE = "EWC from a Taylor expansion"
SUMMARY = "Where EWC's penalty comes from, and why a Hessian estimate in its place wrecks training."

# The network the live parts use: small enough for an exact Hessian diagonal in a second or two.
NET = {"width": 16, "depth": 2}
EPOCHS = [1, 3, 10, 30]
PROBES = 10
PENALTY_STEPS = 200
PENALTY_LR = 0.05


def _lesson(activation: str, epochs: int, direction: int = 0) -> dict | None:
    """Everything the live steps draw for one network (a job of kind lesson-curvature: trained
    once, stored, shared by every visitor); None while it is being computed."""
    raw = {
        "activation": activation,
        "epochs": epochs,
        **NET,
        "probes": PROBES,
        "direction": direction,
        "penalty_steps": PENALTY_STEPS,
        "penalty_lr": PENALTY_LR,
    }
    return lesson_result(
        "lesson-curvature",
        raw,
        prefix=f"ewc:{activation}:{epochs}:{direction}",
        hint="Training the small network and measuring its curvature (first time only)…",
    )


def _network_controls(epochs_default: int = 10) -> tuple[str, int]:
    c1, c2 = st.columns(2)
    with c1:
        activation = kept_choice(
            st.radio,
            "activation",
            ["relu", "tanh"],
            "ewc:act",
            "relu",
            horizontal=True,
            help="relu is the engine's MLP; tanh makes the network smooth",
        )
    with c2:
        epochs = kept(
            st.select_slider, "epochs on task 1", "ewc:epochs", epochs_default, options=EPOCHS
        )
    return activation, epochs


def _what_we_want() -> None:
    st.markdown(
        "After task 1 we would like to train on L₁ + L₂, but task 1's data is gone. What we "
        "can keep is task 1's minimum θ* and a little information about the shape of L₁ "
        "around it. Close to θ*, any smooth loss looks like a bowl: a quadratic. The plot "
        "cuts through the loss of a real network (the engine's MLP, trained on the first "
        "split-digits task) along a random direction and lays the quadratics over it."
    )
    st.latex(
        r"\min_\theta\; L_2(\theta) + L_1(\theta)\qquad\text{but } L_1 \text{ needs data we no longer have}"
    )
    c1, c2 = st.columns(2)
    radius = c1.select_slider(
        "how far from θ* (‖step‖)", [0.5, 1.0, 3.0, 10.0, 30.0], value=3.0, key="ewc:radius"
    )
    seed = c2.number_input("direction (seed)", 0, 1000, 0, key="ewc:dir")
    res = _lesson("relu", 10, int(seed))
    if res is None:
        return
    sl = res["slices"][f"{float(radius):g}"]
    chart(lf.figure_taylor_slice(sl), "ewc:slice")
    st.caption(
        f"Slope along the direction at θ*: {sl['slope']:.2e} (close to zero: a minimum); "
        f"curvature uᵀHu = {sl['curvature']:.3g}. Near θ* the bowl fits; far away it does not — "
        "the penalty is only a local stand-in for the old task."
    )


def _term_by_term() -> None:
    st.markdown("Expand L₁ around θ* to second order and look at each term:")
    st.latex(
        r"L_1(\theta) \approx \underbrace{L_1(\theta^*)}_{\text{constant}}"
        r"+ \underbrace{\nabla L_1(\theta^*)^\top(\theta-\theta^*)}_{\approx 0 \text{ at a minimum}}"
        r"+ \tfrac12(\theta-\theta^*)^\top H\,(\theta-\theta^*)"
    )
    st.markdown(
        "The constant does not change where the minimum is, and the gradient vanishes where "
        "training stopped. What is left is the curvature term. A Hessian has one entry per "
        "*pair* of weights — far too many to store — so keep only its diagonal, one number per "
        "weight, and add a knob λ for how much the old task should count:"
    )
    st.latex(
        r"L_2(\theta) + \frac{\lambda}{2}\sum_i F_i\,(\theta_i-\theta^*_i)^2,\qquad F_i \approx H_{ii}"
    )
    st.markdown(
        "EWC takes F to be the diagonal of the **Fisher information**, the mean of squared "
        "per-sample gradients. For a log-likelihood loss at its optimum (and a model that "
        "matches the data), Fisher and Hessian agree in expectation — the scatter shows how "
        "well they track each other on the real network."
    )
    activation, epochs = _network_controls()
    res = _lesson(activation, epochs)
    if res is None:
        return
    est = res["curvature"]
    c1, c2, c3 = st.columns(3)
    c1.metric("task-1 loss L₁(θ*)", f"{est['loss']:.4f}")
    c2.metric("‖∇L₁(θ*)‖", f"{est['grad_norm']:.2e}")
    c3.metric("parameters", f"{est['n_params']:,}")
    chart(lf.figure_fisher_vs_hessian(est), "ewc:scatter")


def curvature_table(est: dict) -> pd.DataFrame:
    names = {
        "fisher": "squared gradients (empirical Fisher)",
        "hutchinson": f"Hutchinson estimate of H_ii ({PROBES} probes)",
        "exact": "exact H_ii (one Hessian-vector product per weight)",
    }
    return pd.DataFrame(
        [
            {
                "estimate": names[k],
                "share < 0": est["share_negative"][k],
                "min": float(np.min(np.asarray(est[k]))),
                "max": float(np.max(np.asarray(est[k]))),
            }
            for k in ("fisher", "hutchinson", "exact")
            if est.get(k) is not None
        ]
    )


def _negative() -> None:
    st.markdown(
        "The derivation says 'Hessian'; practice says 'squared gradients'. Why? A mean of "
        "squares can never be negative. A second derivative can — and estimates of one often "
        "are. Computing the exact diagonal costs one Hessian-vector product per weight (fine "
        "for this network, hopeless for millions of weights), so at scale one estimates it, "
        "e.g. with Hutchinson's trick zᵀ(Hz) for random ±1 vectors z, whose entries also pick "
        "up off-diagonal terms of either sign. On this network about 40 % of those estimates "
        "come out negative (a practitioner's blog reports about a third on a large model)."
    )
    st.markdown(
        "Two further facts you can check with the controls: in a **ReLU** network the exact "
        "diagonal is never negative (the output is piecewise linear in every single weight, so "
        "only the positive Gauss–Newton part remains); in a **smooth** (tanh) network trained "
        "for only a few epochs — not yet at a minimum — even the exact diagonal has negative "
        "entries."
    )
    activation, epochs = _network_controls()
    res = _lesson(activation, epochs)
    if res is None:
        return
    est = res["curvature"]
    cols = st.columns(3)
    for col, k, name in zip(
        cols,
        ("fisher", "hutchinson", "exact"),
        ("squared gradients", "Hutchinson H_ii", "exact H_ii"),
        strict=True,
    ):
        col.metric(f"{name}: share < 0", f"{100 * est['share_negative'][k]:.1f} %")
    chart(lf.figure_curvature_hist(est), "ewc:hist")
    st.dataframe(curvature_table(est), hide_index=True, key="learn:ewc:curv-table")


def _runaway_2d() -> None:
    st.markdown(
        "What does a negative F_i do? Along that weight the penalty becomes −|F_i|·(θ_i − θ*_i)²: "
        "a hill instead of a bowl, so the further the weight moves, the *lower* the loss. Once "
        "λ|F_i| beats the new task's own curvature the objective has no minimum at all and "
        "gradient descent runs off. Here is lesson 2's problem with F₁₁ replaced by a bad "
        "(negative) estimate."
    )
    task1, task2 = teaching.default_tasks()
    c1, c2 = st.columns(2)
    f11 = c1.slider("F₁₁ (the true value is about 0.1)", -1.0, 0.5, -0.5, 0.05, key="ewc:f11")
    lam = c2.select_slider("λ", [1.0, 3.0, 10.0, 30.0], value=10.0, key="ewc:lam2d")
    F = np.diag(np.diag(task1.A)).copy()
    F[0, 0] = f11
    H = task2.A + lam * F
    low = float(np.linalg.eigvalsh(H).min())
    run = teaching.gd_path("ewc", (task1, task2), lam, F, max_steps=2000)
    c1, c2, c3 = st.columns(3)
    c1.metric(
        "lowest curvature of the objective",
        f"{low:.3g}",
        help="an eigenvalue of A₂ + λF; below 0 = no minimum",
    )
    c2.metric("gradient-descent steps", run["steps"])
    c3.metric("‖θ − θ*₁‖ at the end", f"{np.linalg.norm(run['path'][-1] - task1.center):.3g}")
    try:
        end = teaching.penalised_optimum(task2.A, task2.center, F, task1.center, lam)
        st.success(
            f"A₂ + λF is positive definite: the run settles at ({end[0]:.3f}, {end[1]:.3f})."
        )
    except ValueError as err:
        st.warning(f"No end point: {err}.")
    chart(lf.figure_runaway(run["path"], task1, task2), "ewc:runaway")


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if np.isfinite(v)] or [float("nan")]


def penalty_table(runs: dict) -> pd.DataFrame:
    """Per run: accuracies at the end, the lowest penalty and the farthest distance from θ*
    reached (before the loss stopped being finite), and the step where it did."""
    return pd.DataFrame(
        [
            {
                "penalty built from": name,
                "task-1 accuracy at the end": r["acc_task1"][-1],
                "task-2 accuracy at the end": r["acc_task2"][-1],
                "lowest penalty reached": min(_finite(r["penalty"])),
                "farthest ‖θ − θ*‖": max(_finite(r["distance"])),
                "blew up at step": "–" if r["diverged_at"] is None else str(r["diverged_at"]),
            }
            for name, r in runs.items()
        ]
    )


def _runaway_net() -> None:
    st.markdown(
        f"Now on the network: train task 2 for {PENALTY_STEPS} full-batch gradient steps from "
        "task 1's weights, with no penalty, with EWC's squared-gradient weights, and with the "
        "Hessian-diagonal estimates in their place. The negative entries turn the penalty into "
        "a reward for moving away: it falls without bound, the weights blow up, and the run "
        "ends in overflow."
    )
    c1, c2 = st.columns(2)
    with c1:
        activation, epochs = "relu", 10
        lam = st.select_slider("λ", [10.0, 100.0, 1000.0], value=100.0, key="ewc:lamnet")
    c2.caption(
        f"Network: ReLU MLP {NET['depth']}×{NET['width']}, trained {epochs} epochs on task 1; learning rate {PENALTY_LR}."
    )
    res = _lesson(activation, epochs)
    if res is None:
        return
    runs = res["penalty_runs"][f"{float(lam):g}"]
    chart(lf.figure_penalty_runs(runs), "ewc:runs")
    st.dataframe(
        penalty_table(runs),
        hide_index=True,
        key="learn:ewc:runs-table",
        # huge and tiny values (a penalty of −6e30) in a form a reader can take in
        column_config={
            c: st.column_config.NumberColumn(format="%.3g")
            for c in ("lowest penalty reached", "farthest ‖θ − θ*‖")
        }
        | {
            c: st.column_config.NumberColumn(format="%.3f")
            for c in ("task-1 accuracy at the end", "task-2 accuracy at the end")
        },
    )


STEPS = [
    Step("What we would minimise, if we still had the data", _what_we_want),
    Step("The expansion, term by term", _term_by_term),
    Step("Second derivatives can be negative; squared gradients cannot", _negative),
    Step("What a negative weight does — in 2-D", _runaway_2d),
    Step("… and in a real network", _runaway_net),
]


def try_it() -> list[TryIt]:
    return [
        TryIt(
            "EWC on the two-task digits problem (Forgetting page)",
            "forgetting",
            configs.with_strategy(configs.TWO_TASKS, "ewc"),
        ),
        TryIt(
            "Sweep EWC's λ (Compare page)",
            "compare",
            configs.with_strategy(configs.TWO_TASKS, "ewc"),
            {"mode": "sweep", "field": "strategy.lam", "values": "0,0.1,1,10,1000"},
        ),
    ]


def render(step: int = 0) -> None:
    render_step(STEPS, step)
