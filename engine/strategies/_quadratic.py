"""The quadratic anchor penalty Σ_i w_i (θ_i − c_i)² that l2, ewc, online-ewc and si share.

Each strategy only decides the per-parameter weights w (1, a Fisher diagonal, SI's importance)
and the centres c (the parameters after an earlier task); this module evaluates the penalty.

Several anchors (EWC keeps one Fisher and one anchor per past task) collapse exactly into one:
Σ_k F_k (θ − a_k)² = A (θ − m)² + C with A = Σ_k F_k, m = Σ_k F_k a_k / A and
C = Σ_k F_k a_k² − A m², so the per-step cost does not grow with the number of tasks.
"""

from __future__ import annotations

import torch
from torch import nn


def trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of every trainable parameter, by name."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def past_head_mask(bench, t: int, head_weight_name: str = "head.weight") -> dict[str, torch.Tensor]:
    """Task-IL: 1 on the head rows of tasks 0…t, 0 on the rows of later tasks.

    Later tasks' head units have not been trained yet, so anchoring them would only stop those
    tasks from learning. In class- and domain-IL every task uses every unit, so nothing is exempt.
    """
    rows = torch.zeros(bench.n_outputs, device=bench.x_train.device)
    for lo, hi in bench.heads[: t + 1]:
        rows[lo:hi] = 1.0
    bias_name = head_weight_name.replace("weight", "bias")
    return {head_weight_name: rows[:, None], bias_name: rows}


class QuadraticPenalty:
    """P(θ) = Σ over named parameters of (w · (θ − c)²).sum() + const; empty (falsy) until set.

    Training never evaluates P: the strategies add its gradient, 2·w·(θ − c), to the parameters'
    gradients right after backward (``add_grad``, three fused passes over the weights), which is
    the same update as adding P to the loss, at about half the cost of letting autograd build
    and differentiate it every step. ``value`` evaluates P itself, for inspection and tests.
    """

    def __init__(self) -> None:
        self.weight: dict[str, torch.Tensor] = {}
        self.centre: dict[str, torch.Tensor] = {}
        self.const = torch.zeros(())
        self._bound: tuple[int, list, list, list] | None = None

    def __bool__(self) -> bool:
        return bool(self.weight)

    def set(
        self, weight: dict[str, torch.Tensor], centre: dict[str, torch.Tensor], const=None
    ) -> None:
        self.weight, self.centre = weight, centre
        first = next(iter(centre.values()))
        self.const = const if const is not None else torch.zeros((), device=first.device)
        self._bound = None

    def set_many(
        self, weights: list[dict[str, torch.Tensor]], centres: list[dict[str, torch.Tensor]]
    ) -> None:
        """Collapse Σ_k w_k (θ − c_k)² into one weight, one centre and a constant (exact)."""
        if len(weights) == 1:
            self.set(weights[0], centres[0])
            return
        weight, centre, const = (
            {},
            {},
            torch.zeros((), device=next(iter(centres[0].values())).device),
        )
        for name in centres[0]:
            total = sum(w[name] for w in weights)
            moment = sum(w[name] * c[name] for w, c in zip(weights, centres, strict=True))
            second = sum(w[name] * c[name] ** 2 for w, c in zip(weights, centres, strict=True))
            # Where no task cares (total = 0) the centre is irrelevant; take the latest anchor.
            mean = torch.where(total > 0, moment / total.clamp_min(1e-30), centres[-1][name])
            weight[name], centre[name] = total, mean
            const = const + (second - total * mean**2).sum()
        self.set(weight, centre, const.clamp_min(0.0))

    def _bind(self, model: nn.Module) -> tuple[list, list, list]:
        # (param, w, c) lists, built once per model: the parameters are the same tensors all run.
        if self._bound is None or self._bound[0] != id(model):
            named = dict(model.named_parameters())
            names = list(self.weight)
            self._bound = (
                id(model),
                [named[n] for n in names],
                [self.weight[n].expand_as(named[n]) for n in names],
                [self.centre[n] for n in names],
            )
        return self._bound[1], self._bound[2], self._bound[3]

    def value(self, model: nn.Module) -> torch.Tensor:
        params, weights, centres = self._bind(model)
        total = self.const
        for p, w, c in zip(params, weights, centres, strict=True):
            total = total + (w * (p - c).square()).sum()
        return total

    @torch.no_grad()
    def add_grad(self, model: nn.Module, scale: float) -> None:
        """p.grad += scale · ∂P/∂θ = 2·scale·w·(θ − c): the gradient of scale · P, no autograd."""
        params, weights, centres = self._bind(model)
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        diff = torch._foreach_sub([p.detach() for p in params], centres)
        torch._foreach_mul_(diff, weights)
        torch._foreach_add_([p.grad for p in params], diff, alpha=2.0 * scale)
