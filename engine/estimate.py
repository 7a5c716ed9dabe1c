"""What training a resolved config will cost, from the config alone.

Shapes come from the benchmark catalog (a folder benchmark's from its files' headers) and a
model built on PyTorch's ``meta`` device (no weights allocated, so a 4-billion-parameter request
costs nothing to estimate); steps come from the strategy's declared plan (phases, samples per
phase, batch growth); memory adds the data on the device, weights, gradients, optimizer state,
the strategy's copies and buffers, and the activations of one batch. Hosted caps compare these
numbers (engine.caps) before anything runs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn

from engine.config import ExperimentConfig, n_classes, task_sizes
from engine.data.benchmark import facts_of
from engine.errors import ConfigError
from engine.kinds.base import Cost
from engine.models import build_model

FLOAT = 4  # bytes: every tensor the engine trains with is float32
BACKWARD = 2.0  # a backward pass costs about twice the forward's multiply-adds
RAW_OVERHEAD = 1.0  # the loaded dataset stays in memory beside the standardised copy


def input_shape(data) -> tuple[int, int, int]:
    if data.benchmark == "synthetic":
        c, h, w = (int(s) for s in data.synthetic_shape.split("x"))
        return (c, h, w)
    return facts_of(data.benchmark).input_shape  # a folder's: from its headers, memoized


def pool_sizes(data) -> tuple[float, float]:
    """(training images, test images) of the whole dataset before the task split."""
    facts = facts_of(data.benchmark)
    if data.benchmark == "synthetic":
        total = float(data.synthetic_n)
    elif facts.own_test_split:
        total = float(facts.images)
    else:
        return float(facts.images), float(facts.test_images or 0)
    return total * (1 - data.test_fraction), total * data.test_fraction


def n_outputs(cfg: ExperimentConfig) -> int:
    sizes = task_sizes(cfg.data)
    if sizes is None:  # permuted-mnist: every task has all classes
        return n_classes(cfg.data) * (1 if cfg.scenario == "domain" else cfg.data.n_tasks)
    return max(sizes) if cfg.scenario == "domain" else sum(sizes)


def task_images(cfg: ExperimentConfig) -> tuple[list[float], list[float]]:
    """Training and test images of each task."""
    train, test = pool_sizes(cfg.data)
    sizes = task_sizes(cfg.data)
    if sizes is None:
        return [train] * cfg.data.n_tasks, [test] * cfg.data.n_tasks
    total = n_classes(cfg.data)
    return [train * s / total for s in sizes], [test * s / total for s in sizes]


@dataclass(frozen=True)
class Profile:
    """A model's size per sample, from its shapes (nothing allocated)."""

    params: int
    macs: float  # forward multiply-adds per sample
    activations: float  # floats every layer outputs for one sample (kept for backward)
    widest: float  # floats of the largest single layer output (what evaluation holds at once)


def model_profile(model_cfg, shape: tuple[int, int, int], outputs: int) -> Profile:
    """Parameters, forward multiply-adds and activation sizes of one sample, on the meta device."""
    macs = 0.0
    acts: list[float] = []

    def count(module: nn.Module, args, out) -> None:
        nonlocal macs
        if isinstance(out, torch.Tensor):
            acts.append(float(out[0].numel()))
            if isinstance(module, nn.Linear):
                macs += module.in_features * module.out_features
            elif isinstance(module, nn.Conv2d):
                k = module.kernel_size[0] * module.kernel_size[1]
                macs += out[0].numel() * module.in_channels // module.groups * k

    with torch.device("meta"):
        model = build_model(model_cfg, shape, outputs, init=False)  # shapes only
        hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *shape))
    for h in hooks:
        h.remove()
    params = int(sum(p.numel() for p in model.parameters()))
    return Profile(params, macs, sum(acts), max(acts, default=0.0))


def training_cost(cfg: ExperimentConfig, eval_passes: int | None = None) -> Cost:
    """Cost of training ``cfg`` (resolved) through every phase its strategy plans."""
    shape = input_shape(cfg.data)
    profile = model_profile(cfg.model, shape, n_outputs(cfg))
    params, fwd = profile.params, profile.macs
    train_sizes, test_sizes = task_images(cfg)
    strategy, t = cfg.strategy, cfg.train
    sizes = [round(n) for n in train_sizes]
    phases = strategy.phases(len(sizes))
    factor = strategy.batch_factor(t.batch_size)
    steps = 0
    samples = 0.0
    for phase, tasks in enumerate(phases):
        n = strategy.phase_samples(phase, tasks, sizes)
        steps += t.epochs * math.ceil(n / t.batch_size)
        samples += t.epochs * n * factor
    test = sum(test_sizes)
    if eval_passes is None:  # evaluation points during training, a row after each phase, b_i
        eval_passes = len(phases) * (t.evals_per_task + 1) + 1
    macs = samples * fwd * (1 + BACKWARD) + eval_passes * test * fwd
    pixels = math.prod(shape)
    data_bytes = (sum(train_sizes) + test) * pixels * FLOAT * (1 + RAW_OVERHEAD)
    states = {"adam": 2, "sgd": 1 if t.momentum else 0}.get(t.optimizer, 2)
    weights = params * FLOAT * (2 + states + strategy.model_copies(len(sizes)))
    largest = max(strategy.phase_samples(i, ts, sizes) for i, ts in enumerate(phases))
    batch = min(t.batch_size, largest) * factor  # a batch never holds more than the phase
    # Activations are kept for backward on the batch; evaluation runs in chunks of 4,096
    # without a graph, so it holds about two layer outputs at a time.
    activations = max(batch * profile.activations, 2 * min(test, 4096) * profile.widest) * FLOAT
    buffer = strategy.buffer_samples(len(sizes)) * pixels * FLOAT
    return Cost(
        params=params,
        steps=int(steps),
        macs=float(macs),
        peak_bytes=int(data_bytes + weights + activations + buffer),
    )


def data_bytes(cfg: ExperimentConfig) -> float:
    """The benchmark on the device plus the loaded copy beside it."""
    train, test = pool_sizes(cfg.data)
    return (train + test) * math.prod(input_shape(cfg.data)) * FLOAT * (1 + RAW_OVERHEAD)


def memory_floor(cfg: ExperimentConfig) -> Cost:
    """A lower bound of a training's peak memory — the data, and the weights with their
    gradients and optimizer state — from shapes alone, without a forward pass (cheap enough for
    every CLI run: a meta-device forward imports torch's compiler, about a second)."""
    with torch.device("meta"):
        model = build_model(cfg.model, input_shape(cfg.data), n_outputs(cfg), init=False)
    params = int(sum(p.numel() for p in model.parameters()))
    states = {"adam": 2, "sgd": 1 if cfg.train.momentum else 0}.get(cfg.train.optimizer, 2)
    return Cost(params=params, peak_bytes=int(data_bytes(cfg) + params * FLOAT * (2 + states)))


def machine_memory() -> int | None:
    """Bytes of memory this machine has (None where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(cost: Cost) -> None:
    """ConfigError when a computation's estimated peak memory is more than this machine has:
    refused with one line before anything is allocated (a 999×999×999 synthetic image would
    otherwise try for tens of gigabytes)."""
    total = machine_memory()
    if total is not None and cost.peak_bytes > total:
        raise ConfigError(
            f"memory: about {cost.peak_bytes / 2**30:,.1f} GiB at peak, more than this machine's "
            f"{total / 2**30:,.1f} GiB (a smaller model, batch or dataset)"
        )
