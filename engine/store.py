"""The result store: a diskcache (SQLite + files) keyed by config key.

What it holds, per key:
* ``result:<key>``  the finished run as JSON text (never pickled), wrapped with the engine
                    version and a SHA-256 of the payload, so a damaged or foreign entry is
                    detected and recomputed rather than served;
* ``ckpt:<key>``    the latest per-task checkpoint (torch.save bytes, loaded with
                    ``weights_only=True``), so an interrupted run resumes at the next task;
* ``progress:<key>`` the live progress of a running job (for the app's live view);
* ``extra:<key>:<name>`` analysis products attached to a run (activations, probes …).

Each write is one SQLite transaction, so readers see the old value or the new one, never half.
Least-recently-used entries are evicted once the store passes its size cap.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import diskcache

from engine.version import ENGINE_VERSION

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "cache"
_MAGIC = b"FEC1"


def cache_dir() -> Path:
    return Path(os.environ.get("FORGET_CACHE_DIR", DEFAULT_DIR)).expanduser()


def _size_limit() -> int:
    return int(float(os.environ.get("FORGET_CACHE_SIZE_MB", "4096")) * 2**20)


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


class Store:
    """Thin, typed access to the diskcache; safe to use from several threads and processes."""

    def __init__(
        self, directory: str | os.PathLike | None = None, size_limit: int | None = None
    ) -> None:
        self.directory = Path(directory) if directory is not None else cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cache = diskcache.Cache(
            str(self.directory),
            size_limit=size_limit or _size_limit(),
            eviction_policy="least-recently-used",
            timeout=60,
        )

    # -- finished results ------------------------------------------------------------------
    def get_result(self, key: str) -> dict | None:
        """The stored result, or None when absent, from another engine version, or damaged."""
        text = self.cache.get(f"result:{key}")
        if text is None:
            return None
        try:
            wrapper = json.loads(text)
            payload = wrapper["data"]
            ok = wrapper.get("engine_version") == ENGINE_VERSION and wrapper.get(
                "sha256"
            ) == _digest(payload.encode())
            data = json.loads(payload) if ok else None
        except (ValueError, KeyError, TypeError, AttributeError):
            data = None
        if data is None:  # damaged or stale: drop it so the run is recomputed, never served
            self.cache.delete(f"result:{key}")
        else:  # a read counts as use for the LRU cull: keep its listing row alive with it
            self.cache.get(f"meta:{key}")
        return data

    def put_result(self, key: str, result: dict) -> None:
        payload = json.dumps(result, separators=(",", ":"))
        wrapper = {
            "engine_version": ENGINE_VERSION,
            "sha256": _digest(payload.encode()),
            "data": payload,
        }
        meta = {
            "key": key,
            "saved_at": time.time(),
            "status": result.get("status", "done"),
            "config": result.get("config"),
            "metrics": result.get("metrics"),
            "timing": result.get("timing"),
            "kind": result.get("kind", "run"),
        }
        with self.cache.transact():
            self.cache.set(f"result:{key}", json.dumps(wrapper))
            self.cache.set(f"meta:{key}", json.dumps(meta))

    def has_result(self, key: str) -> bool:
        return f"result:{key}" in self.cache

    # -- checkpoints -------------------------------------------------------------------------
    def put_checkpoint(self, key: str, state: dict[str, Any]) -> None:
        import torch

        buf = io.BytesIO()
        torch.save(state, buf)
        payload = buf.getvalue()
        self.cache.set(f"ckpt:{key}", _MAGIC + bytes.fromhex(_digest(payload)) + payload)

    def get_checkpoint(self, key: str) -> dict[str, Any] | None:
        import torch

        blob = self.cache.get(f"ckpt:{key}")
        if not isinstance(blob, bytes) or not blob.startswith(_MAGIC):
            return None
        digest, payload = blob[4:36], blob[36:]
        if bytes.fromhex(_digest(payload)) != digest:
            self.cache.delete(f"ckpt:{key}")
            return None
        try:
            return torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
        except Exception:  # an unreadable checkpoint is as good as none: start the run over
            self.cache.delete(f"ckpt:{key}")
            return None

    def delete_checkpoint(self, key: str) -> None:
        self.cache.delete(f"ckpt:{key}")

    # -- leases: one computation per key across threads and processes ------------------------
    def try_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Claim ``key`` for ``owner`` unless someone else holds an unexpired claim (atomic)."""
        name = f"lease:{key}"
        if self.cache.add(name, owner, expire=ttl, retry=True):
            return True
        return self.cache.get(name, retry=True) == owner

    def renew_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Heartbeat: extend our claim; False when another owner holds it."""
        name = f"lease:{key}"
        with self.cache.transact(retry=True):
            holder = self.cache.get(name)
            if holder not in (None, owner):
                return False
            self.cache.set(name, owner, expire=ttl)
            return True

    def release_lease(self, key: str, owner: str) -> None:
        name = f"lease:{key}"
        with self.cache.transact(retry=True):
            if self.cache.get(name) == owner:
                self.cache.delete(name)

    def lease_holder(self, key: str) -> str | None:
        return self.cache.get(f"lease:{key}", retry=True)

    # -- live progress -----------------------------------------------------------------------
    def set_progress(self, key: str, progress: dict) -> None:
        self.cache.set(f"progress:{key}", json.dumps(progress), expire=24 * 3600)

    def get_progress(self, key: str) -> dict | None:
        text = self.cache.get(f"progress:{key}")
        return json.loads(text) if text else None

    def clear_progress(self, key: str) -> None:
        self.cache.delete(f"progress:{key}")

    # -- analysis products ---------------------------------------------------------------------
    def put_extra(self, key: str, name: str, value: bytes | str) -> None:
        self.cache.set(f"extra:{key}:{name}", value)

    def get_extra(self, key: str, name: str) -> bytes | str | None:
        return self.cache.get(f"extra:{key}:{name}")

    # -- browsing and housekeeping ---------------------------------------------------------
    def list_results(self) -> list[dict]:
        """Summaries (config, metrics, when, how long) of every stored result, newest first."""
        rows = []
        for k in list(self.cache.iterkeys()):
            if isinstance(k, str) and k.startswith("meta:"):
                text = self.cache.get(k, retry=True)
                if text and f"result:{k[5:]}" in self.cache:
                    rows.append(json.loads(text))
        return sorted(rows, key=lambda r: r.get("saved_at", 0), reverse=True)

    def delete(self, key: str) -> None:
        with self.cache.transact():
            for prefix in ("result", "meta", "ckpt", "progress", "lease"):
                self.cache.delete(f"{prefix}:{key}")
            for k in list(self.cache.iterkeys()):
                if isinstance(k, str) and k.startswith(f"extra:{key}:"):
                    self.cache.delete(k)

    def info(self) -> dict:
        keys = [k for k in self.cache.iterkeys() if isinstance(k, str)]
        return {
            "directory": str(self.directory),
            "results": sum(k.startswith("result:") for k in keys),
            "checkpoints": sum(k.startswith("ckpt:") for k in keys),
            "running": sum(k.startswith("progress:") for k in keys),
            "entries": len(keys),
            "size_bytes": int(self.cache.volume()),
            "size_limit_bytes": int(self.cache.size_limit),
            "engine_version": ENGINE_VERSION,
        }

    def clear(self) -> int:
        """Remove everything; returns how many entries there were."""
        return int(self.cache.clear(retry=True))

    def close(self) -> None:
        self.cache.close()
