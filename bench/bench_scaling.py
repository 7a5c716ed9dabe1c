"""Benchmark: how the engine's training time grows with dataset size and with model width, and
how ``cka_matrix`` time grows with the number of samples and of layers.

    python bench/bench_scaling.py           # 5 sizes, 5 widths, best of 2
    python bench/bench_scaling.py --quick   # 3 sizes, 3 widths, 1 run each

Class-incremental ``synthetic`` benchmark (1×28×28 images, 5 tasks of 2 classes), naive, SGD
lr 0.01, batch 128, 1 epoch per task, one evaluation per task, on the device the engine picks.
Sizes vary the number of images (train + test) at width 400; widths vary the MLP's two hidden
layers at 10,000 images. Each point is one engine run in this process (no cache); its time is the
runner's ``train_s`` (the training loop with its evaluation points) — data generation and model
building are left out, and an untimed warm-up run goes first. The growth rate is the slope b of log(time) against log(x), i.e.
time ∝ x^b, fitted by least squares; for width the cost per step is dominated by the 784×w and
w×w matrix products, so b lies between 1 and 2 and rises towards 2 as w grows.

CKA: ``engine.analysis.cka.cka_matrix`` with the minibatch estimator (eqs. 5.1–5.2, m = 256) on
random activations of layers 512 wide, all pairs of one model's layers; time against the number
of samples n at 12 layers (expected ∝ n: n/m batches of fixed cost) and against the number of
layers L at 4,096 samples (the L Gram matrices per batch cost ∝ L, the L² pairwise inner
products of m×m matrices are cheap beside them until L is large: b between 1 and 2).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETTINGS = "optimizer=sgd lr=0.01 batch_size=128 arch=mlp depth=2 epochs=1 evals_per_task=1".split()


def train_time(n: int, width: int, repeats: int) -> tuple[float, str, int]:
    """Best ``train_s`` of ``repeats`` runs, the device and the threads used."""
    import torch

    from engine.config import apply_overrides
    from engine.runner import run

    raw = apply_overrides(
        {"scenario": "class", "data": {"benchmark": "synthetic"}, "strategy": {"name": "naive"}},
        [*SETTINGS, f"synthetic_n={n}", f"width={width}"],
    )
    best, device = float("inf"), "cpu"
    for _ in range(repeats):
        result = run(raw, use_cache=False)
        best, device = min(best, result.timing["train_s"]), result.device
    return best, device, torch.get_num_threads()


def cka_time(n: int, layers: int, repeats: int, width: int = 512) -> float:
    """Best wall time of ``cka_matrix`` (minibatch) over ``repeats`` on fixed random activations."""
    import time

    import torch

    from engine.analysis.cka import cka_matrix

    g = torch.Generator().manual_seed(0)
    acts = [torch.randn(n, width, generator=g) for _ in range(layers)]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        cka_matrix(acts, method="minibatch", batch_size=256)
        best = min(best, time.perf_counter() - t0)
    return best


def growth(xs: list[float], ts: list[float]) -> float:
    """Least-squares slope of log t against log x."""
    return float(np.polyfit(np.log(xs), np.log(ts), 1)[0])


def mermaid(
    title: str, xs: list[int], ts: list[float], x_label: str, y_label: str = "train time (s)"
) -> str:
    """A line chart that GitHub renders from Markdown (log axes are not available: linear)."""
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f'    title "{title}"',
            f'    x-axis "{x_label}" [{", ".join(str(x) for x in xs)}]',
            f'    y-axis "{y_label}" 0 --> {max(ts) * 1.1:.2f}',
            f"    line [{', '.join(f'{t:.3f}' for t in ts)}]",
            "```",
        ]
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--widths", type=int, nargs="+", default=None)
    ap.add_argument(
        "--repeats", type=int, default=None, help="best of this many runs per point (2; 1 quick)"
    )
    args = ap.parse_args()
    sizes = args.sizes or (
        [5_000, 10_000, 20_000] if args.quick else [5_000, 10_000, 20_000, 40_000, 70_000]
    )
    widths = args.widths or ([100, 200, 400] if args.quick else [100, 200, 400, 800, 1600])
    repeats = args.repeats or (1 if args.quick else 2)

    train_time(2_000, 100, 1)  # warm-up: the first run in a process pays one-time library setup
    by_size = [train_time(n, 400, repeats) for n in sizes]
    by_width = [train_time(10_000, w, repeats) for w in widths]
    device, threads = by_size[0][1], by_size[0][2]

    print("## Scaling: training time vs dataset size and model width\n")
    print(
        f"synthetic 1×28×28, class-IL, 5 tasks, naive, SGD, batch 128, 1 epoch/task; device {device}, "
        f"{threads} thread(s) at the first point; best of {repeats}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n"
    )
    b_size = growth(sizes, [t for t, _, _ in by_size])
    print("| images (train + test) | train s | µs per image |")
    print("|---|---|---|")
    for n, (t, _, _) in zip(sizes, by_size, strict=True):
        print(f"| {n:,} | {t:.2f} | {t / n * 1e6:.1f} |")
    print(f"\ngrowth with dataset size: time ∝ n^{b_size:.2f}\n")
    print(mermaid("train time vs images (width 400)", sizes, [t for t, _, _ in by_size], "images"))
    print()
    b_width = growth(widths, [t for t, _, _ in by_width])
    print("| hidden width | parameters | train s |")
    print("|---|---|---|")
    for w, (t, _, _) in zip(widths, by_width, strict=True):
        params = 784 * w + w + w * w + w + w * 10 + 10
        print(f"| {w} | {params:,} | {t:.2f} |")
    print(f"\ngrowth with width: time ∝ w^{b_width:.2f}\n")
    print(
        mermaid(
            "train time vs hidden width (10,000 images)",
            widths,
            [t for t, _, _ in by_width],
            "width",
        )
    )
    cka_sizes = [1_024, 2_048, 4_096] if args.quick else [1_024, 2_048, 4_096, 8_192, 16_384]
    cka_layers = [4, 8, 16] if args.quick else [4, 8, 16, 32]
    cka_time(512, 2, 1)  # warm-up
    by_n = [cka_time(n, 12, repeats) for n in cka_sizes]
    by_l = [cka_time(4_096, n_layers, repeats) for n_layers in cka_layers]
    print("\n## Scaling: cka_matrix time vs samples and layers\n")
    print(
        f"minibatch estimator (m = 256), layers 512 wide, all pairs of one model's layers, float32 "
        f"on the CPU ({torch_threads()} threads); best of {repeats}\n"
    )
    print("| samples (12 layers) | seconds | ms per 1,000 samples |")
    print("|---|---|---|")
    for n, t in zip(cka_sizes, by_n, strict=True):
        print(f"| {n:,} | {t:.3f} | {t / n * 1e6:.1f} |")
    print(f"\ngrowth with samples: time ∝ n^{growth(cka_sizes, by_n):.2f}\n")
    print(mermaid("cka_matrix time vs samples (12 layers)", cka_sizes, by_n, "samples", "seconds"))
    print()
    print("| layers (4,096 samples) | layer pairs | seconds |")
    print("|---|---|---|")
    for n_layers, t in zip(cka_layers, by_l, strict=True):
        print(f"| {n_layers} | {n_layers * (n_layers + 1) // 2} | {t:.3f} |")
    print(f"\ngrowth with layers: time ∝ L^{growth(cka_layers, by_l):.2f}\n")
    print(
        mermaid("cka_matrix time vs layers (4,096 samples)", cka_layers, by_l, "layers", "seconds")
    )
    return 0


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    sys.exit(main())
