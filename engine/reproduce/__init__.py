"""Reproductions of published tables and figures: the registry, and running or collecting them.

Every module of this package that defines ``NAME``, ``TITLE``, ``CITATION``, ``sweeps``,
``PUBLISHED``, ``measure`` and ``compare`` is an entry (see engine.reproduce.base); adding a
reproduction is adding its module. An entry's protocol is one or more engine.sweep specs, so it
runs, caches and resumes like any sweep: :func:`run` computes what the store lacks,
:func:`collect` reads what it has, and the entry's ``compare`` sets the results against the
published numbers.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType

from engine import sweep
from engine.errors import ConfigError
from engine.reproduce.base import check_variant
from engine.sweep import SweepResult, count, run_sweep

REQUIRED = ("NAME", "TITLE", "CITATION", "sweeps", "PUBLISHED", "measure", "compare")
ORDER = ("vandeven-2019", "vandeven-2018", "thesis-temperature", "thesis-tunnel", "blog-strategies")


@functools.cache
def table() -> dict[str, ModuleType]:
    """Every entry's module by name, in the order the list shows them."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if all(hasattr(module, a) for a in REQUIRED):
            found[module.NAME] = module
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (rank.get(kv[0], len(ORDER)), kv[0])))


def names() -> tuple[str, ...]:
    return tuple(table())


def entry(name: str) -> ModuleType:
    """The entry called ``name``; a ConfigError listing the entries otherwise."""
    entries = table()
    if name not in entries:
        raise ConfigError(f"reproduce: {name!r} is not an entry; allowed: {', '.join(entries)}")
    return entries[name]


def variants(module: ModuleType) -> tuple[str, ...]:
    return tuple(getattr(module, "VARIANTS", ("embedded",)))


def specs(module: ModuleType, variant: str | None = None, seeds: int | None = None) -> list[dict]:
    """The entry's sweep specs for a variant (default: its first) and its first ``seeds`` seeds."""
    variant = check_variant(variants(module), variant, module.NAME)
    return module.sweeps(variant=variant, seeds=seeds)


def n_configs(module: ModuleType, variant: str | None = None, seeds: int | None = None) -> int:
    """Configs of the entry's sweeps, counted without expanding them."""
    return sum(count(s) for s in specs(module, variant, seeds))


def collect(
    module: ModuleType,
    store=None,
    variant: str | None = None,
    seeds: int | None = None,
    max_configs: int | None = None,
) -> list[SweepResult]:
    """What the store holds of each of the entry's sweeps (computes nothing)."""
    return [
        sweep.collect(s, store=store, max_configs=max_configs)
        for s in specs(module, variant, seeds)
    ]


def run(
    module: ModuleType,
    variant: str | None = None,
    seeds: int | None = None,
    **sweep_options,
) -> list[SweepResult]:
    """Run the entry's sweeps one after the other (only what the store lacks); the options go
    to engine.sweep.run_sweep (backend, n_jobs, scheduler, on_event, store, max_configs)."""
    return [run_sweep(s, **sweep_options) for s in specs(module, variant, seeds)]


__all__ = ["collect", "entry", "n_configs", "names", "run", "specs", "table", "variants"]
