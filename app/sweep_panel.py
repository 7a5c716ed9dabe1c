"""The Compare page's sweep view: a sweep spec's results as the store holds them.

The spec is one that ships with the project (``examples/sweeps``), an uploaded YAML file, or —
on a local server only — a path on this machine; a hosted demo takes no paths from visitors.
The page shows what :func:`engine.sweep.collect` finds: counts, the summary (mean ± sample
standard deviation over seeds of ACC, BWT and forgetting per combination of the swept
settings), a metric-versus-setting figure with error bars, and every config. A local server
also runs the missing configs through the job queue when they fit in it; larger sweeps (and
every sweep on a hosted demo) run with ``python -m engine sweep`` and show up here as they land.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from app import figures, live
from app.live import session_id, visitor_id
from app.sidebar import view_default
from app.tables import shown as as_text
from engine.config import ConfigError
from engine.jobs import ACTIVE, JobManager
from engine.sweep import SUMMARY_METRICS, SweepResult, collect, load_spec, parse_spec, shipped_specs

MAX_CONFIGS = 2000  # what one page view expands and looks up; bigger sweeps are CLI work
MAX_UPLOAD_BYTES = 256 * 1024
METRIC_NAMES = {"acc": "ACC", "bwt": "BWT", "forgetting": "forgetting"}


def summary_frame(rows: list[dict], factors: list[str]) -> pd.DataFrame:
    """The summary rows (SweepResult.summary) as a table: the factors, n, failed, then each
    metric's mean and std."""
    out = []
    for r in rows:
        row = {f: r.get(f) for f in factors} | {"seeds": r["n"], "failed": r["failed"]}
        for m in SUMMARY_METRICS:
            row[METRIC_NAMES[m]] = r[f"{m}_mean"]
            row[f"{METRIC_NAMES[m]} std"] = r[f"{m}_std"]
        out.append(row)
    return pd.DataFrame(out)


def entries_frame(result: SweepResult, statuses: dict[str, str]) -> pd.DataFrame:
    """Every distinct config: its varying settings, state, metrics and key."""
    from engine.sweep import leaves

    paths = result.varying()
    rows = []
    for e in result.entries:
        flat = leaves(e.config)
        row = {p: flat.get(p) for p in paths}
        row["state"] = statuses.get(e.key, e.status)
        row |= {METRIC_NAMES[m]: e.metrics.get(m) for m in SUMMARY_METRICS}
        row["key"] = e.key
        rows.append(row)
    return pd.DataFrame(rows)


def numeric_factors(rows: list[dict], factors: list[str]) -> list[str]:
    """Factors whose values are all numbers in the summary rows: those make an x axis with lines."""
    return [f for f in factors if all(figures.is_number(r.get(f)) for r in rows)]


def choose_spec(hosted: bool) -> tuple[str, dict, str | None] | None:
    """The spec to show: (its name, the parsed spec, the file to give the CLI or None)."""
    shipped = shipped_specs()
    sources = {"shipped": "a sweep that ships with the project", "upload": "upload a YAML file"}
    if not hosted:
        sources["path"] = "a file on this machine"
    want = view_default("source", "shipped")
    source = st.radio(
        "sweep",
        list(sources),
        index=list(sources).index(want) if want in sources else 0,
        format_func=sources.get,
        horizontal=True,
        key="cmp:source",
    )
    if source == "shipped":
        names = list(shipped)
        want = view_default("spec", names[0] if names else "")
        name = st.selectbox(
            "sweep file",
            names,
            index=names.index(want) if want in names else 0,
            format_func=lambda n: f"examples/sweeps/{n}.yaml",
            key="cmp:spec",
        )
        if name is None:
            st.info("No sweep files ship with this installation.")
            return None
        return name, load_spec(shipped[name]), f"examples/sweeps/{name}.yaml"
    if source == "upload":
        up = st.file_uploader(
            "sweep file (YAML, as for `python -m engine sweep`)",
            type=["yaml", "yml"],
            key="cmp:upload",
        )
        if up is None:
            st.info("Choose a sweep file; see docs/sweeps.md for the format.")
            return None
        data = up.getvalue()
        if len(data) > MAX_UPLOAD_BYTES:
            raise ConfigError(
                f"sweep: {up.name} is {len(data):,} bytes; a sweep file here is at most "
                f"{MAX_UPLOAD_BYTES:,}"
            )
        return up.name, parse_spec(data.decode("utf-8", errors="replace"), up.name), None
    path = st.text_input(
        "path to a sweep file",
        value=view_default("path", ""),
        key="cmp:path",
        placeholder="examples/sweeps/ewc-lambda.yaml",
    )
    if not path.strip():
        st.info("Give the path of a sweep YAML file on this machine.")
        return None
    return Path(path).name, load_spec(Path(path).expanduser()), path


def _statuses(m: JobManager, result: SweepResult) -> dict[str, str]:
    """The job state of each config that is queued or running on this server."""
    out = {}
    for e in result.entries:
        s = m.status(e.key)
        if s is not None and s["state"] in ACTIVE:
            out[e.key] = s["state"]
    return out


def run_missing(m: JobManager, result: SweepResult, statuses: dict, cli_file: str | None) -> None:
    """Offer to run the configs the store lacks, when this server's queue can take them."""
    missing = [e for e in result.entries if e.status == "pending" and e.key not in statuses]
    if not missing:
        return
    command = f"python -m engine sweep {cli_file or 'FILE.yaml'}"
    if m.hosted:
        st.info(
            f"{len(missing)} configs of this sweep are not in the store yet. On this hosted demo "
            f"sweeps are computed offline (`{command}`); the page shows what has landed."
        )
        return
    room = m.room()
    if len(missing) > room:
        st.info(
            f"{len(missing)} configs are missing, more than this server's queue has room for "
            f"({room}). Run them with `{command}` (add `--backend dask --scheduler ADDRESS` for "
            "a cluster); they appear here as they land."
        )
        return
    if st.button(f"Run {len(missing)} missing", type="primary", key="cmp:sweep-run"):
        for e in missing:
            try:
                m.submit(e.config, session_id=session_id(), kind="run", visitor=visitor_id())
            except ConfigError as err:
                st.error(f"{e.key}: {err}")
                break
        st.rerun()
    st.caption(f"Or from a terminal: `{command}`.")


def draw_sweep(name: str, result: SweepResult, statuses: dict[str, str]) -> None:
    c = result.counts()
    running = sum(v == "running" for v in statuses.values())
    queued = sum(v == "queued" for v in statuses.values())
    stored = c["cached"]
    st.markdown(
        f"**{name}** · {c['total']} configs"
        + (f" ({result.duplicates} repeats merged)" if result.duplicates else "")
        + f" · {stored} in the store · {running} running · {queued} queued · "
        f"{c['pending'] - running - queued} missing · "
        f"{sum(e.status != 'done' for e in result.entries if e.cached)} failed or diverged"
    )
    if stored == 0:
        return
    rows, factors = result.summary(), result.factors()  # once per draw: both scan every entry
    table = summary_frame(rows, factors)
    lines = numeric_factors(rows, factors)
    shown = [n for m in SUMMARY_METRICS for n in (METRIC_NAMES[m], f"{METRIC_NAMES[m]} std")]
    formats = dict.fromkeys(shown, "{:.3f}") | dict.fromkeys(lines, "{:g}")
    st.dataframe(as_text(table, formats), hide_index=True, key="cmp:sweep-summary")
    if factors:
        options = lines + [f for f in factors if f not in lines]
        want = view_default("x", options[0])
        c1, c2 = st.columns([1, 2])
        x = c1.selectbox(
            "x axis",
            options,
            index=options.index(want) if want in options else 0,
            key="cmp:sweep-x",
            help="The swept setting along the x axis; every other one gets its own line.",
        )
        metrics = c2.multiselect(
            "metrics",
            list(SUMMARY_METRICS),
            default=["acc", "bwt"],
            format_func=METRIC_NAMES.get,
            key="cmp:sweep-metrics",
        )
        if metrics:
            fig = figures.figure_sweep(
                rows,
                x,
                by=[f for f in factors if f != x],
                metrics=metrics,
                title=f"{', '.join(METRIC_NAMES[m] for m in metrics)} versus {x}: mean ± std over seeds",
                height=420,
            )
            st.plotly_chart(fig, key="cmp:sweep-fig", config=figures.png_config(f"sweep-{name}"))
    with st.expander(f"All {c['total']} configs, and downloads"):
        every = entries_frame(result, statuses)
        metrics = dict.fromkeys(METRIC_NAMES.values(), "{:.3f}")
        st.dataframe(as_text(every, metrics), hide_index=True, key="cmp:sweep-entries")
        c1, c2 = st.columns(2)
        c1.download_button(
            "summary as CSV", table.to_csv(index=False), f"sweep-{name}.csv", "text/csv"
        )
        c2.download_button(
            "sweep as JSON (R of every config)",
            json.dumps(result.to_dict(), indent=1),
            f"sweep-{name}.json",
            "application/json",
        )


def show_sweep(m: JobManager) -> dict:
    """The whole sweep view; returns the page's view parameters for the link."""
    try:
        chosen = choose_spec(m.hosted)
        if chosen is None:
            return {"mode": "file"}
        name, spec, cli_file = chosen
        result = collect(spec, store=m.store, max_configs=MAX_CONFIGS)
    except ConfigError as err:
        st.error(str(err))
        return {"mode": "file"}
    view = {"mode": "file", "source": st.session_state.get("cmp:source", "shipped")}
    if view["source"] == "shipped":
        view["spec"] = name
    elif view["source"] == "path":
        view["path"] = cli_file
    if st.session_state.get("cmp:sweep-x"):
        view["x"] = st.session_state["cmp:sweep-x"]
    statuses = _statuses(m, result)
    run_missing(m, result, statuses, cli_file)
    if statuses:

        def body() -> None:
            fresh = collect(spec, store=m.store, max_configs=MAX_CONFIGS)
            now = _statuses(m, fresh)
            draw_sweep(name, fresh, now)
            if not now:
                st.rerun()

        st.fragment(body, run_every=live.FIGURE_POLL_S)()
    else:
        draw_sweep(name, result, statuses)
    return view
