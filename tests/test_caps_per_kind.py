"""Hosted caps hold for every kind (issue 14): each kind's defaults fit the demo's caps, and a
spec over them is refused at submit — the engine's API behind every page and link — with one
line naming the cap, before anything is built, nothing queued and nothing stored; and what the
lessons ask for fits the caps, so the demo refuses none of them."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.lessons import LESSONS
from engine import kinds
from engine.caps import Caps
from engine.errors import CapExceeded, ConfigError
from engine.jobs import JobManager
from engine.store import Store

LEARN = str(Path(__file__).resolve().parents[1] / "app" / "views" / "learn.py")

# kind → (raw spec over a cap, extra environment, the cap the refusal names). Within each spec's
# own bounds; softmax's bounds keep it far under the default caps, so its case lowers one.
OVER = {
    "run": ({"model": {"depth": 8, "width": 4096}}, {}, "model"),
    "record": ({"model": {"depth": 8, "width": 4096}}, {}, "model"),
    # the page attack: depth 12, width 2048, 1,000 epochs
    "tunnel": ({"model": {"depth": 12, "width": 2048}, "train": {"epochs": 1000}}, {}, "model"),
    "temperature": ({"model": {"width": 2048}}, {}, "model"),
    "erosion": ({"model": {"width": 2048}}, {}, "model"),
    "substitution": ({"model": {"width": 2048}}, {}, "model"),
    "repforget": ({"train": {"epochs": 1000}}, {}, "steps"),
    "toy": ({"iters": 50_000}, {}, "steps"),
    "lesson-curvature": ({"width": 64, "depth": 4}, {}, "memory"),
    "softmax": ({"n": 128, "per_decade": 20}, {"FORGET_MAX_MACS": "1e9"}, "compute"),
}


def test_every_kind_has_an_over_cap_case():
    assert set(OVER) == set(kinds.names())  # a new kind adds its case here


@pytest.mark.parametrize("kind", sorted(OVER))
def test_defaults_fit_the_hosted_caps(kind, monkeypatch):
    monkeypatch.setenv("FORGET_HOSTED", "1")
    spec, _ = kinds.prepare(kind, {})
    Caps.from_env().check(kind, spec, kinds.estimate(kind, spec))  # raises if the demo refused it


@pytest.mark.parametrize("kind", sorted(OVER))
def test_over_cap_spec_is_refused_at_submit_with_one_line(kind, monkeypatch):
    raw, env, cap = OVER[kind]
    monkeypatch.setenv("FORGET_HOSTED", "1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    m = JobManager(workers=1)
    try:
        assert m.hosted
        with pytest.raises(CapExceeded) as err:
            m.submit(raw, session_id="visitor", kind=kind, visitor="203.0.113.7")
        line = str(err.value)
        assert line.startswith(f"{cap}: ") and "\n" not in line and "hosted limit" in line
        assert m.jobs() == []
        assert Store().list_results() == []
    finally:
        m.shutdown(wait=True)
    # Locally the same spec passes the (absent) caps.
    spec, _ = kinds.prepare(kind, raw)
    Caps().check(kind, spec, kinds.estimate(kind, spec))


def test_every_lesson_asks_only_for_what_a_hosted_demo_allows(monkeypatch):
    """Every step of every lesson, in hosted mode: each computation it submits (recorded here,
    not run) fits the hosted caps, so no lesson is refused on the demo."""
    monkeypatch.setenv("FORGET_HOSTED", "1")
    asked: list[tuple[str, dict]] = []

    def record(self, config, session_id=None, kind="run", visitor=None):
        asked.append((kind, config))
        raise ConfigError("recorded, not run")

    monkeypatch.setattr(JobManager, "submit", record)
    caps = Caps.from_env()
    for lesson in LESSONS:
        for step in range(len(lesson.STEPS)):
            at = AppTest.from_file(LEARN, default_timeout=120)
            at.session_state["learn:lesson"] = lesson.SLUG
            at.session_state["learn:step"] = step
            at.run()
            assert not at.exception, (lesson.SLUG, step, [e.message for e in at.exception])
    assert {kind for kind, _ in asked} >= {"run", "softmax", "toy", "lesson-curvature", "tunnel"}
    for kind, raw in asked:
        spec, _ = kinds.prepare(kind, raw)
        caps.check(kind, spec, kinds.estimate(kind, spec))  # CapExceeded names the cap
