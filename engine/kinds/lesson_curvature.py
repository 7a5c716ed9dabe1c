"""Lesson 4's network (EWC from a Taylor expansion): a small MLP trained on the first
split-digits task, the curvature of task 1's loss at its weights three ways (squared gradients =
the empirical Fisher, Hutchinson's Hessian-diagonal estimate, the exact diagonal), slices of the
loss along a direction against their quadratics, and task 2 trained under EWC penalties built
from each estimate. It trains, so it is a kind like any other: one job computes everything the
lesson's steps draw for a network (activation, epochs) and a direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

from engine.config import resolve, validate
from engine.data import build_benchmark
from engine.estimate import training_cost
from engine.kinds.base import PYTHON_STEP, ComputeContext, Cost, KindSpec
from engine.models import build_model
from engine.session import Session
from engine.teaching import check_lam

NAME = "lesson-curvature"
TITLE = "Lesson: curvature of a small network"
SUMMARY = "Fisher vs Hessian diagonal on a small trained MLP, and EWC penalties built from each."
RADII = (0.5, 1.0, 3.0, 10.0, 30.0)  # the slice step's choices of ‖step‖
LAMS = (10.0, 100.0, 1000.0)  # the runaway step's choices of λ
CHUNK = 256  # Hessian rows per batched product in the exact diagonal


class Spec(KindSpec):
    kind = NAME
    activation: Literal["relu", "tanh"] = Field(
        "relu", description="relu is the engine's MLP; tanh makes the network smooth"
    )
    epochs: int = Field(10, ge=1, le=100, description="Epochs on task 1")
    width: int = Field(
        16, ge=2, le=64, description="Hidden width (small: an exact Hessian diagonal)"
    )
    depth: int = Field(2, ge=1, le=4, description="Hidden layers")
    probes: int = Field(10, ge=1, le=100, description="Hutchinson probes")
    direction: int = Field(0, ge=0, le=1000, description="Seed of the slice's random direction")
    penalty_steps: int = Field(200, ge=1, le=2000, description="Task-2 steps under each penalty")
    penalty_lr: float = Field(0.05, gt=0.0, le=1.0, description="Task-2 learning rate")

    def first_task_config(self) -> dict:
        return first_task_raw(self.width, self.depth, self.epochs, seed=0)


def first_task_raw(width: int, depth: int, epochs: int, seed: int) -> dict:
    """Lesson 4's network: the engine's MLP on split-digits' first task (task-incremental)."""
    return {
        "scenario": "task",
        "data": {"benchmark": "split-digits"},
        "model": {"arch": "mlp", "depth": depth, "width": width},
        "train": {
            "optimizer": "adam",
            "lr": 1e-3,
            "batch_size": 32,
            "epochs": epochs,
            "seed": seed,
            "evals_per_task": 1,
            "device": "cpu",
        },
        "strategy": {"name": "naive"},
    }


def estimate(spec: Spec) -> Cost:
    cfg = resolve(validate(spec.first_task_config()), device="cpu")
    train = training_cost(cfg)
    n = train.params
    task = 360  # images of split-digits' first task
    # exact diagonal: one Hessian-vector product (≈ 4 forward passes) per parameter; Hutchinson
    # and the per-sample gradients; then the penalty runs, full batch
    curvature = (n + spec.probes + task) * 4 * task * n
    runs = len(LAMS) * 3 * spec.penalty_steps * (3 * task * n + PYTHON_STEP)
    return Cost(
        params=n,
        steps=train.steps + len(LAMS) * 3 * spec.penalty_steps,
        macs=train.macs + curvature + runs + len(RADII) * 100 * task * n,
        # the identity the exact diagonal slices (n × n floats), a chunk's batched Hessian-vector
        # products (≈ 48 floats per parameter per row) and torch.func's workspace; measured
        # growth: +114 MiB at n = 1,482 (the defaults), +1,865 MiB at n = 17,290 (width 64, depth 4)
        peak_bytes=train.peak_bytes + 4 * n * n + 4 * CHUNK * n * 48 + 128 * 2**20,
    )


def compute(spec: Spec, ctx: ComputeContext) -> dict:
    ctx.start(4, ["train task 1", "curvature", "slices", "penalty runs"])
    ctx.set_stage("train task 1")
    net = train_first_task(spec.width, spec.depth, spec.epochs, spec.activation)
    ctx.done = 1
    ctx.set_stage("curvature")
    est = curvature_estimates(net, probes=spec.probes, exact=True)
    ctx.check_cancel()
    ctx.done = 2
    ctx.set_stage("slices")
    slices = {
        f"{r:g}": taylor_slice(net, est["fisher"], radius=r, seed=spec.direction) for r in RADII
    }
    ctx.done = 3
    ctx.set_stage("penalty runs")
    runs = {}
    for lam in LAMS:
        ctx.check_cancel()
        runs[f"{lam:g}"] = {
            name: continue_with_penalty(net, w, lam, steps=spec.penalty_steps, lr=spec.penalty_lr)
            for name, w in (
                ("no penalty (fine-tuning)", None),
                ("EWC, squared gradients", est["fisher"]),
                ("EWC, Hessian-diagonal estimate", est["hutchinson"]),
            )
        }
    return {
        "network": {
            "activation": net.activation,
            "train_loss": net.train_loss,
            "task_acc": net.task_acc,
        },
        "curvature": est,
        "slices": slices,
        "penalty_runs": runs,
        "metrics": {
            "loss": est["loss"],
            "grad_norm": est["grad_norm"],
            **{f"share_negative_{k}": v for k, v in est["share_negative"].items()},
        },
    }


@dataclass
class FirstTaskNet:
    """A small MLP trained on task 1 of split-digits (task-incremental: a head per task)."""

    model: object  # engine.models.ProbedModel
    bench: object  # engine.data.Benchmark
    activation: str
    train_loss: float
    task_acc: list[float]  # accuracy on every task after task 1 (the first row of R)


def train_first_task(
    width: int = 16, depth: int = 2, epochs: int = 10, activation: str = "relu", seed: int = 0
) -> FirstTaskNet:
    """Train the engine's MLP on the first split-digits task (task-incremental) with the
    engine's training loop (Adam, lr 1e-3, batch 32).

    ``activation`` "tanh" swaps every ReLU for tanh (a smooth network: then even the exact
    Hessian diagonal can be negative away from a minimum).
    """
    raw = first_task_raw(width, depth, epochs, seed)
    if activation not in ("relu", "tanh"):
        raise ValueError(f"activation must be 'relu' or 'tanh', got {activation!r}")
    cfg = resolve(validate(raw), device="cpu")
    bench = build_benchmark(cfg.data, cfg.scenario, "cpu")
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, bench.input_shape, bench.n_outputs)
    if activation == "tanh":
        for layer in model.layers:
            layer.act = nn.Tanh()
    session = Session(cfg, bench=bench, model=model)  # the one phase loop, first task only
    session.run(phases=1)
    acc = [round(a, 6) for a in session.R[0]]
    return FirstTaskNet(session.model, bench, activation, session.curves.loss[-1], acc)


def _task_data(bench, task: int, split: str = "train"):
    lo, hi = bench.heads[task]
    s, e = (bench.train_slices if split == "train" else bench.test_slices)[task]
    x = bench.x_train[s:e] if split == "train" else bench.x_test[s:e]
    y = bench.y_train[s:e] if split == "train" else bench.y_test[s:e]
    return x, y - lo, (lo, hi)


def _flat_functional(model):
    """(θ as one flat vector, a function θ ↦ {name: tensor}) for torch.func.functional_call."""

    names, shapes, flat = [], [], []
    for name, p in model.named_parameters():
        names.append(name)
        shapes.append(p.shape)
        flat.append(p.detach().reshape(-1))
    theta = torch.cat(flat)

    def unflatten(v):
        out, i = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            n = shape.numel()
            out[name] = v[i : i + n].view(shape)
            i += n
        return out

    return theta, unflatten


def curvature_estimates(
    net: FirstTaskNet, probes: int = 10, exact: bool = False, seed: int = 0, chunk: int = CHUNK
) -> dict:
    """Three per-parameter curvature numbers for task 1's loss at the trained weights.

    * ``fisher`` — the empirical Fisher diagonal, mean over samples of the squared per-sample
      gradient (what EWC uses): a mean of squares, so never negative;
    * ``hutchinson`` — Hutchinson's estimate of the Hessian diagonal, mean over ``probes``
      random ±1 vectors z of z ⊙ (H z): unbiased, and what one can afford for a large network
      (one Hessian-vector product per probe), but each entry also sums off-diagonal terms
      H_ij z_i z_j, which can be negative;
    * ``exact`` (when ``exact=True``) — the exact diagonal, one Hessian-vector product per
      parameter (fine for a few thousand parameters, unaffordable for millions).

    Returns float tensors (one value per parameter) plus ``n_params``, task 1's training
    ``loss`` and ``grad_norm`` (‖∇L₁‖ at the trained weights) and ``share_negative`` ({name:
    fraction of entries < 0}).
    """

    if not isinstance(probes, int) or probes < 1:
        raise ValueError(f"probes must be a positive integer, got {probes!r}")
    model = net.model
    model.eval()
    x, y, (lo, hi) = _task_data(net.bench, 0)
    theta, unflatten = _flat_functional(model)

    def loss(v, xb, yb):
        return F.cross_entropy(functional_call(model, unflatten(v), (xb,))[:, lo:hi], yb)

    per_sample = vmap(grad(lambda v, xi, yi: loss(v, xi[None], yi[None])), in_dims=(None, 0, 0))
    fisher = (per_sample(theta, x, y) ** 2).mean(0)

    g = grad(lambda v: loss(v, x, y))

    def hvp(v):
        return jvp(g, (theta,), (v,))[1]

    gen = torch.Generator().manual_seed(seed)
    d = theta.numel()
    z = torch.randint(0, 2, (probes, d), generator=gen).float() * 2 - 1
    hutchinson = (z * vmap(hvp)(z)).mean(0)
    out = {
        "n_params": d,
        "loss": float(loss(theta, x, y)),
        "grad_norm": float(g(theta).norm()),
        "fisher": fisher,
        "hutchinson": hutchinson,
        "exact": None,
    }
    if exact:
        diag = torch.empty(d)
        eye = torch.eye(d)
        for i in range(0, d, chunk):
            rows = vmap(hvp)(eye[i : i + chunk])
            diag[i : i + chunk] = rows[:, i : i + chunk].diagonal()
        out["exact"] = diag
    out["share_negative"] = {
        k: float((out[k] < 0).float().mean())
        for k in ("fisher", "hutchinson", "exact")
        if out[k] is not None
    }
    return out


def continue_with_penalty(
    net: FirstTaskNet,
    weights,
    lam: float,
    steps: int = 200,
    lr: float = 0.05,
    record_every: int = 5,
) -> dict:
    """Train task 2 by full-batch gradient descent on ``L_2 + λ/2 Σ_i w_i (θ_i − θ*_i)²``.

    ``weights`` is one number per parameter (a Fisher or Hessian-diagonal estimate; None or
    zeros = plain fine-tuning), θ* the task-1 weights. Starts from a copy of ``net``'s weights
    (the net itself is not changed). Records, every ``record_every`` steps, the penalty, task 2's
    loss, the total, ‖θ − θ*‖ and both tasks' test accuracy. Once the loss is no longer finite
    the run stops and ``diverged_at`` holds the step.
    """

    lam = check_lam(lam)
    model = net.model
    theta_star, unflatten = _flat_functional(model)
    w = (
        torch.zeros_like(theta_star)
        if weights is None
        else torch.as_tensor(weights, dtype=theta_star.dtype)
    )
    if w.shape != theta_star.shape:
        raise ValueError(
            f"weights must have one entry per parameter ({theta_star.numel()}), got {tuple(w.shape)}"
        )
    x2, y2, (lo2, hi2) = _task_data(net.bench, 1)
    tests = [_task_data(net.bench, t, "test") for t in (0, 1)]
    theta = theta_star.clone().requires_grad_(True)
    model.eval()

    def accuracy(v):
        with torch.no_grad():
            return [
                float(
                    (functional_call(model, unflatten(v), (x,))[:, lo:hi].argmax(1) == y)
                    .float()
                    .mean()
                )
                for x, y, (lo, hi) in tests
            ]

    rec = {
        k: []
        for k in ("step", "penalty", "task_loss", "total", "distance", "acc_task1", "acc_task2")
    }
    diverged_at = None
    opt = torch.optim.SGD([theta], lr=lr)
    for step in range(steps + 1):
        task = F.cross_entropy(functional_call(model, unflatten(theta), (x2,))[:, lo2:hi2], y2)
        penalty = 0.5 * lam * (w * (theta - theta_star) ** 2).sum()
        total = task + penalty
        finite = bool(torch.isfinite(total))  # a host sync per step is fine for a 200-step demo
        if step % record_every == 0 or step == steps or not finite:
            a1, a2 = accuracy(theta.detach())
            for k, v in (
                ("step", step),
                ("penalty", penalty.item()),
                ("task_loss", task.item()),
                ("total", total.item()),
                ("distance", float((theta.detach() - theta_star).norm())),
                ("acc_task1", a1),
                ("acc_task2", a2),
            ):
                rec[k].append(v)
        if not finite:
            diverged_at = step
            break
        if step == steps:
            break
        opt.zero_grad()
        total.backward()
        opt.step()
    return {**rec, "lam": lam, "lr": lr, "diverged_at": diverged_at}


def taylor_slice(
    net: FirstTaskNet, weights=None, radius: float = 3.0, n: int = 41, seed: int = 0
) -> dict:
    """Task 1's loss along one random unit direction u through the trained weights θ*.

    Returns ``t`` (offsets), ``loss`` = L_1(θ* + t·u) − L_1(θ*), ``taylor`` = ½ t² uᵀHu (the
    second-order Taylor term with the exact curvature along u, one Hessian-vector product) and,
    when ``weights`` (one number per parameter) are given, ``diagonal`` = ½ t² Σ_i w_i u_i² —
    the quadratic bowl EWC puts in place of the true loss. The first-order term is left out:
    the gradient at θ* is close to zero after training, which the returned ``slope`` (gᵀu) shows.
    """

    model = net.model
    model.eval()
    x, y, (lo, hi) = _task_data(net.bench, 0)
    theta, unflatten = _flat_functional(model)

    def loss(v):
        return F.cross_entropy(functional_call(model, unflatten(v), (x,))[:, lo:hi], y)

    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(theta.shape, generator=gen)
    u = u / u.norm()
    g = grad(loss)
    slope = float(g(theta) @ u)
    curvature = float(jvp(g, (theta,), (u,))[1] @ u)
    ts = torch.linspace(-radius, radius, n)
    with torch.no_grad():
        base = loss(theta)
        values = torch.stack([loss(theta + t * u) for t in ts]) - base
    out = {
        "t": ts.tolist(),
        "loss": values.tolist(),
        "taylor": (0.5 * ts**2 * curvature).tolist(),
        "curvature": curvature,
        "slope": slope,
    }
    if weights is not None:
        w = torch.as_tensor(weights, dtype=theta.dtype)
        out["diagonal"] = (0.5 * ts**2 * float((w * u**2).sum())).tolist()
    return out
