"""Lesson 8 — softmax and rank: a guided tour of the Softmax page, computed live."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app import figures
from app.lessons import configs
from app.lessons import figures as lf
from app.lessons.base import Step, TryIt, chart, kept, render_step
from app.lessons.runs import lesson_result
from engine.analysis.softmax import column_softmax, random_rank_one, rank_of
from engine.analysis.toy import LOSSES

SLUG = "softmax-rank"
TITLE = "Softmax and rank"
SUMMARY = "A softmax can raise or lower the rank of what it is applied to — and cross-entropy leans on that."

SMALL_N = 8
LOG_C = [-3, -2, -1, 0, 1, 2, 3, 4, 6, 9]
TOY_ITERS = 10_000


def _curve(n: int, seed: int) -> dict | None:
    """softmax(c·B)'s rank curve (a job of kind softmax; None while computing)."""
    r = lesson_result("softmax", {"n": n, "seed": seed}, prefix=f"sr:curve:{n}:{seed}")
    return None if r is None else r["curve"]


def _toy(iters: int) -> dict | None:
    """The deep-linear toy with every loss (a job of kind toy; None while computing)."""
    r = lesson_result("toy", {"iters": iters}, prefix=f"sr:toy:{iters}")
    return None if r is None else r["runs"]


def _log_c() -> int:
    return kept(st.select_slider, "log₁₀ c (c = inverse temperature)", "sr:logc", 1, options=LOG_C)


def _one_matrix() -> None:
    st.markdown(
        "Take a rank-1 matrix B = x yᵀ with random entries in (−1, 1) and apply a softmax to "
        "each column of c·B. The result is a different matrix, and its **rank** depends on c. "
        "With c tiny every column is almost uniform (rank 1); with c huge every column becomes "
        "a one-hot vector at its largest entry (here: only two distinct patterns, rank 2). In "
        "between, the exponential bends each column differently and the rank shoots up."
    )
    log_c = _log_c()
    B = random_rank_one(SMALL_N, seed=0)
    M = column_softmax(10.0**log_c * B)
    s = np.linalg.svd(M, compute_uv=False)
    c1, c2 = st.columns(2)
    c1.metric(f"rank of softmax(c·B), n = {SMALL_N}", rank_of(s, 1e-3))
    c2.metric("rank of B", rank_of(np.linalg.svd(B, compute_uv=False), 1e-3))
    chart(
        lf.figure_softmax_matrix(M, f"softmax(10^{log_c} · B), column by column"),
        "sr:matrix",
    )


def _curve_step() -> None:
    st.markdown(
        "Sweeping c over fourteen decades for a 32×32 matrix gives the full picture (thesis "
        "Fig. 6.2.5): rank 1 at the left, a peak far above the rank of B in the middle, and the "
        "rank of the one-hot argmax pattern at the right. The temperature of a softmax is a "
        "rank knob."
    )
    curve = _curve(32, 0)
    if curve is None:
        return
    log_c = _log_c()
    fig = figures.figure_softmax_rank(curve)
    fig.add_vline(x=10.0**log_c, line={"dash": "dash", "color": "#888"})
    chart(fig, "sr:curve")
    c1, c2 = st.columns(2)
    c1.metric("peak rank", curve["peak_rank"])
    c2.metric("at c ≈", f"{curve['c_at_peak']:.3g}")


def toy_table(results: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "loss": loss,
                "final rank of the logits": r["final"]["rank"],
                "final training accuracy": r["final"]["accuracy"],
                "final loss": f"{r['final']['loss_value']:.3g}",
            }
            for loss, r in results.items()
        ]
    )


def _toy_step() -> None:
    st.markdown(
        "Does training use that knob? A three-layer linear network learns the identity on five "
        "classes (each input is one basis vector). With a squared error it learns every "
        "direction and ends at full rank. With cross-entropy it reaches 100 % accuracy with "
        "only two or three directions and then just grows them — the loss keeps falling by "
        "making the logits larger, not richer. Normalising the logits by their own norm "
        "(a **dynamic temperature**) removes that shortcut and the rank comes back."
    )
    results = _toy(TOY_ITERS)
    if results is None:
        return
    chart(figures.figure_toy_rank(results), "sr:toy")
    st.dataframe(toy_table(results), hide_index=True, key="learn:sr:toy-table")


def _why() -> None:
    st.markdown(
        "Why this matters for the rest of the explorer: a low-rank solution is fragile — the "
        "toy's cross-entropy network loses accuracy fastest when its inputs are perturbed — and "
        "the same pull toward low rank appears in the deep layers of real networks (the tunnel, "
        "lesson 7). Training at a higher temperature strengthens it. The Softmax page has the "
        "whole lab: the bound on the singular-value gap, the inner products of the columns, "
        "the toy's spectra and robustness, and networks trained at T = 1 … 1000."
    )
    results = _toy(TOY_ITERS)
    if results is None:
        return
    which = kept(st.select_slider, "loss", "sr:loss", "ce", options=list(LOSSES))
    chart(figures.figure_toy_singular_values(results[which]), "sr:sv")


STEPS = [
    Step("Softmax changes the rank of a matrix", _one_matrix),
    Step("Rank against temperature", _curve_step),
    Step("A network that learns the identity", _toy_step),
    Step("Why it matters", _why),
]


def try_it() -> list[TryIt]:
    return [
        TryIt(
            "The full softmax lab (Softmax page)",
            "softmax",
            {},
            {"n": 32, "seed": 0, "clo": -5, "chi": 9},
        ),
        TryIt(
            "Train at temperatures 1, 10, 100, 1000 (Compare page)",
            "compare",
            configs.TWO_TASKS,
            {"mode": "sweep", "field": "train.temperature", "values": "1,10,100,1000"},
        ),
    ]


def render(step: int = 0) -> None:
    render_step(STEPS, step)
