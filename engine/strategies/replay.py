"""Replay (data rehearsal): keep a buffer of past samples and train on them again (blog, lecture).

Two ways of mixing the buffer in, as in the blog:

* per batch (default): each batch of ``B`` current samples is enlarged with
  ``m = round(B·f/(1−f))`` samples drawn from the buffer, so a fraction ``f``
  (``replay_fraction``, the blog's 50 %) of the final batch is replayed. The number of steps
  per epoch is that of the task alone; each step costs 1/(1−f) times more.
* ``grow_epoch``: the whole buffer is appended to the task's data (buffer first, then the task),
  so the epoch grows with the buffer — the blog's "allow the epoch size to increase" variant.
  With a buffer that holds all past data this *is* cumulative retraining, sample for sample.

The buffer holds indices into the benchmark's training tensors (which already sit on the
device), i.e. the samples themselves; it is updated once per task in ``after_task`` by passing the
task's samples, in order, through the selection rule:

* ``reservoir``: Algorithm R over the stream of all samples seen so far — a uniform sample of
  the past, each sample kept with probability capacity / seen;
* ``class-balanced``: the same number of samples per class seen so far (capacity // classes,
  a random subset of each class; older classes shrink as new ones arrive).

A class is a (task, output unit) pair, so domain-incremental tasks that share units keep
separate quotas. Replayed samples carry their own task ids, so in task-incremental learning
their loss uses their own head.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from engine.errors import ConfigError
from engine.strategies._buffer import buffer_samples, generator, reservoir_slots
from engine.strategies.base import Strategy, StrategyParams


class Params(StrategyParams):
    name: Literal["replay"] = "replay"
    buffer_size: int = Field(
        500,
        ge=1,
        le=1_000_000,
        description="Past samples kept (≥ the training set size keeps all past data)",
    )
    selection: Literal["reservoir", "class-balanced"] = Field(
        "reservoir",
        description="reservoir = uniform sample of everything seen; class-balanced = equal count per class",
    )
    replay_fraction: float = Field(
        0.5,
        ge=0.0,
        le=0.9,
        description="Share of each (enlarged) batch drawn from the buffer; the blog's 50 %",
    )
    grow_epoch: bool = Field(
        False,
        description="Append the whole buffer to each task's data instead, so the epoch grows (replay_fraction unused)",
    )
    summary = (
        "Rehearse a buffer of past samples alongside each new task: per batch (the blog's 50 %) "
        "or by growing the epoch; the strongest simple defence against forgetting."
    )

    def phase_samples(self, phase: int, tasks: list[int], task_sizes: list[int]) -> int:
        own = sum(task_sizes[t] for t in tasks)
        if not self.grow_epoch:
            return own
        return own + min(self.buffer_size, sum(task_sizes[:phase]))  # the buffer joins the epoch

    def batch_factor(self, batch_size: int) -> float:
        f = self.replay_fraction
        return 1.0 if self.grow_epoch or f == 0.0 else 1.0 / (1.0 - f)

    def buffer_samples(self, n_tasks: int) -> int:
        return self.buffer_size


class Replay(Strategy):
    p: Params

    def __init__(self, params: Params, ctx) -> None:
        super().__init__(params, ctx)
        self.index = torch.zeros(0, dtype=torch.long)  # buffer: rows of bench.x_train (host copy)
        self.n_seen = 0
        self.gen: torch.Generator | None = None
        self._refresh()

    def _refresh(self) -> None:
        self.x, self.y, self.t = buffer_samples(self.ctx.bench, self.index)

    # -- buffer update -----------------------------------------------------------------------
    def after_task(self, t: int, model) -> None:
        lo, hi = self.ctx.bench.train_slices[t]
        new = torch.arange(lo, hi)
        gen = generator(self.ctx.seed, t, "cpu", stream=1)
        if self.p.selection == "reservoir":
            buf = torch.full((self.p.buffer_size + 1,), -1, dtype=torch.long)
            buf[: len(self.index)] = self.index
            buf.index_copy_(
                0, reservoir_slots(self.n_seen, len(new), self.p.buffer_size, gen, "cpu"), new
            )
            self.n_seen += len(new)
            self.index = buf[: min(self.n_seen, self.p.buffer_size)].clone()
        else:
            self.index = self._balanced(
                torch.cat([self.index, new[torch.randperm(len(new), generator=gen)]])
            )
            self.n_seen += len(new)
        self._refresh()

    def _balanced(self, candidates: torch.Tensor) -> torch.Tensor:
        """Keep the first capacity // classes candidates of every class (candidates in random order)."""
        b = self.ctx.bench
        rows = candidates.to(b.t_train.device)
        key = (b.t_train[rows] * b.n_outputs + b.y_train[rows]).cpu()
        classes, counts = torch.unique(key, return_counts=True)
        quota = self.p.buffer_size // len(classes)
        if quota == 0:
            raise ConfigError(
                f"strategy.buffer_size: class-balanced selection needs at least one slot per class "
                f"({len(classes)} classes seen, buffer_size={self.p.buffer_size})"
            )
        order = torch.sort(key, stable=True).indices  # grouped by class, arrival order kept
        first = torch.cumsum(counts, 0) - counts  # where each class starts in `order`
        rank = torch.arange(len(order)) - torch.repeat_interleave(first, counts)
        return candidates[order[rank < quota]]

    # -- using the buffer ----------------------------------------------------------------------
    def before_task(self, t: int, model) -> None:
        self.gen = generator(self.ctx.seed, t, self.ctx.device, stream=2)

    def phase_data(self, t, x, y, tid):
        if not self.p.grow_epoch or len(self.index) == 0:
            return x, y, tid
        return torch.cat([self.x, x]), torch.cat([self.y, y]), torch.cat([self.t, tid])

    def batch(self, t, x, y, tid):
        f = self.p.replay_fraction
        if self.p.grow_epoch or len(self.index) == 0 or f == 0.0:
            return x, y, tid
        m = max(1, round(len(x) * f / (1.0 - f)))
        pick = torch.randint(len(self.index), (m,), generator=self.gen, device=self.x.device)
        return (
            torch.cat([x, self.x[pick]]),
            torch.cat([y, self.y[pick]]),
            torch.cat([tid, self.t[pick]]),
        )

    # -- resumability --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"index": self.index.clone(), "n_seen": self.n_seen}

    def load_state_dict(self, state: dict) -> None:
        self.index = state["index"].to(torch.long).cpu()
        self.n_seen = int(state["n_seen"])
        self._refresh()


IMPLEMENTATION = Replay
