"""Load: 20 ordinary sessions on loopback asking the hosted app for 5 distinct configs, while
one hostile visitor replays every attack of issue 15.

The drive lives in bench/load_sessions.py (it also prints the numbers for the notes: run it with
``--hostile``): a real ``streamlit run app/main.py`` in hosted mode, 20 websocket sessions
speaking Streamlit's own protocol, each from its own address, opening the Forgetting page on
one of 5 links, pressing Run and watching until the page says Done. Beside them the hostile
visitor (bench/hostile_visitor.py) presses Run in many tabs, opens crafted links on every page,
forges widget values over the caps, and looks for a Cancel on the others' jobs; here it cancels
its own jobs once its tabs have pressed Run, so the drive stays short (the bench lets them run
ahead of everyone's, the worst case). One drive (50-70 s on a shared 2-core machine), checked
by the tests below. The plain drive (no hostile visitor) is the slow test at the end.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("load_sessions", ROOT / "bench/load_sessions.py")
load_sessions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load_sessions)
hostile_visitor = importlib.import_module("hostile_visitor")  # beside it in bench/, on the path

SHARE = 2  # FORGET_MAX_JOBS_PER_VISITOR's default
QUEUE = 1 + 16  # one worker on a CPU machine + FORGET_MAX_QUEUE's hosted default


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = load_sessions.drive(
        tmp_path_factory.mktemp("load"),
        sessions=20,
        n_configs=5,
        hostile=True,
        hostile_cancels=True,
    )
    print(out)  # the figures for the notes (pytest -s shows them)
    return out


@pytest.mark.timeout(600)
def test_every_ordinary_session_is_served_without_an_error_or_a_refusal(report):
    assert report["errors"] == [] and report["refused"] == []
    assert report["served"] == 20
    assert report["results_in_store"] == 5
    assert report["first_row_s"]["p95"] is not None
    assert report["tracebacks_in_server_log"] == 0, report["server_exceptions"]
    assert report["hostile"]["failures"] == []  # the server answered every hostile tab too
    # Memory stays bounded: a run process at a time beside the app (PSS of the whole tree).
    assert report["memory_mb"]["peak"] < 3000


def test_the_hostile_tabs_get_one_visitors_share_and_never_fill_the_queue(report):
    h = report["hostile"]
    tabs = len(hostile_visitor.EXPENSIVE) + len(hostile_visitor.SPOOFED)
    # one visitor, whatever the X-Forwarded-For of a tab claims before the proxy's entry
    assert 1 <= len(h["tabs"]["accepted"]) <= SHARE  # a tab may take two (softmax and toy)
    assert h["tabs"]["refused"] >= tabs - SHARE
    assert h["refused_by_reason"].get("visitor share", 0) >= tabs - SHARE
    # what the Runs page showed going at once, tabs and pages that submit on opening together
    assert 1 <= h["max_hostile_active"] <= SHARE, h
    assert h["max_active_jobs"] < QUEUE
    assert "queue full" not in h["refused_by_reason"]


def test_no_crafted_link_breaks_a_page_or_is_echoed(report):
    h = report["hostile"]
    assert h["exceptions"] == [], report["server_exceptions"]
    assert h["long_messages"] == [] and h["echoes"] == []
    assert h["unanswered"] == []  # each crafted field a page reads is named when refused
    for name in ("c_lo", "c_hi", "n", "iters", "losses", "beta", "train.epochs", "data.split"):
        assert h["link_fields_refused"].get(name), name


def test_nothing_over_a_cap_is_queued_or_stored(report):
    h = report["hostile"]
    assert h["over_caps"]["accepted"] == []
    assert sum(h["over_caps"]["refused"].values()) == len(hostile_visitor.OVER_CAPS)
    assert set(h["over_caps"]["refused"]) <= {"cap: compute", "cap: steps", "cap: memory"}
    assert report["results_over_caps"] == []


def test_no_cancel_shows_on_another_visitors_job(report):
    cancel = report["hostile"]["cancel"]
    assert cancel["others_jobs_seen_running"] >= 1  # the probe saw their jobs going
    assert cancel["cancel_buttons_on_others"] == 0
    # … and pressing what it was offered stopped none (an ordinary session would say so)
    assert not any(e.startswith("cancelled") for e in report["errors"])
    assert cancel["own_jobs_cancelled"] >= 1  # the owner's Cancel works


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_twenty_sessions_over_five_configs_start_five_runs_and_all_are_served(tmp_path):
    report = load_sessions.drive(tmp_path, sessions=20, n_configs=5)
    print(report)
    assert report["errors"] == []
    assert report["tracebacks_in_server_log"] == 0
    assert report["served"] == 20
    # Five configs, five runs: sessions asking for a config that is running share its job.
    assert report["counters"]["started"] == 5
    assert report["counters"]["refused"] == 0
    assert report["results_in_store"] == 5
    assert report["memory_mb"]["peak"] < 3000
