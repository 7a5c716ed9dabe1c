"""CLI verbs, one module each; every module has ``add_parser(subparsers)`` that sets ``func``."""

import json
import os
import sys
from pathlib import Path
from typing import Any

from engine.errors import ConfigError


def check_writable(target: str) -> None:
    """Refuse a ``--json`` path that cannot be written, before any work starts (a missing folder
    found after an hour of training loses the hour)."""
    if target == "-":
        return
    path = Path(target).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"--json: {target!r} is a folder; give a file path")
    if not folder.is_dir():
        raise ConfigError(f"--json: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--json: {target!r} cannot be written here")


def write_json(target: str, data: Any, indent: int = 1) -> None:
    """The ``--json`` option of every verb: ``-`` writes to stdout, anything else is a file."""
    text = json.dumps(data, indent=indent)
    if target == "-":
        sys.stdout.write(text + "\n")
    else:
        with open(target, "w") as fh:
            fh.write(text)
