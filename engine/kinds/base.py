"""What every kind of computation is made of, and what the executor hands its ``compute``.

A *kind* is one module in ``engine/kinds/`` with

* ``Spec`` — a pydantic model (ranges, descriptions; the same ``--set``/URL names everywhere),
  derived from :class:`KindSpec`, with ``canonical()`` (presets and device filled in, fields
  that cannot change the result reset, so equal computations share one key);
* ``estimate(spec) -> Cost`` — parameters, optimizer steps, multiply-accumulates and peak
  memory, computed from the spec alone (no data loaded, no weights allocated), which hosted
  caps are checked against before anything is built;
* ``compute(spec, ctx) -> dict`` — the JSON-ready body of the result; progress, cancellation,
  checkpoints and nested computations go through ``ctx`` (:class:`ComputeContext`);
* ``TITLE`` and ``SUMMARY`` for help texts and pages.

Adding an analysis is adding one such module; the registry (engine.kinds) finds it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from engine.errors import Cancelled

EventFn = Callable[[dict], None]

# Costs are in multiply-adds of training on one CPU core (~1e10 a second here), so caps compare
# kinds alike. Work that is not a big tensor product is converted at what it measured:
PYTHON_STEP = 4e5  # one small Python-level step (~40 µs: the toy's gradient steps)
SMALL_SVD = 1000  # per n³ of one small float64 SVD with its bookkeeping (softmax curve points)


class KindSpec(BaseModel):
    """Base of every kind's spec: unknown settings are errors; ``canonical`` is the identity
    unless a kind has presets to fill in."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    kind: ClassVar[str] = ""

    def canonical(self) -> KindSpec:
        return self


@dataclass
class Cost:
    """What a computation will take, estimated from its spec (hosted caps compare these)."""

    params: int = 0  # largest model's parameters
    steps: int = 0  # optimizer steps (or iterations) in all
    macs: float = 0.0  # multiply-accumulates in all (training ≈ 3 × forward per sample)
    peak_bytes: int = 0  # data on the device + weights, gradients, optimizer state, activations

    def __add__(self, other: Cost) -> Cost:
        """Two computations one after the other: sums, and the larger peak."""
        return Cost(
            max(self.params, other.params),
            self.steps + other.steps,
            self.macs + other.macs,
            max(self.peak_bytes, other.peak_bytes),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"{self.params:,} parameters, {self.steps:,} steps, {self.macs:.3g} multiply-adds, "
            f"{self.peak_bytes / 2**20:,.0f} MiB at peak"
        )


class ComputeContext:
    """A computation's line to the executor: events, cancellation, checkpoints, the store's
    extras and nested computations. ``store`` is None when nothing is stored (``--no-cache``,
    sweep workers)."""

    def __init__(
        self,
        kind: str,
        key: str,
        on_event: EventFn | None,
        cancel: Callable[[], bool] | None,
        store,
        execute: Callable[..., dict],
        use_cache: bool = True,
    ) -> None:
        self.kind, self.key = kind, key
        self.on_event, self.cancel = on_event, cancel
        self.store, self.use_cache = store, use_cache
        self._execute = execute
        self.total = 0  # planned steps of the whole computation
        self.done = 0  # steps finished by earlier stages
        self.stage = ""

    # -- events -----------------------------------------------------------------------------
    def emit(self, event: dict) -> None:
        if self.on_event is not None:
            self.on_event({"kind": self.kind, "key": self.key, **event})

    def start(self, total_steps: int, stages: list[str], **extra: Any) -> None:
        """Announce the plan: total steps and the stages the progress bar will name."""
        self.total = int(total_steps)
        self.emit({"type": "start", "total_steps": self.total, "stages": stages, **extra})

    def set_stage(self, stage: str) -> None:
        self.check_cancel()  # a stage boundary is a safe place to stop
        self.stage = stage
        self.emit(
            {
                "type": "progress",
                "stage": stage,
                "global_step": self.done,
                "total_steps": self.total,
            }
        )

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled(f"{self.kind} cancelled in stage {self.stage or 'start'}")

    def session_events(self, relay: tuple[str, ...] = (), whole: bool = False) -> EventFn:
        """on_event for a :class:`engine.session.Session` of this computation: its progress
        counts towards this computation's steps; event types in ``relay`` pass through.
        ``whole``: the session is the whole computation, so its own (corrected) total is the
        total; otherwise the planned total is only ever raised."""
        base = self.done

        def forward(event: dict) -> None:
            if event["type"] == "progress":  # phase, step, total and step_s pass through
                self.emit(
                    {
                        **event,
                        "stage": self.stage,
                        "global_step": base + event["global_step"],
                        "total_steps": base + event["total_steps"]
                        if whole
                        else max(self.total, base + event["total_steps"]),
                    }
                )
            elif event["type"] in relay:
                self.emit(event)

        return forward

    def phase_callback(self) -> Callable[[dict], None]:
        """on_progress for a training loop of this computation's own (not a Session): its
        steps count from the steps finished before it."""

        def on_progress(p: dict) -> None:
            self.emit(
                {
                    "type": "progress",
                    "stage": self.stage,
                    "step": p["step"],
                    "global_step": self.done + p["step"],
                    "total_steps": self.total,
                    "step_s": p.get("step_s"),
                }
            )

        return on_progress

    # -- checkpoints and extras ---------------------------------------------------------------
    def load_checkpoint(self) -> dict | None:
        return self.store.get_checkpoint(self.key) if self.store is not None else None

    def save_checkpoint(self, state: dict) -> None:
        if self.store is not None:
            self.store.put_checkpoint(self.key, state)

    def put_extra(self, name: str, value: bytes | str) -> None:
        if self.store is not None:
            self.store.put_extra(self.key, name, value)

    def load_extra(self, name: str) -> bytes | str | None:
        return self.store.get_extra(self.key, name) if self.store is not None else None

    # -- nested computations -------------------------------------------------------------------
    def sub(self, kind: str, spec: Any, steps: int | None = None) -> dict:
        """Run (or fetch) another computation through the executor, with this one's store and
        cancel; its progress counts towards this one's (``steps``: its planned share)."""
        base = self.done

        def forward(event: dict) -> None:
            if event["type"] == "progress":
                self.emit(
                    {
                        "type": "progress",
                        "stage": self.stage,
                        "global_step": base + int(event.get("global_step") or 0),
                        "total_steps": self.total,
                    }
                )

        result = self._execute(
            kind,
            spec,
            on_event=forward,
            store=self.store,
            use_cache=self.use_cache,
            cancel=self.cancel,
        )
        if steps is not None:
            self.done = base + steps
        return result


def clean(obj: Any) -> Any:
    """JSON-ready copy: arrays and tensors to lists, NaN and ±inf to None, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return clean(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, np.generic):
        return clean(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj
