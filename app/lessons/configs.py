"""The experiment configs the lessons run and link to: small enough for seconds on a CPU.

Every setting that matters is spelled out (not left to the benchmark's preset), so a lesson's
numbers do not move when a preset is retuned. Lessons read these at call time
(``configs.TWO_TASKS``), so tests can swap in tinier ones.
"""

from __future__ import annotations

import copy
from typing import Any

# The course's setting: an old task and a new one, a head per task (task-incremental),
# five digit classes each.
TWO_TASKS: dict[str, Any] = {
    "scenario": "task",
    "data": {"benchmark": "split-digits", "split": "5,5"},
    "model": {"arch": "mlp", "depth": 2, "width": 100},
    "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 32, "epochs": 5, "seed": 0},
    "strategy": {"name": "naive"},
}

# Five two-class tasks with one growing head (class-incremental): where plain fine-tuning
# forgets everything and rehearsal matters most.
FIVE_TASKS: dict[str, Any] = {
    "scenario": "class",
    "data": {"benchmark": "split-digits", "n_tasks": 5},
    "model": {"arch": "mlp", "depth": 2, "width": 100},
    "train": {"optimizer": "adam", "lr": 0.001, "batch_size": 32, "epochs": 5, "seed": 0},
    "strategy": {"name": "naive"},
}

# A deeper network for the tunnel: all ten digits at once.
DEEP_NET: dict[str, Any] = {
    "scenario": "class",
    "data": {"benchmark": "split-digits", "n_tasks": 5},
    "model": {"arch": "mlp", "depth": 8, "width": 64},
    "train": {"optimizer": "adam", "lr": 0.001, "batch_size": 32, "epochs": 10, "seed": 0},
    "strategy": {"name": "joint"},
}


def with_strategy(base: dict[str, Any], name: str, **params: Any) -> dict[str, Any]:
    """A copy of ``base`` with the strategy ``name`` and its hyperparameters."""
    cfg = copy.deepcopy(base)
    cfg["strategy"] = {"name": name, **params}
    return cfg
