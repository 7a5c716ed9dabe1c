"""A-GEM, Averaged Gradient Episodic Memory (Chaudhry et al., ICLR 2019).

After each task a random subset of its training samples (``mem_per_task``) joins an episodic
memory. At every step of a later task, after the backward pass, a reference gradient g_ref is
computed on ``sample_size`` samples drawn from the memory, and the current gradient g is
projected when it would increase the memory loss to first order:

    g ← g − (g·g_ref / g_ref·g_ref) · g_ref      if g·g_ref < 0,   else g unchanged,

so the projected gradient satisfies g·g_ref ≥ 0. The test is branch-free on the device
(the coefficient is min(g·g_ref, 0) / ‖g_ref‖²), so no step waits on the host.

The memory loss is the task loss the training loop uses (own heads in task-incremental
learning, the configured temperature). Works in every scenario; in class-incremental learning
it protects far less than replay, as the literature reports, because the constraint only
forbids increasing the old loss on average, not confusing old and new classes.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from engine.losses import task_loss
from engine.strategies._buffer import buffer_samples, generator
from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["agem"] = "agem"
    mem_per_task: int = Field(
        250,
        ge=1,
        le=100_000,
        description="Episodic memory: samples kept from each finished task (Chaudhry et al.: 250)",
    )
    sample_size: int = Field(
        256,
        ge=1,
        le=100_000,
        description="Memory samples per step for the reference gradient g_ref (Chaudhry et al.: 256)",
    )
    summary = (
        "Project each gradient so that, to first order, it does not increase the loss on an "
        "episodic memory of past samples (A-GEM)."
    )

    def batch_factor(self, batch_size: int) -> float:
        return 1.0 + self.sample_size / batch_size  # the reference gradient on a memory sample

    def buffer_samples(self, n_tasks: int) -> int:
        return self.mem_per_task * n_tasks


def project(grads: list[torch.Tensor], ref: list[torch.Tensor]) -> None:
    """In place: g ← g − min(g·g_ref, 0)/‖g_ref‖² · g_ref over the concatenation of all tensors."""
    dot = torch.stack([(g * r).sum() for g, r in zip(grads, ref, strict=True)]).sum()
    ref_sq = torch.stack([(r * r).sum() for r in ref]).sum()
    coef = dot.clamp(max=0.0) / ref_sq.clamp_min(1e-20)
    for g, r in zip(grads, ref, strict=True):
        g.sub_(coef * r)


class AGEM(Strategy):
    p: Params

    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self.head_mask = ctx.bench.head_mask() if ctx.scenario == "task" else None
        self.index = torch.zeros(0, dtype=torch.long)  # memory: rows of bench.x_train
        self.gen: torch.Generator | None = None
        self._refresh()

    def _refresh(self) -> None:
        self.x, self.y, self.t = buffer_samples(self.ctx.bench, self.index)

    def before_task(self, t: int, model) -> None:
        self.gen = generator(self.ctx.seed, t, self.ctx.device, stream=3)

    def after_task(self, t: int, model) -> None:
        lo, hi = self.ctx.bench.train_slices[t]
        pick = torch.randperm(hi - lo, generator=generator(self.ctx.seed, t, "cpu", stream=4))[
            : self.p.mem_per_task
        ]
        self.index = torch.cat([self.index, lo + pick.sort().values])
        self._refresh()

    def before_step(self, t: int, model) -> None:
        n = len(self.index)
        if n == 0:
            return
        params = [p for p in model.parameters() if p.grad is not None]
        if self.p.sample_size < n:
            rows = torch.randperm(n, generator=self.gen, device=self.x.device)[: self.p.sample_size]
            xm, ym, tm = self.x[rows], self.y[rows], self.t[rows]
        else:
            xm, ym, tm = self.x, self.y, self.t
        with torch.enable_grad():
            loss = task_loss(model(xm).float(), ym, tm, self.head_mask, self.ctx.train)
            ref = torch.autograd.grad(loss, params, allow_unused=True)
        ref = [torch.zeros_like(p) if r is None else r for p, r in zip(params, ref, strict=True)]
        project([p.grad for p in params], ref)

    def state_dict(self) -> dict:
        return {"index": self.index.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.index = state["index"].to(torch.long).cpu()
        self._refresh()


IMPLEMENTATION = AGEM
