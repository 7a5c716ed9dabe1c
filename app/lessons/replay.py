"""Lesson 6 — replay: how the share of old data in each batch trades old against new accuracy."""

from __future__ import annotations

import streamlit as st

from app.lessons import configs
from app.lessons import figures as lf
from app.lessons.base import Step, TryIt, chart, kept, render_step
from app.lessons.runs import job_runner, real_runs, summary_frame
from engine import teaching

SLUG = "replay"
TITLE = "Replay"
SUMMARY = "Mixing a little old data into every batch, and what the mixing ratio trades."

FRACTIONS = (0.0, 0.25, 0.5, 0.75)
BUFFER = 200


def base_config() -> dict:
    return configs.with_strategy(configs.FIVE_TASKS, "replay", buffer_size=BUFFER)


def tradeoff_configs() -> dict[str, dict]:
    """One replay run per fraction (the labels are the fractions)."""
    out = {}
    for f in FRACTIONS:
        cfg = base_config()
        cfg["strategy"]["replay_fraction"] = f
        out[f"{f:.2f}"] = cfg
    return out


def _rows() -> list[dict] | None:
    run = job_runner(tradeoff_configs())
    return None if run is None else teaching.replay_tradeoff(base_config(), run, FRACTIONS)


def _setting() -> None:
    cfg = configs.FIVE_TASKS
    st.caption(
        f"Setting: {cfg['data']['benchmark']}, {cfg['data'].get('n_tasks', 5)} tasks of two digits, "
        f"{cfg['scenario']}-incremental (one head over all classes, no task id at test time), "
        f"MLP {cfg['model']['depth']}×{cfg['model']['width']}, {cfg['train']['epochs']} epochs per task, "
        f"a buffer of {BUFFER} past images (reservoir sampling)."
    )


def _one_batch() -> None:
    st.markdown(
        "The simplest defence against forgetting is not to stop seeing the old tasks. Keep a "
        "small buffer of past examples and mix some into every batch of the new task. The "
        "knob is the **replay fraction** f: the share of each (enlarged) batch that comes "
        "from the buffer. Each new-task batch of B images gets B·f/(1 − f) old ones, so the "
        "number of steps stays the same and each step costs 1/(1 − f) times as much."
    )
    f = kept(st.slider, "replay fraction f", "rp:f", 0.5, min_value=0.0, max_value=0.9, step=0.05)
    chart(lf.figure_replay_batch(f, 32), "rp:batch")
    st.metric("compute per step, relative to fine-tuning", f"× {1 / (1 - f):.2f}")


def _runs() -> None:
    st.markdown(
        "Five tasks of two digits each, one head for all ten classes. Without replay (f = 0) "
        "the network forgets every earlier task completely: nothing in the new batches asks "
        "for the old classes, so their outputs are simply pushed down. We train the same "
        f"setting with f ∈ {{{', '.join(f'{f:g}' for f in FRACTIONS)}}}."
    )
    _setting()
    rows = _rows()
    if rows is None:
        return
    st.dataframe(
        summary_frame(rows, first="replay fraction"), hide_index=True, key="learn:rp:table"
    )
    chart(lf.figure_old_new(rows, x="label"), "rp:bars")


def _tradeoff() -> None:
    st.markdown(
        "Plotted against f: accuracy on the old tasks climbs steeply with the first bit of "
        "replay, while the newest task gives up a little — the batches spend part of their "
        "gradient on the past. Where the sum is best depends on the task sequence; a "
        "practitioner's blog found 50 % a good default and that replay beat the "
        "regularisation methods it tried, at the price of keeping old data."
    )
    rows = _rows()
    if rows is None:
        return
    chart(lf.figure_replay_tradeoff(rows), "rp:tradeoff")
    best = max(rows, key=lambda r: r["acc"])
    st.metric(
        "best ACC in this sweep",
        f"{best['acc']:.3f}",
        help=f"at replay fraction {best['fraction']:g}",
    )


def _ceiling() -> None:
    st.markdown(
        "How close does replay get to training on everything at once? Compare the middle "
        "setting with plain fine-tuning (the floor) and joint training (the ceiling), all on "
        "the same tasks."
    )
    cfgs = {
        "fine-tuning": configs.with_strategy(configs.FIVE_TASKS, "naive"),
        "replay, f = 0.5": tradeoff_configs()["0.50"],
        "joint training": configs.with_strategy(configs.FIVE_TASKS, "joint"),
    }
    rows = real_runs(cfgs)
    if rows is None:
        return
    chart(lf.figure_old_new(rows), "rp:ceiling")
    st.dataframe(
        summary_frame(rows, first="strategy"), hide_index=True, key="learn:rp:ceiling-table"
    )


STEPS = [
    Step("Old data in every batch", _one_batch),
    Step("Four runs, four fractions", _runs),
    Step("The trade-off", _tradeoff),
    Step("Between the floor and the ceiling", _ceiling),
]


def try_it() -> list[TryIt]:
    return [
        TryIt(
            "Sweep the replay fraction yourself (Compare page)",
            "compare",
            base_config(),
            {
                "mode": "sweep",
                "field": "strategy.replay_fraction",
                "values": ",".join(f"{f:g}" for f in FRACTIONS),
            },
        ),
        TryIt(
            "Replay at 50 %, live (Forgetting page)",
            "forgetting",
            tradeoff_configs()["0.50"],
        ),
    ]


def render(step: int = 0) -> None:
    render_step(STEPS, step)
