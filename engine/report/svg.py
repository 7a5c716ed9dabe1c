"""Figures as inline SVG strings: matrices (cividis) and line charts (Okabe–Ito).

SVG needs no JavaScript, so a figure is on screen with the page (the app's first heatmap) and
an HTML report opens offline. Every value drawn is a number formatted here and every label goes
through :func:`html.escape`, so nothing read from a result can become markup. Hovering a cell or
a point shows its value (an SVG ``<title>``); cells and points carry their values as ``data-*``
attributes so a browser test can read back what is drawn.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np
from plotly.colors import get_colorscale, sample_colorscale

# Okabe & Ito (2008), the yellow last: it is faint on white (the same order as app/figures.py).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
DASHES = ("", "6 3", "2 3", "8 3 2 3")
FONT = "font-family=\"'Source Sans', 'Source Sans Pro', sans-serif\""
MAX_POINTS = 400  # per line: enough for any screen, small enough for the report's size cap


# Looked up once: plotly finds a named scale by scanning its modules (~5 ms a call).
CIVIDIS = get_colorscale("Cividis")


def cividis_many(ts: Sequence[float]) -> list[str]:
    """The colours of ``ts`` (each clipped to 0–1) on plotly's cividis scale, 'rgb(r, g, b)'
    each; one call for a whole matrix (per call, plotly's checks cost ~0.2 ms)."""
    return sample_colorscale(CIVIDIS, [min(1.0, max(0.0, float(t))) for t in ts]) if ts else []


def cividis(t: float) -> str:
    """The colour of ``t`` (clipped to 0–1) on plotly's cividis scale, as 'rgb(r, g, b)'."""
    return cividis_many([t])[0]


def rgb(colour: str) -> tuple[float, float, float]:
    """'rgb(r, g, b)' → (r, g, b)."""
    return tuple(float(v) for v in colour[colour.index("(") + 1 : -1].split(","))


def ink_on(fill: str) -> str:
    """Black or white text, whichever reads on ``fill``."""
    r, g, b = rgb(fill)
    return "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#fff"


def r_matrix(R: Sequence[Sequence[float]], n_tasks: int | None = None) -> np.ndarray:
    """R as a T×T float array, rows not trained yet as NaN."""
    T = n_tasks or (len(R[0]) if R else 0)
    m = np.full((T, T), np.nan)
    for t, row in enumerate(R[:T]):
        m[t, : len(row)] = [np.nan if v is None else v for v in row]
    return m


def _gradient_id(*parts: object) -> str:
    # Several heatmaps share a page: each gets its own id, the same for the same figure.
    return "cividis-" + hashlib.sha1(repr(parts).encode()).hexdigest()[:10]


@dataclass
class Heatmap:
    """What a matrix figure shows besides its values; see :func:`svg_heatmap`."""

    x_title: str
    y_title: str
    value_name: str = "value"
    lo: float = 0.0
    hi: float = 1.0
    row_labels: Sequence[str] | None = None
    col_labels: Sequence[str] | None = None
    css_class: str = "matrix-heatmap"
    name: str = ""  # what a screen reader says when the figure has no title
    # Attributes and tooltip of a cell (row, column, value); of a NaN (empty) cell.
    cell_attrs: Callable[[int, int, float], str] = lambda r, c, v: (
        f'data-row="{r}" data-col="{c}" data-value="{v:.6g}"'
    )
    tooltip: Callable[[int, int, float], str] | None = None
    empty_attrs: str = 'data-empty="1"'
    empty_tooltip: Callable[[int, int], str] = lambda r, c: "no value"
    cell_text: Callable[[float], str] = lambda v: f"{v:.2f}"
    bar_ticks: Sequence[float] = field(default_factory=lambda: (0.0, 0.5, 1.0))


def svg_heatmap(m: np.ndarray, spec: Heatmap, title: str = "", height: int = 380) -> str:
    """A matrix as cells coloured on cividis from ``spec.lo`` to ``spec.hi`` (NaN cells grey and
    empty), rows top to bottom, with a colour bar; values printed in cells up to 12×12."""
    rows, cols = m.shape if m.ndim == 2 else (0, 0)
    top, left, bottom, right_pad = (44 if title else 22), 58, 46, 78
    cell = (height - top - bottom) / max(rows, 1)
    cell = min(cell, 900 / max(cols, 1))  # a wide matrix gets smaller cells, not a wide page
    width = left + cell * cols + right_pad
    height_used = top + rows * cell + bottom
    font = max(8.0, min(13.0, cell * 0.32))
    span = (spec.hi - spec.lo) or 1.0
    finite = ~np.isnan(m)
    fills = iter(cividis_many(((m[finite] - spec.lo) / span).tolist()))  # row by row, as drawn
    row_labels = spec.row_labels or [str(r + 1) for r in range(rows)]
    col_labels = spec.col_labels or [str(c + 1) for c in range(cols)]
    tooltip = spec.tooltip or (
        lambda r, c, v: (
            f"{spec.y_title} {row_labels[r]}, {spec.x_title} {col_labels[c]}: "
            f"{spec.value_name} {v:.3f}"
        )
    )
    out = [
        f'<svg class="{escape(spec.css_class)}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width:.0f} {height_used:.0f}" width="100%" '
        f'style="max-width:{width:.0f}px" {FONT} fill="currentColor">',
        f"<title>{escape(title or spec.name or spec.value_name)}</title>",
    ]
    if title:
        out.append(f'<text x="4" y="20" font-size="16">{escape(title)}</text>')
    label_step = max(1, math.ceil(14 / max(cell, 1e-9)))  # labels that would touch are skipped
    for r in range(rows):
        y = top + r * cell
        if r % label_step == 0:
            out.append(
                f'<text x="{left - 6}" y="{y + cell / 2:.1f}" font-size="{font:.1f}" '
                f'text-anchor="end" dominant-baseline="middle">{escape(str(row_labels[r]))}</text>'
            )
        for c in range(cols):
            x = left + c * cell
            v = float(m[r, c])
            common = f'x="{x + 0.5:.1f}" y="{y + 0.5:.1f}" width="{cell - 1:.1f}" height="{cell - 1:.1f}"'
            if math.isnan(v):
                out.append(
                    f'<rect {common} fill="#8882" {spec.empty_attrs}>'
                    f"<title>{escape(spec.empty_tooltip(r, c))}</title></rect>"
                )
                continue
            fill = next(fills)
            out.append(
                f'<rect {common} fill="{fill}" {spec.cell_attrs(r, c, v)}>'
                f"<title>{escape(tooltip(r, c, v))}</title></rect>"
            )
            if rows <= 12 and cols <= 12:
                out.append(
                    f'<text x="{x + cell / 2:.1f}" y="{y + cell / 2:.1f}" font-size="{font:.1f}" '
                    f'fill="{ink_on(fill)}" text-anchor="middle" dominant-baseline="middle" '
                    f'pointer-events="none">{escape(spec.cell_text(v))}</text>'
                )
    for c in range(0, cols, label_step):
        out.append(
            f'<text x="{left + (c + 0.5) * cell:.1f}" y="{top + rows * cell + 14:.1f}" '
            f'font-size="{font:.1f}" text-anchor="middle">{escape(str(col_labels[c]))}</text>'
        )
    mid_x, mid_y = left + cols * cell / 2, top + rows * cell / 2
    out.append(
        f'<text x="{mid_x:.1f}" y="{height_used - 8:.0f}" font-size="13" text-anchor="middle">'
        f"{escape(spec.x_title)}</text>"
    )
    out.append(
        f'<text x="14" y="{mid_y:.1f}" font-size="13" text-anchor="middle" '
        f'transform="rotate(-90 14 {mid_y:.1f})">{escape(spec.y_title)}</text>'
    )
    # The colour bar: lo at the bottom, hi at the top, as plotly draws it.
    bar_x, bar_h = left + cols * cell + 16, rows * cell
    gid = _gradient_id(m.tobytes(), spec.lo, spec.hi, title)
    stops = "".join(
        f'<stop offset="{k / 10:.1f}" stop-color="{c}"/>'
        for k, c in enumerate(cividis_many([1 - k / 10 for k in range(11)]))
    )
    out.append(
        f'<defs><linearGradient id="{gid}" x1="0" y1="0" x2="0" y2="1">{stops}</linearGradient></defs>'
        f'<rect x="{bar_x:.1f}" y="{top}" width="14" height="{bar_h:.1f}" fill="url(#{gid})"/>'
    )
    for frac in (0.0, 0.5, 1.0):
        ty = top + bar_h * (1 - frac)
        out.append(
            f'<text x="{bar_x + 19:.1f}" y="{ty:.1f}" font-size="11" '
            f'dominant-baseline="middle">{number(spec.lo + frac * span)}</text>'
        )
    out.append(
        f'<text x="{bar_x + 7:.1f}" y="{top - 10}" font-size="11" text-anchor="middle">'
        f"{escape(spec.value_name)}</text>"
    )
    out.append("</svg>")
    return "".join(out)


def svg_r_heatmap(
    R: Sequence[Sequence[float]], n_tasks: int | None = None, title: str = "", height: int = 380
) -> str:
    """R[t,i] as an inline SVG: rows = after training task t, columns = evaluated on task i,
    tasks numbered from 1. Each cell carries its value (``data-t``, ``data-i``,
    ``data-value``) and a tooltip; rows not trained yet are grey and empty."""
    spec = Heatmap(
        x_title="evaluated on task i",
        y_title="after training task t",
        value_name="accuracy",
        css_class="r-heatmap",
        name="Accuracy matrix R[t,i]",
        cell_attrs=lambda t, i, v: f'data-t="{t}" data-i="{i}" data-value="{v:.6f}"',
        tooltip=lambda t, i, v: (
            f"after training task {t + 1}, evaluated on task {i + 1}: accuracy {v:.3f}"
        ),
        empty_attrs='data-untrained="1"',
        empty_tooltip=lambda t, i: f"after task {t + 1}: not trained yet",
    )
    return svg_heatmap(r_matrix(R, n_tasks), spec, title or "", height)


def svg_matrix(
    matrix: Sequence[Sequence[float | None]],
    x_title: str,
    y_title: str,
    value_name: str,
    title: str = "",
    lo: float | None = None,
    hi: float | None = None,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    height: int = 380,
) -> str:
    """Any numeric matrix (None = empty cell), on a fixed range or its own min…max."""
    m = np.array([[np.nan if v is None else float(v) for v in row] for row in matrix], dtype=float)
    finite = m[np.isfinite(m)]
    lo = float(finite.min()) if lo is None and finite.size else (0.0 if lo is None else lo)
    hi = float(finite.max()) if hi is None and finite.size else (1.0 if hi is None else hi)
    m[~np.isfinite(m)] = np.nan
    spec = Heatmap(
        x_title=x_title,
        y_title=y_title,
        value_name=value_name,
        lo=lo,
        hi=hi,
        row_labels=row_labels,
        col_labels=col_labels,
        cell_text=(lambda v: f"{v:.2f}") if (lo, hi) == (0.0, 1.0) else number,
    )
    return svg_heatmap(m, spec, title, height)


# ------------------------------------------------------------------------------ line charts


def number(v: float | None) -> str:
    """A number as a person reads it: up to 3 significant digits, no exponent below 10⁶."""
    if v is None or not math.isfinite(v):
        return "–"
    if v == 0:
        return "0"
    if abs(v) >= 1e6 or abs(v) < 1e-3:
        return f"{v:.2e}"
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values (1, 2 or 5 × 10^k apart) covering lo…hi."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else [0.0]
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10)), key=lambda c: abs(math.log(c / raw)))
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    k = 0
    while first + k * step <= hi + step * 1e-9:
        ticks.append(round(first + k * step, 12))
        k += 1
    return ticks


@dataclass
class Series:
    """One line: its name, x and y (None = a gap), and optional style overrides."""

    name: str
    x: Sequence[float]
    y: Sequence[float | None]
    colour: str | None = None
    dash: str | None = None


def _thin(x: Sequence[float], y: Sequence[float | None]) -> list[tuple[float, float | None]]:
    points = list(zip(x, y, strict=False))
    if len(points) <= MAX_POINTS:
        return points
    stride = math.ceil(len(points) / MAX_POINTS)
    return points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])


def _finite(v) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(v)


def _legend_layout(names: Sequence[str], width: float) -> list[tuple[int, float]]:
    """(row, x offset) of each legend entry: a swatch and its name, wrapped to ``width``."""
    out, row, x = [], 0, 0.0
    for name in names:
        w = 30 + 6.2 * len(name)  # ~6 px a character at font size 11
        if x > 0 and x + w > width:
            row, x = row + 1, 0.0
        out.append((row, x))
        x += w + 12
    return out


def svg_lines(
    series: Sequence[Series],
    x_title: str,
    y_title: str,
    title: str = "",
    y_range: tuple[float, float] | None = None,
    x_integer: bool = False,
    vlines: Sequence[float] = (),
    shade: tuple[float, float, str] | None = None,
    width: int = 560,
    height: int = 340,
) -> str:
    """A line chart: one polyline per series (gaps at None), dots with tooltips when a line
    has at most 60 points, dotted vertical lines at ``vlines`` (task ends), a shaded x-band
    ``shade`` = (x0, x1, label), and a legend under the plot."""
    lines = [(s, _thin(s.x, s.y)) for s in series]
    xs = [float(x) for _, pts in lines for x, y in pts if _finite(x)]
    ys = [float(y) for _, pts in lines for x, y in pts if _finite(y) and _finite(x)]
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    if y_range is not None:
        y_lo, y_hi = y_range
    else:
        y_lo, y_hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
        y_lo = min(y_lo, 0.0) if y_lo >= 0 and y_lo < 0.5 * y_hi else y_lo  # start at 0 when near
        if y_hi == y_lo:
            y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    top, left, right = (40 if title else 16), 62, 16
    pw = width - left - right
    legend = _legend_layout([s.name for s in series], pw)
    bottom = 48 + 18 * (max((row for row, _ in legend), default=-1) + 1)
    ph = height - top - bottom

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * pw

    def py(y: float) -> float:
        return top + (1 - (y - y_lo) / (y_hi - y_lo)) * ph

    out = [
        f'<svg class="line-chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" {FONT} '
        'fill="currentColor">',
        f"<title>{escape(title or y_title)}</title>",
    ]
    if title:
        out.append(f'<text x="4" y="20" font-size="15">{escape(title)}</text>')
    if shade is not None:
        x0, x1 = max(shade[0], x_lo), min(shade[1], x_hi)
        out.append(
            f'<rect x="{px(x0):.1f}" y="{top}" width="{max(0.0, px(x1) - px(x0)):.1f}" '
            f'height="{ph}" fill="#8882"><title>{escape(shade[2])}</title></rect>'
            f'<text x="{px(x0) + 4:.1f}" y="{top + ph - 6}" font-size="11">{escape(shade[2])}</text>'
        )
    # Axes, grid and ticks.
    for t in nice_ticks(y_lo, y_hi):
        y = py(t)
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#8884"/>'
            f'<text x="{left - 6}" y="{y:.1f}" font-size="11" text-anchor="end" '
            f'dominant-baseline="middle">{number(t)}</text>'
        )
    x_ticks = nice_ticks(x_lo, x_hi, 6)
    if x_integer:
        x_ticks = sorted({round(t) for t in x_ticks if abs(t - round(t)) < 1e-9})
        if len(x_ticks) < 2 and x_hi - x_lo >= 1:
            x_ticks = list(range(math.ceil(x_lo), math.floor(x_hi) + 1))
    for t in x_ticks:
        x = px(t)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#888"/>'
            f'<text x="{x:.1f}" y="{top + ph + 16}" font-size="11" text-anchor="middle">'
            f"{number(t)}</text>"
        )
    out.append(
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>'
        f'<text x="{left + pw / 2:.1f}" y="{top + ph + 34}" font-size="12" '
        f'text-anchor="middle">{escape(x_title)}</text>'
        f'<text x="14" y="{top + ph / 2:.1f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2:.1f})">{escape(y_title)}</text>'
    )
    for v in vlines:
        if _finite(v) and x_lo <= v <= x_hi:
            out.append(
                f'<line class="boundary" x1="{px(v):.1f}" x2="{px(v):.1f}" y1="{top}" '
                f'y2="{top + ph}" stroke="#888" stroke-dasharray="2 3"/>'
            )
    for k, (s, pts) in enumerate(lines):
        colour = s.colour or PALETTE[k % len(PALETTE)]
        dash = s.dash if s.dash is not None else DASHES[(k // len(PALETTE)) % len(DASHES)]
        segments: list[list[tuple[float, float]]] = [[]]
        for x, y in pts:
            if _finite(x) and _finite(y):
                segments[-1].append((float(x), float(y)))
            elif segments[-1]:
                segments.append([])
        style = f'stroke="{colour}" stroke-width="2" fill="none"' + (
            f' stroke-dasharray="{dash}"' if dash else ""
        )
        out.append(f'<g class="series" data-name="{escape(s.name)}">')
        for seg in segments:
            if len(seg) > 1:
                d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in seg)
                out.append(f'<polyline points="{d}" {style}/>')
        if len(pts) <= 60:
            for x, y in (p for seg in segments for p in seg):
                out.append(
                    f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}" '
                    f'data-x="{x:.6g}" data-y="{y:.6g}"><title>{escape(s.name)}: '
                    f"{escape(x_title)} {number(x)}, {escape(y_title)} {y:.4g}</title></circle>"
                )
        out.append("</g>")
    # Legend: entries flow in rows under the x-axis title.
    for k, (s, (row, offset)) in enumerate(zip(series, legend, strict=True)):
        colour = s.colour or PALETTE[k % len(PALETTE)]
        dash = s.dash if s.dash is not None else DASHES[(k // len(PALETTE)) % len(DASHES)]
        lx, ly = left + offset, top + ph + 50 + 18 * row
        out.append(
            f'<line x1="{lx:.1f}" x2="{lx + 18:.1f}" y1="{ly:.1f}" y2="{ly:.1f}" '
            f'stroke="{colour}" stroke-width="2"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + f'/><text x="{lx + 22:.1f}" y="{ly:.1f}" font-size="11" '
            f'dominant-baseline="middle">{escape(s.name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
