"""Strategy registry: one module per strategy, each with a ``Params`` model and a class.

To add a strategy, write ``engine/strategies/<name>.py`` with ``Params`` (a StrategyParams with
``name: Literal["<name>"]``), a ``Strategy`` subclass, and ``IMPLEMENTATION = ThatClass``.
Modules are discovered; ``ORDER`` only sets the order the CLI help and the app list them in.
"""

from __future__ import annotations

import importlib
import pkgutil

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

REGISTRY: dict[str, tuple[type[StrategyParams], type[Strategy]]] = {}
for _info in pkgutil.iter_modules(__path__):
    if _info.name == "base" or _info.name.startswith("_"):
        continue
    _mod = importlib.import_module(f"{__name__}.{_info.name}")
    if hasattr(_mod, "Params") and hasattr(_mod, "IMPLEMENTATION"):
        REGISTRY[_mod.Params.model_fields["name"].default] = (_mod.Params, _mod.IMPLEMENTATION)
REGISTRY = dict(
    sorted(
        REGISTRY.items(),
        key=lambda kv: (ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER), kv[0]),
    )
)

STRATEGY_NAMES: tuple[str, ...] = tuple(REGISTRY)
PARAMS_MODELS: tuple[type[StrategyParams], ...] = tuple(p for p, _ in REGISTRY.values())


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
    "scenario_problem",
]
