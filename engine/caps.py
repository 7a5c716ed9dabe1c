"""Hosted-mode caps: what one visitor may ask a shared server to compute.

Caps bound the *cost* of a computation — its estimate from engine.kinds (parameters, optimizer
steps, multiply-adds, peak memory) — not the fields that lead to it, so every kind, every page,
link and API call is held to the same limits in one place, before anything is built. Each job
process of a hosted server also gets a wall-clock limit and an address-space limit (see
engine.jobs), which catch what an estimate missed.

Local mode (``Caps()``) has no limits. Every cap is an environment variable (:meth:`from_env`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from engine.data.catalog import EMBEDDED
from engine.errors import CapExceeded
from engine.kinds.base import Cost


def hosted_from_env() -> bool:
    return os.environ.get("FORGET_HOSTED", "").strip().lower() in ("1", "true", "yes", "on")


def env_number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    return float(text) if text else default


@dataclass(frozen=True)
class Caps:
    """Limits on one request (None = no limit)."""

    max_params: int | None = None
    max_steps: int | None = None
    max_macs: float | None = None
    max_memory_mb: int | None = None
    max_wall_s: float | None = None
    benchmarks: tuple[str, ...] | None = None
    max_jobs_per_visitor: int | None = None

    @property
    def limited(self) -> bool:
        return any(v is not None for v in self.__dict__.values())

    @classmethod
    def from_env(cls) -> Caps:
        """Hosted caps: FORGET_MAX_PARAMS (5,000,000), FORGET_MAX_STEPS (20,000),
        FORGET_MAX_MACS (3e12 multiply-adds: a couple of minutes of one CPU core),
        FORGET_MAX_MEMORY_MB (2048), FORGET_MAX_WALL_S (600 s per job), FORGET_BENCHMARKS
        (comma list; the embedded ones), FORGET_MAX_JOBS_PER_VISITOR (2)."""
        names = os.environ.get("FORGET_BENCHMARKS", "").strip()
        return cls(
            max_params=int(env_number("FORGET_MAX_PARAMS", 5_000_000)),
            max_steps=int(env_number("FORGET_MAX_STEPS", 20_000)),
            max_macs=env_number("FORGET_MAX_MACS", 3e12),
            max_memory_mb=int(env_number("FORGET_MAX_MEMORY_MB", 2048)),
            max_wall_s=env_number("FORGET_MAX_WALL_S", 600.0),
            benchmarks=tuple(n.strip() for n in names.split(",") if n.strip())
            if names
            else EMBEDDED,
            max_jobs_per_visitor=int(env_number("FORGET_MAX_JOBS_PER_VISITOR", 2)),
        )

    def check(self, kind: str, spec, cost: Cost) -> None:
        """Raise CapExceeded with one line naming the first cap this computation is over."""
        data = getattr(spec, "data", None)
        benchmark = getattr(data, "benchmark", None)
        if (
            self.benchmarks is not None
            and benchmark is not None
            and benchmark not in self.benchmarks
        ):
            raise CapExceeded(
                f"data.benchmark: {benchmark!r} is not offered on this hosted demo; "
                f"allowed: {', '.join(self.benchmarks)}"
            )
        if self.max_params is not None and cost.params > self.max_params:
            raise CapExceeded(
                f"model: {cost.params:,} parameters is over the hosted limit of "
                f"{self.max_params:,} (lower model.width or model.depth)"
            )
        if self.max_steps is not None and cost.steps > self.max_steps:
            raise CapExceeded(
                f"steps: about {cost.steps:,} optimizer steps is over the hosted limit of "
                f"{self.max_steps:,} (a larger train.batch_size, fewer epochs or iterations)"
            )
        if self.max_macs is not None and cost.macs > self.max_macs:
            raise CapExceeded(
                f"compute: about {cost.macs:.2g} multiply-adds is over the hosted limit of "
                f"{self.max_macs:.2g} (a smaller model, fewer epochs or less data)"
            )
        if self.max_memory_mb is not None and cost.peak_bytes > self.max_memory_mb * 2**20:
            raise CapExceeded(
                f"memory: about {cost.peak_bytes / 2**20:,.0f} MiB at peak is over the hosted "
                f"limit of {self.max_memory_mb:,} MiB (a smaller batch, model or dataset)"
            )
