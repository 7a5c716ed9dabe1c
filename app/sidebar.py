"""The experiment sidebar, the same on every experiment page, generated from the config models.

Every widget comes from a pydantic field: its type picks the widget (int/float → number input
bounded by ge/le/gt/lt, bool → checkbox, Literal → selectbox, str → text input), its
description is the tooltip. Strategy hyperparameters come from the chosen strategy's ``Params``
model the same way, so a new strategy module shows up here with no app change.

Fields that default to ``None`` ("the benchmark's preset") show the preset of the chosen
benchmark, and go into the config as ``None`` while they equal it, so the link and the cache key
stay those of "the preset". Their widgets are keyed by benchmark, so switching benchmark shows
that benchmark's presets.

The chosen values persist in ``st.session_state["_config"]`` (plain state, which Streamlit does
not drop on pages without the sidebar), and the first run of a session reads them from the URL
(:func:`load_from_url`).
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

import streamlit as st
from pydantic.fields import FieldInfo

from app import share
from app.references import link_mentions
from engine.config import (
    BENCHMARKS,
    OWN_TEST_SPLIT,
    SCENARIOS,
    ConfigError,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    is_folder,
    preset_of,
)
from engine.runner import prepare
from engine.settings import MAX_TEXT
from engine.strategies import REGISTRY, STRATEGY_NAMES

STATE = "_config"
URL_ERROR = "_url_error"
SHOWN_REFUSALS = 5  # lines about a link's refused settings; the rest are counted
SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
SCENARIO_NAMES = {
    "task": "task-incremental (a head per task)",
    "domain": "domain-incremental (one shared head)",
    "class": "class-incremental (one growing head)",
}
# Where each field goes; the rest of a section goes into its "more" expander.
MAIN_TRAIN = ("epochs", "lr", "batch_size", "seed")
SHOWN_IF = {
    # field path → (field it depends on, values for which it is shown)
    "data.synthetic_n": ("data.benchmark", ("synthetic",)),
    "data.synthetic_shape": ("data.benchmark", ("synthetic",)),
    "data.synthetic_classes": ("data.benchmark", ("synthetic",)),
    "data.synthetic_noise": ("data.benchmark", ("synthetic",)),
    "data.test_fraction": ("data.benchmark", OWN_TEST_SPLIT),  # and folder:PATH (see show)
    "model.width_factor": (
        "model.arch",
        ("vgg11", "vgg13", "vgg16", "vgg19", "resnet18", "resnet34"),
    ),
    "model.skips": ("model.arch", ("resnet18", "resnet34")),
    "model.batch_norm": (
        "model.arch",
        ("cnn", "vgg11", "vgg13", "vgg16", "vgg19", "resnet18", "resnet34"),
    ),
    "model.depth": ("model.arch", ("mlp", "cnn")),
    "model.width": ("model.arch", ("mlp", "cnn")),
    "train.momentum": ("train.optimizer", ("sgd",)),
}
LABELS = {
    "lr": "learning rate",
    "n_tasks": "number of tasks",
    "batch_size": "batch size",
    "evals_per_task": "evaluations per task",
    "order_seed": "class-order seed",
    "test_fraction": "test fraction",
    "arch": "architecture",
}


@dataclass
class Selection:
    """What the sidebar chose: the raw config, and its resolved form and key when valid."""

    raw: dict
    cfg: ExperimentConfig | None
    key: str | None
    error: str | None

    def require(self) -> None:
        """Show the config error as one line and stop the page when the config is invalid."""
        if self.error:
            st.error(self.error)
            st.stop()


# -- field introspection -----------------------------------------------------------------------


def unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True  # noqa: UP007
    return annotation, False


def bounds(field: FieldInfo) -> dict[str, float]:
    out: dict[str, float] = {}
    for meta in field.metadata:
        for attr in ("ge", "gt", "le", "lt"):
            if getattr(meta, attr, None) is not None:
                out[attr] = getattr(meta, attr)
    return out


def label_of(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def is_lr_like(name: str, field: FieldInfo) -> bool:
    return (
        name == "lr"
        or name.endswith("_lr")
        or "learning rate" in (field.description or "").lower()[:40]
    )


def float_step(value: float | None) -> float:
    """A step one decade below the value, so ± moves by ~10 % at any scale (1e-3 → 1e-4)."""
    ref = abs(value) if value else 1.0
    return 10.0 ** (math.floor(math.log10(ref)) - 1)


def field_widget(
    container,
    path: str,
    field: FieldInfo,
    value: Any,
    key: str,
    *,
    preset: Any = None,
    cap: float | None = None,
) -> Any:
    """One widget for one pydantic field; returns its value (None back where None = preset)."""
    name = path.rsplit(".", 1)[-1]
    kind, nullable = unwrap(field.annotation)
    label = label_of(name)
    help_text = link_mentions(field.description) if field.description else None
    shown = preset if (value is None and preset is not None) else value
    if typing.get_origin(kind) is Literal:
        options = list(typing.get_args(kind))
        index = options.index(shown) if shown in options else 0
        out = container.selectbox(label, options, index=index, key=key, help=help_text)
    elif kind is bool:
        out = container.checkbox(label, value=bool(shown), key=key, help=help_text)
    elif kind in (int, float):
        b = bounds(field)
        cast = int if kind is int else float
        lo = b.get("ge", b.get("gt"))
        hi = b.get("le", b.get("lt"))
        if kind is int:
            lo = None if lo is None else int(lo) + (1 if "gt" in b else 0)
            hi = None if hi is None else int(hi) - (1 if "lt" in b else 0)
        else:
            lo = (
                None
                if lo is None
                else (math.nextafter(float(lo), math.inf) if "gt" in b else float(lo))
            )
            hi = (
                None
                if hi is None
                else (math.nextafter(float(hi), -math.inf) if "lt" in b else float(hi))
            )
        if cap is not None:
            hi = cast(cap) if hi is None else min(hi, cast(cap))
        start = None if shown is None else cast(shown)
        if start is not None and lo is not None and start < lo:
            start = lo
        if start is not None and hi is not None and start > hi:
            start = hi
        kwargs: dict[str, Any] = {
            "min_value": lo,
            "max_value": hi,
            "value": start,
            "key": key,
            "help": help_text,
        }
        if kind is int:
            kwargs["step"] = 1
        else:
            kwargs["step"] = float_step(start if start is not None else field.default)
            kwargs["format"] = "%g"
        if start is None:  # None has a meaning of its own ("empty = natural order", …)
            meaning = (help_text or "").partition("empty = ")[2]
            kwargs["placeholder"] = f"empty ({meaning})" if meaning else "empty"
        out = container.number_input(label, **kwargs)
    else:  # str (and anything else: pydantic validates the text)
        out = container.text_input(
            label, value="" if shown is None else share.format_value(shown), key=key, help=help_text
        )
        if nullable and out.strip() == "":
            out = None
    if preset is not None and out == preset:
        return None
    return out


# -- the sidebar -----------------------------------------------------------------------------


def _get(raw: dict, path: str) -> Any:
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _has(raw: dict, path: str) -> bool:
    section, _, name = path.partition(".")
    return isinstance(raw.get(section), dict) and name in raw[section]


def load_from_url() -> None:
    """On a session's first run, take the config from the URL: every setting is checked on its
    own (and, hosted, against the caps), so a bad one is refused with its field named while the
    link's other settings stay (share.read_link)."""
    if STATE in st.session_state:
        return
    from app.live import manager

    m = manager()
    check = (lambda cfg: m.check_caps(cfg)) if m.hosted else None
    raw, refused = share.read_link(st.query_params, check=check)
    st.session_state[STATE] = raw
    if refused:
        st.session_state[URL_ERROR] = refused


def link_refusals(refused: list[str] | None) -> list[str]:
    """The lines shown about a link's refused settings: one per setting, the field named."""
    if not refused:
        return []
    lines = [f"A setting of the link was not used — {r}" for r in refused[:SHOWN_REFUSALS]]
    if len(refused) > SHOWN_REFUSALS:
        lines.append(
            f"… and {len(refused) - SHOWN_REFUSALS} more settings of the link were not used"
        )
    return lines


def current_raw() -> dict:
    """The config the sidebar last produced (or the URL's, before it first ran)."""
    load_from_url()
    return st.session_state[STATE]


def experiment_sidebar(hosted_caps=None, sync_url: bool = True) -> Selection:
    """Draw the sidebar and return the chosen config (validated and resolved when possible).

    ``hosted_caps`` (an :class:`engine.caps.Caps`) narrows the benchmark list; the cost caps
    are the engine's (checked on submit, and on a link as it opens).
    """
    load_from_url()
    old = st.session_state[STATE]
    sb = st.sidebar
    sb.header("Experiment")
    for line in link_refusals(st.session_state.pop(URL_ERROR, None)):
        st.error(line)

    def value(path: str) -> Any:
        if _has(old, path):
            return _get(old, path)
        section, _, name = path.partition(".")
        return SECTIONS[section].model_fields[name].default

    allowed = BENCHMARKS
    if hosted_caps is not None and hosted_caps.benchmarks is not None:
        allowed = tuple(b for b in BENCHMARKS if b in hosted_caps.benchmarks)
    bench_now = value("data.benchmark")
    if hosted_caps is None and is_folder(bench_now):
        allowed = (*allowed, bench_now)  # local mode: the link's own images are a choice too
    benchmark = sb.selectbox(
        "benchmark",
        allowed,
        index=allowed.index(bench_now) if bench_now in allowed else 0,
        key="cfg:data.benchmark",
        help=DataConfig.model_fields["benchmark"].description,
    )
    scen_now = old.get("scenario", ExperimentConfig.model_fields["scenario"].default)
    scenario = sb.selectbox(
        "scenario",
        SCENARIOS,
        index=SCENARIOS.index(scen_now) if scen_now in SCENARIOS else 0,
        format_func=SCENARIO_NAMES.get,
        key="cfg:scenario",
        help=ExperimentConfig.model_fields["scenario"].description,
    )
    try:
        preset = preset_of(benchmark)  # a folder's reads its files (memoized)
    except ConfigError as err:  # a folder that went away or went bad since the link was read
        st.error(str(err))
        benchmark, preset = allowed[0], preset_of(allowed[0])
    chosen: dict[str, Any] = {"data.benchmark": benchmark}

    def effective(path: str) -> Any:
        """The value a field has now: chosen above, else the preset, else the stored value."""
        section, _, name = path.partition(".")
        if chosen.get(path) is not None:
            return chosen[path]
        return preset.get(section, {}).get(name, value(path))

    def show(path: str) -> bool:
        if path == "data.test_fraction" and is_folder(effective("data.benchmark")):
            return True
        dep = SHOWN_IF.get(path)
        return dep is None or effective(dep[0]) in dep[1]

    def widget(container, path: str, cap: float | None = None) -> None:
        section, _, name = path.partition(".")
        field = SECTIONS[section].model_fields[name]
        p = preset.get(section, {}).get(name)
        # Preset fields are keyed by benchmark: a new benchmark shows its own presets.
        key = f"cfg:{path}@{benchmark}" if p is not None else f"cfg:{path}"
        chosen[path] = field_widget(container, path, field, value(path), key, preset=p, cap=cap)

    # strategy and its hyperparameters
    old_strategy = dict(old.get("strategy") or {})
    name_now = old_strategy.get("name", share.DEFAULT_STRATEGY)
    strategy = sb.selectbox(
        "strategy",
        STRATEGY_NAMES,
        index=STRATEGY_NAMES.index(name_now) if name_now in STRATEGY_NAMES else 0,
        format_func=_strategy_label,
        key="cfg:strategy.name",
        help="How to train on one task after another; the hyperparameters below are the strategy's own.",
    )
    params_model = REGISTRY[strategy][0]
    note = (getattr(params_model, "notes", None) or {}).get(scenario)
    if note:  # where the user picks the strategy: what to expect of it in this scenario
        sb.info(link_mentions(note), icon=":material/info:")
    if params_model.summary:
        sb.caption(link_mentions(params_model.summary))
    strategy_raw: dict[str, Any] = {"name": strategy}
    for fname, field in params_model.model_fields.items():
        if fname == "name":
            continue
        current = old_strategy.get(fname, field.default) if name_now == strategy else field.default
        strategy_raw[fname] = field_widget(
            sb, f"strategy.{fname}", field, current, key=f"cfg:strategy.{strategy}.{fname}"
        )

    sb.subheader("Training")
    for name in MAIN_TRAIN:
        widget(sb, f"train.{name}")
    with sb.expander("Model"):
        for name in ModelConfig.model_fields:
            if show(f"model.{name}"):
                widget(st, f"model.{name}")
    with sb.expander("More training settings"):
        for name in TrainConfig.model_fields:
            if name not in MAIN_TRAIN and show(f"train.{name}"):
                widget(st, f"train.{name}")
    with sb.expander("Data and tasks"):
        for name in DataConfig.model_fields:
            if name != "benchmark" and show(f"data.{name}"):
                widget(st, f"data.{name}")

    raw: dict[str, Any] = {
        "scenario": scenario,
        "data": {},
        "model": {},
        "train": {},
        "strategy": strategy_raw,
    }
    for section, model in SECTIONS.items():
        for name in model.model_fields:
            path = f"{section}.{name}"
            raw[section][name] = chosen[path] if path in chosen else value(path)
    st.session_state[STATE] = raw
    if sync_url:
        sync_query(raw)
    try:
        cfg, key = prepare(raw)
    except ConfigError as err:
        return Selection(raw, None, None, str(err))
    return Selection(raw, cfg, key, None)


def _strategy_label(name: str) -> str:
    scenarios = REGISTRY[name][0].scenarios
    return name if len(scenarios) == 3 else f"{name} ({'/'.join(scenarios)} only)"


BOUND = ("v_tab",)  # query parameters a widget keeps itself (st.tabs(bind="query-params"))


def sync_query(raw: dict, view: dict | None = None) -> None:
    """Put the config (and the page's view parameters) in the URL, so the link reproduces it.
    Parameters bound to a widget are the widget's to set: touching them is an error."""
    want = share.config_to_query(raw)
    want.update({f"{share.VIEW_PREFIX}{k}": share.format_value(v) for k, v in (view or {}).items()})
    have = {k: st.query_params[k] for k in st.query_params if k not in BOUND}
    want = {k: v for k, v in want.items() if k not in BOUND}
    if have == want:
        return
    for k in [k for k in have if k not in want]:
        del st.query_params[k]
    for k, v in want.items():
        if have.get(k) != v:
            st.query_params[k] = v


def view_default(name: str, default: Any) -> Any:
    """A page's own setting from the URL (``v_<name>``), cast like ``default``; else ``default``."""
    text = st.query_params.get(f"{share.VIEW_PREFIX}{name}")
    if text is None or len(text) > MAX_TEXT:  # no view setting needs more; a longer one is not read
        return default
    try:
        if isinstance(default, bool):
            return text.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, list):
            return [t.strip() for t in text.split(",") if t.strip()]
        return type(default)(text) if default is not None else text
    except ValueError:
        return default
