"""The URL's query string ⇄ an experiment config, so a copied link opens the same view.

The query string uses the names of the CLI's ``--set`` (bare names such as ``epochs`` or
``lam``, dotted ones such as ``train.seed`` where a bare name is ambiguous) and holds only the
settings that differ from the defaults. Parsing goes through
:func:`engine.config.apply_overrides` and :func:`engine.config.validate`, so a bad link gets the
same one-line ConfigError as the CLI. Keys starting with ``v_`` belong to a page's own view
(e.g. the strategies a Compare page shows) and are not part of the config.

A link opened in the app is read leniently (:func:`read_link`): each setting is applied and
checked on its own, so one bad field is refused with its own line while the link's other
settings stay; a value repeated in a message is cut to ~80 characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from engine.config import (
    ConfigError,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    apply_overrides,
    field_names,
    resolve,
    validate,
)
from engine.errors import CapExceeded
from engine.settings import ECHO, echo
from engine.strategies import PARAMS_MODELS, STRATEGY_NAMES

VIEW_PREFIX = "v_"
MAX_LINK_SETTINGS = 64  # a config has about 40 settings; a longer link is not a person's
MAX_MESSAGE = 300  # characters of one refusal line
CHOICES = ("strategy", "strategy.name")  # settings that decide which other names exist
IGNORED = ("embed", "embed_options")  # Streamlit's own query parameters
SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
DEFAULT_STRATEGY = PARAMS_MODELS[0]().name


def format_value(value: Any) -> str:
    """A setting as text that :func:`engine.config.apply_overrides` parses back to the value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):  # shortest exact text; 100.0 → "100" (a float field reads it back)
        text = repr(value)
        return text.removesuffix(".0")
    return str(value)


def _query_name(path: str, names: dict[str, str]) -> str:
    """The bare name when it means this path, else the dotted path."""
    bare = path.rsplit(".", 1)[-1]
    return bare if names.get(bare) == path else path


def config_to_query(raw: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters for a raw config: only the settings that differ from the defaults."""
    strategy = dict(raw.get("strategy") or {})
    name = strategy.get("name", DEFAULT_STRATEGY)
    names = field_names(name)
    query: dict[str, str] = {}
    scenario = raw.get("scenario", ExperimentConfig.model_fields["scenario"].default)
    if scenario != ExperimentConfig.model_fields["scenario"].default:
        query["scenario"] = format_value(scenario)
    for section, model in SECTIONS.items():
        values = raw.get(section) or {}
        for field, info in model.model_fields.items():
            if field in values and values[field] != info.default:
                query[_query_name(f"{section}.{field}", names)] = format_value(values[field])
    if name != DEFAULT_STRATEGY:
        query["strategy"] = name
    if name in STRATEGY_NAMES:
        params = PARAMS_MODELS[STRATEGY_NAMES.index(name)]
        for field, info in params.model_fields.items():
            if field != "name" and field in strategy and strategy[field] != info.default:
                query[_query_name(f"strategy.{field}", names)] = format_value(strategy[field])
    return query


def view_params(params: Mapping[str, str]) -> dict[str, str]:
    """The page's own view parameters (``v_…``) from a query string."""
    return {k: str(params[k]) for k in params if k.startswith(VIEW_PREFIX)}


def query_to_config(params: Mapping[str, str]) -> dict[str, Any]:
    """A raw config from query parameters; ConfigError (one line naming the field) if bad."""
    settings = [
        f"{k}={params[k]}" for k in params if not k.startswith(VIEW_PREFIX) and k not in IGNORED
    ]
    try:
        raw = apply_overrides({}, settings)
    except ConfigError as err:  # the CLI's wording names its flag; a link has no flags
        raise ConfigError(str(err).replace("--set: ", "link: ", 1)) from None
    # Refuse a bad link here, with the field named, rather than on the first Run.
    resolve(validate(raw), device="cpu")
    return raw


def link_for(
    page: str, raw_config: Mapping[str, Any], view: Mapping[str, Any] | None = None
) -> str:
    """A relative URL that opens ``page`` with this config, e.g.
    ``/forgetting?strategy=ewc&lam=100`` (what the Learn page's "try it" links use)."""
    query = config_to_query(raw_config)
    query.update({f"{VIEW_PREFIX}{k}": format_value(v) for k, v in (view or {}).items()})
    path = "/" + page.strip("/")
    return f"{path}?{urlencode(query)}" if query else path


_QUOTED = re.compile(f"'[^']{{{ECHO},}}'|\"[^\"]{{{ECHO},}}\"")


def clip(message: str) -> str:
    """One message line with every quoted value in it cut to ~80 characters (engine.settings'
    echo length) and the whole line to MAX_MESSAGE: a link's value is repeated, never in full."""
    line = " ".join(message.split())
    line = _QUOTED.sub(lambda m: echo(m.group(0)[1:-1]), line)
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"


def read_link(
    params: Mapping[str, str], check: Callable[[ExperimentConfig], None] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """(raw config, refusals) from a link's query parameters.

    Every setting goes through the CLI's parser and the config's validation (bounds, choices,
    scenario support), then ``check`` (the hosted caps) on the config it makes, one setting at a
    time: a refused one is left out with one line naming its field, the others stay. Settings
    are retried while any is accepted, so an order in the link does not matter (``lam`` before
    ``strategy``, a task-IL-only strategy before ``scenario=task``). Never raises ConfigError.
    """
    items = [
        (str(k), str(params[k]))
        for k in params
        if not str(k).startswith(VIEW_PREFIX) and k not in IGNORED
    ]
    refused: dict[str, str] = {}
    if len(items) > MAX_LINK_SETTINGS:
        refused["…"] = (
            f"link: {len(items)} settings, at most {MAX_LINK_SETTINGS} are read; "
            f"the rest were ignored"
        )
        items = items[:MAX_LINK_SETTINGS]
    items.sort(key=lambda kv: kv[0] not in CHOICES)  # the strategy first: it names the rest

    def attempt(raw: dict, name: str, value: str) -> dict:
        try:
            trial = apply_overrides(raw, [f"{name}={value}"])
        except ConfigError as err:  # the CLI's wording names its flag; a link has no flags
            raise ConfigError(str(err).replace("--set: ", "link: ", 1)) from None
        cfg = resolve(validate(trial), device="cpu")
        if check is not None:
            try:
                check(cfg)
            except CapExceeded as err:
                shown = value if len(value) <= ECHO else value[: ECHO - 1] + "…"
                raise CapExceeded(f"{name}={shown} is over a hosted cap — {err}") from None
        return trial

    raw: dict[str, Any] = {}
    try:  # the usual link: every setting is fine, one validation
        whole = apply_overrides({}, [f"{k}={v}" for k, v in items])
        cfg = resolve(validate(whole), device="cpu")
        if check is not None:
            check(cfg)
        return whole, list(refused.values())
    except ConfigError:
        pass
    pending = items
    while pending:
        left = []
        for name, value in pending:
            try:
                raw = attempt(raw, name, value)
                refused.pop(name, None)
            except ConfigError as err:
                refused[name] = clip(str(err))
                left.append((name, value))
        if len(left) == len(pending):
            break
        pending = left
    return raw, list(refused.values())
