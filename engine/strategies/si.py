"""Synaptic Intelligence (Zenke, Poole & Ganguli 2017): importance from the path integral.

While training task k, every step adds ω_i −= g_i · Δθ_i: how much parameter i's movement
lowered the (unregularised) loss. At the end of the task, with Δ_i = θ_i(end) − θ_i(start),
Ω_i ← max(0, Ω_i + ω_i / (Δ_i² + ξ)) and θ* ← θ(end). Later tasks train on
loss + c · Σ_i Ω_i (θ_i − θ*_i)².

As in the authors' code (ganguli-lab/pathint): g is the gradient of the task loss alone (the
penalty enters as its own gradient after g is read, see _quadratic.QuadraticPenalty, so no
second backward pass is needed), and Ω is clipped at zero — a negative importance would push a
weight away from its anchor, the failure the blog (seeds/004) shows for a negative Fisher.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from engine.strategies._quadratic import QuadraticPenalty, trainable
from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["si"] = "si"
    extra_model_copies = 4.0  # anchor, importance Ω, path integral and the previous step's weights
    c: float = Field(
        1.0,
        ge=0.0,
        le=1e6,
        description="c: penalty weight on importance-weighted squared distance (Zenke et al.: 1 on split MNIST)",
    )
    xi: float = Field(
        1e-3,
        gt=0.0,
        le=10.0,
        description="ξ: damping in ω/(Δ² + ξ) for weights that hardly moved (Zenke et al.: 1e-3)",
    )
    summary = (
        "Importance of each weight from its contribution to the loss drop along the training path."
    )
    notes = {
        "class": (
            "Expect far less than in task-IL here: keeping important weights cannot teach the "
            "network to tell old classes from new ones without task ids, so the new classes' output "
            "units mostly win. Try task-IL to see it work, or replay for class-IL."
        )
    }


class SI(Strategy):
    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self.omega_total: dict[str, torch.Tensor] = {}  # Ω, summed over finished tasks
        self.anchor: dict[str, torch.Tensor] = {}  # θ* after the latest task
        self.quadratic = QuadraticPenalty()
        self._params: list[torch.Tensor] = []
        self._names: list[str] = []

    # -- per task -----------------------------------------------------------------------------
    def before_task(self, t: int, model) -> None:
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._start = [p.detach().clone() for p in self._params]
        self._before = [p.detach().clone() for p in self._params]  # θ before the step
        self._grad = [torch.zeros_like(p) for p in self._params]  # task-loss gradient of the step
        self._omega = [torch.zeros_like(p) for p in self._params]  # ω of this task

    def after_task(self, t: int, model) -> None:
        new = {}
        for name, p, start, w in zip(
            self._names, self._params, self._start, self._omega, strict=True
        ):
            contribution = w / ((p.detach() - start).square() + self.p.xi)
            total = self.omega_total[name] + contribution if self.omega_total else contribution
            new[name] = total.clamp_min(0.0)
        self.omega_total = new
        self.anchor = trainable(model)
        self.quadratic.set(self.omega_total, self.anchor)

    # -- per step -----------------------------------------------------------------------------
    @torch.no_grad()
    def before_step(self, t: int, model) -> None:
        torch._foreach_copy_(self._before, [p.detach() for p in self._params])
        torch._foreach_copy_(
            self._grad,
            [p.grad if p.grad is not None else torch.zeros_like(p) for p in self._params],
        )
        if self.quadratic and self.p.c != 0:
            self.quadratic.add_grad(model, self.p.c)

    @torch.no_grad()
    def after_step(self, t: int, model) -> None:
        delta = torch._foreach_sub([p.detach() for p in self._params], self._before)
        torch._foreach_addcmul_(self._omega, self._grad, delta, value=-1.0)  # ω −= g·Δθ

    # -- resumability (checkpoints are taken between tasks, so ω of a task never needs saving) -
    def state_dict(self) -> dict[str, Any]:
        return {"omega": self.omega_total, "anchor": self.anchor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.omega_total, self.anchor = state["omega"], state["anchor"]
        if self.omega_total:
            self.quadratic.set(self.omega_total, self.anchor)


IMPLEMENTATION = SI
