"""Centred Kernel Alignment (CKA) between layer representations.

Two estimators:

* ``"linear"`` -- thesis eq. 3.1 on column-centred features,
  ``CKA(X, Y) = ||XᵀY||²_F / (||XᵀX||_F ||YᵀY||_F)``, over all n samples at once.
* ``"minibatch"`` -- thesis eqs. 5.1-5.2 (Nguyen et al. 2021): the unbiased HSIC of each
  minibatch's linear Grams, numerators and denominators each averaged over the minibatches.
  Work grows like n·m·Σp (m = batch size) and scratch memory like L·m², so it scales to
  large probe sets; "linear" costs n·(Σp)² or n²·Σp, whichever is smaller.

Three views build on :func:`cka_matrix`: layer x layer inside one model
(``cka_matrix(acts)``), model A versus model B (``cka_matrix(acts_a, acts_b)``) and the
same layer across checkpoints (:func:`cka_drift`).

Activations are n x p matrices (torch tensors or numpy arrays); any trailing dimensions are
flattened, so conv maps ``(n, c, h, w)`` may be passed as they are. Work runs on the device
of the first torch tensor given. A layer with no variance has undefined CKA: NaN.

Precision: :func:`linear_cka` is float64 throughout. :func:`cka_matrix` forms its products in
float32 by default (2x faster on CPU, far faster on GPUs) but accumulates every long sum in
float64, which keeps it within ~3e-7 of an all-float64 evaluation; ``dtype=torch.float64``
is available.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from engine.analysis.stats import column_means

__all__ = ["linear_cka", "cka_matrix", "cka_drift"]

METHODS = ("linear", "minibatch")

# Upper bound (in elements) on the temporary blocks built at once; keeps peak memory at a
# few hundred MB whatever n and the layer widths are.
_BLOCK_ELEMS = 1 << 25
# Precision plan. Products run in the working dtype (float32 by default, IEEE: no TF32), on
# centred, scaled features (see _Layer), with no float32 sum longer than _MAX_DOT terms:
# Gram entries sum over one layer's p features, cross-covariances over chunks of at most
# _MAX_DOT samples, and <K, L> over chunks of at most _MAX_DOT Gram entries. Every partial
# result is accumulated in float64 (chunks, batches, block sums, Gram totals). A single float32
# sum over all n² Gram entries was measured to be off by 1e-4; with this plan the result is
# within ~3e-7 of an all-float64 evaluation (tests and bench check < 1e-5).
_MAX_DOT = 1 << 16
_F64 = torch.float64


def _as_matrix(x, name: str, device: torch.device | None = None) -> torch.Tensor:
    """One layer's activations as an n x p tensor (trailing dims flattened), on ``device``."""
    t = torch.as_tensor(x)
    if t.ndim == 0:
        raise ValueError(f"{name}: activations must have a sample dimension, got a scalar")
    if device is not None and t.device != device:
        t = t.to(device)
    if not t.is_floating_point() or t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()  # integers, and half types whose squares overflow or lose digits
    return t.reshape(t.shape[0], -1) if t.ndim != 2 else t


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
    # |CKA| <= 1 by Cauchy-Schwarz (the unbiased HSIC is an inner product too); clipping only
    # removes rounding excess, e.g. 1 + 3e-8 for identical layers given as two lists.
    return np.clip(out, -1.0, 1.0)


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
    x = x.to(_F64) - column_means(x, _F64)
    y = y.to(_F64) - column_means(y, _F64)
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


class _Layer:
    """A layer's activations with the statistics needed to centre and scale any rows of it.

    Centring once with the full-data column means removes the large common mean of ReLU
    features before any product is formed (it would otherwise cancel in float32); CKA is
    invariant to it, and so is the unbiased HSIC. Scaling by a power of two (exact in
    floating point; CKA is invariant to it too) brings rows to unit norm on average, so
    float32 products can neither overflow nor underflow whatever the activation magnitudes.
    """

    def __init__(self, x: torch.Tensor, dtype: torch.dtype):
        self.x, self.dtype, self.width = x, dtype, x.shape[1]
        # The mean in the input's own precision is enough (float64 would be 4x slower): what
        # is left of the common mean is a tiny constant offset, which the unbiased HSIC
        # ignores exactly and linear CKA only to second order (~(1e-7 mean/std)²).
        mean = column_means(x, x.dtype).to(_F64)
        # The scale only needs the order of magnitude: total variance of the first rows.
        head = x[:1024].to(_F64) - mean
        total_var = float((head * head).sum()) / head.shape[0]
        self.scale = 2.0 ** -round(np.log2(total_var) / 2) if total_var > 0 else 1.0
        self.shift = (-mean * self.scale).to(dtype)  # exact: scale is a power of two

    def rows(self, sel) -> torch.Tensor:
        """Centred, scaled rows ``sel`` (a slice or an index tensor) in the working dtype."""
        z = self.x[sel]
        if z.dtype != self.dtype:
            z = z.to(self.dtype)
        return torch.add(self.shift, z, alpha=self.scale)  # (z - mean) * scale in one pass


def _inner(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """``fa @ fb.T`` in float64, from float32 GEMMs over column chunks of <= _MAX_DOT."""
    if fa.dtype == _F64:
        return fa @ fb.T
    out = torch.zeros(fa.shape[0], fb.shape[0], dtype=_F64, device=fa.device)
    for cols in _chunks(fa.shape[1], _MAX_DOT):
        out += (fa[:, cols] @ fb[:, cols].T).to(_F64)
    return out


def _sq_norms(f: torch.Tensor) -> torch.Tensor:
    """Squared norm of each row, accumulated in float64."""
    return (f * f).sum(1, dtype=_F64)


def _block_sq_sums(c: torch.Tensor, widths_a: list[int], widths_b: list[int]) -> torch.Tensor:
    """Sum of squares of each (layer a, layer b) block of the stacked cross-covariance."""
    dev = c.device
    ia = torch.arange(len(widths_a), device=dev).repeat_interleave(
        torch.tensor(widths_a, device=dev)
    )
    ib = torch.arange(len(widths_b), device=dev).repeat_interleave(
        torch.tensor(widths_b, device=dev)
    )
    sq = c**2
    rows = torch.zeros(len(widths_a), c.shape[1], dtype=sq.dtype, device=dev).index_add_(0, ia, sq)
    out = torch.zeros(len(widths_a), len(widths_b), dtype=sq.dtype, device=dev)
    return out.index_add_(1, ib, rows)


def _linear_feature_form(la: list[_Layer], lb: list[_Layer] | None):
    """Full-batch HSIC pieces from one stacked cross-covariance ``Zaᵀ Zb`` (Pa x Pb).

    Chosen when the summed widths are small next to n: one GEMM over the concatenated,
    centred layers, accumulated over sample chunks; each pair is then a block's squared norm.
    """
    same = lb is None
    lb = la if same else lb
    n, dev = la[0].x.shape[0], la[0].x.device
    wa, wb = [a.width for a in la], [b.width for b in lb]
    c = torch.zeros(sum(wa), sum(wb), dtype=_F64, device=dev)
    grams_a = [torch.zeros(w, w, dtype=_F64, device=dev) for w in ([] if same else wa)]
    grams_b = [torch.zeros(w, w, dtype=_F64, device=dev) for w in ([] if same else wb)]
    rows_per_chunk = min(_MAX_DOT, _BLOCK_ELEMS // (sum(wa) + sum(wb)))
    for rows in _chunks(n, rows_per_chunk):
        za = [a.rows(rows) for a in la]
        zb = za if same else [b.rows(rows) for b in lb]
        c += (torch.cat(za, 1).T @ torch.cat(zb, 1)).to(_F64)
        # The normalisers need ||XᵀX|| per layer: only the diagonal blocks, n·Σp² work.
        for g, z in zip(grams_a + grams_b, ([] if same else za + zb), strict=True):
            g += (z.T @ z).to(_F64)
    hsic = _block_sq_sums(c, wa, wb)
    if same:
        return hsic, torch.diagonal(hsic), torch.diagonal(hsic)
    self_a = torch.stack([(g**2).sum() for g in grams_a])
    self_b = torch.stack([(g**2).sum() for g in grams_b])
    return hsic, self_a, self_b


def _linear_gram_form(la: list[_Layer], lb: list[_Layer] | None):
    """Full-batch HSIC pieces from flattened centred Grams: ``<Kc_a, Kc_b>`` for all pairs.

    Chosen when layers are wide next to n. Gram rows are built a chunk at a time for every
    layer, then one GEMM ``Fa Fbᵀ`` adds that chunk's contribution to every pair, so each Gram
    entry is computed exactly once and the n x n Grams never sit in memory together.
    """
    same = lb is None
    n, dev = la[0].x.shape[0], la[0].x.device
    everything = slice(None)
    za = [a.rows(everything) for a in la]
    zb = za if same else [b.rows(everything) for b in lb]
    hsic = torch.zeros(len(za), len(zb), dtype=_F64, device=dev)
    sq_a = torch.zeros(len(za), dtype=_F64, device=dev)
    sq_b = torch.zeros(len(zb), dtype=_F64, device=dev)
    for rows in _chunks(n, _BLOCK_ELEMS // ((len(za) + len(zb)) * n)):
        fa = torch.stack([z[rows] @ z.T for z in za]).reshape(len(za), -1)
        fb = fa if same else torch.stack([z[rows] @ z.T for z in zb]).reshape(len(zb), -1)
        hsic += _inner(fa, fb)
        if not same:
            sq_a += _sq_norms(fa)
            sq_b += _sq_norms(fb)
    if same:
        return hsic, torch.diagonal(hsic), torch.diagonal(hsic)
    return hsic, sq_a, sq_b


def _u_centred_grams(layers: list[_Layer], idx) -> torch.Tensor:
    """U-centred linear Grams of one minibatch, flattened: an L x m² matrix.

    ``<U(K), U(L)> / (m(m-3))`` equals the unbiased HSIC of eq. 5.2 exactly (Székely & Rizzo
    2014; Song et al. 2012), so one GEMM of these rows gives eq. 5.2 for every layer pair.
    """
    m = idx.numel() if isinstance(idx, torch.Tensor) else idx.stop - idx.start
    first = layers[0]
    k = torch.empty(len(layers), m, m, dtype=first.dtype, device=first.x.device)
    for i, layer in enumerate(layers):
        z = layer.rows(idx)
        torch.matmul(z, z.T, out=k[i])
    k.diagonal(dim1=1, dim2=2).zero_()  # K̃ = K - diag(K)
    row = k.sum(2, keepdim=True).to(_F64)  # K̃1, as L x m x 1 (m terms: float32 is fine)
    total = row.sum(1, keepdim=True)  # 1ᵀK̃1, as L x 1 x 1
    # In place: U(K̃) = K̃ - K̃1/(m-2) - 1ᵀK̃/(m-2) + 1ᵀK̃1/((m-1)(m-2)), zero diagonal.
    # (The corrections are formed in float64 and rounded once.)
    row_term = (row / (m - 2) - total / (2 * (m - 1) * (m - 2))).to(k.dtype)
    k.sub_(row_term).sub_(row_term.transpose(1, 2))
    k.diagonal(dim1=1, dim2=2).zero_()
    return k.reshape(len(layers), m * m)


def _minibatch_pieces(la: list[_Layer], lb: list[_Layer] | None, batch_size: int, seed):
    """Sums over minibatches of the unbiased HSIC for all pairs and for each layer itself."""
    same = lb is None
    n, dev = la[0].x.shape[0], la[0].x.device
    # k = n // batch_size batches whose sizes differ by at most one: every sample is used and
    # no tiny ragged batch (whose HSIC would be very noisy) enters the average.
    n_batches = max(1, n // batch_size)
    if seed is None:  # consecutive rows: slices, so no gather
        bounds = [len(b) for b in torch.tensor_split(torch.arange(n), n_batches)]
        starts = np.cumsum([0] + bounds)
        batches = [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    else:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(dev)
        batches = list(torch.tensor_split(order, n_batches))
    hsic = torch.zeros(len(la), len(la if same else lb), dtype=_F64, device=dev)
    sq_a = torch.zeros(hsic.shape[0], dtype=_F64, device=dev)
    sq_b = torch.zeros(hsic.shape[1], dtype=_F64, device=dev)
    for idx in batches:
        fa = _u_centred_grams(la, idx)
        fb = fa if same else _u_centred_grams(lb, idx)
        m = idx.numel() if isinstance(idx, torch.Tensor) else idx.stop - idx.start
        scale = 1.0 / (m * (m - 3))
        hsic += _inner(fa, fb) * scale
        if not same:
            sq_a += _sq_norms(fa) * scale
            sq_b += _sq_norms(fb) * scale
    if same:
        return hsic, torch.diagonal(hsic), torch.diagonal(hsic)
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
        dtype: precision of the Gram / cross-covariance products (the O(m²p) work); default
            float32 (IEEE: TF32 and bf16 shortcuts are switched off for the call), within
            ~1e-6 of float64 because all long sums run in float64. ``_F64`` makes
            every step float64 (about 2x slower on CPU, far slower on most GPUs).

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
    dtype = dtype or torch.float32
    if method == "minibatch" and batch_size < 4:
        raise ValueError(f"batch_size must be at least 4 for the unbiased HSIC, got {batch_size}")
    if n < (4 if method == "minibatch" else 2):
        raise ValueError(
            f"{method} CKA needs at least {4 if method == 'minibatch' else 2} samples, got {n}"
        )

    with _exact_fp32(dtype), torch.no_grad():
        la = [_Layer(x, dtype) for x in xa]
        lb = None if xb is None else [_Layer(x, dtype) for x in xb]
        if method == "minibatch":
            hsic, sa, sb = _minibatch_pieces(la, lb, batch_size, seed)
        else:
            pa = sum(x.shape[1] for x in xa)
            pb = pa if xb is None else sum(x.shape[1] for x in xb)
            lb_n = len(xa) if xb is None else len(xb)
            feature_cost = n * pa * pb
            gram_cost = n * n * (pa + pb) + len(xa) * lb_n * n * n
            if feature_cost <= gram_cost and pa * pb <= 4 * _BLOCK_ELEMS:
                hsic, sa, sb = _linear_feature_form(la, lb)
            else:
                hsic, sa, sb = _linear_gram_form(la, lb)
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
