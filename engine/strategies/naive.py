"""Naive fine-tuning: train on each task in turn with nothing to protect old tasks."""

from __future__ import annotations

from typing import Literal

from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["naive"] = "naive"
    summary = "Fine-tune on each task in turn; the lower bound that shows catastrophic forgetting."


class Naive(Strategy):
    """Everything the base class does: one phase per task, plain cross-entropy."""


IMPLEMENTATION = Naive
