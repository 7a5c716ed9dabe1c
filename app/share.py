"""The URL's query string ⇄ an experiment config, so a copied link opens the same view.

The query string uses the names of the CLI's ``--set`` (bare names such as ``epochs`` or
``lam``, dotted ones such as ``train.seed`` where a bare name is ambiguous) and holds only the
settings that differ from the defaults. Parsing goes through
:func:`engine.config.apply_overrides` and :func:`engine.config.validate`, so a bad link gets the
same one-line ConfigError as the CLI. Keys starting with ``v_`` belong to a page's own view
(e.g. the strategies a Compare page shows) and are not part of the config.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from engine.strategies import PARAMS_MODELS, STRATEGY_NAMES

VIEW_PREFIX = "v_"
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
