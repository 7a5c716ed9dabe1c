"""Experiment configuration: pydantic models, benchmark presets, the canonical form and its key.

A config is validated once, here, at the edge; inner code trusts it. Every field carries a
default, a range and a one-line description; the CLI help and the app's tooltips and widget
bounds are read from these fields, so there is one source of truth for what is allowed.

Fields left at ``None`` mean "the benchmark's preset"; :func:`resolve` fills them in, and the
resolved (canonical) config is what gets hashed into the cache key.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from engine import plugins, settings
from engine.data.benchmark import facts_of
from engine.data.catalog import (  # noqa: F401 (EMBEDDED re-exported)
    BENCHMARK_NAMES,
    CATALOG,
    EMBEDDED,
    FOLDER_PREFIX,
    OWN_TEST_SPLIT,
    is_folder,
)
from engine.data.folder import canonical_name
from engine.errors import ConfigError
from engine.models import ARCHS
from engine.strategies import PARAMS_MODELS, STRATEGY_NAMES, scenario_problem
from engine.version import ENGINE_VERSION

# Built-in benchmarks and plugins' (engine.plugins loaded them when the catalog was imported);
# `folder:PATH` names the user's own images besides these.
BENCHMARKS = BENCHMARK_NAMES
SCENARIOS = ("task", "domain", "class")
FOLDER_HELP = "folder:PATH (a folder of class subfolders of images, or one .npz of x and y)"


def check_benchmark(name: str) -> str:
    """A benchmark name the config accepts: one of the catalog's, or ``folder:PATH`` (local
    mode only: on a hosted server it would read a path of the server). Reads no file."""
    if name in CATALOG:
        return name
    if is_folder(name):
        if plugins.hosted():
            raise ValueError(
                "folder benchmarks read a path on this machine and are off on a hosted demo; "
                "pick one of the demo's benchmarks"
            )
        if not name.removeprefix(FOLDER_PREFIX).strip():
            raise ValueError("folder: needs a path, e.g. folder:/data/my-images")
        return name
    raise ValueError(f"not a benchmark; allowed: {', '.join(CATALOG)}, or {FOLDER_HELP}")


Benchmark = Annotated[str, AfterValidator(check_benchmark)]
Scenario = Literal["task", "domain", "class"]
Arch = Literal[ARCHS]  # type: ignore[valid-type]  # built-ins and plugins' (engine.models)


class _Section(BaseModel):
    # Unknown keys are errors, so a typo never silently falls back to a default.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    benchmark: Benchmark = Field(
        "split-digits",
        description="Dataset split into tasks; split-digits and split-mnist5k work offline; folder:PATH reads your own images (a folder of class subfolders, or one .npz of x and y)",
    )
    split: str | None = Field(
        None,
        pattern=r"^\s*\d+\s*(,\s*\d+\s*)*$",
        description="Classes per task, e.g. '2,2,2,2,2' or '3,7'; empty = equal tasks of the benchmark's default size",
    )
    n_tasks: int | None = Field(
        None,
        ge=1,
        le=100,
        description="Number of tasks (permuted-mnist: permutations); empty = benchmark default",
    )
    order_seed: int | None = Field(
        0,
        ge=0,
        le=2**31 - 1,
        description="Seed of the class-order permutation; empty = natural order 0, 1, 2, …",
    )
    test_fraction: float = Field(
        0.2,
        ge=0.05,
        le=0.5,
        description="Held-out share for the embedded, synthetic and folder sets (fixed, stratified)",
    )
    synthetic_n: int = Field(
        10_000, ge=20, le=200_000, description="synthetic: number of images (train + test)"
    )
    synthetic_shape: str = Field(
        "1x28x28", description="synthetic: image shape CxHxW, each side 1…999"
    )
    synthetic_classes: int = Field(10, ge=2, le=100, description="synthetic: number of classes")
    synthetic_noise: float = Field(
        1.0,
        ge=0.0,
        le=100.0,
        description="synthetic: noise std around each class prototype (higher = harder)",
    )

    @field_validator("synthetic_shape")
    @classmethod
    def _shape(cls, v: str) -> str:
        if not re.fullmatch(r"[1-9]\d{0,2}x[1-9]\d{0,2}x[1-9]\d{0,2}", v.strip()):
            raise ValueError("expected CxHxW with each side 1…999, e.g. 1x28x28 or 3x32x32")
        return v.strip()


class ModelConfig(_Section):
    arch: Arch | None = Field(
        None, description="Network: MLP, small CNN, VGG (32×32 family) or ResNet; empty = preset"
    )
    depth: int | None = Field(
        None, ge=1, le=64, description="MLP hidden layers / small-CNN conv layers; empty = preset"
    )
    width: int | None = Field(
        None,
        ge=1,
        le=8192,
        description="MLP hidden width / small-CNN base channels; empty = preset",
    )
    width_factor: float = Field(
        1.0, ge=0.0625, le=4.0, description="VGG/ResNet channel multiplier (thesis: ¼, 1, 2)"
    )
    skips: bool = Field(
        True, description="ResNet: keep the skip connections (off = thesis 5.15 ablation)"
    )
    batch_norm: bool = Field(True, description="CNN/VGG/ResNet: use batch normalisation")


class TrainConfig(_Section):
    optimizer: Literal["sgd", "adam"] | None = Field(None, description="Optimizer; empty = preset")
    lr: float | None = Field(None, gt=0.0, le=10.0, description="Learning rate; empty = preset")
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="SGD momentum")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="L2 weight decay of the optimizer")
    batch_size: int | None = Field(
        None, ge=1, le=8192, description="Minibatch size; empty = preset"
    )
    epochs: int | None = Field(None, ge=1, le=1000, description="Epochs per task; empty = preset")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of initialisation and shuffling")
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="Where to train; auto = CUDA, then MPS, then CPU"
    )
    temperature: float = Field(
        1.0, ge=1e-3, le=1e4, description="Softmax temperature: the loss sees logits / T"
    )
    dynamic_temperature: bool = Field(
        False, description="Use T = ‖logits‖_F of each batch instead of a fixed T (thesis 6.2.5)"
    )
    compensate_lr: bool = Field(
        False,
        description="Multiply the learning rate by T so gradients keep their size at high temperature",
    )
    amp: bool = Field(
        False, description="Mixed precision (bf16 autocast) on CUDA; ignored elsewhere"
    )
    evals_per_task: int = Field(
        5,
        ge=1,
        le=100,
        description="Evaluations of every task during each task's training (accuracy curves)",
    )


StrategyConfig = Annotated[Union[tuple(PARAMS_MODELS)], Field(discriminator="name")]  # noqa: UP007


class ExperimentConfig(_Section):
    scenario: Scenario = Field(
        "class",
        description="task = a head per task, id given; domain = one shared head; class = one growing head",
    )
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    strategy: StrategyConfig = Field(default_factory=lambda: PARAMS_MODELS[0]())

    @model_validator(mode="after")
    def _scenario_fits_strategy(self) -> ExperimentConfig:
        problem = scenario_problem(self.strategy, self.scenario)
        if problem:
            raise ValueError(problem)
        return self


# Benchmark facts come from the one table in engine.data.catalog (a folder's from its files).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {name: f.preset for name, f in CATALOG.items()}


def preset_of(benchmark: str) -> dict[str, dict[str, Any]]:
    """The training preset of any benchmark name (a folder's depends on its images: reads it)."""
    return facts_of(benchmark).preset


def n_classes(data: DataConfig) -> int:
    """Classes in the underlying dataset (before any split)."""
    if data.benchmark == "synthetic":
        return data.synthetic_classes
    return facts_of(data.benchmark).n_classes


def task_sizes(data: DataConfig) -> list[int] | None:
    """Classes per task of a resolved data config (None for permuted-mnist: all classes each task)."""
    if data.benchmark == "permuted-mnist" or data.split is None:
        return None
    return [int(s) for s in data.split.split(",")]


def resolve_device(device: str) -> str:
    """`auto` → cuda, then mps, then cpu. An explicit device that is absent is a ConfigError."""
    import torch

    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "train.device: 'cuda' was asked for but no CUDA GPU is available (use auto or cpu)"
        )
    if device == "mps" and not has_mps:
        raise ConfigError(
            "train.device: 'mps' was asked for but MPS is not available (use auto or cpu)"
        )
    return device


def resolve(cfg: ExperimentConfig, device: str | None = None) -> ExperimentConfig:
    """Fill every preset-dependent field and the device, giving the canonical config.

    Idempotent: resolving a resolved config changes nothing.
    """
    raw = cfg.model_dump()
    facts = facts_of(cfg.data.benchmark)  # a folder: ConfigError here when it is not usable
    if is_folder(cfg.data.benchmark):  # its absolute path and content tag: new files, new key
        raw["data"]["benchmark"] = canonical_name(cfg.data.benchmark)
    for section in ("data", "model", "train"):
        for name, value in facts.preset[section].items():
            if name not in raw[section]:
                raise ConfigError(
                    f"data.benchmark: the preset of {facts.name!r} sets {section}.{name}, "
                    "which is not a setting"
                )
            if raw[section][name] is None:
                raw[section][name] = value
    data = raw["data"]
    total = n_classes(cfg.data)
    if cfg.data.benchmark == "permuted-mnist":
        data["split"] = None
    elif data["split"] is None:
        per_task, rest = divmod(total, data["n_tasks"])
        if per_task == 0 or rest:
            raise ConfigError(
                f"data.n_tasks: {data['n_tasks']} tasks do not divide {total} classes evenly; "
                f"give data.split (e.g. '3,7') or a divisor of {total}"
            )
        data["split"] = ",".join([str(per_task)] * data["n_tasks"])
    else:
        sizes = [int(s) for s in data["split"].split(",")]
        if min(sizes) < 1 or sum(sizes) > total:
            raise ConfigError(
                f"data.split: '{data['split']}' needs at least 1 class per task and at most {total} classes in all"
            )
        if raw["scenario"] == "domain" and len(set(sizes)) > 1:
            raise ConfigError(
                f"data.split: the domain scenario shares one head, so every task needs the same number of classes (got '{data['split']}')"
            )
        data["split"] = ",".join(str(s) for s in sizes)
        data["n_tasks"] = len(sizes)
    if data["n_tasks"] < 2 and raw["strategy"]["name"] != "joint":
        raise ConfigError("data.n_tasks: continual learning needs at least 2 tasks")
    # Fields that cannot change the result are reset, so equal experiments share one key.
    if cfg.data.benchmark != "synthetic":
        for name in ("synthetic_n", "synthetic_shape", "synthetic_classes", "synthetic_noise"):
            data[name] = DataConfig.model_fields[name].default
    if not facts.own_test_split:
        data["test_fraction"] = DataConfig.model_fields["test_fraction"].default
    if raw["model"]["arch"] == "mlp":
        for name in ("width_factor", "skips", "batch_norm"):
            raw["model"][name] = ModelConfig.model_fields[name].default
    if raw["train"]["optimizer"] != "sgd":
        raw["train"]["momentum"] = TrainConfig.model_fields["momentum"].default
    raw["train"]["device"] = device or resolve_device(cfg.train.device)
    return validate(raw)


def canonical_json(cfg: ExperimentConfig) -> str:
    return json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def config_key(cfg: ExperimentConfig) -> str:
    """Stable key: hash of the canonical (resolved) config and the engine version."""
    payload = f"{ENGINE_VERSION}|{canonical_json(cfg)}".encode()
    return hashlib.sha256(payload).hexdigest()[:24]


def format_error(err: ValidationError) -> str:
    """One line naming the field and what is allowed (pydantic's message, first error)."""
    first = err.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"] if not (isinstance(p, str) and p in STRATEGY_NAMES))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "union_tag_invalid":
        name = settings.echo(first["input"].get("name"))
        return f"strategy.name: {name} is not a strategy; allowed: {', '.join(STRATEGY_NAMES)}"
    if first["type"] == "extra_forbidden":
        return f"{loc}: unknown setting"
    got = first.get("input")
    tail = f" (got {settings.echo(got)})" if got is not None and not isinstance(got, dict) else ""
    return f"{loc}: {msg}{tail}" if loc else f"{msg}{tail}"


def validate(raw: dict[str, Any] | ExperimentConfig) -> ExperimentConfig:
    """Validate a raw dict into a config, raising ConfigError with one clear line."""
    if isinstance(raw, ExperimentConfig):
        return raw
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_error(err)) from None


# ---- name=value overrides (CLI --set, URL query strings): engine.settings for a run's config --


def field_names(strategy: str | None = None) -> dict[str, str]:
    """Map every settable bare name to its dotted path (strategy fields for `strategy`)."""
    raw = {"strategy": {"name": strategy}} if strategy else {}
    return {name: path for name, (path, _) in settings.fields_of(ExperimentConfig, raw).items()}


def apply_overrides(raw: dict[str, Any], items: list[str]) -> dict[str, Any]:
    """Apply `name=value` strings to a raw config dict (bare names or dotted paths)."""
    raw = {**raw, "strategy": raw.get("strategy") or {"name": "naive"}}
    return settings.apply(ExperimentConfig, raw, items)


def field_info(path: str) -> dict[str, Any]:
    """Default, bounds and description of a dotted field path — what widgets and help text use."""
    section, _, name = path.partition(".")
    if section == "strategy":
        strategy, _, name = name.partition(".")
        model = PARAMS_MODELS[STRATEGY_NAMES.index(strategy)]
    else:
        model = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}[section]
    field = model.model_fields[name]
    bounds: dict[str, Any] = {}
    for meta in field.metadata:
        for attr in ("ge", "gt", "le", "lt"):
            if getattr(meta, attr, None) is not None:
                bounds[attr] = getattr(meta, attr)
    return {"default": field.default, "description": field.description or "", **bounds}
