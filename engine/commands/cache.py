"""`python -m engine cache {info,clear,merge OTHER_DIR} [--json PATH]`."""

from __future__ import annotations

from engine.commands import write_json
from engine.errors import ConfigError
from engine.store import Store
from engine.store_merge import merge, summary


def add_parser(subs) -> None:
    p = subs.add_parser("cache", help="what the result store holds; clear it")
    p.add_argument("action", choices=("info", "clear", "merge"))
    p.add_argument("other", nargs="?", metavar="OTHER_DIR", help="merge: the store to copy from")
    p.add_argument(
        "--json", metavar="PATH", help="also write the answer as JSON to PATH ('-' = stdout)"
    )
    p.set_defaults(func=main)


def main(args) -> int:
    store = Store()
    if args.action == "merge":
        if not args.other:
            raise ConfigError(
                "cache merge: give the other store's directory (cache merge OTHER_DIR)"
            )
        out = {**merge(args.other, store), "directory": str(store.directory)}
        print(f"merged {args.other} into {out['directory']}: {summary(out)}")
    elif args.action == "info":
        out = store.info()
        for k, v in out.items():
            print(f"{k:>18}: {v}")
    else:
        out = {"removed": store.clear(), "directory": str(store.directory)}
        print(f"removed {out['removed']} entries from {out['directory']}")
    if args.json:
        write_json(args.json, out, indent=2)
    return 0
