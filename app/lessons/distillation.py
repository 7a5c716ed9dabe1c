"""Lesson 5 — distillation and temperature: softened targets, the T² factor, LwF on real runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app.lessons import configs
from app.lessons import figures as lf
from app.lessons.base import Step, TryIt, chart, kept, render_step
from app.lessons.runs import real_runs, summary_frame
from engine import teaching

SLUG = "distillation"
TITLE = "Distillation and temperature"
SUMMARY = (
    "Soft targets from an old model, why the loss is scaled by T², and LwF against fine-tuning."
)

# An old model's logits for one image of a "3": the right class clearly first, but it also
# says a 3 looks more like a 5 or an 8 than like a 1.
TEACHER = [6.0, 3.5, 3.0, 0.5, -1.0]
CLASSES = ["3", "5", "8", "2", "1"]
STUDENT = [3.0, 3.0, 1.0, 1.0, 0.0]
TEMPERATURES = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
LWF_TEMPERATURES = [1.0, 2.0, 4.0]


def _T(default: float = 2.0) -> float:
    return kept(st.select_slider, "temperature T", "ds:T", default, options=TEMPERATURES)


def lesson_configs(T: float) -> dict[str, dict]:
    return {
        "fine-tuning": configs.with_strategy(configs.TWO_TASKS, "naive"),
        f"LwF (T = {T:g})": configs.with_strategy(configs.TWO_TASKS, "lwf", T=T),
    }


def _soft_targets() -> None:
    st.markdown(
        "A trained classifier's outputs say more than its top answer. Shown an image of a 3, "
        "an old model may rank 5 and 8 well above 1 — knowledge about which classes look "
        "alike. Dividing the logits by a **temperature** T > 1 before the softmax flattens the "
        "distribution and brings that ranking into view; T < 1 sharpens it towards the "
        "one-hot answer; T → ∞ makes every class equally likely."
    )
    st.latex(r"p_i(T) = \frac{e^{z_i/T}}{\sum_j e^{z_j/T}}")
    T = _T()
    probs = teaching.softened(TEACHER, T)
    chart(lf.figure_softened(TEACHER, sorted({1.0, T})), "ds:soft")
    st.caption(
        "Classes "
        + ", ".join(CLASSES)
        + f" (logits {TEACHER}). At T = {T:g}: "
        + ", ".join(f"{c}: {p:.3f}" for c, p in zip(CLASSES, probs, strict=True))
        + f"; entropy {teaching.entropy(probs, 'bits'):.2f} bits."
    )


def _lecture_form() -> None:
    st.markdown(
        "The lecture writes the softening with probabilities rather than logits: raise each "
        "output probability to the power 1/T and renormalise. It is the same operation — the "
        "log of a softmax output is the logit minus a constant that cancels on normalising."
    )
    st.latex(
        r"\frac{\hat y_i^{1/T}}{\sum_j \hat y_j^{1/T}} = \mathrm{softmax}(z/T)_i \quad\text{when } \hat y = \mathrm{softmax}(z)"
    )
    T = _T()
    a = teaching.lecture_softening(teaching.softened(TEACHER, 1.0), T)
    b = teaching.softened(TEACHER, T)
    st.dataframe(
        pd.DataFrame({"class": CLASSES, "ŷ^(1/T) / Σ": a, "softmax(z/T)": b}),
        hide_index=True,
        key="learn:ds:lecture",
    )
    st.metric("largest difference", f"{float(np.max(np.abs(a - b))):.1e}")
    chart(lf.figure_softened(TEACHER, [T]), "ds:lecture-bars")


def _t_squared() -> None:
    st.markdown(
        "The distillation loss compares the old model's softened outputs with the new "
        "model's, KL(teacher ‖ student), both at temperature T. Its gradient with respect to "
        "the student's logits is (student − teacher)/T, and at high T both are nearly uniform, "
        "so their difference shrinks like 1/T too: the gradient falls like **1/T²**. "
        "Multiplying the loss by T² keeps its pull on the weights about the same whatever T "
        "you choose, so T can be tuned without re-tuning the weight of the loss."
    )
    T = _T()
    d = teaching.distillation_terms(TEACHER, STUDENT, T)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("KL (nats)", f"{d['kl']:.4f}")
    c2.metric("T²·KL", f"{d['kl_T2']:.4f}")
    c3.metric("‖gradient‖", f"{d['grad_norm']:.4f}")
    c4.metric("T²·‖gradient‖", f"{d['grad_norm_T2']:.4f}")
    chart(lf.figure_temperature_scaling(TEACHER, STUDENT, T), "ds:t2")
    st.caption(f"Teacher logits {TEACHER}, student logits {STUDENT}.")


def _lwf() -> None:
    st.markdown(
        "**Learning without Forgetting** uses this while the new task trains: before task 2, "
        "keep a frozen copy of the network; on every new-task image, ask the copy what its "
        "old head would say and pull the new network's old head towards that, softened at T. "
        "No old data is needed — the new task's inputs serve as probes of the old function. "
        "Below: the same two-task digits problem as lesson 3, fine-tuning against LwF."
    )
    T = kept(st.select_slider, "LwF temperature", "ds:lwfT", 2.0, options=LWF_TEMPERATURES)
    rows = real_runs(lesson_configs(T))
    if rows is None:
        return
    st.dataframe(summary_frame(rows, first="strategy"), hide_index=True, key="learn:ds:table")
    chart(lf.figure_old_new(rows), "ds:bars")
    st.caption(
        "LwF usually keeps much more of the old task at little cost on the new one; how much "
        "depends on how well the new task's images excite what the old task needed."
    )


STEPS = [
    Step("Soft targets: what temperature does", _soft_targets),
    Step("The lecture's formula is the same thing", _lecture_form),
    Step("Why the loss is multiplied by T²", _t_squared),
    Step("LwF against fine-tuning, on real runs", _lwf),
]


def try_it() -> list[TryIt]:
    return [
        TryIt(
            "LwF on the two-task digits problem (Forgetting page)",
            "forgetting",
            configs.with_strategy(configs.TWO_TASKS, "lwf", T=2.0),
        ),
        TryIt(
            "LwF at several temperatures (Compare page)",
            "compare",
            configs.with_strategy(configs.TWO_TASKS, "lwf"),
            {"mode": "sweep", "field": "strategy.T", "values": "1,2,4,8"},
        ),
    ]


def render(step: int = 0) -> None:
    render_step(STEPS, step)
