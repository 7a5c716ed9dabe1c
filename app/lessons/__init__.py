"""The Learn page's lessons, in teaching order. Each module exposes SLUG, TITLE, SUMMARY,
STEPS (a list of :class:`app.lessons.base.Step`), ``render(step)`` and ``try_it()``."""

from __future__ import annotations

from app.lessons import (
    distillation,
    ewc_taylor,
    information,
    parameter_space,
    replay,
    softmax_rank,
    three_approaches,
    tunnel,
)

LESSONS = (
    information,
    parameter_space,
    three_approaches,
    ewc_taylor,
    distillation,
    replay,
    tunnel,
    softmax_rank,
)
BY_SLUG = {lesson.SLUG: lesson for lesson in LESSONS}
