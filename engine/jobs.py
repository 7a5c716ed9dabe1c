"""Background execution of every kind of computation for the app: one queue, deduplicated by key.

The app never computes: it hands a (kind, spec) to :func:`get_manager`'s :class:`JobManager`,
which

* validates the spec and derives its key (bad input raises ConfigError at once);
* returns a finished result from the store at once, without queueing (``state="done"``);
* returns the *same* :class:`Job` for a key that is already queued or running, so two
  sessions, tabs or visitors asking for one computation share it;
* otherwise checks the hosted caps against the kind's cost estimate (engine.caps), the
  visitor's fair share and the queue bound, and queues it on a small thread pool
  (``FORGET_WORKERS`` threads; 1 on a CPU machine, where a second job would only share the
  cores with the first).

Each job runs :func:`engine.executor.execute` in a process of its own (forked from a server
that has torch and the engine imported, so it starts in milliseconds), watched by its pool
thread: the app's sessions redraw their pages in the main process, and computing in a thread
would share the interpreter lock with every redraw of every viewer. ``FORGET_JOB_PROCESSES=0``
runs jobs in the pool threads instead. A job's events update its in-memory progress (stage,
step/total; for continual runs also the phase, rows of R so far, curve points) and are written
to the store (:meth:`engine.store.Store.set_progress`), where any process can read them.
``cancel(key)`` stops a job at the next step boundary; what it finished stays checkpointed, so
a later submit resumes there.

Hosted mode (``FORGET_HOSTED=1``, or ``hosted=True`` from the app's secrets): caps on each
computation's estimated cost; a wall-clock and an address-space limit on each job's process;
a job belongs to the session that started it (only that session cancels it) and each visitor
(a browser, whatever its tabs) holds at most ``max_jobs_per_visitor`` active jobs. Local mode
has no caps; the queue is bounded in both modes.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.machinery
import logging
import multiprocessing
import os
import resource
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

import torch

from engine import kinds
from engine.caps import Caps, hosted_from_env
from engine.data.benchmark import load_raw_data
from engine.data.catalog import EMBEDDED
from engine.errors import Cancelled, CapExceeded, ConfigError, DataUnavailable
from engine.estimate import check_fits
from engine.executor import execute
from engine.store import Store, cache_dir

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
CANCEL_GRACE_S = 1.5  # after Cancel, a job's process that has not stopped by then is stopped
PROGRESS_WRITE_S = 0.2  # the store gets at most ~5 progress writes a second per job (rows always)
KEEP_FINISHED = 200  # finished jobs remembered in memory (status of cancelled/failed runs)


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    return int(text) if text else default


@dataclass
class Job:
    """One computation in the background; ``snapshot()`` is what the app draws."""

    key: str
    config: dict
    kind: str = "run"
    state: str = "queued"  # queued | running | done | diverged | partial | cancelled | error
    owner: str | None = None  # the session that started it: the only one that may cancel it
    visitor: str | None = None  # the browser behind that session (fair share of the queue)
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
                "kind": self.kind,
                "state": self.state,
                "message": self.message,
                "cached": self.cached,
                "owner": self.owner,
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
        "stage": "",
        "stages": [],
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
    """A bounded queue of computations on a thread pool, deduplicated by key."""

    def __init__(
        self,
        workers: int | None = None,
        max_queue: int | None = None,
        hosted: bool | None = None,
        caps: Caps | None = None,
        store_dir: str | os.PathLike | None = None,
        isolate: bool | None = None,
    ) -> None:
        self.hosted = hosted_from_env() if hosted is None else bool(hosted)
        self.caps = caps if caps is not None else (Caps.from_env() if self.hosted else Caps())
        self.workers = workers or _env_int("FORGET_WORKERS", _default_workers())
        self.max_queue = max_queue or _env_int("FORGET_MAX_QUEUE", 16 if self.hosted else 64)
        self.store_dir = Path(store_dir) if store_dir is not None else cache_dir()
        self.store = Store(self.store_dir)
        # Each job in its own process (default), or in the pool thread (FORGET_JOB_PROCESSES=0).
        self.isolate = _env_int("FORGET_JOB_PROCESSES", 1) != 0 if isolate is None else isolate
        # Plain threads, not a ThreadPoolExecutor: at exit the executor's hook joins its threads
        # before the main thread counts as ended, so a thread waiting on a job kept a stopped
        # server alive until the job finished. These cancel their job once the main thread has
        # ended (SIGTERM, Ctrl-C), so one signal stops the server and its job processes.
        self._queued: list[Job] = []  # waiting for a worker; see _next for the order
        self._served: dict[str | None, float] = {}  # when each visitor last got a worker
        self._threads: list[threading.Thread] = []
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._warmed = False
        self._closed = False
        # What this server was asked and did since it started (the Runs page shows it; the
        # load test reads it to check that 20 sessions over 5 configs started 5 runs).
        self.counts = {"requests": 0, "started": 0, "shared": 0, "from_store": 0, "refused": 0}

    # -- asking for computations -------------------------------------------------------------
    def submit(
        self,
        config: Any,
        session_id: str | None = None,
        kind: str = "run",
        visitor: str | None = None,
    ) -> Job:
        """The job for this computation: finished (from the store), shared (already active),
        or new. ``config`` is the raw spec of ``kind`` (for a run, the experiment config)."""
        spec, key = kinds.prepare(kind, config)
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
            return self._remember_finished(key, hit, kind)
        try:
            return self._enqueue(kind, spec, key, session_id, visitor or session_id)
        except CapExceeded:  # a cap, a fair share or the queue bound: counted once
            with self._lock:
                self.counts["refused"] += 1
            raise

    def _enqueue(self, kind: str, spec, key: str, session_id, visitor) -> Job:
        """Queue a new job for ``key`` (or join one another thread queued meanwhile), unless a
        hosted cap, the visitor's share or the queue bound refuses it (CapExceeded)."""
        self.check_caps(kind, spec)
        with self._lock:
            if self._closed:
                raise CapExceeded("queue: this server is shutting down; try again in a moment")
            job = self._jobs.get(key)
            if job is not None and job.active:  # another thread got here first
                job.sessions.add(session_id)
                self.counts["shared"] += 1
                return job
            active = [j for j in self._jobs.values() if j.active]
            if len(active) >= self.capacity:
                raise CapExceeded(
                    f"queue: {len(active)} jobs are running or waiting, the most this server "
                    f"takes is {self.capacity}; try again when one has finished"
                )
            limit = self.caps.max_jobs_per_visitor
            if limit is not None and visitor is not None:
                mine = sum(j.visitor == visitor for j in active)
                if mine >= limit:
                    raise CapExceeded(
                        f"jobs per visitor: you already have {mine} computations going (hosted "
                        f"limit {limit}, all your tabs together); wait for one or cancel it"
                    )
            job = Job(
                key=key,
                config=spec.model_dump(mode="json"),
                kind=kind,
                owner=session_id,
                visitor=visitor,
                sessions={session_id},
            )
            job.progress = _empty_progress(getattr(getattr(spec, "data", None), "n_tasks", None))
            self._jobs[key] = job
            self.counts["started"] += 1
            self._prune()
            self._queued.append(job)
            if len(self._threads) < self.workers:
                # daemon=False: started from a page's script thread it would inherit daemon=True,
                # and the interpreter's exit would kill the job instead of cancelling it.
                t = threading.Thread(
                    target=self._worker, name=f"forget-job-{len(self._threads)}", daemon=False
                )
                self._threads.append(t)
                t.start()
        self._write_progress(job, force=True)
        return job

    def check_caps(self, kind: str, spec=None) -> None:
        """Raise CapExceeded naming the first hosted cap this computation's cost is over.
        ``check_caps(cfg)`` with a run config alone is accepted too."""
        if not isinstance(kind, str):
            kind, spec = "run", kind
        spec, _ = kinds.prepare(kind, spec)
        cost = kinds.estimate(kind, spec)
        if self.caps.limited:  # the hosted cap first: it is the limit a visitor can act on
            self.caps.check(kind, spec, cost)
        check_fits(cost)  # local too: more memory than the machine has is refused at once

    def cancel(self, key: str, session_id: str | None = None) -> bool:
        """Stop a queued or running job at its next step boundary; False if none is active, or
        (hosted) when ``session_id`` is not the session that started it."""
        with self._lock:
            job = self._jobs.get(key)
        if job is None or not job.active:
            return False
        if self.hosted and job.owner is not None and session_id != job.owner:
            return False
        job._cancel.set()
        return True

    def can_cancel(self, key: str, session_id: str | None) -> bool:
        """Whether this session may cancel the job (local: anyone; hosted: its owner)."""
        job = self.get(key)
        if job is None or not job.active:
            return False
        return not self.hosted or job.owner is None or job.owner == session_id

    def warm_up(self, config: Any = None) -> None:
        """Prepare for the first job in the background (once per manager): start the process
        server that runs jobs, and import what cost estimates need (torch._dynamo, seconds)."""
        with self._lock:
            if self._warmed:
                return
            self._warmed = True

        def load() -> None:
            try:
                kinds.estimate("run", kinds.prepare("run", config or {})[0])
                if self.isolate:  # start the forkserver: it imports torch and the engine once
                    ctx = _process_context()
                    if ctx.get_start_method() == "forkserver":
                        with _plain_main():
                            forkserver.ensure_running()
                    return
                cfg, _ = kinds.prepare("run", config or {})
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
                job = self._remember_finished(key, hit, hit.get("kind", "run")) if hit else None
            if job is not None:
                return job.snapshot()
        return self.store.get_progress(key)  # a job of another process, or None

    def result(self, key: str) -> dict | None:
        """The finished result for a key (from memory or the store), or None."""
        job = self.get(key)
        if job is not None and job.result is not None and job.state in FINISHED_WITH_RESULT:
            if self.store.has_result(key):  # deleted from the store = forgotten here too
                return job.result
        return self.store.get_result(key)

    @property
    def capacity(self) -> int:
        """Jobs this server holds at once, running and waiting."""
        return self.workers + self.max_queue

    def room(self) -> int:
        """How many more jobs the queue takes now."""
        with self._lock:
            return self.capacity - sum(j.active for j in self._jobs.values())

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
        """Cancel what is active and stop the workers (server exit, or a new store directory)."""
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                if job.active:
                    job._cancel.set()
            threads = list(self._threads)
        if wait:
            for t in threads:
                t.join()

    def _next(self) -> Job | None:
        """The queued job to run next: round robin over visitors — the one whose visitor has
        the fewest jobs running, then was served longest ago (never first), then the oldest —
        so one visitor's queue takes turns with everyone else's instead of holding the workers
        for as long as it lasts."""
        with self._lock:
            if not self._queued:
                return None
            running: dict[str | None, int] = {}
            for j in self._jobs.values():
                if j.state == "running":
                    running[j.visitor] = running.get(j.visitor, 0) + 1
            job = min(
                self._queued,
                key=lambda j: (
                    running.get(j.visitor, 0),
                    self._served.get(j.visitor, 0.0),
                    j.submitted_at,
                ),
            )
            self._queued.remove(job)
            self._served[job.visitor] = time.monotonic()
            return job

    def _worker(self) -> None:
        """Runs queued jobs until shut down or the server stops; jobs still queued end cancelled."""
        while True:
            job = self._next()
            if job is None:
                if self._closed or server_stopping():
                    return
                time.sleep(0.05)
                continue
            if self._closed or server_stopping():
                job._cancel.set()
            self._work(job)

    # -- inside ----------------------------------------------------------------------------
    def _remember_finished(self, key: str, hit: dict, kind: str) -> Job:
        job = Job(
            key=key,
            config=hit.get("config", {}),
            kind=hit.get("kind", kind),
            state=hit.get("status", "done"),
            result=hit,
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
            outcome, payload = self._run_in_process(job) if self.isolate else self._run_here(job)
        except Exception as err:  # a failure here must not take the pool thread down with it
            log.exception("job %s failed", job.key)
            outcome, payload = "error", f"{type(err).__name__}: {err}"
        if outcome == "result":
            with job._lock:
                job.result = payload
                job.progress.update(_progress_of_result(payload))
            job._finish(payload.get("status", "done"), payload.get("message", ""))
        elif outcome == "cancelled":
            if job.kind == "run":
                done = len(job.progress.get("R", []))
                note = f"cancelled after {done} finished tasks; running it again resumes there"
            else:
                note = "cancelled; running it again resumes from what was finished"
            job._finish("cancelled", note)
        else:
            job._finish("error", payload)
        self._write_progress(job, force=True)
        if job.state in FINISHED_WITH_RESULT:  # stored; a progress entry would read as running
            self.store.clear_progress(job.key)
        job._done.set()

    def _run_here(self, job: Job) -> tuple[str, Any]:
        """Run in this thread (FORGET_JOB_PROCESSES=0)."""
        return _execute(
            job.kind,
            job.config,
            self.store,
            lambda e: self._on_event(job, e),
            lambda: job._cancel.is_set() or server_stopping(),
        )

    def _run_in_process(self, job: Job) -> tuple[str, Any]:
        """Run in a child process and relay its events here.

        The app's sessions redraw their pages in this process; in a thread, training would
        share the interpreter lock with every session's redraws and slow down with each viewer.
        A forkserver child starts in tens of milliseconds (torch and the engine are preloaded
        in the server) and a crash in it fails only this job. In hosted mode the child gets an
        address-space limit and this thread stops it past the wall-clock limit.
        """
        ctx = _process_context()
        conn, child_conn = ctx.Pipe()
        stop = ctx.Event()
        memory = None if self.caps.max_memory_mb is None else self.caps.max_memory_mb * 2**20
        proc = ctx.Process(
            target=_child_main,
            args=(
                child_conn,
                stop,
                job.kind,
                job.config,
                str(self.store_dir),
                _forget_env(),
                memory,
            ),
            name=f"forget-{job.kind}-{job.key[:8]}",
            daemon=True,
        )
        with _plain_main():
            proc.start()
        child_conn.close()
        deadline = None if self.caps.max_wall_s is None else time.monotonic() + self.caps.max_wall_s

        def died() -> tuple[str, str]:
            proc.join(5)
            return "error", f"the job's process stopped unexpectedly (exit code {proc.exitcode})"

        cancelled_at = None
        try:
            while True:
                if job._cancel.is_set() or server_stopping():
                    stop.set()
                    cancelled_at = cancelled_at or time.monotonic()
                    # A step boundary comes within milliseconds while training; an analysis
                    # stage (probes, an SVD) may not check for a while: past the grace period
                    # the process is stopped. Store writes are transactions, so nothing is
                    # left half-written, and its lease is handed back for the next run.
                    if time.monotonic() - cancelled_at > CANCEL_GRACE_S and proc.is_alive():
                        proc.kill()
                        proc.join(5)
                        self._release_leases_of(job.key, proc.pid)
                        return "cancelled", ""
                if deadline is not None and time.monotonic() > deadline:
                    stop.set()
                    proc.join(5)
                    if proc.is_alive():
                        proc.kill()
                        proc.join(5)
                    self._release_leases_of(job.key, proc.pid)
                    return "error", (
                        f"stopped: over the hosted time limit of {self.caps.max_wall_s:g} s per "
                        "job (what finished is checkpointed; nothing else was stored)"
                    )
                try:
                    if not conn.poll(0.1):
                        if not proc.is_alive() and not conn.poll():
                            return died()
                        continue
                    outcome, payload = conn.recv()
                    if outcome != "event":
                        return outcome, payload
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

    def _release_leases_of(self, key: str, pid: int | None) -> None:
        """Hand back the lease a stopped job process held on ``key`` (it could not)."""
        holder = self.store.lease_holder(key)
        if pid is not None and holder and holder.split(":")[1:2] == [str(pid)]:
            self.store.release_lease(key, holder)

    def _on_event(self, job: Job, event: dict) -> None:
        kind = event["type"]
        force = kind in ("start", "row", "task_start")
        with job._lock:
            p = job.progress
            if kind == "waiting":  # another process holds this key's lease (it may be dead)
                p["waiting_for"] = event.get("holder") or "another process"
                p["waiting_expires_in"] = event.get("expires_in")
            elif kind == "start":
                p.pop("waiting_for", None)
                p.update(total_steps=event["total_steps"], stages=event.get("stages", []))
                if job.kind == "run":
                    p.update(
                        n_tasks=event["n_tasks"],
                        n_phases=event["n_phases"],
                        baseline=event["baseline"],
                        R=[list(r) for r in event["R"]],
                        resumed_at=event["resumed_at"],
                    )
            elif kind == "task_start":
                p.update(phase=event["phase"], step=0)
            elif kind == "progress":
                p.update(
                    {
                        k: event[k]
                        for k in ("stage", "phase", "step", "total", "global_step", "total_steps")
                        if event.get(k) is not None
                    }
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
        except Exception:  # progress is a courtesy to other processes; the job goes on
            log.warning("could not write progress of %s", job.key, exc_info=True)


FINISHED_WITH_RESULT = ("done", "diverged", "partial")


def server_stopping() -> bool:
    """True once the main thread (Streamlit's loop, or the CLI's) has ended: SIGTERM, Ctrl-C."""
    return not threading.main_thread().is_alive()


def _progress_of_result(result: dict) -> dict:
    R = result.get("R") or []
    curves = result.get("curves") or {}
    steps = curves.get("step") or [0]
    return {
        **_empty_progress(len(R) or None),
        "R": R,
        "baseline": result.get("baseline"),
        "curves": {"step": list(curves.get("step", [])), "acc": list(curves.get("acc", []))},
        "total_steps": steps[-1] if isinstance(steps, list) and steps else 0,
        "global_step": steps[-1] if isinstance(steps, list) and steps else 0,
    }


def _execute(kind: str, config: dict, store, on_event, cancel) -> tuple[str, Any]:
    """Run one computation; the outcome as (kind, payload): ("result", result dict),
    ("cancelled", ""), or ("error", one line)."""
    try:
        result = execute(kind, config, on_event=on_event, store=store, cancel=cancel)
    except (Cancelled, BrokenPipeError, EOFError):  # stopped, or the server went away
        return "cancelled", ""
    except (ConfigError, DataUnavailable) as err:  # e.g. a dataset that is not on this machine
        return "error", str(err)
    except MemoryError:
        return "error", "stopped: out of memory (over this server's memory limit per job)"
    except Exception as err:
        if "out of memory" in str(err).lower() or "can't allocate" in str(err).lower():
            return "error", "stopped: out of memory (over this server's memory limit per job)"
        log.exception("job failed")
        return "error", f"{type(err).__name__}: {err}"
    return "result", result


def _forget_env() -> dict[str, str]:
    """The engine's settings (FORGET_*) as they are now, for a job's process: the forkserver
    started with the environment of its first use."""
    return {k: v for k, v in os.environ.items() if k.startswith("FORGET_")}


def _child_main(
    conn, stop, kind: str, config: dict, store_dir: str, env: dict[str, str], memory: int | None
) -> None:
    """Body of a job's process: execute, sending events to the parent; each row of R waits for
    the parent's acknowledgement, so a cancel decided on seeing a row stops before the next
    step. ``memory``: bytes this process may allocate beyond what it maps at start (hosted)."""
    for k in [k for k in os.environ if k.startswith("FORGET_")]:
        del os.environ[k]
    os.environ.update(env)
    if memory is not None:
        limit_address_space(memory)

    def on_event(event: dict) -> None:
        conn.send(("event", event))
        if event["type"] == "row":
            conn.recv()

    try:
        conn.send(_execute(kind, config, Store(store_dir), on_event, stop.is_set))
    except (BrokenPipeError, EOFError):  # the parent went away: nobody is waiting for this job
        pass
    finally:
        conn.close()


def limit_address_space(extra: int) -> None:
    """Cap this process's address space at what it maps now plus ``extra`` bytes: past it an
    allocation fails (MemoryError, or torch's "can't allocate"), and the job ends with a clear
    message instead of taking the server's memory."""
    try:  # Linux: the first field of statm is the mapped size in pages
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):  # elsewhere: no limit rather than a wrong one
        return
    limit = pages * os.sysconf("SC_PAGE_SIZE") + int(extra)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# Imported once in the forkserver, so each job's process starts without importing torch again.
PRELOAD = (
    "torch",
    "torch._dynamo",  # imported by the first optimizer constructed: seconds, once
    "engine.executor",
    "engine.kinds",
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

    global _context
    if _context is None:
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(list(PRELOAD))
        else:
            ctx = multiprocessing.get_context("spawn")
        _context = ctx
    return _context


def start_job_processes() -> None:
    """Start the process server that runs jobs, and import what cost estimates need, in the
    background — at server start (app.serve) rather than on the first page view."""

    def load() -> None:
        try:
            ctx = _process_context()
            if ctx.get_start_method() == "forkserver":
                with _plain_main():
                    forkserver.ensure_running()
            kinds.estimate("run", kinds.prepare("run", {})[0])  # torch's meta kernels, once
        except Exception:  # an optimisation: the first job starts them instead
            log.debug("starting the job processes failed", exc_info=True)

    threading.Thread(target=load, name="forget-start", daemon=True).start()


def _default_workers() -> int:
    return 2 if torch.cuda.is_available() else 1


_manager: JobManager | None = None
_manager_lock = threading.Lock()


def get_manager(hosted: bool | None = None) -> JobManager:
    """The process-wide manager (remade when the store directory or the mode changes).

    ``hosted`` comes from the app's secrets; FORGET_HOSTED=1 turns hosted mode on regardless.
    """

    global _manager
    want = hosted_from_env() or bool(hosted)
    with _manager_lock:
        if _manager is None or _manager.store_dir != cache_dir() or _manager.hosted != want:
            if _manager is not None:
                _manager.shutdown(wait=False)
            _manager = JobManager(hosted=want)
        return _manager
