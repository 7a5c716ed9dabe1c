"""Tables as a reader sees them: numbers formatted, "—" where there is no number.

Streamlit's table draws an empty cell as a grey "None" whatever a pandas Styler says, so a
table shown on a page holds text: each number formatted once here, "—" for a missing one. The
downloads keep the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

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
