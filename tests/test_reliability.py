"""Crashes and concurrency: a SIGKILLed run leaves no corrupt entry and resumes to the same R;
N processes asking for one config compute it once; a dead worker's claim expires; a damaged
entry is recomputed, not served; clearing the cache during a run is safe."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import tiny_config

from engine.runner import prepare, run
from engine.store import Store

ROOT = Path(__file__).resolve().parents[1]


def _args(cfg: dict) -> list[str]:
    """CLI flags for a tiny_config-shaped dict."""
    t, m = cfg["train"], cfg["model"]
    return [
        "run",
        "--scenario",
        cfg["scenario"],
        "--strategy",
        cfg["strategy"]["name"],
        "--quiet",
        "--epochs",
        str(t["epochs"]),
        "--device",
        "cpu",
        "--set",
        f"depth={m['depth']}",
        "--set",
        f"width={m['width']}",
        "--set",
        f"batch_size={t['batch_size']}",
        "--set",
        f"lr={t['lr']}",
        "--set",
        f"evals_per_task={t['evals_per_task']}",
    ]


def _spawn(cfg: dict, cache: Path, *extra: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FORGET_CACHE_DIR": str(cache),
        "FORGET_LEASE_TTL": "2",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "engine", *_args(cfg), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_mid_task_then_resume_gives_the_same_R(tmp_path, monkeypatch):
    cfg = tiny_config(train__epochs=40)
    _, key = prepare(cfg)
    reference = run(cfg, use_cache=False)
    cache = tmp_path / "c"
    monkeypatch.setenv("FORGET_CACHE_DIR", str(cache))
    monkeypatch.setenv("FORGET_LEASE_TTL", "2")
    proc = _spawn(cfg, cache)
    store = Store(cache)
    deadline = time.time() + 240
    while time.time() < deadline:  # wait until two tasks are checkpointed, then kill mid-task
        ckpt = store.get_checkpoint(key)
        if ckpt is not None and ckpt["phase"] >= 1:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert store.get_result(key) is None  # no partial result is ever served
    ckpt = store.get_checkpoint(key)  # the checkpoint is whole (checksum verified)
    assert ckpt is not None and len(ckpt["R"]) == ckpt["phase"] + 1
    events = []
    resumed = run(cfg, on_event=events.append)  # waits for the dead lease to expire (2 s)
    start = next(e for e in events if e["type"] == "start")
    assert start["resumed_at"] == ckpt["phase"] + 1
    assert resumed.R == reference.R and resumed.baseline == reference.baseline


def test_processes_asking_for_one_config_compute_it_once(tmp_path):
    cfg = tiny_config(train__epochs=6)
    cache = tmp_path / "c"
    outs = [tmp_path / f"r{i}.json" for i in range(3)]
    procs = [_spawn(cfg, cache, "--json", str(out)) for out in outs]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    docs = [json.loads(out.read_text()) for out in outs]
    assert sorted(d["cached"] for d in docs) == [False, True, True]
    assert docs[0]["R"] == docs[1]["R"] == docs[2]["R"]
    assert Store(cache).info()["results"] == 1


def test_a_dead_workers_claim_expires(tmp_path):
    store = Store(tmp_path)
    assert store.try_lease("k", "dead-worker", ttl=0.5)
    assert not store.try_lease("k", "me", ttl=5)  # held
    time.sleep(0.7)
    assert store.try_lease("k", "me", ttl=5)  # expired: taken over
    assert not store.renew_lease("k", "dead-worker", ttl=5)
    store.release_lease("k", "someone-else")
    assert store.lease_holder("k") == "me"
    store.release_lease("k", "me")
    assert store.lease_holder("k") is None


def test_damaged_result_is_recomputed_not_served():
    first = run(tiny_config())
    store = Store()
    wrapper = json.loads(store.cache.get(f"result:{first.key}"))
    wrapper["data"] = wrapper["data"][:-20]  # truncated on disk
    store.cache.set(f"result:{first.key}", json.dumps(wrapper))
    again = run(tiny_config())
    assert not again.cached and again.R == first.R
    assert run(tiny_config()).cached


def test_cache_clear_during_a_run_is_safe():
    store = Store()
    cleared = []

    def on_event(e):
        if e["type"] == "row" and e["t"] == 1 and not cleared:
            cleared.append(store.clear())

    r = run(tiny_config(), on_event=on_event)
    assert cleared and len(r.R) == 5
    assert Store().get_result(r.key)["R"] == r.R  # stored whole after the clear


@pytest.mark.parametrize("junk", [b"FEC1" + b"\0" * 40, b"garbage", "text"])
def test_damaged_checkpoint_restarts_from_scratch(junk):
    cfg = tiny_config()
    _, key = prepare(cfg)
    Store().cache.set(f"ckpt:{key}", junk)
    events = []
    r = run(cfg, on_event=events.append)
    assert next(e for e in events if e["type"] == "start")["resumed_at"] == 0
    assert r.R == run(cfg, use_cache=False).R
