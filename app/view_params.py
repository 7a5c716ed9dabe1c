"""A page's own settings in the link (``v_<name>`` query parameters), read as a kind's spec.

Every value from a link goes through the same strict parser and the same pydantic field (range,
choices) as the CLI's ``--set``: a value out of range or of the wrong type is refused with a
line naming the field, while the link's other settings are kept. Widgets take their bounds from
the same fields, so a link can never hand a widget a value it would reject.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import streamlit as st

from app import share
from engine import kinds, settings
from engine.errors import ConfigError

ERRORS = "_view_errors"


def linked(names: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
    """Link name → setting name (a page with two kinds may rename one's, e.g. toy_seed)."""
    return dict(names) if isinstance(names, Mapping) else {n: n for n in names}


def from_link(
    kind: str, names: Iterable[str] | Mapping[str, str], base: dict[str, Any]
) -> dict[str, Any]:
    """``base`` with every valid ``v_<name>`` of the link applied (each checked on its own); a
    refused one is shown once as a warning naming the field."""
    raw = base
    refused = []
    for link_name, name in linked(names).items():
        text = st.query_params.get(f"{share.VIEW_PREFIX}{link_name}")
        if text is None:
            continue
        try:
            trial = kinds.apply_settings(kind, raw, [f"{name}={text}"], source="link")
            kinds.parse(kind, trial)
        except ConfigError as err:
            refused.append(str(err))
            continue
        if _lookup(trial, name) is None and _lookup(raw, name) is not None:
            # "empty = the preset" is a value of the spec, but the page's widget needs a number
            refused.append(f"{link_name}: a value is needed here (got {settings.echo(text)})")
            continue
        raw = trial
    for line in refused:
        st.warning(f"A setting of the link was not used — {line}")
    return raw


def get(raw: dict, path: str) -> Any:
    node: Any = raw
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def bounds(kind: str, path: str) -> dict[str, Any]:
    """min_value / max_value / help of a spec field, for a number_input or slider."""
    cls = kinds.spec_class(kind)
    *sections, name = path.split(".")
    for section in sections:
        cls = settings.unwrap(cls.model_fields[section].annotation)[0]
    field = cls.model_fields[name]
    out: dict[str, Any] = {"help": field.description}
    for meta in field.metadata:
        for attr, key in (("ge", "min_value"), ("le", "max_value")):
            if getattr(meta, attr, None) is not None:
                out[key] = getattr(meta, attr)
        if getattr(meta, "gt", None) is not None:
            out["min_value"] = math.nextafter(float(meta.gt), math.inf)
        if getattr(meta, "lt", None) is not None:
            out["max_value"] = math.nextafter(float(meta.lt), -math.inf)
    return out


def view_query(
    raw: dict, names: Iterable[str] | Mapping[str, str], defaults: dict
) -> dict[str, Any]:
    """The ``v_`` parameters a link needs to restore ``raw``: the named settings that differ
    from ``defaults``."""
    out = {}
    for link_name, name in linked(names).items():
        value, default = _lookup(raw, name), _lookup(defaults, name)
        if value is not None and value != default:
            out[link_name] = value
    return out


def _lookup(raw: dict, name: str) -> Any:
    if name in raw:
        return raw[name]
    for section in ("data", "model", "train"):
        if isinstance(raw.get(section), dict) and name in raw[section]:
            return raw[section][name]
    return None
