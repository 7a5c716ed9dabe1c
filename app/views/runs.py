"""Runs: what the store holds — results of every kind, browsed, filtered, reopened, exported and
deleted (after a confirmation, with an undo) — and what is running now."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import streamlit as st

from app import live, share
from app.tables import download_buttons
from app.tables import shown as as_text
from engine import kinds
from engine.jobs import ACTIVE

m = live.manager()
store = m.store
sid = live.session_id()
CONFIRM, DELETED = "runs:confirm", "runs:deleted"
NUMBERS = {"ACC": "{:.3f}", "BWT": "{:.3f}", "FWT": "{:.3f}", "forgetting": "{:.3f}"}
NUMBERS |= {"time (s)": "{:.1f}", "lr": "{:g}", "epochs": "{:.0f}", "seed": "{:.0f}"}

st.title("Runs")
st.markdown(
    "Every finished computation is stored under the key of its canonical settings, so asking "
    "for it again — from this app, the CLI or a sweep — opens it at once."
)


def job_line(j: dict) -> str:
    if j.get("kind", "run") == "run":
        return live.progress_text(j)
    total = j.get("total_steps") or 0
    stage = (j.get("stage") or j["state"]).capitalize()
    return f"{stage} · step {j.get('global_step', 0):,} of {total:,}" if total else stage


running = [j for j in m.jobs() if j["state"] in ACTIVE]
if running:
    st.subheader("Running now")
    for j in running:
        c1, c2, c3 = st.columns([4, 1, 1], vertical_alignment="center")
        c1.progress(
            live.progress_fraction(j), text=f"{j.get('kind', 'run')} · {j['key']} · {job_line(j)}"
        )
        job = m.get(j["key"])
        if job is not None and job.kind == "run" and job.config:
            c2.link_button("Watch", share.link_for("forgetting", job.config))
        if m.can_cancel(j["key"], sid):
            c3.button(
                "Cancel", key=f"runs:cancel:{j['key']}", on_click=m.cancel, args=(j["key"], sid)
            )
        else:  # hosted: another session's job is read-only here
            c3.caption("another visitor's")

info = store.info()
metas = store.list_results()
header = st.empty()  # filled at the end: opening a result below changes the counts
counters = st.empty()


def summary_row(meta: dict) -> dict:
    """One stored result as a table row; fields a kind does not have stay empty."""
    cfg = meta.get("config") or {}
    data, model, train, plan = (
        cfg.get(k) if isinstance(cfg.get(k), dict) else {}
        for k in ("data", "model", "train", "strategy")
    )
    strategy = plan.get("name")
    metrics, timing = meta.get("metrics") or {}, meta.get("timing") or {}
    skip, _ = live.meaningless(strategy)
    arch = model.get("arch")
    shape = f" {model.get('depth')}×{model.get('width')}" if model.get("depth") else ""
    return {
        "when": dt.datetime.fromtimestamp(meta.get("saved_at", 0)).strftime("%Y-%m-%d %H:%M"),
        "kind": meta.get("kind", "run"),
        "key": meta["key"],
        "strategy": strategy,
        "benchmark": data.get("benchmark"),
        "scenario": cfg.get("scenario"),
        "model": f"{arch}{shape}" if arch else None,
        "epochs": train.get("epochs"),
        "lr": train.get("lr"),
        "seed": train.get("seed", cfg.get("seed")),
        **{
            label: None if name in skip else metrics.get(name)
            for label, name in (("ACC", "acc"), ("BWT", "bwt"), ("FWT", "fwt"))
        },
        "forgetting": None if "forgetting" in skip else metrics.get("forgetting"),
        "time (s)": timing.get("total_s"),
        "status": meta.get("status"),
    }


table = pd.DataFrame([summary_row(r) for r in metas])
shown = table
if metas:
    present = sorted(set(table["kind"]))
    chosen = st.multiselect(
        "kinds",
        present,
        default=present,
        format_func=lambda k: f"{k} ({(table['kind'] == k).sum()})",
        key="runs:kinds",
        help="Continual runs, and the analyses the other pages compute (tunnel, softmax, …).",
    )
    shown = table[table["kind"].isin(chosen)]
    st.dataframe(
        as_text(
            shown, NUMBERS
        ),  # text: an empty cell would read "None"; the downloads keep numbers
        hide_index=True,
        key="runs:table",
        column_config={
            "key": st.column_config.TextColumn("key", width="medium", pinned=True),
            "kind": st.column_config.TextColumn("kind", width="small", pinned=True),
        },
    )
    download_buttons(shown, "runs", "runs")


def label_of(row: dict) -> str:
    acc = f" · ACC {row['ACC']:.3f}" if isinstance(row.get("ACC"), float) else ""
    what = " · ".join(str(row[c]) for c in ("strategy", "benchmark", "scenario") if row.get(c))
    return (
        f"{row['kind']} · {what}{acc} · {row['key']}" if what else f"{row['kind']} · {row['key']}"
    )


def ask(key: str) -> None:
    st.session_state[CONFIRM] = key


def keep() -> None:
    st.session_state.pop(CONFIRM, None)


def delete(key: str, label: str) -> None:
    kept = store.get_result(key)  # for the undo: the store can take the same dict back
    store.delete(key)
    st.session_state.pop(CONFIRM, None)
    st.session_state[DELETED] = {"key": key, "label": label, "result": kept}


def undo() -> None:
    gone = st.session_state.pop(DELETED, None)
    if gone and gone["result"] is not None:
        store.put_result(gone["key"], gone["result"])
        st.session_state["runs:restored"] = gone["label"]


gone = st.session_state.get(DELETED)
if gone:
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    c1.success(
        f"Deleted {gone['label']}: its result, checkpoint and attached recordings are gone from "
        "the store. Undo puts the result back (recordings attached to it stay gone)."
    )
    c2.button("Undo", key="runs:undo", on_click=undo, disabled=gone["result"] is None)
restored = st.session_state.pop("runs:restored", None)
if restored:
    st.success(f"Restored {restored}.")

if not shown.empty:
    st.subheader("One result")
    rows = {r["key"]: r for r in shown.to_dict("records")}
    by_key = {r["key"]: r for r in metas}
    key = st.selectbox(
        "result", list(rows), format_func=lambda k: label_of(rows[k]), key="runs:pick"
    )
    meta, row = by_key[key], rows[key]
    kind = meta.get("kind", "run")
    result = store.get_result(key)
    if result is not None:
        live.open_from_store(m, key, meta.get("config") or {}, kind)
    a, b, c, d = st.columns(4, vertical_alignment="center")
    if kind == "run" and meta.get("config"):
        a.link_button(
            "Reopen in Forgetting", share.link_for("forgetting", meta["config"]), type="primary"
        )
    else:
        title = kinds.kind_module(kind).TITLE if kind in kinds.names() else kind
        a.caption(f"{title}: the page that computes it shows it again with the same settings.")
    if result is not None:
        R = result.get("R") or []
        if R and isinstance(R[0], list):
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
    elif st.session_state.get(CONFIRM) != key:
        d.button(
            "Delete…",
            key=f"runs:delete:{key}",
            on_click=ask,
            args=(key,),
            help="Remove this result (and its checkpoint and recordings) from the store",
        )
    else:
        st.warning(
            f"Delete {label_of(row)}? Its result, checkpoint and recordings leave the store, for "
            "every visitor of this server; opening this config again would recompute it."
        )
        y, n, _ = st.columns([1, 1, 4])
        y.button(
            "Yes, delete",
            key=f"runs:yes:{key}",
            type="primary",
            on_click=delete,
            args=(key, label_of(row)),
        )
        n.button("Keep it", key=f"runs:keep:{key}", on_click=keep)
    if result is not None and kind == "run" and result.get("R"):
        live.draw_run(
            {
                "R": result.get("R") or [],
                "n_tasks": len(result["R"][0]),
                "baseline": result.get("baseline"),
                "curves": result.get("curves") or {},
            },
            key,
            prefix="runs",
            strategy=row.get("strategy"),
        )
    with st.expander("Canonical settings"):
        st.json(meta.get("config") or {})
elif metas:
    st.info("No stored result of the kinds chosen above.")
else:
    st.info("The store is empty: run something on the Forgetting or Compare page.")

# The counts, last: what this page opened is in them.
where = "" if m.hosted else f" in `{info['directory']}`"
unlisted = info["results"] - len(metas)
header.caption(
    f"Stored results: {len(metas)}"
    + (f" (and {unlisted} unreadable, left out)" if unlisted > 0 else "")
    + (f" · shown: {len(shown)}" if len(shown) != len(metas) else "")
    + f" · unfinished (resumable) runs: {info['checkpoints']} · "
    f"{info['size_bytes'] / 2**20:.1f} MiB of {info['size_limit_bytes'] / 2**20:.0f} MiB{where} "
    f"· engine {info['engine_version']}"
)
n = m.counts
counters.caption(
    f"This server since it started: {n['requests']} requests · {n['started']} runs started · "
    f"{n['shared']} shared with a run already going · {n['from_store']} opened from the store · "
    f"{n['refused']} refused"
)
