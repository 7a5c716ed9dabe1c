"""run(config, on_event) → Result: a continual run through the executor, as a typed result.

The work is the ``run`` kind (engine.kinds.run) executed by engine.executor: validate and
resolve the config, answer from the store, or take the key's lease and train phase by phase
(resumable per task), then store. This module only gives that result a type, :class:`Result`,
with the CLI's --json contract (ARCHITECTURE.md).

Every step reports through one callback, ``on_event(dict)``, that the CLI's progress bar and
the app's live view both consume. Event types: start, task_start, progress, eval, row, done,
cancelled, diverged, waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from engine import kinds
from engine.config import ExperimentConfig
from engine.executor import execute

EventFn = Callable[[dict], None]


@dataclass
class Result:
    key: str
    config: dict
    R: list[list[float]]
    baseline: list[float]
    metrics: dict
    timing: dict
    curves: dict = field(default_factory=dict)
    loss_matrix: list[list[float]] = field(default_factory=list)
    status: str = "done"  # done | diverged
    message: str = ""
    device: str = "cpu"
    cached: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json_contract(self) -> dict:
        """The CLI's --json document (ARCHITECTURE.md), plus curves and status."""
        d = self.to_dict()
        d["metrics"] = {
            k: self.metrics.get(k)
            for k in ("acc", "learning_acc", "bwt", "fwt", "forgetting", "rem")
        }
        return d

    @classmethod
    def from_dict(cls, d: dict, cached: bool | None = False) -> Result:
        """From a result dict; ``cached=None`` keeps the dict's own flag."""
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if cached is not None:
            known["cached"] = cached
        return cls(**known)


def prepare(config: ExperimentConfig | dict[str, Any]) -> tuple[ExperimentConfig, str]:
    """Validated, resolved config and its key (raises ConfigError on bad input)."""
    return kinds.prepare("run", config)


def run(
    config: ExperimentConfig | dict[str, Any],
    on_event: EventFn | None = None,
    store=None,
    use_cache: bool = True,
    cancel: Callable[[], bool] | None = None,
) -> Result:
    """Run (or fetch) one continual-learning experiment (engine.executor.execute of ``run``)."""
    return Result.from_dict(
        execute("run", config, on_event=on_event, store=store, use_cache=use_cache, cancel=cancel),
        cached=None,
    )
