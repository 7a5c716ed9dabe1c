"""Load: 20 concurrent sessions on loopback asking the hosted app for 5 distinct configs.

The drive lives in bench/load_sessions.py (it also prints the numbers for the notes): a real
``streamlit run app/main.py`` in hosted mode, 20 websocket sessions speaking Streamlit's own
protocol, each opening the Forgetting page on one of 5 links, pressing Run and watching until
the page says Done. About 25 s on an idle 2-core machine.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("load_sessions", ROOT / "bench/load_sessions.py")
load_sessions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load_sessions)


@pytest.mark.timeout(600)
def test_twenty_sessions_over_five_configs_start_five_runs_and_all_are_served(tmp_path):
    report = load_sessions.drive(tmp_path, sessions=20, n_configs=5)
    print(report)  # the figures for the notes (pytest -s shows them)
    assert report["errors"] == []
    assert report["tracebacks_in_server_log"] == 0
    assert report["served"] == 20
    # Five configs, five runs: sessions asking for a config that is running share its job.
    assert report["counters"]["started"] == 5
    assert report["counters"]["refused"] == 0
    assert report["results_in_store"] == 5
    # Memory stays bounded: one run process at a time beside the app (PSS of the whole tree).
    assert report["memory_mb"]["peak"] < 3000
