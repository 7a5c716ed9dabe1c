"""Geometry of representations and weights: class variances, weight change, alignment, norms.

- inter- and intra-class variance of each layer's representations (thesis 5.13, Fig. 5.2.2);
- per-layer weight change between two checkpoints, ‖Δθ‖₂/√(nm) (thesis Fig. 5.3.1);
- alignment of top singular vectors of consecutive layers, weight norms and the logits norm
  (thesis 6.3.2, Figs. 6.3.2–6.3.3);
- a 2-D projection (PCA, or UMAP when installed) of one layer's representations.

"Layer weights" of a ``state_dict`` are its entries whose name ends in ``.weight`` and that have
at least two dimensions (linear matrices and conv kernels), in the ``state_dict``'s order;
biases and normalisation scales (1-D) are not layers' weight matrices. A layer is named by its
module path, i.e. the entry name without the trailing ``.weight``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

# Above this many rows and columns an exact SVD of the data gets slow; PCA then uses the
# randomised torch.pca_lowrank under a fixed seed instead.
_EXACT_PCA_MAX = 2048


# ------------------------------------------------------------------------ class variances


def class_variances(acts: Sequence[torch.Tensor] | torch.Tensor, y: torch.Tensor) -> dict:
    """Intra- and inter-class variance of each layer's representations (thesis 5.13).

    With C classes present in ``y``, class j's representations X_j (t_j samples) and their
    mean μ_j:

    - intra-class variance = 1/C · Σ_j ( 1/t_j · Σ_{f ∈ X_j} ‖f − μ_j‖² )
    - inter-class variance = 1/(C(C−1)) · Σ_j Σ_{k≠j} ‖μ_j − μ_k‖²

    ``acts`` is a list of ``n×p_l`` tensors (one per layer; trailing dimensions are
    flattened) or a single tensor / array for one layer. Returns ``{"intra": [...], "inter": [...]}``, one
    float per layer. The thesis plots the two side by side and defines no ratio, so none is
    returned. Inter-class variance needs at least two classes.
    """
    # A bare tensor or array is one layer; a list holds one entry per layer.
    layers = [acts] if isinstance(acts, torch.Tensor | np.ndarray) else list(acts)
    if not layers:
        raise ValueError("acts must be a non-empty list of per-layer n×p activations")
    y = torch.as_tensor(y).reshape(-1)
    if y.numel() == 0:
        raise ValueError("y must hold at least one label")
    # Relabel to 0..C−1 so classes absent from y do not count towards C.
    classes, labels = torch.unique(y, return_inverse=True)
    n_cls = classes.numel()
    if n_cls < 2:
        raise ValueError("inter-class variance needs at least two classes in y")

    intra, inter = [], []
    for i, a in enumerate(layers):
        x = _as_2d(a, f"acts[{i}]")
        if x.shape[0] != labels.shape[0]:
            raise ValueError(f"acts[{i}] has {x.shape[0]} rows for {labels.shape[0]} labels")
        w, b = _layer_variances(x, labels.to(x.device), n_cls)
        intra.append(w)
        inter.append(b)
    return {"intra": intra, "inter": inter}


def _layer_variances(x: torch.Tensor, labels: torch.Tensor, n_cls: int) -> tuple[float, float]:
    x = x.double() if x.device.type == "cpu" else x.float()
    counts = torch.bincount(labels, minlength=n_cls).to(x.dtype)
    means = torch.zeros(n_cls, x.shape[1], dtype=x.dtype, device=x.device)
    means.index_add_(0, labels, x)
    means /= counts[:, None]
    # Squared distances to the own class mean, summed per class, averaged within, then across.
    sq = (x - means[labels]).pow(2).sum(dim=1)
    per_class = torch.zeros(n_cls, dtype=x.dtype, device=x.device).index_add_(0, labels, sq)
    intra = (per_class / counts).mean()
    # Σ_j Σ_{k≠j} ‖μ_j − μ_k‖² = 2C Σ_j ‖μ_j − μ̄‖² (μ̄ the mean of the class means); centring
    # first avoids the cancellation of the expanded ‖a‖² + ‖b‖² − 2⟨a,b⟩ form.
    centred = means - means.mean(dim=0)
    inter = 2.0 * centred.pow(2).sum() / (n_cls - 1)
    return float(intra), float(inter)


# -------------------------------------------------------------------------------- weights


def layer_weights(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The layers' weight matrices / conv kernels of a ``state_dict``, in order, by layer name."""
    return {
        (name.removesuffix(".weight") if name != "weight" else name): t
        for name, t in state.items()
        if (name == "weight" or name.endswith(".weight"))
        and isinstance(t, torch.Tensor)
        and t.ndim >= 2
    }


def weight_change(
    state_a: Mapping[str, torch.Tensor], state_b: Mapping[str, torch.Tensor]
) -> dict[str, float]:
    """Per-layer weight change ‖θ_a − θ_b‖₂ / √(nm) between two checkpoints (thesis Fig. 5.3.1).

    θ is the layer's weight flattened to a vector in ℝ^{nm}; nm is its number of elements
    (out × in for a linear layer, out × in × kh × kw for a conv kernel), so the value is the
    root-mean-square change per weight and layers of different size compare. Biases and
    normalisation parameters are left out, as in the thesis. Both states must come from the
    same architecture. Returns ``{layer_name: change}`` in layer order.
    """
    wa, wb = layer_weights(state_a), layer_weights(state_b)
    if list(wa) != list(wb):
        raise ValueError("state_a and state_b have different layers; same model required")
    out = {}
    for name, a in wa.items():
        b = wb[name]
        if a.shape != b.shape:
            raise ValueError(f"layer {name}: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
        diff = a.detach().double() - b.detach().to(a.device).double()
        out[name] = float(diff.norm() / math.sqrt(a.numel()))
    return out


def weight_norms(state: Mapping[str, torch.Tensor], ord: str = "fro") -> dict[str, float]:
    """Norm of each layer's weight (thesis 6.3.2, Fig. 6.3.2 "norm of weights matrices").

    ``ord="fro"`` (default) is the Frobenius norm of the weight (a conv kernel flattened);
    ``ord="spectral"`` is its top singular value σ₁ — the quantity whose product over aligned
    layers bounds the logits' top singular value in thesis 6.3.2 — with a conv kernel taken as
    the ``out × (in·kh·kw)`` matrix. Returns ``{layer_name: norm}`` in layer order.
    """
    if ord not in ("fro", "spectral"):
        raise ValueError(f"ord must be 'fro' or 'spectral'; got {ord!r}")
    out = {}
    for name, w in layer_weights(state).items():
        m = w.detach().double().reshape(w.shape[0], -1)
        out[name] = float(m.norm() if ord == "fro" else torch.linalg.matrix_norm(m, ord=2))
    return out


def logits_norm(logits: torch.Tensor, reduction: str = "fro") -> float:
    """Norm of a batch of logits (thesis 6.3.2, Fig. 6.3.2).

    The thesis's argument is about the Frobenius norm ‖WA‖ of the logits matrix, the default.
    That grows with √n, so ``reduction="mean"`` gives the mean per-sample L2 norm instead, for
    comparing batches of different size.
    """
    z = _as_2d(logits, "logits").double()
    if reduction == "fro":
        return float(z.norm())
    if reduction == "mean":
        return float(z.norm(dim=1).mean())
    raise ValueError(f"reduction must be 'fro' or 'mean'; got {reduction!r}")


# ------------------------------------------------------------------------------ alignment


def singular_alignment(
    weights: Sequence[torch.Tensor] | Mapping[str, torch.Tensor],
    k: int = 15,
    reps: Sequence[torch.Tensor] | None = None,
    mode: str = "diag",
) -> list[float]:
    """Alignment of the top-k singular vectors of consecutive layers (thesis 6.3.2, Fig. 6.3.3).

    Thesis eq. 6.3: with W = U_W Σ_W V_Wᵀ the next layer's weight and A = U_A Σ_A V_Aᵀ the
    representations feeding it, ‖WA‖ is largest when V_Wᵀ U_A = I, i.e. when the right
    singular vectors of W align with the left singular vectors of A; the thesis tracks the top
    15. Weights are ``out × in`` (PyTorch layout), so for consecutive layers l, l+1:

    - without ``reps``, U_A is the left singular vectors of W_l (the directions W_l writes
      into, which span what layer l+1 reads: A_l = ReLU(W_l A_{l−1}));
    - with ``reps`` (``reps[l]`` the ``n×p`` output of layer l, samples as rows), U_A is the
      top principal directions of A_l (its right singular vectors in n×p layout), as in the
      thesis's weight-versus-representation plots. ``reps`` needs one entry per weight; the
      last is unused.

    With M = V_{l+1}[:, :k]ᵀ U_l[:, :k] (k×k), ``mode="diag"`` (default) returns mean_i |M_ii|
    — how close M is to the identity of the thesis (absolute values because singular vectors
    have arbitrary sign). ``mode="subspace"`` returns ‖M‖_F² / k, the overlap of the two top-k
    subspaces, which ignores the order within them (robust to near-equal singular values).
    Both are 1 when aligned and ≈0 when orthogonal. k is capped at the smaller rank.

    ``weights`` is a list of weight tensors or a ``state_dict`` (its layer weights are used).
    Conv kernels are summed over their spatial positions to an ``out × in`` matrix (their
    action on spatially constant inputs). Returns one float per consecutive pair; a pair whose
    widths do not match (e.g. across a flatten from conv to linear) gives NaN.
    """
    if isinstance(weights, Mapping):
        weights = list(layer_weights(weights).values())
    mats = [_as_matrix(w) for w in weights]
    if len(mats) < 2:
        raise ValueError("singular_alignment needs at least two layers")
    if k < 1:
        raise ValueError(f"k must be ≥ 1; got {k}")
    if mode not in ("diag", "subspace"):
        raise ValueError(f"mode must be 'diag' or 'subspace'; got {mode!r}")
    if reps is not None and len(reps) != len(mats):
        raise ValueError(f"reps needs one entry per layer ({len(mats)}); got {len(reps)}")

    out = []
    for l in range(len(mats) - 1):  # noqa: E741 - l is the thesis's layer index
        w_next = mats[l + 1]
        if reps is None:
            u_prev, _, _ = torch.linalg.svd(mats[l], full_matrices=False)
        else:
            a = _as_2d(reps[l], f"reps[{l}]").double()
            _, _, vh = torch.linalg.svd(a, full_matrices=False)
            u_prev = vh.T
        if u_prev.shape[0] != w_next.shape[1]:
            out.append(float("nan"))
            continue
        _, _, vh_next = torch.linalg.svd(w_next, full_matrices=False)
        kk = min(k, u_prev.shape[1], vh_next.shape[0])
        m = vh_next[:kk] @ u_prev[:, :kk].to(vh_next.device)
        score = m.diagonal().abs().mean() if mode == "diag" else m.pow(2).sum() / kk
        out.append(float(score))
    return out


# ----------------------------------------------------------------------------- projection


def project_2d(X, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Project ``n×p`` representations to 2-D for a scatter plot (thesis Fig. 5.2.2 uses UMAP).

    ``method="pca"``: the data centred and projected on its top two principal directions,
    by an exact SVD (or ``torch.pca_lowrank`` under ``seed`` for large inputs); each
    direction's sign is fixed so its largest-magnitude loading is positive, so the result is
    deterministic. ``method="umap"``: UMAP with ``random_state=seed``, only when the optional
    ``umap-learn`` package is installed. Trailing dimensions are flattened. Returns a float
    ``numpy`` array of shape ``n×2``.
    """
    x = _as_2d(X, "X").detach().cpu()
    if x.shape[0] < 2:
        raise ValueError("project_2d needs at least two samples")
    if method == "pca":
        return _pca_2d(x.double(), seed)
    if method == "umap":
        try:
            import umap
        except ImportError as exc:
            raise ValueError(
                "method='umap' needs the optional package umap-learn, which is not installed; "
                "install it or use method='pca'"
            ) from exc
        reducer = umap.UMAP(n_components=2, random_state=seed)
        return np.asarray(reducer.fit_transform(x.float().numpy()), dtype=np.float64)
    raise ValueError(f"method must be 'pca' or 'umap'; got {method!r}")


def _pca_2d(x: torch.Tensor, seed: int) -> np.ndarray:
    xc = x - x.mean(dim=0)
    q = min(2, *xc.shape)
    if min(xc.shape) <= _EXACT_PCA_MAX:
        _, _, vh = torch.linalg.svd(xc, full_matrices=False)
        v = vh[:q].T
    else:
        # pca_lowrank draws a random sketch from the global RNG; fork it so the caller's RNG
        # state is untouched and the result depends only on seed.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _, _, v = torch.pca_lowrank(xc, q=q + 8, center=False, niter=6)
        v = v[:, :q]
    # Sign convention: the largest-magnitude loading of each direction is positive.
    rows = v.abs().argmax(dim=0)
    v = v * torch.sign(v[rows, torch.arange(q)])
    proj = (xc @ v).numpy()
    if q < 2:  # a single feature or two samples: pad so callers always get n×2
        proj = np.hstack([proj, np.zeros((proj.shape[0], 2 - q))])
    return proj


# --------------------------------------------------------------------------------- helpers


def _as_2d(a, name: str) -> torch.Tensor:
    x = torch.as_tensor(a)
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape n×p (or n×…); got {tuple(x.shape)}")
    return x.reshape(x.shape[0], -1)


def _as_matrix(w) -> torch.Tensor:
    w = torch.as_tensor(w).detach().double()
    if w.ndim < 2:
        raise ValueError(f"a layer weight must have ≥ 2 dimensions; got {tuple(w.shape)}")
    if w.ndim > 2:
        w = w.reshape(w.shape[0], w.shape[1], -1).sum(dim=2)
    return w
