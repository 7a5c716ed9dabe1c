"""`python -m engine …`: the command line. Each verb lives in engine/commands/<verb>.py.

Bad input exits with status 2 and one line on stderr that names the field and what is allowed;
a run that cannot get its data exits 1 with one line saying which files to put where.

``--plugin PATH`` (anywhere on the line, repeatable) loads a plugin file (engine.plugins): it is
taken out of the arguments and added to FORGET_PLUGINS before the verbs — and through them
engine.config and its registries — are imported, so the plugin's strategy, benchmark or model
is a choice like the built-in ones (and sweep workers, started with this environment, load it
too). A plugin that fails to load is one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from engine import plugins
from engine.errors import ConfigError

# The verbs, in the order the help lists them.
COMMANDS = (
    "engine.commands.run",
    "engine.commands.cache",
    "engine.commands.sweep",
    "engine.commands.reproduce",
    "engine.commands.analyze",
    "engine.commands.softmax_rank",
    "engine.commands.report",
)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), never a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def take_plugins(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the arguments without ``--plugin PATH`` / ``--plugin=PATH``, the paths given)."""
    rest, paths = [], []
    it = iter(argv)
    for arg in it:
        if arg == "--":  # what follows is not ours to read
            rest.extend([arg, *it])
        elif arg == "--plugin":
            path = next(it, None)
            if path is None:
                raise ConfigError("--plugin: expected a path to a plugin's .py file")
            paths.append(path)
        elif arg.startswith("--plugin="):
            paths.append(arg.removeprefix("--plugin="))
        else:
            rest.append(arg)
    return rest, paths


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m engine", description="Forgetting Explorer engine")
    # Read before parsing (take_plugins); declared so that --help shows it.
    parser.add_argument(
        "--plugin",
        action="append",
        metavar="PATH",
        help="load a plugin file: its strategy, benchmark or model becomes a choice "
        "(repeatable; also FORGET_PLUGINS; installed plugins load by themselves)",
    )
    subs = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name in COMMANDS:
        importlib.import_module(name).add_parser(subs)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        argv, paths = take_plugins(list(sys.argv[1:] if argv is None else argv))
        plugins.add_paths(paths)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    parser = build_parser()  # imports the verbs, the config and its registries: plugins load
    if plugins.problems():
        for line in plugins.problems():
            print(f"error: {line}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
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
