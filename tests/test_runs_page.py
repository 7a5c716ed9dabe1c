"""The Runs page: results of every kind listed (header count = table rows, a kind column and a
filter), Delete only after a confirmation and with an undo, the "opened from the store" counter
moving when a result is opened, the key column not cut, and (hosted) other sessions' running
jobs read-only while the session's own have Cancel."""

from __future__ import annotations

import re

import streamlit as st
from conftest import tiny_config
from test_app import TIMEOUT, open_app
from test_live_view import SID, Gate, as_session

from app import live
from engine.jobs import get_manager
from engine.runner import prepare
from engine.runner import run as run_here


def stored_count(at) -> int:
    line = next(c.value for c in at.caption if c.value.startswith("Stored results:"))
    return int(re.match(r"Stored results: (\d+)", line).group(1))


def put_toy_result(m) -> str:
    """A stored result of another kind (what the Softmax page's toy computes), as the store
    holds it: the app lists what is stored without computing it."""
    key = "toy0000000000000000000000"
    m.store.put_result(
        key, {"kind": "toy", "key": key, "config": {"d": 5}, "status": "done", "metrics": {}}
    )
    return key


def test_every_kind_is_listed_and_the_header_counts_the_table():
    m = get_manager()
    run_here(tiny_config(), store=m.store)
    run_here(tiny_config(strategy={"name": "joint"}), store=m.store)
    toy = put_toy_result(m)
    at = open_app(page="runs")
    table = at.dataframe[0].value
    assert stored_count(at) == len(table) == 3
    assert sorted(table["kind"]) == ["run", "run", "toy"]
    assert list(table.columns[:3]) == ["when", "kind", "key"]  # the key is not at the far right
    joint = table[table["strategy"] == "joint"].iloc[0]
    assert float(joint["ACC"]) > 0 and list(joint[["BWT", "FWT", "forgetting"]]) == ["—"] * 3
    assert set(table[table["kind"] == "toy"].iloc[0][["benchmark", "ACC"]]) == {"—"}
    at.multiselect(key="runs:kinds").set_value(["toy"]).run()
    assert list(at.dataframe[0].value["key"]) == [toy]
    assert any(c.value.startswith("Stored results: 3 · shown: 1") for c in at.caption)


def test_opening_a_result_counts_as_opened_from_the_store():
    m = get_manager()
    run_here(tiny_config(), store=m.store)  # stored by another process, as it were
    before = m.counts["from_store"]
    at = open_app(page="runs")
    assert m.counts["from_store"] == before + 1
    assert any(f"{before + 1} opened from the store" in c.value for c in at.caption)
    at.run()
    assert m.counts["from_store"] == before + 1  # once per session and result


def test_delete_asks_first_says_what_it_deleted_and_can_be_undone():
    m = get_manager()
    run_here(tiny_config(), store=m.store)
    key = prepare(tiny_config())[1]
    kept = m.store.get_result(key)
    at = open_app(page="runs")
    next(b for b in at.button if b.label == "Delete…").click().run()
    assert m.store.has_result(key)
    next(b for b in at.button if b.label == "Keep it").click().run()
    assert m.store.has_result(key) and not at.warning
    next(b for b in at.button if b.label == "Delete…").click().run()
    next(b for b in at.button if b.label == "Yes, delete").click().run()
    assert not m.store.has_result(key)
    assert any(key in s.value and s.value.startswith("Deleted") for s in at.success)
    next(b for b in at.button if b.label == "Undo").click().run()
    assert m.store.get_result(key) == kept
    assert list(at.dataframe[0].value["key"]) == [key]
    assert any(s.value.startswith("Restored") for s in at.success)


def test_hosted_others_running_jobs_are_read_only(monkeypatch):
    monkeypatch.setenv("FORGET_HOSTED", "1")
    monkeypatch.setattr(live, "session_id", lambda: st.session_state.get(SID))
    m = get_manager()
    gate = Gate(m, monkeypatch, rows=1)
    owner = as_session("owner", {})
    next(b for b in owner.button if b.label == "Run").click().run()
    assert gate.reached.wait(TIMEOUT)
    other = as_session("other", {})
    other.switch_page("views/runs.py").run()
    assert not [b for b in other.button if b.label == "Cancel"]
    assert any(c.value == "another visitor's" for c in other.caption)
    owner.switch_page("views/runs.py").run()
    assert [b.label for b in owner.button if b.label == "Cancel"] == ["Cancel"]
    assert not [b for b in owner.button if b.label.startswith("Delete")]  # hosted: no deleting
    gate.release.set()
    m.wait(prepare({})[1], TIMEOUT)
