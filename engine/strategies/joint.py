"""Joint training: one model trained on all tasks' data at once — the offline upper bound."""

from __future__ import annotations

from typing import ClassVar, Literal

from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["joint"] = "joint"
    summary = "Train once on every task's data together; the ceiling a continual learner aims for."
    # Every row of R is the same final model, so the metrics that compare rows (before/after a
    # task, the diagonal against the row above) say nothing; a page shows "—" with the reason.
    # Read with getattr(params, "meaningless_metrics", ()) until base.py declares the default.
    meaningless_metrics: ClassVar[tuple[str, ...]] = ("bwt", "fwt", "forgetting", "rem")
    meaningless_reason: ClassVar[str] = (
        "Joint trains one model on all tasks at once, so every row of R is that same final "
        "model: there is no before and after a task to compare, and BWT, FWT, forgetting and "
        "remembering mean nothing."
    )

    def phases(self, n_tasks: int) -> list[list[int]]:
        return [list(range(n_tasks))]


class Joint(Strategy):
    """A single phase over all tasks; every row of R is that one model, evaluated task by task."""


IMPLEMENTATION = Joint
