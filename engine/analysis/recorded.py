"""Views on a continual run's recorded activations: rank over tasks, CKA drift, probes.

A run trained with ``engine.runner.run(..., record_activations=N)`` holds, for every task t,
the activations of every probe point on N fixed test images (extras ``acts/<t>``, see
engine.analysis.activations). The views here read them back, so nothing is retrained:

* :func:`rank_view` — numerical rank of every layer after every task (thesis 5.3.1, 5.14);
* :func:`cka_view` — layer × layer CKA after the last task, and each layer's drift
  ``D[l][k][j] = CKA(layer l after task k, layer l after task j)`` (thesis Fig. 3.3.3);
* :func:`probes_view` — linear-probe accuracy of every layer after every task, the recorded
  images split in two halves (seeded, stratified by nothing but chance): probes fit on one half
  and are tested on the other, with the run's output units as labels.

:func:`ensure_recorded` gets the recordings of a run config: from the store when present,
else by running it through the runner with ``record_activations``; a run stored earlier without
recordings is retrained deterministically (same seed, same device) just to record them.
"""

from __future__ import annotations

import torch

from engine.analysis.activations import (
    RECORD_SEED,
    load_recording,
    record_after_task,
    recording_for,
)
from engine.config import ConfigError


def recordings(store, key: str) -> list[dict]:
    recs = recording_for(store, key)
    if not recs:
        raise ConfigError(
            f"--key: run {key!r} has no recorded activations; record them with "
            "`python -m engine analyze <view> --run …` or engine.runner.run(..., record_activations=N)"
        )
    return recs


def rank_view(recs: list[dict], rel_tol: float = 1e-3, max_features: int = 8000) -> dict:
    from engine.analysis.rank import rank_by_layer

    return {
        "layers": recs[0]["points"],
        "tasks": len(recs),
        "rank": [rank_by_layer(r["acts"], rel_tol, max_features=max_features) for r in recs],
    }


def cka_view(recs: list[dict], method: str = "linear") -> dict:
    from engine.analysis.cka import cka_drift, cka_matrix

    return {
        "layers": recs[0]["points"],
        "tasks": len(recs),
        "layer_by_layer": cka_matrix(recs[-1]["acts"], method=method),
        "drift": cka_drift([r["acts"] for r in recs], method=method),
    }


def probes_view(
    recs: list[dict], epochs: int = 30, lr: float = 1e-3, batch_size: int = 512, seed: int = 0
) -> dict:
    from engine.analysis.probes import train_probes

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


def ensure_recorded(config, n: int, store, on_event=None, cancel=None) -> str:
    """Key of the continual run ``config`` with recordings of ``n`` images after every task."""
    from engine.analysis import experiments as ex
    from engine.data import build_benchmark
    from engine.runner import prepare, run

    cfg, key = prepare(config)
    blob = store.get_extra(key, "acts/0")
    if blob is not None and load_recording(blob).get("requested") == n:
        return key
    if not store.has_result(key):
        run(cfg, on_event=on_event, store=store, cancel=cancel, record_activations=n)
        return key
    # Stored without recordings (or with another N): retrain deterministically to record them.
    bench = build_benchmark(cfg.data, cfg.scenario, cfg.train.device)
    progress = ex.Progress("record", key, on_event, cancel, store, True)
    progress.start(ex.planned_steps(bench, cfg), ["train"])

    def record(phase: int, model) -> None:
        store.put_extra(key, f"acts/{phase}", record_after_task(model, bench, n, RECORD_SEED))

    ex.fit(cfg, progress, "train", bench=bench, after_phase=record)
    return key
