"""``cache merge``: copy the finished results of another store directory into this one.

The other store is untrusted (computed on another machine, handed over, downloaded): it is read
as raw SQLite rows through a read-only connection, never through diskcache (which would unpickle
what it finds, and would write to it). Each ``result:`` entry is checked (a plain string key of
the usual form, a text value held in the row or in a value file inside that store, our wrapper
schema, this engine version, the SHA-256 of its payload) before it is copied; the others are
counted by reason. Only results travel (not checkpoints or analysis extras); a key present in
both stores is the same experiment and is kept as it is here.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections import Counter
from pathlib import Path

from diskcache.core import MODE_PICKLE, MODE_RAW, MODE_TEXT

from engine.config import ConfigError
from engine.safe_disk import is_value_file
from engine.store import Store, unwrap_result
from engine.store_repair import DB_NAME

_KEY = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_ROWS = (
    "SELECT key, raw, expire_time, mode, filename, value FROM Cache"
    " WHERE raw = 0 OR (typeof(key) = 'text' AND substr(key, 1, 7) = 'result:')"
)


def _entry(src_dir: Path, raw: int, mode: int, filename, value) -> tuple[str | None, str | None]:
    """The text of one foreign row, or None and why it is refused."""
    if not raw:
        return None, "pickled key"
    if mode == MODE_PICKLE:
        return None, "pickled value"
    if mode == MODE_RAW:
        return (value, None) if isinstance(value, str) else (None, "not a result")
    if mode != MODE_TEXT:
        return None, "not a result"
    if not is_value_file(filename):
        return None, "file outside the store"
    try:
        return (src_dir / filename).read_text(encoding="utf-8"), None
    except (OSError, UnicodeDecodeError):
        return None, "missing file"


def merge(source: str | os.PathLike, store: Store) -> dict:
    """Copy the valid results of store directory ``source`` that ``store`` lacks.

    Returns counts: ``copied``, ``present`` (already here), ``skipped`` (refused) and ``refused``
    by reason. ``ConfigError`` (one line) when ``source`` is not a readable store.
    """
    src_dir = Path(source).expanduser()
    db = src_dir / DB_NAME
    if not db.is_file():
        raise ConfigError(f"cache merge: {str(source)!r} is not a result store (no cache.db in it)")
    if src_dir.resolve() == store.directory.resolve():
        raise ConfigError(f"cache merge: {str(source)!r} is this store itself")
    counts = {"copied": 0, "present": 0, "skipped": 0}
    refused: Counter[str] = Counter()
    now = time.time()
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error as err:
        raise ConfigError(f"cache merge: cannot open {str(db)!r} ({err})") from None
    try:
        for key, raw, expire_time, mode, filename, value in con.execute(_ROWS):
            if expire_time is not None and expire_time <= now:
                continue  # gone from that store in all but name
            text, why = _entry(src_dir, raw, mode, filename, value)
            name = key[len("result:") :] if isinstance(key, str) else ""
            if why is None and not _KEY.fullmatch(name):
                why = "bad key"
            data = None
            if why is None:
                data, why = unwrap_result(text)
            if why is not None:
                refused[why] += 1
            elif store.has_result(name):
                counts["present"] += 1
            else:
                store.put_result(name, data)
                counts["copied"] += 1
    except sqlite3.DatabaseError as err:
        raise ConfigError(
            f"cache merge: {str(db)!r} is damaged ({err}); "
            f"{counts['copied']} results copied before it"
        ) from None
    finally:
        con.close()
    counts["skipped"] = sum(refused.values())
    return {**counts, "refused": dict(refused.most_common())}


def summary(counts: dict) -> str:
    """The line ``cache merge`` prints after the directories: copied, present, refused by reason."""
    line = (
        f"{counts['copied']} copied, {counts['present']} already here, {counts['skipped']} skipped"
    )
    reasons = ", ".join(f"{n} {why}" for why, n in counts["refused"].items())
    return f"{line} (refused: {reasons})" if reasons else line
