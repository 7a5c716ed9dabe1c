"""Runs: what the store holds — browse, reopen, export, delete — and what is running now."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import streamlit as st

from app import live, share
from engine.jobs import ACTIVE

m = live.manager()
store = m.store
st.title("Runs")
st.markdown(
    "Every finished run is stored under the key of its canonical config, so asking for it "
    "again — from this app, the CLI or a sweep — opens it at once."
)

running = [j for j in m.jobs() if j["state"] in ACTIVE]
if running:
    st.subheader("Running now")
    for j in running:
        c1, c2, c3 = st.columns([4, 1, 1])
        cfg = j.get("config") or {}
        c1.progress(
            min(1.0, j.get("global_step", 0) / j["total_steps"]) if j.get("total_steps") else 0.0,
            text=f"{j['key']} · {live.progress_text(j)}",
        )
        if cfg:
            c2.link_button("Watch", share.link_for("forgetting", cfg))
        if c3.button("Cancel", key=f"runs:cancel:{j['key']}"):
            m.cancel(j["key"])
            st.rerun()

info = store.info()
where = "" if m.hosted else f" in `{info['directory']}`"
st.caption(
    f"Stored results: {info['results']} · unfinished (resumable) runs: {info['checkpoints']} · "
    f"{info['size_bytes'] / 2**20:.1f} MiB of {info['size_limit_bytes'] / 2**20:.0f} MiB{where} · engine {info['engine_version']}"
)

c = m.counts
st.caption(
    f"This server since it started: {c['requests']} requests · {c['started']} runs started · "
    f"{c['shared']} shared with a run already going · {c['from_store']} opened from the store · "
    f"{c['refused']} refused"
)

metas = [r for r in store.list_results() if r.get("kind", "run") == "run" and r.get("config")]
if not metas:
    st.info("The store is empty: run something on the Forgetting or Compare page.")
    st.stop()


def summary_row(meta: dict) -> dict:
    cfg, metrics, timing = meta["config"], meta.get("metrics") or {}, meta.get("timing") or {}
    return {
        "when": dt.datetime.fromtimestamp(meta.get("saved_at", 0)),
        "benchmark": cfg["data"]["benchmark"],
        "scenario": cfg["scenario"],
        "strategy": cfg["strategy"]["name"],
        "model": f"{cfg['model']['arch']} {cfg['model'].get('depth')}×{cfg['model'].get('width')}",
        "epochs": cfg["train"]["epochs"],
        "lr": cfg["train"]["lr"],
        "seed": cfg["train"]["seed"],
        "ACC": metrics.get("acc"),
        "BWT": metrics.get("bwt"),
        "FWT": metrics.get("fwt"),
        "forgetting": metrics.get("forgetting"),
        "time_s": timing.get("total_s"),
        "status": meta.get("status"),
        "key": meta["key"],
    }


table = pd.DataFrame([summary_row(r) for r in metas])
st.dataframe(
    table,
    hide_index=True,
    key="runs:table",
    column_config={
        c: st.column_config.NumberColumn(format="%.3f") for c in ("ACC", "BWT", "FWT", "forgetting")
    }
    | {
        "time_s": st.column_config.NumberColumn("time (s)", format="%.1f"),
        "lr": st.column_config.NumberColumn(format="%g"),
    },
)
c1, c2 = st.columns(2)
c1.download_button(
    "Table as CSV", table.to_csv(index=False), "runs.csv", "text/csv", key="runs:csv"
)
c2.download_button(
    "Table as JSON",
    table.to_json(orient="records", date_format="iso", indent=1),
    "runs.json",
    "application/json",
    key="runs:json",
)

st.subheader("One run")
by_key = {r["key"]: r for r in metas}
labels = {
    k: f"{row['strategy']} · {row['benchmark']} · {row['scenario']} · ACC {row['ACC']:.3f} · {k}"
    if row["ACC"] is not None
    else f"{row['strategy']} · {row['benchmark']} · {k}"
    for k, row in zip(table["key"], table.to_dict("records"), strict=True)
}
key = st.selectbox("run", list(by_key), format_func=labels.get, key="runs:pick")
meta = by_key[key]
result = store.get_result(key)
a, b, c, d = st.columns(4)
a.link_button("Reopen in Forgetting", share.link_for("forgetting", meta["config"]), type="primary")
if result is not None:
    R = result.get("R") or []
    if R:
        b.download_button(
            "R as CSV",
            live.r_table(R, len(R[0])).to_csv(),
            f"R-{key}.csv",
            "text/csv",
            key="runs:r-csv",
        )
    c.download_button(
        "Result as JSON",
        json.dumps(result, indent=1),
        f"result-{key}.json",
        "application/json",
        key="runs:r-json",
    )
if m.hosted:
    d.caption("Deleting is off on the hosted demo.")
elif d.button(
    "Delete",
    key=f"runs:delete:{key}",
    help="Remove this result (and its checkpoint and extras) from the store",
):
    store.delete(key)
    st.toast(f"Deleted {key}")
    st.rerun()
if result is not None:
    live.draw_run(
        {
            "R": result.get("R") or [],
            "n_tasks": len(result["R"][0]) if result.get("R") else None,
            "baseline": result.get("baseline"),
            "curves": result.get("curves") or {},
        },
        key,
        prefix="runs",
    )
    with st.expander("Canonical config"):
        st.json(meta["config"])
