"""Tables as a reader sees them: numbers formatted, "—" where there is no number.

Streamlit's table draws an empty cell as a grey "None" whatever a pandas Styler says, so a
table shown on a page holds text: each number formatted once here, "—" for a missing one. The
downloads keep the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
import streamlit as st

DASH = "—"


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT


def cell(value, fmt: str | None = None) -> str:
    """One value as shown: ``fmt`` applied to a number, "—" for nothing."""
    if missing(value):
        return DASH
    if fmt is not None and isinstance(value, int | float) and not isinstance(value, bool):
        return fmt.format(value)
    return str(value)


def shown(table: pd.DataFrame, formats: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``table`` with every cell as text: columns in ``formats`` formatted as numbers."""
    formats = formats or {}
    return pd.DataFrame(
        {c: [cell(v, formats.get(c)) for v in table[c]] for c in table.columns},
        index=table.index,
    )


def download_buttons(table: pd.DataFrame, stem: str, key: str) -> None:
    """Table as CSV and as JSON (the numbers, not the formatted text), side by side."""
    c1, c2 = st.columns(2)
    c1.download_button(
        "Table as CSV", table.to_csv(index=False), f"{stem}.csv", "text/csv", key=f"{key}:csv"
    )
    c2.download_button(
        "Table as JSON",
        table.to_json(orient="records", indent=1),
        f"{stem}.json",
        "application/json",
        key=f"{key}:json",
    )
