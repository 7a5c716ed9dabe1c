"""Centred Kernel Alignment (CKA) between layer representations.

Two estimators:

* ``"linear"`` -- thesis eq. 3.1 on column-centred features,
  ``CKA(X, Y) = ||XᵀY||²_F / (||XᵀX||_F ||YᵀY||_F)``, over all n samples at once.
* ``"minibatch"`` -- thesis eqs. 5.1-5.2 (Nguyen et al. 2021): the unbiased HSIC of each
  minibatch's linear Grams, numerators and denominators each averaged over the minibatches.
  Memory grows with the batch size, not with n, so it scales to large probe sets.

Three views build on :func:`cka_matrix`: layer x layer inside one model
(``cka_matrix(acts)``), model A versus model B (``cka_matrix(acts_a, acts_b)``) and the
same layer across checkpoints (:func:`cka_drift`).

Activations are n x p matrices (torch tensors or numpy arrays); any trailing dimensions are
flattened, so conv maps ``(n, c, h, w)`` may be passed as they are. Work runs on the device
of the first torch tensor given. A layer with no variance has undefined CKA: NaN.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch

__all__ = ["linear_cka", "cka_matrix", "cka_drift"]

METHODS = ("linear", "minibatch")

# Upper bound (in elements) on the temporary blocks built at once; keeps peak memory at a
# few hundred MB whatever n and the layer widths are.
_BLOCK_ELEMS = 1 << 25


def _as_matrix(x, name: str, device: torch.device | None = None) -> torch.Tensor:
    """One layer's activations as an n x p tensor (trailing dims flattened), on ``device``."""
    t = torch.as_tensor(x)
    if t.ndim == 0:
        raise ValueError(f"{name}: activations must have a sample dimension, got a scalar")
    if device is not None and t.device != device:
        t = t.to(device)
    if not t.is_floating_point():
        t = t.float()
    return t.reshape(t.shape[0], -1) if t.ndim != 2 else t


def _column_means(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Column means in ``dtype``, exact for constant columns.

    A rounded mean would leave a constant (e.g. dead) feature with ~1e-17 residuals whose
    "CKA" is noise; taking the constant itself centres it to exact zeros, so a constant
    layer reliably yields NaN.
    """
    mean = x.mean(0, dtype=dtype)
    const = x.amax(0) == x.amin(0)
    return torch.where(const, x[0].to(dtype), mean)


def _default_dtype(device: torch.device) -> torch.dtype:
    # float64 on the CPU costs ~2x and buys ~1e-12 agreement; on accelerators float64 can be
    # 30-60x slower, and float32 with centring stays within 1e-5 (see tests), so use that.
    return torch.float64 if device.type == "cpu" else torch.float32


@contextlib.contextmanager
def _exact_fp32(dtype: torch.dtype) -> Iterator[None]:
    """Force IEEE float32 matmuls for the duration: TF32 / bf16 shortcuts (10-bit mantissas)
    would cost three orders of magnitude of accuracy. Uses the per-backend precision setting,
    which leaves either the legacy or the new global API usable by the rest of the program."""
    backends = [torch.backends.cuda.matmul, getattr(torch.backends.mkldnn, "matmul", None)]
    backends = [b for b in backends if b is not None and hasattr(b, "fp32_precision")]
    if dtype != torch.float32 or not backends:
        yield
        return
    saved = [b.fp32_precision for b in backends]
    for b in backends:
        b.fp32_precision = "ieee"
    try:
        yield
    finally:
        for b, prev in zip(backends, saved, strict=True):
            b.fp32_precision = prev


def _check_layers(acts, name: str, device: torch.device | None) -> list[torch.Tensor]:
    if isinstance(acts, (torch.Tensor, np.ndarray)):
        raise ValueError(f"{name}: expected a list of layer activations, got a single array")
    layers = [_as_matrix(a, f"{name}[{i}]", device) for i, a in enumerate(acts)]
    if not layers:
        raise ValueError(f"{name}: no layers given")
    return layers


def _check_same_n(named: Sequence[tuple[str, torch.Tensor]]) -> int:
    n = named[0][1].shape[0]
    for label, t in named:
        if t.shape[0] != n:
            raise ValueError(
                f"all activations must have the same number of samples (rows): "
                f"{named[0][0]} has {n}, {label} has {t.shape[0]}"
            )
    return n


def _ratio(hsic_ab: np.ndarray, self_a: np.ndarray, self_b: np.ndarray) -> np.ndarray:
    """CKA = HSIC(a, b) / sqrt(HSIC(a, a) HSIC(b, b)); NaN where a side has no variance."""
    denom = np.sqrt(np.clip(self_a, 0, None))[:, None] * np.sqrt(np.clip(self_b, 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = hsic_ab / denom
    out[~(denom > 0)] = np.nan
    return out


# --------------------------------------------------------------------------------------
# Single pair
# --------------------------------------------------------------------------------------


def linear_cka(X, Y) -> float:
    """Linear CKA of two representations of the same n samples (thesis eq. 3.1).

    ``X`` is n x p, ``Y`` is n x q (tensors or arrays). Columns are centred, then the value is
    computed in float64 in the cheaper of the feature form ``||XᵀY||² / (||XᵀX|| ||YᵀY||)``
    (cost ~ n(p+q)²) or the equivalent Gram form ``<K, L> / (||K|| ||L||)`` with
    ``K = XXᵀ`` (cost ~ n²(p+q)). Returns NaN if either side is constant.
    """
    x = _as_matrix(X, "X")
    y = _as_matrix(Y, "Y", device=x.device)
    _check_same_n([("X", x), ("Y", y)])
    x = x.to(torch.float64) - _column_means(x, torch.float64)
    y = y.to(torch.float64) - _column_means(y, torch.float64)
    n, p, q = x.shape[0], x.shape[1], y.shape[1]
    if p + q <= n:
        num = torch.linalg.matrix_norm(x.T @ y) ** 2
        den = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    else:
        k, l_ = x @ x.T, y @ y.T
        num = (k * l_).sum()
        den = torch.linalg.matrix_norm(k) * torch.linalg.matrix_norm(l_)
    num, den = float(num), float(den)
    return num / den if den > 0 else float("nan")


# --------------------------------------------------------------------------------------
# All layer pairs
# --------------------------------------------------------------------------------------


def _chunks(n: int, rows_per_chunk: int) -> list[slice]:
    step = max(1, rows_per_chunk)
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def _block_sq_sums(c: torch.Tensor, widths_a: list[int], widths_b: list[int]) -> torch.Tensor:
    """Sum of squares of each (layer a, layer b) block of the stacked cross-covariance."""
    dev = c.device
    ia = torch.repeat_interleave(
        torch.arange(len(widths_a), device=dev), torch.tensor(widths_a, device=dev)
    )
    ib = torch.repeat_interleave(
        torch.arange(len(widths_b), device=dev), torch.tensor(widths_b, device=dev)
    )
    rows = torch.zeros(len(widths_a), c.shape[1], dtype=c.dtype, device=dev).index_add_(
        0, ia, c * c
    )
    return torch.zeros(len(widths_a), len(widths_b), dtype=c.dtype, device=dev).index_add_(
        1, ib, rows
    )


def _linear_feature_form(xa, xb, dtype):
    """Full-batch HSIC pieces from one stacked cross-covariance ``Zaᵀ Zb`` (Pa x Pb).

    Chosen when the summed widths are small next to n: one GEMM over the concatenated,
    centred layers, accumulated over sample chunks; each pair is then a block's squared norm.
    """
    same = xb is None
    n = xa[0].shape[0]
    means_a = [_column_means(x, dtype) for x in xa]
    means_b = means_a if same else [_column_means(x, dtype) for x in xb]
    wa = [x.shape[1] for x in xa]
    wb = wa if same else [x.shape[1] for x in xb]
    dev = xa[0].device
    c = torch.zeros(sum(wa), sum(wb), dtype=dtype, device=dev)
    grams_a = None if same else [torch.zeros(w, w, dtype=dtype, device=dev) for w in wa]
    grams_b = None if same else [torch.zeros(w, w, dtype=dtype, device=dev) for w in wb]
    for rows in _chunks(n, _BLOCK_ELEMS // (sum(wa) + sum(wb))):
        za = [x[rows].to(dtype) - m for x, m in zip(xa, means_a, strict=True)]
        zb = za if same else [x[rows].to(dtype) - m for x, m in zip(xb, means_b, strict=True)]
        c += torch.cat(za, 1).T @ torch.cat(zb, 1)
        if not same:
            # The normalisers need ||XᵀX|| per layer: only the diagonal blocks, n·Σp² work.
            for g, z in zip(grams_a, za, strict=True):
                g += z.T @ z
            for g, z in zip(grams_b, zb, strict=True):
                g += z.T @ z
    hsic = _block_sq_sums(c, wa, wb).to(torch.float64)
    if same:
        self_a = self_b = torch.diagonal(hsic)
    else:
        self_a = torch.stack([(g * g).sum() for g in grams_a]).to(torch.float64)
        self_b = torch.stack([(g * g).sum() for g in grams_b]).to(torch.float64)
    return hsic, self_a, self_b


def _linear_gram_form(xa, xb, dtype):
    """Full-batch HSIC pieces from flattened centred Grams: ``<Kc_a, Kc_b>`` for all pairs.

    Chosen when layers are wide next to n. Gram rows are built a chunk at a time for every
    layer, then one GEMM ``Fa Fbᵀ`` adds that chunk's contribution to every pair, so each Gram
    entry is computed exactly once and the n x n Grams never sit in memory together.
    """
    same = xb is None
    n = xa[0].shape[0]
    ca = [x.to(dtype) - _column_means(x, dtype) for x in xa]
    cb = ca if same else [x.to(dtype) - _column_means(x, dtype) for x in xb]
    dev = ca[0].device
    hsic = torch.zeros(len(ca), len(cb), dtype=torch.float64, device=dev)
    sq_a = torch.zeros(len(ca), dtype=torch.float64, device=dev)
    sq_b = torch.zeros(len(cb), dtype=torch.float64, device=dev)
    for rows in _chunks(n, _BLOCK_ELEMS // ((len(ca) + len(cb)) * n)):
        fa = torch.stack([x[rows] @ x.T for x in ca]).reshape(len(ca), -1)
        fb = fa if same else torch.stack([x[rows] @ x.T for x in cb]).reshape(len(cb), -1)
        hsic += (fa @ fb.T).to(torch.float64)
        if not same:
            sq_a += (fa * fa).sum(1).to(torch.float64)
            sq_b += (fb * fb).sum(1).to(torch.float64)
    if same:
        sq_a = sq_b = torch.diagonal(hsic)
    return hsic, sq_a, sq_b


def _u_centred_grams(layers: list[torch.Tensor], idx: torch.Tensor, dtype) -> torch.Tensor:
    """U-centred linear Grams of one minibatch, flattened: an L x m² matrix.

    ``<U(K), U(L)> / (m(m-3))`` equals the unbiased HSIC of eq. 5.2 exactly (Székely & Rizzo
    2014; Song et al. 2012), so one GEMM of these rows gives eq. 5.2 for every layer pair.
    Features are centred per batch first: the estimator is invariant to it, and it removes
    the large common-mean part of ReLU features that would otherwise cancel in float32.
    """
    m = idx.numel()
    grams = []
    for x in layers:
        z = x[idx]
        z = z.to(dtype) - _column_means(z, dtype)
        grams.append(z @ z.T)
    k = torch.stack(grams)  # L x m x m
    k.diagonal(dim1=1, dim2=2).zero_()  # K̃ = K - diag(K)
    row = k.sum(2, keepdim=True)  # K̃1, as L x m x 1
    total = row.sum(1, keepdim=True)  # 1ᵀK̃1, as L x 1 x 1
    # In place: U(K̃) = K̃ - K̃1/(m-2) - 1ᵀK̃/(m-2) + 1ᵀK̃1/((m-1)(m-2)), zero diagonal.
    k.sub_(row / (m - 2)).sub_(row.transpose(1, 2) / (m - 2)).add_(total / ((m - 1) * (m - 2)))
    k.diagonal(dim1=1, dim2=2).zero_()
    return k.reshape(len(layers), m * m)


def _minibatch_pieces(xa, xb, dtype, batch_size: int, seed: int | None):
    """Sums over minibatches of the unbiased HSIC for all pairs and for each layer itself."""
    same = xb is None
    n = xa[0].shape[0]
    if batch_size < 4:
        raise ValueError(f"batch_size must be at least 4 for the unbiased HSIC, got {batch_size}")
    if n < 4:
        raise ValueError(f"the minibatch estimator needs at least 4 samples, got {n}")
    dev = xa[0].device
    if seed is None:
        order = torch.arange(n)
    else:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    # k = n // batch_size batches whose sizes differ by at most one: every sample is used and
    # no tiny ragged batch (whose HSIC would be very noisy) enters the average.
    batches = torch.tensor_split(order.to(dev), max(1, n // batch_size))
    hsic = torch.zeros(len(xa), len(xa if same else xb), dtype=torch.float64, device=dev)
    sq_a = torch.zeros(len(xa), dtype=torch.float64, device=dev)
    sq_b = torch.zeros(hsic.shape[1], dtype=torch.float64, device=dev)
    for idx in batches:
        m = idx.numel()
        scale = 1.0 / (m * (m - 3))
        fa = _u_centred_grams(xa, idx, dtype)
        fb = fa if same else _u_centred_grams(xb, idx, dtype)
        hsic += (fa @ fb.T).to(torch.float64) * scale
        if not same:
            sq_a += (fa * fa).sum(1).to(torch.float64) * scale
            sq_b += (fb * fb).sum(1).to(torch.float64) * scale
    if same:
        sq_a = sq_b = torch.diagonal(hsic)
    # The 1/k of eq. 5.1 cancels between numerator and denominators.
    return hsic, sq_a, sq_b


def cka_matrix(
    acts_a,
    acts_b=None,
    method: str = "linear",
    batch_size: int = 256,
    *,
    seed: int | None = 0,
    dtype: torch.dtype | None = None,
) -> np.ndarray:
    """CKA for every pair of layers: an ``len(acts_a) x len(acts_b)`` float64 array.

    Args:
        acts_a: list of layer activations on the same n inputs (each n x p_l, or n x ...).
        acts_b: a second model's list on the same inputs; ``None`` compares ``acts_a`` with
            itself (the result is then symmetric with a unit diagonal).
        method: ``"linear"`` -- eq. 3.1 over all samples (exact; cost grows with n or n²);
            ``"minibatch"`` -- eqs. 5.1-5.2, unbiased HSIC averaged over minibatches.
        batch_size: minibatch size m for ``"minibatch"`` (ignored by ``"linear"``). The n
            samples are split into ``n // m`` batches of near-equal size (sizes differ by at
            most one, so no sample is dropped); ``n < m`` gives a single batch.
        seed: samples are shuffled with this seed before batching, so class-sorted inputs
            still give mixed batches; ``None`` keeps the given order.
        dtype: working precision; default float64 on CPU, float32 (TF32 off) elsewhere.

    Each layer's Gram (or cross-covariance) is built once; all pairs then come from one
    matrix product per chunk or minibatch. Runs on the device of the first tensor in acts_a.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(acts_a, (torch.Tensor, np.ndarray)):
        acts_a = list(acts_a)
    first = next((a for a in acts_a if isinstance(a, torch.Tensor)), None)
    device = first.device if first is not None else torch.device("cpu")
    xa = _check_layers(acts_a, "acts_a", device)
    xb = None if acts_b is None else _check_layers(acts_b, "acts_b", device)
    named = [(f"acts_a[{i}]", x) for i, x in enumerate(xa)]
    named += [(f"acts_b[{i}]", x) for i, x in enumerate(xb or [])]
    n = _check_same_n(named)
    dtype = dtype or _default_dtype(device)

    with _exact_fp32(dtype), torch.no_grad():
        if method == "minibatch":
            hsic, sa, sb = _minibatch_pieces(xa, xb, dtype, batch_size, seed)
        else:
            if n < 2:
                raise ValueError("linear CKA needs at least 2 samples")
            pa = sum(x.shape[1] for x in xa)
            pb = pa if xb is None else sum(x.shape[1] for x in xb)
            lb = len(xa) if xb is None else len(xb)
            feature_cost = n * pa * pb
            gram_cost = n * n * (pa + pb) + len(xa) * lb * n * n
            if feature_cost <= gram_cost and pa * pb <= 4 * _BLOCK_ELEMS:
                hsic, sa, sb = _linear_feature_form(xa, xb, dtype)
            else:
                hsic, sa, sb = _linear_gram_form(xa, xb, dtype)
    out = _ratio(hsic.cpu().numpy(), sa.cpu().numpy(), sb.cpu().numpy())
    if xb is None:
        out = (out + out.T) / 2  # GEMM rounding can break exact symmetry
        np.fill_diagonal(out, np.where(np.isnan(np.diag(out)), np.nan, 1.0))
    return out


def cka_drift(acts_by_task, method: str = "linear", **kwargs) -> np.ndarray:
    """Representation drift: each layer compared with itself across checkpoints.

    ``acts_by_task[t][l]`` is layer l's activations after task t (or any checkpoint),
    all on the same inputs. Returns an ``L x T x T`` array ``D`` with
    ``D[l, k, j] = CKA(layer l after k, layer l after j)``. It is symmetric in (k, j); row k
    from column k on is the thesis Fig. 3.3.3 curve for the representations of task k
    (reference after task k against every later task j >= k). Extra keyword arguments go to
    :func:`cka_matrix`.
    """
    checkpoints = list(acts_by_task)
    if not checkpoints:
        raise ValueError("acts_by_task: no checkpoints given")
    n_layers = {len(c) for c in checkpoints}
    if len(n_layers) != 1:
        raise ValueError(
            f"every checkpoint must have the same number of layers, got {sorted(n_layers)}"
        )
    depth = n_layers.pop()
    # One cka_matrix per layer over its T checkpoints: T Grams built once, T² pairs from them.
    return np.stack(
        [
            cka_matrix([c[layer] for c in checkpoints], method=method, **kwargs)
            for layer in range(depth)
        ]
    )
