"""The Reproduce page: an entry's published numbers beside what the store holds (mean ± std over
seeds, difference, ordering agreement), its missing configs run as jobs, hosted limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import reproduce
from engine.jobs import get_manager
from engine.reproduce.base import TINY_ENV
from engine.store import Store

PAGE = str(Path(__file__).resolve().parents[1] / "app" / "views" / "reproduce.py")
TIMEOUT = 120


def open_page(**view) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    for k, v in view.items():
        at.query_params[f"v_{k}"] = str(v)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def store_fake_results(name: str, acc_of) -> list:
    """Put a finished result with ACC = acc_of(config) under every config key of the entry."""
    results = reproduce.collect(reproduce.entry(name))
    store = Store()
    for e in results[0].entries:
        result = {"key": e.key, "kind": e.kind, "status": "done", "config": e.config}
        store.put_result(e.key, {**result, "metrics": {"acc": acc_of(e.config)}})
    return results


def plotly_specs(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


BLOG_ACC = {"joint": 0.96, "replay": 0.93, "low-lr": 0.70, "naive": 0.62, "model-avg": 0.64}


def test_stored_results_show_beside_the_published_ones():
    seed_bump = {0: 0.0, 1: 0.01, 2: 0.02}
    store_fake_results(
        "blog-strategies",
        lambda c: BLOG_ACC.get(c["strategy"]["name"], 0.5) + seed_bump[c["train"]["seed"]],
    )
    at = open_page(entry="blog-strategies")
    assert any("21 configs · 21 in the store · 0 running" in md.value for md in at.markdown)
    assert not [b for b in at.button if b.label.startswith("Run ")]  # nothing missing
    table = at.dataframe[0].value.set_index("item")
    # mean over seeds of (acc + 0, +0.01, +0.02) in percent: acc·100 + 1, std 1
    assert table.loc["joint", "measured"] == pytest.approx(97.0)
    assert table.loc["joint", "measured std"] == pytest.approx(1.0)
    assert table.loc["joint", "published rank"] == 1 and table.loc["model-avg", "seeds"] == 3
    agreement = at.dataframe[1].value
    # ranks 1…5 against measured 97, 94, 71, 63, 65: one swap (naive/model-avg) → ρ = 0.9
    assert agreement.loc[0, "Spearman ρ"] == pytest.approx(0.9)
    assert agreement.loc[0, "ordering"] == "agrees"
    fig = next(
        s for s in plotly_specs(at) if "Published against measured" in s["layout"]["title"]["text"]
    )
    measured = next(t for t in fig["data"] if t["name"].startswith("measured"))
    assert measured["x"][:2] == ["joint", "replay"]
    assert measured["y"][0] == pytest.approx(97.0) and measured["error_y"]["array"][
        0
    ] == pytest.approx(1.0)
    assert at.query_params["v_entry"] == "blog-strategies"


def test_van_de_ven_table_shows_published_and_missing_numbers():
    store_fake_results("vandeven-2018", lambda c: 0.5)
    at = open_page(entry="vandeven-2018")
    table = at.dataframe[0].value
    row = table[(table["group"] == "class") & (table["item"] == "lwf")].iloc[0]
    assert row["published"] == 24.17 and row["published ±"] == 0.51
    assert row["measured"] == pytest.approx(50.0) and row["difference"] == pytest.approx(
        50.0 - 24.17
    )
    replay = table[(table["group"] == "task") & (table["item"] == "replay")].iloc[0]
    assert replay["published"] != replay["published"]  # NaN: the source has no number
    assert "the measured values tie" in set(at.dataframe[1].value["ordering"])
    assert any("Where this run differs" in e.label for e in at.expander)


def test_missing_configs_run_from_the_page(monkeypatch):
    monkeypatch.setenv(TINY_ENV, "1")
    at = open_page(entry="thesis-tunnel")
    assert any("1 configs · 0 in the store" in md.value for md in at.markdown)
    next(b for b in at.button if b.label == "Run 1 missing").click().run()
    (e,) = reproduce.collect(reproduce.entry("thesis-tunnel"))[0].entries
    get_manager().wait(e.key, TIMEOUT)
    at.run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("item")
    stored = Store().get_result(e.key)
    assert table.loc["95 %", "measured"] == stored["metrics"]["tunnel_start_95"]
    assert table.loc["rank", "measured"] == stored["metrics"]["last_rank"]


def test_a_bad_link_is_named_and_hosted_visitors_get_the_command(monkeypatch):
    at = open_page(entry="nope")
    assert any("v_entry" in w.value and "allowed: vandeven-2019" in w.value for w in at.warning)
    monkeypatch.setenv("FORGET_HOSTED", "1")
    at = open_page(entry="vandeven-2019")
    assert not [b for b in at.button if b.label.startswith("Run ")]
    assert any("python -m engine reproduce vandeven-2019" in i.value for i in at.info)
