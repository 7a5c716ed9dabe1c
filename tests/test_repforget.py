"""Representation forgetting with three models (engine.analysis.repforget): the result's shape,
determinism for a seed, the CLI table, bad input."""

from __future__ import annotations

import pytest

from engine import kinds
from engine.config import ConfigError
from engine.executor import execute
from engine.kinds import repforget as rf

TINY = {
    "hidden": "16,4,16",
    "train": {"epochs": 1, "batch_size": 64, "device": "cpu"},
    "probe_epochs": 3,
    "n_eval": 100,
}


def _compute(raw: dict) -> dict:
    return execute("repforget", raw, use_cache=False)


@pytest.fixture(scope="module")
def result():
    return _compute(TINY)


def test_three_models_side_by_side_with_the_thesis_reading(result):
    T = result["tasks"]
    assert result["models"] == ["discriminative", "autoencoder", "vae"]
    assert "VAE" in result["reading"] and "3.3.2" in result["reading"]
    for m in result["models"]:
        P = result[m]["probe_acc"]
        assert all(P[t][j] is None for t in range(T) for j in range(t + 1, T))
        assert all(0.0 <= P[t][j] <= 1.0 for t in range(T) for j in range(t + 1))
        assert result[m]["layers"] == ["fc1", "fc2", "fc3"]
        assert [layer[0] for layer in result[m]["drift"][0]] == pytest.approx([1.0] * 3)
        assert set(result["metrics"][m]) >= {"probe_acc_final", "probe_forgetting"}
    assert result["vae"]["beta"] == 1.0
    assert len(result["vae"]["elbo"]) == T
    assert all(e["kl"] >= 0 for e in result["vae"]["elbo"])


def test_the_result_is_deterministic_for_a_seed(result):
    again = _compute(TINY)
    for m in result["models"]:
        assert again[m] == result[m]
        assert again["metrics"][m] == result["metrics"][m]
    other = _compute({**TINY, "train": {**TINY["train"], "seed": 1}})
    assert other["vae"]["probe_acc"] != result["vae"]["probe_acc"]


def test_beta_changes_only_the_vae(result):
    heavy = _compute({**TINY, "beta": 50.0})
    assert heavy["autoencoder"] == result["autoencoder"]
    assert heavy["vae"]["beta"] == 50.0
    # A heavier KL squeezes the posterior towards the prior.
    assert heavy["vae"]["elbo"][0]["kl"] < result["vae"]["elbo"][0]["kl"]


def test_table_shows_every_model_and_the_summary(result):
    text = rf.table(result)
    for m in ("discriminative", "autoencoder", "vae (β = 1)"):
        assert f"{m}: frozen probe" in text
    summary = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line}
    final = result["metrics"]["vae"]["probe_acc_final"]
    assert summary["vae"][1] == f"{final:.3f}"
    assert "Thesis" in text
    # An old two-model result still prints.
    old = {k: v for k, v in result.items() if k not in ("vae", "models")}
    assert "vae" not in rf.table(old) and "autoencoder: frozen probe" in rf.table(old)


def test_bad_beta_is_one_line_naming_the_field():
    with pytest.raises(ConfigError, match="beta"):
        kinds.prepare("repforget", {"beta": -1})
    assert kinds.prepare("repforget", {"beta": 2})[1] != kinds.prepare("repforget", {})[1]
