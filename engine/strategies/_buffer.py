"""Rehearsal-buffer helpers shared by replay, A-GEM and DER++: seeded generators, reservoir slots.

Buffers live on the training device. Their randomness comes only from generators seeded with the
run's seed, the phase and a per-use stream number, so a resumed run draws exactly what an
uninterrupted one would.
"""

from __future__ import annotations

import torch


def generator(
    seed: int, phase: int, device: torch.device | str = "cpu", stream: int = 0
) -> torch.Generator:
    """A generator for (seed, phase, stream), distinct from the training loop's shuffling stream."""
    return torch.Generator(device=device).manual_seed((seed * 1_000_003 + phase) * 16 + stream + 1)


def buffer_samples(bench, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Device copies of the training rows ``index`` (a host tensor): inputs, output-unit
    targets, task ids — what a buffer holding those rows rehearses."""
    rows = index.to(bench.x_train.device)
    return bench.x_train[rows], bench.y_train[rows], bench.t_train[rows]


def reservoir_slots(
    n_seen: int, n_new: int, capacity: int, gen: torch.Generator, device: torch.device | str
) -> torch.Tensor:
    """Where each of ``n_new`` stream items goes in a reservoir of ``capacity`` that has seen ``n_seen``.

    Algorithm R (Vitter 1985), vectorised: item number c (counting from 0 over the whole stream)
    fills slot c while the reservoir is not full, and otherwise replaces a uniformly drawn slot
    r ∈ [0, c] when r < capacity, so every item seen so far is kept with equal probability.
    Items that are not kept, and items overwritten by a later item of the same batch (the later
    one wins, as in the sequential algorithm), get the spare index ``capacity``: buffers carry one
    extra row that absorbs those writes, so one ``index_copy_`` applies the batch without a
    host synchronisation.
    """
    j = torch.arange(n_new, device=device)
    count = j + n_seen
    u = torch.rand(n_new, generator=gen, device=device, dtype=torch.float64)
    drawn = (u * (count + 1).double()).long().clamp_max(count)  # uniform on [0, count]
    slot = torch.where(count < capacity, count, drawn).clamp_max(capacity)
    last = torch.full((capacity + 1,), -1, dtype=torch.long, device=device)
    last.scatter_reduce_(0, slot, j, reduce="amax")
    return torch.where(last[slot] == j, slot, torch.full_like(slot, capacity))
