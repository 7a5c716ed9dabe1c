"""``name=value`` settings — the CLI's ``--set``, a link's query string, a sweep file's grid —
applied to the raw spec of any kind, with one strict parser.

A spec is a pydantic model whose fields are values or *sections* (nested models, such as
``data``, ``model``, ``train``). Every field has a dotted path (``train.lr``) and, when no
other field claims it first, a bare name (``lr``): the spec's own fields first, then its
sections' in order. A continual run's ``strategy`` is a discriminated union, so its settable
fields are those of the strategy the settings choose (``strategy=ewc`` then ``lam=100``).

Values are parsed by the type of the field they go to, strictly: a whole number is ASCII
digits (no ``true``, no ``١``, at most 18 digits), a number is a decimal or scientific ASCII
literal, a flag is true/false/yes/no/on/off/1/0, ``none`` (or empty) clears a field that may be
empty. Anything else is one ConfigError naming the field and what it takes, before any work.
"""

from __future__ import annotations

import copy
import re
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from engine.errors import ConfigError

MAX_TEXT = 200  # a longer value is refused (and echoed cut): no field needs more
ECHO = 80  # characters of a bad value repeated in a message

_INT = re.compile(r"[+-]?[0-9]{1,18}")
_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NONE = ("none", "null", "")


def echo(value: Any) -> str:
    """A value as a message repeats it: repr, cut to ~80 characters."""
    text = repr(value)
    return text if len(text) <= ECHO else text[: ECHO - 1] + "…'"


def unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True  # noqa: UP007
    return annotation, False


def is_section(annotation: Any) -> bool:
    kind, _ = unwrap(annotation)
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def parse_value(text: str, field: FieldInfo | None, path: str) -> Any:
    """The value ``text`` means for ``field`` (see the module docstring); ConfigError if none."""
    raw = text.strip()
    if len(raw) > MAX_TEXT:
        raise ConfigError(f"{path}: value too long ({len(raw):,} characters; at most {MAX_TEXT})")
    kind, nullable = unwrap(field.annotation) if field is not None else (Any, True)
    low = raw.lower()
    if low in _NONE and (nullable or kind is Any):
        return None
    if kind is bool:
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{path}: expected true or false, got {echo(raw)}")
    if kind is int:
        if not _INT.fullmatch(raw):
            raise ConfigError(f"{path}: expected a whole number (digits 0-9), got {echo(raw)}")
        return int(raw)
    if kind is float:
        if not _FLOAT.fullmatch(raw):
            raise ConfigError(f"{path}: expected a number such as 0.01 or 1e-3, got {echo(raw)}")
        return int(raw) if _INT.fullmatch(raw) else float(raw)  # the model makes it a float
    if typing.get_origin(kind) is Literal:
        return raw
    if kind is Any:  # no field to go by (a spec's free-form value): the old loose reading
        if low in ("true", "false"):
            return low == "true"
        if _INT.fullmatch(raw):
            return int(raw)
        if _FLOAT.fullmatch(raw):
            return float(raw)
    return raw  # str, lists given as 'a,b,c' (the field's validator splits them), …


def _union_member(annotation: Any, raw: Any) -> type[BaseModel] | None:
    """For a discriminated union of models (a run's ``strategy``): the member ``raw`` names."""
    kind, _ = unwrap(annotation)
    if typing.get_origin(kind) is typing.Annotated:
        kind = typing.get_args(kind)[0]
    members = [m for m in typing.get_args(kind) if isinstance(m, type) and issubclass(m, BaseModel)]
    if not members:
        return None
    name = raw.get("name") if isinstance(raw, dict) else None
    for m in members:
        if "name" in m.model_fields and m.model_fields["name"].default == name:
            return m
    return members[0] if name is None else None


def fields_of(
    spec_cls: type[BaseModel], raw: dict | None = None
) -> dict[str, tuple[str, FieldInfo]]:
    """Every settable name (bare and dotted) → (dotted path, field), for a raw spec."""
    raw = raw or {}
    names: dict[str, tuple[str, FieldInfo]] = {}
    sections: list[tuple[str, type[BaseModel]]] = []
    for name, field in spec_cls.model_fields.items():
        member = _union_member(field.annotation, raw.get(name))
        if member is not None and "name" in member.model_fields:  # a choice: name=…, then its own
            names[name] = (f"{name}.name", member.model_fields["name"])
            sections.append((name, member))
        elif is_section(field.annotation):
            sections.append((name, unwrap(field.annotation)[0]))
        else:
            names[name] = (name, field)
    for section, model in sections:
        for name, field in model.model_fields.items():
            if name == "name" and section in names:
                continue
            path = f"{section}.{name}"
            names.setdefault(name, (path, field))
            names[path] = (path, field)
    return names


def split_item(item: str, source: str = "--set") -> tuple[str, str]:
    if "=" not in item or not item.split("=", 1)[0].strip():
        raise ConfigError(f"{source}: expected name=value, got {echo(item)}")
    name, value = item.split("=", 1)
    return name.strip(), value


def apply(
    spec_cls: type[BaseModel],
    raw: dict[str, Any],
    items: list[str],
    source: str = "--set",
    choices: tuple[str, ...] = ("strategy",),
) -> dict[str, Any]:
    """``raw`` (copied) with every ``name=value`` of ``items`` applied; unknown names and bad
    values are one ConfigError. Settings that choose a union member (``strategy=…``) go first,
    since the member decides which names exist."""
    raw = copy.deepcopy(raw)
    pairs = [split_item(item, source) for item in items]
    for name, value in pairs:
        for choice in choices:
            if name in (choice, f"{choice}.name") and choice in spec_cls.model_fields:
                raw[choice] = {"name": value.strip()}
    for name, value in pairs:
        if any(name in (c, f"{c}.name") for c in choices if c in spec_cls.model_fields):
            continue
        known = fields_of(spec_cls, raw)
        hit = known.get(name)
        if hit is None:
            bare = ", ".join(sorted(n for n in known if "." not in n))
            raise ConfigError(f"{source}: unknown setting {echo(name)}; known: {bare}")
        path, field = hit
        node = raw
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{source}: {path}: its section is not a mapping")
        node[leaf] = parse_value(value, field, path)
    return raw


def format_value(value: Any) -> str:
    """A setting as the text :func:`parse_value` reads back to the same value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, float):  # shortest exact text; 100.0 → "100" (a float field reads it back)
        return repr(value).removesuffix(".0")
    return str(value)


def differing(spec_cls: type[BaseModel], raw: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``raw`` that differ from the spec's defaults, by their shortest name
    (bare when it means that path) — what a link or a reproducing command needs."""
    defaults = spec_cls().model_dump(mode="json")
    names = fields_of(spec_cls, raw)
    out: dict[str, Any] = {}

    def short(path: str) -> str:
        bare = path.rsplit(".", 1)[-1]
        return bare if names.get(bare, ("",))[0] == path else path

    for name, value in raw.items():
        default = defaults.get(name)
        if isinstance(value, dict):
            field = spec_cls.model_fields.get(name)
            member = _union_member(field.annotation, value) if field is not None else None
            if member is not None and "name" in member.model_fields:  # a choice and its own
                if value.get("name") != (default or {}).get("name"):
                    out[name] = value.get("name")
                default = member().model_dump(mode="json")
            for sub, v in value.items():
                if sub == "name" and member is not None:
                    continue
                if isinstance(default, dict) and default.get(sub, _MISSING) == v:
                    continue
                if f"{name}.{sub}" in names:
                    out[short(f"{name}.{sub}")] = v
        elif value != default and name in names:
            out[short(names[name][0])] = value
    return out


_MISSING = object()
