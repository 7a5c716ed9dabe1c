"""DER++, Dark Experience Replay (Buzzega et al., NeurIPS 2020).

A reservoir buffer stores inputs, labels, task ids and the logits the model produced for them
when they were seen. Every step adds, on two independent buffer samples x′ and x″ of the
training batch size,

    α · mean (f(x′) − z′)²   +   β · CE(f(x″), y″)

to the task loss (β = 0 gives plain DER). As in the paper, the buffer is filled by reservoir
sampling over the whole training stream — every batch of every epoch, after the optimizer
step, with the logits of that batch's forward pass — so it holds a uniform sample of the
stream and its logits come from all along the optimisation trajectory. The update runs on the
device without host synchronisation (see ``_buffer.reservoir_slots``).

Scenarios: all three. In task-incremental learning the logit term is restricted to each
sample's own head (the other heads' units are never trained on that sample, so matching them is
meaningless) and the label term uses its own head, like the task loss.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from engine.losses import task_loss
from engine.strategies._buffer import generator, reservoir_slots
from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["der"] = "der"
    buffer_size: int = Field(
        500,
        ge=1,
        le=1_000_000,
        description="Samples (with their logits) kept by reservoir sampling",
    )
    alpha: float = Field(
        0.2,
        ge=0.0,
        le=100.0,
        description="Weight α of the logit-matching term (Buzzega et al., Seq-CIFAR-10, buffer 500: 0.2)",
    )
    beta: float = Field(
        0.5,
        ge=0.0,
        le=100.0,
        description="Weight β of the cross-entropy on buffer labels (DER++: 0.5; 0 = plain DER)",
    )
    summary = (
        "Replay a reservoir of past inputs with the logits the model gave them, matching those "
        "logits (α) and the labels (β): DER++."
    )

    def batch_factor(self, batch_size: int) -> float:
        return 3.0  # two buffer batches of the same size go through the model with each batch

    def buffer_samples(self, n_tasks: int) -> int:
        return self.buffer_size


class DER(Strategy):
    p: Params

    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self.head_mask = ctx.bench.head_mask() if ctx.scenario == "task" else None
        b, m = ctx.bench, params.buffer_size + 1  # one spare row absorbs dropped writes
        self.x = torch.zeros(
            m, *b.x_train.shape[1:], dtype=b.x_train.dtype, device=b.x_train.device
        )
        self.y = torch.zeros(m, dtype=torch.long, device=b.x_train.device)
        self.t = torch.zeros(m, dtype=torch.long, device=b.x_train.device)
        self.z = torch.zeros(m, b.n_outputs, device=b.x_train.device)
        self.n_seen = 0
        self.gen: torch.Generator | None = None
        self.pending: tuple | None = None

    @property
    def n_filled(self) -> int:
        return min(self.n_seen, self.p.buffer_size)

    def before_task(self, t: int, model) -> None:
        self.gen = generator(self.ctx.seed, t, self.ctx.device, stream=5)

    def _draw(self, m: int) -> torch.Tensor:
        return torch.randint(self.n_filled, (m,), generator=self.gen, device=self.x.device)

    def penalty(self, t, model, x, y, tid, logits):
        self.pending = (x, y, tid, logits.detach().float())  # joins the buffer after the step
        if self.n_filled == 0:
            return None
        m = len(x)
        a, b = self._draw(m), self._draw(m)
        out = model(torch.cat([self.x[a], self.x[b]])).float()
        out_a, out_b = out[:m], out[m:]
        diff = (out_a - self.z[a]) ** 2
        if self.head_mask is not None:
            mask = self.head_mask[self.t[a]]
            mse = (diff * mask).sum() / mask.sum()
        else:
            mse = diff.mean()
        ce = task_loss(out_b, self.y[b], self.t[b], self.head_mask, self.ctx.train)
        return self.p.alpha * mse + self.p.beta * ce

    def after_step(self, t: int, model) -> None:
        if self.pending is None:
            return
        x, y, tid, z = self.pending
        self.pending = None
        slots = reservoir_slots(self.n_seen, len(x), self.p.buffer_size, self.gen, self.x.device)
        self.x.index_copy_(0, slots, x)
        self.y.index_copy_(0, slots, y)
        self.t.index_copy_(0, slots, tid)
        self.z.index_copy_(0, slots, z)
        self.n_seen += len(x)

    def state_dict(self) -> dict:
        n = self.n_filled
        return {
            "x": self.x[:n].cpu(),
            "y": self.y[:n].cpu(),
            "t": self.t[:n].cpu(),
            "z": self.z[:n].cpu(),
            "n_seen": self.n_seen,
        }

    def load_state_dict(self, state: dict) -> None:
        n = len(state["y"])
        for name in ("x", "y", "t", "z"):
            getattr(self, name)[:n] = state[name].to(self.x.device)
        self.n_seen = int(state["n_seen"])


IMPLEMENTATION = DER
