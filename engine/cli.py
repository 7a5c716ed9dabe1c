"""`python -m engine …`: the command line. Each verb lives in engine/commands/<verb>.py.

Bad input exits with status 2 and one line on stderr that names the field and what is allowed;
a run that cannot get its data exits 1 with one line saying which files to put where.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from engine.config import ConfigError

# The verbs, in the order the help lists them.
COMMANDS = (
    "engine.commands.run",
    "engine.commands.cache",
    "engine.commands.sweep",
    "engine.commands.analyze",
    "engine.commands.softmax_rank",
    "engine.commands.report",
)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), never a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m engine", description="Forgetting Explorer engine")
    subs = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name in COMMANDS:
        importlib.import_module(name).add_parser(subs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted: finished tasks are saved; run the same command again to resume",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
