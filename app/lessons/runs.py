"""Real experiments for the lessons, through the app's job manager (the app never trains itself).

A lesson asks for a few small configs; identical requests from other sessions share one run,
and a config that ran before, anywhere, comes straight from the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd
import streamlit as st

from app import live
from app.job_panel import POLL_S, job_panel
from engine import teaching
from engine.config import ConfigError
from engine.jobs import ACTIVE
from engine.runner import Result, prepare


def job_runner(cfgs: Mapping[str, dict]) -> Callable[..., Result] | None:
    """Hand every config to the job manager and return a ``run(config)`` that reads the finished
    results; while some still train, show their progress (polled, the page redrawn when they
    are done) and return None; None too (after showing why) when a run cannot be had."""
    m = live.manager()
    sid = live.session_id()
    try:
        jobs = {
            label: m.submit(cfg, session_id=sid, visitor=live.visitor_id())
            for label, cfg in cfgs.items()
        }
    except ConfigError as err:
        st.error(str(err))
        return None
    keys = [job.key for job in jobs.values()]
    if any(job.active for job in jobs.values()):

        def progress() -> None:
            states = [(m.status(k) or {}).get("state") for k in keys]
            running = sum(state in ACTIVE for state in states)
            if not running:
                st.rerun()
            done = len(keys) - running
            st.progress(
                done / len(keys),
                text=f"Training {running} small run(s), a few seconds each ({done} of "
                f"{len(keys)} done); next time they come straight from the store…",
            )

        st.fragment(progress, run_every=POLL_S)()
        return None
    failed = [
        f"{label}: {job.state} — {job.message}"
        for label, job in jobs.items()
        if job.state != "done"
    ]
    if failed:
        st.error("Some runs did not finish: " + "; ".join(failed))
        return None

    def fetch(cfg: dict, on_event=None) -> Result:
        key = prepare(cfg)[1]
        job = m.get(key)
        hit = m.result(key)
        if hit is None:
            raise RuntimeError(f"run {key} vanished from the store")
        return Result.from_dict(hit, cached=job.cached if job is not None else True)

    return fetch


def real_runs(cfgs: Mapping[str, dict]) -> list[dict] | None:
    """One summary row per labelled config (see :func:`engine.teaching.run_table`)."""
    run = job_runner(cfgs)
    return None if run is None else teaching.run_table(cfgs, run=run)


def summary_frame(rows: list[dict], first: str = "approach") -> pd.DataFrame:
    """The table a lesson shows: accuracies and forgetting metrics per run."""
    return pd.DataFrame(
        [
            {
                first: r["label"],
                "old tasks, at the end": r["old_acc"],
                "newest task, at the end": r["new_acc"],
                "ACC (all tasks)": r["acc"],
                "BWT": r["bwt"],
                "forgetting": r["forgetting"],
                "from the cache": "yes" if r["cached"] else "no (just trained)",
            }
            for r in rows
        ]
    )


def lesson_result(kind: str, raw: dict, prefix: str, hint: str = "") -> dict | None:
    """The result of a lesson's computation: from the store at once, else submitted as a job
    (progress and Cancel show where the figures will be) and None until it has finished."""
    found: dict = {}
    job_panel(
        kind, raw, lambda r: found.update(result=r), prefix=prefix, auto=True, quiet=True, hint=hint
    )
    return found.get("result")
