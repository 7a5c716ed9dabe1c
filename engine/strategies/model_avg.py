"""Model averaging: a separate model per task, their scores averaged — the blog's negative result.

The blog: "train separate models on each month, and then just average the scores of your
monthly models … this did worse than either of our base methods". So each task's model is
trained on that task alone, starting from the same initial weights (the run's initialisation,
not the previous task's model: the models are separate), and evaluation averages the
probabilities (softmax scores) of the models trained so far:

    p(y | x) = 1/k Σ_i softmax(f_i(x))        (returned as log p, so argmax and NLL are right)

While task t trains, its live model takes part in the average with the finished ones.
``combine="weights"`` evaluates instead one network whose weights are the mean of the
per-task models' (all start from one initialisation, so the average is at least defined) —
a second, equally cheap way to merge them.

Scenarios: domain-incremental (the blog's monthly data: one label space, shifting inputs) and
class-incremental (each model knows only its own classes, which is what makes the average fail).
Not task-incremental: with the task id given, the sensible use of per-task models is to pick the
task's own model (no averaging at all), and averaging in the other models, which never trained
that task's head, only adds noise.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch.func import functional_call

from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["model-avg"] = "model-avg"
    combine: Literal["scores", "weights"] = Field(
        "scores",
        description="scores = average the per-task models' softmax outputs (the blog); weights = average their weights",
    )
    scenarios = ("domain", "class")
    why_not = (
        "with the task id known, per-task models would each answer for their own task; averaging in "
        "models that never trained that task's head only adds noise (use domain or class)"
    )
    summary = (
        "Train a separate model per task from the same initialisation and average their scores: "
        "the blog's negative result, worse than fine-tuning or retraining."
    )

    def model_copies(self, n_tasks: int) -> float:
        return float(n_tasks)  # one model per task


def _clone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


class ModelAvg(Strategy):
    p: Params

    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self.init: dict[str, torch.Tensor] | None = None
        self.models: list[dict[str, torch.Tensor]] = []
        self.training_task = False

    def before_task(self, t: int, model) -> None:
        if self.init is None:
            self.init = _clone(model.state_dict())
        elif t > 0:
            model.load_state_dict(self.init)  # a separate model: start over from the shared init
        self.training_task = True

    def after_task(self, t: int, model) -> None:
        self.models.append(_clone(model.state_dict()))
        self.training_task = False

    def predict(self, model, x, tid):
        members: list[dict[str, torch.Tensor] | None] = list(self.models)
        if self.training_task:
            members.append(None)  # the live model of the task being trained
        if len(members) <= 1:
            return (
                model(x)
                if not members or members[0] is None
                else functional_call(model, members[0], (x,))
            )
        if self.p.combine == "weights":
            live = model.state_dict()
            states = [live if m is None else m for m in members]
            mean = {
                k: (torch.stack([s[k].float() for s in states]).mean(0).to(live[k].dtype))
                for k in live
            }
            return functional_call(model, mean, (x,))
        logp = [
            torch.log_softmax(
                (model(x) if m is None else functional_call(model, m, (x,))).float(), dim=1
            )
            for m in members
        ]
        return torch.logsumexp(torch.stack(logp), dim=0) - math.log(len(logp))

    def state_dict(self) -> dict:
        return {"init": self.init or {}, "models": self.models}

    def load_state_dict(self, state: dict) -> None:
        device = self.ctx.device
        self.init = {k: v.to(device) for k, v in state["init"].items()} or None
        self.models = [{k: v.to(device) for k, v in m.items()} for m in state["models"]]


IMPLEMENTATION = ModelAvg
