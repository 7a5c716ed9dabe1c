"""A row of headline numbers, drawn as Markdown.

st.metric is a component the browser fetches on its first use; on a fresh page it can queue
behind plotly's bundle and appear a second after the rest of the page (measured on 2 cores:
0.4–1.4 s after page load, against 0.2–0.4 s for Markdown). The numbers a shared link reopens
should come first, so the analysis pages draw them as Markdown.
"""

from __future__ import annotations

import streamlit as st

# Label and value in one Markdown element; tests read them back with parse().
SEPARATOR = "  \n"


def text(label: str, value: str) -> str:
    return f":gray[{label}]{SEPARATOR}#### {value}"


def headline(items: list[tuple[str, str] | tuple[str, str, str]]) -> None:
    """One column per (label, value[, help])."""
    for col, (label, value, *tip) in zip(st.columns(len(items)), items, strict=True):
        col.markdown(text(label, value), help=tip[0] if tip else None)


def parse(markdown: str) -> tuple[str, str] | None:
    """(label, value) of a headline element's Markdown, None for any other Markdown."""
    head, sep, tail = markdown.partition(SEPARATOR)
    if not (sep and head.startswith(":gray[") and head.endswith("]") and tail.startswith("#### ")):
        return None
    return head[len(":gray[") : -1], tail[len("#### ") :]
