"""Shared test setup: every test gets its own empty store, and CPU work stays on one thread
(the CI machine has 2 cores; tiny steps lose time to thread hand-offs)."""

from __future__ import annotations

import os

os.environ.setdefault("FORGET_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    """Point the engine's store at a fresh directory for each test."""
    monkeypatch.setenv("FORGET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FORGET_HOSTED", raising=False)
    yield


def tiny_config(**overrides) -> dict:
    """A split-digits config that trains in well under a second."""
    cfg = {
        "scenario": "class",
        "data": {"benchmark": "split-digits"},
        "model": {"arch": "mlp", "depth": 1, "width": 32},
        "train": {"epochs": 2, "batch_size": 64, "lr": 5e-3, "evals_per_task": 2, "device": "cpu"},
        "strategy": {"name": "naive"},
    }
    for path, value in overrides.items():
        node = cfg
        *parents, leaf = path.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return cfg
