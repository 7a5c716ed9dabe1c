"""engine.jobs: one run per config however many ask, cancel and resume, a bounded queue, and
hosted-mode caps that the API itself refuses (not only the widgets)."""

from __future__ import annotations

import threading

import pytest
from conftest import tiny_config

from engine.caps import Caps
from engine.config import ConfigError
from engine.errors import CapExceeded
from engine.estimate import training_cost
from engine.jobs import JobManager, get_manager
from engine.runner import prepare

TIMEOUT = 60


@pytest.fixture
def manager():
    m = JobManager(workers=1)
    yield m
    m.shutdown(wait=True)


def gate(m: JobManager) -> threading.Event:
    """Hold every job of ``m`` at its start event until the returned event is set."""
    release = threading.Event()
    original = m._on_event

    def held(job, event):
        if event["type"] == "start":
            release.wait(TIMEOUT)
        original(job, event)

    m._on_event = held
    return release


def test_identical_requests_share_one_run(manager):
    first = manager.submit(tiny_config(), session_id="tab-1")
    second = manager.submit(tiny_config(), session_id="tab-2")
    assert second is first
    assert first.wait(TIMEOUT) and first.state == "done"
    assert len(manager.store.list_results()) == 1
    assert first.snapshot()["sessions"] == 2
    # Once stored, the same config comes back finished at once, without queueing.
    again = manager.submit(tiny_config(), session_id="tab-3")
    assert again.state == "done" and again.cached
    assert again.result["R"] == first.result["R"]
    assert manager.status(first.key)["R"] == first.result["R"]
    # The counters the Runs page shows: three requests, one run.
    assert manager.counts == {
        "requests": 3,
        "started": 1,
        "shared": 1,
        "from_store": 1,
        "refused": 0,
    }


def test_progress_reaches_the_store_and_matches_the_result(manager):
    job = manager.submit(tiny_config())
    job.wait(TIMEOUT)
    snap = manager.status(job.key)
    assert snap["state"] == "done" and snap["n_tasks"] == 5
    assert snap["R"] == job.result["R"]
    assert snap["curves"]["step"] == job.result["curves"]["step"]
    # A finished run leaves no progress entry (Store.info counts those as running).
    assert manager.store.get_progress(job.key) is None


def test_progress_is_written_while_running(manager):
    seen = []
    original = manager._on_event

    def spy(job, event):
        original(job, event)
        if event["type"] == "row":
            seen.append(len(manager.store.get_progress(job.key)["R"]))

    manager._on_event = spy
    manager.submit(tiny_config()).wait(TIMEOUT)
    assert seen == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("isolate", [True, False], ids=["process", "thread"])
def test_cancel_stops_the_run_and_a_new_submit_resumes(isolate):
    manager = JobManager(workers=1, isolate=isolate)
    original = manager._on_event
    cfg = tiny_config()
    _, key = prepare(cfg)

    def cancel_after_two_rows(job, event):
        original(job, event)
        if event["type"] == "row" and event["t"] == 1:
            manager.cancel(job.key)

    manager._on_event = cancel_after_two_rows
    job = manager.submit(cfg)
    assert job.wait(TIMEOUT)
    assert job.state == "cancelled" and "2 finished tasks" in job.message
    assert not manager.store.has_result(key)
    assert len(manager.store.get_checkpoint(key)["R"]) == 2
    assert manager.status(key)["state"] == "cancelled"

    starts = []

    def record(job, event):
        original(job, event)
        if event["type"] == "start":
            starts.append(event["resumed_at"])

    manager._on_event = record
    again = manager.submit(cfg)
    assert again is not job
    assert again.wait(TIMEOUT) and again.state == "done"
    assert starts == [2]  # resumed after the two finished tasks
    assert len(again.result["R"]) == 5
    assert again.result["R"][:2] == job.snapshot()["R"][:2]
    manager.shutdown(wait=True)


def test_a_crashed_run_fails_alone_and_can_run_again(manager, monkeypatch):
    import multiprocessing
    import os
    import signal

    # The dead run's lease on the key expires after the TTL; then the next run takes over.
    monkeypatch.setenv("FORGET_LEASE_TTL", "1")
    original = manager._on_event

    def kill_the_run(job, event):
        original(job, event)
        if event["type"] == "row" and event["t"] == 0:
            (proc,) = [
                p for p in multiprocessing.active_children() if p.name.startswith("forget-run-")
            ]
            os.kill(proc.pid, signal.SIGKILL)

    manager._on_event = kill_the_run
    job = manager.submit(tiny_config())
    assert job.wait(TIMEOUT)
    assert job.state == "error" and "stopped unexpectedly" in job.message
    assert not manager.store.has_result(job.key)
    manager._on_event = original
    again = manager.submit(tiny_config())
    assert again.wait(TIMEOUT) and again.state == "done" and len(again.result["R"]) == 5


def test_cancel_of_a_queued_job_never_starts_it(manager):
    release = gate(manager)
    running = manager.submit(tiny_config())
    queued = manager.submit(tiny_config(train__seed=1))
    assert manager.cancel(queued.key)
    release.set()
    assert queued.wait(TIMEOUT) and queued.state == "cancelled"
    assert running.wait(TIMEOUT) and running.state == "done"
    assert not manager.store.has_result(queued.key)
    assert manager.cancel(running.key) is False  # nothing active to cancel


def test_bounded_queue_refuses_with_a_clear_error():
    m = JobManager(workers=1, max_queue=1)
    release = gate(m)
    try:
        m.submit(tiny_config())
        m.submit(tiny_config(train__seed=1))
        with pytest.raises(
            CapExceeded,
            match=r"^queue: 2 jobs are running or waiting, the most this server takes is 2",
        ):
            m.submit(tiny_config(train__seed=2))
        # Asking again for a config that is already queued is not new work: it is shared.
        assert m.submit(tiny_config(train__seed=1)).state == "queued"
        assert (m.counts["started"], m.counts["refused"], m.counts["shared"]) == (2, 1, 1)
    finally:
        for job in m.jobs():
            m.cancel(job["key"])
        release.set()
        m.shutdown(wait=True)


def test_bad_config_is_refused_at_submit(manager):
    with pytest.raises(ConfigError, match=r"^train\.epochs: "):
        manager.submit(tiny_config(train__epochs=0))
    assert manager.jobs() == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"data__benchmark": "split-mnist"},
            r"^data\.benchmark: 'split-mnist' is not offered on this hosted demo; allowed: split-digits, split-mnist5k$",
        ),
        (
            {
                "data__benchmark": "split-mnist5k",
                "model__depth": 2,
                "model__width": 1800,
                "train__epochs": 60,
            },
            r"^compute: about [\d.e+]+ multiply-adds is over the hosted limit of 3e\+12",
        ),
        (
            {"model__depth": 8, "model__width": 4096},
            r"^model: [\d,]+ parameters is over the hosted limit of 5,000,000",
        ),
        (
            {"train__batch_size": 1, "train__epochs": 30},
            r"^steps: about [\d,]+ optimizer steps is over the hosted limit of 20,000",
        ),
    ],
)
def test_hosted_caps_are_refused_by_the_api(monkeypatch, overrides, message):
    monkeypatch.setenv("FORGET_HOSTED", "1")
    m = JobManager(workers=1)
    try:
        assert m.hosted
        with pytest.raises(CapExceeded, match=message):
            m.submit(tiny_config(**overrides), session_id="visitor")
        assert m.jobs() == []
        # The same request is fine locally: local mode has no caps.
        JobManager(workers=1, hosted=False).check_caps(prepare(tiny_config(**overrides))[0])
    finally:
        m.shutdown(wait=True)


def test_hosted_memory_cap_counts_data_weights_and_activations(monkeypatch):
    monkeypatch.setenv("FORGET_MAX_MEMORY_MB", "64")
    m = JobManager(workers=1, hosted=True)
    try:
        wide = tiny_config(data__benchmark="split-mnist5k", model__width=4096)
        with pytest.raises(
            CapExceeded,
            match=r"^memory: about [\d,]+ MiB at peak is over the hosted limit of 64 MiB",
        ):
            m.submit(wide, session_id="visitor")
        m.check_caps(prepare(tiny_config())[0])  # the small default fits
    finally:
        m.shutdown(wait=True)


def test_hosted_caps_per_visitor(monkeypatch):
    monkeypatch.setenv("FORGET_MAX_JOBS_PER_VISITOR", "1")
    m = JobManager(workers=1, hosted=True)
    release = gate(m)
    try:
        m.submit(tiny_config(), session_id="a", visitor="1.2.3.4")
        with pytest.raises(
            CapExceeded,
            match=r"^jobs per visitor: you already have 1 computations going \(hosted limit 1,",
        ):  # another tab of the same browser is the same visitor
            m.submit(tiny_config(train__seed=1), session_id="a2", visitor="1.2.3.4")
        m.submit(tiny_config(train__seed=1), session_id="b", visitor="5.6.7.8")  # another visitor
        assert m.submit(tiny_config(), session_id="b").owner == "a"  # joining a run costs nothing
    finally:
        for job in m.jobs():
            m.cancel(job["key"])
        release.set()
        m.shutdown(wait=True)


def test_hosted_caps_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FORGET_BENCHMARKS", "split-digits")
    monkeypatch.setenv("FORGET_MAX_STEPS", "3")
    monkeypatch.setenv("FORGET_MAX_MACS", "1e9")
    caps = Caps.from_env()
    assert caps.benchmarks == ("split-digits",) and caps.max_steps == 3 and caps.max_macs == 1e9
    assert not Caps().limited  # local: no caps


def test_parameter_count_and_step_estimate():
    cfg, _ = prepare(tiny_config())  # digits 8×8 → 32 → 10 outputs (class-IL)
    cost = training_cost(cfg)
    assert cost.params == 64 * 32 + 32 + 32 * 10 + 10
    # 1,437 training images, 5 tasks, batch 64, 2 epochs: 2 × Σ ⌈n_t / 64⌉ ≈ 2 × 25
    assert 45 <= cost.steps <= 55
    # forward: 64·32 + 32·10 multiply-adds a sample; training ≈ 3× that per sample seen
    assert cost.macs >= 3 * (64 * 32 + 32 * 10) * 1437 * 2
    big, _ = prepare(tiny_config(model__depth=64, model__width=8192))
    assert training_cost(big).params > 4_000_000_000  # on the meta device, nothing allocated


def test_steps_follow_the_strategy_plan():
    """Cumulative retrains on all tasks so far; replay's grow_epoch adds the buffer to each
    epoch — the estimate counts both (a hosted cap once missed them: 29,910 steps passed as
    fewer than 20,000)."""
    base = tiny_config(train__batch_size=8, train__epochs=1)
    naive = training_cost(prepare(base)[0]).steps
    cumulative = training_cost(prepare({**base, "strategy": {"name": "cumulative"}})[0]).steps
    assert 2.8 * naive <= cumulative <= 3.2 * naive  # 1 + 2 + 3 + 4 + 5 tasks = 3× five tasks
    grow = {"name": "replay", "grow_epoch": True, "buffer_size": 10_000}
    assert training_cost(prepare({**base, "strategy": grow})[0]).steps == cumulative


def test_get_manager_is_one_per_process_and_store(tmp_path, monkeypatch):
    a = get_manager()
    assert get_manager() is a
    monkeypatch.setenv("FORGET_CACHE_DIR", str(tmp_path / "other"))
    b = get_manager()
    assert b is not a and b.store_dir == tmp_path / "other"
    monkeypatch.setenv("FORGET_HOSTED", "1")
    assert get_manager().hosted


def test_a_hosted_job_past_its_wall_clock_ends_with_a_message_and_stores_nothing(monkeypatch):
    """Each hosted job's process is stopped past FORGET_MAX_WALL_S: a clear message, the job
    marked failed, and no result in the store (finished tasks stay checkpointed)."""
    from engine.store import Store

    caps = Caps(max_wall_s=1.0)
    m = JobManager(workers=1, hosted=True, caps=caps, isolate=True)
    try:
        slow = tiny_config(train__epochs=200, model__width=256)  # well over a second
        job = m.submit(slow, session_id="visitor")
        assert job.wait(TIMEOUT)
        assert job.state == "error"
        assert "over the hosted time limit of 1 s per job" in job.message
        assert not Store().has_result(job.key)
    finally:
        m.shutdown(wait=True)


def test_the_address_space_limit_turns_an_oversized_allocation_into_a_message(tmp_path):
    """What the hosted memory limit does in a job's process: an allocation past it fails, and
    the job reports it in one line instead of taking the server's memory."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import torch\n"
        "from engine.jobs import limit_address_space\n"
        "limit_address_space(200 * 2**20)\n"
        "try:\n"
        "    torch.empty(2**31, dtype=torch.float32)\n"  # 8 GiB
        "    print('allocated')\n"
        "except (MemoryError, RuntimeError) as err:\n"
        "    print('refused', type(err).__name__)\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip().startswith("refused"), out.stdout + out.stderr


def test_only_the_owner_cancels_a_hosted_job(monkeypatch):
    m = JobManager(workers=1, hosted=True, caps=Caps())
    release = gate(m)
    try:
        job = m.submit(tiny_config(), session_id="owner", visitor="1.1.1.1")
        assert not m.can_cancel(job.key, "someone-else")
        assert not m.cancel(job.key, "someone-else") and job.active
        assert m.can_cancel(job.key, "owner") and m.cancel(job.key, "owner")
    finally:
        release.set()
        m.shutdown(wait=True)
    assert job.state == "cancelled"


def test_cancel_stops_a_job_within_seconds_even_between_step_boundaries():
    """Cancel during a long stage that checks nothing (a 401-point softmax curve of 128×128
    SVDs, about a minute): the process is stopped after a short grace, the job ends cancelled,
    and its lease is handed back, so asking again starts at once instead of waiting on it."""
    import time

    from engine.store import Store

    m = JobManager(workers=1, isolate=True)
    try:
        raw = {"n": 128, "c_lo": -8, "c_hi": 12, "per_decade": 20}
        job = m.submit(raw, session_id="me", kind="softmax")
        deadline = time.monotonic() + TIMEOUT
        while (job.snapshot().get("stage") != "rank curve") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.snapshot().get("stage") == "rank curve"
        t0 = time.monotonic()
        assert m.cancel(job.key, "me")
        assert job.wait(TIMEOUT)
        assert time.monotonic() - t0 < 5.0
        assert job.state == "cancelled"
        assert Store().lease_holder(job.key) is None
    finally:
        m.shutdown(wait=True)


def test_jobs_take_turns_by_visitor():
    """One visitor's queued jobs do not hold the worker ahead of another visitor's: the next
    job is the one whose visitor has the fewest running."""
    m = JobManager(workers=1, hosted=True, caps=Caps(max_jobs_per_visitor=3))
    release = gate(m)
    try:
        first = m.submit(tiny_config(train__seed=0), session_id="a", visitor="heavy")
        m.submit(tiny_config(train__seed=1), session_id="a", visitor="heavy")
        m.submit(tiny_config(train__seed=2), session_id="a", visitor="heavy")
        other = m.submit(tiny_config(train__seed=3), session_id="b", visitor="light")
        order = []
        original = m._work

        def note(job):
            order.append(job.visitor)
            original(job)

        m._work = note
        release.set()
        assert first.wait(TIMEOUT) and other.wait(TIMEOUT)
        for job in m.jobs():
            m.wait(job["key"], TIMEOUT)
    finally:
        release.set()
        m.shutdown(wait=True)
    assert order[0] == "light"  # while "heavy" had one running, "light" went next
