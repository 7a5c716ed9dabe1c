"""The Streamlit app through streamlit.testing.v1.AppTest: every page opens, widgets drive the
config and the link, Run shows exactly the engine's numbers, bad links get one clear error, and
two sessions asking for one config share one run."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from conftest import tiny_config
from streamlit.testing.v1 import AppTest

from app import share
from engine.config import field_info
from engine.jobs import get_manager
from engine.metrics import summarize
from engine.runner import prepare

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
PAGES = Path(MAIN).parent / "views"
TIMEOUT = 60


def open_app(query: dict | None = None, page: str | None = None) -> AppTest:
    """A session opened on a link: the query string, then (AppTest starts on the default page)
    the page, with the query string as the link gives it."""
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = str(v)
    at.run()
    if page is not None:
        at.query_params.clear()
        for k, v in (query or {}).items():
            at.query_params[k] = str(v)
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tiny_query(**overrides) -> dict:
    return share.config_to_query(tiny_config(**overrides))


def plotly_specs(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def heatmap_cells(at: AppTest) -> list[list[float]]:
    """R as the page's SVG heatmap shows it (each cell carries data-t, data-i, data-value)."""
    body = next(md.value for md in at.markdown if 'class="r-heatmap"' in md.value)
    cells = re.findall(r'data-t="(\d+)" data-i="(\d+)" data-value="([0-9.]+)"', body)
    rows: dict[int, list[float]] = {}
    for t, _i, v in cells:
        rows.setdefault(int(t), []).append(float(v))
    return [rows[t] for t in sorted(rows)]


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def run_button(at: AppTest):
    return next(b for b in at.button if b.label == "Run")


@pytest.mark.parametrize("page", [p.stem for p in sorted(PAGES.glob("*.py"))])
def test_every_page_opens(page):
    at = open_app(tiny_query(), page)
    assert at.title, f"{page} shows a title"
    assert not at.error, [e.value for e in at.error]


def test_widgets_follow_the_config_models():
    at = open_app()
    sb = at.sidebar
    assert sb.number_input(key="cfg:train.epochs@split-digits").value == 10  # preset shown
    sb.selectbox(key="cfg:data.benchmark").set_value("split-mnist5k").run()
    assert at.sidebar.number_input(key="cfg:train.epochs@split-mnist5k").value == 10
    assert at.sidebar.number_input(key="cfg:train.batch_size@split-mnist5k").value == 64
    at.sidebar.selectbox(key="cfg:strategy.name").set_value("ewc").run()
    lam = at.sidebar.number_input(key="cfg:strategy.ewc.lam")
    info = field_info("strategy.ewc.lam")  # widget default, bounds and tooltip = the field's
    assert (lam.value, lam.min, lam.max, lam.help) == (
        info["default"],
        info["ge"],
        info["le"],
        info["description"],
    )
    lam.set_value(100.0).run()
    at.sidebar.number_input(key="cfg:train.epochs@split-mnist5k").set_value(3).run()
    assert not at.exception
    assert dict(at.query_params) == {
        "benchmark": "split-mnist5k", "strategy": "ewc", "lam": "100", "epochs": "3"
    }  # fmt: skip


def test_a_link_restores_the_same_config():
    raw = tiny_config(strategy={"name": "l2", "lam": 5.0}, train__seed=3)
    url = share.link_for("forgetting", raw)
    assert url.startswith("/forgetting?")
    query = dict(parse_qsl(urlsplit(url).query))
    at = open_app(query)
    _, key = prepare(raw)
    assert any(key in c.value for c in at.caption), "the page shows the same config key"
    assert at.sidebar.number_input(key="cfg:strategy.l2.lam").value == 5.0
    assert share.query_to_config(query)["strategy"] == {"name": "l2", "lam": 5.0}


def test_bad_link_shows_one_error_naming_the_field():
    at = open_app({"epochs": "-3"})
    assert len(at.error) == 1
    assert "train.epochs" in at.error[0].value and "greater than or equal to 1" in at.error[0].value
    at = open_app({"lamda": "3"})
    assert len(at.error) == 1 and "'lamda'" in at.error[0].value


def test_run_shows_the_engines_numbers():
    at = open_app(tiny_query())
    run_button(at).click().run()
    assert not at.exception
    key = prepare(tiny_config())[1]
    m = get_manager()
    assert m.get(key) is not None
    m.wait(key, TIMEOUT)
    at.run()
    assert not at.exception
    result = m.store.get_result(key)
    assert any(s.value.startswith("Done: 5 of 5 tasks") for s in at.success)
    shown_R = heatmap_cells(at)
    assert [len(r) for r in shown_R] == [len(r) for r in result["R"]]
    flat = [v for r in result["R"] for v in r]
    assert [v for r in shown_R for v in r] == pytest.approx(flat, abs=1e-6)
    expected = summarize(result["R"], result["baseline"])
    shown = metric_values(at)
    for label, name in (
        ("ACC", "acc"),
        ("BWT", "bwt"),
        ("FWT", "fwt"),
        ("Forgetting", "forgetting"),
    ):
        assert shown[label] == f"{expected[name]:.3f}"
    # The stored result opens at once in a new session: no Run button, same numbers.
    again = open_app(tiny_query())
    assert not [b for b in again.button if b.label == "Run"]
    assert heatmap_cells(again) == shown_R


def test_cancel_button_stops_the_run_and_run_resumes(monkeypatch):
    m = get_manager()
    release, original = threading.Event(), m._on_event

    def held(job, event):  # keep the run at its start until the Cancel click has been made
        if event["type"] == "start":
            release.wait(TIMEOUT)
        original(job, event)

    monkeypatch.setattr(m, "_on_event", held)
    at = open_app(tiny_query())
    run_button(at).click().run()
    next(b for b in at.button if b.label == "Cancel").click().run()
    release.set()
    key = prepare(tiny_config())[1]
    assert m.wait(key, TIMEOUT)["state"] == "cancelled"
    at.run()
    assert any(i.value.startswith("Cancelled: cancelled after") for i in at.info)
    assert run_button(at) is not None and not m.store.has_result(key)


def test_two_sessions_asking_for_one_config_make_one_run():
    a, b = open_app(tiny_query()), open_app(tiny_query())
    run_button(a).click().run()
    run_button(b).click().run()  # b's Run was drawn before a's run existed
    assert not b.exception
    m = get_manager()
    key = prepare(tiny_config())[1]
    assert len(m.jobs()) == 1
    assert m.wait(key, TIMEOUT)["state"] == "done"
    assert [r["key"] for r in m.store.list_results()] == [key]
    for at in (a, b):
        at.run()
        assert any(s.value.startswith("Done: 5 of 5 tasks") for s in at.success)


def test_compare_runs_several_strategies():
    q = {**tiny_query(), "v_strategies": "naive,joint"}
    at = open_app(q, "compare")
    button = next(b for b in at.button if b.label.startswith("Run 2 missing"))
    button.click().run()
    m = get_manager()
    keys = [prepare(tiny_config(strategy={"name": s}))[1] for s in ("naive", "joint")]
    for k in keys:
        m.wait(k, TIMEOUT)
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["run"]) == ["naive", "joint"]
    for row, k in zip(table.to_dict("records"), keys, strict=True):
        r = m.store.get_result(k)
        expected = summarize(r["R"], r["baseline"])
        assert row["ACC"] == f"{expected['acc']:.3f}"
        if row["run"] == "naive":
            assert row["BWT"] == f"{expected['bwt']:.3f}"
        else:  # joint: every row of R is the final model, BWT means nothing
            assert row["BWT"] == row["FWT"] == row["forgetting"] == "—"
    titles = [s["layout"]["title"]["text"] for s in plotly_specs(at)]
    assert "Stability versus plasticity" in titles
    heatmaps = [md.value for md in at.markdown if 'class="r-heatmap"' in md.value]
    assert len(heatmaps) == 2 and "<title>naive</title>" in heatmaps[0]


def test_compare_sweeps_one_setting():
    q = {**tiny_query(), "v_mode": "sweep", "v_field": "train.epochs", "v_values": "1,2"}
    at = open_app(q, "compare")
    next(b for b in at.button if b.label.startswith("Run 2 missing")).click().run()
    m = get_manager()
    keys = [prepare(tiny_config(train__epochs=e))[1] for e in (1, 2)]
    for k in keys:
        m.wait(k, TIMEOUT)
    at.run()
    table = at.dataframe[0].value
    assert list(table["run"]) == ["epochs=1", "epochs=2"] and list(table["key"]) == keys
    assert list(table["state"]) == ["done", "done"]


def test_runs_page_lists_and_deletes_after_a_confirmation():
    assert get_manager().submit(tiny_config()).wait(TIMEOUT)
    at = open_app(page="runs")
    table = at.dataframe[0].value
    key = prepare(tiny_config())[1]
    assert list(table["key"]) == [key]
    next(b for b in at.button if b.label == "Delete…").click().run()
    assert get_manager().store.has_result(key), "one click deletes nothing"
    assert any(w.value.startswith("Delete run · naive") for w in at.warning)
    next(b for b in at.button if b.label == "Yes, delete").click().run()
    assert not at.exception
    assert get_manager().store.list_results() == []
    assert any(s.value.startswith("Deleted run · naive") for s in at.success)
    assert any("store is empty" in i.value for i in at.info)


def test_hosted_mode_refuses_links_over_a_cap(monkeypatch):
    monkeypatch.setenv("FORGET_HOSTED", "1")
    at = open_app({"epochs": "1000"})
    assert len(at.error) == 1 and "epochs=1000 is over a hosted cap" in at.error[0].value
    assert "split-mnist" not in at.sidebar.selectbox(key="cfg:data.benchmark").options
