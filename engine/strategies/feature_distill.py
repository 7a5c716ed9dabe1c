"""Feature distillation: keep chosen layers' activations close to the previous model's (guide).

Before task t (t ≥ 1) a frozen copy of the model is kept; on every batch of the new task

    penalty = w · mean_layers  mean_elements (a_l(x) − a_l^old(x))²

over the probe points named in ``layers`` (the guide's FeatureDistillation: MSE, averaged over
layers). We use the squared (L2) distance rather than a cosine one because it also pins the
activations' scale, which the next layers and the head depend on; a cosine loss would let a
layer's features grow or shrink freely.

The student's activations come from forward hooks on the chosen layers, registered for the
duration of a task, so the training loop's one forward pass serves both the task loss and the
penalty. The hooks are removed after each task (and before the teacher is copied, so the
teacher carries none). Scenario-agnostic: the penalty never looks at labels or heads.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from engine.errors import ConfigError
from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["feature-distill"] = "feature-distill"
    extra_model_copies = 1.0  # the previous model (its features)
    layers: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_\s,]*$",
        description="Comma-separated probe points to distil, e.g. 'fc1,fc2'; empty = the last hidden layer",
    )
    weight: float = Field(
        1.0,
        ge=0.0,
        le=10_000.0,
        description="Weight w of the mean squared difference to the previous model's activations",
    )
    summary = (
        "Keep chosen layers' activations on new data close to the previous model's (L2), "
        "protecting the representation rather than the outputs."
    )


class FeatureDistill(Strategy):
    p: Params

    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self.teacher = None
        self.points: list[str] = []
        self.acts: dict[str, torch.Tensor] = {}
        self.handles: list = []

    def _points(self, model) -> list[str]:
        names = [n.strip() for n in self.p.layers.split(",") if n.strip()]
        if not names:
            return [model.probe_points[-1]]
        unknown = [n for n in names if n not in model.probe_points]
        if unknown:
            raise ConfigError(
                f"strategy.layers: unknown probe point(s) {', '.join(map(repr, unknown))} for this "
                f"{model.arch}; valid: {', '.join(model.probe_points)}"
            )
        return list(dict.fromkeys(names))

    def _unhook(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles, self.acts = [], {}

    def before_task(self, t: int, model) -> None:
        self.points = self._points(model)  # a bad name fails at the start of the run
        self._unhook()
        self.teacher = None
        if t == 0:
            return
        self.teacher = copy.deepcopy(model).eval().requires_grad_(False)
        for name in self.points:
            self.handles.append(model.layer(name).register_forward_hook(self._keep(name)))

    def _keep(self, name: str):
        def hook(module, args, out):
            self.acts[name] = out

        return hook

    def penalty(self, t, model, x, y, tid, logits):
        if self.teacher is None:
            return None
        with torch.no_grad():
            _, old = self.teacher.forward_with_acts(x, self.points)
        loss = sum(F.mse_loss(self.acts[n].float(), old[n].float()) for n in self.points)
        return self.p.weight * loss / len(self.points)

    def after_task(self, t: int, model) -> None:
        self._unhook()
        self.teacher = None


IMPLEMENTATION = FeatureDistill
