"""Background execution of runs for the app: one process-wide queue, deduplicated by config key.

The app never trains: it hands a config to :func:`get_manager`'s :class:`JobManager`, which

* resolves the config and derives its key (bad input raises ConfigError at once);
* returns a finished result from the store at once, without queueing (``state="done"``);
* returns the *same* :class:`Job` for a config that is already queued or running, so two
  sessions or tabs asking for one config share one run;
* otherwise checks the hosted-mode caps and the queue bound, and queues the run on a small
  thread pool (``FORGET_WORKERS`` threads; 1 on a CPU machine, where a second run would only
  share the cores with the first).

Each job runs :func:`engine.runner.run` in a process of its own (forked from a server that has
torch and the engine imported, so it starts in milliseconds), watched by its pool thread: the
app's sessions redraw their pages in the main process, and training in a thread would share the
interpreter lock with every redraw of every viewer. ``FORGET_JOB_PROCESSES=0`` runs jobs in the
pool threads instead. The run's events update the job's in-memory progress (phase, step/total,
rows of R so far, curve points) and are written to the store
(:meth:`engine.store.Store.set_progress`), where any process can read them. ``cancel(key)``
stops a run at the next step boundary; the tasks it finished stay checkpointed, so a later
submit resumes there.

Hosted mode (``FORGET_HOSTED=1``, or ``hosted=True`` from the app's secrets) caps what one
visitor can ask for — epochs, model parameters, estimated optimizer steps, benchmarks (the
embedded ones by default), concurrent jobs per session — here, in the engine, so a crafted
query string or API call cannot get past them. Each cap is an env variable (see
:meth:`Caps.from_env`). Local mode has no caps; the queue is bounded in both modes.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.machinery
import logging
import math
import os
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import EMBEDDED, ConfigError, ExperimentConfig, n_classes, task_sizes
from engine.errors import CapExceeded
from engine.runner import prepare

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
PROGRESS_WRITE_S = 0.2  # the store gets at most ~5 progress writes a second per job (rows always)
KEEP_FINISHED = 200  # finished jobs remembered in memory (status of cancelled/failed runs)

# Images in each benchmark's training pool (before the task split), for the step estimate.
TRAIN_IMAGES = {
    "split-mnist": 60_000,
    "split-fashion-mnist": 60_000,
    "permuted-mnist": 60_000,
    "split-cifar10": 50_000,
    "split-cifar100": 50_000,
}
EMBEDDED_IMAGES = {"split-digits": 1_797, "split-mnist5k": 5_000}
INPUT_SHAPES = {
    "split-digits": (1, 8, 8),
    "split-mnist5k": (1, 28, 28),
    "split-mnist": (1, 28, 28),
    "split-fashion-mnist": (1, 28, 28),
    "permuted-mnist": (1, 28, 28),
    "split-cifar10": (3, 32, 32),
    "split-cifar100": (3, 32, 32),
}


def hosted_from_env() -> bool:
    return os.environ.get("FORGET_HOSTED", "").strip().lower() in ("1", "true", "yes", "on")


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    return int(text) if text else default


@dataclass(frozen=True)
class Caps:
    """Limits on one request (None = no limit). Local mode uses ``Caps()``: no limits."""

    max_epochs: int | None = None
    max_params: int | None = None
    max_steps: int | None = None
    benchmarks: tuple[str, ...] | None = None
    max_jobs_per_session: int | None = None

    @classmethod
    def from_env(cls) -> Caps:
        """Hosted-mode caps: FORGET_MAX_EPOCHS (30), FORGET_MAX_PARAMS (5,000,000),
        FORGET_MAX_STEPS (20,000), FORGET_BENCHMARKS (comma list; the embedded ones),
        FORGET_MAX_JOBS_PER_SESSION (2)."""
        names = os.environ.get("FORGET_BENCHMARKS", "").strip()
        return cls(
            max_epochs=_env_int("FORGET_MAX_EPOCHS", 30),
            max_params=_env_int("FORGET_MAX_PARAMS", 5_000_000),
            max_steps=_env_int("FORGET_MAX_STEPS", 20_000),
            benchmarks=tuple(n.strip() for n in names.split(",") if n.strip())
            if names
            else EMBEDDED,
            max_jobs_per_session=_env_int("FORGET_MAX_JOBS_PER_SESSION", 2),
        )


def count_params(cfg: ExperimentConfig) -> int:
    """Parameters of the model a resolved config builds, without allocating its weights."""
    import torch

    from engine.models import build_model

    data = cfg.data
    if data.benchmark == "synthetic":
        shape = tuple(int(s) for s in data.synthetic_shape.split("x"))
    else:
        shape = INPUT_SHAPES[data.benchmark]
    sizes = task_sizes(data)
    if sizes is None:  # permuted-mnist: every task has all classes
        n_out = n_classes(data) * (1 if cfg.scenario == "domain" else data.n_tasks)
    else:
        n_out = max(sizes) if cfg.scenario == "domain" else sum(sizes)
    with torch.device("meta"):  # shapes only: a 4-billion-parameter request costs nothing
        model = build_model(cfg.model, shape, n_out)
    return int(sum(p.numel() for p in model.parameters()))


def estimate_steps(cfg: ExperimentConfig) -> int:
    """Optimizer steps of a resolved config, one phase per task (epochs × ⌈images / batch⌉)."""
    data, train = cfg.data, cfg.train
    sizes = task_sizes(data)
    if data.benchmark == "synthetic":
        pool = data.synthetic_n * (1 - data.test_fraction)
    elif data.benchmark in EMBEDDED_IMAGES:
        pool = EMBEDDED_IMAGES[data.benchmark] * (1 - data.test_fraction)
    else:
        pool = TRAIN_IMAGES[data.benchmark]
    total = n_classes(data)
    per_task = [pool] * data.n_tasks if sizes is None else [pool * s / total for s in sizes]
    return int(sum(train.epochs * math.ceil(n / train.batch_size) for n in per_task))


@dataclass
class Job:
    """One run in the background; ``snapshot()`` is what the app draws."""

    key: str
    config: dict
    state: str = "queued"  # queued | running | done | diverged | cancelled | error
    owner: str | None = None
    sessions: set = field(default_factory=set)
    result: dict | None = None
    message: str = ""
    cached: bool = False
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    progress: dict = field(default_factory=dict)
    _written: float = field(default=0.0, repr=False)  # when progress last went to the store
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished (True) or the timeout passed (False)."""
        return self._done.wait(timeout)

    def snapshot(self) -> dict:
        """A copy of the job's state and progress, safe to read while the job runs."""
        with self._lock:
            return {
                "key": self.key,
                "state": self.state,
                "message": self.message,
                "cached": self.cached,
                "submitted_at": self.submitted_at,
                "started_at": self.started_at,
                "finished_at": self.finished_at,
                "sessions": len(self.sessions),
                **copy.deepcopy(self.progress),
            }

    def _finish(self, state: str, message: str = "") -> None:
        """Record the outcome; ``wait()`` returns once the manager has also written it out."""
        with self._lock:
            self.state, self.message, self.finished_at = state, message, time.time()


def _empty_progress(n_tasks: int | None = None) -> dict:
    return {
        "n_tasks": n_tasks,
        "n_phases": None,
        "phase": None,
        "step": 0,
        "total": 0,
        "global_step": 0,
        "total_steps": 0,
        "R": [],
        "baseline": None,
        "curves": {"step": [], "acc": []},
        "row_steps": [],  # global step at which each row of R was measured (a task's end)
        "updated_at": time.time(),
    }


class JobManager:
    """A bounded queue of runs on a thread pool, deduplicated by config key."""

    def __init__(
        self,
        workers: int | None = None,
        max_queue: int | None = None,
        hosted: bool | None = None,
        caps: Caps | None = None,
        store_dir: str | os.PathLike | None = None,
        isolate: bool | None = None,
    ) -> None:
        from engine.store import Store, cache_dir

        self.hosted = hosted_from_env() if hosted is None else bool(hosted)
        self.caps = caps if caps is not None else (Caps.from_env() if self.hosted else Caps())
        self.workers = workers or _env_int("FORGET_WORKERS", _default_workers())
        self.max_queue = max_queue or _env_int("FORGET_MAX_QUEUE", 16 if self.hosted else 64)
        self.store_dir = Path(store_dir) if store_dir is not None else cache_dir()
        self.store = Store(self.store_dir)
        # Each run in its own process (default), or in the pool thread (FORGET_JOB_PROCESSES=0).
        self.isolate = _env_int("FORGET_JOB_PROCESSES", 1) != 0 if isolate is None else isolate
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="forget-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._warmed = False
        # What this server was asked and did since it started (the Runs page shows it; the
        # load test reads it to check that 20 sessions over 5 configs started 5 runs).
        self.counts = {"requests": 0, "started": 0, "shared": 0, "from_store": 0, "refused": 0}

    # -- asking for runs -------------------------------------------------------------------
    def submit(
        self, config: ExperimentConfig | dict[str, Any], session_id: str | None = None
    ) -> Job:
        """The job for this config: finished (from the store), shared (already active), or new."""
        cfg, key = prepare(config)
        with self._lock:
            self.counts["requests"] += 1
            job = self._jobs.get(key)
            if job is not None and job.active:
                job.sessions.add(session_id)
                self.counts["shared"] += 1
                return job
        hit = self.store.get_result(key)
        if hit is not None:
            with self._lock:
                self.counts["from_store"] += 1
            return self._remember_finished(key, hit)
        try:
            return self._enqueue(cfg, key, session_id)
        except CapExceeded:  # a cap or the queue bound: counted once, whichever refused
            with self._lock:
                self.counts["refused"] += 1
            raise

    def _enqueue(self, cfg: ExperimentConfig, key: str, session_id: str | None) -> Job:
        """Queue a new job for ``key`` (or join one another thread queued meanwhile), unless a
        hosted cap or the queue bound refuses it (CapExceeded)."""
        self.check_caps(cfg)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.active:  # another thread got here first
                job.sessions.add(session_id)
                self.counts["shared"] += 1
                return job
            active = [j for j in self._jobs.values() if j.active]
            if len(active) >= self.workers + self.max_queue:
                raise CapExceeded(
                    f"queue: {len(active)} runs are running or waiting, the most this server takes "
                    f"is {self.workers + self.max_queue}; try again when one has finished"
                )
            limit = self.caps.max_jobs_per_session
            if limit is not None and session_id is not None:
                mine = sum(j.owner == session_id for j in active)
                if mine >= limit:
                    raise CapExceeded(
                        f"jobs per session: you already have {mine} runs going (hosted limit "
                        f"{limit}); wait for one to finish or cancel it"
                    )
            job = Job(
                key=key, config=cfg.model_dump(mode="json"), owner=session_id, sessions={session_id}
            )
            job.progress = _empty_progress(cfg.data.n_tasks)
            self._jobs[key] = job
            self.counts["started"] += 1
            self._prune()
            self._pool.submit(self._work, job)
        self._write_progress(job, force=True)
        return job

    def check_caps(self, cfg: ExperimentConfig) -> None:
        """Raise CapExceeded naming the first hosted-mode cap a resolved config is over."""
        caps = self.caps
        if caps.benchmarks is not None and cfg.data.benchmark not in caps.benchmarks:
            raise CapExceeded(
                f"data.benchmark: {cfg.data.benchmark!r} is not offered on this hosted demo; "
                f"allowed: {', '.join(caps.benchmarks)}"
            )
        if caps.max_epochs is not None and cfg.train.epochs > caps.max_epochs:
            raise CapExceeded(
                f"train.epochs: {cfg.train.epochs} is over the hosted limit of {caps.max_epochs} epochs per task"
            )
        if caps.max_params is not None:
            n = count_params(cfg)
            if n > caps.max_params:
                raise CapExceeded(
                    f"model: {n:,} parameters is over the hosted limit of {caps.max_params:,} "
                    "(lower model.width or model.depth)"
                )
        if caps.max_steps is not None:
            steps = estimate_steps(cfg)
            if steps > caps.max_steps:
                raise CapExceeded(
                    f"train.batch_size: about {steps:,} training steps is over the hosted limit of "
                    f"{caps.max_steps:,} (raise train.batch_size or lower train.epochs)"
                )

    def cancel(self, key: str) -> bool:
        """Stop a queued or running job at its next step boundary; False if none is active."""
        with self._lock:
            job = self._jobs.get(key)
        if job is None or not job.active:
            return False
        job._cancel.set()
        return True

    def warm_up(self, config: ExperimentConfig | dict[str, Any] | None = None) -> None:
        """Prepare for the first Run in the background (once per manager): start the process
        server that runs jobs, or, with jobs in threads, load the embedded benchmark's data."""
        with self._lock:
            if self._warmed:
                return
            self._warmed = True

        def load() -> None:
            try:
                if self.isolate:  # start the forkserver: it imports torch and the engine once
                    ctx = _process_context()
                    if ctx.get_start_method() == "forkserver":
                        from multiprocessing import forkserver

                        with _plain_main():
                            forkserver.ensure_running()
                    return
                import torch._dynamo  # noqa: F401  (the first optimizer would import it)

                from engine.data.benchmark import load_raw_data

                cfg, _ = prepare(config or {})
                if cfg.data.benchmark in EMBEDDED:
                    load_raw_data(cfg.data)  # memoized in the process
            except Exception:  # warming up is an optimisation; a bad config fails on Run instead
                log.debug("warm-up failed", exc_info=True)

        threading.Thread(target=load, name="forget-warm-up", daemon=True).start()

    # -- reading back ----------------------------------------------------------------------
    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def status(self, key: str) -> dict | None:
        """What is known about a key: the job's snapshot, a stored result, another process's
        progress, or None when nothing is."""
        job = self.get(key)
        if job is not None and job.state != "done":
            return job.snapshot()
        if self.store.has_result(key):
            if job is None:
                hit = self.store.get_result(key)
                job = self._remember_finished(key, hit) if hit is not None else None
            if job is not None:
                return job.snapshot()
        return self.store.get_progress(key)  # a run of another process, or None

    def result(self, key: str) -> dict | None:
        """The finished result for a key (from memory or the store), or None."""
        job = self.get(key)
        if job is not None and job.result is not None and job.state in ("done", "diverged"):
            if self.store.has_result(key):  # deleted from the store = forgotten here too
                return job.result
        return self.store.get_result(key)

    def jobs(self) -> list[dict]:
        """Snapshots of every job this process knows, newest first."""
        with self._lock:
            jobs = list(self._jobs.values())
        return sorted((j.snapshot() for j in jobs), key=lambda s: s["submitted_at"], reverse=True)

    def wait(self, key: str, timeout: float | None = None) -> dict | None:
        """Block until the job for ``key`` has finished (or the timeout); its snapshot."""
        job = self.get(key)
        if job is not None:
            job.wait(timeout)
        return self.status(key)

    def shutdown(self, wait: bool = False) -> None:
        """Cancel what is active and stop the pool (used when the store directory changes)."""
        with self._lock:
            for job in self._jobs.values():
                if job.active:
                    job._cancel.set()
        self._pool.shutdown(wait=wait, cancel_futures=False)

    # -- inside ----------------------------------------------------------------------------
    def _remember_finished(self, key: str, hit: dict) -> Job:
        job = Job(
            key=key, config=hit.get("config", {}), state=hit.get("status", "done"), result=hit
        )
        job.cached, job.message = True, hit.get("message", "")
        job.started_at = job.finished_at = job.submitted_at
        job.progress = _progress_of_result(hit)
        job._done.set()
        with self._lock:
            current = self._jobs.get(key)
            if current is not None and current.active:
                return current
            self._jobs[key] = job
        return job

    def _prune(self) -> None:
        finished = [j for j in self._jobs.values() if not j.active]
        for j in sorted(finished, key=lambda j: j.submitted_at)[
            : max(0, len(finished) - KEEP_FINISHED)
        ]:
            del self._jobs[j.key]

    def _work(self, job: Job) -> None:
        if job._cancel.is_set():
            job._finish("cancelled", "cancelled before it started")
            self._write_progress(job, force=True)
            job._done.set()
            return
        with job._lock:
            job.state, job.started_at = "running", time.time()
        self._write_progress(job, force=True)
        try:
            kind, payload = self._run_in_process(job) if self.isolate else self._run_here(job)
        except Exception as err:  # a failure here must not take the pool thread down with it
            log.exception("run %s failed", job.key)
            kind, payload = "error", f"{type(err).__name__}: {err}"
        if kind == "result":
            with job._lock:
                job.result = payload
                job.progress.update(_progress_of_result(payload))
            job._finish(payload.get("status", "done"), payload.get("message", ""))
        elif kind == "cancelled":
            done = len(job.progress.get("R", []))
            job._finish(
                "cancelled",
                f"cancelled after {done} finished tasks; running it again resumes there",
            )
        else:
            job._finish("error", payload)
        self._write_progress(job, force=True)
        if job.state == "done":  # the result is stored; a progress entry would read as "running"
            self.store.clear_progress(job.key)
        job._done.set()

    def _run_here(self, job: Job) -> tuple[str, Any]:
        """Run in this thread (FORGET_JOB_PROCESSES=0)."""
        return _execute(
            job.config, self.store, lambda e: self._on_event(job, e), job._cancel.is_set
        )

    def _run_in_process(self, job: Job) -> tuple[str, Any]:
        """Run in a child process and relay its events here.

        The app's sessions redraw their pages in this process; in a thread, training would
        share the interpreter lock with every session's redraws and slow down with each viewer.
        A forkserver child starts in tens of milliseconds (torch and the engine are preloaded
        in the server) and a crash in it fails only this job.
        """
        ctx = _process_context()
        conn, child_conn = ctx.Pipe()
        stop = ctx.Event()
        proc = ctx.Process(
            target=_child_main,
            args=(child_conn, stop, job.config, str(self.store_dir), _forget_env()),
            name=f"forget-run-{job.key[:8]}",
            daemon=True,
        )
        with _plain_main():
            proc.start()
        child_conn.close()

        def died() -> tuple[str, str]:
            proc.join(5)
            return "error", f"the run's process stopped unexpectedly (exit code {proc.exitcode})"

        try:
            while True:
                if job._cancel.is_set():
                    stop.set()
                try:
                    if not conn.poll(0.1):
                        if not proc.is_alive() and not conn.poll():
                            return died()
                        continue
                    kind, payload = conn.recv()
                    if kind != "event":
                        return kind, payload
                    self._on_event(job, payload)
                    if payload["type"] == "row":
                        if job._cancel.is_set():  # decided on this row: stop before the next step
                            stop.set()
                        conn.send("ack")
                except (EOFError, OSError):  # the pipe broke: the process is gone
                    return died()
        finally:
            conn.close()
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()

    def _on_event(self, job: Job, event: dict) -> None:
        kind = event["type"]
        force = kind in ("start", "row", "task_start")
        with job._lock:
            p = job.progress
            if kind == "waiting":  # another process holds this config's lease (it may be dead)
                p["waiting_for"] = event.get("holder") or "another process"
            elif kind == "start":
                p.pop("waiting_for", None)
                p.update(
                    n_tasks=event["n_tasks"],
                    n_phases=event["n_phases"],
                    total_steps=event["total_steps"],
                    baseline=event["baseline"],
                    R=[list(r) for r in event["R"]],
                    resumed_at=event["resumed_at"],
                )
            elif kind == "task_start":
                p.update(phase=event["phase"], step=0)
            elif kind == "progress":
                p.update(
                    phase=event["phase"],
                    step=event["step"],
                    total=event["total"],
                    global_step=event["global_step"],
                    total_steps=event["total_steps"],
                )
            elif kind == "eval":
                p["curves"]["step"].append(event["step"])
                p["curves"]["acc"].append(list(event["acc"]))
            elif kind == "row":
                p["R"].append(list(event["row"]))
                p["row_steps"].append(p["global_step"])
            p["updated_at"] = time.time()
        self._write_progress(job, force=force)

    def _write_progress(self, job: Job, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - job._written < PROGRESS_WRITE_S:
            return
        job._written = now
        try:
            self.store.set_progress(job.key, job.snapshot())
        except Exception:  # progress is a courtesy to other processes; the run goes on
            log.warning("could not write progress of %s", job.key, exc_info=True)


def _progress_of_result(result: dict) -> dict:
    R = result.get("R") or []
    curves = result.get("curves") or {}
    return {
        **_empty_progress(len(R)),
        "n_tasks": len(R) or None,
        "R": R,
        "baseline": result.get("baseline"),
        "curves": {"step": list(curves.get("step", [])), "acc": list(curves.get("acc", []))},
        "total_steps": (curves.get("step") or [0])[-1],
        "global_step": (curves.get("step") or [0])[-1],
    }


def _execute(config: dict, store, on_event, cancel) -> tuple[str, Any]:
    """Run one config; the outcome as (kind, payload): ("result", result dict),
    ("cancelled", ""), or ("error", one line)."""
    from engine.data.torchvision_sets import DataUnavailable
    from engine.runner import run
    from engine.train import Cancelled

    try:
        result = run(config, on_event=on_event, store=store, cancel=cancel)
    except Cancelled:
        return "cancelled", ""
    except (ConfigError, DataUnavailable) as err:  # e.g. a dataset that is not on this machine
        return "error", str(err)
    except Exception as err:
        log.exception("run failed")
        return "error", f"{type(err).__name__}: {err}"
    return "result", result.to_dict()


def _forget_env() -> dict[str, str]:
    """The engine's settings (FORGET_*) as they are now, for a job's process: the forkserver
    started with the environment of its first use."""
    return {k: v for k, v in os.environ.items() if k.startswith("FORGET_")}


def _child_main(conn, stop, config: dict, store_dir: str, env: dict[str, str]) -> None:
    """Body of a job's process: run, sending events to the parent; each row of R waits for the
    parent's acknowledgement, so a cancel decided on seeing a row stops before the next step."""
    from engine.store import Store

    for k in [k for k in os.environ if k.startswith("FORGET_")]:
        del os.environ[k]
    os.environ.update(env)

    def on_event(event: dict) -> None:
        conn.send(("event", event))
        if event["type"] == "row":
            conn.recv()

    try:
        conn.send(_execute(config, Store(store_dir), on_event, stop.is_set))
    except (BrokenPipeError, EOFError):  # the parent went away: nobody is waiting for this run
        pass
    finally:
        conn.close()


# Imported once in the forkserver, so each job's process starts without importing torch again.
PRELOAD = (
    "torch",
    "torch._dynamo",  # imported by the first optimizer constructed: seconds, once
    "engine.runner",
    "engine.train",
    "engine.models",
    "engine.data",
    "engine.data.embedded",
    "engine.strategies",
    "engine.store",
    "sklearn.datasets",
    "sklearn.model_selection",
)
_context = None


@contextlib.contextmanager
def _plain_main():
    """Start processes with a ``__main__`` that names no file.

    multiprocessing imports the parent's ``__main__`` file again in every child (and in the
    forkserver). Under Streamlit, ``__main__`` is the page script being run, so each job's
    process would execute a page. A stand-in whose spec is named ``__main__`` is skipped.
    """
    saved = sys.modules.get("__main__")
    stub = types.ModuleType("__main__")
    stub.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
    sys.modules["__main__"] = stub
    try:
        yield
    finally:
        # Put the old one back unless a script run has installed its own meanwhile.
        if sys.modules.get("__main__") is stub and saved is not None:
            sys.modules["__main__"] = saved


def _process_context():
    """forkserver where the platform has it (a fork from a threaded server is unsafe), else spawn."""
    import multiprocessing

    global _context
    if _context is None:
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(list(PRELOAD))
        else:
            ctx = multiprocessing.get_context("spawn")
        _context = ctx
    return _context


def _default_workers() -> int:
    import torch

    return 2 if torch.cuda.is_available() else 1


_manager: JobManager | None = None
_manager_lock = threading.Lock()


def get_manager(hosted: bool | None = None) -> JobManager:
    """The process-wide manager (remade when the store directory or the mode changes).

    ``hosted`` comes from the app's secrets; FORGET_HOSTED=1 turns hosted mode on regardless.
    """
    from engine.store import cache_dir

    global _manager
    want = hosted_from_env() or bool(hosted)
    with _manager_lock:
        if _manager is None or _manager.store_dir != cache_dir() or _manager.hosted != want:
            if _manager is not None:
                _manager.shutdown(wait=False)
            _manager = JobManager(hosted=want)
        return _manager
