"""What the kinds that train a model and then look inside it share (tunnel, temperature,
erosion, repforget, substitution): the spec's sections and analysis settings, the training
config it implies, training through the one phase loop, and the cost of the analysis.

Not a kind itself (no ``NAME``): the registry skips it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field

from engine.analysis.activations import eval_subset, logits_of
from engine.analysis.geometry import logits_norm
from engine.config import (
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    n_classes,
    resolve,
    validate,
)
from engine.data import build_benchmark
from engine.errors import Cancelled, ConfigError
from engine.estimate import FLOAT, input_shape, model_profile, n_outputs, pool_sizes, training_cost
from engine.kinds.base import ComputeContext, Cost, KindSpec
from engine.session import Session
from engine.train import Evaluator

PROBE_BUDGET_BYTES = (1 << 28) * FLOAT  # activations held at once while probing (layers.py)


class TrainedSpec(KindSpec):
    """Fields every experiment shares: the trained model's data/model/train sections (the same
    pydantic sections as a continual run) and the analysis settings."""

    # The section fields a kind ignores are reset in the canonical form (one key per experiment).
    ignored_data: ClassVar[tuple[str, ...]] = ()

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    n_eval: int = Field(
        1000,
        ge=16,
        le=50_000,
        description="Test images in the fixed evaluation subset (rank, CKA, variances)",
    )
    probe_train: int = Field(
        10_000,
        ge=16,
        le=200_000,
        description="At most this many training images for the linear probes",
    )
    probe_epochs: int = Field(30, ge=1, le=1000, description="Linear-probe epochs (thesis: 30)")
    probe_lr: float = Field(
        1e-3, gt=0.0, le=1.0, description="Linear-probe Adam learning rate (thesis: 1e-3)"
    )
    # The thesis's 512 gives ~3,000 Adam steps on 50k CIFAR images but < 100 on the embedded
    # sets (1,437 digits), too few for zero-initialised probes to converge; 64 restores the steps.
    probe_batch: int = Field(
        64, ge=1, le=8192, description="Linear-probe minibatch (thesis: 512 on 50k images)"
    )
    max_features: int = Field(
        8192,
        ge=16,
        le=65_536,
        description="Wider layers are pooled / subsampled to this many features",
    )
    rel_tol: float = Field(
        1e-3, gt=0.0, lt=1.0, description="Rank threshold relative to σ₁ (thesis: 1e-3)"
    )
    cka_method: Literal["linear", "minibatch"] = Field(
        "linear",
        description="CKA estimator: linear (eq. 3.1, all samples) or minibatch (eqs. 5.1–5.2)",
    )

    # -- the engine config of the trained model ----------------------------------------------
    def training_config(self) -> ExperimentConfig:
        """The continual-run config whose model this experiment trains (validated)."""
        raise NotImplementedError

    def canonical(self) -> TrainedSpec:
        """Presets and the device filled in; ignored fields reset (idempotent)."""
        cfg = resolve(self.training_config())
        raw = self.model_dump()
        raw["data"], raw["model"], raw["train"] = (
            cfg.data.model_dump(),
            cfg.model.model_dump(),
            cfg.train.model_dump(),
        )
        for name in self.ignored_data:
            raw["data"][name] = DataConfig.model_fields[name].default
        return type(self).model_validate(raw)


def engine_config(spec: TrainedSpec, scenario: str, strategy: str, **data: Any) -> ExperimentConfig:
    raw = {
        "scenario": scenario,
        "data": {**spec.data.model_dump(), **data},
        "model": spec.model.model_dump(),
        "train": spec.train.model_dump(),
        "strategy": {"name": strategy},
    }
    return validate(raw)


def single_task_config(spec: TrainedSpec, classes: int | None) -> ExperimentConfig:
    """One task holding ``classes`` classes (all when None) of the seeded class order, joint."""
    if spec.data.split is not None or spec.data.n_tasks not in (None, 1):
        raise ConfigError(
            f"data.split: {spec.kind} trains one task on all classes; choose how many with classes=K"
        )
    k = classes or n_classes(spec.data)
    if k > n_classes(spec.data):
        raise ConfigError(
            f"classes: {k} is more than the {n_classes(spec.data)} classes of {spec.data.benchmark}"
        )
    if spec.data.benchmark == "permuted-mnist":
        raise ConfigError("data.benchmark: permuted-mnist has no single-task form; use split-mnist")
    return engine_config(spec, "class", "joint", split=str(k), n_tasks=1)


def comma_list(value: Any) -> Any:
    """'1,10,100' → ['1', '10', '100'] for list fields set from the command line."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, int | float):
        return [value]
    return value


def planned_steps(bench, cfg: ExperimentConfig) -> int:
    """Optimizer steps training ``cfg`` on ``bench`` takes (joint: one phase over all tasks)."""
    sizes = [hi - lo for lo, hi in bench.train_slices]
    phases = cfg.strategy.phases(len(sizes))
    return sum(
        cfg.train.epochs * math.ceil(sum(sizes[t] for t in tasks) / cfg.train.batch_size)
        for tasks in phases
    )


# ---------------------------------------------------------------------------- training


class NormEvaluator:
    """engine.train.Evaluator that also records the mean per-sample L2 norm of the raw logits
    (before any temperature) on a fixed test subset at every evaluation point (thesis 6.3.2)."""

    def __init__(self, bench, n: int = 512) -> None:
        self.inner = Evaluator(bench)
        self.x = bench.x_test[eval_subset(len(bench.x_test), n, device=bench.x_test.device)]
        self.norms: list[float] = []

    def __call__(self, model, strategy):
        out = self.inner(model, strategy)
        self.norms.append(logits_norm(logits_of(model, self.x), reduction="mean"))
        return out


@dataclass
class Fitted:
    """A model trained on a config, with what the experiments read from the training."""

    cfg: ExperimentConfig
    bench: Any
    model: Any
    strategy: Any
    R: list[list[float]] = field(default_factory=list)
    curves: dict = field(default_factory=dict)
    logits_norm: dict = field(default_factory=dict)
    snapshots: list[dict] = field(default_factory=list)  # state_dict after each phase (CPU copies)
    status: str = "done"
    message: str = ""
    train_s: float = 0.0


def fit(
    cfg: ExperimentConfig,
    ctx: ComputeContext,
    stage: str,
    bench=None,
    keep_snapshots: bool = False,
    after_phase: Callable[[int, Any], None] | None = None,
    resumable: bool = False,
) -> Fitted:
    """Train ``cfg`` through every phase with :class:`engine.session.Session`; the logits norm
    is noted at every evaluation point.

    ``resumable``: the computation's only training — checkpoint after each phase (the session,
    the norms, the snapshots) and continue from the checkpoint, so a cancelled or killed
    experiment resumes after its training instead of starting over. A diverged run comes back
    with ``status="diverged"``; a cancelled one raises ``engine.errors.Cancelled`` after a
    ``cancelled`` event.
    """
    bench = (
        bench if bench is not None else build_benchmark(cfg.data, cfg.scenario, cfg.train.device)
    )
    evaluate = NormEvaluator(bench)
    session = Session(cfg, bench=bench, evaluator=evaluate)
    snapshots: list[dict] = []
    saved = ctx.load_checkpoint() if resumable else None
    if saved is not None and saved.get("stage") == stage:
        session.load_state_dict(saved["session"])
        evaluate.norms = list(saved["norms"])
        snapshots = list(saved["snapshots"])
    else:
        evaluate(session.model, session.strategy)  # the logits norm at initialisation (step 0)

    def hook(s: Session, phase: int) -> None:
        if keep_snapshots:
            snapshots.append(s.snapshot())
        if after_phase is not None:
            after_phase(phase, s.model)
        if resumable:
            ctx.save_checkpoint(
                {
                    "stage": stage,
                    "session": s.state_dict(),
                    "norms": evaluate.norms,
                    "snapshots": snapshots,
                }
            )

    ctx.stage = stage
    t0 = time.perf_counter()
    try:
        session.run(on_event=ctx.session_events(), cancel=ctx.cancel, after_phase=hook)
    except Cancelled:
        ctx.emit({"type": "cancelled", "stage": stage})
        raise
    ctx.done += session.step
    curves = session.curves.to_dict()
    return Fitted(
        cfg,
        bench,
        session.model,
        session.strategy,
        R=session.R,
        curves=curves,
        logits_norm={
            "step": [0, *curves["step"]],
            "value": evaluate.norms[: len(curves["step"]) + 1],
        },
        snapshots=snapshots,
        status=session.status,
        message=session.message,
        train_s=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------------------- cost


def analysis_cost(spec: TrainedSpec, cfg: ExperimentConfig, models: int = 1) -> Cost:
    """Probes, activations, rank and CKA of ``models`` trained models of ``cfg``'s shape."""
    profile = model_profile(cfg.model, input_shape(cfg.data), n_outputs(cfg))
    params, fwd, act = profile.params, profile.macs, profile.activations
    train, test = pool_sizes(cfg.data)
    rows = min(spec.probe_train, train)
    classes = n_outputs(cfg)
    width = min(act, spec.max_features * 16)  # the probe points' features (pooled when wide)
    probes = 3 * spec.probe_epochs * rows * width * classes
    forward = (rows + test + spec.n_eval) * fwd
    rank_cka = spec.n_eval * width * width / 16  # covariance and Gram products, roughly
    held = min((rows + test) * width * FLOAT, PROBE_BUDGET_BYTES)
    return Cost(
        params=params,
        steps=spec.probe_epochs * math.ceil(rows / spec.probe_batch) * models,
        macs=float(models * (probes + forward + rank_cka)),
        peak_bytes=int(held + spec.n_eval * width * FLOAT),
    )


def trained_cost(spec: TrainedSpec, cfg: ExperimentConfig | None = None, models: int = 1) -> Cost:
    """Training ``models`` models of the spec's training config, then analysing each."""
    cfg = cfg if cfg is not None else resolve(spec.training_config())
    train = training_cost(cfg)
    total = Cost()
    for _ in range(models):
        total = total + train
    analysis = analysis_cost(spec, cfg, models)
    return Cost(
        params=total.params,
        steps=total.steps + analysis.steps,
        macs=total.macs + analysis.macs,
        peak_bytes=train.peak_bytes + analysis.peak_bytes,
    )
