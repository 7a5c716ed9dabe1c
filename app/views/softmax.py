"""Softmax lab (thesis ch. 6): what a softmax does to the rank of a matrix, and a deep-linear
toy where cross-entropy learns a low-rank solution that MSE and a dynamic temperature avoid."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from app import figures, share
from app.sidebar import current_raw, sync_query, view_default
from engine.analysis.softmax import column_inner_products, softmax_rank_curve
from engine.analysis.toy import DEFAULT_SIGMAS, LOSSES, perturbation_accuracy, run_toy

st.title("Softmax lab")


@st.cache_data(show_spinner=False, max_entries=64)
def rank_curve(n: int, seed: int, c_lo: int, c_hi: int, per_decade: int, rel_tol: float) -> dict:
    c = np.logspace(c_lo, c_hi, (c_hi - c_lo) * per_decade + 1).tolist()
    return softmax_rank_curve(n=n, c_values=c, seed=seed, rel_tol=rel_tol)


@st.cache_data(show_spinner=False, max_entries=64)
def inner_products(n: int, seed: int, c_lo: int, c_hi: int, per_decade: int) -> dict:
    c = np.logspace(c_lo, c_hi, (c_hi - c_lo) * per_decade + 1).tolist()
    return column_inner_products(c_values=c, n=n, seed=seed)


@st.cache_data(show_spinner=False, max_entries=64)
def toy(loss: str, d: int, iters: int, lr: float, seed: int, init_scale: float) -> dict:
    record_every = max(1, iters // 1000)  # about a thousand points per curve
    return run_toy(
        loss, d=d, iters=iters, lr=lr, seed=seed, init_scale=init_scale, record_every=record_every
    )


@st.cache_data(show_spinner=False, max_entries=64)
def perturbed(loss: str, d: int, iters: int, lr: float, seed: int, init_scale: float) -> dict:
    return perturbation_accuracy(
        toy(loss, d, iters, lr, seed, init_scale), sigmas=DEFAULT_SIGMAS, seed=seed
    )


def chart(fig, name: str) -> None:
    st.plotly_chart(fig, key=f"sm:{name}", config=figures.png_config(name))


tab_rank, tab_toy, tab_temp = st.tabs(
    ["Softmax and rank", "Deep-linear toy", "Temperature in training"]
)

with tab_rank:
    st.markdown(
        "Take a random rank-1 matrix B = x yᵀ (x_i, y_i ~ U(−1, 1)) and apply a softmax to every "
        "column of c·B. As c → 0 every column becomes uniform (rank 1); as c → ∞ every column "
        "becomes the one-hot vector of its largest entry (rank of that argmax pattern, 2 here); "
        "in between the rank rises far above both (thesis Fig. 6.2.5). Proposition 2 bounds the "
        "spread of the singular values by the columns' inner products (thesis 6.2.4)."
    )
    c1, c2, c3, c4, c5 = st.columns(5)
    n = c1.number_input(
        "n (rows = columns)", 2, 128, view_default("n", 32), key="sm:n", help="Size of B"
    )
    seed = c2.number_input(
        "seed", 0, 10_000, view_default("seed", 0), key="sm:seed", help="Seed of x and y"
    )
    c_lo, c_hi = c3.slider(
        "log₁₀ c from … to",
        -8,
        12,
        (view_default("clo", -5), view_default("chi", 9)),
        key="sm:crange",
    )
    per_decade = c4.number_input("points per decade", 1, 20, view_default("pd", 4), key="sm:pd")
    rel_tol = c5.select_slider(
        "rank threshold (× σ₁)",
        [1e-6, 1e-5, 1e-4, 1e-3, 1e-2],
        value=1e-3,
        key="sm:tol",
        help="Count singular values above this fraction of the largest (thesis Eq. 6.2; 1e-3 as elsewhere)",
    )
    curve = rank_curve(int(n), int(seed), int(c_lo), int(c_hi), int(per_decade), float(rel_tol))
    m1, m2, m3 = st.columns(3)
    m1.metric("peak rank", curve["peak_rank"], help="Highest numerical rank over the c values")
    m2.metric("at c", f"{curve['c_at_peak']:.3g}")
    m3.metric("c → ∞ limit (argmax rank)", curve["argmax_rank"])
    left, right = st.columns(2)
    with left:
        chart(figures.figure_softmax_rank(curve, title="Rank of softmax(c·B)"), "softmax-rank")
        chart(
            figures.figure_gap_bound(curve, title="Spectral gap and Proposition 2's bound"),
            "softmax-gap-bound",
        )
    with right:
        chart(
            figures.figure_singular_values(
                curve["c"], curve["singular_values"], title="Singular values of softmax(c·B)"
            ),
            "softmax-singular-values",
        )
        ip_n = st.number_input(
            "n for the inner products (thesis Fig. 6.8.1: 5)", 2, 64, 5, key="sm:ipn"
        )
        ip = inner_products(int(ip_n), int(seed), int(c_lo), int(c_hi), int(per_decade))
        chart(
            figures.figure_inner_products(ip, title="Inner products of softmax columns"),
            "softmax-inner-products",
        )
        empty = [g for g in ("same", "different") if all(v is None for v in ip[g]["mean"])]
        if empty:
            st.caption(
                f"With this seed no two columns have {'the same' if empty[0] == 'same' else 'a different'} "
                "argmax, so that group is empty; another seed shows both groups (Fig. 6.8.1)."
            )
    table = pd.DataFrame(
        {
            "c": curve["c"],
            "rank": curve["rank"],
            "gap": curve["gap"],
            "bound": curve["bound"],
            "r": curve["r"],
        }
    )
    d1, d2 = st.columns(2)
    d1.download_button(
        "Curve as CSV", table.to_csv(index=False), "softmax-rank.csv", "text/csv", key="sm:csv"
    )
    d2.download_button(
        "Everything as JSON",
        json.dumps({"curve": curve, "inner_products": ip}),
        "softmax-rank.json",
        "application/json",
        key="sm:json",
    )

with tab_toy:
    st.markdown(
        "Learn the identity (X = Y = I_d) with three d×d linear layers and full-batch gradient "
        "descent. MSE learns every direction one after another and ends at full rank; "
        "cross-entropy reaches 100 % training accuracy with two directions and stops there; "
        "a dynamic temperature T = ‖A‖_F keeps every class direction (thesis 6.2.1–6.2.5). The "
        "low-rank solution is the least robust to noise on the inputs (Fig. 6.2.2)."
    )
    c1, c2, c3, c4, c5 = st.columns(5)
    d = c1.number_input("d (classes)", 2, 12, view_default("d", 5), key="toy:d")
    iters = c2.number_input(
        "iterations", 100, 50_000, view_default("iters", 10_000), step=1000, key="toy:iters"
    )
    lr = c3.number_input(
        "learning rate", 1e-4, 2.0, view_default("lr", 0.5), step=0.05, format="%g", key="toy:lr"
    )
    toy_seed = c4.number_input("seed", 0, 10_000, view_default("tseed", 0), key="toy:seed")
    init_scale = c5.number_input(
        "init scale",
        1e-4,
        1.0,
        0.01,
        step=0.005,
        format="%g",
        key="toy:init",
        help="Weights ~ N(0, scale²); small = saddle-to-saddle phases",
    )
    losses = st.multiselect("losses", LOSSES, default=list(LOSSES), key="toy:losses")
    args = (int(d), int(iters), float(lr), int(toy_seed), float(init_scale))
    results = {loss: toy(loss, *args) for loss in losses}
    if results:
        diverged = [loss for loss, r in results.items() if r["diverged"]]
        if diverged:
            st.warning(
                f"Diverged (logits overflowed; curves stop there): {', '.join(diverged)} — lower the learning rate."
            )
        final = pd.DataFrame(
            [
                {
                    "loss": loss,
                    "rank": r["final"]["rank"],
                    "rank (centred)": r["final"]["rank_centered"],
                    "training accuracy": r["final"]["accuracy"],
                    "final loss": r["final"]["loss_value"],
                    "diverged": r["diverged"],
                }
                for loss, r in results.items()
            ]
        )
        st.dataframe(
            final,
            hide_index=True,
            key="toy:table",
            column_config={"final loss": st.column_config.NumberColumn(format="%.3g")},
        )
        centered = st.toggle(
            "rank of the centred logits (what a softmax can see)", key="toy:centred"
        )
        left, right = st.columns(2)
        with left:
            chart(
                figures.figure_toy_rank(results, centered=centered, title="Rank over training"),
                "toy-rank",
            )
            chart(
                figures.figure_perturbation(
                    {loss: perturbed(loss, *args) for loss in losses},
                    title="Accuracy on perturbed inputs",
                ),
                "toy-perturbation",
            )
        with right:
            which = st.selectbox("singular values of", losses, key="toy:which")
            post = st.toggle("after the softmax", key="toy:post")
            chart(
                figures.figure_toy_singular_values(
                    results[which], post=post, title=f"Singular values ({which})"
                ),
                "toy-singular-values",
            )
        st.download_button(
            "Toy runs as JSON",
            json.dumps(
                {k: {kk: vv for kk, vv in v.items() if kk != "weights"} for k, v in results.items()}
            ),
            "toy.json",
            "application/json",
            key="toy:json",
        )

with tab_temp:
    st.markdown(
        "Networks trained at temperature T see logits / T in the loss (train.temperature, or "
        "train.dynamic_temperature for T = ‖logits‖_F). Thesis 6.3 trains at T = 1, 10, 100, 1000 "
        "and compares rank and probe accuracy by layer: see the Tunnel page for one run, and "
        "compare the runs' forgetting here:"
    )
    raw = current_raw()
    link = share.link_for(
        "compare",
        raw,
        view={"mode": "sweep", "field": "train.temperature", "values": "1,10,100,1000"},
    )
    st.markdown(f"[Compare T = 1, 10, 100, 1000 on the current experiment]({link})")
    st.caption(
        "With train.compensate_lr the learning rate is multiplied by T, so gradients keep their size."
    )

sync_query(
    current_raw(),
    view={
        "n": n,
        "seed": seed,
        "clo": c_lo,
        "chi": c_hi,
        "pd": per_decade,
        "d": d,
        "iters": iters,
        "lr": lr,
        "tseed": toy_seed,
    },
)
