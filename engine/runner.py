"""run(config, on_event) → Result: memoized, resumable per task, reporting progress as it goes.

The flow of one run:
1. validate and resolve the config (the canonical form) and derive its key;
2. a stored result under that key is returned at once (``cached=True``);
3. otherwise the benchmark, the model and the strategy are built; a stored checkpoint, if any,
   restores the finished tasks, so an interrupted run resumes at the next one;
4. each phase trains, is evaluated on every task (a row of R), and is checkpointed;
5. the finished result is stored and the checkpoint dropped.

Every step reports through one callback, ``on_event(dict)``, that the CLI's progress bar and
the app's live view both consume. Event types: start, task_start, progress, eval, row, done,
cancelled, diverged, error.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.config import ExperimentConfig, config_key, resolve, validate

EventFn = Callable[[dict], None]


@dataclass
class Result:
    key: str
    config: dict
    R: list[list[float]]
    baseline: list[float]
    metrics: dict
    timing: dict
    curves: dict = field(default_factory=dict)
    loss_matrix: list[list[float]] = field(default_factory=list)
    status: str = "done"  # done | diverged
    message: str = ""
    device: str = "cpu"
    cached: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json_contract(self) -> dict:
        """The CLI's --json document (ARCHITECTURE.md), plus curves and status."""
        d = self.to_dict()
        d["metrics"] = {
            k: self.metrics.get(k)
            for k in ("acc", "learning_acc", "bwt", "fwt", "forgetting", "rem")
        }
        return d

    @classmethod
    def from_dict(cls, d: dict, cached: bool = False) -> Result:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["cached"] = cached
        return cls(**known)


def prepare(config: ExperimentConfig | dict[str, Any]) -> tuple[ExperimentConfig, str]:
    """Validated, resolved config and its key (raises ConfigError on bad input)."""
    cfg = resolve(validate(config))
    return cfg, config_key(cfg)


def _emit(on_event: EventFn | None, event: dict) -> None:
    if on_event is not None:
        on_event(event)


def run(
    config: ExperimentConfig | dict[str, Any],
    on_event: EventFn | None = None,
    store=None,
    use_cache: bool = True,
    cancel: Callable[[], bool] | None = None,
    record_activations: int = 0,
) -> Result:
    """Run (or fetch) one continual-learning experiment. See the module docstring.

    ``record_activations=N`` stores every probe point's activations on N fixed test images
    after each task (extras ``acts/<t>``, engine.analysis.activations); a run already stored
    is returned as it is, without them.

    With ``use_cache=False`` nothing is read from or written to any store (sweep workers and
    benchmarks use this). Otherwise one process computes a key at a time: others asking for
    the same key wait for its result (or take over, resuming from its checkpoint, when its
    lease — renewed by a heartbeat — expires because it died).
    """
    cfg, key = prepare(config)
    if not use_cache:
        return _train(cfg, key, None, on_event, cancel, record_activations)
    from engine.store import Store

    store = store if store is not None else Store()
    hit = store.get_result(key)
    if hit is not None:
        return _cached(hit, key, on_event)
    owner = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"
    ttl = float(os.environ.get("FORGET_LEASE_TTL", "30"))
    announced = False
    while not store.try_lease(key, owner, ttl):
        if not announced:
            _emit(on_event, {"type": "waiting", "key": key, "holder": store.lease_holder(key)})
            announced = True
        time.sleep(min(1.0, ttl / 10))
        if cancel is not None and cancel():
            raise _cancelled_error(f"cancelled while waiting for {key}")
        hit = store.get_result(key)
        if hit is not None:
            return _cached(hit, key, on_event)
    try:
        hit = store.get_result(key)  # finished by another process just before we got the lease
        if hit is not None:
            return _cached(hit, key, on_event)
        with _Heartbeat(store, key, owner, ttl):
            return _train(cfg, key, store, on_event, cancel, record_activations)
    finally:
        store.release_lease(key, owner)


def _cached(hit: dict, key: str, on_event: EventFn | None) -> Result:
    result = Result.from_dict(hit, cached=True)
    _emit(on_event, {"type": "done", "key": key, "cached": True, "status": result.status})
    return result


def _cancelled_error(message: str) -> Exception:
    from engine.train import Cancelled

    return Cancelled(message)


class _Heartbeat:
    """Renews a lease every ttl/3 s from a daemon thread, so a live run keeps its claim even
    through long steps, and a killed one loses it within ttl."""

    def __init__(self, store, key: str, owner: str, ttl: float) -> None:
        self.store, self.key, self.owner, self.ttl = store, key, owner, ttl
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"lease-{key[:8]}")

    def _beat(self) -> None:
        while not self.stop.wait(self.ttl / 3):
            self.store.renew_lease(self.key, self.owner, self.ttl)

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def _train(
    cfg: ExperimentConfig, key: str, store, on_event, cancel, record_activations: int = 0
) -> Result:
    """Train from scratch, or from the stored checkpoint; store each task and the result
    (``store=None``: compute only)."""
    import torch

    from engine.data import build_benchmark
    from engine.metrics import summarize
    from engine.models import build_model
    from engine.strategies import Context, make_strategy
    from engine.train import Cancelled, Curves, Diverged, Evaluator, cpu_threads, train_phase

    t_start = time.perf_counter()
    device = torch.device(cfg.train.device)
    bench = build_benchmark(cfg.data, cfg.scenario, device)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, bench.input_shape, bench.n_outputs).to(device)
    strategy = make_strategy(
        cfg.strategy, Context(bench, cfg.scenario, cfg.train, device, cfg.train.seed)
    )
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(model, cfg.train.batch_size))
    evaluate = Evaluator(bench)
    phases = strategy.phases(bench.n_tasks)
    T = bench.n_tasks

    R: list[list[float]] = []
    L: list[list[float]] = []
    curves = Curves()
    timing = {"train_s": 0.0, "eval_s": 0.0, "setup_s": 0.0}
    step0, first_phase = 0, 0
    ckpt = store.get_checkpoint(key) if store is not None else None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        strategy.load_state_dict(ckpt["strategy"])
        R, L, baseline = ckpt["R"], ckpt["L"], ckpt["baseline"]
        curves = Curves(**ckpt["curves"])
        timing, step0, first_phase = ckpt["timing"], ckpt["step"], ckpt["phase"] + 1
    else:
        t0 = time.perf_counter()
        acc, _ = evaluate(model, strategy)
        baseline = acc.tolist()
        timing["eval_s"] += time.perf_counter() - t0
    timing["setup_s"] += time.perf_counter() - t_start

    # An estimate from each phase's own data; a strategy whose phase_data grows or shrinks a
    # phase (replay's grow_epoch, low-lr's held-out slice) corrects it as that phase starts.
    planned = [_phase_steps(bench, p, cfg.train) for p in phases]
    total_steps = sum(planned)
    _emit(
        on_event,
        {
            "type": "start",
            "key": key,
            "n_tasks": T,
            "n_phases": len(phases),
            "resumed_at": first_phase,
            "total_steps": total_steps,
            "baseline": baseline,
            "R": R,
            "config": cfg.model_dump(mode="json"),
        },
    )

    def progress(p: dict) -> None:
        _emit(
            on_event,
            {
                "type": "progress",
                "key": key,
                **p,
                "global_step": step0 + p["step"],
                # steps done before this phase + this phase's real length + the rest as planned
                "total_steps": step0 + p["total"] + sum(planned[p["phase"] + 1 :]),
            },
        )

    status, message = "done", ""
    for phase in range(first_phase, len(phases)):
        tasks = phases[phase]
        _emit(on_event, {"type": "task_start", "key": key, "phase": phase, "tasks": tasks})
        t0 = time.perf_counter()
        strategy.before_task(phase, model)
        n_curve = len(curves.step)
        try:
            steps = train_phase(
                model,
                strategy,
                bench,
                tasks,
                phase,
                cfg.train,
                evaluate,
                curves,
                step0,
                progress,
                cancel,
            )
        except Cancelled:
            _emit(on_event, {"type": "cancelled", "key": key, "phase": phase})
            raise
        except Diverged as err:
            status, message = "diverged", str(err)
            _emit(on_event, {"type": "diverged", "key": key, "phase": phase, "message": message})
            break
        strategy.after_task(phase, model)
        if record_activations and store is not None:  # for drift and rank over time, from the store
            from engine.analysis.activations import record_after_task

            store.put_extra(
                key, f"acts/{phase}", record_after_task(model, bench, record_activations)
            )
        if device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        acc, loss = evaluate(model, strategy)
        row, loss_row = acc.tolist(), loss.tolist()
        t2 = time.perf_counter()
        timing["train_s"] += t1 - t0
        timing["eval_s"] += t2 - t1
        for point in range(n_curve, len(curves.step)):
            _emit(
                on_event,
                {"type": "eval", "key": key, "step": curves.step[point], "acc": curves.acc[point]},
            )
        # A phase fills every row up to the last task it covered (joint: all rows at once).
        while len(R) < min(T, max(tasks) + 1):
            R.append(row)
            L.append(loss_row)
            _emit(on_event, {"type": "row", "key": key, "t": len(R) - 1, "row": row})
        step0 += steps
        if store is not None:
            store.put_checkpoint(
                key,
                {
                    "model": model.state_dict(),
                    "strategy": strategy.state_dict(),
                    "R": R,
                    "L": L,
                    "baseline": baseline,
                    "curves": curves.to_dict(),
                    "timing": timing,
                    "step": step0,
                    "phase": phase,
                },
            )

    timing["total_s"] = timing["train_s"] + timing["eval_s"] + timing["setup_s"]
    metrics = summarize(R, baseline) if len(R) == T else {}
    result = Result(
        key=key,
        config=cfg.model_dump(mode="json"),
        R=R,
        baseline=baseline,
        metrics=metrics,
        timing={k: round(v, 4) for k, v in timing.items()},
        curves=curves.to_dict(),
        loss_matrix=L,
        status=status,
        message=message,
        device=device.type,
    )
    if store is not None:
        store.put_result(key, result.to_dict())
        store.delete_checkpoint(key)
    _emit(
        on_event,
        {
            "type": "done",
            "key": key,
            "cached": False,
            "status": status,
            "metrics": metrics,
            "message": message,
        },
    )
    return result


def _phase_steps(bench, tasks: list[int], train_cfg) -> int:
    idx = bench.train_index(tasks)
    n = (idx.stop - idx.start) if isinstance(idx, slice) else len(idx)
    return train_cfg.epochs * -(-n // train_cfg.batch_size)
