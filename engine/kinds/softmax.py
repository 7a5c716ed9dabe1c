"""The softmax lab's curve (thesis ch. 6): rank and singular values of column-wise
softmax(c·B) for a random rank-1 B over a log grid of c, Proposition 2's bound, and the inner
products of the softmax columns (Figs. 6.2.5, 6.8.1). Closed-form linear algebra, but an SVD
per grid point: a crafted grid is a real cost, so it is a kind like every other."""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field, model_validator

from engine.analysis.softmax import column_inner_products, softmax_rank_curve
from engine.kinds.base import SMALL_SVD, ComputeContext, Cost, KindSpec

NAME = "softmax"
TITLE = "Softmax and rank"
SUMMARY = "Rank of softmax(c·B) against c, the gap against Proposition 2's bound, inner products."


class Spec(KindSpec):
    kind = NAME
    n: int = Field(32, ge=2, le=128, description="Rows and columns of the random rank-1 B")
    seed: int = Field(0, ge=0, le=10_000, description="Seed of x and y (B = x yᵀ)")
    c_lo: int = Field(-5, ge=-8, le=12, description="log₁₀ of the smallest c")
    c_hi: int = Field(9, ge=-8, le=12, description="log₁₀ of the largest c")
    per_decade: int = Field(4, ge=1, le=20, description="Grid points per decade of c")
    rel_tol: float = Field(
        1e-3, ge=1e-6, le=1e-2, description="Rank threshold relative to σ₁ (thesis: 1e-3)"
    )
    ip_n: int = Field(
        5, ge=2, le=64, description="Size of B for the inner products (thesis Fig. 6.8.1: 5)"
    )

    @model_validator(mode="after")
    def _range(self) -> Spec:
        if self.c_hi < self.c_lo:
            raise ValueError(f"c_hi: must be ≥ c_lo ({self.c_lo}), got {self.c_hi}")
        return self

    def grid(self) -> list[float]:
        points = (self.c_hi - self.c_lo) * self.per_decade + 1
        return np.logspace(self.c_lo, self.c_hi, points).tolist()


def estimate(spec: Spec) -> Cost:
    points = len(spec.grid())
    # measured: 401 points at n = 128 took 76 s of one core, 57 points at n = 32 took 0.33 s
    macs = points * SMALL_SVD * (spec.n**3 + spec.ip_n**3)
    return Cost(
        steps=points, macs=float(macs), peak_bytes=int(8 * points * spec.n * 4 + 8 * spec.n**2 * 8)
    )


def compute(spec: Spec, ctx: ComputeContext) -> dict:
    grid = spec.grid()
    ctx.start(2, ["rank curve", "inner products"])
    ctx.set_stage("rank curve")
    curve = softmax_rank_curve(n=spec.n, c_values=grid, seed=spec.seed, rel_tol=spec.rel_tol)
    ctx.check_cancel()
    ctx.done = 1
    ctx.set_stage("inner products")
    ip = column_inner_products(c_values=grid, n=spec.ip_n, seed=spec.seed)
    return {
        "curve": curve,
        "inner_products": ip,
        "metrics": {
            "peak_rank": curve["peak_rank"],
            "c_at_peak": curve["c_at_peak"],
            "argmax_rank": curve["argmax_rank"],
            "points": len(grid),
            "log_span": math.log10(grid[-1] / grid[0]) if len(grid) > 1 else 0.0,
        },
    }
