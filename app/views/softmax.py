"""Softmax lab (thesis ch. 6): what a softmax does to the rank of a matrix, and a deep-linear
toy where cross-entropy learns a low-rank solution that MSE and a dynamic temperature avoid.
Both are jobs of the engine (kinds ``softmax`` and ``toy``): validated, costed, stored, shared;
the page draws what comes back."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app import figures, share, view_params
from app.headline import headline
from app.job_panel import job_panel
from app.sidebar import current_raw, sync_query
from engine.analysis.toy import LOSSES
from engine.kinds import softmax, toy

SOFTMAX_LINKED = ("n", "seed", "c_lo", "c_hi", "per_decade", "rel_tol", "ip_n")
TOY_LINKED = {
    "d": "d",
    "iters": "iters",
    "lr": "lr",
    "toy_seed": "seed",
    "init_scale": "init_scale",
    "losses": "losses",
}
TOLERANCES = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2]


def chart(fig, name: str) -> None:
    st.plotly_chart(fig, key=f"sm:{name}", config=figures.png_config(name))


def ranged(kind: str, path: str, label: str) -> dict:
    """number_input arguments: the field's bounds, and its range in the label (a typed value
    out of range is refused by the widget, so the label says what is allowed)."""
    b = view_params.bounds(kind, path)
    return {"label": f"{label} ({b['min_value']:g}–{b['max_value']:g})", **b}


def draw_curve(result: dict) -> None:
    curve, ip = result["curve"], result["inner_products"]
    headline(
        [
            ("peak rank", str(curve["peak_rank"]), "Highest numerical rank over the c values"),
            ("at c", f"{curve['c_at_peak']:.3g}"),
            ("c → ∞ limit (argmax rank)", str(curve["argmax_rank"])),
        ]
    )
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
        {k: curve[k] for k in ("c", "rank", "gap", "bound", "r")},
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


def draw_toy(result: dict) -> None:
    runs, perturbed = result["runs"], result["perturbed"]
    diverged = [loss for loss, r in runs.items() if r["diverged"]]
    if diverged:
        st.warning(
            f"Diverged (logits overflowed; curves stop there): {', '.join(diverged)} — lower the "
            "learning rate."
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
            for loss, r in runs.items()
        ]
    )
    st.dataframe(
        final,
        hide_index=True,
        key="toy:table",
        column_config={"final loss": st.column_config.NumberColumn(format="%.3g")},
    )
    centered = st.toggle("rank of the centred logits (what a softmax can see)", key="toy:centred")
    left, right = st.columns(2)
    with left:
        chart(
            figures.figure_toy_rank(runs, centered=centered, title="Rank over training"),
            "toy-rank",
        )
        chart(
            figures.figure_perturbation(perturbed, title="Accuracy on perturbed inputs"),
            "toy-perturbation",
        )
    with right:
        which = st.selectbox("singular values of", list(runs), key="toy:which")
        post = st.toggle("after the softmax", key="toy:post")
        chart(
            figures.figure_toy_singular_values(
                runs[which], post=post, title=f"Singular values ({which})"
            ),
            "toy-singular-values",
        )
    st.download_button(
        "Toy runs as JSON",
        json.dumps(runs),
        "toy.json",
        "application/json",
        key="toy:json",
    )


st.title("Softmax lab")
tab_rank, tab_toy, tab_temp = st.tabs(
    ["Softmax and rank", "Deep-linear toy", "Temperature in training"],
    key="v_tab",
    bind="query-params",
)

sm_defaults = softmax.Spec().model_dump(mode="json")
sm = view_params.from_link("softmax", SOFTMAX_LINKED, sm_defaults)
toy_defaults = toy.Spec().model_dump(mode="json")
ty = view_params.from_link("toy", TOY_LINKED, toy_defaults)

with tab_rank:
    st.markdown(
        "Take a random rank-1 matrix B = x yᵀ (x_i, y_i ~ U(−1, 1)) and apply a softmax to every "
        "column of c·B. As c → 0 every column becomes uniform (rank 1); as c → ∞ every column "
        "becomes the one-hot vector of its largest entry (rank of that argmax pattern, 2 here); "
        "in between the rank rises far above both (thesis Fig. 6.2.5). Proposition 2 bounds the "
        "spread of the singular values by the columns' inner products (thesis 6.2.4)."
    )
    c1, c2, c3, c4, c5 = st.columns(5)
    n = c1.number_input(value=sm["n"], key="sm:n", **ranged("softmax", "n", "n (rows = columns)"))
    seed = c2.number_input(value=sm["seed"], key="sm:seed", **ranged("softmax", "seed", "seed"))
    lo, hi = view_params.bounds("softmax", "c_lo"), view_params.bounds("softmax", "c_hi")
    c_lo, c_hi = c3.slider(
        "log₁₀ c from … to",
        lo["min_value"],
        hi["max_value"],
        (sm["c_lo"], max(sm["c_lo"], sm["c_hi"])),
        key="sm:crange",
    )
    per_decade = c4.number_input(
        value=sm["per_decade"],
        key="sm:pd",
        **ranged("softmax", "per_decade", "points per decade"),
    )
    rel_tol = c5.select_slider(
        "rank threshold (× σ₁)",
        TOLERANCES,
        value=sm["rel_tol"] if sm["rel_tol"] in TOLERANCES else 1e-3,
        key="sm:tol",
        help="Count singular values above this fraction of the largest (thesis Eq. 6.2)",
    )
    ip_n = st.number_input(
        value=sm["ip_n"],
        key="sm:ipn",
        **ranged("softmax", "ip_n", "n for the inner products (thesis Fig. 6.8.1: 5)"),
    )
    sm.update(
        n=int(n),
        seed=int(seed),
        c_lo=int(c_lo),
        c_hi=int(c_hi),
        per_decade=int(per_decade),
        rel_tol=float(rel_tol),
        ip_n=int(ip_n),
    )
    job_panel("softmax", sm, draw_curve, prefix="sm", label="Compute", auto=True)

with tab_toy:
    st.markdown(
        "Learn the identity (X = Y = I_d) with three d×d linear layers and full-batch gradient "
        "descent. MSE learns every direction one after another and ends at full rank; "
        "cross-entropy reaches 100 % training accuracy with two directions and stops there; "
        "a dynamic temperature T = ‖A‖_F keeps every class direction (thesis 6.2.1–6.2.5). The "
        "low-rank solution is the least robust to noise on the inputs (Fig. 6.2.2)."
    )
    c1, c2, c3, c4, c5 = st.columns(5)
    d = c1.number_input(value=ty["d"], key="toy:d", **ranged("toy", "d", "d (classes)"))
    iters = c2.number_input(
        value=ty["iters"], step=1000, key="toy:iters", **ranged("toy", "iters", "iterations")
    )
    lr = c3.number_input(
        value=float(ty["lr"]),
        step=0.05,
        format="%g",
        key="toy:lr",
        **ranged("toy", "lr", "learning rate"),
    )
    toy_seed = c4.number_input(value=ty["seed"], key="toy:seed", **ranged("toy", "seed", "seed"))
    init_scale = c5.number_input(
        value=float(ty["init_scale"]),
        step=0.005,
        format="%g",
        key="toy:init",
        **ranged("toy", "init_scale", "init scale"),
    )
    losses = st.multiselect(
        "losses",
        LOSSES,
        default=[x for x in ty["losses"] if x in LOSSES],
        key="toy:losses",
    )
    ty.update(
        d=int(d),
        iters=int(iters),
        lr=float(lr),
        seed=int(toy_seed),
        init_scale=float(init_scale),
        losses=list(losses),
    )
    if losses:
        job_panel("toy", ty, draw_toy, prefix="toy", label="Train the toy", auto=True)
    else:
        st.info("Choose at least one loss.")

with tab_temp:
    st.markdown(
        "Networks trained at temperature T see logits / T in the loss (train.temperature, or "
        "train.dynamic_temperature for T = ‖logits‖_F). Thesis 6.3 trains at T = 1, 10, 100, 1000 "
        "and compares rank and probe accuracy by layer: see the Tunnel page for one run, and "
        "compare the runs' forgetting here:"
    )
    link = share.link_for(
        "compare",
        current_raw(),
        view={"mode": "sweep", "field": "train.temperature", "values": "1,10,100,1000"},
    )
    st.markdown(f"[Compare T = 1, 10, 100, 1000 on the current experiment]({link})")
    st.caption(
        "With train.compensate_lr the learning rate is multiplied by T, so gradients keep their size."
    )

view = view_params.view_query(sm, SOFTMAX_LINKED, sm_defaults)
view |= view_params.view_query(ty, TOY_LINKED, toy_defaults)
sync_query(current_raw(), view=view)
