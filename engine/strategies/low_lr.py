"""Learning-rate control for the tasks after the first: a lower rate, warm-up, early stopping.

The blog (seeds/004) found a tenth of the usual learning rate "almost universally" closer to
retraining from scratch; the guide (seeds/002) lists "low LR with warm-up" and "early stopping:
stop before full convergence on the target task" among the things that reduce forgetting.
Task 1 trains exactly as naive fine-tuning does; from task 2 on:

* the learning rate is ``lr_factor`` × train.lr;
* it ramps up linearly from 1/N to 1 of that over the first N = ``warmup_steps`` steps;
* a ``holdout`` share of the task's training data is set aside (not trained on), and the task
  ends once the loss on it has not improved for ``patience`` evaluation points in a row. The
  loop checks at its evaluation points (train.evals_per_task per task; raise that setting for
  finer-grained stopping). The weights at the stopping point are kept.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from engine.losses import task_loss
from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["low-lr"] = "low-lr"
    lr_factor: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="Learning rate of tasks after the first, as a multiple of train.lr (blog: a tenth)",
    )
    warmup_steps: int = Field(
        20,
        ge=0,
        le=100_000,
        description="Steps of linear learning-rate warm-up at the start of each later task (0 = none)",
    )
    patience: int = Field(
        2,
        ge=0,
        le=100,
        description="Stop a later task after this many evaluation points without a better held-out loss (0 = never stop early)",
    )
    holdout: float = Field(
        0.1,
        ge=0.01,
        le=0.5,
        description="Share of each later task's training data held out to decide early stopping",
    )
    summary = (
        "A lower learning rate after task 1, with warm-up and early stopping on held-out data."
    )


class LowLR(Strategy):
    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self._held: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def param_groups(self, t: int, model):
        groups = super().param_groups(t, model)
        if t >= 1:
            groups = [
                {**g, "lr_factor": g.get("lr_factor", 1.0) * self.p.lr_factor} for g in groups
            ]
        return groups

    # -- warm-up ---------------------------------------------------------------------------------
    def on_optimizer(self, t: int, optimizer) -> None:
        self._opt, self._step = None, 0
        if t >= 1 and self.p.warmup_steps > 0:
            self._opt = optimizer
            self._base = [g["lr"] for g in optimizer.param_groups]
            self._set_lr(1)

    def _set_lr(self, step: int) -> None:
        scale = min(1.0, step / self.p.warmup_steps)
        for g, base in zip(self._opt.param_groups, self._base, strict=True):
            g["lr"] = base * scale

    def after_step(self, t: int, model) -> None:
        if self._opt is not None:
            self._step += 1
            self._set_lr(self._step + 1)
            if self._step >= self.p.warmup_steps:
                self._opt = None

    # -- early stopping on a held-out slice -----------------------------------------------------
    def phase_data(self, t, x, y, tid):
        self._held, self._best, self._bad = None, float("inf"), 0
        if t == 0 or self.p.patience == 0:
            return x, y, tid
        gen = torch.Generator(device=x.device).manual_seed(
            self.ctx.seed * 1_000_003 + 7_919 * t + 29
        )
        perm = torch.randperm(len(x), generator=gen, device=x.device)
        n_held = max(1, round(self.p.holdout * len(x)))
        held, kept = perm[:n_held].sort().values, perm[n_held:].sort().values
        self._held = (x[held], y[held], tid[held])
        return x[kept], y[kept], tid[kept]

    @torch.no_grad()
    def should_stop(self, t: int, model) -> bool:
        if self._held is None:
            return False

        x, y, tid = self._held
        mask = self.ctx.bench.head_mask() if self.ctx.scenario == "task" else None
        model.eval()
        loss = task_loss(
            model(x).float(), y, tid, mask, self.ctx.train
        ).item()  # evaluation point: one sync
        model.train()
        if loss < self._best:
            self._best, self._bad = loss, 0
        else:
            self._bad += 1
        return self._bad >= self.p.patience


IMPLEMENTATION = LowLR
