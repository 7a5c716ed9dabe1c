"""Online EWC (Schwarz et al. 2018, "Progress & Compress"): one running Fisher and one anchor.

After task k: F ← γ·F + F_k and θ* ← θ after task k. While training later tasks:
loss + λ/2 · Σ_i F_i (θ_i − θ*_i)². Memory stays constant however many tasks there are, and
γ < 1 lets old tasks' importance fade. Each F_k is scaled as ``fisher_norm`` says before it is
added (mean-normalised by default, as in ewc), so every task enters with the same total weight.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from engine.strategies._fisher import FisherParams
from engine.strategies._quadratic import trainable
from engine.strategies.ewc import EWC


class Params(FisherParams):
    name: Literal["online-ewc"] = "online-ewc"
    extra_model_copies = 2.0  # anchor θ* and the running Fisher
    lam: float = Field(
        1.0,
        ge=0.0,
        le=1e12,
        description="λ: penalty weight on Fisher-weighted squared distance to the latest weights (with fisher_norm=none the raw Fisher needs 1e2…1e9)",
    )
    gamma: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="γ: decay of the running Fisher per task (F ← γF + F_new); 1 = never forget",
    )
    summary = "EWC with one running Fisher (decayed by γ each task) and only the latest anchor."
    notes = {
        "class": (
            "Expect only a little above naive here: the penalty keeps the weights old tasks need, "
            "but without task ids nothing stops the new classes' output units from outscoring the "
            "old ones. Try task-IL to see it work, or replay for class-IL."
        )
    }


class OnlineEWC(EWC):
    """``fisher`` is the running F, ``anchor`` the weights after the latest task."""

    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    def after_task(self, t: int, model) -> None:
        new = self.task_fisher(t, model)
        if self.fisher:
            self.fisher = {n: self.p.gamma * self.fisher[n] + f for n, f in new.items()}
        else:
            self.fisher = new
        self.anchor = trainable(model)
        self._rebuild()

    def _rebuild(self) -> None:
        if self.fisher:
            self.quadratic.set(self.fisher, self.anchor)
            self._apply_cap()

    def state_dict(self) -> dict[str, Any]:
        return {"fisher": self.fisher, "anchor": self.anchor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.fisher, self.anchor = state["fisher"], state["anchor"]
        self._rebuild()


IMPLEMENTATION = OnlineEWC
