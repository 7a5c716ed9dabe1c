"""`python -m engine analyze …` and `python -m engine softmax-rank …` (in-process, via engine.cli.main)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tiny_config

from engine.analysis.softmax import softmax_rank_curve
from engine.cli import main

TINY_TUNNEL = [
    "--set",
    "depth=2",
    "--set",
    "width=32",
    "--epochs",
    "2",
    "--device",
    "cpu",
    "--set",
    "probe_epochs=5",
    "--set",
    "n_eval=200",
    "--set",
    "ood=none",
    "--quiet",
]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_analyze_tunnel_writes_the_result_json(tmp_path, capsys):
    path = tmp_path / "tunnel.json"
    assert main(["analyze", "tunnel", *TINY_TUNNEL, "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "tunnel start" in out and "rank" in out
    doc = json.loads(path.read_text())
    assert doc["kind"] == "tunnel" and doc["status"] == "done" and not doc["cached"]
    assert (
        doc["layers"] == ["fc1", "fc2"]
        and len(doc["rank"]) == 2
        and len(doc["probe"]["test_acc"]) == 2
    )
    assert doc["config"]["model"]["depth"] == 2 and doc["config"]["train"]["epochs"] == 2
    assert set(doc["metrics"]) >= {"acc", "tunnel_start_95", "tunnel_start_98", "kappa", "rho"}
    # The same command again is served from the store; the rank view reads the same run.
    path2 = tmp_path / "rank.json"
    assert main(["analyze", "rank", *TINY_TUNNEL, "--json", str(path2)]) == 0
    view = json.loads(path2.read_text())
    assert view["cached"] and view["key"] == doc["key"] and view["rank"] == doc["rank"]


@pytest.mark.parametrize(
    "argv, field",
    [
        (["analyze", "tunnel", "--set", "ratio=0.5"], "ratio"),
        (["analyze", "erosion", "--set", "ratio=2"], "ratio"),
        (["analyze", "tunnel", "--set", "depth=0"], "model.depth"),
        (["analyze", "tunnel", "--set", "novalue"], "--set"),
        (["analyze", "temperature", "--set", "temperatures=1,-5"], "temperatures"),
        (["analyze", "tunnel", "--key", "abc"], "--key"),
        (["analyze", "rank", "--key", "abc"], "--key"),
    ],
)
def test_analyze_bad_input_exits_2_with_one_line(argv, field, capsys):
    assert main(argv) == 2
    assert field in _one_line_error(capsys)


def test_analyze_unknown_kind_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "everything"])
    assert exc.value.code == 2
    assert "invalid choice" in _one_line_error(capsys)


def test_analyze_views_read_a_stored_runs_recordings(tmp_path, capsys):
    from engine.executor import execute

    result = execute("record", {**tiny_config(model__depth=2), "n": 40, "probe_epochs": 2})
    key = result["key"]
    path = tmp_path / "cka.json"
    assert main(["analyze", "cka", "--key", key, "--json", str(path), "--quiet"]) == 0
    doc = json.loads(path.read_text())
    assert doc["source"] == "recordings" and doc["tasks"] == 5
    assert np.asarray(doc["drift"]).shape == (2, 5, 5) and np.asarray(
        doc["layer_by_layer"]
    ).shape == (2, 2)
    assert main(["analyze", "rank", "--key", key, "--quiet"]) == 0
    assert "after task 5" in capsys.readouterr().out


def test_analyze_run_records_a_continual_run_then_views_it(tmp_path):
    path = tmp_path / "probes.json"
    argv = [
        "analyze",
        "probes",
        "--run",
        "--record",
        "40",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--set",
        "depth=1",
        "--set",
        "width=16",
        "--set",
        "n_tasks=2",
        "--quiet",
        "--json",
        str(path),
    ]
    assert main(argv) == 0
    doc = json.loads(path.read_text())
    assert doc["tasks"] == 2 and doc["n_fit"] == 20 and len(doc["test_acc"][0]) == 1


def test_softmax_rank_json_equals_the_library_curve(tmp_path, capsys):
    path = tmp_path / "curve.json"
    assert main(["softmax-rank", "--n", "8", "--seed", "3", "--json", str(path)]) == 0
    assert json.loads(path.read_text()) == json.loads(json.dumps(softmax_rank_curve(n=8, seed=3)))
    out = capsys.readouterr().out
    assert "peak rank" in out and len(out.splitlines()) == 2 + 57
    # A custom grid is the log-spaced grid the flags describe.
    assert (
        main(
            [
                "softmax-rank",
                "--n",
                "6",
                "--c-min",
                "0.1",
                "--c-max",
                "1000",
                "--points",
                "5",
                "--json",
                str(path),
            ]
        )
        == 0
    )
    doc = json.loads(path.read_text())
    expected = softmax_rank_curve(n=6, c_values=np.logspace(-1, 3, 5).tolist(), seed=0)
    assert doc == json.loads(json.dumps(expected))
    assert doc["c"] == pytest.approx([0.1, 1.0, 10.0, 100.0, 1000.0])


def test_softmax_rank_reads_a_matrix_file(tmp_path):
    m = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    src, path = tmp_path / "m.csv", tmp_path / "out.json"
    src.write_text("1,-2,0.5\n0,3,-1\n")
    assert main(["softmax-rank", "--matrix", str(src), "--points", "3", "--json", str(path)]) == 0
    doc = json.loads(path.read_text())
    grid = np.logspace(-5, 9, 3).tolist()
    assert doc == json.loads(json.dumps(softmax_rank_curve(c_values=grid, matrix=m)))


@pytest.mark.parametrize(
    "argv, field",
    [
        (["softmax-rank", "--n", "1"], "--n: must be"),
        (["softmax-rank", "--c-min", "0"], "--c-min"),
        (["softmax-rank", "--c-min", "10", "--c-max", "1"], "--c-max"),
        (["softmax-rank", "--points", "0"], "--points"),
        (["softmax-rank", "--rel-tol", "2"], "rel_tol"),
        (["softmax-rank", "--matrix", "/no/such/file.csv"], "--matrix"),
    ],
)
def test_softmax_rank_bad_input_exits_2(argv, field, capsys):
    assert main(argv) == 2
    assert field in _one_line_error(capsys)
