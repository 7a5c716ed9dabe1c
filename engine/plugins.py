"""Plugins: strategies, benchmarks and models from outside ``engine/``, registered exactly as
the built-in ones are (docs/extending.md).

Where plugins come from, in this order:

* entry points of installed distributions, in the groups ``forgetting_explorer.strategies``,
  ``forgetting_explorer.benchmarks`` and ``forgetting_explorer.models``; the entry point's name
  is the plugin's name, its value a module (or any object) with the attributes below;
* files listed in ``FORGET_PLUGINS`` (paths separated by ``os.pathsep``; the CLI's
  ``--plugin PATH`` adds to it): each a ``.py`` file run as a module, named by its stem; a file
  may provide any of the three.

What a plugin provides (:data:`PROVIDES`): a strategy is ``Params`` (a StrategyParams with
``name: Literal["…"]``) and ``IMPLEMENTATION`` (its Strategy subclass), as a built-in strategy
module; a benchmark is ``FACTS`` (an engine.data.catalog.BenchmarkFacts) and ``load(data_cfg)``
returning an engine.data.raw.RawData; a model is ``ARCH`` (its name) and
``build(cfg, input_shape, n_outputs)`` returning an engine.models.ProbedModel.

Each registry (engine.strategies, engine.data.catalog, engine.models) calls :func:`connect` at
the end of its module. The first call loads every plugin; a registry connected later gets the
plugins loaded so far at once and the rest as each finishes loading, so a plugin that imports a
registry (as it must, for the base classes) is registered there all the same. Plugins are
therefore in place before engine.config builds its unions.

A plugin is code, so a hosted server (``FORGET_HOSTED=1``) loads none but those its operator
lists in ``FORGET_PLUGINS_ALLOWED`` (comma-separated names). A plugin that fails — it cannot be
imported, lacks an attribute, clashes with a name already taken — is left out, and one line
naming it is kept in :func:`problems` (the CLI prints them and exits 2).

A leaf: imports no other engine module but engine.errors.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

GROUPS = ("strategies", "benchmarks", "models")
ENTRY_POINT_GROUP = "forgetting_explorer.{}"
PROVIDES = {
    "strategies": ("Params", "IMPLEMENTATION"),
    "benchmarks": ("FACTS", "load"),
    "models": ("ARCH", "build"),
}
WHAT = {"strategies": "a strategy", "benchmarks": "a benchmark", "models": "a model"}
PATHS_ENV = "FORGET_PLUGINS"
ALLOWED_ENV = "FORGET_PLUGINS_ALLOWED"
HOSTED_ENV = "FORGET_HOSTED"

Register = Callable[["Plugin", Any], None]


@dataclass(frozen=True)
class Plugin:
    name: str  # the entry point's name, or the file's stem
    origin: str  # "entry point NAME = VALUE", or the file's path
    group: str | None = None  # the entry point's group; None for a file (any group)
    entry_point: importlib.metadata.EntryPoint | None = None
    path: Path | None = None

    def label(self) -> str:
        return f"plugin {self.name!r} ({self.origin})"

    def provides(self, group: str, obj: Any) -> bool:
        if self.group is not None:
            return self.group == group
        return any(hasattr(obj, attr) for attr in PROVIDES[group])


def hosted() -> bool:
    """Whether this process serves a hosted demo (FORGET_HOSTED)."""
    return os.environ.get(HOSTED_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def allowed_names() -> set[str]:
    return {n.strip() for n in os.environ.get(ALLOWED_ENV, "").split(",") if n.strip()}


def listed_paths() -> list[Path]:
    """The files of FORGET_PLUGINS, absolute, each once, in order."""
    seen: dict[str, Path] = {}
    for text in os.environ.get(PATHS_ENV, "").split(os.pathsep):
        if text.strip():
            path = Path(text.strip()).expanduser().absolute()
            seen.setdefault(str(path), path)
    return list(seen.values())


def discover() -> list[Plugin]:
    """Every plugin on offer (entry points, then FORGET_PLUGINS files), before hosted filtering."""
    found: list[Plugin] = []
    seen: set[tuple[str, str, str]] = set()
    installed = importlib.metadata.entry_points()  # one scan of the distributions
    for group in GROUPS:
        for ep in installed.select(group=ENTRY_POINT_GROUP.format(group)):
            if (group, ep.name, ep.value) in seen:  # one distribution on sys.path twice
                continue
            seen.add((group, ep.name, ep.value))
            found.append(Plugin(ep.name, f"entry point {ep.name} = {ep.value}", group, ep))
    for path in listed_paths():
        found.append(Plugin(path.stem, str(path), path=path))
    return found


class _State:
    """What this process has loaded (one per process: registries are module-level)."""

    def __init__(self) -> None:
        self.started = False
        self.loaded: list[tuple[Plugin, Any]] = []
        self.subscribers: dict[str, list[Register]] = {g: [] for g in GROUPS}
        self.problems: list[str] = []
        self.skipped: list[str] = []  # left out by hosted mode
        self.paths: set[str] = set()  # files that were on offer when loading started


_state = _State()


def connect(group: str, register: Register) -> None:
    """Call ``register(plugin, obj)`` for every plugin that provides ``group``: those loaded
    already at once, the others as they finish loading. The first call loads every plugin."""
    _state.subscribers[group].append(register)
    for plugin, obj in list(_state.loaded):
        if plugin.provides(group, obj):
            _dispatch(group, register, plugin, obj)
    if not _state.started:
        _state.started = True
        _load_all()


def admitted(found: list[Plugin]) -> tuple[list[Plugin], list[str]]:
    """(the plugins to load, the names left out): everything locally; on a hosted server only
    the plugins FORGET_PLUGINS_ALLOWED names."""
    if not hosted():
        return found, []
    allowed = allowed_names()
    return [p for p in found if p.name in allowed], [p.name for p in found if p.name not in allowed]


def _load_all() -> None:
    found = discover()
    _state.paths = {str(p.path) for p in found if p.path is not None}
    chosen, _state.skipped = admitted(found)
    for plugin in chosen:
        try:
            obj = _import(plugin)
        except Exception as err:  # any failure of foreign code: one line, the rest still load
            report(plugin, f"cannot be loaded: {_one_line(err)}")
            continue
        if plugin.group is None and not any(plugin.provides(g, obj) for g in GROUPS):
            wanted = "; ".join(f"{'/'.join(a)} ({g})" for g, a in PROVIDES.items())
            report(plugin, f"defines none of: {wanted}")
            continue
        _state.loaded.append((plugin, obj))
        for group, registers in _state.subscribers.items():
            if plugin.provides(group, obj):
                for register in list(registers):
                    _dispatch(group, register, plugin, obj)


def _import(plugin: Plugin) -> Any:
    if plugin.entry_point is not None:
        return plugin.entry_point.load()
    path = plugin.path
    assert path is not None
    if not path.is_file():
        raise FileNotFoundError(f"no file {str(path)!r}")
    if path.suffix != ".py":
        raise ImportError(f"{path.name!r} is not a .py file")
    # A stable module name per path: a worker process that loads the same file names it alike.
    tag = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    name = f"forgetting_explorer_plugin_{path.stem}_{tag}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path.name!r} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the models' annotations through it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _dispatch(group: str, register: Register, plugin: Plugin, obj: Any) -> None:
    """Hand ``obj`` to a registry of ``group`` once it has everything the group needs."""
    missing = [a for a in PROVIDES[group] if not hasattr(obj, a)]
    if missing:
        report(plugin, f"has no {' or '.join(missing)} ({WHAT[group]} needs both)")
        return
    try:
        register(plugin, obj)
    except Exception as err:  # a registry's check that tripped on foreign code
        report(plugin, f"cannot be registered: {_one_line(err)}")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "no message"
    return f"{type(err).__name__}: {text}"


def report(plugin: Plugin, problem: str) -> None:
    """Keep one line about a plugin that was left out."""
    line = f"{plugin.label()}: {problem}"
    if line not in _state.problems:
        _state.problems.append(line)


def problems() -> list[str]:
    """One line per plugin that was left out because it failed (empty when all is well)."""
    return list(_state.problems)


def skipped() -> list[str]:
    """Names of plugins that hosted mode left out (not listed in FORGET_PLUGINS_ALLOWED)."""
    return list(_state.skipped)


def loaded() -> list[str]:
    """Labels of the plugins loaded in this process."""
    return [plugin.label() for plugin, _ in _state.loaded]


def add_paths(paths: list[str]) -> None:
    """Add plugin files to FORGET_PLUGINS, so this process and every process it starts (sweep
    workers, job processes) load them. ConfigError when the registries of this process were
    built already without them: a plugin must load before engine.config is imported."""
    if not paths:
        return
    have = os.environ.get(PATHS_ENV, "")
    os.environ[PATHS_ENV] = os.pathsep.join([p for p in [have, *paths] if p])
    late = [p for p in paths if str(Path(p).expanduser().absolute()) not in _state.paths]
    if _state.started and late:
        raise ConfigError(
            f"--plugin: {late[0]!r} came after this process built its registries; give plugins "
            f"before the engine's config is imported (or in {PATHS_ENV})"
        )
