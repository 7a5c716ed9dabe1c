"""Memory Aware Synapses (Aljundi et al. 2018, ECCV): a Forgetting Explorer strategy plugin.

After each task, a weight's importance is how much the network's output moves with it on that
task's inputs — no labels needed: Ω_i = mean over samples x of |∂‖f(x)‖² / ∂θ_i|, with f(x)
the task's logits. Importances add up over tasks; later tasks pay λ Σ_i Ω_i (θ_i − θ*_i)², θ*
the weights after the last finished task.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["mas"] = "mas"
    lam: float = Field(
        1.0, ge=0.0, le=1e6, description="λ: weight of the importance-weighted squared distance"
    )
    samples: int = Field(
        500, ge=1, le=100_000, description="Images of a finished task that measure importance"
    )
    summary = "Keep the weights the network's output is sensitive to (unsupervised importance)."
    extra_model_copies = 2.0  # the importances Ω and the anchor θ*


def importance(model, x: torch.Tensor, units: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Ω: the mean over ``x`` of |∂‖f(x)[lo:hi]‖² / ∂θ| for every trainable parameter."""
    lo, hi = units
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = dict(model.named_buffers())

    def squared_norm(p, one):
        out = torch.func.functional_call(model, (p, buffers), (one.unsqueeze(0),))
        return out[:, lo:hi].square().sum()

    per_sample = torch.func.vmap(torch.func.grad(squared_norm), in_dims=(None, 0))
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    was_training = model.training
    model.eval()  # batch norm uses its running statistics, one sample at a time
    try:
        for chunk in x.split(64):
            for n, g in per_sample(params, chunk).items():
                total[n] += g.abs().sum(0)
    finally:
        model.train(was_training)
    return {n: t / len(x) for n, t in total.items()}


class MAS(Strategy):
    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self.omega: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    def after_task(self, t: int, model) -> None:
        bench = self.ctx.bench
        x = bench.x_train[bench.train_index(self.phases(bench.n_tasks)[t])]
        g = torch.Generator(device=x.device).manual_seed(self.ctx.seed + t)
        x = x[torch.randperm(len(x), generator=g, device=x.device)[: self.p.samples]]
        for n, w in importance(model, x, bench.heads[t]).items():
            self.omega[n] = self.omega[n] + w if n in self.omega else w
        self.anchor = {n: p.detach().clone() for n, p in model.named_parameters()}

    def penalty(self, t, model, x, y, tid, logits) -> torch.Tensor | None:
        if not self.omega or self.p.lam == 0:
            return None
        terms = [
            (self.omega[n] * (p - self.anchor[n]).square()).sum()
            for n, p in model.named_parameters()
            if n in self.omega
        ]
        return self.p.lam * torch.stack(terms).sum()

    def state_dict(self) -> dict[str, Any]:
        return {"omega": self.omega, "anchor": self.anchor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.omega, self.anchor = state["omega"], state["anchor"]


IMPLEMENTATION = MAS
