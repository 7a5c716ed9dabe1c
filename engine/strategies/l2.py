"""L2 to the previous weights: loss + λ·‖θ − θ_prev‖², θ_prev = the weights after the last task.

Every parameter is pulled back equally — the blog's (seeds/004) "suppress all parameter
movements" baseline that EWC refines with per-parameter weights. The head is anchored too,
except, in task-IL, the head units of tasks not trained yet (anchoring their untrained values
would only stop the new task from learning); in class- and domain-IL every unit is shared.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from engine.strategies._quadratic import QuadraticPenalty, past_head_mask, trainable
from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["l2"] = "l2"
    extra_model_copies = 1.0  # the anchor θ*
    lam: float = Field(
        0.1,
        ge=0.0,
        le=1e6,
        description="λ: weight of the squared distance to the weights after the previous task",
    )
    summary = "Pull every weight back towards its value after the previous task (uniform L2)."
    notes = {
        "class": (
            "Expect little above naive here: pulling the weights back cannot teach the network to "
            "tell old classes from new ones without task ids, and the new classes' output units "
            "win. Try task-IL to see it work, or replay for class-IL."
        )
    }


class L2(Strategy):
    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self.anchor: dict[str, torch.Tensor] = {}
        self.quadratic = QuadraticPenalty()

    def before_task(self, t: int, model) -> None:
        if not self.anchor:
            return
        one = torch.ones((), device=self.ctx.device)
        weight = {n: one for n in self.anchor}
        if self.ctx.scenario == "task":
            # The units of task t itself are free: mask the heads of tasks 0…t−1 only.
            weight.update(past_head_mask(self.ctx.bench, t - 1))
        self.quadratic.set(weight, self.anchor)

    def after_task(self, t: int, model) -> None:
        self.anchor = trainable(model)

    def before_step(self, t, model) -> None:
        # The penalty enters as its gradient (see _quadratic.QuadraticPenalty).
        if self.quadratic and self.p.lam != 0:
            self.quadratic.add_grad(model, self.p.lam)

    def state_dict(self) -> dict[str, Any]:
        return {"anchor": self.anchor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.anchor = state["anchor"]


IMPLEMENTATION = L2
