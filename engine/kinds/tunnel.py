"""The tunnel experiment (thesis 5.2, 5.3.2, 6.3.3): train one model, then look at every layer.

One model is trained on one task — all classes of the benchmark, or the first ``classes`` of its
seeded class order (thesis 5.3.2 trains on class subsets) — and then, layer by layer:

* the numerical rank of the representations (thesis 5.2.1) on a fixed test subset, and of the
  logits, where the collapse to about the number of classes shows;
* linear probes in distribution and on an OOD set (engine.analysis.ood), on every layer and on
  the raw input; the tunnel starts at the first layer that has made 95 % (98 %) of the gain
  from the input probe to the best probe (Table 5.2.1 takes a share of the accuracy itself,
  which on nearly separable data puts every start at layer 1);
* compression κ (first layer reaching η of the best ID probe accuracy ÷ depth) and OOD loss
  ρ (thesis 6.3.3);
* CKA layer × layer (Fig. 5.2.3), inter/intra-class variance (5.13), weight norms and
  top-15 singular-vector alignment of consecutive layers (6.3.2);
* the logits norm at every evaluation point of training (Fig. 6.3.2).

Layer numbers in results are 1-based like the thesis (``tunnel_start["0.95"]["layer"]``);
lists are indexed from 0 (layer ``i + 1`` at index ``i``).

Defaults: a He-initialised MLP-12 of width 512 on split-mnist5k, SGD (lr 0.05, batch 128,
40 epochs): 1,280 steps, a minute or two of one CPU core; the probes rise from the input's
~0.91 to ~0.94 and saturate by layer 4–6, the rank falls after, and the logits' rank is about
the number of classes — the extractor/tunnel split the page is about (on split-digits, 8×8
digits are linearly separable at the input and there is little to see). Thesis scale (5.8.1):
``--benchmark split-cifar10 --set width=1024 --set optimizer=sgd --set lr=0.05 --epochs 1000``
for MLP-12, or ``--set arch=vgg19 --set optimizer=sgd --set lr=0.1 --set momentum=0.9
--set weight_decay=1e-4 --epochs 160`` (the thesis also decays the learning rate, which the
engine's TrainConfig does not).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field, field_validator

from engine.analysis.geometry import singular_alignment, weight_norms
from engine.analysis.layers import analyze_model
from engine.analysis.ood import OOD_SETS, load_ood
from engine.analysis.probes import compression_kappa, ood_loss_rho, tunnel_start
from engine.config import DataConfig, ModelConfig, TrainConfig, resolve
from engine.data import build_benchmark
from engine.kinds import trained
from engine.kinds.base import ComputeContext, Cost
from engine.train import Evaluator

NAME = "tunnel"
TITLE = "Tunnel"
SUMMARY = (
    "Train one network on one task, then rank, linear probes (ID and OOD), κ, ρ and CKA by layer."
)

OODName = Literal[OOD_SETS]  # type: ignore[valid-type]


class Spec(trained.TrainedSpec):
    kind = NAME
    ignored_data = ("split", "n_tasks")

    data: DataConfig = Field(default_factory=lambda: DataConfig(benchmark="split-mnist5k"))
    model: ModelConfig = Field(default_factory=lambda: ModelConfig(arch="mlp", depth=12, width=512))
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(optimizer="sgd", lr=0.05, batch_size=128, epochs=40)
    )
    classes: int | None = Field(
        None,
        ge=2,
        le=100,
        description="Train on the first k classes of the seeded class order; empty = all",
    )
    ood: OODName = Field(
        "auto", description="OOD probe set; auto = the benchmark's pair (see docs/analysis.md)"
    )
    ood_train: int = Field(
        10_000, ge=16, le=200_000, description="At most this many OOD images to fit OOD probes"
    )
    ood_test: int = Field(
        5_000, ge=16, le=100_000, description="At most this many OOD images to test OOD probes"
    )
    eta: float = Field(
        0.99,
        gt=0.0,
        le=1.0,
        description="κ threshold: share of the best probe accuracy (thesis: 0.99)",
    )

    @field_validator("ood", mode="before")
    @classmethod
    def _none(cls, v):
        return "none" if v is None else v  # `--set ood=none` parses as null

    def training_config(self):
        return trained.single_task_config(self, self.classes)


def estimate(spec: Spec) -> Cost:
    return trained.trained_cost(spec)


def _load_ood(spec: Spec, cfg, bench):
    return load_ood(
        spec.ood,
        cfg.data.benchmark,
        cfg.data,
        bench.input_shape,
        spec.ood_train,
        spec.ood_test,
        seed=cfg.train.seed,
        device=bench.x_train.device,
    )


def compute(spec: Spec, ctx: ComputeContext) -> dict:
    cfg = resolve(spec.training_config())
    bench = build_benchmark(cfg.data, cfg.scenario, cfg.train.device)
    ood = _load_ood(spec, cfg, bench)  # before training: missing data fails fast
    ctx.start(trained.planned_steps(bench, cfg), ["train", "activations", "rank", "cka", "probes"])
    fitted = trained.fit(cfg, ctx, "train", bench=bench, resumable=True)
    return summarize(spec, fitted, ood, ctx)


def summarize(spec: Spec, fitted: trained.Fitted, ood, ctx: ComputeContext | None = None) -> dict:
    """Every per-layer analysis of a trained model (the tunnel result's body)."""
    base = {
        "curves": fitted.curves,
        "logits_norm": fitted.logits_norm,
        "timing": {"train_s": round(fitted.train_s, 3)},
    }
    if fitted.status != "done":
        return {**base, "status": fitted.status, "message": fitted.message, "metrics": {}}
    model, bench = fitted.model, fitted.bench
    res = analyze_model(model, bench, spec, ood, None if ctx is None else ctx.set_stage)
    acts_eval = res.pop("acts_eval")
    probe = res["probe"]["test_acc"]
    input_acc = res["input_probe"]["test_acc"]
    starts = {}
    for frac in (0.95, 0.98):
        i = tunnel_start(probe, frac, input_acc=input_acc)
        starts[str(frac)] = {"index": i, "layer": i + 1, "share": (i + 1) / len(probe)}
    kappa = compression_kappa(probe, eta=spec.eta)
    rho = ood_loss_rho(res["probe"]["ood_acc"]) if ood is not None else None
    # Train accuracy: the test Evaluator run on the training split.
    train_view = replace(bench, x_test=bench.x_train, y_test=bench.y_train, t_test=bench.t_train)
    train_acc = float(Evaluator(train_view)(model, fitted.strategy)[0].mean())
    state = model.state_dict()
    reps = [*acts_eval, acts_eval[-1]] if model.arch == "mlp" else None  # last entry is unused
    out = {
        **res,
        **base,
        "model_acc": fitted.R[-1][0]
        if len(fitted.R[-1]) == 1
        else sum(fitted.R[-1]) / len(fitted.R[-1]),
        "train_acc": train_acc,
        "n_classes": bench.n_outputs,
        "tunnel_start": starts,
        "kappa": kappa,
        "rho": rho,
        "ood": None
        if ood is None
        else {
            "name": ood.name,
            "note": ood.note,
            "n_classes": ood.n_classes,
            "acc": res["probe"].pop("ood_acc"),
            "train_acc": res["probe"].pop("ood_train_acc"),
        },
        "weight_norms": weight_norms(state),
        "alignment": singular_alignment(state, k=15),
        "alignment_reps": None if reps is None else singular_alignment(state, k=15, reps=reps),
    }
    out["metrics"] = {
        "acc": out["model_acc"],
        "train_acc": train_acc,
        "tunnel_start_95": starts["0.95"]["layer"],
        "tunnel_start_98": starts["0.98"]["layer"],
        "kappa": kappa,
        "rho": rho,
        "last_rank": res["rank"][-1],
        "logits_rank": res["logits_rank"],
        "min_rank": min(res["rank"]),
        "input_probe": input_acc,
        "last_probe": probe[-1],
        "best_probe": max(probe),
    }
    return out
