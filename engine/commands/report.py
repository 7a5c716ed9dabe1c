"""`python -m engine report KEY --html out.html`: one self-contained HTML file per result.

The result comes from the store (KEY, or a unique beginning of one) or from a result document
(``--json FILE``, as ``run --json`` and ``analyze … --json`` write it). The file opens offline
in any browser: figures as SVG, no script, no external URL (engine.report). A missing key or a
malformed file exits 2 with one line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.config import ConfigError


def add_parser(subs) -> None:
    p = subs.add_parser(
        "report",
        help="write a stored result as one self-contained HTML file (opens offline)",
        description="Write one result (a stored KEY, or --json FILE) as a self-contained HTML "
        "file: SVG figures, metrics, R, the config and the command that reproduces it. It "
        "opens offline in any browser.",
    )
    p.add_argument("key", nargs="?", metavar="KEY", help="a stored result's key (or its start)")
    p.add_argument(
        "--json", metavar="FILE", dest="json_file", help="read the result from FILE instead"
    )
    p.add_argument(
        "--html",
        metavar="PATH",
        help="where to write the report ('-' = stdout; default report-KEY.html)",
    )
    p.set_defaults(func=main)


def main(args) -> int:
    from engine.report import page, source

    if (args.key is None) == (args.json_file is None):
        raise ConfigError("report: give a stored result's KEY or --json FILE (one of them)")
    doc = source.from_file(args.json_file) if args.json_file else source.from_store(args.key)
    html = page.render(doc)
    if args.html == "-":
        sys.stdout.write(html)
        return 0
    out = Path(args.html or f"report-{doc.key}.html")
    try:
        out.write_text(html, encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"--html: cannot write {str(out)!r} ({err.strerror})") from None
    print(f"wrote {out} ({len(html.encode()) / 1024:.0f} kB): {doc.kind} result {doc.key}")
    return 0
