"""Frozen feature extractor: train everything on the first task, then only the head.

The course's (seeds/000) "frozen feature extraction": after task 1 the hidden layers
(``model.layers``) never change again, so the representation cannot forget; only the linear
head learns the later tasks — in task-IL each task's own slice of it, in class-IL the one head
over all classes, in domain-IL the shared head (which can still be overwritten). It is a linear
probe on task 1's features: stable, but new tasks are only as good as those features allow.
"""

from __future__ import annotations

from typing import Literal

from engine.strategies._freeze import freeze
from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["frozen"] = "frozen"
    summary = "Freeze the feature extractor after the first task; only the head keeps learning."


class Frozen(Strategy):
    def before_task(self, t: int, model) -> None:
        if t >= 1:
            freeze(model.layers)


IMPLEMENTATION = Frozen
