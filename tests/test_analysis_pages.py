"""The Tunnel and Representations pages through AppTest: both open, the tunnel page shows a
stored experiment's own numbers after Run, and a recorded continual run gives drift views."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config
from streamlit.testing.v1 import AppTest

from app import share
from engine.analysis import experiments as ex
from engine.analysis import tunnel
from engine.analysis.cka import cka_matrix
from engine.analysis.recorded import recordings
from engine.runner import prepare
from engine.store import Store

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
# the pages' folder beside main.py (app/views; app/pages before the move)
FOLDER = "views"
TIMEOUT = 60


def open_page(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = str(v)
    at.run()
    at.switch_page(f"{FOLDER}/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tiny_tunnel() -> dict:
    raw = tunnel.Spec().model_dump(mode="json")
    raw["model"].update(depth=3, width=16)
    raw["train"]["epochs"] = 2
    raw.update(probe_epochs=2, ood="none")
    return raw


def titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


@pytest.mark.parametrize("page", ["tunnel", "representations"])
def test_page_opens_without_results(page):
    at = open_page(page)
    assert at.title[0].value in ("Tunnel", "Representations")
    assert not at.error and not at.get("plotly_chart")


def test_tunnel_page_shows_the_stored_result_after_run():
    raw = tiny_tunnel()
    res = ex.run_experiment("tunnel", raw)
    at = open_page("tunnel")
    at.number_input(key="tn:depth").set_value(3)
    at.number_input(key="tn:width").set_value(16)
    at.number_input(key="tn:epochs").set_value(2)
    at.number_input(key="tn:probe_epochs").set_value(2)
    at.selectbox(key="tn:ood").set_value("none")
    at.button(key="tn:run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["κ (compression)"] == f"{res['kappa']:.3f}"
    assert metrics["ρ (OOD loss)"] == "–"  # no OOD set chosen
    assert metrics["tunnel start (95 %)"] == f"layer {res['tunnel_start']['0.95']['layer']}"
    assert metrics["test accuracy"] == f"{res['model_acc']:.3f}"
    assert "Rank and probe accuracy by layer" in titles(at)
    spec = next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if "CKA layer" in json.loads(c.proto.spec)["layout"]["title"]["text"]
    )
    assert np.allclose(spec["data"][0]["z"], res["cka"])
    assert any(res["key"] in c.value for c in at.caption)
    # the Representations page reuses this tunnel model's CKA
    at.switch_page(f"{FOLDER}/representations.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "CKA layer × layer (tunnel model)" in titles(at)


def test_representations_drift_of_a_recorded_run():
    raw = tiny_config(data__n_tasks=2)
    at = open_page("representations", share.config_to_query(raw))
    at.number_input(key="rep:n").set_value(64)
    at.button(key="rep:run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    _, key = prepare(raw)
    recs = recordings(Store(), key)
    assert len(recs) == 2 and recs[0]["requested"] == 64
    shown = titles(at)
    assert "Rank by layer after each task" in shown
    assert any(t.startswith("Drift of layer") for t in shown)
    ab = next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if json.loads(c.proto.spec)["layout"]["title"]["text"].startswith("CKA: after task 1")
    )
    assert np.allclose(ab["data"][0]["z"], cka_matrix(recs[0]["acts"], recs[-1]["acts"]))
