"""Views on a continual run's recorded activations: rank over tasks, CKA drift, probes.

A ``record`` computation (engine.kinds.record) holds, for every task t, the activations of every
probe point on N fixed test images (extras ``acts/<t>`` of its key, see
engine.analysis.activations). The views here read them, so nothing is retrained:

* :func:`rank_view` — numerical rank of every layer after every task (thesis 5.3.1, 5.14);
* :func:`cka_view` — layer × layer CKA after the last task, and each layer's drift
  ``D[l][k][j] = CKA(layer l after task k, layer l after task j)`` (thesis Fig. 3.3.3);
* :func:`probes_view` — linear-probe accuracy of every layer after every task, the recorded
  images split in two halves (seeded, stratified by nothing but chance): probes fit on one half
  and are tested on the other, with the run's output units as labels.

"""

from __future__ import annotations

import torch

from engine.analysis.activations import (
    recording_for,
)
from engine.analysis.cka import cka_drift, cka_matrix
from engine.analysis.probes import train_probes
from engine.analysis.rank import rank_by_layer
from engine.errors import ConfigError


def recordings(store, key: str) -> list[dict]:
    recs = recording_for(store, key)
    if not recs:
        raise ConfigError(
            f"--key: {key!r} has no recorded activations; record a run with "
            "`python -m engine analyze <view> --run …` (the record kind)"
        )
    return recs


def rank_view(recs: list[dict], rel_tol: float = 1e-3, max_features: int = 8000) -> dict:
    return {
        "layers": recs[0]["points"],
        "tasks": len(recs),
        "rank": [rank_by_layer(r["acts"], rel_tol, max_features=max_features) for r in recs],
    }


def cka_view(recs: list[dict], method: str = "linear") -> dict:
    return {
        "layers": recs[0]["points"],
        "tasks": len(recs),
        "layer_by_layer": cka_matrix(recs[-1]["acts"], method=method),
        "drift": cka_drift([r["acts"] for r in recs], method=method),
    }


def probes_view(
    recs: list[dict], epochs: int = 30, lr: float = 1e-3, batch_size: int = 512, seed: int = 0
) -> dict:
    n = len(recs[0]["y"])
    if n < 4:
        raise ConfigError(f"record: {n} recorded images are too few to split for probes (need ≥ 4)")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    fit, test = perm[: n // 2], perm[n // 2 :]
    y = recs[0]["y"]
    out = []
    for r in recs:
        res = train_probes(
            [a[fit] for a in r["acts"]],
            y[fit],
            [a[test] for a in r["acts"]],
            y[test],
            r["n_outputs"],
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
        )
        out.append(res["test_acc"])
    return {
        "layers": recs[0]["points"],
        "tasks": len(recs),
        "n_fit": len(fit),
        "n_test": len(test),
        "test_acc": out,
    }
