"""The Softmax page through AppTest: its curve and toy are jobs of the engine (kinds softmax and
toy) drawn when they come back, a link restores the view, and a link past the widgets' bounds
is refused field by field — nothing out of range is computed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.live import manager
from engine import kinds
from engine.caps import Caps
from engine.store import Store

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
TIMEOUT = 60


def open_softmax(query: dict) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/softmax.py")
    for k, v in query.items():
        at.query_params[k] = str(v)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def finish_jobs(at: AppTest) -> AppTest:
    for job in manager().jobs():
        manager().wait(job["key"], timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_the_lab_is_drawn_from_the_stored_jobs():
    at = finish_jobs(open_softmax({"v_iters": 300, "v_n": 8}))
    shown = titles(at)
    assert "Rank of softmax(c·B)" in shown and "Rank over training" in shown
    assert at.number_input(key="toy:iters").value == 300  # the view came from the link
    stored = {m["kind"] for m in Store().list_results()}
    assert stored == {"softmax", "toy"}
    _, key = kinds.prepare("softmax", {"n": 8})
    rank = next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if json.loads(c.proto.spec)["layout"]["title"]["text"] == "Rank of softmax(c·B)"
    )
    assert rank["layout"]["xaxis"]["type"] == "log"
    assert rank["data"][0]["y"] == Store().get_result(key)["curve"]["rank"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"v_c_lo": -300, "v_c_hi": 300, "v_per_decade": 20, "v_n": 128}, "c_lo"),
        ({"v_n": 100000}, "n"),
        ({"v_n": -3}, "n"),
        ({"v_iters": 10000000}, "iters"),
        ({"v_per_decade": "1e9"}, "per_decade"),
        ({"v_losses": "x" * 5000}, "losses"),
    ],
)
def test_links_past_the_bounds_are_refused_by_field(query, field):
    at = open_softmax(query)
    warnings = [w.value for w in at.warning]
    assert any(field in w for w in warnings), warnings
    assert all(len(w) < 400 for w in warnings)
    # what runs is within the bounds: every submitted spec validates and fits the hosted caps
    caps = Caps.from_env()
    for job in manager().jobs():
        spec, _ = kinds.prepare(job["kind"], manager().get(job["key"]).config)
        caps.check(job["kind"], spec, kinds.estimate(job["kind"], spec))
        manager().cancel(job["key"])
