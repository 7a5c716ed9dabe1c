"""Joint training: one model trained on all tasks' data at once — the offline upper bound."""

from __future__ import annotations

from typing import Literal

from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["joint"] = "joint"
    summary = "Train once on every task's data together; the ceiling a continual learner aims for."

    def phases(self, n_tasks: int) -> list[list[int]]:
        return [list(range(n_tasks))]


class Joint(Strategy):
    """A single phase over all tasks; every row of R is that one model, evaluated task by task."""


IMPLEMENTATION = Joint
