"""Benchmark: minibatch CKA for every layer pair of a VGG-19-sized model, ours vs torch-cka.

    python bench/bench_cka.py            # 10,000 samples, 19 layers, batch 256
    python bench/bench_cka.py --quick    # 4,096 samples, 12 layers
    python bench/bench_cka.py --device cuda --json out.json   # both sides on the GPU

Activations. VGG-19 on 32x32 inputs (CIFAR variant) has 16 conv layers with outputs
64,64 @32², 128,128 @16², 256x4 @8², 512x4 @4², 512x4 @2², then fully connected layers
512, 512, 10. Flattened, the first conv outputs are 65,536 wide (2.6 GB per layer at 10,000
samples), so -- as is usual for CKA on conv nets -- we use global-average-pooled conv outputs:
widths 64,64,128,128,256,256,256,256,512 x 8, then 512, 512, 10 (19 layers, 6,538 features).
The values come from a random ReLU chain with those widths, so layers are correlated with
their neighbours and, like pooled ReLU maps, non-negative with a sizeable common mean.
``--quick`` keeps the first 12 layers.

Both sides compute the same estimator (thesis eqs. 5.1-5.2) over the *same* minibatches:
``n // batch`` consecutive batches of near-equal size (``seed=None`` on our side).

How torch-cka is driven: ``torch_cka.CKA`` takes two models and dataloaders and reads layer
outputs through forward hooks on named modules. We give it two tiny wrapper models whose
named child modules each return one precomputed layer's rows for the batch's indices, and a
DataLoader over ``arange(n)`` whose ``batch_sampler`` yields exactly our batches. Its own code
then runs unchanged (float32, on ``--device``: the activations are buffers of the wrappers, so
its ``model.to(device)`` moves them). It asserts when its result has NaN; we catch that and
read the matrix it had already stored, so NaNs are reported rather than crashing the run.
With ``--device cuda`` our side gets the activations on the GPU too; the float64 reference
always runs on the CPU.

Reference: a plain float64 evaluation of eq. 5.2 per pair and per batch (raw Grams, zeroed
diagonals, no centring, no U-centring), written here independently of engine.analysis.cka.
"""

from __future__ import annotations

import argparse
import json
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
    """Eq. 5.1 with eq. 5.2 evaluated term by term in float64, pair by pair.

    Features are first centred with their float64 column means: eq. 5.2 is exactly invariant
    to that, and without it even float64 loses digits on features with a large common mean
    (measured: 3e-6 at mean/std = 100, NaN at 1e4)."""
    n_layers = len(acts)
    acts = [a.double() - a.double().mean(0) for a in acts]
    num = np.zeros((n_layers, n_layers))
    for idx in batches:
        m = idx.numel()
        kt = []
        for a in acts:
            x = a[idx]
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
        self.register_buffer("act", act)  # a buffer, so torch-cka's model.to(device) moves it

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


def run_torch_cka(acts, batches, device: str = "cpu") -> np.ndarray:
    import warnings

    from torch.utils.data import DataLoader, TensorDataset
    from torch_cka import CKA

    names = [f"l{i}" for i in range(len(acts))]
    index = TensorDataset(torch.arange(acts[0].shape[0]))
    loader = DataLoader(index, batch_sampler=[b.tolist() for b in batches])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cka = CKA(_Replay(acts), _Replay(acts), "A", "B", names, names, device=device)
        try:
            cka.compare(loader, loader)
        except AssertionError:  # "HSIC computation resulted in NANs": matrix is already stored
            pass
    return cka.hsic_matrix.double().cpu().numpy()


def timed(fn, repeats: int, budget_s: float = float("inf")):
    """Best wall and CPU time of up to ``repeats`` runs; no new run once ``budget_s`` is spent.

    Best-of-k because on a shared machine a single run can be several times slower. CPU
    time (this process, all threads) is printed too: it is far less sensitive to other load,
    though with several threads it also counts time spent spinning at barriers."""
    out, wall, cpu, runs, spent = None, float("inf"), float("inf"), 0, 0.0
    while runs < repeats and spent < budget_s:
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        elapsed = time.perf_counter() - t0
        wall, cpu = min(wall, elapsed), min(cpu, time.process_time() - c0)
        runs, spent = runs + 1, spent + elapsed
    return out, wall, cpu, runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=None, help="default 10000 (4096 with --quick)")
    ap.add_argument("--layers", type=int, default=None, help="default 19 (12 with --quick)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--quick", action="store_true", help="4096 samples, 12 layers")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs per side")
    ap.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's)"
    )
    ap.add_argument(
        "--offset",
        type=float,
        default=0.0,
        help="add this to every activation (un-normalised features); e.g. 100 makes torch-cka "
        "return NaN",
    )
    ap.add_argument("--device", default="cpu", help="where both sides compute: cpu or cuda")
    ap.add_argument(
        "--theirs-budget",
        type=float,
        default=60.0,
        help="no new torch-cka run once its runs have taken this many seconds",
    )
    ap.add_argument("--json", metavar="PATH", help="also write the figures here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n = args.samples or (4096 if args.quick else 10000)
    n_layers = min(args.layers or (12 if args.quick else 19), len(VGG19_GAP_WIDTHS))
    m, k = args.batch_size, max(1, args.repeats)

    try:
        import torch_cka
        import torch_cka.cka
    except ImportError:
        print("SKIP bench_cka: torch-cka is not installed (pip install -r requirements-bench.txt)")
        return 0
    torch_cka.cka.tqdm = lambda it, **_: it  # silence its progress bar; nothing else changes

    acts = [a + args.offset for a in vgg19_like_activations(n, n_layers)]
    on_device = [a.to(args.device) for a in acts]
    batches = list(torch.tensor_split(torch.arange(n), max(1, n // m)))
    widths = [a.shape[1] for a in acts]
    threads = torch.get_num_threads()
    print(
        f"inputs: {n_layers} layers, widths {widths} ({sum(widths)} features), n={n}, "
        f"{len(batches)} minibatches of ~{m}, offset {args.offset:g}; torch {torch.__version__}, "
        f"{threads} threads, device {device_name(args.device)}, "
        f"torch-cka {torch_cka.__version__}; load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )

    def ours_at(dtype):
        return lambda: cka_matrix(
            on_device, method="minibatch", batch_size=m, seed=None, dtype=dtype
        )

    ours, t_ours, c_ours, _ = timed(ours_at(None), k)  # default: float32 products, float64 sums
    ours64, t_ours64, c_ours64, _ = timed(ours_at(torch.float64), k)  # everything in float64
    ref = reference_float64(acts, batches)
    diff_ref = float(np.abs(ours - ref).max())
    diff_ref64 = float(np.abs(ours64 - ref).max())

    def report(name, t, c, runs, diff):
        print(
            f"{name:22s} wall {t:8.3f} s, CPU {c:8.3f} s (best of {runs})   "
            f"max|diff| vs float64 reference: {diff:.1e}",
            flush=True,
        )

    report("ours (default)", t_ours, c_ours, k, diff_ref)
    report("ours, dtype=float64", t_ours64, c_ours64, k, diff_ref64)
    # Best-of-k for torch-cka too, but no new run once its runs have taken --theirs-budget s.
    theirs, t_theirs, c_theirs, k_theirs = timed(
        lambda: run_torch_cka(on_device, batches, args.device), k, budget_s=args.theirs_budget
    )
    n_nan = int(np.isnan(theirs).sum())
    finite = n_nan < theirs.size
    diff_theirs = float(np.nanmax(np.abs(ours - theirs))) if finite else float("nan")
    report(
        f"torch-cka {torch_cka.__version__}",
        t_theirs,
        c_theirs,
        k_theirs,
        float(np.nanmax(np.abs(theirs - ref))) if finite else float("nan"),
    )
    ratio = t_theirs / t_ours
    print(
        f"speed-up (wall): {ratio:.1f}x (goal >= 20x); by CPU time: {c_theirs / c_ours:.1f}x; "
        f"all-float64 mode: {t_theirs / t_ours64:.1f}x wall, {c_theirs / c_ours64:.1f}x CPU"
    )
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(
            f"WARNING: load average {load:.1f} exceeds {os.cpu_count()} CPUs; wall times are "
            "unreliable (oversubscribed threads stall). Rerun on a quiet machine or with "
            "--threads 1, and prefer the CPU-time ratio."
        )
    nan_note = f"yes ({n_nan} entries)" if n_nan else "no"
    print(f"max|ours - torch-cka|: {diff_theirs:.1e}   torch-cka NaN: {nan_note}")
    ok = ratio >= 20 and diff_ref <= 1e-5
    print(f"goals met (>= 20x and <= 1e-5 vs float64): {'yes' if ok else 'NO'}")
    print()
    print(
        "| benchmark | inputs | ours (s) | torch-cka (s) | speed-up | max abs diff vs torch-cka "
        "| max abs diff vs float64 | torch-cka NaN |"
    )
    where = f"{threads} CPU threads" if args.device == "cpu" else device_name(args.device)
    print(
        f"| CKA minibatch, all layer pairs | VGG-19 pooled widths, {n_layers} layers, n={n}, "
        f"m={m}{f', offset {args.offset:g}' if args.offset else ''}, {where} | {t_ours:.2f} | {t_theirs:.2f} | {ratio:.0f}x "
        f"| {diff_theirs:.1e} | {diff_ref:.1e} | {'yes' if n_nan else 'no'} |"
    )
    if args.json:
        doc = {
            "device": args.device,
            "device_name": device_name(args.device),
            "samples": n,
            "layers": n_layers,
            "batch_size": m,
            "ours_s": t_ours,
            "ours_float64_s": t_ours64,
            "torch_cka_s": t_theirs,
            "torch_cka_runs": k_theirs,
            "speedup": ratio,
            "max_diff_vs_float64": diff_ref,
            "max_diff_vs_torch_cka": diff_theirs,
            "torch_cka_nan": n_nan,
            "goal_met": ok,
        }
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0


def device_name(device: str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    return "CPU"


if __name__ == "__main__":
    sys.exit(main())
