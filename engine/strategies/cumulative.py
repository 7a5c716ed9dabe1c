"""Cumulative retraining: each phase trains on every task seen so far (course, blog)."""

from __future__ import annotations

from typing import Literal

from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["cumulative"] = "cumulative"
    summary = (
        "Retrain on all data seen so far after each new task: no forgetting by construction, "
        "at a cost that grows with every task."
    )

    def phases(self, n_tasks: int) -> list[list[int]]:
        return [list(range(t + 1)) for t in range(n_tasks)]


class Cumulative(Strategy):
    """Phases [0], [0,1], [0,1,2], …: phase t trains on the union of tasks 0…t.

    Each phase continues from the current model (warm start) rather than from a fresh
    initialisation, as a deployed model would be updated (the blog's "retrain on everything"
    baseline without the cost of starting over); the epochs per phase are the configured
    ``train.epochs``, so a phase's step count grows with the data.
    """


IMPLEMENTATION = Cumulative
