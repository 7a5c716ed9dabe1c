"""Training at high softmax temperature (thesis 6.3, Tables 6.3.1–6.3.2, Figs. 6.3.1–6.3.4).

The same model (same seed, so the same initialisation) is trained once per temperature T: the
loss sees logits / T (engine.train.task_loss). Each run is a memoized tunnel experiment
(engine.kinds.tunnel) with ``train.temperature = T``, so every layer's rank, ID and OOD
probe accuracy, κ and ρ, and the logits norm over training are measured the same way; this
experiment collects them into the table of the thesis (one row per T).

``compensate_lr=true`` multiplies the learning rate by T (the thesis "adjusted [the learning
rate] to compensate for slower training at higher temperatures"); it matters for SGD, whose
steps shrink with the 1/T gradients, much less for Adam, which normalises gradient scale away.

Defaults: MLP-8 of width 256 (the thesis's Fig. 6.3.1 network) on split-digits, T ∈ {1, 10,
100, 1000}, Adam (lr 1e-3, batch 128, 60 epochs), no compensation: four short runs. Adam
keeps the step size whatever T is, so the network must grow its logits by T to fit the data,
which is the mechanism of 6.3.2 (see docs/analysis.md for what SGD does).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from engine.config import DataConfig, ModelConfig, TrainConfig, resolve
from engine.data import build_benchmark
from engine.kinds import trained, tunnel
from engine.kinds.base import ComputeContext, Cost

NAME = "temperature"
TITLE = "Temperature"
SUMMARY = "The tunnel experiment once per softmax temperature T: κ, ρ and rank against T."


class Spec(tunnel.Spec):
    kind = NAME

    data: DataConfig = Field(default_factory=DataConfig)  # split-digits: four short runs
    model: ModelConfig = Field(default_factory=lambda: ModelConfig(arch="mlp", depth=8, width=256))
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(optimizer="adam", lr=1e-3, batch_size=128, epochs=60)
    )
    temperatures: list[float] = Field(
        [1.0, 10.0, 100.0, 1000.0],
        min_length=1,
        max_length=8,
        description="Softmax temperatures to train at, e.g. 1,10,100,1000 (each 0.001…10000)",
    )

    @field_validator("temperatures", mode="before")
    @classmethod
    def _split(cls, v):
        return trained.comma_list(v)

    @field_validator("temperatures")
    @classmethod
    def _range(cls, v: list[float]) -> list[float]:
        bad = [t for t in v if not 1e-3 <= t <= 1e4]
        if bad:
            raise ValueError(f"every temperature must be in 0.001…10000 (got {bad})")
        if len(set(v)) != len(v):
            raise ValueError(f"temperatures must be distinct (got {v})")
        return v

    def canonical(self) -> Spec:
        spec = super().canonical()
        spec.train = spec.train.model_copy(
            update={"temperature": 1.0, "dynamic_temperature": False}
        )
        return spec

    def at(self, temperature: float) -> tunnel.Spec:
        """The tunnel experiment of one temperature."""
        raw = self.model_dump(exclude={"temperatures"})
        raw["train"]["temperature"] = temperature
        return tunnel.Spec.model_validate(raw)


def estimate(spec: Spec) -> Cost:
    total = Cost()
    for t in spec.temperatures:
        total = total + tunnel.estimate(spec.at(t))
    return total


def compute(spec: Spec, ctx: ComputeContext) -> dict:
    cfg = resolve(spec.at(spec.temperatures[0]).training_config())
    bench = build_benchmark(cfg.data, cfg.scenario, cfg.train.device)
    steps = trained.planned_steps(bench, cfg)
    ctx.start(steps * len(spec.temperatures), [f"T={t:g}" for t in spec.temperatures])
    rows, runs = [], []
    for t in spec.temperatures:
        ctx.set_stage(f"T={t:g}")
        sub = ctx.sub("tunnel", spec.at(t), steps=steps)  # each T is a stored tunnel result
        runs.append(sub)
        ood = sub.get("ood") or {}
        norms = (sub.get("logits_norm") or {}).get("value") or [None]
        rows.append(
            {
                "temperature": t,
                "key": sub["key"],
                "status": sub["status"],
                "acc": sub.get("model_acc"),
                "train_acc": sub.get("train_acc"),
                "kappa": sub.get("kappa"),
                "rho": sub.get("rho"),
                "rank": sub.get("rank"),
                "probe": (sub.get("probe") or {}).get("test_acc"),
                "ood": ood.get("acc"),
                "logits_norm_start": norms[0],
                "logits_norm_end": norms[-1],
            }
        )
    first = runs[0]
    return {
        "layers": first.get("layers"),
        "ood": None
        if not first.get("ood")
        else {k: first["ood"][k] for k in ("name", "note", "n_classes")},
        "table": rows,
        "runs": {
            f"{t:g}": {
                k: r.get(k)
                for k in (
                    "key",
                    "logits_norm",
                    "curves",
                    "cka",
                    "alignment",
                    "alignment_reps",
                    "weight_norms",
                    "variances",
                )
            }
            for t, r in zip(spec.temperatures, runs, strict=True)
        },
        "metrics": {
            "temperatures": spec.temperatures,
            "acc": [r["acc"] for r in rows],
            "kappa": [r["kappa"] for r in rows],
            "rho": [r["rho"] for r in rows],
            "last_rank": [None if r["rank"] is None else r["rank"][-1] for r in rows],
        },
        "status": "done" if all(r["status"] == "done" for r in rows) else "partial",
    }
