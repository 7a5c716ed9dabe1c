"""Benchmark: minibatch CKA for every layer pair of a VGG-19-sized model, ours vs torch-cka.

    python bench/bench_cka.py            # 10,000 samples, 19 layers, batch 256
    python bench/bench_cka.py --quick    # 4,096 samples, 12 layers

Activations. VGG-19 on 32x32 inputs (CIFAR variant) has 16 conv layers with outputs
64,64 @32², 128,128 @16², 256x4 @8², 512x4 @4², 512x4 @2², then fully connected layers
512, 512, 10. Flattened, the first conv outputs are 65,536 wide (2.6 GB per layer at 10,000
samples), so -- as is usual for CKA on conv nets -- we use global-average-pooled conv outputs:
widths 64,64,128,128,256,256,256,256,512 x 8, then 512, 512, 10 (19 layers, 5,514 features).
The values come from a random ReLU chain with those widths, so layers are correlated with
their neighbours and, like pooled ReLU maps, non-negative with a sizeable common mean.
``--quick`` keeps the first 12 layers.

Both sides compute the same estimator (thesis eqs. 5.1-5.2) over the *same* minibatches:
``n // batch`` consecutive batches of near-equal size (``seed=None`` on our side).

How torch-cka is driven: ``torch_cka.CKA`` takes two models and dataloaders and reads layer
outputs through forward hooks on named modules. We give it two tiny wrapper models whose
named child modules each return one precomputed layer's rows for the batch's indices, and a
DataLoader over ``arange(n)`` whose ``batch_sampler`` yields exactly our batches. Its own code
then runs unchanged (float32, on CPU). It asserts when its result has NaN; we catch that and
read the matrix it had already stored, so NaNs are reported rather than crashing the run.

Reference: a plain float64 evaluation of eq. 5.2 per pair and per batch (raw Grams, zeroed
diagonals, no centring, no U-centring), written here independently of engine.analysis.cka.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.analysis.cka import cka_matrix  # noqa: E402

VGG19_GAP_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 256] + [512] * 8 + [512, 512, 10]


def vgg19_like_activations(n: int, n_layers: int, seed: int = 0) -> list[torch.Tensor]:
    """Float32 activations with VGG-19's pooled layer widths from a random ReLU chain."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, 3 * 8 * 8, generator=g)  # a coarse "image"
    acts = []
    for w in VGG19_GAP_WIDTHS[:n_layers]:
        weight = torch.randn(h.shape[1], w, generator=g) / h.shape[1] ** 0.5
        h = torch.relu(h @ weight + 0.5)
        # Pooled ReLU maps: positive, common mean well above the spread across images.
        acts.append((h + 2.0 * h.mean(0, keepdim=True)).contiguous())
        h = (h - h.mean(0)) / (h.std(0) + 1e-6)  # keep the chain well conditioned
    return acts


def reference_float64(acts: list[torch.Tensor], batches: list[torch.Tensor]) -> np.ndarray:
    """Eq. 5.1 with eq. 5.2 evaluated term by term in float64, pair by pair."""
    n_layers = len(acts)
    num = np.zeros((n_layers, n_layers))
    for idx in batches:
        m = idx.numel()
        kt = []
        for a in acts:
            x = a[idx].double()
            k = x @ x.T
            k.fill_diagonal_(0.0)  # K̃ = K - diag(K)
            kt.append(k)
        sums = [k.sum() for k in kt]  # 1ᵀK̃1
        rows = [k.sum(1) for k in kt]  # K̃1, so 1ᵀK̃L̃1 = (K̃1)·(L̃1)
        for i in range(n_layers):
            for j in range(i, n_layers):
                h = (
                    (kt[i] * kt[j]).sum()  # tr(K̃L̃), both symmetric
                    + sums[i] * sums[j] / ((m - 1) * (m - 2))
                    - 2.0 / (m - 2) * (rows[i] @ rows[j])
                ) / (m * (m - 3))
                num[i, j] += float(h)
                num[j, i] = num[i, j]
    d = np.sqrt(np.diag(num))
    return num / np.outer(d, d)


class _Row(torch.nn.Module):
    """Returns one precomputed layer's rows for the batch of indices it is given."""

    def __init__(self, act: torch.Tensor):
        super().__init__()
        self.act = act

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.act[idx]


class _Replay(torch.nn.Module):
    """A 'model' whose named layers l0, l1, ... output the precomputed activations."""

    def __init__(self, acts: list[torch.Tensor]):
        super().__init__()
        for i, a in enumerate(acts):
            self.add_module(f"l{i}", _Row(a))

    def forward(self, idx: torch.Tensor) -> None:
        for layer in self.children():
            layer(idx)


def run_torch_cka(acts, batches) -> tuple[np.ndarray, float]:
    import warnings

    from torch.utils.data import DataLoader, TensorDataset
    from torch_cka import CKA

    names = [f"l{i}" for i in range(len(acts))]
    loader = DataLoader(
        TensorDataset(torch.arange(acts[0].shape[0])), batch_sampler=[b.tolist() for b in batches]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cka = CKA(_Replay(acts), _Replay(acts), "A", "B", names, names, device="cpu")
        t0 = time.perf_counter()
        try:
            cka.compare(loader, loader)
        except AssertionError:  # "HSIC computation resulted in NANs": matrix is already stored
            pass
        elapsed = time.perf_counter() - t0
    return cka.hsic_matrix.double().numpy(), elapsed


def timed(fn, repeats: int) -> tuple[np.ndarray, float]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=None, help="default 10000 (4096 with --quick)")
    ap.add_argument("--layers", type=int, default=None, help="default 19 (12 with --quick)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--quick", action="store_true", help="4096 samples, 12 layers")
    args = ap.parse_args()
    n = args.samples or (4096 if args.quick else 10000)
    n_layers = min(args.layers or (12 if args.quick else 19), len(VGG19_GAP_WIDTHS))
    m = args.batch_size

    os.environ.setdefault("TQDM_DISABLE", "1")  # torch-cka's progress bar; read at import
    try:
        import torch_cka
    except ImportError:
        print("SKIP bench_cka: torch-cka is not installed (pip install -r requirements-bench.txt)")
        return 0

    torch.manual_seed(0)
    acts = vgg19_like_activations(n, n_layers)
    batches = list(torch.tensor_split(torch.arange(n), max(1, n // m)))
    widths = [a.shape[1] for a in acts]
    print(
        f"inputs: {n_layers} layers, widths {widths} ({sum(widths)} features), n={n}, "
        f"{len(batches)} minibatches of ~{m}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, torch-cka {torch_cka.__version__}"
    )

    ours, t_ours = timed(lambda: cka_matrix(acts, method="minibatch", batch_size=m, seed=None), 3)
    ours32, t_ours32 = timed(
        lambda: cka_matrix(acts, method="minibatch", batch_size=m, seed=None, dtype=torch.float32),
        3,
    )
    ref = reference_float64(acts, batches)
    theirs, t_theirs = run_torch_cka(acts, batches)

    nan = bool(np.isnan(theirs).any())
    diff_theirs = (
        float(np.nanmax(np.abs(ours - theirs))) if not np.isnan(theirs).all() else float("nan")
    )
    diff_ref = float(np.abs(ours - ref).max())
    diff_ref32 = float(np.abs(ours32 - ref).max())
    ratio = t_theirs / t_ours

    print(
        f"ours (float64, default on CPU): {t_ours:8.3f} s   max|diff| vs float64 reference: {diff_ref:.2e}"
    )
    print(
        f"ours (float32, as on GPUs):     {t_ours32:8.3f} s   max|diff| vs float64 reference: {diff_ref32:.2e}"
    )
    print(
        f"torch-cka {torch_cka.__version__}:                {t_theirs:8.3f} s   "
        f"max|diff| vs float64 reference: {float(np.nanmax(np.abs(theirs - ref))):.2e}"
    )
    print(
        f"speed-up: {ratio:.1f}x (goal >= 20x)   max|ours - torch-cka|: {diff_theirs:.2e}   "
        f"torch-cka NaN: {'yes (' + str(int(np.isnan(theirs).sum())) + ' entries)' if nan else 'no'}"
    )
    ok = ratio >= 20 and diff_ref <= 1e-5
    print(f"goals met: {'yes' if ok else 'NO'}")
    print()
    print(
        "| benchmark | inputs | ours (s) | torch-cka (s) | speed-up | max abs diff vs torch-cka "
        "| max abs diff vs float64 | torch-cka NaN |"
    )
    print(
        f"| CKA minibatch, all layer pairs | VGG-19 pooled widths, {n_layers} layers, n={n}, m={m}, "
        f"{torch.get_num_threads()} CPU threads | {t_ours:.2f} | {t_theirs:.2f} | {ratio:.0f}x "
        f"| {diff_theirs:.1e} | {diff_ref:.1e} | {'yes' if nan else 'no'} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
