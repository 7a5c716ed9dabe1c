"""Learning without Forgetting (Li & Hoiem 2017): distil the previous model's soft outputs.

Before task t (t ≥ 1) a frozen copy of the model — the teacher — is kept. On every batch of the
new task the student's outputs on the *old* tasks' units are pulled towards the teacher's,
softened by a temperature T (lecture eq. 21.1, Hinton et al. 2015):

    penalty = α · T² · Σ_groups KL( softmax(old/T) ‖ softmax(new/T) )     (batch mean)

The T² keeps the gradient's size independent of T (the soft targets' gradients scale as 1/T²),
as the guide states. No old data is needed: the new task's inputs are the probes.

Which units are distilled depends on the scenario:

* task-incremental: each old task's own head, one softmax per head (Li & Hoiem's multi-head
  LwF: one distillation term per old task, summed);
* class-incremental: the old model's logits over the old classes (the units of tasks < t), one
  softmax over those units — the new classes' units are not constrained;
* domain-incremental: the shared head, all units (every task uses the same label space).

Li & Hoiem's warm-up (training only the new head first) is not done here. The penalty is zero
when the student equals the teacher, so a first step from the teacher's weights is pure task
loss.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["lwf"] = "lwf"
    extra_model_copies = 1.0  # the previous model (its soft targets)
    alpha: float = Field(
        1.0,
        ge=0.0,
        le=1000.0,
        description="Weight α (λ_o) of the distillation loss; Li & Hoiem use 1",
    )
    T: float = Field(
        2.0,
        ge=0.1,
        le=100.0,
        description="Temperature T softening old and new outputs; Li & Hoiem and Hinton use 2",
    )
    summary = (
        "Keep a frozen copy of the previous model and distil its temperature-softened outputs on "
        "the old tasks' units while learning the new task (no old data needed)."
    )


def distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float
) -> torch.Tensor:
    """T² · KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the batch."""
    log_p = F.log_softmax(teacher.float() / temperature, dim=1)
    log_q = F.log_softmax(student.float() / temperature, dim=1)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True) * temperature**2


def old_unit_groups(bench, scenario: str, t: int) -> list[torch.Tensor]:
    """Output units distilled while training task t, one tensor per softmax (see module docstring)."""
    device = bench.x_train.device
    if scenario == "task":
        return [torch.arange(lo, hi, device=device) for lo, hi in bench.heads[:t]]
    if scenario == "class":
        return [torch.unique(bench.y_train[: bench.train_slices[t][0]])]
    return [torch.arange(bench.n_outputs, device=device)]


class LwF(Strategy):
    p: Params

    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self.teacher: torch.nn.Module | None = None
        self.groups: list[torch.Tensor] = []

    def before_task(self, t: int, model) -> None:
        # The teacher is the model as it enters task t; after a resume that is the restored
        # model, so nothing needs saving beyond the model itself.
        self.teacher = None
        if t == 0:
            return
        self.teacher = copy.deepcopy(model).eval().requires_grad_(False)
        self.groups = old_unit_groups(self.ctx.bench, self.ctx.scenario, t)

    def penalty(self, t, model, x, y, tid, logits):
        if self.teacher is None:
            return None
        with torch.no_grad():
            old = self.teacher(x).float()
        new = logits.float()
        total = sum(
            distillation_loss(new.index_select(1, u), old.index_select(1, u), self.p.T)
            for u in self.groups
        )
        return self.p.alpha * total

    def after_task(self, t: int, model) -> None:
        self.teacher = None  # free the copy; the next task takes a fresh one


IMPLEMENTATION = LwF
