"""The device-resident training loop and the one-pass evaluation of every task.

In the spirit of cifar10-airbench: the benchmark's tensors already sit on the device, a
minibatch is an index slice of them, and the hot loop does no host synchronisation — losses
are accumulated on the device and read back only at the few evaluation points.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from engine.data import Benchmark
from engine.strategies import Strategy

EVAL_CHUNK = 4096


def cpu_threads(model: nn.Module, batch_size: int) -> int:
    """Intra-op threads for a CPU run: small steps lose more to thread hand-offs (and to spinning
    when the cores are shared) than they gain, so they get one thread; big ones get them all.
    $FORGET_THREADS overrides."""
    import os

    if os.environ.get("FORGET_THREADS"):
        return max(1, int(os.environ["FORGET_THREADS"]))
    work = sum(p.numel() for p in model.parameters()) * batch_size
    return 1 if work < 50_000_000 else max(1, os.cpu_count() or 1)


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class Cancelled(RuntimeError):
    """The caller asked the run to stop."""


def make_optimizer(train_cfg, groups: list[dict]) -> torch.optim.Optimizer:
    """SGD or Adam over the strategy's parameter groups; a group's ``lr_factor`` scales its lr."""
    lr = train_cfg.lr * (train_cfg.temperature if train_cfg.compensate_lr else 1.0)
    param_groups = []
    for g in groups:
        g = dict(g)
        factor = g.pop("lr_factor", 1.0)
        param_groups.append({**g, "lr": lr * factor})
    param_groups = [g for g in param_groups if g["params"]]
    if not param_groups:  # everything frozen: an optimizer that does nothing keeps the loop uniform
        param_groups = [{"params": [torch.zeros(0, requires_grad=True)], "lr": 0.0}]
    if train_cfg.optimizer == "sgd":
        return torch.optim.SGD(
            param_groups, lr=lr, momentum=train_cfg.momentum, weight_decay=train_cfg.weight_decay, foreach=True
        )
    return torch.optim.Adam(param_groups, lr=lr, weight_decay=train_cfg.weight_decay, foreach=True)


def scaled_logits(logits: torch.Tensor, train_cfg) -> torch.Tensor:
    """logits / T, with T fixed or the batch's Frobenius norm (dynamic temperature, thesis 6.2.5)."""
    if train_cfg.dynamic_temperature:
        return logits / logits.norm().clamp_min(1e-12)
    if train_cfg.temperature != 1.0:
        return logits / train_cfg.temperature
    return logits


def task_loss(
    logits: torch.Tensor, y: torch.Tensor, tid: torch.Tensor, head_mask: torch.Tensor | None, train_cfg
) -> torch.Tensor:
    """Cross-entropy over the units each sample's task may use (its own head in task-IL)."""
    if head_mask is not None:
        logits = logits.masked_fill(~head_mask[tid], float("-inf"))
    return F.cross_entropy(scaled_logits(logits, train_cfg), y)


class Evaluator:
    """Accuracy and loss on every task's test split in one pass over the concatenated test set."""

    def __init__(self, bench: Benchmark) -> None:
        self.bench = bench
        self.mask = bench.head_mask()[bench.t_test] if bench.scenario == "task" else None
        self.counts = torch.bincount(bench.t_test, minlength=bench.n_tasks).clamp_min(1).float()

    @torch.no_grad()
    def __call__(self, model: nn.Module, strategy: Strategy) -> tuple[torch.Tensor, torch.Tensor]:
        """(accuracy per task, mean loss per task) as device tensors — no host sync here."""
        was_training = model.training
        model.eval()
        b = self.bench
        correct = torch.zeros(b.n_tasks, device=b.x_test.device)
        loss = torch.zeros(b.n_tasks, device=b.x_test.device)
        for start in range(0, len(b.x_test), EVAL_CHUNK):
            sl = slice(start, start + EVAL_CHUNK)
            logits = strategy.predict(model, b.x_test[sl], b.t_test[sl]).float()
            if self.mask is not None:
                logits = logits.masked_fill(~self.mask[sl], float("-inf"))
            hit = (logits.argmax(1) == b.y_test[sl]).float()
            nll = F.cross_entropy(logits, b.y_test[sl], reduction="none")
            correct.index_add_(0, b.t_test[sl], hit)
            loss.index_add_(0, b.t_test[sl], nll)
        model.train(was_training)
        return correct / self.counts, loss / self.counts


@dataclass
class Curves:
    """Accuracy of every task at evaluation points during training (the blog's plot)."""

    step: list[int] = field(default_factory=list)
    phase: list[int] = field(default_factory=list)
    acc: list[list[float]] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)  # mean training loss since the previous point

    def to_dict(self) -> dict:
        return {"step": self.step, "phase": self.phase, "acc": self.acc, "loss": self.loss}


def train_phase(
    model: nn.Module,
    strategy: Strategy,
    bench: Benchmark,
    tasks: list[int],
    phase: int,
    train_cfg,
    evaluate: Evaluator,
    curves: Curves,
    step0: int = 0,
    on_progress: Callable[[dict], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> int:
    """Train one phase (the data of ``tasks``) for the configured epochs; return the step count."""
    device = bench.x_train.device
    idx = bench.train_index(tasks)
    x, y, tid = strategy.phase_data(phase, bench.x_train[idx], bench.y_train[idx], bench.t_train[idx])
    n, bs = len(x), train_cfg.batch_size
    steps_per_epoch = math.ceil(n / bs)
    total = train_cfg.epochs * steps_per_epoch
    eval_at = {round(total * (k + 1) / train_cfg.evals_per_task) for k in range(train_cfg.evals_per_task)}
    report_every = max(1, total // 50)
    head_mask = bench.head_mask() if bench.scenario == "task" else None
    use_amp = train_cfg.amp and device.type == "cuda"

    optimizer = make_optimizer(train_cfg, strategy.param_groups(phase, model))
    strategy.on_optimizer(phase, optimizer)
    # One generator per phase: a resumed run reshuffles exactly as an uninterrupted one.
    gen = torch.Generator(device=device).manual_seed(train_cfg.seed * 100_003 + phase)
    model.train()
    running = torch.zeros((), device=device)
    since = 0
    step = 0
    t_last = time.perf_counter()
    stop = False
    for _ in range(train_cfg.epochs):
        if stop:
            break
        perm = torch.randperm(n, generator=gen, device=device)
        for start in range(0, n, bs):
            if cancel is not None and cancel():
                raise Cancelled(f"cancelled in phase {phase} at step {step}")
            b = perm[start : start + bs]
            xb, yb, tb = strategy.batch(phase, x[b], y[b], tid[b])
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                logits = model(xb)
                loss = task_loss(logits.float(), yb, tb, head_mask, train_cfg)
                extra = strategy.penalty(phase, model, xb, yb, tb, logits)
                if extra is not None:
                    loss = loss + extra
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            strategy.before_step(phase, model)
            optimizer.step()
            strategy.after_step(phase, model)
            running += loss.detach()
            since += 1
            step += 1
            if step in eval_at:
                mean_loss = (running / since).item()  # the one host sync per evaluation point
                if not math.isfinite(mean_loss):
                    raise Diverged(
                        f"training loss became {mean_loss} in task {phase} at step {step}; lower train.lr"
                    )
                acc, _ = evaluate(model, strategy)
                curves.step.append(step0 + step)
                curves.phase.append(phase)
                curves.acc.append([round(a, 6) for a in acc.tolist()])
                curves.loss.append(mean_loss)
                running.zero_()
                since = 0
                model.train()
                if strategy.should_stop(phase, model):
                    stop = True
                    break
            if on_progress is not None and (step % report_every == 0 or step == total):
                now = time.perf_counter()
                on_progress({"phase": phase, "step": step, "total": total, "step_s": (now - t_last) / report_every})
                t_last = now
    return step
