"""The one phase loop: a benchmark, a model and a strategy, trained phase by phase.

:class:`Session` is the only caller of :func:`engine.train.train_phase`. Continual runs,
every analysis that trains a classifier and the lessons' small networks all train through it:

    session = Session(cfg)                    # build: data on the device, seeded model, strategy
    session.run(on_event, cancel, after_phase) # each phase: before_task → train → after_task →
                                               # a row of R per task it finished → after_phase
    session.R, session.curves, session.status  # what came out

``after_phase(session, phase)`` is where a caller checkpoints, records activations or keeps a
snapshot. :meth:`state_dict` / :meth:`load_state_dict` hold everything a resumed session needs
to continue bit for bit (model, strategy, rows of R, curves, counters), so an interrupted
computation restarts at the next unfinished phase.

Events (``on_event(dict)``): ``task_start`` (phase, tasks), ``progress`` (phase, step, total,
global_step, total_steps, step_s), ``eval`` (step, acc), ``row`` (t, row), ``diverged``
(phase, message) and ``cancelled`` (phase; :class:`engine.errors.Cancelled` is re-raised).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from engine.config import ExperimentConfig
from engine.data import Benchmark, build_benchmark
from engine.errors import Cancelled, Diverged
from engine.models import build_model
from engine.strategies import Context, make_strategy
from engine.train import Curves, Evaluator, cpu_threads, train_phase

EventFn = Callable[[dict], None]


def phase_steps(bench: Benchmark, tasks: list[int], train_cfg) -> int:
    """Optimizer steps of a phase on its own tasks' data (epochs × ⌈samples / batch⌉)."""
    idx = bench.train_index(tasks)
    n = (idx.stop - idx.start) if isinstance(idx, slice) else len(idx)
    return train_cfg.epochs * math.ceil(n / train_cfg.batch_size)


class Session:
    """A resolved config's benchmark, model and strategy, and the state of its training."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        bench: Benchmark | None = None,
        evaluator: Callable[[nn.Module, Any], tuple] | None = None,
        model: nn.Module | None = None,
    ) -> None:
        t0 = time.perf_counter()
        self.cfg = cfg
        self.device = torch.device(cfg.train.device)
        self.bench = (
            bench if bench is not None else build_benchmark(cfg.data, cfg.scenario, self.device)
        )
        torch.manual_seed(cfg.train.seed)
        if model is None:
            model = build_model(cfg.model, self.bench.input_shape, self.bench.n_outputs)
        self.model = model.to(self.device)
        self.strategy = make_strategy(
            cfg.strategy, Context(self.bench, cfg.scenario, cfg.train, self.device, cfg.train.seed)
        )
        if self.device.type == "cpu":
            torch.set_num_threads(cpu_threads(self.model, cfg.train.batch_size))
        # Rows of R always come from the plain evaluator; curves from the caller's, which may
        # also take notes (the logits norm of the tunnel experiment).
        self.rows_evaluator = Evaluator(self.bench)
        self.evaluate = evaluator if evaluator is not None else self.rows_evaluator
        self.phases: list[list[int]] = self.strategy.phases(self.bench.n_tasks)
        self.planned = [phase_steps(self.bench, p, cfg.train) for p in self.phases]
        self.R: list[list[float]] = []
        self.L: list[list[float]] = []
        self.baseline: list[float] | None = None
        self.curves = Curves()
        self.step = 0  # optimizer steps so far, over all phases
        self.next_phase = 0
        self.status, self.message = "done", ""
        self.timing = {"train_s": 0.0, "eval_s": 0.0, "setup_s": time.perf_counter() - t0}

    @property
    def n_tasks(self) -> int:
        return self.bench.n_tasks

    @property
    def finished(self) -> bool:
        return self.next_phase >= len(self.phases) or self.status != "done"

    def total_steps(self) -> int:
        """Steps done plus the planned rest (a phase that grows corrects it as it starts)."""
        return self.step + sum(self.planned[self.next_phase :])

    def measure_baseline(self) -> list[float]:
        """Accuracy of the untrained model on every task (b_i, for forward transfer)."""
        t0 = time.perf_counter()
        acc, _ = self.rows_evaluator(self.model, self.strategy)
        self.baseline = acc.tolist()
        self.timing["eval_s"] += time.perf_counter() - t0
        return self.baseline

    def run(
        self,
        on_event: EventFn | None = None,
        cancel: Callable[[], bool] | None = None,
        after_phase: Callable[[Session, int], None] | None = None,
        phases: int | None = None,
    ) -> None:
        """Train the phases not done yet (at most ``phases`` of them); see the module docstring."""
        emit = on_event or (lambda event: None)
        stop = (
            len(self.phases) if phases is None else min(len(self.phases), self.next_phase + phases)
        )
        while self.next_phase < stop and self.status == "done":
            phase = self.next_phase
            tasks = self.phases[phase]
            emit({"type": "task_start", "phase": phase, "tasks": tasks})
            n_curve = len(self.curves.step)
            t0 = time.perf_counter()
            try:
                steps = self._train(phase, tasks, emit, cancel)
            except Cancelled:
                emit({"type": "cancelled", "phase": phase})
                raise
            except Diverged as err:
                self.status, self.message = "diverged", str(err)
                emit({"type": "diverged", "phase": phase, "message": self.message})
                break
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            t1 = time.perf_counter()
            acc, loss = self.rows_evaluator(self.model, self.strategy)
            row, loss_row = acc.tolist(), loss.tolist()
            self.timing["train_s"] += t1 - t0
            self.timing["eval_s"] += time.perf_counter() - t1
            for point in range(n_curve, len(self.curves.step)):
                emit(
                    {"type": "eval", "step": self.curves.step[point], "acc": self.curves.acc[point]}
                )
            # A phase fills every row up to the last task it covered (joint: all rows at once).
            while len(self.R) < min(self.n_tasks, max(tasks) + 1):
                self.R.append(row)
                self.L.append(loss_row)
                emit({"type": "row", "t": len(self.R) - 1, "row": row})
            self.step += steps
            self.next_phase = phase + 1
            if after_phase is not None:
                after_phase(self, phase)

    def _train(self, phase: int, tasks: list[int], emit: EventFn, cancel) -> int:
        step0 = self.step

        def progress(p: dict) -> None:
            # steps before this phase + this phase's real length + the rest as planned
            total = step0 + p["total"] + sum(self.planned[phase + 1 :])
            emit({"type": "progress", **p, "global_step": step0 + p["step"], "total_steps": total})

        self.strategy.before_task(phase, self.model)
        steps = train_phase(
            self.model,
            self.strategy,
            self.bench,
            tasks,
            phase,
            self.cfg.train,
            self.evaluate,
            self.curves,
            step0,
            progress,
            cancel,
        )
        self.strategy.after_task(phase, self.model)
        return steps

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a new Session of the same config needs to continue where this one is."""
        return {
            "model": self.model.state_dict(),
            "strategy": self.strategy.state_dict(),
            "R": self.R,
            "L": self.L,
            "baseline": self.baseline,
            "curves": self.curves.to_dict(),
            "timing": dict(self.timing),
            "step": self.step,
            "phase": self.next_phase - 1,  # the last finished phase
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.strategy.load_state_dict(state["strategy"])
        self.R, self.L, self.baseline = state["R"], state["L"], state["baseline"]
        self.curves = Curves(**state["curves"])
        self.timing = {
            **state["timing"],
            "setup_s": state["timing"].get("setup_s", 0.0) + self.timing["setup_s"],
        }
        self.step, self.next_phase = state["step"], state["phase"] + 1

    def snapshot(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the model's weights (per-phase snapshots for later comparison)."""
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
