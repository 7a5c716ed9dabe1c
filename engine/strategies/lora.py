"""Low-rank adapters per task on a frozen backbone (lecture 21: "low-rank adapter"; Hu et al. 2021).

Task 0 trains the whole network: it plays the pre-trained model. From task 1 on, the backbone
(every hidden layer) is frozen, and each task t gets its own adapter: for every Linear and
Conv2d weight W of the hidden layers a pair (A_t, B_t) of rank r, so that task t's network uses

    W + (α / r) · B_t A_t      (a conv kernel's ΔW is B_t A_t reshaped to out × in × kh × kw)

A_t starts Kaiming-uniform and B_t at zero (ΔW = 0 at the start, as in LoRA), both from a
generator seeded with the run's seed. Each task also has its own head slice (its output units);
that slice trains with the adapter, with weight decay off so the other tasks' rows stay exactly
as they were. Old tasks therefore cannot change at all: backbone, their adapters and their head
rows are bit-identical after later tasks, and BWT is exactly 0.

Adapters are forward hooks on the adapted layers (the model's structure and state_dict stay
untouched, so checkpoints and analyses see the plain backbone): the hook adds the low-rank
path's output, F(x; B A) computed as two thin layers, to the layer's output. In training the
current task's adapter is applied; in evaluation each sample gets its own task's adapter
(``predict`` receives the task ids), so a mixed batch needs one backbone pass plus one cheap
low-rank pass per task.

Task-incremental only: picking the adapter needs the task id at test time. Batch norm is
refused (its running statistics would keep moving in a "frozen" backbone).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from engine.errors import ConfigError
from engine.strategies._buffer import generator
from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["lora"] = "lora"
    rank: int = Field(8, ge=1, le=512, description="Rank r of each task's adapters ΔW = B·A")
    alpha: float = Field(
        8.0,
        gt=0.0,
        le=4096.0,
        description="LoRA scaling α: ΔW is multiplied by α / r (Hu et al.: α = the first r tried)",
    )
    scenarios = ("task",)
    why_not = (
        "each task has its own adapter, and choosing it needs the task id at test time, which only "
        "task-incremental learning gives"
    )
    summary = (
        "Train task 0 fully, then freeze the backbone and give every later task its own low-rank "
        "adapters and head: nothing old can change, so nothing is forgotten."
    )


class LoRA(Strategy):
    p: Params

    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self.scale = params.alpha / params.rank
        self.layers: list[nn.Module] = []
        self.A: list[list[torch.Tensor]] = []  # A[task][layer]: r × fan_in
        self.B: list[list[torch.Tensor]] = []  # B[task][layer]: out × r
        self.current: int | None = None  # task whose adapter the training forward uses
        self.trained = 0  # adapters 1 … trained-1 are finished
        self.eval_tid: torch.Tensor | None = None
        self._hooked: nn.Module | None = None

    # -- building the adapters -----------------------------------------------------------------
    def _attach(self, model) -> None:
        if self._hooked is model:
            return
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            raise ConfigError(
                "model.batch_norm: lora freezes the backbone, but batch-norm running statistics "
                "would keep changing; set model.batch_norm=false (or use an MLP)"
            )
        self.layers = [m for m in model.layers.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
        if not self.A:
            self._init_adapters()
        for i, layer in enumerate(self.layers):
            layer.register_forward_hook(self._hook(i))
        self._hooked = model

    def _init_adapters(self) -> None:
        gen = generator(self.ctx.seed, 0, "cpu", stream=6)
        r, device = self.p.rank, self.ctx.device
        for _ in range(self.ctx.bench.n_tasks):
            a_list, b_list = [], []
            for layer in self.layers:
                w = layer.weight
                a = torch.empty(r, w[0].numel())
                nn.init.kaiming_uniform_(a, a=math.sqrt(5), generator=gen)  # as nn.Linear / peft
                a_list.append(a.to(device).requires_grad_(False))
                b_list.append(torch.zeros(w.shape[0], r, device=device))
            self.A.append(a_list)
            self.B.append(b_list)

    def _low_rank(self, i: int, task: int, inp: torch.Tensor) -> torch.Tensor:
        layer, a, b = self.layers[i], self.A[task][i], self.B[task][i]
        if isinstance(layer, nn.Linear):
            return F.linear(F.linear(inp, a), b) * self.scale
        h = F.conv2d(
            inp,
            a.view(self.p.rank, *layer.weight.shape[1:]),
            None,
            layer.stride,
            layer.padding,
            layer.dilation,
        )
        return F.conv2d(h, b[:, :, None, None]) * self.scale

    def _hook(self, i: int):
        def hook(module, args, out):
            inp = args[0]
            if self.eval_tid is None:
                if not self.current:  # task 0 (or before training): the plain backbone
                    return out
                return out + self._low_rank(i, self.current, inp)
            last = max(self.trained - 1, self.current or 0)
            for task in range(1, last + 1):
                keep = (self.eval_tid == task).to(out.dtype).view(-1, *[1] * (out.dim() - 1))
                out = out + keep * self._low_rank(i, task, inp)
            return out

        return hook

    # -- the phase -----------------------------------------------------------------------------
    def before_task(self, t: int, model) -> None:
        self._attach(model)
        self.current = t
        if t == 0:
            return
        model.layers.requires_grad_(False)
        model.neck.requires_grad_(False)
        for a, b in zip(self.A[t], self.B[t], strict=True):
            a.requires_grad_(True)
            b.requires_grad_(True)

    def param_groups(self, t: int, model) -> list[dict]:
        if t == 0:
            return super().param_groups(t, model)
        return [
            {"params": self.A[t] + self.B[t]},
            # Only this task's head rows get gradients; without decay the others stay exactly put.
            {"params": list(model.head.parameters()), "weight_decay": 0.0},
        ]

    def after_task(self, t: int, model) -> None:
        for a, b in zip(self.A[t], self.B[t], strict=True):
            a.requires_grad_(False)
            b.requires_grad_(False)
        self.trained = t + 1
        self.current = None

    def predict(self, model, x, tid):
        self._attach(model)
        self.eval_tid = tid
        try:
            return model(x)
        finally:
            self.eval_tid = None

    # -- resumability --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "A": [[a.detach().cpu() for a in row] for row in self.A],
            "B": [[b.detach().cpu() for b in row] for row in self.B],
            "trained": self.trained,
        }

    def load_state_dict(self, state: dict) -> None:
        device = self.ctx.device
        self.A = [[a.to(device) for a in row] for row in state["A"]]
        self.B = [[b.to(device) for b in row] for row in state["B"]]
        self.trained = int(state["trained"])


IMPLEMENTATION = LoRA
