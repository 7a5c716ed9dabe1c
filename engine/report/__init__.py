"""Share a result without a server: one self-contained HTML file per stored result.

``render_html(result) -> str`` is the whole API the app needs (a "Download report" button):
it validates the result (a dict as the store or ``--json`` holds it) and returns the document.
The CLI (``python -m engine report KEY --html out.html``) reads the result from the store or a
JSON file first (engine.report.source).

The file has the figures as inline SVG, the metrics, R and curves as tables, the config and
the command that reproduces the result, and the raw JSON; no script and no external URL, so it
opens offline in any browser and prints cleanly.
"""

from __future__ import annotations

import datetime as dt

from engine.report import page, source


def render_html(result: dict, generated: dt.datetime | None = None) -> str:
    """The report of ``result`` (raises engine.config.ConfigError when it is malformed)."""
    return page.render(source.validate_result(result), generated)


__all__ = ["render_html"]
