"""Representations: CKA views of what a network's layers compute — layer × layer for the
tunnel model, each layer's drift across the tasks of a continual run, the model after task 1
against the model after the last task — and representation forgetting with frozen per-task
probes (discriminative vs autoencoder vs VAE, thesis 3.3.1). Every view is a job of the engine
(kinds ``record`` and ``repforget``): progress, Cancel, and a link that reopens it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import analysis_figures as af
from app import figures, live, view_params
from app.job_panel import job_panel
from app.sidebar import experiment_sidebar, sync_query
from engine.data.catalog import EMBEDDED
from engine.kinds import record, repforget

LAST_TUNNEL = "tn:last_key"  # written by the Tunnel page
TABS = (
    "Layer × layer (tunnel model)",
    "Drift across tasks",
    "After task 1 vs after the last task",
    "Representation forgetting (3 models)",
)
REC_LINKED = ("n",)
RF_LINKED = ("benchmark", "epochs", "beta")


def chart(fig, name: str) -> None:
    st.plotly_chart(fig, key=f"rep:{name}", config=figures.png_config(name))


def csv_button(frame: pd.DataFrame, label: str, name: str, index: bool = True) -> None:
    st.download_button(
        label, frame.to_csv(index=index), f"{name}.csv", "text/csv", key=f"rep:{name}-csv"
    )


def draw_drift(r: dict) -> None:
    layers, T = r["layers"], len(r["R"])
    st.caption(f"{T} tasks · {r['recorded']} recorded test images")
    rank = r["rank"]
    chart(
        af.figure_rank_lines(
            {f"after task {t + 1}": row for t, row in enumerate(rank)},
            layers,
            title="Rank by layer after each task",
        ),
        "rank-over-tasks",
    )
    rank_table = pd.DataFrame(rank, index=[f"after task {t + 1}" for t in range(T)], columns=layers)
    csv_button(rank_table, "Rank as CSV", "rank-over-tasks")
    if T < 2:
        st.info("One task: there is nothing to drift from. Choose more tasks in the sidebar.")
        return
    layer = st.selectbox("layer", layers, key="rep:layer")
    tasks = [f"after task {t + 1}" for t in range(T)]
    drift = r["cka"]["drift"][layers.index(layer)]
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


def draw_first_vs_last(r: dict) -> None:
    layers, T = r["layers"], len(r["R"])
    ab = r["first_vs_last"]
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
        "The diagonal is each layer against itself before and after the later tasks; off the "
        "diagonal, which old layer the new one resembles most."
    )
    csv_button(pd.DataFrame(ab, index=layers, columns=layers), "A vs B as CSV", "first-vs-last")


def draw_repforget(r: dict) -> None:
    chart(af.figure_repforget(r, title="Frozen per-task probes and CKA drift"), "repforget")
    st.info(r.get("reading", repforget.READING))
    rows = [{"model": m, **r["metrics"][m]} for m in r.get("models", repforget.MODELS)]
    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, key="rep:rf-table")
    csv_button(table, "Summary as CSV", "repforget", index=False)


m = live.manager()
sel = experiment_sidebar(hosted_caps=m.caps if m.hosted else None, sync_url=False)

st.title("Representations")
st.markdown(
    "Centred kernel alignment (CKA, 0–1) compares two sets of representations of the same "
    "images and ignores rotations and scale: 1 means the same up to those. Layer × layer shows "
    "which layers compute alike (the tunnel is a bright block); drift shows how much a layer "
    "changes as the network learns new tasks (thesis 3.3, 5.2)."
)
tab_tunnel, tab_drift, tab_ab, tab_rf = st.tabs(TABS, key="v_tab", bind="query-params")

with tab_tunnel:
    key = st.session_state.get(LAST_TUNNEL)
    res = m.result(key) if key else None
    if res is None or res.get("status") != "done":
        st.info("Run the tunnel experiment on the Tunnel page; its CKA matrix shows here.")
    else:
        names = [f"{i + 1} {n}" for i, n in enumerate(res["layers"])]
        chart(
            af.figure_cka(res["cka"], names, title="CKA layer × layer (tunnel model)"), "tunnel-cka"
        )
        csv_button(pd.DataFrame(res["cka"], index=names, columns=names), "CKA as CSV", "tunnel-cka")
        st.caption(f"tunnel experiment `{key}`")

recorded = None
with tab_drift:
    st.markdown(
        "Trains the sidebar's experiment with every layer's activations recorded on a fixed set "
        "of test images after each task (instant when stored)."
    )
    base = view_params.from_link("record", REC_LINKED, {"n": record.Spec.model_fields["n"].default})
    n = st.number_input(
        "recorded test images",
        value=base["n"],
        step=64,
        key="rep:n",
        **view_params.bounds("record", "n"),
    )
    if sel.error:
        st.error(sel.error)
    else:
        recorded = job_panel(
            "record", {**sel.raw, "n": int(n)}, draw_drift, prefix="rep", label="Record and analyse"
        )

with tab_ab:
    if recorded is None or recorded.get("status") != "done":
        st.info("Record a run in the 'Drift across tasks' tab; this compares its checkpoints.")
    else:
        draw_first_vs_last(recorded)

with tab_rf:
    st.markdown(
        "Three networks with the same hidden layers and initialisation learn the same tasks: a "
        "classifier, an autoencoder and a VAE. After each task a linear probe is fitted on the "
        "task's representation and then **frozen**; its accuracy can only fall because the "
        "representation under it moved (thesis 3.3.1, Figs. 3.3.2–3.3.3)."
    )
    rf_raw = view_params.from_link("repforget", RF_LINKED, repforget.Spec().model_dump(mode="json"))
    c1, c2, c3 = st.columns(3)
    bench_now = view_params.get(rf_raw, "data.benchmark")
    rf_bench = c1.selectbox(
        "benchmark",
        EMBEDDED,
        index=EMBEDDED.index(bench_now) if bench_now in EMBEDDED else 0,
        key="rep:rf-benchmark",
    )
    rf_epochs = c2.number_input(
        "epochs per task",
        value=view_params.get(rf_raw, "train.epochs"),
        key="rep:rf-epochs",
        **view_params.bounds("repforget", "train.epochs"),
    )
    beta = c3.number_input(
        "VAE β (KL weight)",
        value=float(rf_raw["beta"]),
        format="%g",
        key="rep:rf-beta",
        **view_params.bounds("repforget", "beta"),
    )
    rf_raw["data"]["benchmark"] = rf_bench
    rf_raw["train"]["epochs"] = int(rf_epochs)
    rf_raw["beta"] = float(beta)
    job_panel(
        "repforget",
        rf_raw,
        draw_repforget,
        prefix="rep-rf",
        label="Train the three models",
        hint="Trains the classifier, the autoencoder and the VAE on the tasks (about a minute).",
    )

view = {"n": int(n)} if int(n) != record.Spec.model_fields["n"].default else {}
view |= view_params.view_query(rf_raw, RF_LINKED, repforget.Spec().model_dump(mode="json"))
sync_query(sel.raw, view=view)
