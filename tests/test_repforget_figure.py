"""figure_repforget: three models side by side, frozen probes over tasks and CKA drift."""

from __future__ import annotations

import pytest

from app.analysis_figures import figure_repforget


def _model(offset: float) -> dict:
    # 3 tasks: probe j's accuracy after task t; drift of task k's images from task k on.
    P = [[0.9 + offset, None, None], [0.7 + offset, 0.95, None], [0.6 + offset, 0.8, 0.99]]
    drift = [[[1.0, 0.8, 0.7]], [[1.0, 0.9]], [[1.0]]]
    return {"probe_acc": P, "drift": drift, "penultimate_drift": [d[-1] for d in drift]}


RESULT = {
    "tasks": 3,
    "task_classes": [[0, 1], [2, 3], [4, 5]],
    "models": ["discriminative", "autoencoder", "vae"],
    "discriminative": _model(0.0),
    "autoencoder": _model(0.05),
    "vae": {**_model(0.08), "beta": 1.0},
}


def test_one_column_per_model_with_every_frozen_probe_and_the_drift():
    fig = figure_repforget(RESULT)
    titles = [a.text for a in fig.layout.annotations if a.text]
    assert titles[:3] == ["discriminative", "autoencoder", "VAE (β = 1)"]
    vae_probes = list(fig.select_traces(row=1, col=3))
    assert [list(t.x) for t in vae_probes] == [[1, 2, 3], [2, 3], [3]]
    assert list(vae_probes[0].y) == pytest.approx([0.98, 0.78, 0.68])
    ae_drift = list(fig.select_traces(row=2, col=2))
    assert [list(t.y) for t in ae_drift] == [[1.0, 0.8, 0.7], [1.0, 0.9], [1.0]]
    # One legend entry per task, shared by the columns.
    assert [t.name for t in fig.data if t.showlegend] == ["task 1", "task 2", "task 3"]
    chance = [s for s in fig.layout.shapes if s.y0 == s.y1]
    assert len(chance) == 3 and {s.y0 for s in chance} == {0.5}


def test_a_two_model_result_draws_two_columns_and_no_chance_for_mixed_tasks():
    old = {k: v for k, v in RESULT.items() if k not in ("vae", "models")}
    old["task_classes"] = [[0, 1], [2, 3, 4], [5, 6]]
    fig = figure_repforget(old)
    assert [a.text for a in fig.layout.annotations] == ["discriminative", "autoencoder"]
    assert len(fig.data) == 2 * (3 + 3)
    assert not fig.layout.shapes
