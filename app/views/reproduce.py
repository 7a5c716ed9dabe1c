"""Reproduce: published tables and figures as runnable entries (engine.reproduce).

Pick an entry: its citation, protocol, deviations and sources; how many of its configs the
store holds, how many run, how many are missing, and a button that runs the missing ones as
jobs (live, cached, resumable — each config is an ordinary job of the engine). Then published
against measured, side by side: mean ± std over seeds, the difference, and per group whether the
ordering of the items agrees (Spearman's ρ); a figure of both per group, and downloads.
"""

from __future__ import annotations

import json

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from app import figures, live
from app.live import session_id, visitor_id
from app.share import VIEW_PREFIX, clip
from app.sidebar import view_default
from engine import reproduce
from engine.errors import CapExceeded, ConfigError
from engine.jobs import ACTIVE, JobManager
from engine.settings import echo

MAX_CONFIGS = 2000  # what one page view expands and looks up
PUBLISHED_COLOUR, MEASURED_COLOUR = "#9e9e9e", figures.colour(0)


# ---- pure helpers (the tests call them) ---------------------------------------------------------


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    """The comparison rows as the page's table."""
    out = []
    for r in rows:
        out.append(
            {
                "group": r["group"],
                "item": r["item"],
                "metric": r["metric"],
                "seeds": r["n"],
                "measured": r["measured_mean"],
                "measured std": r["measured_std"],
                "published": r["published"],
                "published ±": r["published_sem"],
                "published rank": r["rank"],
                "difference": r["difference"],
                "source": r["source"] + (" (approx.)" if r["approx"] else ""),
            }
        )
    return pd.DataFrame(out)


def agreement_frame(agreement: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "group": a["group"],
                "metric": a["metric"],
                "items ranked": a["n"],
                "Spearman ρ": a["rho"],
                "ordering": a["verdict"],
            }
            for a in agreement
        ]
    )


def figure_comparison(rows: list[dict], title: str = "", height: int = 400) -> go.Figure:
    """Published against measured bars per item, one panel per (group, metric); error bars are
    the source's SEM and the measured standard deviation over seeds. A rank-only published
    ordering shows as text on the measured bars."""
    panels = list(dict.fromkeys((r["group"], r["metric"]) for r in rows))
    fig = make_subplots(
        rows=1,
        cols=max(1, len(panels)),
        subplot_titles=[f"{g} · {m}" for g, m in panels],
        horizontal_spacing=0.06,
    )
    for col, (group, metric) in enumerate(panels, start=1):
        mine = [r for r in rows if (r["group"], r["metric"]) == (group, metric)]
        items = [r["item"] for r in mine]
        fig.add_trace(
            go.Bar(
                x=items,
                y=[r["published"] for r in mine],
                error_y={"type": "data", "array": [r["published_sem"] or 0 for r in mine]},
                name="published",
                marker_color=PUBLISHED_COLOUR,
                legendgroup="published",
                showlegend=col == 1,
            ),
            row=1,
            col=col,
        )
        fig.add_trace(
            go.Bar(
                x=items,
                y=[r["measured_mean"] for r in mine],
                error_y={"type": "data", "array": [r["measured_std"] or 0 for r in mine]},
                text=[f"rank {r['rank']}" if r["rank"] is not None else "" for r in mine],
                name="measured (mean ± std over seeds)",
                marker_color=MEASURED_COLOUR,
                legendgroup="measured",
                showlegend=col == 1,
            ),
            row=1,
            col=col,
        )
    fig.update_layout(
        barmode="group",
        title=title,
        height=height,
        margin={"l": 50, "r": 20, "t": 70, "b": 40},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


# ---- the page's parts ---------------------------------------------------------------------------


def link_warning(name: str, value: str, allowed: str) -> None:
    st.warning(clip(f"A setting of the link was not used — v_{name}: {echo(value)}; {allowed}"))


def choose(names: tuple[str, ...]) -> tuple[str, str]:
    """(entry name, variant) from the widgets, which start from the link's v_entry, v_variant."""
    want = view_default("entry", names[0])
    if want not in names:
        link_warning("entry", want, f"allowed: {', '.join(names)}")
    table = reproduce.table()
    name = st.selectbox(
        "entry",
        names,
        index=names.index(want) if want in names else 0,
        format_func=lambda n: table[n].TITLE,
        key="rp:entry",
    )
    options = reproduce.variants(table[name])
    want = view_default("variant", options[0])
    if want not in options:
        link_warning("variant", want, f"allowed for {name}: {', '.join(options)}")
    variant = options[0]
    if len(options) > 1:
        variant = st.radio(
            "variant",
            options,
            index=options.index(want) if want in options else 0,
            horizontal=True,
            key=f"rp:variant:{name}",
            help="embedded = the offline data the engine ships; full = the paper's data set "
            "from torchvision (needs its files in $FORGET_DATA_DIR)",
        )
    return name, variant


def sync_link(name: str, variant: str, first_variant: str) -> None:
    """Only this page's v_ settings in the link (no experiment config belongs to it)."""
    want = {f"{VIEW_PREFIX}entry": name}
    if variant != first_variant:
        want[f"{VIEW_PREFIX}variant"] = variant
    have = {k: st.query_params[k] for k in st.query_params}
    if have != want:
        st.query_params.from_dict(want)


def describe(module) -> None:
    st.markdown(module.CITATION)
    with st.expander("Protocol", expanded=False):
        st.markdown(module.PROTOCOL)
    with st.expander("Where this run differs from the paper", expanded=False):
        st.markdown(module.DEVIATIONS)
    with st.expander("Sources of the published numbers", expanded=False):
        for key, s in module.SOURCES.items():
            note = f" *{s.note}*" if s.note else ""
            st.markdown(f"- **[{key}]** {s.citation} — read from: {s.where}.{note}")


def statuses_of(m: JobManager, results) -> dict[str, str]:
    """The job state of each config that is queued or running on this server."""
    out = {}
    for result in results:
        for e in result.entries:
            s = m.status(e.key)
            if s is not None and s["state"] in ACTIVE:
                out[e.key] = s["state"]
    return out


def counts_line(results, statuses: dict[str, str]) -> str:
    total = sum(len(r.entries) for r in results)
    stored = sum(e.cached for r in results for e in r.entries)
    bad = sum(e.cached and e.status != "done" for r in results for e in r.entries)
    running = sum(v == "running" for v in statuses.values())
    queued = sum(v == "queued" for v in statuses.values())
    missing = total - stored - running - queued
    return (
        f"{total} configs · {stored} in the store · {running} running · {queued} queued · "
        f"{missing} missing · {bad} failed or diverged"
    )


def command(name: str, variant: str, first_variant: str) -> str:
    extra = "" if variant == first_variant else f" --variant {variant}"
    return f"python -m engine reproduce {name}{extra}"


def run_missing(m: JobManager, results, statuses: dict, cli: str) -> None:
    """A button that submits the configs the store lacks, when this server may take them all."""
    missing = [
        e for r in results for e in r.entries if e.status == "pending" and e.key not in statuses
    ]
    if not missing:
        return
    if m.hosted:
        try:
            for e in missing:
                m.check_caps(e.kind, e.config)
        except CapExceeded as err:
            st.info(
                f"{len(missing)} configs of this entry are not in the store yet, and they are "
                f"over this hosted demo's limits ({err}). Run them with `{cli}`; the page shows "
                "them as they land."
            )
            return
        share = m.caps.max_jobs_per_visitor
        if share is not None and len(missing) > share:
            st.info(
                f"{len(missing)} configs are missing; a visitor of this hosted demo runs at most "
                f"{share} at a time. Run them with `{cli}`; they appear here as they land."
            )
            return
    room = m.room()
    if len(missing) > room:
        st.info(
            f"{len(missing)} configs are missing, more than this server's queue has room for "
            f"({room}). Run them with `{cli}`; they appear here as they land."
        )
        return
    if st.button(f"Run {len(missing)} missing", type="primary", key="rp:run"):
        for e in missing:
            try:
                m.submit(e.config, session_id=session_id(), kind=e.kind, visitor=visitor_id())
            except ConfigError as err:
                st.error(f"{e.key}: {err}")
                break
        st.rerun()
    st.caption(f"Or from a terminal: `{cli}` (add `--jobs N`, or a Dask cluster).")


def draw(module, name: str, results, statuses: dict[str, str]) -> None:
    st.markdown(counts_line(results, statuses))
    comparison = module.compare(results)
    if not any(r["n"] for r in comparison.rows):
        st.caption("Nothing measured yet: the published numbers alone.")
    st.dataframe(
        rows_frame(comparison.rows).style.format(
            "{:.2f}",
            subset=["measured", "measured std", "published", "published ±", "difference"],
            na_rep="—",
        ),
        hide_index=True,
        key="rp:rows",
    )
    st.markdown(
        "**Does the ordering agree?** Spearman's ρ between published and measured, per group:"
    )
    st.dataframe(
        agreement_frame(comparison.agreement).style.format(
            "{:+.2f}", subset=["Spearman ρ"], na_rep="—"
        ),
        hide_index=True,
        key="rp:agreement",
    )
    fig = figure_comparison(comparison.rows, title="Published against measured")
    st.plotly_chart(fig, key="rp:fig", config=figures.png_config(f"reproduce-{name}"))
    c1, c2 = st.columns(2)
    c1.download_button(
        "comparison as CSV",
        rows_frame(comparison.rows).to_csv(index=False),
        f"reproduce-{name}.csv",
        "text/csv",
        key="rp:csv",
    )
    c2.download_button(
        "comparison and every config as JSON",
        json.dumps(
            {
                "entry": name,
                "citation": module.CITATION,
                "sources": {k: vars(s) for k, s in module.SOURCES.items()},
                "comparison": comparison.to_dict(),
                "sweeps": [r.to_dict() for r in results],
            },
            indent=1,
        ),
        f"reproduce-{name}.json",
        "application/json",
        key="rp:json",
    )


# ---- the page -----------------------------------------------------------------------------------

st.title("Reproduce")
st.markdown(
    "Published tables and figures as runnable entries: the protocol as close as the engine "
    "allows, what differs said plainly, the published numbers with their sources, and the "
    "measured ones beside them — mean ± std over seeds, the difference, and whether the "
    "ordering of methods agrees."
)
m = live.manager()
name, variant = choose(reproduce.names())
module = reproduce.entry(name)
first = reproduce.variants(module)[0]
sync_link(name, variant, first)
describe(module)
cli = command(name, variant, first)
try:
    results = reproduce.collect(module, store=m.store, variant=variant, max_configs=MAX_CONFIGS)
except ConfigError as err:
    st.error(str(err))
    st.stop()
statuses = statuses_of(m, results)
run_missing(m, results, statuses, cli)
if statuses:

    def body() -> None:
        fresh = reproduce.collect(module, store=m.store, variant=variant, max_configs=MAX_CONFIGS)
        now = statuses_of(m, fresh)
        draw(module, name, fresh, now)
        if not now:
            st.rerun()

    st.fragment(body, run_every=live.FIGURE_POLL_S)()
else:
    draw(module, name, results, statuses)
