"""Strategy registry: one module per strategy, each with a ``Params`` model and a class.

To add a strategy, write ``engine/strategies/<name>.py`` with ``Params`` (a StrategyParams with
``name: Literal["<name>"]``), a ``Strategy`` subclass, and ``IMPLEMENTATION = ThatClass``.
Modules are discovered; ``ORDER`` only sets the order the CLI help and the app list them in.
A plugin (engine.plugins: an entry point in ``forgetting_explorer.strategies``, or a file in
FORGET_PLUGINS) with the same two attributes is registered the same way, after the built-ins.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import typing
from typing import Any

from engine import plugins
from engine.strategies.base import Context, Strategy, StrategyParams

ORDER = (
    "naive",
    "joint",
    "cumulative",
    "frozen",
    "freeze-k",
    "low-lr",
    "l2",
    "ewc",
    "online-ewc",
    "si",
    "lwf",
    "feature-distill",
    "replay",
    "agem",
    "der",
    "model-avg",
    "lora",
)
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,39}")  # a URL value and a CLI choice as it is

REGISTRY: dict[str, tuple[type[StrategyParams], type[Strategy]]] = {}
STRATEGY_NAMES: tuple[str, ...] = ()
PARAMS_MODELS: tuple[type[StrategyParams], ...] = ()
BUILT_IN: tuple[str, ...] = ()


def _refresh() -> None:
    """Sort the registry (ORDER first, then by name) and derive the name and model tuples."""
    global STRATEGY_NAMES, PARAMS_MODELS
    ranked = sorted(
        REGISTRY.items(),
        key=lambda kv: (ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER), kv[0]),
    )
    REGISTRY.clear()  # in place: modules that imported the dict see every later plugin
    REGISTRY.update(ranked)
    STRATEGY_NAMES = tuple(REGISTRY)
    PARAMS_MODELS = tuple(p for p, _ in REGISTRY.values())


def params_problem(params: Any, implementation: Any, taken: dict[str, Any]) -> str:
    """Why a (Params, IMPLEMENTATION) pair cannot be registered ('' when it can)."""
    if not (isinstance(params, type) and issubclass(params, StrategyParams)):
        return "Params is not a subclass of engine.strategies.base.StrategyParams"
    if not (isinstance(implementation, type) and issubclass(implementation, Strategy)):
        return "IMPLEMENTATION is not a subclass of engine.strategies.base.Strategy"
    field = params.model_fields.get("name")
    name = getattr(field, "default", None)
    literal = typing.get_origin(getattr(field, "annotation", None)) is typing.Literal
    if not isinstance(name, str) or not literal or typing.get_args(field.annotation) != (name,):
        return "Params has no name; give it `name: Literal['<name>'] = '<name>'`"
    if not NAME_PATTERN.fullmatch(name):
        return f"strategy name {name!r} is not lower-case letters, digits, - and _ (at most 40)"
    if name in taken:
        return f"strategy name {name!r} is taken by {taken[name]}"
    try:
        params()
    except Exception as err:  # every field needs a default: the app and the CLI start from them
        return f"Params() fails without arguments ({' '.join(str(err).split())[:200]})"
    return ""


def _register_plugin(plugin: plugins.Plugin, obj: Any) -> None:
    taken = {n: "a built-in strategy" for n in BUILT_IN}
    taken.update({n: "another plugin" for n in REGISTRY if n not in BUILT_IN})
    problem = params_problem(obj.Params, obj.IMPLEMENTATION, taken)
    if problem:
        plugins.report(plugin, problem)
        return
    REGISTRY[obj.Params.model_fields["name"].default] = (obj.Params, obj.IMPLEMENTATION)
    _refresh()


for _info in pkgutil.iter_modules(__path__):
    if _info.name == "base" or _info.name.startswith("_"):
        continue
    _mod = importlib.import_module(f"{__name__}.{_info.name}")
    if hasattr(_mod, "Params") and hasattr(_mod, "IMPLEMENTATION"):
        REGISTRY[_mod.Params.model_fields["name"].default] = (_mod.Params, _mod.IMPLEMENTATION)
_refresh()
BUILT_IN = STRATEGY_NAMES
plugins.connect("strategies", _register_plugin)


def scenario_problem(params: StrategyParams, scenario: str) -> str:
    """Why ``params.name`` cannot run in ``scenario`` ('' when it can)."""
    if scenario in params.scenarios:
        return ""
    why = f": {params.why_not}" if params.why_not else ""
    return (
        f"strategy.name: {params.name!r} does not support the {scenario} scenario{why} "
        f"(supports: {', '.join(params.scenarios)})"
    )


def make_strategy(params: StrategyParams, ctx: Context) -> Strategy:
    return REGISTRY[params.name][1](params, ctx)


__all__ = [
    "Context",
    "Strategy",
    "StrategyParams",
    "REGISTRY",
    "STRATEGY_NAMES",
    "PARAMS_MODELS",
    "make_strategy",
    "params_problem",
    "scenario_problem",
]
