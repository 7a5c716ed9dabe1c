"""Any kind of computation on a page: the stored result at once, or Run → progress → result.

A page builds the raw spec of a kind from its widgets and calls :func:`job_panel`; the panel
asks the process-wide job manager (engine.jobs) about the spec's key, so

* a computation that anyone ran before opens instantly from the store;
* one that is running (started here, in another tab or by another visitor) shows its progress,
  polled by a fragment, with Cancel for the session that started it;
* otherwise a Run button submits it — the engine checks the hosted caps on the kind's cost
  estimate and refuses with one line naming the cap — and the progress takes the button's place.

The page never computes: it draws the result dict that comes back.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app import live
from engine import kinds
from engine.errors import ConfigError
from engine.jobs import ACTIVE, FINISHED_WITH_RESULT
from engine.report import html_report

POLL_S = 0.5


def prepare(kind: str, raw: dict) -> tuple[str | None, str | None]:
    """(key, error line) of a raw spec; the error names the field."""
    try:
        return kinds.prepare(kind, raw)[1], None
    except ConfigError as err:
        return None, str(err)


def progress_line(s: dict) -> str:
    if s["state"] == "queued":
        return "Queued: waiting for a free worker…"
    if s.get("waiting_for"):
        left = s.get("waiting_expires_in")
        when = f" (its lease expires in {left:.0f} s)" if left else ""
        return f"Waiting: another process is computing this{when}; its result will be shared…"
    total = s.get("total_steps") or 0
    stage = s.get("stage") or "starting"
    if not total:
        return f"{stage.capitalize()}: loading the data and building the model…"
    return f"{stage.capitalize()} · step {s.get('global_step', 0):,} of {total:,}"


def draw_progress(s: dict, key: str, prefix: str) -> None:
    total = s.get("total_steps") or 0
    frac = min(1.0, (s.get("global_step") or 0) / total) if total else 0.0
    st.progress(frac, text=progress_line(s))
    m = live.manager()
    if m.can_cancel(key, live.session_id()):
        if st.button(
            "Cancel",
            key=f"{prefix}:cancel:{key}",
            help="Stop at the next step; what finished is kept, so Run resumes from there",
        ):
            m.cancel(key, live.session_id())
    elif s.get("sessions", 1) > 1 or m.hosted:
        st.caption("Started by another visitor; its result will show here for you too.")


def follow(key: str, prefix: str) -> None:
    """Redraw the progress every POLL_S while the job is active; rerun the page when it ends."""

    def body() -> None:
        s = live.manager().status(key)
        if s is None or s["state"] not in ACTIVE:
            st.rerun()
        draw_progress(s, key, prefix)

    st.fragment(body, run_every=POLL_S)()


def finished_line(result: dict, from_store: bool) -> str:
    timing = result.get("timing") or {}
    where = "opened from the store" if from_store else "just computed"
    return (
        f"Done in {timing.get('total_s', 0):.1f} s on {result.get('device', '?')} · {where} · "
        f"key `{result.get('key')}`"
    )


def report_button(result: dict, prefix: str) -> None:
    """One self-contained HTML file of the result (figures, numbers, the reproducing command)."""
    try:
        html = html_report(result)  # rendered when the button is pressed, not on every rerun
    except ConfigError:  # an old or partial result the report cannot read: no button
        return
    st.download_button(
        "Download report (HTML)",
        html,
        file_name=f"report-{result.get('key')}.html",
        mime="text/html",
        key=f"{prefix}:report:{result.get('key')}",
        help="One file with the figures, the numbers, the config and the command that "
        "reproduces it; opens offline in any browser",
    )


def job_panel(
    kind: str,
    raw: dict,
    draw: Callable[[dict], None],
    prefix: str,
    label: str = "Run",
    hint: str = "",
    auto: bool = False,
    quiet: bool = False,
) -> dict | None:
    """The finished result of ``(kind, raw)`` drawn by ``draw``; else its progress, or a Run
    button (``auto``: submit without waiting for a click — small closed-form kinds). Returns
    the result when there is one. ``quiet``: no status line or report button (lessons)."""
    key, error = prepare(kind, raw)
    if error:
        st.error(error)
        return None
    m = live.manager()
    s = m.status(key)
    state = None if s is None else s["state"]
    if state in ACTIVE:
        follow(key, prefix)
        return None
    result = m.result(key) if state in FINISHED_WITH_RESULT else None
    if result is not None:
        if result.get("status") not in (None, "done"):
            st.warning(f"Stopped ({result['status']}): {result.get('message', '')}")
        if not quiet:
            st.caption(finished_line(result, from_store=bool(s.get("cached"))))
        draw(result)
        if not quiet:
            report_button(result, prefix)
        return result
    if state == "cancelled":
        st.info(f"Cancelled: {s.get('message', '')}")
    elif state == "error":
        st.error(s.get("message") or "the computation failed")
    slot = st.empty()
    if auto or slot.button(label, type="primary", key=f"{prefix}:run:{key}"):
        slot.empty()
        try:
            job = m.submit(raw, session_id=live.session_id(), kind=kind, visitor=live.visitor_id())
        except ConfigError as err:
            st.error(str(err))
            return None
        if not job.active:  # it was in the store after all (another process just stored it)
            st.rerun()
        if auto:  # a small job: wait a moment in this run rather than flash a progress bar
            job.wait(2.0)
            if not job.active:
                st.rerun()
        follow(key, prefix)
        return None
    if hint:
        st.caption(hint)
    return None


def stored(kind: str, raw: dict) -> dict | None:
    """The stored result of ``(kind, raw)`` if there is one (never computes)."""
    key, error = prepare(kind, raw)
    return None if error else live.manager().result(key)
