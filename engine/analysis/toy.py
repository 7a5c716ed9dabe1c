"""The deep-linear toy of the rank-deficit bias (thesis 6.2.1-6.2.5, Figs. 6.2.1-6.2.4).

Task: learn the identity, ``X = Y = I_d`` (d = 5): sample j is the basis vector e_j and its
class is j. Model: three bias-free d x d layers, output ``A = W3 W2 W1 X`` whose column j holds
the d logits of sample j. Full-batch gradient descent with one of three losses:

- ``"mse"``: mean over samples of the squared error, ``(1/d) ‖A - Y‖_F²`` (the same scale
  per sample as the cross-entropy; PyTorch's ``MSELoss()`` divides by d² instead, which is
  this loss with the learning rate divided by d);
- ``"ce"``: mean over samples of the cross-entropy of ``softmax(a_j)`` (column-wise softmax);
- ``"ce-dynamic"``: the same on ``A / T`` with ``T = ‖A‖_F`` (6.2.5, "dynamic temperature").
  T is part of the graph, as in ``F.cross_entropy(out / out.norm(), y)``: the loss then only
  sees the direction of A. Treating T as a constant instead (detaching it) makes the gradient
  grow the top mode without limit; in our runs that collapsed to rank 1 at 40 % accuracy.

What the thesis reports and these defaults reproduce (seed 0; also checked on seeds 0-29):

- phase 1: every loss starts from a full-rank output and collapses to rank 1-3 as the first
  modes escape the small initialisation;
- phase 2: MSE learns the remaining modes one by one (saddle to saddle) and ends at rank 5
  with all singular values at 1 (Fig. 6.2.3 left); cross-entropy reaches 100 % training
  accuracy with two modes (rarely three) and stalls there while those grow without bound
  (Fig. 6.2.3 right); after the first pre-softmax singular value takes off, all post-softmax
  singular values rise and settle at 1 (Fig. 6.2.4);
- the dynamic temperature keeps every class direction: the logits tend to a multiple of the
  centred identity ``I - J/d``, as MSE's tend to ``I``;
- on Gaussian-perturbed inputs the rank-2 CE solution loses accuracy much faster than the
  other two, which are identical (Fig. 6.2.2).

A note on rank: softmax ignores a constant added to a column, so the cross-entropy losses
never act on the all-ones direction of the logits. ``rank`` is the thesis' rank of A (Eq. 6.2);
``rank_centered`` is the rank of A after subtracting each column's mean -- the part any
softmax can see, at most d - 1. MSE's identity has rank 5 and centred rank 4; the dynamic
temperature's centred identity has centred rank 4, and a raw rank of 4 or 5 depending on how
much of the initial all-ones component it still carries (the scale-invariant loss slowly
shrinks it). CE's solution has rank 2 either way.

Defaults and why: ``init_scale=0.01`` (weights N(0, 0.01²)): a small initialisation is what
produces the saddle-to-saddle phases the thesis describes; at 0.1 the phases blur and CE keeps
a third, init-sized direction. ``lr=0.5``: stable for every loss on 30 seeds, where 1.0 made CE
diverge on 2 seeds of 20. ``iters=10000``: MSE reached rank 5 by iteration
6,200 on all 30 seeds (by 2,200 for seed 0); CE and the dynamic temperature settle within
~1,000. Closed-form float64 gradients in numpy: one run takes well under a second on one core.

Rank: singular values above ``rel_tol · σ₁`` with ``rel_tol = 1e-3`` (thesis Eq. 6.2 uses a
threshold relative to σ₁; 1e-3 is the project's convention, see :mod:`engine.analysis.rank`).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from engine.analysis.softmax import column_softmax

__all__ = [
    "DEFAULT_SIGMAS",
    "LOSSES",
    "logit_grad",
    "perturbation_accuracy",
    "run_toy",
    "toy_loss",
    "weight_grads",
]

LOSSES = ("mse", "ce", "ce-dynamic")

# Noise levels for Fig. 6.2.2: from clean inputs to noise as large as the signal and beyond.
DEFAULT_SIGMAS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(16))


def _eye_like(A: np.ndarray) -> np.ndarray:
    return np.eye(A.shape[0], A.shape[1])


def toy_loss(A: np.ndarray, loss: str) -> float:
    """Value of the toy loss at logits ``A`` (columns = samples, targets ``Y = I``)."""
    d = A.shape[1]
    Y = _eye_like(A)
    if loss == "mse":
        return float(((A - Y) ** 2).sum() / d)
    if loss == "ce-dynamic":
        A = A / math.sqrt(float((A * A).sum()))
    # -log softmax(a_j)[j] = logsumexp(a_j) - a_jj, computed with the column maximum taken out.
    m = A.max(axis=0)
    lse = m + np.log(np.exp(A - m).sum(axis=0))
    return float((lse - np.diag(A)).mean())


def logit_grad(A: np.ndarray, loss: str) -> np.ndarray:
    """Gradient of :func:`toy_loss` with respect to the logits ``A``.

    - mse: ``2 (A - Y) / d``;
    - ce: ``(softmax(A) - Y) / d``;
    - ce-dynamic: with ``Z = A / ‖A‖_F`` and ``G_Z = (softmax(Z) - Y) / d``, the chain rule
      through the norm gives ``(G_Z - <G_Z, Z> Z) / ‖A‖_F``: the radial part is removed, so
      the step only turns A.
    """
    d = A.shape[1]
    if loss == "mse":
        return (A - _eye_like(A)) * (2.0 / d)
    if loss == "ce":
        P = column_softmax(A)
        P[np.diag_indices(min(P.shape))] -= 1.0
        return P / d
    T = math.sqrt(float((A * A).sum()))
    Z = A / T
    GZ = column_softmax(Z)
    GZ[np.diag_indices(min(GZ.shape))] -= 1.0
    GZ /= d
    return (GZ - float((GZ * Z).sum()) * Z) / T


def weight_grads(
    W1: np.ndarray, W2: np.ndarray, W3: np.ndarray, G: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a loss with logit gradient ``G`` for ``A = W3 W2 W1`` (X = I)."""
    W3tG = W3.T @ G
    return W2.T @ W3tG, W3tG @ W1.T, G @ (W2 @ W1).T


def _post_softmax(S: np.ndarray, loss: str) -> np.ndarray:
    """The probabilities the loss sees, for a stack ``S`` (k x d x d) of logits.

    softmax(A / ‖A‖_F) for ce-dynamic, else softmax(A), column-wise. MSE uses no softmax; its
    post-softmax spectrum is what a softmax would make of its logits, for comparison only.
    """
    if loss == "ce-dynamic":
        S = S / np.sqrt((S * S).sum(axis=(1, 2), keepdims=True))
    E = np.exp(S - S.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _losses(S: np.ndarray, loss: str) -> np.ndarray:
    """:func:`toy_loss` for every matrix of a stack ``S`` (k x d x d)."""
    d = S.shape[2]
    diag = np.diagonal(S, axis1=1, axis2=2)
    if loss == "mse":
        return ((S - np.eye(d)) ** 2).sum(axis=(1, 2)) / d
    if loss == "ce-dynamic":
        norm = np.sqrt((S * S).sum(axis=(1, 2), keepdims=True))
        S, diag = S / norm, diag / norm[:, :, 0]
    m = S.max(axis=1)
    lse = m + np.log(np.exp(S - m[:, None, :]).sum(axis=1))
    return (lse - diag).mean(axis=1)


def _ranks(s: np.ndarray, rel_tol: float) -> list[int]:
    """Numerical rank of every row of descending singular values ``s`` (k x d)."""
    return (s > rel_tol * s[:, :1]).sum(axis=1).astype(int).tolist()


# -- input checks (each names the argument) --


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_pos(name: str, value, upper: float = math.inf) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a positive number, got {value!r}") from err
    if not (math.isfinite(v) and 0.0 < v < upper):
        limit = "" if upper == math.inf else f" and < {upper}"
        raise ValueError(f"{name} must be finite, > 0{limit}, got {value!r}")
    return v


# Logits beyond this are treated as divergence: their squares would overflow float64.
_MAX_LOGIT = 1e100


def _train(W1, W2, W3, loss, iters, lr, record_every, snaps):
    """Full-batch GD in place; stores the logits every ``record_every`` steps (and the last).

    Returns how many records were stored and the weights of the last one. Stops at the first
    record whose logits are not finite (or beyond ``_MAX_LOGIT``): the weights returned are
    then those of the last good record.

    The gradient step is written out (same maths as :func:`logit_grad` and
    :func:`weight_grads`, which the tests check against finite differences and against this
    loop): this loop is the whole cost of a run.
    """
    d = W1.shape[0]
    eye = np.eye(d)
    n_rec = 0
    kept = (W1.copy(), W2.copy(), W3.copy())
    for t in range(iters + 1):
        W21 = W2 @ W1
        A = W3 @ W21
        if t % record_every == 0 or t == iters:
            if not (np.all(np.isfinite(A)) and np.abs(A).max() < _MAX_LOGIT):
                break
            snaps[n_rec] = A
            n_rec += 1
            kept = (W1.copy(), W2.copy(), W3.copy())
        if t == iters:
            break
        if loss == "mse":
            G = A - eye
            G *= lr * 2.0 / d
        elif loss == "ce":
            G = column_softmax(A)
            G -= eye
            G *= lr / d
        else:
            T = math.sqrt(np.vdot(A, A))
            Z = A / T
            G = column_softmax(Z)
            G -= eye
            G -= np.vdot(G, Z) * Z  # drop the radial part (the gradient through T)
            G *= lr / (d * T)
        W3tG = W3.T @ G
        g1 = W2.T @ W3tG  # every gradient from the weights before this step
        W2 -= W3tG @ W1.T
        W1 -= g1
        W3 -= G @ W21.T
    return n_rec, kept


def run_toy(
    loss: str = "mse",
    d: int = 5,
    iters: int = 10_000,
    lr: float = 0.5,
    seed: int = 0,
    init_scale: float = 0.01,
    record_every: int = 10,
    rel_tol: float = 1e-3,
) -> dict:
    """Train the deep-linear toy with full-batch GD and record its output spectrum (thesis 6.2).

    Weights ``W1, W2, W3`` are drawn N(0, init_scale²) from ``numpy.random.default_rng(seed)``
    in that order, so every loss starts from the same network for a given seed. The state after
    ``t`` updates is recorded for t = 0, record_every, 2·record_every, ... and at t = iters.

    Returns a JSON-ready dict:

    - ``iteration``: recorded t; ``loss_value``: loss at t;
    - ``rank`` / ``rank_centered``: numerical rank of the logits A, and of A with each column's
      mean removed (what a softmax can see; see the module docstring);
    - ``singular_values``: singular values of A (pre-softmax), one list per record;
    - ``singular_values_post``: singular values of the column-wise softmax the loss uses
      (softmax(A/‖A‖_F) for ce-dynamic; softmax(A) for ce, and for mse as a reference);
    - ``accuracy``: training accuracy (argmax of column j == j);
    - ``weights``: final ``[W1, W2, W3]`` (lists of lists); ``product``: final W3 W2 W1;
    - ``final``: the last record's ``rank``, ``rank_centered``, ``accuracy``,
      ``singular_values``, ``loss_value``;
    - ``diverged``: True if the logits stopped being finite; training stops there, and the
      records, ``final`` and ``weights`` are those of the last finite record;
    - the arguments: ``loss``, ``d``, ``iters``, ``lr``, ``seed``, ``init_scale``,
      ``record_every``, ``rel_tol``.

    Raises ``ValueError`` naming the argument for an unknown loss, d < 2, lr <= 0 and the like.
    Identical output for identical arguments.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    d = _check_int("d", d, 2)
    iters = _check_int("iters", iters, 1)
    seed = _check_int("seed", seed, 0)
    record_every = _check_int("record_every", record_every, 1)
    lr = _check_pos("lr", lr)
    init_scale = _check_pos("init_scale", init_scale)
    rel_tol = _check_pos("rel_tol", rel_tol, upper=1.0)

    rng = np.random.default_rng(seed)
    W1, W2, W3 = (init_scale * rng.standard_normal((d, d)) for _ in range(3))
    centre = np.eye(d) - 1.0 / d  # I - J/d removes each column's mean

    # Logits are only stored in the loop; spectra, losses and ranks are computed afterwards
    # in one batched pass (per-record SVD calls would cost as much as the training itself).
    steps = list(range(0, iters, record_every)) + [iters]
    snaps = np.empty((len(steps), d, d))
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported, not warned
        n_rec, (W1, W2, W3) = _train(W1, W2, W3, loss, iters, lr, record_every, snaps)
    diverged = n_rec < len(steps)

    S = snaps[:n_rec]
    s_pre = np.linalg.svd(S, compute_uv=False)
    s_cen = np.linalg.svd(centre @ S, compute_uv=False)
    s_post = np.linalg.svd(_post_softmax(S, loss), compute_uv=False)
    rec = {
        "iteration": steps[:n_rec],
        "loss_value": _losses(S, loss).tolist(),
        "rank": _ranks(s_pre, rel_tol),
        "rank_centered": _ranks(s_cen, rel_tol),
        "singular_values": s_pre.tolist(),
        "singular_values_post": s_post.tolist(),
        "accuracy": (S.argmax(axis=1) == np.arange(d)).mean(axis=1).tolist(),
    }
    final = {k: v[-1] for k, v in rec.items() if k != "iteration"}
    A = W3 @ W2 @ W1
    return {
        "loss": loss,
        "d": d,
        "iters": iters,
        "lr": lr,
        "seed": seed,
        "init_scale": init_scale,
        "record_every": record_every,
        "rel_tol": rel_tol,
        **rec,
        "final": final,
        "weights": [W1.tolist(), W2.tolist(), W3.tolist()],
        "product": A.tolist(),
        "diverged": diverged,
    }


def _check_sigmas(sigmas) -> np.ndarray:
    if sigmas is None:
        return np.asarray(DEFAULT_SIGMAS)
    try:
        sig = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise ValueError(f"sigmas must be a list of numbers >= 0, got {sigmas!r}") from err
    if sig.ndim != 1 or sig.size == 0:
        raise ValueError("sigmas must be a non-empty 1-D list of numbers >= 0")
    if not np.all(np.isfinite(sig)) or np.any(sig < 0):
        raise ValueError(f"sigmas must all be finite and >= 0, got {sig.tolist()}")
    return sig


def perturbation_accuracy(result: dict, sigmas=None, k: int = 1000, seed: int = 0) -> dict:
    """Accuracy of a trained toy on Gaussian-perturbed inputs (thesis 6.2.2, Fig. 6.2.2).

    For each class i, ``k`` points ``e_i + σ·ξ`` with ξ ~ N(0, I_d) are classified by the argmax
    of ``W3 W2 W1 x`` (a temperature never changes the argmax). One draw of ξ from
    ``numpy.random.default_rng(seed)`` is scaled by every σ, so the curve is smooth in σ and two
    models compared with the same seed see exactly the same points.

    ``result`` is a :func:`run_toy` result (its ``weights`` are used); ``sigmas`` defaults to
    :data:`DEFAULT_SIGMAS` (0 to 1.5 in steps of 0.1). Returns a JSON-ready dict with
    ``sigma``, ``accuracy`` (over all d·k points), ``per_class`` (d accuracies per σ), ``k``,
    ``seed`` and ``loss`` (from the result).
    """
    try:
        W1, W2, W3 = (np.asarray(w, dtype=np.float64) for w in result["weights"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError("result must be a run_toy result with 'weights' [W1, W2, W3]") from err
    sig = _check_sigmas(sigmas)
    k = _check_int("k", k, 1)
    seed = _check_int("seed", seed, 0)

    M = W3 @ W2 @ W1
    d = M.shape[1]
    xi = np.random.default_rng(seed).standard_normal((d, d, k))  # class, coordinate, point
    clean = M @ np.eye(d)  # logits of the unperturbed inputs, column i = class i
    noise = np.einsum("ab,ibk->iak", M, xi)  # M ξ for every class and point (linear model)
    acc, per_class = [], []
    for s in sig:
        pred = (clean.T[:, :, None] + s * noise).argmax(axis=1)  # (class, point)
        hits = pred == np.arange(d)[:, None]
        acc.append(float(hits.mean()))
        per_class.append(hits.mean(axis=1).tolist())
    return {
        "sigma": sig.tolist(),
        "accuracy": acc,
        "per_class": per_class,
        "k": k,
        "seed": seed,
        "loss": result.get("loss"),
    }
