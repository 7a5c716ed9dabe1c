"""What the strategies tell the page besides numbers: per-scenario notes where a default teaches
the wrong lesson, and metrics that mean nothing for a strategy (joint's BWT/FWT)."""

from __future__ import annotations

import re

import pytest
from conftest import tiny_config

from engine.metrics import summarize
from engine.runner import run
from engine.strategies import REGISTRY

REGULARISERS = ("ewc", "online-ewc", "si", "l2", "lwf")


@pytest.mark.parametrize("name", list(REGISTRY))
def test_notes_are_keyed_by_scenarios_the_strategy_runs_in(name):
    params = REGISTRY[name][0]
    assert set(params.notes) <= set(params.scenarios), (name, params.notes)
    assert all(isinstance(text, str) and text.strip() for text in params.notes.values())


@pytest.mark.parametrize("name", REGULARISERS)
def test_regularisers_say_in_class_il_why_they_stay_near_naive_and_what_to_try(name):
    note = REGISTRY[name][0].notes["class"]
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", note.strip()) if s]
    assert len(sentences) <= 2, sentences
    assert "task-IL" in note and "replay" in note
    assert "task ids" in note  # the reason: without them old and new classes are not told apart


def test_joint_declares_the_between_task_metrics_meaningless_with_a_reason():
    params = REGISTRY["joint"][0]
    names = params.meaningless_metrics
    assert set(names) == {"bwt", "fwt", "forgetting", "rem"}
    assert set(names) <= set(summarize([[1.0, 0.5], [0.9, 0.8]], baseline=[0.5, 0.5]))
    assert "same final model" in params.meaningless_reason
    # Every other strategy has none (read the way the page reads it until base.py has a default).
    assert all(
        getattr(p, "meaningless_metrics", ()) == ()
        for n, (p, _) in REGISTRY.items()
        if n != "joint"
    )


def test_joint_rows_of_r_are_all_the_same_model():
    """The reason given is true: every row of joint's R is the one final model's accuracies."""
    R = run(tiny_config(strategy={"name": "joint"}), use_cache=False).R
    assert all(row == R[-1] for row in R)
