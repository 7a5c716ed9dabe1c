"""CLI verbs, one module each; every module has ``add_parser(subparsers)`` that sets ``func``."""

import json
import sys
from typing import Any


def write_json(target: str, data: Any, indent: int = 1) -> None:
    """The ``--json`` option of every verb: ``-`` writes to stdout, anything else is a file."""
    text = json.dumps(data, indent=indent)
    if target == "-":
        sys.stdout.write(text + "\n")
    else:
        with open(target, "w") as fh:
            fh.write(text)
