"""Representations: CKA views of what a network's layers compute — layer × layer for the
tunnel model, each layer's drift across the tasks of a continual run, and the model after
task 1 against the model after the last task."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import analysis_figures as af
from app import figures, live
from app.sidebar import experiment_sidebar
from engine.analysis.recorded import cka_view, ensure_recorded, rank_view, recordings
from engine.config import ConfigError
from engine.store import Store

LAST_TUNNEL = "tn:last_key"  # written by the Tunnel page
RECORDED = "rep:recorded"  # (run key, n) of the last recorded run


def chart(fig, name: str) -> None:
    st.plotly_chart(fig, key=f"rep:{name}", config=figures.png_config(name))


def csv_button(frame: pd.DataFrame, label: str, name: str, index: bool = True) -> None:
    st.download_button(
        label, frame.to_csv(index=index), f"{name}.csv", "text/csv", key=f"rep:{name}-csv"
    )


@st.cache_data(show_spinner=False, max_entries=16)
def views(key: str, n: int) -> dict:
    """Rank over tasks, CKA drift and task 1 vs last task from a run's recordings."""
    from engine.analysis.cka import cka_matrix

    recs = recordings(Store(), key)
    return {
        "rank": rank_view(recs),
        "cka": cka_view(recs),
        "first_vs_last": cka_matrix(recs[0]["acts"], recs[-1]["acts"]),
    }


m = live.manager()
sel = experiment_sidebar(hosted_caps=m.caps if m.hosted else None)

st.title("Representations")
st.markdown(
    "Centred kernel alignment (CKA, 0–1) compares two sets of representations of the same "
    "images and ignores rotations and scale: 1 means the same up to those. Layer × layer shows "
    "which layers compute alike (the tunnel is a bright block); drift shows how much a layer "
    "changes as the network learns new tasks (thesis 3.3, 5.2)."
)
tab_tunnel, tab_drift, tab_ab = st.tabs(
    ["Layer × layer (tunnel model)", "Drift across tasks", "After task 1 vs after the last task"]
)

with tab_tunnel:
    key = st.session_state.get(LAST_TUNNEL)
    res = Store().get_result(key) if key else None
    if res is None or res.get("status") != "done":
        st.info("Run the tunnel experiment on the Tunnel page; its CKA matrix shows here.")
    else:
        names = [f"{i + 1} {n}" for i, n in enumerate(res["layers"])]
        chart(
            af.figure_cka(res["cka"], names, title="CKA layer × layer (tunnel model)"), "tunnel-cka"
        )
        csv_button(pd.DataFrame(res["cka"], index=names, columns=names), "CKA as CSV", "tunnel-cka")
        st.caption(f"tunnel experiment `{key}`")

with tab_drift:
    st.markdown(
        "Trains the sidebar's experiment (or takes it from the store) with every layer's "
        "activations recorded on a fixed set of test images after each task."
    )
    n = st.number_input(
        "recorded test images",
        min_value=16,
        max_value=4096,
        value=256,
        step=64,
        key="rep:n",
        help="More images: steadier CKA and rank, more memory",
    )
    if sel.error:
        st.error(sel.error)
    elif st.button("Record and analyse", type="primary", key="rep:run"):
        try:
            if m.hosted:
                m.check_caps(sel.cfg)
            with st.spinner("Training with recordings (instant when stored)…"):
                st.session_state[RECORDED] = (ensure_recorded(sel.cfg, int(n), Store()), int(n))
        except ConfigError as err:
            st.error(str(err))

recorded = st.session_state.get(RECORDED)
v = views(*recorded) if recorded else None

with tab_drift:
    if v is not None:
        layers, T = v["cka"]["layers"], v["cka"]["tasks"]
        st.caption(f"run `{recorded[0]}` · {T} tasks · {recorded[1]} recorded images")
        rank = v["rank"]["rank"]
        chart(
            af.figure_rank_lines(
                {f"after task {t + 1}": r for t, r in enumerate(rank)},
                layers,
                title="Rank by layer after each task",
            ),
            "rank-over-tasks",
        )
        rank_table = pd.DataFrame(
            rank, index=[f"after task {t + 1}" for t in range(T)], columns=layers
        )
        csv_button(rank_table, "Rank as CSV", "rank-over-tasks")
        if T < 2:
            st.info("One task: there is nothing to drift from. Choose more tasks in the sidebar.")
        else:
            layer = st.selectbox("layer", layers, key="rep:layer")
            tasks = [f"after task {t + 1}" for t in range(T)]
            drift = v["cka"]["drift"][layers.index(layer)]
            chart(
                af.figure_cka(
                    drift,
                    tasks,
                    title=f"Drift of layer {layer}: CKA between checkpoints",
                    x_title="checkpoint",
                    y_title="checkpoint",
                ),
                "drift",
            )
            csv_button(pd.DataFrame(drift, index=tasks, columns=tasks), "Drift as CSV", "drift")

with tab_ab:
    if v is None:
        st.info("Record a run in the 'Drift across tasks' tab; this compares its checkpoints.")
    else:
        layers, T = v["cka"]["layers"], v["cka"]["tasks"]
        ab = v["first_vs_last"]
        chart(
            af.figure_cka(
                ab,
                layers,
                layers,
                title=f"CKA: after task 1 (rows) vs after task {T} (columns)",
                x_title=f"layer after task {T}",
                y_title="layer after task 1",
            ),
            "first-vs-last",
        )
        st.caption(
            "The diagonal is each layer against itself before and after the later tasks; "
            "off the diagonal, which old layer the new one resembles most."
        )
        csv_button(pd.DataFrame(ab, index=layers, columns=layers), "A vs B as CSV", "first-vs-last")
