"""Feature erosion (thesis ch. 4): fine-tuning on data with a class-coded corner square.

A model is trained on clean data (one task, all classes); then it is fine-tuned on the same
training images where a share ``ratio`` of them carry a small square in the top-left corner
whose colour (RGB: evenly spaced hues) or intensity (grey: evenly spaced levels) encodes the
image's class. The square is a perfectly predictive, trivially simple feature; the thesis finds
that the network switches to it and abandons the features it had (Figs. 4.1.1–4.2.2, 4.3.1).

Measured before and after the fine-tuning, always on *clean* test images unless named
"patched": test accuracy (and accuracy on patched test images, where the square carries the
label), accuracy over the fine-tuning steps (Fig. 4.1.1's curve), numerical rank and linear
probe accuracy by layer (Fig. 4.2.2), and CKA between every layer before and every layer after
(Fig. 4.2.1; its diagonal is each layer's similarity to itself).

Square colours live in the data's own range: per channel, level ℓ ∈ (0, 1] maps to
``min + ℓ·(max − min)`` of the standardised training images, so the square is as bright as
the brightest pixel for ℓ = 1. Grey levels are (c+1)/k for class c, so no class is coded by the
background value.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import replace

import torch
from pydantic import Field

from engine.analysis.cka import cka_matrix
from engine.analysis.layers import analyze_model
from engine.config import ModelConfig, TrainConfig, resolve
from engine.data import build_benchmark
from engine.errors import Cancelled
from engine.kinds import trained
from engine.kinds.base import ComputeContext, Cost
from engine.session import Session
from engine.train import Evaluator

NAME = "erosion"
TITLE = "Feature erosion"
SUMMARY = "Fine-tune on images whose corner square encodes the class; what happens to the features."


class Spec(trained.TrainedSpec):
    kind = NAME
    ignored_data = ("split", "n_tasks")

    model: ModelConfig = Field(default_factory=lambda: ModelConfig(arch="mlp", depth=6, width=256))
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(
            optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-3, batch_size=128, epochs=40
        )
    )
    classes: int | None = Field(
        None, ge=2, le=100, description="Use the first k classes of the seeded order; empty = all"
    )
    ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of fine-tuning images that carry the class-coded square",
    )
    square: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Side of the corner square in pixels; empty = a sixth of the image side (≥ 2)",
    )
    finetune_epochs: int | None = Field(
        None, ge=1, le=1000, description="Fine-tuning epochs; empty = train.epochs"
    )
    finetune_lr: float | None = Field(
        None, gt=0.0, le=10.0, description="Fine-tuning learning rate; empty = train.lr"
    )

    def training_config(self):
        return trained.single_task_config(self, self.classes)

    def finetune_train(self, train: TrainConfig) -> TrainConfig:
        return train.model_copy(
            update={
                "epochs": self.finetune_epochs or train.epochs,
                "lr": self.finetune_lr or train.lr,
            }
        )


def estimate(spec: Spec) -> Cost:
    cfg = resolve(spec.training_config())
    finetune = cfg.model_copy(update={"train": spec.finetune_train(cfg.train)})
    return trained.trained_cost(spec, cfg, models=1) + trained.trained_cost(spec, finetune)


def palette(n_classes: int, channels: int) -> torch.Tensor:
    """k × C levels in (0, 1]: evenly spaced hues for RGB, evenly spaced greys otherwise."""
    if channels == 3:
        rgb = [colorsys.hsv_to_rgb(c / n_classes, 1.0, 1.0) for c in range(n_classes)]
        return torch.tensor(rgb, dtype=torch.float32)
    levels = (torch.arange(n_classes, dtype=torch.float32) + 1) / n_classes
    return levels[:, None].expand(n_classes, channels).clone()


def square_side(spec_square: int | None, input_shape) -> int:
    side = spec_square or max(2, math.ceil(min(input_shape[1:]) / 6))
    return min(side, *input_shape[1:])


def add_squares(
    x: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    side: int,
    ratio: float = 1.0,
    seed: int = 0,
    lo: torch.Tensor | None = None,
    hi: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Copy of ``x`` (N×C×H×W) with a class-coded square on round(ratio·N) seeded images.

    ``lo``/``hi`` are per-channel value ranges (default: those of ``x``). Returns the images and
    the boolean mask of which ones carry a square.
    """
    n, c = x.shape[:2]
    lo = x.amin(dim=(0, 2, 3)) if lo is None else lo
    hi = x.amax(dim=(0, 2, 3)) if hi is None else hi
    k = round(ratio * n)
    chosen = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].to(x.device)
    mask = torch.zeros(n, dtype=torch.bool, device=x.device)
    mask[chosen] = True
    colours = lo + palette(n_classes, c).to(x.device) * (hi - lo)  # k × C in data units
    out = x.clone()
    patch = colours[labels[chosen]][:, :, None, None].expand(-1, -1, side, side)
    out[chosen, :, :side, :side] = patch.to(out.dtype)
    return out, mask


class _PatchedEvaluator:
    """The clean evaluator, plus accuracy on the patched test set at every evaluation point."""

    def __init__(self, clean_bench, patched_bench) -> None:
        self.clean, self.patched = Evaluator(clean_bench), Evaluator(patched_bench)
        self.patched_acc: list[float] = []

    def __call__(self, model, strategy):
        out = self.clean(model, strategy)
        self.patched_acc.append(float(self.patched(model, strategy)[0].mean()))
        return out


def compute(spec: Spec, ctx: ComputeContext) -> dict:
    cfg = resolve(spec.training_config())
    bench = build_benchmark(cfg.data, cfg.scenario, cfg.train.device)
    ft_train = spec.finetune_train(cfg.train)
    ft_steps = ft_train.epochs * -(-len(bench.x_train) // ft_train.batch_size)
    ctx.start(
        trained.planned_steps(bench, cfg) + ft_steps,
        ["pretrain", "analysis before", "finetune", "analysis after"],
    )
    side = square_side(spec.square, bench.input_shape)
    lo, hi = bench.x_train.amin(dim=(0, 2, 3)), bench.x_train.amax(dim=(0, 2, 3))
    x_tr, mask = add_squares(
        bench.x_train, bench.y_train, bench.n_outputs, side, spec.ratio, cfg.train.seed, lo, hi
    )
    x_te, _ = add_squares(
        bench.x_test, bench.y_test, bench.n_outputs, side, 1.0, cfg.train.seed, lo, hi
    )
    patched = replace(bench, x_train=x_tr, x_test=x_te)

    fitted = trained.fit(cfg, ctx, "pretrain", bench=bench)
    base = {"timing": {"pretrain_s": round(fitted.train_s, 3)}, "pretrain_curves": fitted.curves}
    if fitted.status != "done":
        return {**base, "status": fitted.status, "message": fitted.message}
    model = fitted.model
    before = analyze_model(model, bench, spec, None, ctx.set_stage)
    patched_before = float(Evaluator(patched)(model, fitted.strategy)[0].mean())

    # Fine-tuning: the same model, one more phase on the patched images.
    ctx.stage = "finetune"
    evaluate = _PatchedEvaluator(bench, patched)
    finetune = Session(
        cfg.model_copy(update={"train": ft_train}), bench=patched, evaluator=evaluate, model=model
    )
    try:
        finetune.run(on_event=ctx.session_events(), cancel=ctx.cancel)
    except Cancelled:
        ctx.emit({"type": "cancelled", "stage": "finetune"})
        raise
    if finetune.status != "done":
        return {**base, "status": finetune.status, "message": finetune.message}
    curves, strategy = finetune.curves, finetune.strategy
    ctx.done += ft_steps
    after = analyze_model(model, bench, spec, None, ctx.set_stage)
    acc_after = float(Evaluator(bench)(model, strategy)[0].mean())
    patched_after = float(Evaluator(patched)(model, strategy)[0].mean())
    cross = cka_matrix(before.pop("acts_eval"), after.pop("acts_eval"), method=spec.cka_method)
    acc_before = fitted.R[-1][0]
    return {
        **base,
        "layers": before["layers"],
        "square": {
            "side": side,
            "ratio": spec.ratio,
            "n_patched": int(mask.sum()),
            "n_train": len(mask),
            "colours": palette(bench.n_outputs, bench.input_shape[0]).tolist(),
        },
        "before": {k: before[k] for k in ("rank", "probe", "cka", "variances", "input_rank")},
        "after": {k: after[k] for k in ("rank", "probe", "cka", "variances", "input_rank")},
        "cka_before_after": cross,
        "cka_diagonal": [float(cross[i, i]) for i in range(len(cross))],
        "acc_before": acc_before,
        "acc_after": acc_after,
        "patched_acc_before": patched_before,
        "patched_acc_after": patched_after,
        "finetune_curve": {
            "step": curves.step,
            "clean_acc": [a[0] for a in curves.acc],
            "patched_acc": evaluate.patched_acc,
            "loss": curves.loss,
        },
        "metrics": {
            "acc_before": acc_before,
            "acc_after": acc_after,
            "forgetting": acc_before - acc_after,
            "patched_acc_after": patched_after,
            "last_rank_before": before["rank"][-1],
            "last_rank_after": after["rank"][-1],
            "mean_cka_diagonal": float(sum(cross[i, i] for i in range(len(cross))) / len(cross)),
        },
    }
