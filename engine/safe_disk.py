"""A diskcache ``Disk`` that never pickles and never unpickles.

diskcache's default ``Disk`` pickles any key or value that is not a string, bytes or a number,
and unpickles such rows on read: whoever can write the store's directory could then run code in
every process that reads it. This one keeps str, bytes and numbers only (stored raw, as diskcache
does), refuses to pickle on write (``TypeError``), and on read refuses a pickled row or one whose
file lies outside the store (``RefusedRow``, an ``OSError``: diskcache then answers "missing",
and the store drops the row).
"""

from __future__ import annotations

import re

import diskcache
from diskcache.core import MODE_BINARY, MODE_PICKLE, MODE_RAW, MODE_TEXT, UNKNOWN

_INT64 = range(-(2**63), 2**63)
# The names diskcache's Disk.filename makes: two levels of hex folders, then a hex file name.
_VALUE_FILE = re.compile(r"[0-9a-f]{2}[/\\][0-9a-f]{2}[/\\][0-9a-f]{28}\.val")


class RefusedRow(OSError):
    """A stored row the store will not load (its ``reason`` says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PickledKey(bytes):
    """A key diskcache stored pickled, as listed by ``iterkeys``: its bytes, never loaded."""


def is_value_file(name: object) -> bool:
    """Whether ``name`` is a value file diskcache could have made (relative, inside the store)."""
    return isinstance(name, str) and _VALUE_FILE.fullmatch(name) is not None


def _plain(value: object) -> bool:
    kind = type(value)
    return kind in (str, bytes, float) or (kind is int and value in _INT64)


class SafeDisk(diskcache.Disk):
    def put(self, key):
        if not _plain(key):
            raise TypeError(
                f"store keys are str, bytes or numbers, not {type(key).__name__}: "
                "the store never pickles"
            )
        return super().put(key)

    def get(self, key, raw):
        # A pickled key is listed as its bytes, never loaded.
        return super().get(key, raw) if raw else PickledKey(key)

    def store(self, value, read, key=UNKNOWN):
        if not (read or _plain(value)):
            raise TypeError(
                f"the store keeps str or bytes, not {type(value).__name__}: it never pickles"
            )
        return super().store(value, read, key=key)

    def fetch(self, mode, filename, value, read):
        if mode == MODE_PICKLE:
            raise RefusedRow("pickled value")
        if mode not in (MODE_RAW, MODE_BINARY, MODE_TEXT):
            raise RefusedRow("unknown storage mode")
        if mode != MODE_RAW and not is_value_file(filename):
            raise RefusedRow("file outside the store")
        return super().fetch(mode, filename, value, read)

    def remove(self, file_path):
        # A row naming any other path must not make the store delete that file.
        if is_value_file(file_path):
            super().remove(file_path)
