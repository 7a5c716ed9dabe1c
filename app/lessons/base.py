"""What every lesson is made of: steps (a title and a render function) and "try it" links."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st


@dataclass(frozen=True)
class Step:
    """One screen of a lesson: a short text with a live widget or figure."""

    title: str
    render: Callable[[], None]


@dataclass(frozen=True)
class TryIt:
    """A link that opens an experiment page with the lesson's config (and the page's view)."""

    label: str
    page: str
    config: dict[str, Any]
    view: dict[str, Any] = field(default_factory=dict)

    def url(self) -> str:
        from app.share import link_for

        return link_for(self.page, self.config, self.view)


def render_step(steps: Sequence[Step], step: int) -> None:
    """Draw step ``step`` (0-based) of a lesson, clamped to the lesson's range."""
    s = steps[max(0, min(step, len(steps) - 1))]
    st.subheader(s.title)
    s.render()


def kept(widget: Callable, label: str, key: str, default: Any, **kwargs) -> Any:
    """A widget whose value survives moving between steps (Streamlit drops the state of widgets
    that a run does not draw, so the value is also kept under a plain session-state key)."""
    store = f"_kept:{key}"
    value = st.session_state.get(store, default)
    out = widget(label, value=value, key=key, **kwargs)
    st.session_state[store] = out
    return out


def kept_choice(
    widget: Callable, label: str, options: Sequence, key: str, default: Any, **kwargs
) -> Any:
    """Like :func:`kept` for widgets that take ``options`` and an ``index`` (radio, selectbox)."""
    store = f"_kept:{key}"
    value = st.session_state.get(store, default)
    index = list(options).index(value) if value in options else 0
    out = widget(label, options, index=index, key=key, **kwargs)
    st.session_state[store] = out
    return out


def chart(fig, key: str) -> None:
    """A plotly figure, full width, keyed so two steps never share an element id; its camera
    button saves it as ``learn-<key>.png``."""
    from app.figures import png_config

    st.plotly_chart(fig, key=f"learn:{key}", config=png_config("learn-" + key.replace(":", "-")))


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"
