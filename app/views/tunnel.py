"""Tunnel (thesis 5.2, 6.3): train one network on one task, then look at every layer — rank,
linear probes in distribution and out of it, κ and ρ, CKA — and how softmax temperature
changes them. Both experiments run as jobs of the engine (kinds ``tunnel`` and ``temperature``):
progress, Cancel, and a link that reopens the stored result."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import analysis_figures as af
from app import figures, view_params
from app.headline import headline
from app.job_panel import job_panel
from app.sidebar import current_raw, sync_query
from engine.analysis.ood import OOD_SETS
from engine.data.catalog import EMBEDDED
from engine.kinds import temperature, tunnel

LAST_KEY = "tn:last_key"  # the tunnel result last shown; the Representations page reuses it
DEFAULTS = tunnel.Spec()
# Settings a link carries (v_<name>), each validated as the tunnel spec's field.
LINKED = ("benchmark", "depth", "width", "epochs", "lr", "probe_epochs", "ood")


def chart(fig, name: str) -> None:
    st.plotly_chart(fig, key=f"tn:{name}", config=figures.png_config(name))


def draw_tunnel(result: dict) -> None:
    st.session_state[LAST_KEY] = result["key"]
    if result["status"] != "done":
        return
    start = result["tunnel_start"]["0.95"]
    rho = result.get("rho")
    headline(
        [
            ("κ (compression)", f"{result['kappa']:.3f}", "Thesis 6.3.3; η = 0.99"),
            ("ρ (OOD loss)", "–" if rho is None else f"{rho:.3f}", "Thesis 6.3.3"),
            (
                "tunnel start (95 %)",
                f"layer {start['layer']}",
                "First layer whose probe has made 95 % of the gain from the raw input's probe "
                "to the best probe",
            ),
            ("test accuracy", f"{result['model_acc']:.3f}"),
            ("train accuracy", f"{result['train_acc']:.3f}"),
        ]
    )
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
    inputs = result.get("input_probe") or {}
    st.caption(
        f"Raw input: rank {result.get('input_rank')}, probe accuracy "
        f"{inputs.get('test_acc', float('nan')):.3f}; logits: rank {result.get('logits_rank')} "
        f"for {result.get('n_classes')} classes."
    )
    d1, d2 = st.columns(2)
    d1.download_button(
        "Layers as CSV", table.to_csv(index=False), "tunnel-layers.csv", "text/csv", key="tn:csv"
    )
    d2.download_button(
        "CKA as CSV",
        pd.DataFrame(result["cka"], index=names, columns=names).to_csv(),
        "tunnel-cka.csv",
        "text/csv",
        key="tn:cka-csv",
    )


def draw_temperature(result: dict) -> None:
    rows = result["table"]
    done = [r for r in rows if r["rank"] is not None]
    if done:
        chart(
            af.figure_rank_lines(
                {f"T = {r['temperature']:g}": r["rank"] for r in done},
                result["layers"],
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


st.title("Tunnel")
st.markdown(
    "Train one network on one task, then probe every layer. Deep networks split into an "
    "*extractor* that builds the representation and a *tunnel* of later layers that "
    "compresses it: the numerical rank falls, linear-probe accuracy stops rising in "
    "distribution and falls out of distribution (thesis 5.2). The tunnel starts where a "
    "layer's probe has made 95 % of the gain over a probe on the raw input. κ is the share of "
    "layers needed to reach 99 % of the best probe accuracy; ρ is how much OOD probe accuracy "
    "the last layers lose (thesis 6.3.3)."
)

raw = view_params.from_link("tunnel", LINKED, DEFAULTS.model_dump(mode="json"))
c1, c2, c3, c4 = st.columns(4)
bench_now = view_params.get(raw, "data.benchmark")
benchmark = c1.selectbox(
    "benchmark",
    EMBEDDED,
    index=EMBEDDED.index(bench_now) if bench_now in EMBEDDED else 0,
    key="tn:benchmark",
    help="One task with all the benchmark's classes",
)
depth = c2.number_input(
    "depth (MLP hidden layers)",
    value=view_params.get(raw, "model.depth"),
    key="tn:depth",
    **view_params.bounds("tunnel", "model.depth"),
)
width = c3.number_input(
    "width",
    value=view_params.get(raw, "model.width"),
    key="tn:width",
    **view_params.bounds("tunnel", "model.width"),
)
epochs = c4.number_input(
    "epochs",
    value=view_params.get(raw, "train.epochs"),
    key="tn:epochs",
    **view_params.bounds("tunnel", "train.epochs"),
)
with st.expander("Analysis settings"):
    a1, a2, a3 = st.columns(3)
    lr = a1.number_input(
        "learning rate (SGD)",
        value=float(view_params.get(raw, "train.lr")),
        format="%g",
        key="tn:lr",
        **view_params.bounds("tunnel", "train.lr"),
    )
    probe_epochs = a2.number_input(
        "probe epochs",
        value=raw["probe_epochs"],
        key="tn:probe_epochs",
        **view_params.bounds("tunnel", "probe_epochs"),
    )
    ood = a3.selectbox(
        "OOD set",
        OOD_SETS,
        index=OOD_SETS.index(raw["ood"]) if raw["ood"] in OOD_SETS else 0,
        key="tn:ood",
        help=tunnel.Spec.model_fields["ood"].description,
    )
    st.caption(
        f"He-initialised MLP, SGD, batch {DEFAULTS.train.batch_size}; rank on "
        f"{DEFAULTS.n_eval} test images; `python -m engine analyze tunnel --help` lists the rest."
    )

# The tunnel defaults with the form's settings (a partial train section would reset the others).
raw["data"]["benchmark"] = benchmark
raw["model"].update(arch="mlp", depth=int(depth), width=int(width))
raw["train"].update(epochs=int(epochs), lr=float(lr))
raw["probe_epochs"] = int(probe_epochs)
raw["ood"] = ood

job_panel(
    "tunnel",
    raw,
    draw_tunnel,
    prefix="tn",
    label="Run",
    hint="Press Run to train the network and probe every layer (a minute or two on a CPU; "
    "a stored result opens at once).",
)

st.header("Temperature")
st.markdown(
    "The same network (same seed) trained with the loss seeing logits / T, once per T. Higher "
    "temperatures make the network grow its logits, which compresses the later layers more: κ "
    "falls and ρ rises (thesis 6.3, Table 6.3.1). Each T is one tunnel experiment of the "
    "thesis's Fig. 6.3.1 network (MLP-8 on the benchmark above), stored on its own."
)
temps_text = st.text_input(
    "temperatures (comma-separated)",
    st.query_params.get("v_temperatures", "1,10,100,1000")[:80],
    key="tn:temps",
    help=temperature.Spec.model_fields["temperatures"].description,
)
raw_t = temperature.Spec().model_dump(mode="json")
raw_t["data"]["benchmark"] = benchmark
raw_t["probe_epochs"] = int(probe_epochs)
raw_t["ood"] = ood
raw_t["temperatures"] = temps_text
job_panel(
    "temperature",
    raw_t,
    draw_temperature,
    prefix="tn-temp",
    label="Run temperatures",
    hint="One tunnel run per temperature; each is stored, so T = 1 of another study is reused.",
)

view = view_params.view_query(raw, LINKED, DEFAULTS.model_dump(mode="json"))
if temps_text.strip() != "1,10,100,1000":
    view["temperatures"] = temps_text.strip()
sync_query(current_raw(), view=view)  # the sidebar's experiment and this page's settings
