"""The registry of kinds: every computation the app, the CLI or a sweep can start.

Kinds are the modules of this package that define ``NAME``, ``Spec``, ``estimate`` and
``compute`` (see engine.kinds.base); they are discovered on first use (so importing one kind
module, or engine.kinds.base, does not import them all), and adding one is adding its module.
Here: parse a raw spec (dict, or settings), its canonical form and key, its cost.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import pkgutil
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ValidationError

from engine import settings
from engine.config import format_error
from engine.errors import ConfigError
from engine.kinds.base import Cost, KindSpec
from engine.version import ENGINE_VERSION

ORDER = (
    "run",
    "tunnel",
    "temperature",
    "erosion",
    "repforget",
    "substitution",
    "record",
    "softmax",
    "toy",
    "lesson-curvature",
)


@functools.cache
def table() -> dict[str, ModuleType]:
    """Every kind's module by name, in the order the help lists them."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if all(hasattr(module, a) for a in ("NAME", "Spec", "estimate", "compute")):
            found[module.NAME] = module
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (rank.get(kv[0], len(ORDER)), kv[0])))


def names() -> tuple[str, ...]:
    return tuple(table())


def kind_module(kind: str) -> ModuleType:
    kinds = table()
    if kind not in kinds:
        raise ConfigError(f"kind: {settings.echo(kind)} is not a kind; allowed: {', '.join(kinds)}")
    return kinds[kind]


def spec_class(kind: str) -> type[BaseModel]:
    return kind_module(kind).Spec


def parse(kind: str, raw: dict | BaseModel | None = None) -> BaseModel:
    """Validate a raw dict (or pass a spec of this kind through); ConfigError with one line."""
    cls = spec_class(kind)
    if isinstance(raw, cls):
        return raw
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{kind}: expected a mapping of settings, got {settings.echo(raw)}")
    raw = dict(raw or {})
    # A partial section overrides the kind's own defaults (e.g. the tunnel's MLP-12); it does
    # not replace them.
    defaults = cls().model_dump()
    for name, field in cls.model_fields.items():
        if settings.is_section(field.annotation) and isinstance(raw.get(name), dict):
            raw[name] = {**(defaults.get(name) or {}), **raw[name]}
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_error(err)) from None


def canonical(kind: str, spec: BaseModel) -> BaseModel:
    """Presets and device filled in, fields that cannot matter reset (idempotent)."""
    module = kind_module(kind)
    try:
        return module.canonical(spec) if hasattr(module, "canonical") else spec.canonical()
    except ValidationError as err:
        raise ConfigError(format_error(err)) from None


def key_of(kind: str, spec: BaseModel) -> str:
    """Stable key: hash of the engine version, the kind and the canonical spec's JSON. A
    continual run's key leaves the kind out (its keys predate the other kinds)."""
    text = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    payload = f"{ENGINE_VERSION}|{text}" if kind == "run" else f"{ENGINE_VERSION}|{kind}|{text}"
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def prepare(kind: str, raw: dict | BaseModel | None = None) -> tuple[BaseModel, str]:
    """The validated canonical spec and its key (ConfigError on bad input, before any work)."""
    spec = canonical(kind, parse(kind, raw))
    return spec, key_of(kind, spec)


def estimate(kind: str, spec: BaseModel) -> Cost:
    """The cost of a canonical spec (see engine.kinds.base.Cost)."""
    return kind_module(kind).estimate(spec)


def apply_settings(kind: str, raw: dict[str, Any], items: list[str], source: str = "--set") -> dict:
    """``raw`` with ``name=value`` settings applied (engine.settings), for this kind."""
    return settings.apply(spec_class(kind), raw, items, source=source)


def setting_names(kind: str, raw: dict | None = None) -> dict[str, str]:
    """Every settable name of the kind (bare and dotted) → its dotted path."""
    return {n: p for n, (p, _) in settings.fields_of(spec_class(kind), raw).items()}


__all__ = [
    "Cost",
    "KindSpec",
    "apply_settings",
    "canonical",
    "estimate",
    "key_of",
    "kind_module",
    "names",
    "parse",
    "prepare",
    "setting_names",
    "spec_class",
    "table",
]
