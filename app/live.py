"""The live run view: Run → progress, R heatmap, curves and metric cards redrawn while it trains.

State is keyed by the config key, not by the browser session: the page asks the process-wide
:class:`engine.jobs.JobManager` what it knows about the key, so navigating away and back, or a
second tab, shows the same run in progress, and a config that was run before (by anyone) opens
at once from the store. While a run is active, two fragments (``st.fragment(run_every=…)``)
poll the manager: the progress bar twice a second, the figures and cards once a second (each
redraws only itself); when the run ends the page runs again and shows the finished view.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from app import figures
from engine.jobs import ACTIVE, JobManager, get_manager
from engine.metrics import summarize

POLL_S = 0.5  # progress bar, and noticing the end of a run
FIGURE_POLL_S = 1.0  # heatmap, curves and metric cards while it trains
METRICS = (
    ("acc", "ACC", "Final average accuracy: mean_i R[T,i]"),
    ("bwt", "BWT", "Backward transfer: mean_{i<T} (R[T,i] − R[i,i]); negative = forgetting"),
    ("fwt", "FWT", "Forward transfer: mean_{i>1} (R[i−1,i] − b_i), b = untrained accuracy"),
    ("forgetting", "Forgetting", "Mean over i<T of max_{t<T} R[t,i] − R[T,i]"),
    ("learning_acc", "Learning acc.", "mean_i R[i,i]: each task right after training it"),
)


def hosted_secret() -> bool:
    """The `hosted` flag of .streamlit/secrets.toml (False when there is no secrets file)."""
    try:
        return bool(st.secrets.load_if_toml_exists() and st.secrets.get("hosted", False))
    except Exception:  # a malformed secrets file must not take the app down
        return False


def manager() -> JobManager:
    """The process-wide job manager (hosted mode from FORGET_HOSTED or the secrets); the first
    call also starts the process server that runs jobs, in the background."""
    m = get_manager(hosted=hosted_secret())
    m.warm_up()
    return m


def session_id() -> str | None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def metric_cards(R: list, baseline: list | None, n_tasks: int | None) -> None:
    """ACC, BWT, FWT, forgetting and learning accuracy, equal to engine.metrics.summarize."""
    done = n_tasks is not None and len(R) == n_tasks and n_tasks > 0
    values = summarize(R, baseline) if done else {}
    for col, (name, label, help_text) in zip(st.columns(len(METRICS)), METRICS, strict=True):
        col.metric(label, fmt(values.get(name)), help=help_text)


def r_table(R: list, n_tasks: int) -> pd.DataFrame:
    labels = [f"task {i + 1}" for i in range(n_tasks)]
    m = figures.r_matrix(R, n_tasks)
    return pd.DataFrame(m, index=[f"after task {t + 1}" for t in range(n_tasks)], columns=labels)


_FIGURES: OrderedDict[str, tuple[tuple, Any]] = OrderedDict()
_FIGURES_LOCK = threading.Lock()


def cached_figure(name: str, signature: tuple, build: Callable[[], Any]) -> Any:
    """The figure built for ``signature`` last time, else a new one: the live view redraws every
    second for every viewer while the data changes less often, and building a plotly Figure
    costs the server tens of milliseconds."""
    with _FIGURES_LOCK:
        hit = _FIGURES.get(name)
        if hit is not None and hit[0] == signature:
            _FIGURES.move_to_end(name)
            return hit[1]
    fig = build()
    with _FIGURES_LOCK:
        _FIGURES[name] = (signature, fig)
        while len(_FIGURES) > 256:
            _FIGURES.popitem(last=False)
    return fig


def draw_run(view: dict, key: str, prefix: str = "run") -> None:
    """Heatmap, curves and metric cards of a run snapshot or finished result."""
    R = view.get("R") or []
    n_tasks = view.get("n_tasks") or (len(R) if R else None)
    metric_cards(R, view.get("baseline"), n_tasks)
    left, right = st.columns(2)
    with left:
        # R as inline SVG, not plotly: it is on screen with the page instead of after plotly's
        # 4.7 MB of JavaScript has loaded (st.html would strip SVG; markdown keeps it).
        if n_tasks:
            st.markdown(
                figures.svg_r_heatmap(R, n_tasks, title="Accuracy matrix R[t,i]"),
                unsafe_allow_html=True,
            )
    with right:
        curves = view.get("curves") or {}
        if curves.get("step"):
            boundaries = view.get("boundaries")
            signature = (
                len(curves["step"]),
                curves["step"][-1],
                tuple(curves["acc"][-1]),
                tuple(boundaries or ()),
            )
            fig = cached_figure(
                f"curves:{key}:{boundaries is None}",
                signature,
                lambda: figures.figure_task_curves(
                    curves, boundaries=boundaries, title="Accuracy of every task during training"
                ),
            )
            st.plotly_chart(
                fig,
                key=f"{prefix}:curves:{key}",
                config=figures.png_config(f"task-curves-{key}"),
            )
        else:
            st.caption("Accuracy curves appear at the first evaluation point.")


def progress_text(s: dict) -> str:
    T = s.get("n_tasks") or 0
    rows = len(s.get("R") or [])
    if s["state"] == "queued":
        return "Queued: waiting for a free worker…"
    if s.get("waiting_for"):
        return (
            "Waiting: another process is computing this configuration (its result will be shared)…"
        )
    if s.get("phase") is None:
        return "Starting: loading the data and building the model…"
    n_phases = s.get("n_phases") or T
    return f"Training phase {s['phase'] + 1} of {n_phases} · step {s.get('step', 0)}/{s.get('total', 0)} · {rows} of {T} rows of R"


def draw_progress(s: dict) -> None:
    total = s.get("total_steps") or 0
    frac = min(1.0, s.get("global_step", 0) / total) if total else 0.0
    st.progress(frac, text=progress_text(s))


def draw_finished(key: str, result: dict, from_store: bool = False) -> None:
    """A finished run: status line, the figures, the R table and the downloads."""
    R = result.get("R") or []
    T = len(R)
    timing = result.get("timing") or {}
    if result.get("status") == "diverged":
        st.warning(f"Diverged: {result.get('message', '')} — rows of R before that are shown.")
    else:
        source = "opened from the store" if from_store else "just finished"
        st.success(
            f"Done: {T} of {T} tasks · trained in {timing.get('total_s', 0):.1f} s on "
            f"{result.get('device', '?')} · {source} · key {key}"
        )
    view = {
        "R": R,
        "n_tasks": len(R[0]) if R else None,
        "baseline": result.get("baseline"),
        "curves": result.get("curves") or {},
    }
    draw_run(view, key, prefix="done")
    if R:
        table = r_table(R, len(R[0]))
        with st.expander("R as a table, and downloads"):
            st.dataframe(table.style.format("{:.3f}"), key=f"rtable:{key}")
            c1, c2, c3 = st.columns(3)
            c1.download_button(
                "R as CSV", table.to_csv(), f"R-{key}.csv", "text/csv", key=f"dl-csv:{key}"
            )
            c3.download_button(
                "R heatmap as SVG",
                figures.svg_r_heatmap(R, len(R[0]), title="Accuracy matrix R[t,i]"),
                f"R-heatmap-{key}.svg",
                "image/svg+xml",
                key=f"dl-svg:{key}",
            )
            c2.download_button(
                "Whole result as JSON",
                json.dumps(result, indent=1),
                f"result-{key}.json",
                "application/json",
                key=f"dl-json:{key}",
            )


def live_view(key: str) -> None:
    """Poll the manager and redraw while the run for ``key`` is active: the progress bar every
    POLL_S, the figures every FIGURE_POLL_S (a redraw of two plotly charts costs the server
    ~50 ms of the interpreter lock that the training thread shares)."""

    def progress() -> None:
        s = manager().status(key)
        if s is None or s["state"] not in ACTIVE:
            st.rerun()  # the whole page draws the finished (or cancelled) state
        draw_progress(s)
        c1, c2 = st.columns([1, 5])
        if c1.button(
            "Cancel",
            key=f"cancel:{key}",
            help="Stop at the next step; finished tasks stay saved, so Run resumes",
        ):
            manager().cancel(key)
        if s.get("sessions", 1) > 1:
            c2.caption(f"{s['sessions']} sessions asked for this run; it runs once for all.")

    def charts() -> None:
        s = manager().status(key)
        if s is not None:
            draw_run({**s, "boundaries": s.get("row_steps")}, key, prefix="live")

    st.fragment(progress, run_every=POLL_S)()
    st.fragment(charts, run_every=FIGURE_POLL_S)()


def run_panel(key: str, raw: dict, n_tasks: int) -> None:
    """Everything below the config: Run button, live view, or the finished result. ``n_tasks``
    is the resolved config's (the sidebar resolved it already)."""
    m = manager()
    s = m.status(key)
    state = None if s is None else s["state"]
    if state in ACTIVE:
        live_view(key)
        return
    result = m.result(key) if state in ("done", "diverged") else None
    if result is not None:
        draw_finished(key, result, from_store=bool(s.get("cached")))
        return
    if state == "cancelled":
        st.info(f"Cancelled: {s.get('message', '')}")
    elif state == "error":
        st.error(s.get("message") or "the run failed")
    slot = st.empty()
    if slot.button("Run", type="primary", key=f"run:{key}"):
        from engine.config import ConfigError

        slot.empty()
        try:
            m.submit(raw, session_id=session_id())
        except ConfigError as err:
            st.error(str(err))
            return
        live_view(key)  # in this run: no second page run between the click and the live view
        return
    st.caption("Press Run to train this configuration; the heatmap fills in task by task.")
    # The empty matrix shows what will fill in, and has the browser load the charting code
    # while the visitor reads, so the first row appears as soon as it is computed.
    draw_run({"R": [], "n_tasks": n_tasks}, key, prefix="idle")


# -- several runs side by side (Compare; a loaded sweep can call show_comparison too) ---------


def _view_of(m: JobManager, key: str, status: dict | None) -> dict:
    """R, baseline, curves and state of one key, from the finished result when there is one."""
    if status is not None and status["state"] in ("done", "diverged"):
        result = m.result(key)
        if result is not None:
            R = result.get("R") or []
            return {
                "state": result.get("status", "done"),
                "R": R,
                "n_tasks": len(R[0]) if R else None,
                "baseline": result.get("baseline"),
                "curves": result.get("curves") or {},
                "time_s": (result.get("timing") or {}).get("total_s"),
            }
    if status is None:
        return {"state": "not run", "R": [], "n_tasks": None, "baseline": None, "curves": {}}
    return {**status, "time_s": None}


RATE_COLUMNS = (
    "ACC",
    "BWT",
    "FWT",
    "forgetting",
    "learning acc.",
    "old-task acc.",
    "new-task acc.",
)


def comparison_rows(views: list[tuple[str, str, dict]]) -> pd.DataFrame:
    """One row per run: the metrics of summarize, old/new-task accuracy, time, key."""
    rows = []
    for label, key, v in views:
        R, T = v.get("R") or [], v.get("n_tasks")
        row: dict = {"run": label, "state": v["state"], "rows of R": f"{len(R)}/{T or '?'}"}
        row.update(dict.fromkeys(RATE_COLUMNS))
        if T and len(R) == T:
            s = summarize(R, v.get("baseline"))
            old, new = figures.stability_plasticity(R)
            values = (s["acc"], s["bwt"], s["fwt"], s["forgetting"], s["learning_acc"], old, new)
            row.update(zip(RATE_COLUMNS, values, strict=True))
        row.update({"time (s)": v.get("time_s"), "key": key})
        rows.append(row)
    return pd.DataFrame(rows)


def draw_comparison(prepared: list[tuple[str, dict, str]]) -> bool:
    """Table, overlaid curves, stability–plasticity scatter and heatmaps; True while any runs."""
    m = manager()
    statuses = {key: m.status(key) for _, _, key in prepared}
    views = [(label, key, _view_of(m, key, statuses[key])) for label, _, key in prepared]
    active = [label for label, _, v in views if v["state"] in ACTIVE]
    if active:
        done = sum(v["state"] == "done" for _, _, v in views)
        st.progress(
            done / len(views),
            text=f"{done} of {len(views)} runs done · running or queued: {', '.join(active)}",
        )
    table = comparison_rows(views)
    st.dataframe(
        table,
        hide_index=True,
        key="cmp:table",
        column_config={c: st.column_config.NumberColumn(format="%.3f") for c in RATE_COLUMNS}
        | {"time (s)": st.column_config.NumberColumn(format="%.1f")},
    )
    c1, c2 = st.columns(2)
    c1.download_button(
        "Table as CSV", table.to_csv(index=False), "comparison.csv", "text/csv", key="cmp:csv"
    )
    c2.download_button(
        "Table as JSON",
        table.to_json(orient="records", indent=1),
        "comparison.json",
        "application/json",
        key="cmp:json",
    )

    left, right = st.columns(2)
    with left:
        curves = {
            label: v["curves"] for label, _, v in views if (v.get("curves") or {}).get("step")
        }
        T = max((v.get("n_tasks") or 0 for _, _, v in views), default=0)
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
        for label, _, v in views:
            R = v.get("R") or []
            if v.get("n_tasks") and len(R) == v["n_tasks"]:
                old, new = figures.stability_plasticity(R)
                points.append({"label": label, "old": old, "new": new})
        if points:
            st.plotly_chart(
                figures.figure_stability_plasticity(points, title="Stability versus plasticity"),
                key="cmp:scatter",
                config=figures.png_config("stability-plasticity"),
            )
            st.caption(
                "x: new-task accuracy = mean_i R[i,i], each task right after training on it "
                "(plasticity); y: old-task accuracy = mean_{i<T} R[T,i], the earlier tasks at the "
                "end (stability). Top right learns and remembers."
            )
    per_row = 3
    for start in range(0, len(views), per_row):
        cols = st.columns(per_row)
        for col, (label, _key, v) in zip(cols, views[start : start + per_row], strict=False):
            if v.get("n_tasks"):  # inline SVG, as on the Forgetting page
                col.markdown(
                    figures.svg_r_heatmap(v.get("R") or [], v["n_tasks"], title=label, height=320),
                    unsafe_allow_html=True,
                )
            else:
                col.caption(f"{label}: {v['state']}")
    return bool(active)


def show_comparison(entries: list[tuple[str, dict]]) -> None:
    """Run and show several configs side by side: ``entries`` are (label, raw config) pairs —
    from the Compare page's widgets, or from a sweep (engine.sweep.expand)."""
    from engine.config import ConfigError
    from engine.runner import prepare

    m = manager()
    prepared: list[tuple[str, dict, str]] = []
    seen: set[str] = set()
    for label, raw in entries:
        try:
            _, key = prepare(raw)
        except ConfigError as err:
            st.error(f"{label}: {err}")
            continue
        if key not in seen:
            seen.add(key)
            prepared.append((label, raw, key))
    if not prepared:
        return
    missing = [
        (label, raw)
        for label, raw, key in prepared
        if (m.status(key) or {}).get("state") in (None, "cancelled", "error")
    ]
    if missing and st.button(f"Run {len(missing)} missing", type="primary", key="cmp:run"):
        for label, raw in missing:
            try:
                m.submit(raw, session_id=session_id())
            except ConfigError as err:
                st.error(f"{label}: {err}")
    if any((m.status(key) or {}).get("state") in ACTIVE for _, _, key in prepared):

        def body() -> None:
            if not draw_comparison(prepared):
                st.rerun()

        st.fragment(body, run_every=POLL_S)()
    else:
        draw_comparison(prepared)
