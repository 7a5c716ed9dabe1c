"""Learn: step-by-step lessons a teacher can walk a class through.

Pick a lesson, then move through its steps with Previous / Next; each step is a short text with
a live widget or figure. The lesson and step are in the URL (``v_lesson``, ``v_step``), so a link
opens the same screen, and every lesson ends in "try it" links to the experiment pages.
"""

from __future__ import annotations

import streamlit as st

from app.lessons import BY_SLUG, LESSONS
from app.sidebar import current_raw, sync_query, view_default

LESSON_KEY = "learn:lesson"
STEP_KEY = "learn:step"
SLUGS = [lesson.SLUG for lesson in LESSONS]


def _start() -> None:
    """On the first run of a session, take the lesson and step from the URL."""
    if LESSON_KEY in st.session_state:
        return
    slug = view_default("lesson", SLUGS[0])
    st.session_state[LESSON_KEY] = slug if slug in BY_SLUG else SLUGS[0]
    lesson = BY_SLUG[st.session_state[LESSON_KEY]]
    try:
        step = int(view_default("step", 1)) - 1
    except (TypeError, ValueError):
        step = 0
    st.session_state[STEP_KEY] = max(0, min(step, len(lesson.STEPS) - 1))


def _new_lesson() -> None:
    st.session_state[STEP_KEY] = 0


def _move(delta: int, n: int) -> None:
    st.session_state[STEP_KEY] = max(0, min(st.session_state[STEP_KEY] + delta, n - 1))


_start()
st.title("Learn")
st.selectbox(
    "lesson",
    SLUGS,
    format_func=lambda s: f"{SLUGS.index(s) + 1}. {BY_SLUG[s].TITLE}",
    key=LESSON_KEY,
    on_change=_new_lesson,
)
lesson = BY_SLUG[st.session_state[LESSON_KEY]]
n = len(lesson.STEPS)
step = max(0, min(int(st.session_state.get(STEP_KEY, 0)), n - 1))
st.session_state[STEP_KEY] = step
st.caption(lesson.SUMMARY)

c1, c2, c3 = st.columns([1, 4, 1])
c1.button(
    "← Previous",
    on_click=_move,
    args=(-1, n),
    disabled=step == 0,
    key="learn:prev",
    width="stretch",
)
c2.progress((step + 1) / n, text=f"Step {step + 1} of {n} — {lesson.STEPS[step].title}")
c3.button(
    "Next →", on_click=_move, args=(1, n), disabled=step == n - 1, key="learn:next", width="stretch"
)

lesson.render(step)

st.divider()
st.markdown("**Try it yourself**")
for link in lesson.try_it():
    st.markdown(f"- [{link.label}]({link.url()})")

sync_query(current_raw(), {"lesson": lesson.SLUG, "step": step + 1})
