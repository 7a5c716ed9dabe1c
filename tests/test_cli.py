"""`python -m engine` as a user runs it: the JSON contract, caching, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--set",
    "depth=1",
    "--set",
    "width=32",
    "--set",
    "batch_size=64",
    "--set",
    "lr=0.005",
    "--epochs",
    "2",
]


def cli(*args, cache=None, timeout=180, **env_extra):
    """The real command in a fresh process, as a user types it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_extra}
    if cache:
        env["FORGET_CACHE_DIR"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def test_run_writes_the_json_contract_then_hits_the_cache(tmp_path):
    out = tmp_path / "r.json"
    args = [
        "run",
        "--benchmark",
        "split-digits",
        "--scenario",
        "class",
        "--strategy",
        "naive",
        "--seed",
        "0",
        *TINY,
    ]
    first = cli(*args, "--json", str(out), cache=tmp_path / "c")
    assert first.returncode == 0, first.stderr
    doc = json.loads(out.read_text())
    assert set(doc) >= {"key", "config", "R", "baseline", "metrics", "timing", "cached"}
    assert set(doc["metrics"]) >= {"acc", "learning_acc", "bwt", "fwt", "forgetting"}
    assert set(doc["timing"]) >= {"total_s", "train_s", "eval_s"}
    assert len(doc["R"]) == 5 and all(len(r) == 5 for r in doc["R"]) and len(doc["baseline"]) == 5
    assert doc["cached"] is False and doc["config"]["train"]["epochs"] == 2
    assert "R[t,i]" in first.stdout and "ACC" in first.stdout
    second = cli(*args, "--json", str(out), cache=tmp_path / "c")
    again = json.loads(out.read_text())
    assert second.returncode == 0 and again["cached"] is True
    assert again["R"] == doc["R"] and again["key"] == doc["key"]


@pytest.mark.parametrize(
    "args, field",
    [
        (["--benchmark", "imagenet"], "--benchmark"),
        (["--strategy", "magic"], "--strategy"),
        (["--scenario", "x"], "--scenario"),
        (["--set", "lr=-1"], "train.lr"),
        (["--set", "epochs=100000"], "train.epochs"),
        (["--set", "lr"], "name=value"),
        (["--set", "nonsense=1"], "nonsense"),
        (["--epochs", "zero"], "--epochs"),
        (["--set", "split=4,4,4"], "data.split"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, args, field):
    try:
        code = main(["run", *args])
    except SystemExit as stop:  # argparse's own refusals
        code = stop.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and field in lines[0], err
    from engine.store import Store

    assert Store().info()["entries"] == 0  # nothing reached the store


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path):
    r = cli("run", "--set", "lam=-1", cache=tmp_path / "c")
    assert (
        r.returncode == 2
        and "Traceback" not in r.stderr
        and len(r.stderr.strip().splitlines()) == 1
    )


def test_missing_torchvision_data_is_one_clear_line(tmp_path):
    r = cli(
        "run",
        "--benchmark",
        "split-mnist",
        "--epochs",
        "1",
        cache=tmp_path / "c",
        FORGET_DATA_DIR=str(tmp_path / "nodata"),
        http_proxy="http://127.0.0.1:9",
        https_proxy="http://127.0.0.1:9",
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "train-images-idx3-ubyte" in r.stderr and str(tmp_path / "nodata") in r.stderr


def test_cache_info_and_clear(capsys, tmp_path):
    assert main(["run", *TINY, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["cache", "info", "--json", "-"]) == 0
    assert '"results": 1' in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert "removed" in capsys.readouterr().out
    main(["cache", "info", "--json", "-"])
    assert '"results": 0' in capsys.readouterr().out


def test_help_lists_settings_with_descriptions(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0 and "train.lr" in out and "Learning rate" in out


def test_a_run_waiting_on_another_process_says_so(tmp_path):
    """Another process holds this config's lease (it was killed, say): the CLI says it is
    waiting and when the lease expires, then takes over — it does not sit there silently."""
    from engine.runner import prepare
    from engine.store import Store

    args = ("--set", "depth=1", "--set", "width=16", "--epochs", "1", "--device", "cpu")
    raw = {
        "data": {"benchmark": "split-digits"},
        "model": {"depth": 1, "width": 16},
        "train": {"epochs": 1, "device": "cpu", "seed": 0},
        "scenario": "class",
        "strategy": {"name": "naive"},
    }
    _, key = prepare(raw)
    store = Store(tmp_path / "store")
    assert store.try_lease(key, "a-killed-run", ttl=120)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FORGET_CACHE_DIR": str(tmp_path / "store")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", *args, "--quiet"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stderr.readline()  # the first thing it says, while the lease is held
        assert line.startswith("waiting for another process's run of this config (lease expires in")
        store.release_lease(key, "a-killed-run")  # the holder goes: this run takes over
        assert proc.wait(180) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_json_path_is_checked_before_training(tmp_path, capsys):
    bad = str(tmp_path / "no" / "such" / "dir" / "r.json")
    assert main(["run", "--json", bad, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --json: the folder {str(Path(bad).parent)!r} does not exist"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["run", "--set", "epochs=" + "9" * 5000], "train.epochs: value too long"),
        (["run", "--set", "batch_size=true"], "train.batch_size: expected a whole number"),
        (["run", "--set", "epochs=True"], "train.epochs: expected a whole number"),
        (["run", "--set", "epochs=١"], "train.epochs: expected a whole number"),
        (
            ["run", "--benchmark", "synthetic", "--set", "synthetic_shape=999x999x999"],
            "memory: about",
        ),
        (
            [
                "run",
                "--benchmark",
                "synthetic",
                "--set",
                "synthetic_shape=3x200x200",
                "--set",
                "synthetic_n=200000",
            ],
            "memory: about",
        ),
        (["softmax-rank", "--n", "100000"], "--n: must be 2…2,048"),
    ],
)
def test_hostile_cli_input_is_one_line_before_any_work(capsys, args, field):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0] and len(err[0]) < 400, err
