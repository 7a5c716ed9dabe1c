"""Several runs side by side (the Compare page): one table, overlaid curves, the stability–
plasticity scatter and every heatmap, redrawn while any of them trains.

A run that has not been run shows "not run" and "—", never None or "0/?"; the metrics a strategy
makes meaningless (joint's BWT, FWT and forgetting: every row of its R is the same final model)
show "—" too, with the reason in the column's tooltip.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from app import figures
from app.live import (
    POLL_S,
    manager,
    meaningless,
    open_from_store,
    session_id,
    visitor_id,
)
from app.references import ref_link
from app.tables import download_buttons, shown
from engine.errors import ConfigError
from engine.jobs import ACTIVE, FINISHED_WITH_RESULT, JobManager
from engine.metrics import stability_plasticity, summarize
from engine.runner import prepare

NOT_RUN = "not run"
RATE_COLUMNS = (
    "ACC",
    "BWT",
    "FWT",
    "forgetting",
    "learning acc.",
    "old-task acc.",
    "new-task acc.",
)
METRIC_OF = {"ACC": "acc", "BWT": "bwt", "FWT": "fwt", "forgetting": "forgetting"}
MAX_RUNS = 12  # side by side on one page; a larger grid is a sweep file's work


@dataclass(frozen=True)
class Entry:
    label: str
    raw: dict
    key: str
    strategy: str
    n_tasks: int


def view_of(m: JobManager, entry: Entry) -> dict:
    """R, baseline, curves and state of one run, from the finished result when there is one."""
    status = m.status(entry.key)
    if status is not None and status["state"] in FINISHED_WITH_RESULT:
        result = m.result(entry.key)
        if result is not None:
            if status.get("cached"):
                open_from_store(m, entry.key, entry.raw)
            R = result.get("R") or []
            return {
                "state": result.get("status", "done"),
                "R": R,
                "n_tasks": len(R[0]) if R else entry.n_tasks,
                "baseline": result.get("baseline"),
                "curves": result.get("curves") or {},
                "time_s": (result.get("timing") or {}).get("total_s"),
            }
    if status is None:
        return {"state": NOT_RUN, "R": [], "n_tasks": entry.n_tasks, "curves": {}}
    return {**status, "n_tasks": status.get("n_tasks") or entry.n_tasks, "time_s": None}


def comparison_rows(views: list[tuple[Entry, dict]]) -> pd.DataFrame:
    """One row per run: the metrics of summarize, old/new-task accuracy, time, key; None where
    there is no number (not run yet, or meaningless for the strategy)."""
    rows = []
    for entry, v in views:
        R, T = v.get("R") or [], v.get("n_tasks")
        started = v["state"] != NOT_RUN and T
        row: dict = {
            "run": entry.label,
            "state": v["state"],
            "rows of R": f"{len(R)}/{T}" if started else "—",
        }
        row.update(dict.fromkeys(RATE_COLUMNS))
        if T and len(R) == T:
            s = summarize(R, v.get("baseline"))
            old, new = stability_plasticity(R)
            values = (s["acc"], s["bwt"], s["fwt"], s["forgetting"], s["learning_acc"], old, new)
            row.update(zip(RATE_COLUMNS, values, strict=True))
            skip, _ = meaningless(entry.strategy)
            for column, metric in METRIC_OF.items():
                if metric in skip:
                    row[column] = None
        row.update({"time (s)": v.get("time_s"), "key": entry.key})
        rows.append(row)
    return pd.DataFrame(rows)


FORMATS = dict.fromkeys(RATE_COLUMNS, "{:.3f}") | {"time (s)": "{:.1f}"}


def column_help(entries: list[Entry]) -> dict:
    """Tooltips on the column headers: what "—" means where it can appear."""
    reasons = {why for e in entries for names, why in [meaningless(e.strategy)] if names}
    note = " ".join(sorted(reasons))
    out = {
        "state": st.column_config.TextColumn(help="not run · queued · running · done · cancelled"),
        "key": st.column_config.TextColumn(width="medium"),
    }
    for column in ("BWT", "FWT", "forgetting"):
        out[column] = st.column_config.TextColumn(
            help="— where a run has not finished" + (f"; for joint: {note}" if note else "")
        )
    return out


def draw_comparison(entries: list[Entry]) -> bool:
    """Table, overlaid curves, stability–plasticity scatter and heatmaps; True while any runs."""
    m = manager()
    views = [(e, view_of(m, e)) for e in entries]
    active = [e.label for e, v in views if v["state"] in ACTIVE]
    if active:
        done = sum(v["state"] in FINISHED_WITH_RESULT for _, v in views)
        st.progress(
            done / len(views),
            text=f"{done} of {len(views)} runs done · running or queued: {', '.join(active)}",
        )
    table = comparison_rows(views)
    st.dataframe(
        shown(table, FORMATS), hide_index=True, key="cmp:table", column_config=column_help(entries)
    )
    if any(meaningless(e.strategy)[0] for e in entries):
        st.caption(
            "— under BWT, FWT and forgetting for joint: every row of its R is the same final "
            "model, so there is no before and after to compare."
        )
    download_buttons(table, "comparison", "cmp")

    left, right = st.columns(2)
    with left:
        curves = {e.label: v["curves"] for e, v in views if (v.get("curves") or {}).get("step")}
        T = max((v.get("n_tasks") or 0 for _, v in views), default=0)
        which = st.selectbox(
            "curves show",
            [None, *range(T)],
            key="cmp:curve-task",
            format_func=lambda t: (
                "mean accuracy on the tasks seen so far"
                if t is None
                else f"accuracy on task {t + 1}"
            ),
        )
        if curves:
            st.plotly_chart(
                figures.figure_compare_curves(curves, task=which, title="Accuracy during training"),
                key="cmp:curves",
                config=figures.png_config("compare-curves"),
            )
    with right:
        points = []
        for e, v in views:
            R = v.get("R") or []
            if v.get("n_tasks") and len(R) == v["n_tasks"]:
                old, new = stability_plasticity(R)
                points.append({"label": e.label, "old": old, "new": new})
        if points:
            st.plotly_chart(
                figures.figure_stability_plasticity(points, title="Stability versus plasticity"),
                key="cmp:scatter",
                config=figures.png_config("stability-plasticity"),
            )
            st.caption(
                "Across: how well each task is learned right after training on it, mean_i "
                "R[i,i] (plasticity). Up: how much of the earlier tasks is kept at the end, "
                "mean_{i<T} R[T,i] (stability). Top right learns and remembers; the trade-off "
                f"between the two is {ref_link('course', 'the course')}'s stability–plasticity "
                "dilemma."
            )
    per_row = 3
    for start in range(0, len(views), per_row):
        cols = st.columns(per_row)
        for col, (e, v) in zip(cols, views[start : start + per_row], strict=False):
            if v["state"] != NOT_RUN and v.get("n_tasks"):  # inline SVG, as on Forgetting
                col.markdown(
                    figures.svg_r_heatmap(
                        v.get("R") or [], v["n_tasks"], title=e.label, height=320
                    ),
                    unsafe_allow_html=True,
                )
            else:
                col.caption(f"{e.label}: {v['state']}")
    return bool(active)


def prepare_entries(pairs: list[tuple[str, dict]]) -> list[Entry]:
    """Validated entries, one per distinct key (a bad one is one error line, the rest stay)."""
    out: list[Entry] = []
    seen: set[str] = set()
    for label, raw in pairs[:MAX_RUNS]:
        try:
            cfg, key = prepare(raw)
        except ConfigError as err:
            st.error(f"{label}: {err}")
            continue
        if key not in seen:
            seen.add(key)
            out.append(Entry(label, raw, key, cfg.strategy.name, cfg.data.n_tasks))
    if len(pairs) > MAX_RUNS:
        st.warning(
            f"{len(pairs)} runs asked for; the first {MAX_RUNS} are shown side by side (a sweep "
            "file compares more: choose 'a sweep file' above)."
        )
    return out


def show_comparison(pairs: list[tuple[str, dict]]) -> None:
    """Run and show several configs side by side: ``pairs`` are (label, raw config) — from the
    Compare page's widgets, or from a sweep (engine.sweep.expand)."""
    m = manager()
    entries = prepare_entries(pairs)
    if not entries:
        return
    missing = [
        e for e in entries if (m.status(e.key) or {}).get("state") in (None, "cancelled", "error")
    ]
    if missing and st.button(f"Run {len(missing)} missing", type="primary", key="cmp:run"):
        for e in missing:
            try:
                m.submit(e.raw, session_id=session_id(), kind="run", visitor=visitor_id())
            except ConfigError as err:
                st.error(f"{e.label}: {err}")
    if any((m.status(e.key) or {}).get("state") in ACTIVE for e in entries):

        def body() -> None:
            if not draw_comparison(entries):
                st.rerun()

        st.fragment(body, run_every=POLL_S)()
    else:
        draw_comparison(entries)
