"""Lesson 3 — frozen features, fine-tuning and joint training, compared on real runs."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from app import figures
from app.lessons import configs
from app.lessons import figures as lf
from app.lessons.base import Step, TryIt, chart, kept_choice, render_step
from app.lessons.runs import real_runs, summary_frame

SLUG = "three-approaches"
TITLE = "Frozen features, fine-tuning, joint training"
SUMMARY = "The course's comparison table, filled in from real runs on split-digits."

APPROACHES = {"frozen features": "frozen", "fine-tuning": "naive", "joint training": "joint"}
STORES_OLD_DATA = {"frozen features": "no", "fine-tuning": "no", "joint training": "yes"}


def lesson_configs() -> dict[str, dict]:
    return {
        label: configs.with_strategy(configs.TWO_TASKS, name) for label, name in APPROACHES.items()
    }


def verdict(value: float, best: float) -> str:
    """A word for how a number compares with the best of its row (accuracy points, 0–1)."""
    gap = best - value
    if gap <= 1e-9:
        return "best"
    if gap <= 0.03:
        return "good"
    if gap <= 0.10:
        return "fair"
    return "poor"


def course_table(rows: Sequence[dict]) -> pd.DataFrame:
    """The course's table (rows: new-task performance, old-task performance, stores old data),
    each cell the measured accuracy and its verdict against the best approach of that row."""
    best_new = max(r["new_acc"] for r in rows)
    best_old = max(r["old_acc"] for r in rows)
    table = {
        r["label"]: {
            "new task performance": f"{r['new_acc']:.3f} ({verdict(r['new_acc'], best_new)})",
            "old task performance": f"{r['old_acc']:.3f} ({verdict(r['old_acc'], best_old)})",
            "stores old task data": STORES_OLD_DATA.get(r["label"], "?"),
        }
        for r in rows
    }
    return pd.DataFrame(table)


def _rows() -> list[dict] | None:
    return real_runs(lesson_configs())


def _setting() -> None:
    cfg = configs.TWO_TASKS
    st.caption(
        f"Setting: {cfg['data']['benchmark']}, tasks of classes {cfg['data'].get('split', 'preset')} "
        f"({cfg['scenario']}-incremental: one head per task), MLP {cfg['model']['depth']}×"
        f"{cfg['model']['width']}, {cfg['train']['epochs']} epochs per task."
    )


def _three_ways() -> None:
    st.markdown(
        "A network has learned an old task; a new one arrives with its own output head. "
        "Three classic ways to proceed differ in what may change and what data they need:\n\n"
        "- **frozen features** — keep the shared layers as they are and train only the new "
        "head on top of them (a linear probe on the old features);\n"
        "- **fine-tuning** — let everything train on the new task's data;\n"
        "- **joint training** — train on old and new data together (the upper bound, if "
        "keeping the old data is allowed)."
    )
    chart(lf.figure_approaches(), "ta:approaches")


def _results() -> None:
    st.markdown(
        "Here are the three approaches trained for real on two tasks of handwritten digits "
        "(five digit classes, then the other five). After the second task we measure the "
        "accuracy on both. The first visit trains them (seconds); after that anyone gets them "
        "from the cache."
    )
    _setting()
    rows = _rows()
    if rows is None:
        return
    st.dataframe(summary_frame(rows), hide_index=True, key="learn:ta:table")
    chart(lf.figure_old_new(rows), "ta:bars")


def _matrices() -> None:
    st.markdown(
        "Row *t* of the accuracy matrix R is measured after training task *t*; column *i* is "
        "the task tested. The diagonal is how well each task was learned; the bottom row is "
        "what is left at the end. Fine-tuning's first column drops from the diagonal to the "
        "bottom row: that drop is the forgetting."
    )
    rows = _rows()
    if rows is None:
        return
    labels = [r["label"] for r in rows]
    label = kept_choice(st.radio, "approach", labels, "ta:which", "fine-tuning", horizontal=True)
    row = rows[labels.index(label)]
    chart(figures.figure_r_heatmap(row["R"]), "ta:heatmap")


def _table() -> None:
    st.markdown(
        "The course's table, filled in with the numbers above. Each cell is the accuracy and "
        "how it ranks in its row (best; good = within 3 points; fair = within 10; poor = more "
        "than 10 points behind). Fine-tuning tends to win the new task and lose the old one; "
        "frozen features cannot forget, but the new task is only as good as the old task's "
        "features allow; joint training does well on both but must keep the old data. "
        "Whether frozen features or fine-tuning is better on the new task is not a law: with "
        "little new data and a big pretrained network, frozen features often win, because "
        "fine-tuning everything on a small set overfits."
    )
    rows = _rows()
    if rows is None:
        return
    st.dataframe(course_table(rows), key="learn:ta:course")


STEPS = [
    Step("Three ways to add a task", _three_ways),
    Step("Train them", _results),
    Step("Inside the runs: the accuracy matrices", _matrices),
    Step("The course's table, filled in", _table),
]


def try_it() -> list[TryIt]:
    return [
        TryIt(
            "Run the three side by side (Compare page)",
            "compare",
            configs.with_strategy(configs.TWO_TASKS, "frozen"),
            {"mode": "strategies", "strategies": list(APPROACHES.values())},
        ),
        TryIt(
            "Watch fine-tuning forget, live (Forgetting page)",
            "forgetting",
            configs.with_strategy(configs.TWO_TASKS, "naive"),
        ),
    ]


def render(step: int = 0) -> None:
    render_step(STEPS, step)
