"""Tunnel (thesis 5.2, 6.3): train one model on one task, then look at every layer — rank,
linear probes in distribution and out of it, κ and ρ, CKA — and how softmax temperature
changes them."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import analysis_figures as af
from app import figures
from app.sidebar import current_raw, sync_query
from engine.analysis import experiments as ex
from engine.analysis import tunnel
from engine.analysis.ood import OOD_SETS
from engine.config import EMBEDDED, ConfigError, field_info
from engine.store import Store

LAST_KEY = "tn:last_key"  # the tunnel result last shown; the Representations page reuses it
DEFAULTS = tunnel.Spec()


def chart(fig, name: str) -> None:
    st.plotly_chart(fig, key=f"tn:{name}", config=figures.png_config(name))


def bounded(path: str) -> dict:
    info = field_info(path)
    return {"min_value": info["ge"], "max_value": info["le"], "help": info["description"]}


def progress_reporter(bar):
    """on_event for run_experiment: the experiment's steps on a progress bar."""

    def on_event(event: dict) -> None:
        total = event.get("total_steps") or 0
        if event["type"] == "progress" and total:
            done = min(1.0, event.get("global_step", 0) / total)
            bar.progress(
                done, text=f"{event.get('stage', '')} · step {event['global_step']}/{total}"
            )

    return on_event


def run(kind: str, raw: dict, label: str) -> dict | None:
    """Run (or fetch) an experiment with a status box; None (and an error shown) when it fails."""
    with st.status(label, expanded=True) as box:
        bar = st.progress(0.0)
        try:
            result = ex.run_experiment(kind, raw, on_event=progress_reporter(bar), store=Store())
        except ConfigError as err:
            box.update(label=f"{label}: refused", state="error")
            st.error(str(err))
            return None
        where = (
            "from the store" if result.get("cached") else f"in {result['timing']['total_s']:.0f} s"
        )
        box.update(label=f"{label}: done ({where})", state="complete", expanded=False)
    return result


def stored(kind: str, raw: dict) -> dict | None:
    """The stored result of this experiment, if any (never computes)."""
    try:
        _, key = ex.prepare(kind, raw)
    except ConfigError:
        return None
    return Store().get_result(key)


st.title("Tunnel")
st.markdown(
    "Train one network on one task, then probe every layer. Deep networks split into an "
    "*extractor* that builds the representation and a *tunnel* of later layers that "
    "compresses it: the numerical rank falls, linear-probe accuracy stops rising in "
    "distribution and falls out of distribution (thesis 5.2). κ is the share of layers needed "
    "to reach 99 % of the best probe accuracy; ρ is how much OOD probe accuracy the last layers "
    "lose (thesis 6.3.3)."
)

c1, c2, c3, c4 = st.columns(4)
benchmark = c1.selectbox(
    "benchmark",
    EMBEDDED,
    index=EMBEDDED.index(DEFAULTS.data.benchmark) if DEFAULTS.data.benchmark in EMBEDDED else 0,
    key="tn:benchmark",
    help="One task with all the benchmark's classes",
)
depth = c2.number_input(
    "depth (MLP hidden layers)",
    value=DEFAULTS.model.depth,
    key="tn:depth",
    **bounded("model.depth"),
)
width = c3.number_input(
    "width", value=DEFAULTS.model.width, key="tn:width", **bounded("model.width")
)
epochs = c4.number_input(
    "epochs", value=DEFAULTS.train.epochs, key="tn:epochs", **bounded("train.epochs")
)
with st.expander("Analysis settings"):
    a1, a2 = st.columns(2)
    probe_epochs = a1.number_input(
        "probe epochs",
        min_value=1,
        max_value=1000,
        value=DEFAULTS.probe_epochs,
        key="tn:probe_epochs",
        help=tunnel.Spec.model_fields["probe_epochs"].description,
    )
    ood = a2.selectbox(
        "OOD set",
        OOD_SETS,
        index=OOD_SETS.index(DEFAULTS.ood),
        key="tn:ood",
        help=tunnel.Spec.model_fields["ood"].description,
    )
    st.caption(
        f"Adam, lr {DEFAULTS.train.lr:g}, batch {DEFAULTS.train.batch_size}; rank on "
        f"{DEFAULTS.n_eval} test images; `python -m engine analyze tunnel --help` lists the rest."
    )

# The tunnel defaults with the form's settings (a partial train section would reset the others).
raw = DEFAULTS.model_dump(mode="json")
raw["data"]["benchmark"] = benchmark
raw["model"].update(arch="mlp", depth=int(depth), width=int(width))
raw["train"]["epochs"] = int(epochs)
raw["probe_epochs"] = int(probe_epochs)
raw["ood"] = ood

result = None
if st.button("Run", type="primary", key="tn:run"):
    result = run("tunnel", raw, "Tunnel experiment")
else:
    result = stored("tunnel", raw)  # a finished experiment is shown at once

if result is not None:
    st.session_state[LAST_KEY] = result["key"]
    if result["status"] != "done":
        st.warning(f"Training stopped ({result['status']}): {result.get('message', '')}")
    else:
        start = result["tunnel_start"]["0.95"]
        m1, m2, m3, m4, m5 = st.columns(5)
        m1.metric("κ (compression)", f"{result['kappa']:.3f}", help="Thesis 6.3.3; η = 0.99")
        rho = result.get("rho")
        m2.metric("ρ (OOD loss)", "–" if rho is None else f"{rho:.3f}", help="Thesis 6.3.3")
        m3.metric("tunnel start (95 %)", f"layer {start['layer']}")
        m4.metric("test accuracy", f"{result['model_acc']:.3f}")
        m5.metric("train accuracy", f"{result['train_acc']:.3f}")
        left, right = st.columns(2)
        with left:
            chart(af.figure_tunnel(result, title="Rank and probe accuracy by layer"), "tunnel")
        with right:
            names = [f"{i + 1} {n}" for i, n in enumerate(result["layers"])]
            chart(af.figure_cka(result["cka"], names, title="CKA layer × layer"), "tunnel-cka")
        if result.get("ood"):
            st.caption(f"OOD set: {result['ood']['name']} — {result['ood'].get('note', '')}")
        table = pd.DataFrame(
            {
                "layer": af.layer_numbers(result["layers"]),
                "name": result["layers"],
                "width": result["widths"],
                "rank": result["rank"],
                "probe accuracy (ID)": result["probe"]["test_acc"],
                "probe accuracy (OOD)": (result.get("ood") or {}).get("acc"),
            }
        )
        st.dataframe(table, hide_index=True, key="tn:table")
        d1, d2 = st.columns(2)
        d1.download_button(
            "Layers as CSV",
            table.to_csv(index=False),
            "tunnel-layers.csv",
            "text/csv",
            key="tn:csv",
        )
        d2.download_button(
            "CKA as CSV",
            pd.DataFrame(result["cka"], index=names, columns=names).to_csv(),
            "tunnel-cka.csv",
            "text/csv",
            key="tn:cka-csv",
        )
        st.caption(f"experiment key `{result['key']}`")

st.header("Temperature")
st.markdown(
    "The same network (same seed) trained with the loss seeing logits / T, once per T. Higher "
    "temperatures make the network grow its logits, which compresses the later layers more: κ "
    "falls and ρ rises (thesis 6.3, Table 6.3.1). Each T is one tunnel experiment with the "
    "settings above, so T = 1 is the run shown above."
)
temps_text = st.text_input(
    "temperatures (comma-separated)",
    "1,10,100,1000",
    key="tn:temps",
    help="0.001…10000, distinct, at most 8",
)
raw_t = {**raw, "temperatures": temps_text}
temp = None
if st.button("Run temperatures", key="tn:run-temps"):
    temp = run("temperature", raw_t, "Temperature experiment")
else:
    temp = stored("temperature", raw_t)
if temp is not None:
    rows = temp["table"]
    done = [r for r in rows if r["rank"] is not None]
    if done:
        chart(
            af.figure_rank_lines(
                {f"T = {r['temperature']:g}": r["rank"] for r in done},
                temp["layers"],
                title="Rank by layer per temperature",
            ),
            "temperature-rank",
        )
    kt = pd.DataFrame(
        [
            {
                "T": r["temperature"],
                "status": r["status"],
                "test accuracy": r["acc"],
                "train accuracy": r["train_acc"],
                "κ": r["kappa"],
                "ρ": r["rho"],
                "last-layer rank": None if r["rank"] is None else r["rank"][-1],
                "logits norm (start)": r["logits_norm_start"],
                "logits norm (end)": r["logits_norm_end"],
            }
            for r in rows
        ]
    )
    st.dataframe(kt, hide_index=True, key="tn:temp-table")
    st.download_button(
        "Temperatures as CSV",
        kt.to_csv(index=False),
        "tunnel-temperature.csv",
        "text/csv",
        key="tn:temp-csv",
    )

sync_query(current_raw())  # keep the sidebar's experiment in the link while on this page
