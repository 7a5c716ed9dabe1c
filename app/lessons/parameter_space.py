"""Lesson 2 — stability versus plasticity, drawn in a two-weight parameter space.

Everything on screen is computed (engine.teaching): two quadratic task losses, gradient descent
from task 1's minimum on each method's objective, and the closed-form end points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app.lessons import configs
from app.lessons import figures as lf
from app.lessons.base import Step, TryIt, chart, kept, kept_choice, render_step
from engine import teaching

SLUG = "parameter-space"
TITLE = "Stability versus plasticity in parameter space"
SUMMARY = "Two tasks' low-loss regions in a 2-D weight space, and where each learner ends up."

LAMBDAS = [0.0, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]


@st.cache_data(show_spinner=False, max_entries=256)
def _solve(lam: float, fisher_kind: str, n_samples: int) -> dict:
    return teaching.stability_plasticity(lam, fisher_kind, n_samples)


def _low_loss() -> float:
    return kept(
        st.slider,
        "what counts as 'low loss' (contour level)",
        "ps:eps",
        0.6,
        min_value=0.1,
        max_value=2.0,
        step=0.1,
    )


def _lam(label: str = "λ (penalty strength)") -> float:
    return kept(st.select_slider, label, "ps:lam", 1.0, options=LAMBDAS)


def _fisher() -> tuple[str, int]:
    kinds = {
        "diagonal": "diagonal of task 1's curvature (EWC)",
        "empirical": "diagonal from sampled squared gradients",
        "full": "full matrix (not diagonal)",
    }
    kind = kept_choice(
        st.radio,
        "EWC's weights F",
        list(kinds),
        "ps:fisher",
        "diagonal",
        format_func=kinds.get,
        horizontal=True,
    )
    n = 200
    if kind == "empirical":
        n = kept(
            st.slider, "samples for the estimate", "ps:n", 200, min_value=5, max_value=2000, step=5
        )
    return kind, n


def end_table(sp: dict, methods=teaching.METHODS) -> pd.DataFrame:
    """Each method's end point by gradient descent and in closed form, with both losses."""
    rows = []
    for m in methods:
        r = sp["methods"][m]
        rows.append(
            {
                "learner": lf.METHOD_LABELS[m],
                "θ₁ (GD)": round(float(r["end"][0]), 4),
                "θ₂ (GD)": round(float(r["end"][1]), 4),
                "θ₁ (closed form)": round(float(r["closed_form"][0]), 4),
                "θ₂ (closed form)": round(float(r["closed_form"][1]), 4),
                "task-1 loss": round(r["loss1"], 4),
                "task-2 loss": round(r["loss2"], 4),
                "GD steps": r["steps"],
            }
        )
    return pd.DataFrame(rows)


def _losses(sp: dict, method: str) -> None:
    r = sp["methods"][method]
    c1, c2 = st.columns(2)
    c1.metric(
        "task-1 loss at the end", f"{r['loss1']:.3f}", help="0 at θ*₁; lower = remembers task 1"
    )
    c2.metric(
        "task-2 loss at the end", f"{r['loss2']:.3f}", help="0 at θ*₂; lower = learned task 2"
    )


def _two_valleys() -> None:
    st.markdown(
        "Picture a network with only two weights. Each task has a loss surface over them; its "
        "**low-loss region** is where the network does that task well. Here task 1 (orange) "
        "is a long thin valley: it barely cares about θ₁ but is strict about θ₂. Task 2 (blue) "
        "sits elsewhere. Training on task 1 leaves us at its minimum θ*₁; the question of this "
        "lesson is where training on task 2 takes us from there."
    )
    eps = _low_loss()
    sp = _solve(1.0, "diagonal", 200)
    chart(lf.figure_parameter_space(sp, methods=(), low_loss=eps), "ps:valleys")
    st.caption(
        "Both losses are quadratics ½(θ − θ*)ᵀA(θ − θ*); the shaded areas are where each is below the level you pick."
    )


def _plastic() -> None:
    st.markdown(
        "Plain fine-tuning follows task 2's gradient and nothing else, so it slides all the way "
        "down to θ*₂. Task 2 is learned perfectly — and we leave task 1's valley: **catastrophic "
        "forgetting**, the price of a learner that is too plastic."
    )
    eps = _low_loss()
    sp = _solve(1.0, "diagonal", 200)
    chart(lf.figure_parameter_space(sp, methods=("fine-tune",), low_loss=eps), "ps:plastic")
    _losses(sp, "fine-tune")


def _stable() -> None:
    st.markdown(
        "The opposite failure: a learner that cannot move (frozen weights, or a learning rate "
        "so small nothing happens) stays at θ*₁. It never forgets task 1 because it never "
        "learns task 2 — too stable. Neither extreme is what we want: we want a point inside "
        "**both** low-loss regions."
    )
    eps = _low_loss()
    sp = _solve(1.0, "diagonal", 200)
    chart(
        lf.figure_parameter_space(sp, methods=("fine-tune", "frozen"), low_loss=eps),
        "ps:stable",
    )
    _losses(sp, "frozen")


def _l2() -> None:
    st.markdown(
        "A first fix: add a spring that pulls every weight back to where task 1 left it, "
        "λ/2 ‖θ − θ*₁‖². Small λ behaves like fine-tuning, large λ like the frozen learner; in "
        "between it compromises — but it pulls just as hard along θ₁, where task 1 does not "
        "care, as along θ₂, where it does."
    )
    st.latex(r"\min_\theta\; L_2(\theta) + \frac{\lambda}{2}\,\|\theta-\theta^*_1\|^2")
    c1, c2 = st.columns(2)
    with c1:
        lam = _lam()
    with c2:
        eps = _low_loss()
    sp = _solve(lam, "diagonal", 200)
    chart(lf.figure_parameter_space(sp, methods=("fine-tune", "l2"), low_loss=eps), "ps:l2")
    _losses(sp, "l2")


def _ewc() -> None:
    st.markdown(
        "**EWC** gives each weight its own spring, as stiff as task 1's curvature in that "
        "direction: F is large for θ₂ and small for θ₁. Now the learner can slide along task "
        "1's valley almost for free and only resists moving across it — at the same λ it ends "
        "much closer to both regions than L2."
    )
    st.latex(
        r"\min_\theta\; L_2(\theta) + \frac{\lambda}{2}\,(\theta-\theta^*_1)^\top F\,(\theta-\theta^*_1)"
    )
    c1, c2 = st.columns(2)
    with c1:
        lam = _lam()
    with c2:
        eps = _low_loss()
    kind, n = _fisher()
    sp = _solve(lam, kind, n)
    chart(lf.figure_parameter_space(sp, methods=("l2", "ewc"), low_loss=eps), "ps:ewc")
    F = np.diag(sp["fisher"]) if kind != "full" else sp["fisher"]
    st.caption(f"F used: {np.round(F, 3).tolist()}")
    st.dataframe(end_table(sp, ("l2", "ewc")), hide_index=True, key="learn:ps:ewc-table")


def _all() -> None:
    st.markdown(
        "If we still had task 1's data we would minimise L₁ + L₂ — the **joint optimum**, the "
        "best compromise. For quadratics every learner here has a closed-form end point, "
        "(A₂ + λF)⁻¹(A₂θ*₂ + λFθ*₁), and gradient descent (the lines) converges to it (the "
        "rings). Choose the full matrix for F with λ = 1 and EWC lands exactly on the joint "
        "optimum: for a quadratic, the penalty *is* task 1's loss. The diagonal keeps most of "
        "that benefit at a fraction of the memory, which is why EWC stores only the diagonal."
    )
    c1, c2 = st.columns(2)
    with c1:
        lam = _lam()
    with c2:
        eps = _low_loss()
    kind, n = _fisher()
    sp = _solve(lam, kind, n)
    chart(lf.figure_parameter_space(sp, low_loss=eps), "ps:all")
    st.dataframe(end_table(sp), hide_index=True, key="learn:ps:all-table")


STEPS = [
    Step("Two tasks, two valleys", _two_valleys),
    Step("Too plastic: plain fine-tuning", _plastic),
    Step("Too stable: a learner that cannot move", _stable),
    Step("L2: one spring for every weight", _l2),
    Step("EWC: stiff where task 1 cares, loose where it does not", _ewc),
    Step("Everyone together, and the joint optimum", _all),
]


def try_it() -> list[TryIt]:
    base = configs.with_strategy(configs.TWO_TASKS, "ewc")
    return [
        TryIt(
            "Fine-tuning, L2 and EWC side by side on real data (Compare page)",
            "compare",
            base,
            {"mode": "strategies", "strategies": ["naive", "l2", "ewc", "joint"]},
        )
    ]


def render(step: int = 0) -> None:
    render_step(STEPS, step)
