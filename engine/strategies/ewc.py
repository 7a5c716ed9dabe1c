"""Elastic Weight Consolidation (Kirkpatrick et al. 2017): stay close to each old task's weights,
in proportion to how much that task's likelihood depends on them.

After task k: a diagonal Fisher F_k (engine/strategies/_fisher.py) and an anchor θ*_k.
While training later tasks: loss + λ/2 · Σ_k Σ_i F_k,i (θ_i − θ*_k,i)²  (one term per past task).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from engine.strategies._fisher import FisherParams, diagonal_fisher, fisher_generator
from engine.strategies._quadratic import QuadraticPenalty, trainable
from engine.strategies.base import Strategy


class Params(FisherParams):
    name: Literal["ewc"] = "ewc"
    extra_model_copies = 2.0  # anchor θ* and the Fisher
    lam: float = Field(
        1e5,
        ge=0.0,
        le=1e12,
        description="λ: penalty weight on Fisher-weighted squared distance to each old task's weights",
    )
    summary = "Penalise moving the weights old tasks' likelihood depends on (diagonal Fisher, one anchor per task)."


class EWC(Strategy):
    """One (Fisher, anchor) pair per finished task; the penalty sums them (collapsed, exact)."""

    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self.fishers: list[dict[str, torch.Tensor]] = []
        self.anchors: list[dict[str, torch.Tensor]] = []
        self.quadratic = QuadraticPenalty()

    def task_fisher(self, t: int, model) -> dict[str, torch.Tensor]:
        """The Fisher of phase ``t``'s training data at the current weights."""
        b, ctx = self.ctx.bench, self.ctx
        idx = b.train_index(self.phases(b.n_tasks)[t])
        x, y, tid = b.x_train[idx], b.y_train[idx], b.t_train[idx]
        gen = fisher_generator(ctx.seed, t, ctx.device)
        if self.p.fisher_samples < len(x):
            pick = torch.randperm(len(x), generator=gen, device=ctx.device)[: self.p.fisher_samples]
            x, y, tid = x[pick], y[pick], tid[pick]
        mask = b.head_mask() if ctx.scenario == "task" else None
        return diagonal_fisher(model, x, y, tid, ctx.train, mask, self.p.fisher_labels, gen)

    def after_task(self, t: int, model) -> None:
        self.fishers.append(self.task_fisher(t, model))
        self.anchors.append(trainable(model))
        self._rebuild()

    def _rebuild(self) -> None:
        if self.fishers:
            self.quadratic.set_many(self.fishers, self.anchors)

    def before_step(self, t, model) -> None:
        # The penalty enters as its gradient (see _quadratic.QuadraticPenalty), so the loss the
        # curves show is the task loss alone.
        if self.quadratic and self.p.lam != 0:
            self.quadratic.add_grad(model, 0.5 * self.p.lam)

    def state_dict(self) -> dict[str, Any]:
        return {"fishers": self.fishers, "anchors": self.anchors}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fishers, self.anchors = state["fishers"], state["anchors"]
        self._rebuild()


IMPLEMENTATION = EWC
