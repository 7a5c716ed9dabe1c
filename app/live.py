"""The live run view: Run → progress, R heatmap, curves and metric cards redrawn while it trains.

State is keyed by the config key, not by the browser session: the page asks the process-wide
:class:`engine.jobs.JobManager` what it knows about the key, so navigating away and back, or a
second tab, shows the same run in progress, and a config that was run before (by anyone) opens
at once from the store.

The panel is one fragment whose elements keep their places in every state — the status line,
the button row (Run or Cancel, never both), the metric cards, the heatmap and the curves — so
pressing Run or Cancel replaces elements in place instead of stacking a new layout on the old
one. While a run is active the fragment redraws itself every POLL_S; when the run ends the page
runs again once and the fragment stops polling. Heatmap and curves are inline SVG: on screen
with the page, with no plotting code to load, so the curves grow with the heatmap.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from app import figures
from engine import kinds
from engine.errors import ConfigError
from engine.jobs import ACTIVE, FINISHED_WITH_RESULT, JobManager, get_manager
from engine.metrics import summarize
from engine.strategies import REGISTRY

POLL_S = 0.5  # progress, heatmap, curves and cards while a run is active
FIGURE_POLL_S = 1.0  # (kept for pages that poll their own figures at this pace)
JUST_FINISHED_S = 60.0  # "just finished" within this long after the end, else how long ago
METRICS = (
    ("acc", "ACC", "Final average accuracy: mean_i R[T,i]"),
    ("bwt", "BWT", "Backward transfer: mean_{i<T} (R[T,i] − R[i,i]); negative = forgetting"),
    ("fwt", "FWT", "Forward transfer: mean_{i>1} (R[i−1,i] − b_i), b = untrained accuracy"),
    ("forgetting", "Forgetting", "Mean over i<T of max_{t<T} R[t,i] − R[T,i]"),
    ("learning_acc", "Learning acc.", "mean_i R[i,i]: each task right after training it"),
)
OPENED = "_opened_from_store"  # keys this session opened from the store (counted once each)


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


def visitor_id() -> str | None:
    """The browser behind this session, for the fair share of the queue (its tabs together).

    The connection's own address, unless the server sits behind ``FORGET_PROXIES`` trusted
    reverse proxies (a container host, Spaces: set it to their number): then every connection
    comes from a proxy, and the X-Forwarded-For entry that many places from the end is the
    address the outermost trusted proxy saw. Entries before it are whatever the client wrote,
    so they are never read (a visitor cannot pose as many by writing the header). Without a
    request (a test harness), the session."""
    try:
        proxies = int(os.environ.get("FORGET_PROXIES", "0") or 0)
        forwarded = (st.context.headers or {}).get("X-Forwarded-For") if proxies > 0 else None
        if isinstance(forwarded, str):
            entries = [e.strip() for e in forwarded.split(",") if e.strip()]
            if len(entries) >= proxies:
                return entries[-proxies][:64]
        ip = st.context.ip_address
        if isinstance(ip, str) and ip:
            return ip
    except Exception:  # no request behind this run (a test harness): the session stands in
        pass
    return session_id()


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def ago(seconds: float) -> str:
    """How long ago, as a person says it."""
    if seconds < JUST_FINISHED_S:
        return "just now"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.0f} min ago"
    if minutes < 48 * 60:
        return f"{minutes / 60:.0f} h ago"
    return f"{minutes / 1440:.0f} days ago"


def meaningless(strategy: str | None) -> tuple[tuple[str, ...], str]:
    """(metrics that mean nothing for this strategy, why): joint's BWT, FWT and forgetting, since
    every row of its R is the same final model."""
    entry = REGISTRY.get(strategy or "")
    if entry is None:
        return (), ""
    params = entry[0]
    names = tuple(getattr(params, "meaningless_metrics", ()) or ())
    why = getattr(params, "meaningless_reason", "") or (
        f"{strategy} trains one model on every task at once: every row of R is that model, so "
        "this compares it with itself"
    )
    return names, why


def metric_cards(
    R: list, baseline: list | None, n_tasks: int | None, strategy: str | None = None
) -> None:
    """ACC, BWT, FWT, forgetting and learning accuracy, equal to engine.metrics.summarize;
    "—" while R is incomplete, and for the metrics the strategy makes meaningless (with why)."""
    done = n_tasks is not None and len(R) == n_tasks and n_tasks > 0
    values = summarize(R, baseline) if done else {}
    skip, why = meaningless(strategy)
    for col, (name, label, help_text) in zip(st.columns(len(METRICS)), METRICS, strict=True):
        if name in skip:
            col.metric(label, "—", help=f"Not meaningful here. {why}")
        else:
            col.metric(label, fmt(values.get(name)), help=help_text)


def r_table(R: list, n_tasks: int) -> pd.DataFrame:
    labels = [f"task {i + 1}" for i in range(n_tasks)]
    m = figures.r_matrix(R, n_tasks)
    return pd.DataFrame(m, index=[f"after task {t + 1}" for t in range(n_tasks)], columns=labels)


_FIGURES: OrderedDict[str, tuple[tuple, Any]] = OrderedDict()
_FIGURES_LOCK = threading.Lock()


def cached_figure(name: str, signature: tuple, build: Callable[[], Any]) -> Any:
    """The figure built for ``signature`` last time, else a new one: the live view redraws twice
    a second for every viewer while the data changes less often."""
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


def draw_run(view: dict, key: str, prefix: str = "run", strategy: str | None = None) -> None:
    """Metric cards, heatmap and curves of a run snapshot or finished result (the same
    elements in every state, so a redraw replaces them in place). ``prefix`` is no longer
    needed (nothing here has a widget key) and is accepted for the pages that pass it."""
    R = view.get("R") or []
    n_tasks = view.get("n_tasks") or (len(R) if R else None)
    metric_cards(R, view.get("baseline"), n_tasks, strategy)
    curves = view.get("curves") or {}
    steps = curves.get("step") or []
    boundaries = view.get("boundaries")
    signature = (
        len(steps),
        steps[-1] if steps else None,
        tuple(curves["acc"][-1]) if steps else (),
        tuple(boundaries or ()),
        n_tasks,
    )
    curves_svg = cached_figure(
        f"curves:{key}:{boundaries is None}",
        signature,
        lambda: figures.svg_task_curves(
            curves,
            boundaries=boundaries,
            title="Accuracy of every task during training",
            n_tasks=n_tasks,
        ),
    )
    heatmap = figures.svg_r_heatmap(R, n_tasks, title="Accuracy matrix R[t,i]") if n_tasks else ""
    # R and the curves as inline SVG, not plotly: on screen with the page instead of after
    # plotly's 4.7 MB of JavaScript has loaded (st.html would strip SVG; markdown keeps it).
    # One element for both, so a new row of R and its curve points appear in the same redraw.
    st.markdown(
        '<div style="display:flex;flex-wrap:wrap;gap:2rem;align-items:flex-start">'
        f'<div style="flex:1 1 420px;min-width:0">{heatmap}</div>'
        f'<div style="flex:1 1 420px;min-width:0">{curves_svg}</div></div>',
        unsafe_allow_html=True,
    )


def progress_text(s: dict) -> str:
    T = s.get("n_tasks") or 0
    rows = len(s.get("R") or [])
    if s["state"] == "queued":
        return "Queued: waiting for a free worker…"
    if s.get("waiting_for"):
        left = s.get("waiting_expires_in")
        lease = f" (its lease expires in {left:.0f} s)" if left else ""
        return (
            f"Waiting: another process is computing this configuration{lease}; its result will "
            "be shared…"
        )
    if s.get("phase") is None:
        return "Starting: loading the data and building the model…"
    n_phases = s.get("n_phases") or T
    return (
        f"Training phase {s['phase'] + 1} of {n_phases} · step {s.get('step', 0)}/"
        f"{s.get('total', 0)} · {rows} of {T} rows of R"
    )


def progress_fraction(s: dict) -> float:
    total = s.get("total_steps") or 0
    return min(1.0, max(0.0, s.get("global_step", 0) / total)) if total else 0.0


def done_line(key: str, result: dict, s: dict | None) -> str:
    """The status line of a finished run: when it finished, or that it came from the store."""
    T = len(result.get("R") or [])
    timing = result.get("timing") or {}
    if s is None or s.get("cached"):
        source = "opened from the store"
    else:
        finished = s.get("finished_at") or time.time()
        age = time.time() - finished
        source = "just finished" if age < JUST_FINISHED_S else f"finished {ago(age)}"
    return (
        f"Done: {T} of {T} tasks · trained in {timing.get('total_s', 0):.1f} s on "
        f"{result.get('device', '?')} · {source} · key {key}"
    )


def downloads(key: str, result: dict) -> None:
    R = result.get("R") or []
    if not R:
        return
    table = r_table(R, len(R[0]))
    with st.expander("R as a table, and downloads"):
        st.dataframe(table.style.format("{:.3f}"), key=f"rtable:{key}")
        c1, c2, c3, c4 = st.columns(4)
        c1.download_button(
            "R as CSV", table.to_csv(), f"R-{key}.csv", "text/csv", key=f"dl-csv:{key}"
        )
        c2.download_button(
            "Whole result as JSON",
            json.dumps(result, indent=1),
            f"result-{key}.json",
            "application/json",
            key=f"dl-json:{key}",
        )
        c3.download_button(
            "R heatmap as SVG",
            figures.svg_r_heatmap(R, len(R[0]), title="Accuracy matrix R[t,i]"),
            f"R-heatmap-{key}.svg",
            "image/svg+xml",
            key=f"dl-svg:{key}",
        )
        c4.download_button(
            "Curves as SVG",
            figures.svg_task_curves(result.get("curves") or {}, title="Accuracy during training"),
            f"curves-{key}.svg",
            "image/svg+xml",
            key=f"dl-curves:{key}",
        )


def open_from_store(m: JobManager, key: str, raw: dict, kind: str = "run") -> None:
    """Count a result this session opens from the store, once per session and key: through
    the manager, as any request for a computation is (its "opened from the store" counter).
    Only when ``raw`` still makes ``key`` and the result is there, so opening never computes."""
    opened = st.session_state.setdefault(OPENED, set())
    if key in opened:
        return
    opened.add(key)
    try:
        if kinds.prepare(kind, raw)[1] != key or not m.store.has_result(key):
            return
        m.submit(raw, session_id=session_id(), kind=kind, visitor=visitor_id())
    except ConfigError:  # a config or kind the engine no longer takes: opened, not counted
        pass


def run_panel(key: str, raw: dict, n_tasks: int, strategy: str | None = None) -> None:
    """Everything below the config, as one fragment: the Run button and, once pressed, the live
    view in the same places; or the finished result. ``n_tasks`` is the resolved config's."""
    m = manager()
    sid = session_id()
    first = m.status(key)
    polling = first is not None and first["state"] in ACTIVE
    if first is not None and first["state"] in FINISHED_WITH_RESULT and first.get("cached"):
        open_from_store(m, key, raw)
    error_key, cancelling_key = f"run-error:{key}", f"cancelling:{key}"
    rows_key = f"rows:{key}"  # the rows of R last drawn, by this session

    # The button's callback runs before the next run of the fragment, so that run already draws
    # what the click led to. Run, Cancel and "Cancelling…" are one button (one key, so one
    # element): a new label replaces the old in place, where two buttons would both show while
    # the page redraws.
    def act(action: str) -> None:
        if action == "cancel":
            if m.cancel(key, sid):
                st.session_state[cancelling_key] = True
            return
        try:
            m.submit(raw, session_id=sid, kind="run", visitor=visitor_id())
        except ConfigError as err:
            st.session_state[error_key] = str(err)

    def button(where, label: str, action: str, **kwargs) -> None:
        where.button(label, key=f"action:{key}", on_click=act, args=(action,), **kwargs)

    def panel() -> None:
        s = m.status(key)
        state = None if s is None else s["state"]
        if (state in ACTIVE) != polling:
            st.rerun()  # the run started or ended: the page declares the fragment anew
        status = st.empty()
        buttons, note = st.columns([1, 5], vertical_alignment="center")
        result = m.result(key) if state in FINISHED_WITH_RESULT else None
        if state in ACTIVE:
            status.progress(progress_fraction(s), text=progress_text(s))
            if st.session_state.get(cancelling_key):
                button(buttons, "Cancelling…", "cancel", disabled=True)
                note.caption("Stopping at the next step; finished tasks stay saved.")
            elif m.can_cancel(key, sid):
                button(
                    buttons,
                    "Cancel",
                    "cancel",
                    help="Stop at the next step; finished tasks stay saved, so Run resumes",
                )
                if s.get("sessions", 1) > 1:
                    note.caption(f"{s['sessions']} sessions asked for this run; it runs once.")
            else:
                note.caption(
                    "Started in another session: it runs once for everyone who asks, and only "
                    "the session that started it can cancel it."
                )
            view = {**s, "boundaries": s.get("row_steps")}
            if not view.get("R") and st.session_state.get(rows_key):
                # A resumed run reports its checkpoint's rows when it starts: until then, the
                # rows on screen stay rather than blinking out.
                view["R"] = st.session_state[rows_key]
        elif result is not None:
            st.session_state.pop(cancelling_key, None)
            if result.get("status") == "diverged":
                status.warning(
                    f"Diverged: {result.get('message', '')} — rows of R before that are shown."
                )
            else:
                status.success(done_line(key, result, s))
            R = result.get("R") or []
            view = {
                "R": R,
                "n_tasks": len(R[0]) if R else n_tasks,
                "baseline": result.get("baseline"),
                "curves": result.get("curves") or {},
            }
        else:
            st.session_state.pop(cancelling_key, None)
            button(buttons, "Run", "run", type="primary")
            refused = st.session_state.pop(error_key, None)
            if refused:
                status.error(refused)
            elif state == "cancelled":
                status.info(f"Cancelled: {s.get('message', '')}")
            elif state == "error":
                status.error(s.get("message") or "the run failed")
            else:
                status.caption(
                    "Press Run to train this configuration; the heatmap fills in task by task."
                )
            # What a cancelled or failed run finished stays on screen; otherwise the empty
            # matrix shows what will fill in.
            view = {**(s or {}), "n_tasks": (s or {}).get("n_tasks") or n_tasks}
            view["boundaries"] = (s or {}).get("row_steps")
        st.session_state[rows_key] = view.get("R") or []
        draw_run(view, key, prefix="panel", strategy=strategy)
        if result is not None:
            downloads(key, result)

    st.fragment(panel, run_every=POLL_S if polling else None)()
