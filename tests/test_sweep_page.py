"""The Compare page's sweep view: a sweep file's results from the store as a table and
metric-versus-setting curves with error bars over seeds, the missing configs run from the
page, and no file-system paths from visitors of a hosted demo."""

from __future__ import annotations

import statistics

import pytest
import yaml
from conftest import tiny_config
from test_app import TIMEOUT, open_app, plotly_specs

from engine.config import ConfigError
from engine.jobs import get_manager
from engine.sweep import collect, expand, run_sweep


def _spec(**grid) -> dict:
    base = tiny_config(train__epochs=1, strategy={"name": "ewc"})
    return {"name": "tiny-ewc", "base": base, "grid": grid}


def _write(tmp_path, spec: dict):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _file_view(**view) -> dict:
    return {"v_mode": "file", **{f"v_{k}": str(v) for k, v in view.items()}}


def test_a_stored_sweep_shows_its_table_and_lambda_curves(tmp_path):
    spec = _spec(**{"strategy.lam": [1, 1000], "seed": [0, 1]})
    out = run_sweep(spec, n_jobs=1)
    assert out.counts()["done"] == 4
    at = open_app(_file_view(source="path", path=_write(tmp_path, spec)), "compare")
    assert not at.error, [e.value for e in at.error]
    assert any("4 configs · 4 in the store" in md.value for md in at.markdown)
    table = at.dataframe[0].value  # as shown: numbers formatted, "—" for none
    assert list(table["strategy.lam"]) == ["1", "1000"] and list(table["seeds"]) == ["2", "2"]
    for lam, row in zip((1.0, 1000.0), table.to_dict("records"), strict=True):
        accs = [e.metrics["acc"] for e in out.entries if e.config["strategy"]["lam"] == lam]
        assert row["ACC"] == f"{statistics.fmean(accs):.3f}"
        assert row["ACC std"] == f"{statistics.stdev(accs):.3f}"
    fig = next(s for s in plotly_specs(at) if "versus strategy.lam" in s["layout"]["title"]["text"])
    acc_trace = fig["data"][0]
    assert acc_trace["x"] == [1.0, 1000.0]
    assert acc_trace["y"] == pytest.approx([float(v) for v in table["ACC"]], abs=5e-4)
    assert acc_trace["error_y"]["array"] == pytest.approx(
        [float(v) for v in table["ACC std"]], abs=5e-4
    )
    assert fig["layout"]["xaxis"]["type"] == "log"  # three decades of λ
    every = at.dataframe[1].value
    assert sorted(every["key"]) == sorted(e.key for e in out.entries)
    assert at.query_params["v_mode"] == "file" and at.query_params["v_source"] == "path"


def test_missing_configs_run_from_the_page_and_fill_the_table(tmp_path):
    spec = _spec(seed=[0, 1])
    at = open_app(_file_view(source="path", path=_write(tmp_path, spec)), "compare")
    assert any("2 configs · 0 in the store" in md.value for md in at.markdown)
    next(b for b in at.button if b.label == "Run 2 missing").click().run()
    m = get_manager()
    for e in collect(spec).entries:
        m.wait(e.key, TIMEOUT)
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["seeds"]) == ["2"]  # nothing varies but the seed: one row, two seeds


def test_shipped_sweeps_are_offered_and_big_ones_point_to_the_cli():
    at = open_app(_file_view(source="shipped", spec="strategies-table"), "compare")
    assert set(at.selectbox(key="cmp:spec").options) >= {
        "examples/sweeps/ewc-lambda.yaml",
        "examples/sweeps/strategies-table.yaml",
    }
    assert any("288 configs · 0 in the store" in md.value for md in at.markdown)
    assert any(
        "python -m engine sweep examples/sweeps/strategies-table.yaml" in i.value for i in at.info
    )
    at.selectbox(key="cmp:spec").set_value("ewc-lambda").run()
    assert any(b.label == "Run 45 missing" for b in at.button)  # fits this server's queue


def test_a_bad_sweep_file_gets_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("grid: {lr: [0.1, 99]}\nbase: {data: {benchmark: split-digits}}\n")
    at = open_app(_file_view(source="path", path=path), "compare")
    assert len(at.error) == 1 and "lr" in at.error[0].value and "99" in at.error[0].value
    at = open_app(_file_view(source="path", path=tmp_path / "none.yaml"), "compare")
    assert len(at.error) == 1 and at.error[0].value.startswith("sweep: cannot read")


def test_hosted_demo_takes_no_paths_and_runs_no_sweeps(monkeypatch, tmp_path):
    monkeypatch.setenv("FORGET_HOSTED", "1")
    spec = _spec(seed=[0])
    # A crafted link asking for a path gets the shipped sweeps instead: no path is read.
    at = open_app(_file_view(source="path", path=_write(tmp_path, spec)), "compare")
    assert "path" not in at.radio(key="cmp:source").options
    assert at.radio(key="cmp:source").value == "shipped"
    assert not any(b.label.startswith("Run") for b in at.button)
    assert any("computed offline" in i.value for i in at.info)


def test_a_spec_too_big_for_the_page_is_refused_before_expanding():
    spec = {"base": tiny_config(), "grid": {"seed": list(range(100)), "lr": [0.1] * 30}}
    with pytest.raises(ConfigError, match=r"^sweep: grid × list makes 3,000 configs, more than"):
        expand(spec, max_configs=2000)
