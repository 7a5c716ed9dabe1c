"""A continual-learning run: train the tasks one after another and measure R[t,i] after each.

The spec is the experiment config itself (engine.config.ExperimentConfig, canonical form =
:func:`engine.config.resolve`). The computation builds a :class:`engine.session.Session`,
restores the stored checkpoint if there is one (so an interrupted run resumes at the next
task), measures the untrained model's accuracy b_i, then trains phase by phase; after each
phase it streams the new rows of R, calls the caller's hook (the ``record`` kind records
activations there), and saves a checkpoint. Events: start, task_start, progress, eval, row,
diverged (then done), cancelled.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.config import ExperimentConfig, resolve
from engine.estimate import training_cost
from engine.kinds.base import ComputeContext, Cost
from engine.metrics import summarize
from engine.session import Session

NAME = "run"
TITLE = "Continual run"
SUMMARY = "Train a strategy on a benchmark's tasks one after another; the accuracy matrix R[t,i]."
Spec = ExperimentConfig
RELAYED = ("task_start", "eval", "row", "diverged")


def canonical(spec: ExperimentConfig) -> ExperimentConfig:
    return resolve(spec)


def estimate(spec: ExperimentConfig) -> Cost:
    return training_cost(spec)


def compute(
    spec: ExperimentConfig,
    ctx: ComputeContext,
    after_phase: Callable[[Session, int], None] | None = None,
) -> dict:
    """Train (or resume) the run; ``after_phase(session, phase)`` is called after each phase's
    row of R, before its checkpoint (the ``record`` kind records activations there)."""
    session = Session(spec)
    ckpt = ctx.load_checkpoint()
    if ckpt is not None:
        session.load_state_dict(ckpt)
    else:
        session.measure_baseline()
    ctx.start(
        session.total_steps(),
        [f"task {t + 1}" for t in range(session.n_tasks)],
        n_tasks=session.n_tasks,
        n_phases=len(session.phases),
        resumed_at=session.next_phase,
        baseline=session.baseline,
        R=session.R,
        config=spec.model_dump(mode="json"),
    )

    def checkpoint(s: Session, phase: int) -> None:
        if after_phase is not None:
            after_phase(s, phase)
        ctx.save_checkpoint(s.state_dict())

    events = ctx.session_events(relay=RELAYED, whole=True)
    session.run(on_event=events, cancel=ctx.cancel, after_phase=checkpoint)
    timing = dict(session.timing)
    timing["total_s"] = timing["train_s"] + timing["eval_s"] + timing["setup_s"]
    R = session.R
    return {
        "R": R,
        "baseline": session.baseline,
        "metrics": summarize(R, session.baseline) if len(R) == session.n_tasks else {},
        "timing": {k: round(v, 4) for k, v in timing.items()},
        "curves": session.curves.to_dict(),
        "loss_matrix": session.L,
        "status": session.status,
        "message": session.message,
        "device": session.device.type,
    }
