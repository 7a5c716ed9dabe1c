"""Elastic Weight Consolidation (Kirkpatrick et al. 2017): stay close to each old task's weights,
in proportion to how much that task's likelihood depends on them.

After task k: a diagonal Fisher F_k (engine/strategies/_fisher.py) and an anchor θ*_k.
While training later tasks: loss + λ/2 · Σ_k Σ_i F_k,i (θ_i − θ*_k,i)²  (one term per past task).

By default each F_k is divided by its mean entry, so λ = 1 pulls an average weight back as l2
with λ = 0.5 does and the important ones thousands of times harder; the raw Fisher of a
converged model is ~1e-13 to 1e-5 per weight, so an unscaled λ means something different on
every benchmark (docs/strategies-regularization.md). ``fisher_norm=none`` with ``lam=1e5`` is
the previous default (van de Ven et al.'s split-MNIST task-IL setting).

Under SGD a weight whose pull λ·F_i exceeds 2/lr overshoots its anchor further every step and
the run diverges (the mean-normalised Fisher's largest entries are ~1e3–1e4, so at λ = 1 that is
any lr above ~2e-4 to 2e-3). So with SGD each weight's F_i is capped at 1/(lr·λ), the stiffest pull one
step can apply without overshooting: such a weight lands on its anchor in one step instead of
oscillating away. Adam normalises each step, so nothing is capped there.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from engine.strategies._fisher import (
    FisherParams,
    diagonal_fisher,
    fisher_generator,
    normalized,
)
from engine.strategies._quadratic import QuadraticPenalty, trainable
from engine.strategies.base import Strategy


class Params(FisherParams):
    name: Literal["ewc"] = "ewc"
    extra_model_copies = 2.0  # anchor θ* and the Fisher
    lam: float = Field(
        1.0,
        ge=0.0,
        le=1e12,
        description="λ: penalty weight on Fisher-weighted squared distance to each old task's weights (with fisher_norm=none the raw Fisher needs 1e2…1e9)",
    )
    summary = "Penalise moving the weights old tasks' likelihood depends on (diagonal Fisher, one anchor per task)."
    notes = {
        "class": (
            "Expect only a little above naive here: EWC keeps the weights old tasks need, but "
            "without task ids nothing stops the new classes' output units from outscoring the old "
            "ones. Try task-IL to see it work, or replay for class-IL."
        )
    }


class EWC(Strategy):
    """One (Fisher, anchor) pair per finished task; the penalty sums them (collapsed, exact)."""

    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self.fishers: list[dict[str, torch.Tensor]] = []
        self.anchors: list[dict[str, torch.Tensor]] = []
        self.quadratic = QuadraticPenalty()
        self.cap: float | None = None  # SGD: the largest F_i one step can apply (see docstring)

    def task_fisher(self, t: int, model) -> dict[str, torch.Tensor]:
        """The Fisher of phase ``t``'s training data at the current weights, scaled as
        ``fisher_norm`` says (each task's on its own, so every task weighs in alike)."""
        b, ctx = self.ctx.bench, self.ctx
        idx = b.train_index(self.phases(b.n_tasks)[t])
        x, y, tid = b.x_train[idx], b.y_train[idx], b.t_train[idx]
        gen = fisher_generator(ctx.seed, t, ctx.device)
        if self.p.fisher_samples < len(x):
            pick = torch.randperm(len(x), generator=gen, device=ctx.device)[: self.p.fisher_samples]
            x, y, tid = x[pick], y[pick], tid[pick]
        mask = b.head_mask() if ctx.scenario == "task" else None
        fisher = diagonal_fisher(model, x, y, tid, ctx.train, mask, self.p.fisher_labels, gen)
        return normalized(fisher, self.p.fisher_norm)

    def after_task(self, t: int, model) -> None:
        self.fishers.append(self.task_fisher(t, model))
        self.anchors.append(trainable(model))
        self._rebuild()

    def _rebuild(self) -> None:
        if self.fishers:
            self.quadratic.set_many(self.fishers, self.anchors)
            self._apply_cap()

    def _apply_cap(self) -> None:
        q = self.quadratic
        if self.cap is not None and q:
            q.set({n: w.clamp_max(self.cap) for n, w in q.weight.items()}, q.centre, q.const)

    def on_optimizer(self, t: int, optimizer) -> None:
        lr = max(g["lr"] for g in optimizer.param_groups)
        sgd = isinstance(optimizer, torch.optim.SGD) and lr > 0 and self.p.lam > 0
        cap = 1.0 / (lr * self.p.lam) if sgd else None
        if cap != self.cap:
            self.cap = cap
            self._rebuild()

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
