"""The result store: a diskcache (SQLite + files) keyed by config key, that never pickles.

On disk, in the store's directory (``FORGET_CACHE_DIR``, default ``cache/``):

* ``cache.db``: diskcache's SQLite table ``Cache``, one row per entry; a value under 32 KiB sits
  in its row, a bigger one in a value file ``xx/yy/<hex>.val`` beside the database. Keys are
  strings and values str or bytes only (``engine.safe_disk.SafeDisk``): nothing is pickled on
  write, and a pickled row (an older or foreign writer's) is refused on read and dropped, never
  loaded. The entries:

  - ``result:<key>`` the finished run: JSON text ``{"engine_version", "sha256", "data"}``,
    ``data`` the result's own JSON and ``sha256`` its digest, so a damaged, foreign or stale
    entry is detected and recomputed rather than served;
  - ``meta:<key>`` a small JSON summary of that result, for listings;
  - ``ckpt:<key>`` the latest per-task checkpoint, so an interrupted run resumes at the next
    task: ``FEC2``, the SHA-256 of the rest (32 bytes), then the state as JSON and safetensors
    (``engine.tensor_tree``);
  - ``progress:<key>`` JSON progress of a running job (for the app's live view; expires in a day);
  - ``lease:<key>`` the owner id of the process computing ``key`` (expires unless renewed);
  - ``extra:<key>:<name>`` bytes or text that analyses attach to a run (activation recordings).

* ``damaged-<UTC time>/``: a damaged database with its value files, moved aside when found
  (``engine.store_repair``, serialized by ``.repair.lock``); a fresh ``cache.db`` takes its place.
  Nothing deletes these folders: look, then remove them.

Each write is one SQLite transaction, so readers see the old value or the new one, never half.
Least-recently-used entries are evicted once the store passes its size cap.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import diskcache

from engine.safe_disk import SafeDisk
from engine.store_repair import (
    DB_NAME,
    confirmed_damage,
    header_damage,
    inode,
    is_damage,
    move_aside,
    repair_lock,
)
from engine.tensor_tree import pack, unpack
from engine.version import ENGINE_VERSION

DEFAULT_DIR = Path(__file__).resolve().parents[1] / "cache"
_CKPT_MAGIC = b"FEC2"  # FEC1 was torch.save bytes: no longer read (the run starts over)
_ABSENT = object()
log = logging.getLogger(__name__)


def cache_dir() -> Path:
    return Path(os.environ.get("FORGET_CACHE_DIR", DEFAULT_DIR)).expanduser()


def _size_limit() -> int:
    return int(float(os.environ.get("FORGET_CACHE_SIZE_MB", "4096")) * 2**20)


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _json_dict(text: Any) -> dict | None:
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def unwrap_result(text: Any) -> tuple[dict | None, str | None]:
    """The result a stored ``result:`` value holds, or None and why not: "not a result",
    "other engine version" or "bad checksum"."""
    wrapper = _json_dict(text)
    if wrapper is None or not all(isinstance(wrapper.get(f), str) for f in ("data", "sha256")):
        return None, "not a result"
    if wrapper.get("engine_version") != ENGINE_VERSION:
        return None, "other engine version"
    try:
        intact = wrapper["sha256"] == _digest(wrapper["data"].encode())
    except UnicodeEncodeError:
        intact = False
    if not intact:
        return None, "bad checksum"
    data = _json_dict(wrapper["data"])
    return (data, None) if data is not None else (None, "not a result")


# (database path, inode) whose header this process has checked: SQLite holds it open since.
_HEADER_CHECKED: set[tuple[str, int | None]] = set()


def _guarded(method):
    """Run a store method on the current database: follow it when another process has moved it
    aside (one stat), and if SQLite finds it damaged, move it aside and run again on a fresh one
    (a long-lived store, such as the app's, must not be locked out or left on the old file)."""

    @functools.wraps(method)
    def wrapper(self: Store, *args, **kwargs):
        opened = self._inode
        if inode(self._db) != opened:
            self._recover(None, opened)
            opened = self._inode
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as err:
            if not is_damage(err):
                raise
            self._recover(str(err), opened)
            return method(self, *args, **kwargs)

    return wrapper


class Store:
    """Thin, typed access to the diskcache; safe to use from several threads and processes."""

    def __init__(
        self, directory: str | os.PathLike | None = None, size_limit: int | None = None
    ) -> None:
        self.directory = Path(directory) if directory is not None else cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._size_limit = size_limit or _size_limit()
        self._lock = threading.Lock()
        self._inode: int | None = None
        self._db = db = self.directory / DB_NAME
        # A constant-time look at the header first: SQLite may open a truncated file happily
        # and fail only on the first page it lacks. Only before this process has the database
        # open: closing any file descriptor of it drops every POSIX lock SQLite holds on it in
        # this process, and another process's writes then corrupt what this one reads.
        suspect = inode(db)
        checked = (str(db.resolve()), suspect) in _HEADER_CHECKED
        reason = None if checked else header_damage(db)
        if reason is None:
            try:
                self.cache = self._connect()
                _HEADER_CHECKED.add((str(db.resolve()), self._inode))
                return
            except sqlite3.DatabaseError as err:
                if not is_damage(err):
                    raise
                reason = str(err)
        self._recover(reason, suspect)

    def __getstate__(self) -> dict:  # to hand a store to another process: reopen it there
        return {"directory": self.directory, "size_limit": self._size_limit}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["directory"], state["size_limit"])

    def _connect(self) -> diskcache.Cache:
        cache = diskcache.Cache(
            str(self.directory),
            size_limit=self._size_limit,
            eviction_policy="least-recently-used",
            timeout=60,
            disk=SafeDisk,
        )
        self._inode = inode(self.directory / DB_NAME)
        return cache

    def _recover(self, reason: str | None, suspect: int | None) -> None:
        """Reopen the database after ``reason`` suggested it (``suspect`` its inode) is damaged,
        or it was moved (``reason`` None). Unless another thread or process has dealt with it
        already, damage is confirmed and the database moved aside first."""
        with self._lock, repair_lock(self.directory):
            if getattr(self, "cache", None) is not None:
                if self._inode != suspect:
                    return  # another thread of ours reopened already
                self.cache.close()
            if reason is not None and suspect is not None and inode(self._db) == suspect:
                confirmed = confirmed_damage(self._db)
                if confirmed is not None:
                    moved = move_aside(self.directory)
                    log.warning(
                        "store: %s; moved the damaged database to %s and opened a fresh store",
                        confirmed,
                        moved,
                    )
            self.cache = self._connect()

    def _read(self, name: str) -> Any:
        """The value stored under ``name``, or None. A row that exists but cannot be loaded
        (pickled, its file gone or outside the store) is dropped, so it is recomputed."""
        value = self.cache.get(name, default=_ABSENT, retry=True)
        if value is not _ABSENT:
            return value
        if name in self.cache:
            with self.cache.transact(retry=True):  # still unreadable, and not just rewritten
                if self.cache.get(name, default=_ABSENT) is _ABSENT and name in self.cache:
                    self.cache.delete(name)
        return None

    # -- finished results ------------------------------------------------------------------
    @_guarded
    def get_result(self, key: str) -> dict | None:
        """The stored result, or None when absent, from another engine version, or damaged."""
        text = self._read(f"result:{key}")
        if text is None:
            return None
        data, _ = unwrap_result(text)
        if data is None:  # damaged or stale: drop it so the run is recomputed, never served
            self.cache.delete(f"result:{key}")
        else:  # a read counts as use for the LRU cull: keep its listing row alive with it
            self.cache.get(f"meta:{key}")
        return data

    @_guarded
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

    @_guarded
    def has_result(self, key: str) -> bool:
        return f"result:{key}" in self.cache

    # -- checkpoints -------------------------------------------------------------------------
    @_guarded
    def put_checkpoint(self, key: str, state: dict[str, Any]) -> None:
        payload = pack(state)
        digest = hashlib.sha256(payload).digest()
        self.cache.set(f"ckpt:{key}", _CKPT_MAGIC + digest + payload)

    @_guarded
    def get_checkpoint(self, key: str) -> dict[str, Any] | None:
        name = f"ckpt:{key}"
        blob = self._read(name)
        if blob is None:
            return None
        if isinstance(blob, bytes) and blob.startswith(_CKPT_MAGIC):
            digest, payload = blob[4:36], blob[36:]
            if hashlib.sha256(payload).digest() == digest:
                try:
                    state = unpack(payload)
                except (ValueError, RecursionError):
                    state = None
                if isinstance(state, dict):
                    return state
        # Damaged, or of an older format: as good as none, so the run starts over.
        self.cache.delete(name)
        return None

    @_guarded
    def delete_checkpoint(self, key: str) -> None:
        self.cache.delete(f"ckpt:{key}")

    # -- leases: one computation per key across threads and processes ------------------------
    @_guarded
    def try_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Claim ``key`` for ``owner`` unless someone else holds an unexpired claim (atomic)."""
        name = f"lease:{key}"
        if self.cache.add(name, owner, expire=ttl, retry=True):
            return True
        holder = self._read(name)
        if holder is None:  # expired or unreadable (and dropped) since the add: try once more
            return bool(self.cache.add(name, owner, expire=ttl, retry=True))
        return holder == owner

    @_guarded
    def renew_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Heartbeat: extend our claim; False when another owner holds it."""
        name = f"lease:{key}"
        with self.cache.transact(retry=True):
            holder = self.cache.get(name)
            if holder not in (None, owner):
                return False
            self.cache.set(name, owner, expire=ttl)
            return True

    @_guarded
    def release_lease(self, key: str, owner: str) -> None:
        name = f"lease:{key}"
        with self.cache.transact(retry=True):
            if self.cache.get(name) == owner:
                self.cache.delete(name)

    @_guarded
    def lease_holder(self, key: str) -> str | None:
        holder = self._read(f"lease:{key}")
        return holder if isinstance(holder, str) else None

    @_guarded
    def lease_expires_in(self, key: str) -> float | None:
        """Seconds until the claim on ``key`` expires unless renewed; None when nobody holds it."""
        holder, expires = self.cache.get(f"lease:{key}", expire_time=True, retry=True)
        if not isinstance(holder, str):
            return None
        return float("inf") if expires is None else max(0.0, expires - time.time())

    # -- live progress -----------------------------------------------------------------------
    @_guarded
    def set_progress(self, key: str, progress: dict) -> None:
        self.cache.set(f"progress:{key}", json.dumps(progress), expire=24 * 3600)

    @_guarded
    def get_progress(self, key: str) -> dict | None:
        return _json_dict(self._read(f"progress:{key}"))

    @_guarded
    def clear_progress(self, key: str) -> None:
        self.cache.delete(f"progress:{key}")

    # -- analysis products ---------------------------------------------------------------------
    @_guarded
    def put_extra(self, key: str, name: str, value: bytes | str) -> None:
        if not isinstance(value, (bytes, str)):
            raise TypeError(f"extras are bytes or str, not {type(value).__name__}")
        self.cache.set(f"extra:{key}:{name}", value)

    @_guarded
    def get_extra(self, key: str, name: str) -> bytes | str | None:
        value = self._read(f"extra:{key}:{name}")
        return value if isinstance(value, (bytes, str)) else None

    # -- browsing and housekeeping ---------------------------------------------------------
    @_guarded
    def list_results(self) -> list[dict]:
        """Summaries (config, metrics, when, how long) of every stored result, newest first."""
        rows = []
        for k in list(self.cache.iterkeys()):
            if isinstance(k, str) and k.startswith("meta:"):
                meta = _json_dict(self._read(k))
                if meta is not None and f"result:{k[5:]}" in self.cache:
                    rows.append(meta)
        return sorted(rows, key=lambda r: r.get("saved_at", 0), reverse=True)

    @_guarded
    def delete(self, key: str) -> None:
        with self.cache.transact():
            for prefix in ("result", "meta", "ckpt", "progress", "lease"):
                self.cache.delete(f"{prefix}:{key}")
            for k in list(self.cache.iterkeys()):
                if isinstance(k, str) and k.startswith(f"extra:{key}:"):
                    self.cache.delete(k)

    @_guarded
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

    @_guarded
    def clear(self) -> int:
        """Remove everything; returns how many entries there were."""
        return int(self.cache.clear(retry=True))

    def close(self) -> None:
        self.cache.close()
