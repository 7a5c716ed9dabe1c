"""Representation experiments as configs: validated once, keyed, memoized in the store.

Each experiment kind lives in its own module with a pydantic spec and a ``compute`` function:

| kind | module | thesis |
|---|---|---|
| tunnel | engine.analysis.tunnel | 5.2, 5.3.2, 6.3.3: rank, probes (ID and OOD), CKA by layer, κ, ρ |
| erosion | engine.analysis.erosion | ch. 4: fine-tuning on class-coloured corner squares |
| repforget | engine.analysis.repforget | 3.3.1: frozen per-task probes, discriminative vs autoencoder |
| substitution | engine.analysis.substitution | 5.11.1 and Table 5.4.1: layer substitution, E_s + T_t |
| temperature | engine.analysis.temperature | 6.3, Tables 6.3.1–6.3.2: training at T = 1 … 1000 |

:func:`run_experiment` is the one entry point (CLI, app, sweeps): it validates the raw config,
derives the key (hash of the canonical JSON, the engine version and the kind), returns a stored
result at once, or computes, stores and returns it. A result is a JSON-ready dict that always
carries ``kind``, ``key``, ``config``, ``status``, ``metrics`` (headline numbers), ``timing`` and
``cached``; the store's listing shows ``kind`` so the Runs page can tell experiments apart.

Progress goes through ``on_event(dict)`` like ``engine.runner``: ``start`` (total_steps,
stages), ``progress`` (stage, global_step, total_steps), ``done`` (key, cached, metrics), and
``cancelled`` when ``cancel()`` turned true during training (``engine.train.Cancelled`` is then
re-raised).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine import settings
from engine.config import (
    ConfigError,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    format_error,
    n_classes,
    resolve,
    validate,
)
from engine.version import ENGINE_VERSION

EventFn = Callable[[dict], None]

KINDS: dict[str, str] = {
    "tunnel": "engine.analysis.tunnel",
    "erosion": "engine.analysis.erosion",
    "repforget": "engine.analysis.repforget",
    "substitution": "engine.analysis.substitution",
    "temperature": "engine.analysis.temperature",
}


# ------------------------------------------------------------------------------------ specs


class Spec(BaseModel):
    """Fields every experiment shares: the trained model's data/model/train sections (the same
    pydantic sections as a continual run) and the analysis settings."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    kind: ClassVar[str] = ""
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

    def canonical(self) -> Spec:
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


def engine_config(spec: Spec, scenario: str, strategy: str, **data: Any) -> ExperimentConfig:
    raw = {
        "scenario": scenario,
        "data": {**spec.data.model_dump(), **data},
        "model": spec.model.model_dump(),
        "train": spec.train.model_dump(),
        "strategy": {"name": strategy},
    }
    return validate(raw)


def single_task_config(spec: Spec, classes: int | None) -> ExperimentConfig:
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


def key_of(spec: Spec) -> str:
    """Stable key: hash of the engine version, the kind and the canonical spec's JSON."""
    text = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{ENGINE_VERSION}|{spec.kind}|{text}".encode()).hexdigest()[:24]


def spec_class(kind: str) -> type[Spec]:
    if kind not in KINDS:
        raise ConfigError(f"kind: {kind!r} is not an experiment; allowed: {', '.join(KINDS)}")
    return importlib.import_module(KINDS[kind]).Spec


def parse(kind: str, raw: dict | Spec | None = None) -> Spec:
    """Validate a raw dict (or pass a spec through), raising ConfigError with one line."""
    cls = spec_class(kind)
    if isinstance(raw, cls):
        return raw
    raw = dict(raw or {})
    # A partial section overrides the kind's own defaults (e.g. MLP-12), it does not replace them.
    defaults = cls().model_dump()
    for section in ("data", "model", "train"):
        if isinstance(raw.get(section), dict):
            raw[section] = {**defaults[section], **raw[section]}
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_error(err)) from None


def prepare(kind: str, raw: dict | Spec | None = None) -> tuple[Spec, str]:
    """Validated canonical spec and its key (raises ConfigError on bad input)."""
    try:
        spec = parse(kind, raw).canonical()
    except ValidationError as err:
        raise ConfigError(format_error(err)) from None
    return spec, key_of(spec)


# ------------------------------------------------------------------ name=value overrides


def setting_names(kind: str) -> dict[str, str]:
    """Every settable name of ``kind`` (bare or dotted) → its dotted path."""
    cls = spec_class(kind)
    names: dict[str, str] = {}
    for name in cls.model_fields:
        if name not in ("data", "model", "train"):
            names[name] = name
    for section, model in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
        for name in model.model_fields:
            names.setdefault(name, f"{section}.{name}")
            names[f"{section}.{name}"] = f"{section}.{name}"
    return names


def apply_settings(kind: str, raw: dict, items: list[str]) -> dict:
    """Apply ``name=value`` strings (CLI --set) to a raw spec dict; unknown names are errors."""
    return settings.apply(spec_class(kind), raw, items)


def comma_list(value: Any) -> Any:
    """'1,10,100' → ['1', '10', '100'] for list fields set from the command line."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, int | float):
        return [value]
    return value


# ---------------------------------------------------------------------------- progress


class Progress:
    """Turns the training loop's per-phase progress into experiment-wide events."""

    def __init__(
        self, kind: str, key: str, on_event: EventFn | None, cancel, store, use_cache: bool
    ):
        self.kind, self.key = kind, key
        self.on_event, self.cancel = on_event, cancel
        self.store, self.use_cache = store, use_cache
        self.total = 0
        self.done = 0
        self.stage = ""

    def emit(self, event: dict) -> None:
        if self.on_event is not None:
            self.on_event({"kind": self.kind, "key": self.key, **event})

    def start(self, total_steps: int, stages: list[str]) -> None:
        self.total = total_steps
        self.emit({"type": "start", "total_steps": total_steps, "stages": stages})

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        self.emit(
            {
                "type": "progress",
                "stage": stage,
                "global_step": self.done,
                "total_steps": self.total,
            }
        )

    def phase_callback(self) -> Callable[[dict], None]:
        def on_progress(p: dict) -> None:
            self.emit(
                {
                    "type": "progress",
                    "stage": self.stage,
                    "step": p["step"],
                    "global_step": self.done + p["step"],
                    "total_steps": self.total,
                    "step_s": p.get("step_s"),
                }
            )

        return on_progress

    def sub(self) -> Callable[[dict], None]:
        """on_event for a nested experiment: its progress counts towards this one's steps."""
        base = self.done

        def forward(event: dict) -> None:
            if event["type"] == "progress":
                self.emit(
                    {
                        "type": "progress",
                        "stage": self.stage,
                        "global_step": base + event["global_step"],
                        "total_steps": self.total,
                    }
                )

        return forward


def planned_steps(bench, cfg: ExperimentConfig) -> int:
    """Optimizer steps training ``cfg`` on ``bench`` takes (joint: one phase over all tasks)."""
    sizes = [hi - lo for lo, hi in bench.train_slices]
    phases = [sum(sizes)] if cfg.strategy.name == "joint" else sizes
    return sum(cfg.train.epochs * -(-n // cfg.train.batch_size) for n in phases)


# ---------------------------------------------------------------------------- training


class NormEvaluator:
    """engine.train.Evaluator that also records the mean per-sample L2 norm of the raw logits
    (before any temperature) on a fixed test subset at every evaluation point (thesis 6.3.2)."""

    def __init__(self, bench, n: int = 512) -> None:
        from engine.train import Evaluator

        self.inner = Evaluator(bench)
        from engine.analysis.activations import eval_subset

        self.x = bench.x_test[eval_subset(len(bench.x_test), n, device=bench.x_test.device)]
        self.norms: list[float] = []

    def __call__(self, model, strategy):
        from engine.analysis.activations import logits_of
        from engine.analysis.geometry import logits_norm

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


def build(cfg: ExperimentConfig, bench=None):
    """(benchmark, model, strategy) for a resolved config, seeded like engine.runner."""
    from engine.data import build_benchmark
    from engine.models import build_model
    from engine.strategies import Context, make_strategy
    from engine.train import cpu_threads

    device = torch.device(cfg.train.device)
    bench = bench if bench is not None else build_benchmark(cfg.data, cfg.scenario, device)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, bench.input_shape, bench.n_outputs).to(device)
    strategy = make_strategy(
        cfg.strategy, Context(bench, cfg.scenario, cfg.train, device, cfg.train.seed)
    )
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads(model, cfg.train.batch_size))
    return bench, model, strategy


def fit(
    cfg: ExperimentConfig,
    progress: Progress,
    stage: str,
    bench=None,
    keep_snapshots: bool = False,
    after_phase: Callable[[int, Any], None] | None = None,
) -> Fitted:
    """Train ``cfg`` phase by phase (as the runner does, without storing anything).

    A diverged run comes back with ``status="diverged"``; a cancelled one raises
    ``engine.train.Cancelled`` after a ``cancelled`` event.
    """
    from engine.train import Cancelled, Curves, Diverged, Evaluator, train_phase

    bench, model, strategy = build(cfg, bench)
    out = Fitted(cfg, bench, model, strategy)
    rows = Evaluator(bench)
    evaluate = NormEvaluator(bench)
    curves = Curves()
    evaluate(model, strategy)  # the logits norm at initialisation (step 0)
    progress.stage = stage
    t0 = time.perf_counter()
    step0 = 0
    for phase, tasks in enumerate(strategy.phases(bench.n_tasks)):
        strategy.before_task(phase, model)
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
                progress.phase_callback(),
                progress.cancel,
            )
        except Cancelled:
            progress.emit({"type": "cancelled", "stage": stage, "phase": phase})
            raise
        except Diverged as err:
            out.status, out.message = "diverged", str(err)
            break
        strategy.after_task(phase, model)
        acc, _ = rows(model, strategy)
        row = acc.tolist()
        while len(out.R) < min(bench.n_tasks, max(tasks) + 1):
            out.R.append(row)
        if keep_snapshots:
            out.snapshots.append(
                {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            )
        if after_phase is not None:
            after_phase(phase, model)
        step0 += steps
        progress.done += steps
    out.train_s = time.perf_counter() - t0
    out.curves = curves.to_dict()
    out.logits_norm = {"step": [0, *curves.step], "value": evaluate.norms[: len(curves.step) + 1]}
    return out


# ---------------------------------------------------------------------------- analysis


PROBE_BUDGET = 1 << 28  # activation floats held at once while probing (1 GiB in float32)


def _groups(widths: list[int], rows: int, budget: int) -> list[list[int]]:
    """Consecutive layer indices in groups whose rows × summed widths stay within budget."""
    groups: list[list[int]] = [[]]
    size = 0
    for i, w in enumerate(widths):
        if groups[-1] and size + w * rows > budget:
            groups.append([])
            size = 0
        groups[-1].append(i)
        size += w * rows
    return groups


def probe_subset(bench, n: int, seed: int) -> torch.Tensor:
    """Seeded subset of the training rows for fitting probes (all when n ≥ size)."""
    from engine.analysis.activations import eval_subset

    return eval_subset(len(bench.x_train), n, seed, device=bench.x_train.device)


def analyze_model(
    model, bench, spec: Spec, ood=None, progress: Progress | None = None, labels=None
) -> dict:
    """Rank, linear probes (ID and OOD), CKA and class variances by layer, for one model.

    ``labels`` maps output-unit targets to probe labels (default: the targets themselves).
    Probes: trained on up to ``probe_train`` training images, tested on the whole test split.
    Rank, CKA and variances: on the fixed evaluation subset of ``n_eval`` test images.
    """
    from engine.analysis.activations import collect, eval_subset
    from engine.analysis.cka import cka_matrix
    from engine.analysis.geometry import class_variances
    from engine.analysis.probes import train_probes
    from engine.analysis.rank import numerical_rank, rank_by_layer

    def stage(name: str) -> None:
        if progress is not None:
            progress.set_stage(name)

    seed = spec.train.seed
    lab = (lambda y: y) if labels is None else labels
    n_cls = bench.n_outputs if labels is None else int(lab(bench.y_train).max()) + 1
    stage("activations")
    ev = eval_subset(len(bench.x_test), spec.n_eval, device=bench.x_test.device)
    acts_eval = collect(model, bench.x_test[ev], max_features=spec.max_features)
    stage("rank")
    rank = rank_by_layer(acts_eval, spec.rel_tol, max_features=spec.max_features)
    input_rank = numerical_rank(bench.x_test[ev], spec.rel_tol, max_features=spec.max_features)
    stage("cka")
    cka = cka_matrix(acts_eval, method=spec.cka_method)
    variances = class_variances(acts_eval, bench.y_test[ev])
    stage("probes")
    tr = probe_subset(bench, spec.probe_train, seed)
    rows = len(tr) + len(bench.x_test) + (0 if ood is None else len(ood.x_train) + len(ood.x_test))
    probes: dict[str, list[float]] = {}
    # Probes of different layers are independent (engine.analysis.probes trains them together
    # only for speed), so layers are taken in groups whose activations fit PROBE_BUDGET floats.
    for group in _groups([int(a.shape[1]) for a in acts_eval], rows, PROBE_BUDGET):
        points = [model.probe_points[i] for i in group]

        def acts(x, points=points):
            return collect(model, x, points, max_features=spec.max_features)

        ood_args = None
        if ood is not None:
            ood_args = (acts(ood.x_train), ood.y_train, acts(ood.x_test), ood.y_test, ood.n_classes)
        part = train_probes(
            acts(bench.x_train[tr]),
            lab(bench.y_train[tr]),
            acts(bench.x_test),
            lab(bench.y_test),
            n_cls,
            epochs=spec.probe_epochs,
            lr=spec.probe_lr,
            batch_size=spec.probe_batch,
            seed=seed,
            ood=ood_args,
        )
        for name, values in part.items():
            probes.setdefault(name, []).extend(values)
    return {
        "layers": list(model.probe_points),
        "widths": [int(a.shape[1]) for a in acts_eval],
        "rank": rank,
        "input_rank": input_rank,
        "cka": cka,
        "variances": variances,
        "probe": probes,
        "acts_eval": acts_eval,  # dropped before storing; callers may compare models with it
    }


# ------------------------------------------------------------------------------ results


def clean(obj: Any) -> Any:
    """JSON-ready copy: arrays and tensors to lists, NaN and ±inf to None, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return clean(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, np.generic):
        return clean(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def run_experiment(
    kind: str,
    config: dict | Spec | None = None,
    on_event: EventFn | None = None,
    store=None,
    use_cache: bool = True,
    cancel: Callable[[], bool] | None = None,
) -> dict:
    """Run (or fetch) one experiment of ``kind``; see the module docstring."""
    from engine.store import Store

    spec, key = prepare(kind, config)
    store = store if store is not None else Store()
    progress = Progress(kind, key, on_event, cancel, store, use_cache)
    if use_cache:
        hit = store.get_result(key)
        if hit is not None:
            progress.emit(
                {
                    "type": "done",
                    "cached": True,
                    "status": hit.get("status"),
                    "metrics": hit.get("metrics"),
                }
            )
            return {**hit, "cached": True}
    t0 = time.perf_counter()
    body = importlib.import_module(KINDS[kind]).compute(spec, progress)
    result = clean(
        {
            "kind": kind,
            "key": key,
            "config": spec.model_dump(mode="json"),
            "status": body.pop("status", "done"),
            "message": body.pop("message", ""),
            "metrics": body.pop("metrics", {}),
            "timing": {"total_s": round(time.perf_counter() - t0, 3), **body.pop("timing", {})},
            "device": spec.train.device,
            **body,
        }
    )
    if use_cache:
        store.put_result(key, result)
    progress.emit(
        {"type": "done", "cached": False, "status": result["status"], "metrics": result["metrics"]}
    )
    return {**result, "cached": False}
