"""Compare: several strategies, or one setting swept over values, on the sidebar's base config;
or a sweep file's results from the store (app/sweep_panel.py)."""

from __future__ import annotations

import streamlit as st

from app import comparison, live, sweep_panel
from app.references import ref_link
from app.share import clip
from app.sidebar import SECTIONS, experiment_sidebar, sync_query, unwrap, view_default
from engine.config import ConfigError, apply_overrides, field_names
from engine.settings import echo
from engine.strategies import REGISTRY, STRATEGY_NAMES

m = live.manager()
sel = experiment_sidebar(hosted_caps=m.caps if m.hosted else None, sync_url=False)

st.title("Compare")
st.markdown(
    "Run several configurations on the sidebar's base settings and see them side by side: "
    "the metrics in one table, accuracy during training, the stability–plasticity trade-off "
    f"({ref_link('course')}) and every accuracy matrix."
)
sel.require()


def strategy_entries(base: dict, names: list[str]) -> list[tuple[str, dict]]:
    """The base config once per strategy; the sidebar's strategy keeps its hyperparameters."""
    out = []
    for name in names:
        strategy = base["strategy"] if base["strategy"]["name"] == name else {"name": name}
        out.append((name, {**base, "strategy": strategy}))
    return out


def sweep_entries(base: dict, path: str, values: list[str]) -> list[tuple[str, dict]]:
    """The base config once per value of one setting (a name or dotted path, as in --set)."""
    bare = path.rsplit(".", 1)[-1]
    return [(f"{bare}={v}", apply_overrides(base, [f"{path}={v}"])) for v in values]


def sweepable(strategy: str) -> list[str]:
    """Numeric settings a sweep can vary: training, model and data fields, then the strategy's."""
    names = field_names(strategy)
    paths = sorted(
        {p for p in names.values() if p.split(".")[0] in ("train", "model", "data", "strategy")}
    )
    numeric = []
    for p in paths:
        if p == "strategy.name":
            continue
        section, _, name = p.partition(".")
        model = SECTIONS.get(section) or REGISTRY[strategy][0]
        if unwrap(model.model_fields[name].annotation)[0] in (int, float):
            numeric.append(p)
    first = [
        "train.lr",
        "train.epochs",
        "train.temperature",
        "train.seed",
        "model.width",
        "model.depth",
    ]
    strategy_fields = [p for p in numeric if p.startswith("strategy.")]
    return (
        strategy_fields
        + [p for p in first if p in numeric]
        + [p for p in numeric if p not in first and p not in strategy_fields]
    )


def link_warning(name: str, value: str, allowed: str) -> None:
    """One line about a view setting of the link that was not used, the value cut short."""
    st.warning(clip(f"A setting of the link was not used — v_{name}: {echo(value)}; {allowed}"))


modes = ("strategies", "sweep", "file")
asked_mode = view_default("mode", "strategies")
if asked_mode not in modes:
    link_warning("mode", asked_mode, f"allowed: {', '.join(modes)}")
mode = st.radio(
    "compare",
    modes,
    index=modes.index(asked_mode) if asked_mode in modes else 0,
    format_func={
        "strategies": "several strategies",
        "sweep": "one setting over several values",
        "file": "a sweep file",
    }.get,
    horizontal=True,
    key="cmp:mode",
)
base = sel.raw
scenario = sel.cfg.scenario
if mode == "file":  # the sweep brings its own configs: the sidebar's base is not used
    st.caption(
        "A sweep file (as for `python -m engine sweep`) lists its own configs; the sidebar's "
        "settings do not apply to it."
    )
    sync_query(base, sweep_panel.show_sweep(m))
    st.stop()
if mode == "strategies":
    usable = [n for n in STRATEGY_NAMES if scenario in REGISTRY[n][0].scenarios]
    wanted = view_default(
        "strategies", list(dict.fromkeys([base["strategy"]["name"], "naive", "joint"]))
    )
    for name in [n for n in wanted if n not in usable]:
        why = "not a strategy" if name not in REGISTRY else f"not for the {scenario} scenario"
        link_warning("strategies", name, f"{why}; allowed here: {', '.join(usable)}")
    names = st.multiselect(
        "strategies",
        usable,
        default=[n for n in wanted if n in usable],
        key="cmp:strategies",
        help="The sidebar's strategy runs with the hyperparameters set there; the others with their defaults.",
    )
    entries = strategy_entries(base, names)
    view = {"mode": mode, "strategies": ",".join(names)}
else:
    options = sweepable(base["strategy"]["name"])
    want = view_default("field", "train.lr")
    if want not in options:
        link_warning("field", want, "not a numeric setting of this strategy's config")
    c1, c2 = st.columns([1, 2])
    path = c1.selectbox(
        "setting", options, index=options.index(want) if want in options else 0, key="cmp:field"
    )
    text = c2.text_input(
        "values (comma-separated)",
        value=view_default("values", "1e-4,1e-3,1e-2"),
        key="cmp:values",
        help="Each value is one run, e.g. 1,10,100,1000 for train.temperature.",
    )
    values = [v.strip() for v in text.split(",") if v.strip()]
    if len(values) > comparison.MAX_RUNS:
        st.warning(
            f"values: {len(values)} given; the first {comparison.MAX_RUNS} are compared "
            "(a sweep file takes more)."
        )
        values = values[: comparison.MAX_RUNS]
    view = {"mode": mode, "field": path, "values": ",".join(values)}
    try:
        entries = sweep_entries(base, path, values)
    except ConfigError as err:
        st.error(str(err))
        entries = []
sync_query(base, view)
if not entries:
    st.info("Choose at least one strategy or value.")
    st.stop()
comparison.show_comparison(entries)
