"""Freeze the first k layers from the second task on, or train them with a lower learning rate.

The guide (seeds/002) lists "selective fine-tuning: freeze layers not needed for the target
task" and "discriminative learning rates with very low rates for early layers". Early layers
hold the most generic features, so they are the ones to protect. The first task trains every
layer — with no pretrained network, a layer frozen from the start would stay random — and from
task 2 on ``model.layers[:k]`` is frozen (``early_lr_factor`` = 0) or trained at
``early_lr_factor`` × the learning rate (discriminative fine-tuning, as in ULMFiT).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from engine.errors import ConfigError
from engine.strategies._freeze import freeze
from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["freeze-k"] = "freeze-k"
    k: int = Field(
        1,
        ge=1,
        le=64,
        description="Number of early layers (model.layers[:k]) protected from task 2 on",
    )
    early_lr_factor: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="0 = freeze the first k layers; > 0 = train them at this multiple of the learning rate",
    )
    summary = (
        "Protect the first k layers after task 1: freeze them, or give them a lower learning rate."
    )


class FreezeK(Strategy):
    def before_task(self, t: int, model) -> None:

        depth = len(model.layers)
        if self.p.k > depth:
            raise ConfigError(
                f"strategy.k: {self.p.k} is more than the model's {depth} layers "
                f"({', '.join(model.probe_points)}); allowed: 1…{depth}"
            )
        if t >= 1 and self.p.early_lr_factor == 0:
            freeze(model.layers[: self.p.k])

    def param_groups(self, t: int, model) -> list[dict[str, Any]]:
        if t == 0 or self.p.early_lr_factor == 0:
            return super().param_groups(t, model)
        early = {id(p) for p in model.layers[: self.p.k].parameters()}
        return [
            {
                "params": [p for p in model.parameters() if id(p) in early],
                "lr_factor": self.p.early_lr_factor,
            },
            {"params": [p for p in model.parameters() if id(p) not in early and p.requires_grad]},
        ]


IMPLEMENTATION = FreezeK
