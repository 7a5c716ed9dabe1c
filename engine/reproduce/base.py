"""What a reproduction entry is made of: sources, published numbers, measurements.

An entry (one module of ``engine.reproduce``) reproduces one published table or figure. It names

* ``NAME``, ``TITLE``, ``CITATION`` — what is reproduced, and where it was published;
* ``SOURCES`` — a :class:`Source` per place a published number was read from (a table of a
  paper, a file of a repository at a commit, lines of a seed document), so every number carries
  its provenance;
* ``PROTOCOL`` and ``DEVIATIONS`` — the paper's setting, and plainly where this run differs;
* ``VARIANTS`` and ``sweeps(variant, seeds)`` — the protocol as engine.sweep spec dicts (each
  with a ``kind``); the first variant is the default, the offline one;
* ``PUBLISHED`` — :class:`Published` numbers keyed by (group, item, metric): a group is what an
  ordering is compared within (a scenario, a metric), an item what is ordered (a method, a
  temperature);
* ``measure(entry)`` — the :class:`Measured` values of one stored sweep entry, in the published
  units;
* ``compare(results)`` — published against measured (engine.reproduce.compare).

``FORGET_REPRODUCE_TINY=1`` shrinks every entry's sweeps to a few seconds of work (one seed,
one epoch, a small model): for tests only, the numbers then mean nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from engine.errors import ConfigError

TINY_ENV = "FORGET_REPRODUCE_TINY"
# The tiny shrink of an analysis that probes layers (tunnel, temperature): one probe epoch on
# few images.
TINY_PROBES = {"probe_epochs": 1, "probe_train": 256, "n_eval": 64, "ood_train": 64, "ood_test": 64}


@dataclass(frozen=True)
class Source:
    """Where published numbers were read: ``citation`` names the work and the table or figure,
    ``where`` how it was read (a URL, repository@commit:path, seed file lines)."""

    key: str
    citation: str
    where: str
    note: str = ""


@dataclass(frozen=True)
class Published:
    """One published number. ``value`` None with a ``rank`` is an ordering the source states
    without numbers (1 = best); ``sem`` the spread the source gives (its standard error)."""

    group: str
    item: str
    metric: str
    value: float | None
    source: str
    sem: float | None = None
    rank: int | None = None
    approx: bool = False  # the source states it only roughly ("≈ 10"), or to fewer digits


@dataclass(frozen=True)
class Measured:
    """One measured value of one stored computation, in the published units."""

    group: str
    item: str
    metric: str
    value: float
    seed: int | None = None


def tiny() -> bool:
    """The test-only shrink (see the module docstring)."""
    return os.environ.get(TINY_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def run_acc(e, group: str, metric: str) -> list[Measured]:
    """ACC of one finished continual run, in percent, keyed by its strategy."""
    acc = (e.result.get("metrics") or {}).get("acc")
    if acc is None:
        return []
    cfg = e.config
    return [Measured(group, cfg["strategy"]["name"], metric, 100.0 * acc, cfg["train"]["seed"])]


def seed_list(default: list[int], seeds: int | None) -> list[int]:
    """The protocol's seeds, or its first ``seeds`` of them (more than it has: 0 … seeds−1)."""
    if seeds is None:
        return list(default)
    if seeds < 1:
        raise ConfigError(f"--seeds: expected a positive number of seeds, got {seeds}")
    return list(range(seeds)) if seeds > len(default) else list(default[:seeds])


def check_variant(variants: tuple[str, ...], variant: str | None, name: str) -> str:
    if variant is None:
        return variants[0]
    if variant not in variants:
        raise ConfigError(
            f"--variant: {variant!r} is not a variant of {name}; allowed: {', '.join(variants)}"
        )
    return variant
