"""The command that reproduces a stored result, built from its canonical config.

The command names the benchmark, scenario, strategy, seed and device with their flags and
every other setting that differs from what those flags alone resolve to, as ``--set
section.name=value``. It is checked before it is shown: its settings, resolved the way the CLI
resolves them, give the stored config again (and, with this engine version, the stored key);
settings the others already imply (``data.split`` of equal tasks, say) are dropped.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine import kinds
from engine.commands.analyze import EXPERIMENTS
from engine.config import ConfigError, apply_overrides, config_key, resolve, validate
from engine.settings import format_value
from engine.version import ENGINE_VERSION

SECTIONS = ("data", "model", "train")
# Compared on this device (always available), so a result made on a GPU still gets its command.
CHECK_DEVICE = "cpu"


@dataclass
class Command:
    """``text`` is None when no command reproduces the config; ``note`` says why, or how the
    command's key relates to the stored one."""

    text: str | None
    key: str | None = None
    note: str = ""


def differences(target: dict, base: dict, skip: tuple[str, ...] = ()) -> list[str]:
    """``path=value`` for every leaf of ``target`` that differs from ``base`` (one level of
    sections), in the order of ``target``."""
    out = []
    for name, value in target.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                path = f"{name}.{sub}"
                if path not in skip and sub != "name" and (base.get(name) or {}).get(sub) != v:
                    out.append(f"{path}={format_value(v)}")
        elif name not in skip and base.get(name) != value:
            out.append(f"{name}={format_value(value)}")
    return out


def minimal(items: list[str], canonical: Callable[[list[str]], dict], target: dict) -> list[str]:
    """``items`` less every one the others already imply; ConfigError if they do not give
    ``target`` at all."""
    if canonical(items) != target:
        raise ConfigError("the settings do not reproduce the stored config")
    kept = list(items)
    for item in items:
        trial = [i for i in kept if i != item]
        try:
            if canonical(trial) == target:
                kept = trial
        except ConfigError:  # without it the config is invalid: it is needed
            pass
    return kept


def _with_device(config: dict, device: str) -> dict:
    train = dict(config.get("train") or {})
    train["device"] = device
    return {**config, "train": train}


def _flags(config: dict, names: tuple[str, ...]) -> dict[str, Any]:
    data, train = config.get("data") or {}, config.get("train") or {}
    strategy = config.get("strategy") or {}
    known = {
        "benchmark": data.get("benchmark"),
        "scenario": config.get("scenario"),
        "strategy": strategy.get("name") if isinstance(strategy, dict) else None,
        "seed": train.get("seed"),
        "device": train.get("device"),
    }
    return {n: known[n] for n in names}


def _argv(prefix: list[str], flags: dict[str, Any], items: list[str]) -> str:
    argv = list(prefix)
    for name, value in flags.items():
        argv += [f"--{name}", str(value)]
    for item in items:
        argv += ["--set", item]
    return shlex.join(argv)


# ------------------------------------------------------------------------------------ runs

RUN_FLAGS = ("benchmark", "scenario", "strategy", "seed", "device")


def _run_raw(flags: dict[str, Any], device: str) -> dict:
    """The raw config `python -m engine run` builds from its flags (commands/run.py)."""
    return {
        "scenario": flags["scenario"],
        "data": {"benchmark": flags["benchmark"]},
        "train": {"seed": flags["seed"], "device": device},
        "strategy": {"name": flags["strategy"]},
    }


def run_command(config: dict, stored_key: str | None = None) -> Command:
    """`python -m engine run …` for a continual run's config."""
    try:
        flags = _flags(config, RUN_FLAGS)
        device = str(flags["device"] or "auto")

        def canonical(items: list[str]) -> dict:
            raw = apply_overrides(_run_raw(flags, CHECK_DEVICE), items)
            return resolve(validate(raw), device=CHECK_DEVICE).model_dump(mode="json")

        target = resolve(
            validate(_with_device(config, CHECK_DEVICE)), device=CHECK_DEVICE
        ).model_dump(mode="json")
        base = canonical([])
        skip = ("data.benchmark", "train.seed", "train.device")
        items = minimal(differences(target, base, skip), canonical, target)
        raw = apply_overrides(_run_raw(flags, device), items)
        key = config_key(resolve(validate(raw), device=None if device == "auto" else device))
    except ConfigError as err:
        return Command(None, note=f"this engine ({ENGINE_VERSION}) cannot rebuild it: {err}")
    return Command(
        _argv(["python", "-m", "engine", "run"], flags, items), key, _key_note(key, stored_key)
    )


def _key_note(key: str | None, stored_key: str | None) -> str:
    if key is None or stored_key is None or key == stored_key:
        return ""
    return (
        f"With this engine ({ENGINE_VERSION}) the command's key is {key}, not the stored "
        f"{stored_key}: the result comes from another engine version or was edited."
    )


# ------------------------------------------------------------------------------- analyses

ANALYSIS_FLAGS = ("benchmark", "seed", "device")


def _analysis_items(flags: dict[str, Any], device: str) -> list[str]:
    """The --set items `python -m engine analyze` makes of its flags (commands/analyze.py)."""
    return [
        f"data.benchmark={flags['benchmark']}",
        f"train.seed={flags['seed']}",
        f"train.device={device}",
    ]


def analysis_command(kind: str, config: dict, stored_key: str | None = None) -> Command:
    """`python -m engine analyze KIND …` for an analysis experiment's config."""
    try:
        flags = _flags(config, ANALYSIS_FLAGS)
        device = str(flags["device"] or "auto")

        def canonical(items: list[str]) -> dict:
            raw = kinds.apply_settings(kind, {}, _analysis_items(flags, CHECK_DEVICE) + items)
            return kinds.prepare(kind, raw)[0].model_dump(mode="json")

        target = kinds.prepare(kind, _with_device(config, CHECK_DEVICE))[0].model_dump(mode="json")
        skip = ("data.benchmark", "train.seed", "train.device")
        items = minimal(differences(target, canonical([]), skip), canonical, target)
    except ConfigError as err:
        return Command(None, note=f"this engine ({ENGINE_VERSION}) cannot rebuild it: {err}")
    try:  # the real key needs the real device (absent here when the result came from a GPU)
        raw = kinds.apply_settings(kind, {}, _analysis_items(flags, device) + items)
        key = kinds.prepare(kind, raw)[1]
        note = _key_note(key, stored_key)
    except ConfigError:
        key, note = None, f"The key is not checked: {device} is not available here."
    return Command(_argv(["python", "-m", "engine", "analyze", kind], flags, items), key, note)


def reproduce_command(result: dict) -> Command:
    """The command for a validated result (a dict with ``kind``, ``config`` and ``key``)."""
    kind = result.get("kind") or "run"
    if kind == "run":
        return run_command(result["config"], result.get("key"))
    if kind in EXPERIMENTS:
        return analysis_command(kind, result["config"], result.get("key"))
    return Command(None, note=f"no command rebuilds a {kind!r} result")
