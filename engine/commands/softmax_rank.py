"""`python -m engine softmax-rank`: rank of the column-wise softmax(c·B) over c (thesis Fig. 6.2.5).

B is the seeded random rank-1 x yᵀ (n×n, x_i, y_i ~ U(−1, 1)), or a matrix from a file
(``--matrix``: .npy, or CSV/whitespace text). Prints c, the numerical rank, σ₁ − σ_n and
Proposition 2's bound; ``--json PATH`` writes the whole engine.analysis.softmax.softmax_rank_curve
result (singular values included).
"""

from __future__ import annotations

import math
import os

from engine.analysis.softmax import softmax_rank_curve
from engine.commands import write_json
from engine.errors import ConfigError

C_MIN, C_MAX, POINTS = 1e-5, 1e9, 57  # the default grid of softmax.DEFAULT_C_VALUES


def add_parser(subs) -> None:
    p = subs.add_parser(
        "softmax-rank", help="rank of softmax(c·B) for a random rank-1 B over a log grid of c"
    )
    p.add_argument(
        "--n", type=int, default=32, help="rows and columns of the random B (default 32)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of x and y (default 0)")
    p.add_argument("--c-min", type=float, default=C_MIN, help=f"smallest c (default {C_MIN:g})")
    p.add_argument("--c-max", type=float, default=C_MAX, help=f"largest c (default {C_MAX:g})")
    p.add_argument(
        "--points", type=int, default=POINTS, help=f"log-spaced c values (default {POINTS})"
    )
    p.add_argument(
        "--rel-tol", type=float, default=1e-3, help="rank threshold relative to σ₁ (default 1e-3)"
    )
    p.add_argument(
        "--matrix", metavar="FILE", help="use this matrix (.npy or CSV) instead of the random x yᵀ"
    )
    p.add_argument("--json", metavar="PATH", help="write the result as JSON ('-' = stdout)")
    p.set_defaults(func=main)


def c_grid(c_min: float, c_max: float, points: int):
    """None for the default grid (so the result equals softmax_rank_curve's default), else a
    log-spaced list; bad bounds are a ConfigError naming the flag."""
    import numpy as np

    if not (math.isfinite(c_min) and c_min > 0):
        raise ConfigError(f"--c-min: must be a finite number > 0 (got {c_min:g})")
    if not (math.isfinite(c_max) and c_max >= c_min):
        raise ConfigError(f"--c-max: must be finite and ≥ --c-min (got {c_max:g})")
    if not 1 <= points <= 10_000:
        raise ConfigError(f"--points: must be 1…10000 (got {points})")
    if (c_min, c_max, points) == (C_MIN, C_MAX, POINTS):
        return None
    if points == 1:
        return [c_min]
    return np.logspace(math.log10(c_min), math.log10(c_max), points).tolist()


def _load_matrix(path: str):
    import numpy as np

    try:
        if path.endswith(".npy"):
            return np.load(path, allow_pickle=False)
        with open(path) as fh:
            text = fh.read()
        return np.loadtxt(text.replace(",", " ").splitlines(), ndmin=2)
    except (OSError, ValueError) as err:
        raise ConfigError(f"--matrix: cannot read {path!r} as a numeric matrix ({err})") from None


MAX_N = 2048  # an n×n SVD per grid point: 2048 takes seconds a point, 100,000 asks for 75 GiB
MAX_MATRIX_BYTES = 64 * 2**20


def main(args) -> int:
    if not 2 <= args.n <= MAX_N:
        raise ConfigError(f"--n: must be 2…{MAX_N:,} (got {args.n:,})")
    if args.matrix:
        try:
            size = os.path.getsize(args.matrix)
        except OSError as err:
            raise ConfigError(f"--matrix: cannot read {args.matrix!r} ({err.strerror})") from None
        if size > MAX_MATRIX_BYTES:
            raise ConfigError(f"--matrix: {size:,} bytes is more than {MAX_MATRIX_BYTES:,}")
    c_values = c_grid(args.c_min, args.c_max, args.points)
    matrix = _load_matrix(args.matrix) if args.matrix else None
    if matrix is not None and max(matrix.shape) > MAX_N:
        raise ConfigError(f"--matrix: {matrix.shape} is larger than {MAX_N:,} on a side")
    try:
        out = softmax_rank_curve(
            n=args.n, c_values=c_values, seed=args.seed, matrix=matrix, rel_tol=args.rel_tol
        )
    except ValueError as err:
        raise ConfigError(str(err)) from None
    print(
        f"softmax(c·B), B = {out['source']} {out['shape'][0]}×{out['shape'][1]}; rank(B) = {out['base_rank']}, "
        f"rank of the one-hot argmax = {out['argmax_rank']}; peak rank {out['peak_rank']} at c = {out['c_at_peak']:.3g}"
    )
    print(f"{'c':>10} {'rank':>5} {'σ1−σn':>8} {'bound':>8}")
    for c, r, g, b in zip(out["c"], out["rank"], out["gap"], out["bound"], strict=True):
        print(f"{c:>10.3g} {r:>5d} {g:>8.4f} {b:>8.4f}")
    if args.json:
        write_json(args.json, out)
    return 0
