"""The deep-linear toy (thesis 6.2.1–6.2.5): X = Y = I_d, three d×d layers, full-batch gradient
descent with MSE, cross-entropy, or cross-entropy with a dynamic temperature; the output's rank
and singular values over training, and accuracy on Gaussian-perturbed inputs (Fig. 6.2.2)."""

from __future__ import annotations

from pydantic import Field, field_validator

from engine.analysis.toy import DEFAULT_SIGMAS, LOSSES, perturbation_accuracy, run_toy
from engine.kinds.base import PYTHON_STEP, SMALL_SVD, ComputeContext, Cost, KindSpec
from engine.kinds.trained import comma_list

NAME = "toy"
TITLE = "Deep-linear toy"
SUMMARY = "MSE vs cross-entropy vs dynamic temperature on the identity: rank over training."
PERTURBED = 1000  # perturbed copies per σ


class Spec(KindSpec):
    kind = NAME
    losses: list[str] = Field(
        list(LOSSES), min_length=1, max_length=3, description="Losses to train: mse, ce, ce-dynamic"
    )
    d: int = Field(5, ge=2, le=12, description="Classes = input size = layer width")
    iters: int = Field(10_000, ge=100, le=50_000, description="Full-batch gradient steps")
    lr: float = Field(0.5, ge=1e-4, le=2.0, description="Learning rate")
    seed: int = Field(0, ge=0, le=10_000, description="Seed of the initial weights")
    init_scale: float = Field(
        0.01, ge=1e-4, le=1.0, description="Weights ~ N(0, scale²); small = saddle-to-saddle"
    )

    @field_validator("losses", mode="before")
    @classmethod
    def _split(cls, v):
        return comma_list(v)

    @field_validator("losses")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        bad = [x for x in v if x not in LOSSES]
        if bad:
            raise ValueError(f"losses: {bad[0]!r} is not a loss; allowed: {', '.join(LOSSES)}")
        return [x for x in LOSSES if x in v]  # canonical order, duplicates dropped


def record_every(iters: int) -> int:
    return max(1, iters // 1000)  # about a thousand points per curve


def estimate(spec: Spec) -> Cost:
    per_step = PYTHON_STEP + 8 * spec.d**3  # measured: 3 × 10,000 steps at d = 5 in 1.3 s
    records = spec.iters // record_every(spec.iters) * SMALL_SVD * spec.d**3  # an SVD each
    perturb = len(DEFAULT_SIGMAS) * PERTURBED * 3 * spec.d**2
    n = len(spec.losses)
    return Cost(
        params=3 * spec.d**2,
        steps=spec.iters,  # per loss: the losses train separately, each a short run
        macs=float(n * (spec.iters * per_step + records + perturb)),
        peak_bytes=int(n * 1000 * spec.d * 8 * 4 + PERTURBED * spec.d * 8),
    )


def compute(spec: Spec, ctx: ComputeContext) -> dict:
    ctx.start(len(spec.losses) * spec.iters, list(spec.losses))
    runs, perturbed = {}, {}
    for loss in spec.losses:
        ctx.set_stage(loss)
        run = run_toy(
            loss,
            d=spec.d,
            iters=spec.iters,
            lr=spec.lr,
            seed=spec.seed,
            init_scale=spec.init_scale,
            record_every=record_every(spec.iters),
        )
        perturbed[loss] = perturbation_accuracy(
            run, sigmas=DEFAULT_SIGMAS, k=PERTURBED, seed=spec.seed
        )
        runs[loss] = {k: v for k, v in run.items() if k != "weights"}
        ctx.done += spec.iters
        ctx.check_cancel()
    return {
        "runs": runs,
        "perturbed": perturbed,
        "metrics": {f"{loss}_final_rank": runs[loss]["final"]["rank"] for loss in spec.losses}
        | {f"{loss}_diverged": runs[loss]["diverged"] for loss in spec.losses},
    }
