"""The one executor: key → store → lease → compute (with per-phase checkpoints) → store.

Every computation of every kind — a continual run, a tunnel experiment, a softmax curve, the
training a lesson needs — goes through :func:`execute`, whoever asks (the CLI, a sweep worker,
the job manager's worker processes, a nested computation):

1. the raw spec is validated and made canonical, and its key derived (bad input: ConfigError,
   before anything is built);
2. a stored result under the key is returned at once (``cached: true``);
3. otherwise one process at a time computes a key: it takes the key's lease (renewed by a
   heartbeat, so a dead holder loses it within the lease's time to live); others wait for its
   result, or take over — resuming from its checkpoint — when the lease expires;
4. the kind's ``compute(spec, ctx)`` runs, checkpointing where the kind can resume;
5. the result — the kind's body in a common envelope (kind, key, config, status, message,
   metrics, timing, device) — is stored, the checkpoint dropped, and a ``done`` event sent.

With ``use_cache=False`` nothing is read from or written to a store (sweep workers, benches).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from engine import kinds
from engine.config import ExperimentConfig, resolve
from engine.errors import Cancelled
from engine.estimate import check_fits, memory_floor
from engine.kinds.base import ComputeContext, EventFn, clean
from engine.store import Store

log = logging.getLogger(__name__)
ENVELOPE = ("kind", "key", "config", "status", "message", "metrics", "timing", "device")


def lease_ttl() -> float:
    return float(os.environ.get("FORGET_LEASE_TTL", "30"))


def execute(
    kind: str,
    spec: Any = None,
    on_event: EventFn | None = None,
    store: Store | None = None,
    use_cache: bool = True,
    cancel: Callable[[], bool] | None = None,
) -> dict:
    """Run (or fetch) one computation of ``kind``; its result dict (see the module docstring)."""
    spec, key = kinds.prepare(kind, spec)
    if not use_cache:
        return _compute(kind, spec, key, None, on_event, cancel, use_cache=False)
    store = store if store is not None else Store()
    hit = store.get_result(key)
    if hit is not None:
        return _cached(kind, key, hit, on_event)
    owner = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"
    ttl = lease_ttl()
    announced = False
    while not store.try_lease(key, owner, ttl):
        if not announced:
            _emit(
                on_event,
                {
                    "type": "waiting",
                    "kind": kind,
                    "key": key,
                    "holder": store.lease_holder(key),
                    "expires_in": store.lease_expires_in(key),
                },
            )
            announced = True
        time.sleep(min(1.0, ttl / 10))
        if cancel is not None and cancel():
            raise Cancelled(f"cancelled while waiting for {key}")
        hit = store.get_result(key)
        if hit is not None:
            return _cached(kind, key, hit, on_event)
    try:
        hit = store.get_result(key)  # finished by another process just before we got the lease
        if hit is not None:
            return _cached(kind, key, hit, on_event)
        with Heartbeat(store, key, owner, ttl):
            return _compute(kind, spec, key, store, on_event, cancel, use_cache=True)
    finally:
        store.release_lease(key, owner)


def _emit(on_event: EventFn | None, event: dict) -> None:
    if on_event is not None:
        on_event(event)


def _cached(kind: str, key: str, hit: dict, on_event: EventFn | None) -> dict:
    _emit(
        on_event,
        {
            "type": "done",
            "kind": kind,
            "key": key,
            "cached": True,
            "status": hit.get("status", "done"),
            "metrics": hit.get("metrics"),
        },
    )
    return {**hit, "cached": True}


def _compute(kind, spec, key, store, on_event, cancel, use_cache: bool) -> dict:
    check_fits(quick_cost(kind, spec))  # one line before anything is allocated
    ctx = ComputeContext(kind, key, on_event, cancel, store, execute, use_cache=use_cache)
    t0 = time.perf_counter()
    try:
        body = dict(kinds.kind_module(kind).compute(spec, ctx))
    except Cancelled:
        ctx.emit({"type": "cancelled"})
        raise
    timing = {"total_s": round(time.perf_counter() - t0, 3), **(body.pop("timing", None) or {})}
    device = body.pop("device", None) or _device_of(spec)
    result = clean(
        {
            "kind": kind,
            "key": key,
            "config": spec.model_dump(mode="json"),
            "status": body.pop("status", "done"),
            "message": body.pop("message", ""),
            "metrics": body.pop("metrics", {}),
            "timing": timing,
            "device": device,
            **body,
        }
    )
    if store is not None:
        store.put_result(key, result)
        store.delete_checkpoint(key)
    ctx.emit(
        {
            "type": "done",
            "cached": False,
            "status": result["status"],
            "metrics": result["metrics"],
            "message": result["message"],
        }
    )
    return {**result, "cached": False}


def quick_cost(kind: str, spec):
    """Enough of the cost to refuse what cannot fit this machine: for a training, its data and
    weights (engine.estimate.memory_floor); for anything else, its own estimate."""
    if hasattr(spec, "run_config"):  # a run with more (the record kind)
        return memory_floor(resolve(spec.run_config()))
    if isinstance(spec, ExperimentConfig):
        return memory_floor(resolve(spec))
    if hasattr(spec, "training_config"):
        return memory_floor(resolve(spec.training_config()))
    return kinds.estimate(kind, spec)


def _device_of(spec) -> str:
    train = getattr(spec, "train", None)
    return getattr(train, "device", None) or "cpu"


class Heartbeat:
    """Renews a lease every ttl/3 s from a daemon thread, so a live computation keeps its claim
    even through long steps, and a killed one loses it within ttl."""

    def __init__(self, store: Store, key: str, owner: str, ttl: float) -> None:
        self.store, self.key, self.owner, self.ttl = store, key, owner, ttl
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"lease-{key[:8]}")

    def _beat(self) -> None:
        while not self.stop.wait(self.ttl / 3):
            try:
                self.store.renew_lease(self.key, self.owner, self.ttl)
            except Exception:  # a store that went away (cleared, moved): the work goes on
                log.warning("could not renew the lease on %s", self.key, exc_info=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
