"""Learning without Forgetting (Li & Hoiem 2017): distil the previous model's soft outputs.

Before task t (t ≥ 1) a frozen copy of the model — the teacher — is kept. On every batch of the
new task the student's outputs are pulled towards the teacher's on the *old* tasks' units,
softened by a temperature T (lecture eq. 21.1, Hinton et al. 2015):

    penalty = α · T² · Σ_groups KL( softmax(old/T) ‖ softmax(new/T) )     (batch mean)

The T² keeps the gradient's size independent of T (the soft targets' gradients scale as 1/T²),
as the guide states. No old data is needed: the new task's inputs are the probes.

Which units each softmax covers depends on the scenario:

* task-incremental: each old task's own head, one softmax per head (Li & Hoiem's multi-head
  LwF: one distillation term per old task, summed);
* class-incremental (``class_units``): ``seen`` (default) — the student's softmax is over every
  unit seen so far, the old tasks' and the current task's, and the teacher's soft targets over
  the old units are padded with probability 0 on the current task's units (van de Ven et al.
  2019/2022, their ``loss_fn_kd``): the distillation also says "these images are not the new
  classes", which is what keeps the new units from taking over the old classes' images;
  ``old`` — both softmaxes over the old units only (Li & Hoiem's old heads, Avalanche's LwF):
  the new units are free, and in class-IL that ends where naive does;
* domain-incremental: the shared head, all units (every task uses the same label space).

Li & Hoiem's warm-up (training only the new head first) is not done here. The penalty is zero
when the student equals the teacher on the old units' softmax (``old``, task- and domain-IL);
with ``seen`` it is zero only once the new units carry no probability.
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
    class_units: Literal["seen", "old"] = Field(
        "seen",
        description="Class-IL: the student's softmax in the distillation — 'seen' = every unit seen so far, the teacher's targets 0 on the new task's units (van de Ven et al.), 'old' = the old units only (Li & Hoiem, Avalanche; ends near naive)",
    )
    summary = (
        "Keep a frozen copy of the previous model and distil its temperature-softened outputs on "
        "the old tasks' units while learning the new task (no old data needed)."
    )
    notes = {
        "class": (
            "Without task ids or old data, LwF keeps old classes here only by holding the new ones "
            "back (the old model says new-task images are not new classes), so old tasks survive "
            "and new ones are learned worse. Try task-IL to see it work cleanly, or replay."
        )
    }


def distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float
) -> torch.Tensor:
    """T² · KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the batch.

    The student may have more units than the teacher: its softmax is over all of them and the
    teacher's soft targets are padded with zero probability for the extra ones (the units of the
    classes the teacher never saw, which are the student's last columns).
    """
    n_old = teacher.shape[1]
    log_p = F.log_softmax(teacher.float() / temperature, dim=1)
    log_q = F.log_softmax(student.float() / temperature, dim=1)[:, :n_old]
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True) * temperature**2


def unit_groups(
    bench, scenario: str, t: int, class_units: str = "seen"
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(student units, teacher units) of each softmax distilled while training task t; the
    teacher's units come first among the student's (see the module docstring)."""
    device = bench.x_train.device
    if scenario == "task":
        heads = [torch.arange(lo, hi, device=device) for lo, hi in bench.heads[:t]]
        return [(u, u) for u in heads]
    if scenario == "class":
        old = torch.unique(bench.y_train[: bench.train_slices[t][0]])
        if class_units == "old":
            return [(old, old)]
        new = torch.unique(bench.y_train[slice(*bench.train_slices[t])])
        return [(torch.cat([old, new[~torch.isin(new, old)]]), old)]
    every = torch.arange(bench.n_outputs, device=device)
    return [(every, every)]


class LwF(Strategy):
    p: Params

    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self.teacher: torch.nn.Module | None = None
        self.groups: list[tuple[torch.Tensor, torch.Tensor]] = []

    def before_task(self, t: int, model) -> None:
        # The teacher is the model as it enters task t; after a resume that is the restored
        # model, so nothing needs saving beyond the model itself.
        self.teacher = None
        if t == 0:
            return
        self.teacher = copy.deepcopy(model).eval().requires_grad_(False)
        self.groups = unit_groups(self.ctx.bench, self.ctx.scenario, t, self.p.class_units)

    def penalty(self, t, model, x, y, tid, logits):
        if self.teacher is None:
            return None
        with torch.no_grad():
            old = self.teacher(x).float()
        new = logits.float()
        total = sum(
            distillation_loss(new.index_select(1, su), old.index_select(1, tu), self.p.T)
            for su, tu in self.groups
        )
        return self.p.alpha * total

    def after_task(self, t: int, model) -> None:
        self.teacher = None  # free the copy; the next task takes a fresh one


IMPLEMENTATION = LwF
