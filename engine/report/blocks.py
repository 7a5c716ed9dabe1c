"""HTML building blocks of a report: text is escaped unless it is :class:`Html` made here.

Every helper takes plain text (escaped on the way in) or :class:`Html` (markup this package
built: tables, SVG figures), so data read from a result never becomes markup by accident.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from engine.report.svg import number


class Html(str):
    """Markup built by this package (safe to insert as it is)."""


def h(value: Any) -> Html:
    """Text escaped for HTML, or :class:`Html` as it is."""
    return value if isinstance(value, Html) else Html(escape(str(value)))


def join(parts: Iterable[Any]) -> Html:
    return Html("".join(h(p) for p in parts))


def tag(name: str, body: Any = "", **attrs: Any) -> Html:
    """``<name attrs>body</name>``; attribute values escaped, ``class_`` → ``class``."""
    text = "".join(
        f' {k.rstrip("_").replace("_", "-")}="{escape(str(v))}"'
        for k, v in attrs.items()
        if v is not None
    )
    return Html(f"<{name}{text}>{h(body)}</{name}>")


# ------------------------------------------------------------------------------- numbers


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def num(v: Any, digits: int = 3, signed: bool = False) -> str:
    """A number with ``digits`` decimals (``+`` shown when ``signed``); '–' when absent."""
    if not is_number(v) or not math.isfinite(v):
        return "–"
    if isinstance(v, int):
        return f"{v:+d}" if signed else str(v)
    if v != 0 and (abs(v) >= 1e6 or abs(v) < 10**-digits):
        return f"{v:+.{digits - 1}e}" if signed else f"{v:.{digits - 1}e}"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def value_text(v: Any) -> str:
    """Any JSON value as short text: numbers formatted, lists comma-separated, objects as JSON."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "true" if v else "false"
    if is_number(v):
        return number(v)
    if isinstance(v, list) and all(not isinstance(x, list | dict) for x in v):
        return ", ".join(value_text(x) for x in v)
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def exact_text(v: Any) -> str:
    """A setting as it is: floats in full (0.002, 1e-05), not rounded for reading."""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list) and all(isinstance(x, float) for x in v):
        return ", ".join(repr(x) for x in v)
    return value_text(v)


def seconds(v: Any) -> str:
    if not is_number(v) or not math.isfinite(v):
        return "–"
    return "< 0.01 s" if 0 <= v < 0.01 else f"{v:.2f} s"


# -------------------------------------------------------------------------------- blocks


def section(title: str, *parts: Any, id: str | None = None) -> Html:
    return tag("section", join([tag("h2", title), *parts]), id=id)


def figure(svg: str, caption: str = "") -> Html:
    """An SVG figure from engine.report.svg (markup: it escapes its own labels) and its caption."""
    return tag("figure", join([Html(svg), tag("figcaption", caption) if caption else ""]))


def figures(items: Iterable[Html]) -> Html:
    return tag("div", join(items), class_="figures")


def tiles(items: Sequence[tuple[str, str, str, str]]) -> Html:
    """Headline numbers: (id, label, value text, explanation) each."""
    return tag(
        "div",
        join(
            tag(
                "div",
                join(
                    [
                        tag("div", label, class_="label"),
                        tag("div", value, class_="value"),
                        tag("div", help_text, class_="help") if help_text else "",
                    ]
                ),
                class_="metric",
                data_metric=ident,
                title=help_text or None,
            )
            for ident, label, value, help_text in items
        ),
        class_="metrics",
    )


def table(
    header: Sequence[Any] | None,
    rows: Iterable[Sequence[Any]],
    caption: str = "",
    class_: str = "",
) -> Html:
    """A table: the first column is a row heading, the others right-aligned values."""
    head = tag("tr", join(tag("th", c, scope="col") for c in header)) if header else ""
    body = join(
        tag("tr", join([tag("th", row[0], scope="row"), *(tag("td", c) for c in row[1:])]))
        for row in rows
    )
    parts = [
        tag("caption", caption) if caption else "",
        tag("thead", head) if head else "",
        tag("tbody", body),
    ]
    # A wide table scrolls inside its box instead of widening the page.
    return tag("div", tag("table", join(parts), class_=class_ or None), class_="scroll")


def pairs(
    items: Mapping[str, Any] | Iterable[tuple[str, Any]], caption: str = "", exact: bool = False
) -> Html:
    """A two-column table of name → value (values as :func:`value_text`, or :func:`exact_text`
    when ``exact``, unless Html)."""
    rows = items.items() if isinstance(items, Mapping) else items
    text = exact_text if exact else value_text
    return table(
        None,
        ((k, v if isinstance(v, Html) else text(v)) for k, v in rows),
        caption,
        class_="pairs",
    )


def code(text: str, ident: str | None = None) -> Html:
    return tag("pre", tag("code", text), id=ident)


def details(summary: str, body: Any) -> Html:
    return tag("details", join([tag("summary", summary), body]))


def note(text: Any, kind: str = "note") -> Html:
    return tag("p", text, class_=kind)
