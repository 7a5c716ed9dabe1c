"""The Tunnel and Representations pages through AppTest: both open, a link reopens a stored
tunnel experiment with its own numbers, Run goes through the job manager (no page computes),
bad link values are refused by field, and a recorded continual run gives drift views."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config
from streamlit.testing.v1 import AppTest

from app import headline, share
from engine import kinds
from engine.analysis.cka import cka_matrix
from engine.analysis.recorded import recordings
from engine.executor import execute
from engine.kinds import tunnel
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
    at.switch_page(f"{FOLDER}/{page}.py")
    for k, v in (query or {}).items():  # a link to the page carries them (switching drops them)
        at.query_params[k] = str(v)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tiny_tunnel() -> dict:
    raw = tunnel.Spec().model_dump(mode="json")
    raw["model"].update(depth=3, width=16)
    raw["train"]["epochs"] = 2
    raw.update(probe_epochs=2, ood="none")
    return raw


def headline_values(at: AppTest) -> dict[str, str]:
    """The page's headline numbers (app.headline), label → value as shown."""
    return dict(p for m in at.markdown if (p := headline.parse(m.value)))


def titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


@pytest.mark.parametrize("page", ["tunnel", "representations"])
def test_page_opens_without_results(page):
    at = open_page(page)
    assert at.title[0].value in ("Tunnel", "Representations")
    assert not at.error and not at.get("plotly_chart")


TINY_LINK = {"v_depth": 3, "v_width": 16, "v_epochs": 2, "v_probe_epochs": 2, "v_ood": "none"}


def test_a_link_reopens_the_stored_tunnel_result():
    raw = tiny_tunnel()
    res = execute("tunnel", raw)
    at = open_page("tunnel", TINY_LINK)
    metrics = headline_values(at)
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


def test_run_goes_through_the_job_manager_and_the_page_draws_what_comes_back(monkeypatch):
    monkeypatch.setenv("FORGET_JOB_PROCESSES", "0")  # the job in a thread of this process
    at = open_page("tunnel", TINY_LINK)
    _, key = kinds.prepare("tunnel", tiny_tunnel())
    assert not headline_values(at)  # nothing stored yet: a Run button, no numbers
    at.button(key=f"tn:run:{key}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    from app.live import manager

    manager().wait(key, timeout=TIMEOUT)
    at.run()
    assert set(headline_values(at)) >= {"κ (compression)", "tunnel start (95 %)"}
    assert Store().get_result(key)["kind"] == "tunnel"


@pytest.mark.parametrize(
    ("param", "value", "field"),
    [
        ("v_depth", "100000", "model.depth"),
        ("v_width", "-3", "model.width"),
        ("v_epochs", "true", "train.epochs"),
        ("v_ood", "x" * 5000, "ood"),
    ],
)
def test_a_bad_link_value_is_refused_by_field_and_the_rest_kept(param, value, field):
    at = open_page("tunnel", {**TINY_LINK, param: value})
    warnings = [w.value for w in at.warning]
    assert any(field in w for w in warnings), warnings
    assert all(len(w) < 400 for w in warnings)  # a long value is echoed cut
    kept = {k: v for k, v in TINY_LINK.items() if k != param}
    if "v_width" in kept:
        assert at.number_input(key="tn:width").value == 16


def test_representations_drift_of_a_recorded_run(monkeypatch):
    monkeypatch.setenv("FORGET_JOB_PROCESSES", "0")
    raw = tiny_config(data__n_tasks=2)
    at = open_page("representations", {**share.config_to_query(raw), "v_n": 64})
    _, key = kinds.prepare("record", {**raw, "n": 64})
    at.button(key=f"rep:run:{key}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    from app.live import manager

    manager().wait(key, timeout=TIMEOUT)
    at.run()
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


@pytest.mark.parametrize(
    ("page", "tab"),
    [
        ("representations", "Representation forgetting (3 models)"),
        ("softmax", "Deep-linear toy"),
    ],
)
def test_a_link_opens_a_tab_and_keeps_its_settings(page, tab):
    """The tab is in the link (bound to the tabs widget); writing the page's other settings
    into the URL must not touch it (Streamlit refuses to set a bound parameter)."""
    at = open_page(page, {"v_tab": tab, "benchmark": "split-digits", "epochs": 3})
    assert at.query_params["v_tab"] == tab
    assert at.query_params["epochs"] == "3"
