"""Activations at every probe point, on the device, batched; and recordings kept in the store.

Every representation analysis starts here: :func:`collect` runs a model over a set of inputs in
eval mode and returns one ``n×p_l`` matrix per probe point (conv maps flattened). Wide layers
are reduced to at most ``max_features`` features, so a VGG's first conv layers (65k features
per image at 32×32) never fill the memory:

* a conv map ``C×H×W`` with ``C·H·W > max_features`` is average-pooled to the largest
  ``C×s×s`` that fits (spatial structure kept, as in pooled probes);
* anything still wider (an MLP wider than ``max_features``, or ``C > max_features``) keeps a
  seeded random subset of its features, as the thesis does for the numerical rank (5.8.1:
  8,000 random features).

Layers at or under the cap are returned exactly, so MLPs of width ≤ 8,192 are never altered.

**Recordings.** A continual run can record activations on a *fixed evaluation subset* of the
test split after every task (:func:`record_after_task`, called by ``engine.runner.run`` with
``record_activations=N``), so drift and rank over time are read from the store
(``acts/<t>`` extras of the run's key) instead of retraining. The subset depends only on the
benchmark and :data:`RECORD_SEED`, so runs of different strategies on one benchmark are
recorded on the same images and compare directly (model A versus model B).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from engine.tensor_tree import pack, unpack

__all__ = [
    "RECORD_SEED",
    "collect",
    "eval_subset",
    "flat_features",
    "load_recording",
    "record_after_task",
    "recorded_tasks",
    "recording_for",
]

RECORD_SEED = 0  # fixed: every recording of a benchmark sees the same test images
DEFAULT_MAX_FEATURES = 8192
_BATCH = 1024  # rows per forward pass when collecting


def eval_subset(n_total: int, n: int, seed: int = RECORD_SEED, device=None) -> torch.Tensor:
    """Sorted indices of ``min(n, n_total)`` rows drawn without replacement (seeded, CPU RNG).

    Sorting keeps task-sorted test sets task-sorted, so a task's rows stay contiguous.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if n >= n_total:
        idx = torch.arange(n_total)
    else:
        idx = (
            torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values
        )
    return idx if device is None else idx.to(device)


def _reduce(a: torch.Tensor, max_features: int, seed: int) -> torch.Tensor:
    """One layer's batch as n×p with p ≤ max_features (see the module docstring)."""
    if a.ndim == 4 and math.prod(a.shape[1:]) > max_features:
        c, h, w = a.shape[1:]
        side = max(1, math.isqrt(max_features // c)) if c <= max_features else 1
        if side < min(h, w):
            a = nn.functional.adaptive_avg_pool2d(a, side)
    a = a.reshape(a.shape[0], -1)
    if a.shape[1] > max_features:
        keep = _feature_subset(a.shape[1], max_features, seed).to(a.device)
        a = a.index_select(1, keep)
    return a


def flat_features(x: torch.Tensor, max_features: int = DEFAULT_MAX_FEATURES, seed: int = 0):
    """Inputs as n×p features the way a probe point is read (pooled / subsampled when wide):
    what a linear probe on the raw input sees."""
    return _reduce(x.float(), max_features, seed)


def _feature_subset(p: int, k: int, seed: int) -> torch.Tensor:
    perm = torch.randperm(p, generator=torch.Generator().manual_seed(seed))
    return perm[:k].sort().values


@torch.no_grad()
def collect(
    model: nn.Module,
    x: torch.Tensor,
    points: Sequence[str] | None = None,
    max_features: int = DEFAULT_MAX_FEATURES,
    seed: int = 0,
    batch_size: int = _BATCH,
) -> list[torch.Tensor]:
    """Activations of ``model`` (a ProbedModel) on ``x`` at ``points`` (all if None), in order.

    Eval mode (BN running statistics, no dropout), batched, on the model's device; returns
    float32 ``n×p_l`` tensors on that device. The model's train/eval mode is restored.
    """
    names = list(model.probe_points if points is None else points)
    was_training = model.training
    model.eval()
    parts: list[list[torch.Tensor]] = [[] for _ in names]
    try:
        for start in range(0, len(x), batch_size):
            _, acts = model.forward_with_acts(x[start : start + batch_size], names)
            for i, name in enumerate(names):
                parts[i].append(_reduce(acts[name].float(), max_features, seed))
    finally:
        model.train(was_training)
    return [torch.cat(p) for p in parts]


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int = _BATCH) -> torch.Tensor:
    """Eval-mode logits of ``x``, batched (float32, on the model's device)."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat(
            [model(x[s : s + batch_size]).float() for s in range(0, len(x), batch_size)]
        )
    finally:
        model.train(was_training)


# ------------------------------------------------------------------------------- recordings


def record_after_task(
    model: nn.Module,
    bench,
    n_samples: int,
    seed: int = RECORD_SEED,
    max_features: int = DEFAULT_MAX_FEATURES,
) -> bytes:
    """Activations at every probe point on a fixed test subset, serialised for the store.

    The runner stores the bytes with ``store.put_extra(key, f"acts/{t}", ...)``. Each layer is
    kept as float16 divided by its largest magnitude (the scale is stored), so high-temperature
    models whose activations exceed float16's range are recorded without overflow, at about
    three significant digits — ample for CKA and for a rank threshold of 10⁻³·σ₁ on the
    covariance spectrum.
    """
    idx = eval_subset(len(bench.x_test), n_samples, seed, device=bench.x_test.device)
    acts = collect(model, bench.x_test[idx], max_features=max_features)
    scales = [a.abs().max().clamp_min(1e-30) for a in acts]
    payload = {
        "points": list(model.probe_points),
        "index": idx.cpu(),
        "y": bench.y_test[idx].cpu(),
        "t": bench.t_test[idx].cpu(),
        "n_outputs": int(bench.n_outputs),
        "requested": int(n_samples),
        "scales": torch.stack(scales).float().cpu(),
        "acts": [(a / s).half().cpu() for a, s in zip(acts, scales, strict=True)],
    }
    return pack(payload)  # JSON + safetensors: reading it back runs no unpickler


def load_recording(blob: bytes, device: torch.device | str = "cpu") -> dict:
    """The dict :func:`record_after_task` saved, with ``acts`` back as float32 on ``device``."""
    rec = unpack(blob)
    rec["acts"] = [
        a.float().to(device) * s.to(device) for a, s in zip(rec["acts"], rec["scales"], strict=True)
    ]
    return rec


def recorded_tasks(store, key: str) -> list[int]:
    """Phases of run ``key`` that have recorded activations (0, 1, … until the first gap)."""
    t = 0
    while store.get_extra(key, f"acts/{t}") is not None:
        t += 1
    return list(range(t))


def recording_for(store, key: str, device: torch.device | str = "cpu") -> list[dict]:
    """Every recording of run ``key``, in phase order (empty when none was recorded)."""
    return [
        load_recording(store.get_extra(key, f"acts/{t}"), device)
        for t in recorded_tasks(store, key)
    ]
