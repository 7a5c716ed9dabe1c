"""The report as one self-contained HTML document: inline CSS, SVG figures, no script.

A Content-Security-Policy in the document itself forbids every fetch and every script, so the
file opens the same with the network off, and even a field that slipped past escaping could
neither run code nor call out.
"""

from __future__ import annotations

import datetime as dt
import json

from engine.report import renderers, source
from engine.report.blocks import Html, code, details, join, note, pairs, section, tag
from engine.report.command_line import reproduce_command
from engine.version import ENGINE_VERSION

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
# The raw result shown in the page: with the figures of a 100-task run (~2.7 MB) under 5 MB.
MAX_EMBEDDED_JSON = 2**20

CSS = """
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif;
  color: #1d1d1f; background: #fff; max-width: 1180px; margin: 0 auto; padding: 24px 28px; }
header { border-bottom: 2px solid #0072B2; padding-bottom: 10px; margin-bottom: 8px; }
h1 { font-size: 1.6em; margin: 0; }
.summary { color: #444; margin: 2px 0 8px; }
.ids { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 0; color: #444; font-size: .9em; }
.ids dt { display: inline; font-weight: 600; } .ids dd { display: inline; margin: 0 0 0 4px; }
.ids code { font-size: 1em; }
h2 { font-size: 1.2em; margin: 1.6em 0 .5em; border-bottom: 1px solid #ddd; padding-bottom: 2px; }
.metrics { display: flex; flex-wrap: wrap; gap: 10px; }
.metric { border: 1px solid #d6d6d6; border-radius: 6px; padding: 8px 12px; min-width: 130px;
  max-width: 230px; }
.metric .label { color: #444; font-size: .85em; }
.metric .value { font-size: 1.55em; font-weight: 600; font-variant-numeric: tabular-nums; }
.metric .help { color: #666; font-size: .75em; line-height: 1.3; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 18px;
  align-items: start; }
figure { margin: 0; } figcaption { color: #555; font-size: .85em; }
svg text { font-size-adjust: none; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 4px 0; }
caption { text-align: left; color: #555; font-size: .85em; padding-bottom: 2px; }
th, td { padding: 2px 9px; border-bottom: 1px solid #e6e6e6; text-align: right; }
th[scope=row], thead th:first-child { text-align: left; font-weight: 600; }
table.pairs td { text-align: left; } table.pairs th { font-weight: 600; }
.scroll { overflow-x: auto; }
pre { background: #f5f5f7; border: 1px solid #e2e2e2; border-radius: 4px; padding: 10px 12px;
  white-space: pre-wrap; word-break: break-word; font-size: .88em; }
.warning { background: #fff4d6; border: 1px solid #e0b84e; border-radius: 4px; padding: 8px 12px; }
.note { color: #444; }
details summary { cursor: pointer; color: #0072B2; }
footer { margin-top: 2.5em; border-top: 1px solid #ddd; padding-top: 8px; color: #666;
  font-size: .85em; }
@media print {
  body { max-width: none; padding: 0; font-size: 12px; }
  .figures { display: block; } figure { break-inside: avoid; margin-bottom: 12px; }
  section { break-inside: avoid-page; } details { display: none; }
}
"""


def _config_section(config: dict) -> Html:
    """The canonical config, one table per section."""
    top = {k: v for k, v in config.items() if not isinstance(v, dict)}
    parts = [pairs(top, "experiment", exact=True)] if top else []
    for name, value in config.items():
        if isinstance(value, dict):
            parts.append(pairs(value, name, exact=True))
    return section("Config", tag("div", join(parts), class_="figures"), id="config")


def _command_section(result: dict) -> Html:
    cmd = reproduce_command(result)
    if cmd.text is None:
        return section("Reproduce", note(cmd.note, kind="warning"), id="reproduce")
    parts = [
        note(
            "Run this in a checkout of Forgetting Explorer (engine "
            f"{ENGINE_VERSION}) to compute this result again; a stored result with the same "
            "key is read back instead."
        ),
        code(cmd.text, ident="command"),
    ]
    if cmd.note:
        parts.append(note(cmd.note, kind="warning"))
    elif cmd.key:
        parts.append(note(f"The command's key: {cmd.key} (the same as this result's)."))
    return section("Reproduce", *parts, id="reproduce")


def _json_section(result: dict) -> Html:
    text = json.dumps(result, indent=1)
    if len(text) > MAX_EMBEDDED_JSON:
        return section(
            "Result JSON",
            note(
                f"The result's JSON ({len(text) / 2**20:.1f} MB) is left out to keep this file "
                "small; the command above writes it with --json PATH."
            ),
        )
    return section(
        "Result JSON",
        details(f"The whole result as stored ({len(text) / 1024:.0f} kB)", code(text)),
        id="json",
    )


def render(doc: source.Result, generated: dt.datetime | None = None) -> str:
    """The report of a validated result as an HTML document."""
    result = doc.model_dump(mode="json")
    body = renderers.render(doc)
    when = (generated or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    ids = join(
        tag("div", join([tag("dt", k), tag("dd", v)]))
        for k, v in (
            ("key", tag("code", doc.key)),
            ("kind", doc.kind),
            ("status", doc.status),
            ("engine", ENGINE_VERSION),
            ("report made", when),
        )
    )
    header = tag(
        "header",
        join(
            [
                tag("h1", body.title),
                tag("p", body.summary, class_="summary"),
                tag("dl", ids, class_="ids"),
            ]
        ),
    )
    main = tag(
        "main",
        join(
            [
                *body.sections,
                _command_section(result),
                _config_section(doc.config),
                _json_section(result),
            ]
        ),
    )
    footer = tag(
        "footer",
        f"Forgetting Explorer engine {ENGINE_VERSION} · a self-contained report: no script, no "
        "network; figures are SVG (hover a cell or point for its value).",
    )
    head = join(
        [
            Html('<meta charset="utf-8">'),
            Html(f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'),
            Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
            Html(f'<meta name="generator" content="Forgetting Explorer engine {ENGINE_VERSION}">'),
            tag("title", f"{body.title} · {doc.key} · Forgetting Explorer"),
            Html(f"<style>{CSS}</style>"),
        ]
    )
    return f'<!DOCTYPE html>\n<html lang="en">\n<head>{head}</head>\n<body>{header}{main}{footer}</body>\n</html>\n'
