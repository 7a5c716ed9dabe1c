"""Damaged store databases: tell them apart cheaply, confirm, move them aside.

A damaged ``cache.db`` (truncated by a full disk, overwritten, not SQLite at all) would otherwise
end every read and write in ``sqlite3.DatabaseError``, the recovery command included. The store
checks the file header when it opens (constant time, however big the store) and treats SQLite's
"corrupt" and "not a database" errors as damage whenever they come; damage is confirmed with
``PRAGMA quick_check`` (a full read, so only on this rare path) before the database and its value
files are moved into ``damaged-<UTC time>/`` beside them, for whoever wants to look.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

DB_NAME = "cache.db"
_HEADER = b"SQLite format 3\x00"
_CORRUPT, _NOTADB = 11, 26  # SQLite's primary result codes for a damaged file
_VALUE_DIR = re.compile(r"[0-9a-f]{2}")


def is_damage(err: BaseException) -> bool:
    """Whether an exception is SQLite saying the database file is damaged (not busy, not I/O)."""
    code = getattr(err, "sqlite_errorcode", None)
    return (
        isinstance(err, sqlite3.DatabaseError)
        and code is not None
        and code & 0xFF
        in (
            _CORRUPT,
            _NOTADB,
        )
    )


def header_damage(db: Path) -> str | None:
    """What is wrong with ``db``'s header, or None (also for a missing or empty file).

    Reads 100 bytes: the SQLite magic, and the page count times the page size against the file's
    size, which catches truncation however large the database is.
    """
    try:
        with open(db, "rb") as fh:
            head, size = fh.read(100), os.fstat(fh.fileno()).st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None
    if len(head) < 100 or not head.startswith(_HEADER):
        return "file is not a database"
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    # The page count is only meaningful while its "valid-for" counter matches the change counter.
    if head[92:96] == head[24:28] and size < pages * page_size:
        return f"database truncated ({size} of {pages * page_size} bytes)"
    return None


def confirmed_damage(db: Path) -> str | None:
    """Ask SQLite itself (``PRAGMA quick_check``): what is wrong with ``db``, or None if sound.

    A header can look short for a moment while another process checkpoints, so a suspicion is
    always confirmed before anything is moved.
    """
    reason = None
    con = None
    try:
        con = sqlite3.connect(db, timeout=60)
        rows = con.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            reason = f"database disk image is malformed ({rows[0][0]})"
    except sqlite3.DatabaseError as err:
        if not is_damage(err):
            raise
        reason = str(err)
    finally:
        if con is not None:
            con.close()
    return reason


@contextlib.contextmanager
def repair_lock(directory: Path) -> Iterator[None]:
    """One process at a time decides about and moves a damaged database in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)  # it may have been removed under a running app
    with open(directory / ".repair.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def move_aside(directory: Path) -> Path:
    """Move the database (with its -wal and -shm) and its value files into a new
    ``damaged-<UTC time>`` folder; returns the moved database's path."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = directory / f"damaged-{stamp}"
    target.mkdir()
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            (directory / f"{DB_NAME}{suffix}").rename(target / f"{DB_NAME}{suffix}")
    # The value files belong to the moved database: the fresh one would never count or cull them.
    for sub in directory.iterdir():
        if _VALUE_DIR.fullmatch(sub.name) and sub.is_dir():
            with contextlib.suppress(OSError):
                sub.rename(target / sub.name)
    return target / DB_NAME


def inode(db: Path) -> int | None:
    try:
        return db.stat().st_ino
    except FileNotFoundError:
        return None
