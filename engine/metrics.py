"""Continual-learning metrics from the accuracy matrix R (SPEC section 4).

R[t][i] is the test accuracy on task i after training through task t (0-indexed here, so the
final row is R[T-1]); b_i is the accuracy of the untrained model on task i.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_matrix(R: Sequence[Sequence[float]]) -> np.ndarray:
    m = np.asarray(R, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 1:
        raise ValueError(f"R must be a square T×T matrix, got shape {m.shape}")
    return m


def summarize(R: Sequence[Sequence[float]], baseline: Sequence[float] | None = None) -> dict:
    """ACC, learning accuracy, BWT, FWT, mean forgetting and remembering of a T×T matrix R.

    * acc = mean_i R[T,i];  learning_acc = mean_i R[i,i]
    * bwt = 1/(T−1) Σ_{i<T} (R[T,i] − R[i,i])
    * fwt = 1/(T−1) Σ_{i>1} (R[i−1,i] − b_i)   (None without a baseline)
    * forgetting = mean_{i<T} (max_{t<T} R[t,i] − R[T,i])
    * rem = mean_{i<T} R[T,i] / R[i,i] × 100 (%)
    With one task the between-task metrics are 0 (nothing to forget or transfer).
    """
    m = _as_matrix(R)
    T = m.shape[0]
    final, diag = m[-1], np.diag(m)
    out = {
        "acc": float(final.mean()),
        "learning_acc": float(diag.mean()),
        "bwt": 0.0,
        "fwt": None,
        "forgetting": 0.0,
        "rem": 100.0,
    }
    if T > 1:
        out["bwt"] = float((final[:-1] - diag[:-1]).mean())
        fm = m[:-1, :-1].max(axis=0) - final[:-1]
        out["forgetting"] = float(fm.mean())
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(diag[:-1] > 0, final[:-1] / diag[:-1], 0.0)
        out["rem"] = float(ratios.mean() * 100.0)
    if baseline is not None:
        b = np.asarray(baseline, dtype=float)
        if b.shape != (T,):
            raise ValueError(f"baseline must have one value per task ({T}), got shape {b.shape}")
        out["fwt"] = (
            float((np.array([m[i - 1, i] for i in range(1, T)]) - b[1:]).mean()) if T > 1 else 0.0
        )
    return out


def forgetting_per_task(R: Sequence[Sequence[float]]) -> list[float]:
    """FM_i = max_{t<T} R[t,i] − R[T,i] for every task but the last."""
    m = _as_matrix(R)
    return [float(v) for v in (m[:-1, :-1].max(axis=0) - m[-1, :-1])] if len(m) > 1 else []


def old_new_accuracy(R: Sequence[Sequence[float]]) -> tuple[float, float]:
    """(mean accuracy on the earlier tasks, accuracy on the last task), both after the last task.

    old = mean_{i<T} R[T,i], new = R[T,T]; the split a stability-plasticity plot reads.
    """
    m = _as_matrix(R)
    if len(m) < 2:
        raise ValueError("R needs at least two tasks to split old from new")
    final = m[-1]
    return float(final[:-1].mean()), float(final[-1])


def stability_plasticity(R) -> tuple[float, float]:
    """(old-task accuracy, new-task accuracy) of a complete R, the Compare page's scatter.

    old = mean_{i<T} R[T,i] (what is kept of the earlier tasks at the end: stability);
    new = mean_i R[i,i] (how well each task is learned when it is the new one: plasticity).
    One task: both are that task's accuracy.
    """
    m = np.asarray(R, dtype=float)
    old = float(m[-1, :-1].mean()) if len(m) > 1 else float(m[-1, -1])
    return old, float(np.diag(m).mean())
