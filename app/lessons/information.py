"""Lesson 1 — entropy, cross-entropy and KL divergence, with the course's worked example."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.lessons import configs
from app.lessons import figures as lf
from app.lessons.base import Step, TryIt, chart, kept, kept_choice, render_step
from engine import teaching

SLUG = "information"
TITLE = "Entropy, cross-entropy and KL"
SUMMARY = "How surprised a model is, on average, and how to measure the gap between two beliefs."


def _unit() -> str:
    return kept_choice(
        st.radio,
        "unit",
        ["bits", "nats"],
        "kl:unit",
        "bits",
        horizontal=True,
        help="bits: logarithms base 2; nats: natural logarithms (1 nat ≈ 1.443 bits)",
    )


def _distribution(name: str, default_first: float, outcomes: int) -> tuple[float, ...]:
    """Sliders for a distribution over 2 or 3 outcomes (the last outcome takes the rest)."""
    first = kept(
        st.slider, f"{name}₁", f"kl:{name}1", default_first, min_value=0.0, max_value=1.0, step=0.01
    )
    if outcomes == 2:
        return (first, round(1.0 - first, 10))
    rest = round(1.0 - first, 10)
    key = f"kl:{name}2"
    if st.session_state.get(f"_kept:{key}", 0.0) > rest:  # keep the slider inside its new range
        st.session_state[f"_kept:{key}"] = rest
        st.session_state.pop(key, None)
    if rest <= 0:
        return (first, 0.0, 0.0)
    second = kept(
        st.slider, f"{name}₂", key, min(rest / 2, 0.3), min_value=0.0, max_value=rest, step=0.01
    )
    return (first, second, round(rest - second, 10))


def _pq() -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """p, q and the unit, from widgets shared by every step (starting at the course's example)."""
    c1, c2, c3 = st.columns([1, 1, 1])
    with c3:
        unit = _unit()
        outcomes = kept_choice(st.radio, "outcomes", [2, 3], "kl:outcomes", 2, horizontal=True)
    with c1:
        p = _distribution("p", teaching.COURSE_P[0], outcomes)
    with c2:
        q = _distribution("q", teaching.COURSE_Q[0], outcomes)
    return p, q, unit


def _fmt(x: float) -> str:
    return "∞" if x == float("inf") else f"{x:.3f}"


def terms_table(terms: dict) -> pd.DataFrame:
    """One row per outcome with every term, and a total row (what step 4 shows)."""
    rows = [
        {
            "outcome": r["outcome"] + 1,
            "p": r["p"],
            "q": r["q"],
            "−p log p": r["h_p"],
            "−p log q": r["h_pq"],
            "p log(p/q)": r["kl_pq"],
        }
        for r in terms["rows"]
    ]
    rows.append(
        {
            "outcome": "sum",
            "p": sum(r["p"] for r in terms["rows"]),
            "q": sum(r["q"] for r in terms["rows"]),
            "−p log p": terms["H_p"],
            "−p log q": terms["H_pq"],
            "p log(p/q)": terms["KL_pq"],
        }
    )
    return pd.DataFrame(rows)


def _surprise() -> None:
    st.markdown(
        "Before you see an outcome you had some belief about it. Seeing something you gave "
        "probability *p* carries −log *p* of information: a sure thing (p = 1) tells you "
        "nothing, a long shot tells you a lot, and an outcome you ruled out (p → 0) would be "
        "infinitely surprising. Logarithms in base 2 count **bits**, natural ones **nats**."
    )
    unit = _unit()
    prob = kept(
        st.slider,
        "probability you gave the outcome",
        "kl:prob",
        0.1,
        min_value=0.01,
        max_value=1.0,
        step=0.01,
    )
    chart(lf.figure_surprise(prob, unit), "kl:surprise")


def _entropy() -> None:
    st.markdown(
        "**Entropy** H(p) is the surprise you should *expect* when outcomes really come from p: "
        "each outcome's surprise weighted by how often it happens. A fair coin is the most "
        "unpredictable two-outcome source (1 bit); a coin that almost always lands heads is "
        "nearly boring."
    )
    st.latex(r"H(p) = \sum_x p(x)\,\log\frac{1}{p(x)}")
    p, q, unit = _pq()
    c1, c2 = st.columns(2)
    c1.metric(f"H(p) ({unit})", _fmt(teaching.entropy(p, unit)))
    c2.metric(f"H(q) ({unit})", _fmt(teaching.entropy(q, unit)))
    chart(lf.figure_distributions(p, q), "kl:entropy")
    st.caption(
        "The course's example starts here: p = (0.5, 0.5) has 1 bit, q = (0.1, 0.9) about 0.47 bits."
    )


def _cross_entropy() -> None:
    st.markdown(
        "Now the outcomes come from p but you *believe* q. Your average surprise is the "
        "**cross-entropy** H(p, q): the outcomes are weighted by p, the surprise is measured "
        "with q. It is never below H(p) — a wrong belief can only cost you. This is the loss a "
        "classifier is trained with: p is the one-hot label, q the softmax output."
    )
    st.latex(r"H(p, q) = \sum_x p(x)\,\log\frac{1}{q(x)}")
    p, q, unit = _pq()
    c1, c2, c3 = st.columns(3)
    c1.metric(f"H(p) ({unit})", _fmt(teaching.entropy(p, unit)))
    c2.metric(f"H(p, q) ({unit})", _fmt(teaching.cross_entropy(p, q, unit)))
    c3.metric(f"extra cost ({unit})", _fmt(teaching.kl_divergence(p, q, unit)))
    chart(lf.figure_distributions(p, q), "kl:cross")


def _kl() -> None:
    st.markdown(
        "The extra cost of believing q when the truth is p is the **KL divergence**. Split the "
        "logarithm of a ratio into a difference and it falls apart into the two quantities you "
        "have already met, outcome by outcome:"
    )
    st.latex(
        r"D_{KL}(p\|q) = \sum_x p(x)\log\frac{p(x)}{q(x)}"
        r"= \sum_x p(x)\log\frac{1}{q(x)} - \sum_x p(x)\log\frac{1}{p(x)} = H(p,q) - H(p)"
    )
    p, q, unit = _pq()
    terms = teaching.information_terms(p, q, unit)
    st.dataframe(terms_table(terms), hide_index=True, key="learn:kl:table")
    st.markdown(
        f"Column by column: H(p, q) = **{_fmt(terms['H_pq'])}**, H(p) = **{_fmt(terms['H_p'])}**, "
        f"and their difference D_KL(p‖q) = **{_fmt(terms['KL_pq'])}** {unit}."
    )
    chart(lf.figure_kl_terms(terms), "kl:terms")


def _asymmetry() -> None:
    st.markdown(
        "KL is zero only when the two distributions agree, but it is **not a distance**: swap "
        "the roles and the number changes. With the course's p = (0.5, 0.5) and q = (0.1, 0.9), "
        "D_KL(p‖q) ≈ 0.74 bits but D_KL(q‖p) ≈ 0.53 bits. D_KL(p‖q) is driven by outcomes "
        "that p makes common and q makes rare: calling a frequent outcome unlikely costs a lot, "
        "calling a rare one likely costs little. Which side is the 'truth' matters in practice: "
        "distillation (lesson 5) measures KL(teacher ‖ student)."
    )
    p, q, unit = _pq()
    c1, c2 = st.columns(2)
    c1.metric(f"D_KL(p‖q) ({unit})", _fmt(teaching.kl_divergence(p, q, unit)))
    c2.metric(f"D_KL(q‖p) ({unit})", _fmt(teaching.kl_divergence(q, p, unit)))
    if len(p) == 2 and 0 < p[0] < 1:
        chart(lf.figure_binary_curves(p[0], q[0], unit), "kl:asym")
    else:
        chart(lf.figure_distributions(p, q), "kl:asym-bars")


STEPS = [
    Step("Surprise", _surprise),
    Step("Entropy: the surprise you expect", _entropy),
    Step("Cross-entropy: surprise under a wrong belief", _cross_entropy),
    Step("KL divergence = H(p, q) − H(p), term by term", _kl),
    Step("KL is not symmetric", _asymmetry),
]


def try_it() -> list[TryIt]:
    return [
        TryIt(
            "LwF's penalty is a KL divergence between softened outputs — run it",
            "forgetting",
            configs.with_strategy(configs.TWO_TASKS, "lwf", T=2.0),
        )
    ]


def render(step: int = 0) -> None:
    render_step(STEPS, step)
