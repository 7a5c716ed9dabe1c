"""The Forgetting page's live view, through AppTest: curves grow with the rows of R, one button
(Run or Cancel, never both) and one row of metric cards in every state, Cancel keeps the
finished rows, Run again replaces the "Cancelled" line, a reopened result says where it came
from, joint's meaningless metrics show "—" with the reason, the strategy's note for the scenario
sits under the strategy, and (hosted) only the session that started a run may cancel it."""

from __future__ import annotations

import re
import threading
import time
from types import SimpleNamespace

import pytest
import streamlit as st
from conftest import tiny_config
from streamlit.testing.v1 import AppTest
from test_app import MAIN, TIMEOUT, heatmap_cells, metric_values, open_app, tiny_query

from app import live
from engine.jobs import get_manager
from engine.metrics import summarize
from engine.runner import prepare
from engine.runner import run as run_here
from engine.strategies import REGISTRY

SID = "test:session"


class Gate:
    """Holds a job at an event (the job's process waits for the app's acknowledgement of each
    row of R, so holding the manager's event handler holds the training) until released."""

    def __init__(self, m, monkeypatch, event: str = "row", rows: int = 1) -> None:
        self.reached, self.release = threading.Event(), threading.Event()
        original = m._on_event

        def held(job, e):
            original(job, e)
            if e["type"] == event and len(job.progress.get("R") or []) >= rows:
                if not self.reached.is_set():
                    self.reached.set()
                    self.release.wait(TIMEOUT)

        monkeypatch.setattr(m, "_on_event", held)


def buttons(at) -> list[str]:
    return [b.label for b in at.button if b.label in ("Run", "Cancel", "Cancelling…")]


def curve_points(at) -> dict[str, list[float]]:
    """The curves as the page's SVG draws them: series name → x of each point."""
    body = next(md.value for md in at.markdown if 'class="line-chart"' in md.value)
    out: dict[str, list[float]] = {}
    for name, group in re.findall(r'<g class="series" data-name="([^"]+)">(.*?)</g>', body):
        out[name] = [float(x) for x in re.findall(r'data-x="([^"]+)"', group)]
    return out


def test_curves_grow_with_the_rows_and_one_button_shows(monkeypatch):
    m = get_manager()
    gate = Gate(m, monkeypatch, rows=2)
    at = open_app(tiny_query())
    assert buttons(at) == ["Run"] and len(at.metric) == 5
    next(b for b in at.button if b.label == "Run").click().run()
    assert gate.reached.wait(TIMEOUT)
    at.run()
    key = prepare(tiny_config())[1]
    snapshot = m.status(key)
    assert snapshot["state"] == "running"
    assert [len(r) for r in heatmap_cells(at)] == [5, 5]  # two rows of R so far
    curves = curve_points(at)
    assert sorted(curves) == [f"task {i}" for i in range(1, 6)]
    # every evaluation point so far (2 per task, 2 tasks done) is drawn on every task's curve
    assert curves["task 1"] == snapshot["curves"]["step"] and len(curves["task 1"]) == 4
    assert buttons(at) == ["Cancel"] and len(at.metric) == 5
    assert all(v == "—" for v in metric_values(at).values())  # no metric of half a matrix
    gate.release.set()
    assert m.wait(key, TIMEOUT)["state"] == "done"
    at.run()
    assert buttons(at) == [] and len(at.metric) == 5
    assert any(s.value.startswith("Done: 5 of 5 tasks") for s in at.success)
    assert len(curve_points(at)["task 5"]) == 10


def test_cancel_keeps_the_finished_rows_and_run_again_replaces_the_banner(monkeypatch):
    m = get_manager()
    gate = Gate(m, monkeypatch, rows=1)
    at = open_app(tiny_query())
    next(b for b in at.button if b.label == "Run").click().run()
    assert gate.reached.wait(TIMEOUT)
    at.run()
    next(b for b in at.button if b.label == "Cancel").click().run()
    assert buttons(at) == ["Cancelling…"]
    gate.release.set()
    key = prepare(tiny_config())[1]
    assert m.wait(key, TIMEOUT)["state"] == "cancelled"
    first_row = m.status(key)["R"][0]
    at.run()
    assert any(i.value.startswith("Cancelled: cancelled after 1 finished") for i in at.info)
    assert heatmap_cells(at) == [pytest.approx(first_row, abs=1e-6)]  # kept, not blanked
    assert len(curve_points(at)["task 1"]) == 2
    assert buttons(at) == ["Run"]
    # Run again: while it runs, the old "Cancelled" line is gone and the kept row stays.
    again = Gate(m, monkeypatch, event="start", rows=0)
    next(b for b in at.button if b.label == "Run").click().run()
    assert again.reached.wait(TIMEOUT)
    at.run()
    assert not [i for i in at.info if i.value.startswith("Cancelled")]
    assert buttons(at) == ["Cancel"] and len(heatmap_cells(at)) == 1
    again.release.set()
    assert m.wait(key, TIMEOUT)["state"] == "done"
    at.run()
    assert len(heatmap_cells(at)) == 5


def test_a_reopened_result_says_when_it_finished_or_that_it_came_from_the_store():
    m = get_manager()
    key = prepare(tiny_config())[1]
    assert m.submit(tiny_config()).wait(TIMEOUT)
    done = open_app(tiny_query())
    assert any("· just finished ·" in s.value for s in done.success)
    m.get(key).finished_at = time.time() - 600  # the same result, opened ten minutes later
    later = open_app(tiny_query())
    line = next(s.value for s in later.success if s.value.startswith("Done"))
    assert "finished 10 min ago" in line and "just finished" not in line
    # A result this server did not compute comes from the store, and is counted as such.
    other = tiny_config(train__seed=7)
    run_here(other, store=m.store)
    before = m.counts["from_store"]
    at = open_app(share_query(other))
    assert any("opened from the store" in s.value for s in at.success)
    assert m.counts["from_store"] == before + 1
    at.run()  # a rerun of the same session does not count it again
    assert m.counts["from_store"] == before + 1


def share_query(raw: dict) -> dict:
    from app import share

    return share.config_to_query(raw)


def test_done_line_wording():
    result = {"R": [[1.0]], "timing": {"total_s": 1.25}, "device": "cpu"}
    assert "opened from the store" in live.done_line("k", result, {"cached": True})
    fresh = live.done_line("k", result, {"cached": False, "finished_at": time.time() - 5})
    assert "just finished" in fresh and "trained in 1.2 s on cpu" in fresh
    old = live.done_line("k", result, {"cached": False, "finished_at": time.time() - 3 * 3600})
    assert "finished 3 h ago" in old


def test_joint_shows_a_dash_with_the_reason_for_transfer_and_forgetting():
    raw = tiny_config(strategy={"name": "joint"})
    m = get_manager()
    assert m.submit(raw).wait(TIMEOUT)
    at = open_app(share_query(raw))
    cards = {c.label: c for c in at.metric}
    for label in ("BWT", "FWT", "Forgetting"):
        assert cards[label].value == "—"
        assert "same final model" in cards[label].help
    r = m.store.get_result(prepare(raw)[1])
    assert cards["ACC"].value == f"{summarize(r['R'], r['baseline'])['acc']:.3f}"
    skip = getattr(REGISTRY["joint"][0], "meaningless_metrics", ())
    assert {"bwt", "fwt", "forgetting"} <= set(skip)


def test_the_strategys_note_for_the_scenario_is_under_the_strategy():
    note = REGISTRY["ewc"][0].notes["class"]
    at = open_app({"strategy": "ewc"})  # class-incremental is the default scenario
    shown = [i.value for i in at.sidebar.info]
    assert len(shown) == 1 and shown[0].startswith(note[:40]) and "task-IL" in shown[0]
    at = open_app({"strategy": "ewc", "scenario": "task"})
    assert not at.sidebar.info  # no note for task-IL


def as_session(name: str, query: dict) -> AppTest:
    """A session of its own (AppTest gives every session one id): its id lives in its state."""
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.session_state[SID] = name
    for k, v in query.items():
        at.query_params[k] = str(v)
    return at.run()


def test_hosted_only_the_session_that_started_a_run_may_cancel_it(monkeypatch):
    monkeypatch.setenv("FORGET_HOSTED", "1")
    monkeypatch.setattr(live, "session_id", lambda: st.session_state.get(SID))
    m = get_manager()
    gate = Gate(m, monkeypatch, rows=1)
    owner = as_session("owner", tiny_query())
    next(b for b in owner.button if b.label == "Run").click().run()
    assert gate.reached.wait(TIMEOUT)
    watcher = as_session("watcher", tiny_query())
    assert buttons(watcher) == []
    assert any("only the session that started it can cancel" in c.value for c in watcher.caption)
    owner.run()
    assert buttons(owner) == ["Cancel"]
    key = prepare(tiny_config())[1]
    assert m.get(key).owner == "owner" and m.get(key).visitor == "owner"
    assert not m.cancel(key, "watcher")
    gate.release.set()
    assert m.wait(key, TIMEOUT)["state"] == "done"


def test_the_visitor_is_the_browser_not_the_tab(monkeypatch):
    fake = SimpleNamespace(context=SimpleNamespace(ip_address="198.51.100.7", headers={}))
    monkeypatch.setattr(live, "st", fake)
    monkeypatch.setattr(live, "session_id", lambda: "tab-1")
    assert live.visitor_id() == "198.51.100.7"
    # No trusted proxy: the header is the client's own words and is not read.
    fake.context.headers = {"X-Forwarded-For": "5.6.7.8"}
    assert live.visitor_id() == "198.51.100.7"
    # Behind one trusted proxy: the address it saw, the header's last entry — the first is
    # whatever the client wrote, so a visitor cannot pose as many by forging it.
    monkeypatch.setenv("FORGET_PROXIES", "1")
    fake.context.ip_address = "10.0.0.2"
    fake.context.headers = {"X-Forwarded-For": "1.2.3.4, 203.0.113.9"}
    assert live.visitor_id() == "203.0.113.9"
    monkeypatch.setenv("FORGET_PROXIES", "2")  # two proxies: one more place from the end
    fake.context.headers = {"X-Forwarded-For": "1.2.3.4, 203.0.113.9, 10.0.0.5"}
    assert live.visitor_id() == "203.0.113.9"
    fake.context.ip_address, fake.context.headers = None, {}
    assert live.visitor_id() == "tab-1"
