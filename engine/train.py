"""The device-resident training loop and the one-pass evaluation of every task.

In the spirit of cifar10-airbench: the benchmark's tensors already sit on the device, a
minibatch is an index slice of them, and the hot loop does no host synchronisation — losses
are accumulated on the device and read back only at the few evaluation points.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from engine.data import Benchmark
from engine.errors import Cancelled, Diverged
from engine.losses import task_loss
from engine.strategies import Strategy

EVAL_CHUNK = 4096


def cpu_threads(model: nn.Module, batch_size: int) -> int:
    """Intra-op threads for a CPU run: small steps lose more to thread hand-offs (and to spinning
    when the cores are shared) than they gain, so they get one thread; big ones get them all.
    $FORGET_THREADS overrides.

    Measured on 2 shared cores (bench/README.md): one thread beat two for MLP 784-400-400 (4–10×:
    OpenMP's spinning threads wait on a descheduled peer), MLP 784-2000-2000 and the small CNN at
    batch 128, so only steps above ~1e9 parameter·samples (VGG/ResNet-sized) take every core."""
    import os

    if os.environ.get("FORGET_THREADS"):
        return max(1, int(os.environ["FORGET_THREADS"]))
    work = sum(p.numel() for p in model.parameters()) * batch_size
    return 1 if work < 1_000_000_000 else max(1, os.cpu_count() or 1)


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
            param_groups,
            lr=lr,
            momentum=train_cfg.momentum,
            weight_decay=train_cfg.weight_decay,
            foreach=True,
        )
    return torch.optim.Adam(param_groups, lr=lr, weight_decay=train_cfg.weight_decay, foreach=True)


def sgd_in_backward(
    optimizer: torch.optim.Optimizer, strategy: Strategy, device: torch.device
) -> list:
    """Apply plain SGD inside backward: each parameter is updated as soon as its gradient is
    complete (a post-accumulate-grad hook), while both are still in cache — bit for bit what
    ``optimizer.step()`` computes, and ~5 % of a small model's CPU step (bench/README.md).

    Only where nothing needs the whole gradient before the step: momentum- and decay-free SGD on
    the CPU (on a GPU the foreach step is a few kernel launches already) with a strategy that
    keeps the default ``before_step``. The gradients stay in ``.grad`` as after a normal step.
    Returns the hook handles to remove when the phase ends; none when it does not apply."""
    plain = isinstance(optimizer, torch.optim.SGD) and not any(
        g["momentum"] or g["weight_decay"] or g["nesterov"] or g["maximize"]
        for g in optimizer.param_groups
    )
    if device.type != "cpu" or not plain or type(strategy).before_step is not Strategy.before_step:
        return []

    def updater(group: dict) -> Callable[[torch.Tensor], None]:
        def update(p: torch.Tensor) -> None:
            with torch.no_grad():  # lr read at step time, so warm-up schedules still apply
                p.add_(p.grad, alpha=-group["lr"])

        return update

    groups = optimizer.param_groups
    return [
        p.register_post_accumulate_grad_hook(updater(g))
        for g in groups
        for p in g["params"]
        if p.requires_grad
    ]


class Evaluator:
    """Accuracy and loss on every task's test split in one pass over the concatenated test set."""

    def __init__(self, bench: Benchmark) -> None:
        self.bench = bench
        self.mask = bench.head_mask()[bench.t_test] if bench.scenario == "task" else None
        self.counts = torch.bincount(bench.t_test, minlength=bench.n_tasks).clamp_min(1).float()
        self._last: tuple | None = None  # (model ref, strategy ref, weights' state, answer)

    @staticmethod
    def _weights_state(model: nn.Module) -> tuple:
        # In-place updates bump a tensor's version, and a replaced tensor has a new address.
        return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))

    def __call__(self, model: nn.Module, strategy: Strategy) -> tuple[torch.Tensor, torch.Tensor]:
        """(accuracy per task, mean loss per task) as device tensors — no host sync here.

        Unchanged weights give the same answer, so it is reused: the row of R after a phase
        costs nothing when the phase's last curve point already evaluated those weights and
        ``after_task`` only took notes (Fisher, buffer). Only for strategies that predict with
        the model alone — one whose ``predict`` reads its own state is always re-evaluated."""
        if type(strategy).predict is not Strategy.predict:
            return self._evaluate(model, strategy)
        state = self._weights_state(model)
        last = self._last
        if last is not None and last[0]() is model and last[1]() is strategy and last[2] == state:
            return last[3][0].clone(), last[3][1].clone()  # copies: a caller may edit its answer
        answer = self._evaluate(model, strategy)
        self._last = (weakref.ref(model), weakref.ref(strategy), state, answer)
        return answer

    @torch.no_grad()
    def _evaluate(self, model: nn.Module, strategy: Strategy) -> tuple[torch.Tensor, torch.Tensor]:
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
    x, y, tid = strategy.phase_data(
        phase, bench.x_train[idx], bench.y_train[idx], bench.t_train[idx]
    )
    n, bs = len(x), train_cfg.batch_size
    steps_per_epoch = math.ceil(n / bs)
    total = train_cfg.epochs * steps_per_epoch
    eval_at = {
        round(total * (k + 1) / train_cfg.evals_per_task) for k in range(train_cfg.evals_per_task)
    }
    report_every = max(1, total // 50)
    head_mask = bench.head_mask() if bench.scenario == "task" else None
    use_amp = train_cfg.amp and device.type == "cuda"

    optimizer = make_optimizer(train_cfg, strategy.param_groups(phase, model))
    strategy.on_optimizer(phase, optimizer)
    hooks = sgd_in_backward(optimizer, strategy, device)
    # A disabled autocast still costs a few µs a step; nullcontext costs nothing.
    bf16 = functools.partial(torch.autocast, "cuda", dtype=torch.bfloat16)
    amp = bf16 if use_amp else contextlib.nullcontext
    # One generator per phase: a resumed run reshuffles exactly as an uninterrupted one.
    gen = torch.Generator(device=device).manual_seed(train_cfg.seed * 100_003 + phase)
    model.train()
    running = torch.zeros((), device=device)
    since = 0
    step = 0
    t_last = time.perf_counter()
    stop = False
    try:
        for _ in range(train_cfg.epochs):
            if stop:
                break
            perm = torch.randperm(n, generator=gen, device=device)
            for start in range(0, n, bs):
                if cancel is not None and cancel():
                    raise Cancelled(f"cancelled in phase {phase} at step {step}")
                b = perm[start : start + bs]
                xb, yb, tb = strategy.batch(phase, x[b], y[b], tid[b])
                with amp():
                    logits = model(xb)
                    loss = task_loss(logits.float(), yb, tb, head_mask, train_cfg)
                    extra = strategy.penalty(phase, model, xb, yb, tb, logits)
                    if extra is not None:
                        loss = loss + extra
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                strategy.before_step(phase, model)
                if not hooks:  # else the step already happened inside backward
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
                    on_progress(
                        {
                            "phase": phase,
                            "step": step,
                            "total": total,
                            "step_s": (now - t_last) / report_every,
                        }
                    )
                    t_last = now
    finally:
        for hook in hooks:
            hook.remove()
    return step
