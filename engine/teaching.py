"""The math behind the Learn page's lessons: small, exact, and testable without Streamlit.

Four groups, one per kind of lesson:

* **Information theory** — entropy, cross-entropy and KL divergence of discrete distributions,
  in bits or nats, with the term-by-term table the course works through (lesson 1).
* **The stability–plasticity problem in 2-D** — two tasks with quadratic losses
  ``L_k(θ) = ½ (θ − θ*_k)ᵀ A_k (θ − θ*_k)``; gradient-descent paths of fine-tuning, a frozen
  learner, L2 and EWC with strength λ, and joint training; every end point also in closed form
  (lesson 2). Every method here minimises ``L_2(θ) + λ/2 (θ − θ*_1)ᵀ F (θ − θ*_1)``, whose
  minimiser is ``(A_2 + λF)⁻¹ (A_2 θ*_2 + λ F θ*_1)`` (fine-tuning: λ = 0; L2: F = I; EWC: F
  the Fisher of task 1; joint: F = A_1, λ = 1).
* **Curvature on a real network** — lesson 4's network part is a kind of computation of its
  own (engine.kinds.lesson_curvature): it trains, so it runs as a job.
* **Softened targets** — softmax(z/T), the lecture's p^{1/T} form of the same thing, and the
  distillation KL with its T² factor (lesson 5).

Plus helpers that run (or fetch from the store) small real experiments through
:func:`engine.runner.run` and condense them into the numbers a lesson shows (lessons 3, 5, 6).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.metrics import old_new_accuracy

__all__ = [
    "COURSE_P",
    "COURSE_Q",
    "FISHER_KINDS",
    "METHODS",
    "QuadraticTask",
    "cross_entropy",
    "default_tasks",
    "distillation_terms",
    "end_point",
    "entropy",
    "fisher_matrix",
    "gd_path",
    "information_terms",
    "kl_divergence",
    "lecture_softening",
    "old_new_accuracy",
    "penalised_optimum",
    "replay_tradeoff",
    "run_table",
    "softened",
    "stability_plasticity",
]

# ---------------------------------------------------------------------------------------------
# 1. Entropy, cross-entropy and KL divergence
# ---------------------------------------------------------------------------------------------

UNITS = {"bits": 2.0, "nats": math.e}
# The course's worked example (discussion 12, question 1).
COURSE_P = (0.5, 0.5)
COURSE_Q = (0.1, 0.9)


def log_in(x: np.ndarray, unit: str) -> np.ndarray:
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    with np.errstate(divide="ignore"):
        return np.log(x) / math.log(UNITS[unit])


def _distribution(p, name: str) -> np.ndarray:
    """A probability vector: 1-D, at least two outcomes, non-negative, summing to 1."""
    try:
        a = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of probabilities, got {p!r}") from None
    if a.ndim != 1 or a.size < 2:
        raise ValueError(
            f"{name} must list at least two outcome probabilities, got shape {a.shape}"
        )
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise ValueError(f"{name} must hold finite probabilities ≥ 0, got {a.tolist()}")
    if abs(a.sum() - 1.0) > 1e-6:
        raise ValueError(f"{name} must sum to 1, got {a.sum():.6g} ({a.tolist()})")
    return a


def _pair(p, q) -> tuple[np.ndarray, np.ndarray]:
    a, b = _distribution(p, "p"), _distribution(q, "q")
    if a.shape != b.shape:
        raise ValueError(
            f"p and q must have the same number of outcomes, got {a.size} and {b.size}"
        )
    return a, b


def _plogq(p: np.ndarray, q: np.ndarray, unit: str) -> np.ndarray:
    """p_i · log q_i per outcome, with 0 · log(anything) = 0 (an impossible outcome adds nothing)."""
    out = np.zeros_like(p)
    on = p > 0
    out[on] = p[on] * log_in(q[on], unit)
    return out


def entropy(p, unit: str = "bits") -> float:
    """H(p) = −Σ p_i log p_i: the expected surprise of an outcome drawn from p."""
    a = _distribution(p, "p")
    return float(-_plogq(a, a, unit).sum())


def cross_entropy(p, q, unit: str = "bits") -> float:
    """H(p, q) = −Σ p_i log q_i: the expected surprise when outcomes come from p but q is believed.

    Infinite when q gives zero probability to an outcome p can produce.
    """
    a, b = _pair(p, q)
    return float(-_plogq(a, b, unit).sum())


def kl_divergence(p, q, unit: str = "bits") -> float:
    """D_KL(p‖q) = Σ p_i log(p_i / q_i) = H(p, q) − H(p); ≥ 0, zero only when p = q."""
    a, b = _pair(p, q)
    return float(_plogq(a, a, unit).sum() - _plogq(a, b, unit).sum())


def information_terms(p, q, unit: str = "bits") -> dict:
    """Every quantity of lesson 1 with its per-outcome terms.

    Returns ``rows`` (one per outcome: ``p``, ``q``, ``surprise_p`` = −log p_i, ``surprise_q``
    = −log q_i, ``h_p`` = −p_i log p_i, ``h_pq`` = −p_i log q_i, ``kl_pq`` = p_i log(p_i/q_i),
    ``kl_qp`` = q_i log(q_i/p_i)) and the totals ``H_p``, ``H_q``, ``H_pq``, ``H_qp``, ``KL_pq``,
    ``KL_qp``, plus ``unit``. The row terms sum to the totals, and KL_pq = H_pq − H_p exactly
    as the course derives it.
    """
    a, b = _pair(p, q)
    h_p, h_q = -_plogq(a, a, unit), -_plogq(b, b, unit)
    h_pq, h_qp = -_plogq(a, b, unit), -_plogq(b, a, unit)
    kl_pq, kl_qp = h_pq - h_p, h_qp - h_q
    rows = [
        {
            "outcome": i,
            "p": float(a[i]),
            "q": float(b[i]),
            "surprise_p": float(-log_in(a[i : i + 1], unit)[0]),
            "surprise_q": float(-log_in(b[i : i + 1], unit)[0]),
            "h_p": float(h_p[i]),
            "h_pq": float(h_pq[i]),
            "kl_pq": float(kl_pq[i]),
            "kl_qp": float(kl_qp[i]),
        }
        for i in range(a.size)
    ]
    return {
        "unit": unit,
        "rows": rows,
        "H_p": float(h_p.sum()),
        "H_q": float(h_q.sum()),
        "H_pq": float(h_pq.sum()),
        "H_qp": float(h_qp.sum()),
        "KL_pq": float(kl_pq.sum()),
        "KL_qp": float(kl_qp.sum()),
    }


# ---------------------------------------------------------------------------------------------
# 2. Stability versus plasticity: two quadratic tasks in a 2-D parameter space
# ---------------------------------------------------------------------------------------------

METHODS = ("fine-tune", "frozen", "l2", "ewc", "joint")
FISHER_KINDS = ("diagonal", "empirical", "full")


@dataclass(frozen=True)
class QuadraticTask:
    """``L(θ) = ½ (θ − center)ᵀ A (θ − center)`` with A symmetric positive definite."""

    center: np.ndarray
    A: np.ndarray

    def __post_init__(self) -> None:
        c = np.asarray(self.center, dtype=np.float64).reshape(-1)
        A = np.asarray(self.A, dtype=np.float64)
        if A.shape != (c.size, c.size) or not np.allclose(A, A.T):
            raise ValueError(f"A must be a symmetric {c.size}×{c.size} matrix, got {A.tolist()}")
        if np.linalg.eigvalsh(A).min() <= 0:
            raise ValueError("A must be positive definite (a task loss with a unique minimum)")
        object.__setattr__(self, "center", c)
        object.__setattr__(self, "A", A)

    def loss(self, theta) -> np.ndarray:
        """The loss at θ; θ may be a batch (…×d), e.g. a grid for contour plots."""
        d = np.asarray(theta, dtype=np.float64) - self.center
        return 0.5 * np.einsum("...i,ij,...j->...", d, self.A, d)

    def grad(self, theta) -> np.ndarray:
        return (np.asarray(theta, dtype=np.float64) - self.center) @ self.A


def _rotated(eigenvalues: tuple[float, float], degrees: float) -> np.ndarray:
    r = math.radians(degrees)
    R = np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
    return R @ np.diag(eigenvalues) @ R.T


def default_tasks() -> tuple[QuadraticTask, QuadraticTask]:
    """The lesson's two tasks: task 1 cares about θ₂ and hardly about θ₁; task 2 sits elsewhere.

    Task 1's valley is long and flat along (almost) θ₁, so a learner that knows which direction
    matters can move far along it at little cost; one that treats both directions alike cannot.
    """
    task1 = QuadraticTask(center=np.array([0.0, 0.0]), A=_rotated((0.1, 5.0), 5.0))
    task2 = QuadraticTask(center=np.array([3.0, 1.5]), A=_rotated((4.0, 0.3), 10.0))
    return task1, task2


def fisher_matrix(
    task: QuadraticTask, kind: str = "diagonal", n_samples: int = 200, seed: int = 0
) -> np.ndarray:
    """The Fisher matrix EWC would store for ``task``.

    * ``"diagonal"`` — diag(A): the exact diagonal of the task's Fisher (for a quadratic that is
      the Hessian), which is what EWC keeps;
    * ``"empirical"`` — the diagonal estimated from ``n_samples`` squared per-sample gradients:
      view the task as least squares on samples x ~ N(0, A) with unit noise (its expected loss
      is exactly L up to a constant), so the per-sample gradient at the optimum is −x·ε and
      mean(x² ε²) estimates diag(A);
    * ``"full"`` — A itself (what a full-matrix EWC would keep; with λ = 1 it recovers the joint
      optimum exactly).
    """
    if kind == "diagonal":
        return np.diag(np.diag(task.A))
    if kind == "full":
        return task.A.copy()
    if kind == "empirical":
        if not isinstance(n_samples, int | np.integer) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n_samples, task.A.shape[0])) @ np.linalg.cholesky(task.A).T
        eps = rng.standard_normal(n_samples)
        g = -x * eps[:, None]
        return np.diag((g**2).mean(axis=0))
    raise ValueError(f"fisher kind must be one of {', '.join(FISHER_KINDS)}, got {kind!r}")


def _method_weights(
    method: str, task1: QuadraticTask, lam: float, fisher: np.ndarray | None
) -> tuple[float, np.ndarray]:
    """(λ, F) such that the method minimises L_2 + λ/2 (θ − θ*_1)ᵀ F (θ − θ*_1)."""
    d = task1.center.size
    if method in ("fine-tune", "frozen"):
        return 0.0, np.zeros((d, d))
    if method == "l2":
        return lam, np.eye(d)
    if method == "ewc":
        return lam, fisher_matrix(task1) if fisher is None else np.asarray(fisher, dtype=np.float64)
    if method == "joint":
        return 1.0, task1.A
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def check_lam(lam) -> float:
    if (
        not isinstance(lam, int | float | np.floating | np.integer)
        or not math.isfinite(lam)
        or lam < 0
    ):
        raise ValueError(f"lam (λ) must be a finite number ≥ 0, got {lam!r}")
    return float(lam)


def penalised_optimum(A2, center2, F, center1, lam: float) -> np.ndarray:
    """Minimiser of ``L_2(θ) + λ/2 (θ − θ*_1)ᵀ F (θ − θ*_1)``: ``(A_2 + λF)⁻¹ (A_2 θ*_2 + λ F θ*_1)``.

    Raises ValueError when ``A_2 + λF`` is not positive definite: then the objective has no
    minimum (it is unbounded below along a direction of negative curvature), which is what a
    Fisher with negative entries does.
    """
    lam = check_lam(lam)
    A2, F = np.asarray(A2, dtype=np.float64), np.asarray(F, dtype=np.float64)
    c1, c2 = np.asarray(center1, dtype=np.float64), np.asarray(center2, dtype=np.float64)
    H = A2 + lam * F
    low = np.linalg.eigvalsh(0.5 * (H + H.T)).min()
    if low <= 0:
        raise ValueError(
            f"A_2 + λF has an eigenvalue {low:.3g} ≤ 0: the penalised loss is unbounded below, "
            "so there is no end point (F needs non-negative entries)"
        )
    return np.linalg.solve(H, A2 @ c2 + lam * F @ c1)


def end_point(
    method: str,
    tasks: tuple[QuadraticTask, QuadraticTask] | None = None,
    lam: float = 1.0,
    fisher: np.ndarray | None = None,
) -> np.ndarray:
    """Where ``method`` ends, in closed form (frozen never leaves θ*_1)."""
    task1, task2 = tasks or default_tasks()
    if method == "frozen":
        return task1.center.copy()
    w, F = _method_weights(method, task1, check_lam(lam), fisher)
    return penalised_optimum(task2.A, task2.center, F, task1.center, w)


def gd_path(
    method: str,
    tasks: tuple[QuadraticTask, QuadraticTask] | None = None,
    lam: float = 1.0,
    fisher: np.ndarray | None = None,
    lr: float | None = None,
    max_steps: int = 100_000,
    tol: float = 1e-12,
    blow_up: float = 1e6,
) -> dict:
    """Gradient descent from θ*_1 on the method's objective, until it stops moving.

    ``lr`` defaults to 0.2/(largest |eigenvalue| of the objective's Hessian), which converges
    for every positive definite objective. The run stops when a step moves less than ``tol``,
    after ``max_steps``, or when ‖θ‖ passes ``blow_up`` (a Fisher with negative entries).
    Returns ``path`` (steps+1 × d), ``steps``, ``converged``, ``diverged`` and ``lr``.
    """
    task1, task2 = tasks or default_tasks()
    theta = task1.center.copy()
    if method == "frozen":  # a learner that cannot move: lr = 0
        return {"path": theta[None, :], "steps": 0, "converged": True, "diverged": False, "lr": 0.0}
    w, F = _method_weights(method, task1, check_lam(lam), fisher)
    H = task2.A + w * F
    b = task2.A @ task2.center + w * F @ task1.center
    if lr is None:
        # a fifth of the largest stable step: slower, but the path bends smoothly on a plot
        lr = 0.2 / np.abs(np.linalg.eigvalsh(0.5 * (H + H.T))).max()
    points = [theta]
    converged = diverged = False
    for _ in range(max_steps):
        step = lr * (H @ theta - b)
        theta = theta - step
        points.append(theta)
        if step @ step < tol * tol:
            converged = True
            break
        if not theta @ theta < blow_up * blow_up:  # also catches inf and nan
            diverged = True
            break
    return {
        "path": np.array(points),
        "steps": len(points) - 1,
        "converged": converged,
        "diverged": diverged,
        "lr": float(lr),
    }


def stability_plasticity(
    lam: float = 10.0,
    fisher_kind: str = "diagonal",
    n_samples: int = 200,
    tasks: tuple[QuadraticTask, QuadraticTask] | None = None,
    max_points: int = 400,
) -> dict:
    """Everything lesson 2 draws: for each method its GD path, end point and both tasks' losses.

    Returns ``{"tasks": (task1, task2), "fisher": F, "lam": λ, "methods": {name: {"path",
    "end", "closed_form", "loss1", "loss2", "steps"}}}``; paths are thinned to at most
    ``max_points`` points (first and last kept).
    """
    tasks = tasks or default_tasks()
    task1, task2 = tasks
    F = fisher_matrix(task1, fisher_kind, n_samples)
    out = {}
    for method in METHODS:
        run = gd_path(method, tasks, lam, F)
        path = run["path"]
        if len(path) > max_points:
            keep = np.unique(np.r_[np.geomspace(1, len(path) - 1, max_points - 1).astype(int), 0])
            path = path[keep]
        end = run["path"][-1]
        out[method] = {
            "path": path,
            "end": end,
            "closed_form": end_point(method, tasks, lam, F),
            "loss1": float(task1.loss(end)),
            "loss2": float(task2.loss(end)),
            "steps": run["steps"],
        }
    return {"tasks": tasks, "fisher": F, "lam": float(lam), "methods": out}


# ---------------------------------------------------------------------------------------------
# 4. Softened targets and distillation (lesson 5)
# ---------------------------------------------------------------------------------------------


def _check_T(T) -> float:
    if not isinstance(T, int | float | np.floating | np.integer) or not math.isfinite(T) or T <= 0:
        raise ValueError(f"temperature T must be a finite number > 0, got {T!r}")
    return float(T)


def _logits(z, name: str) -> np.ndarray:
    a = np.asarray(z, dtype=np.float64)
    if a.ndim != 1 or a.size < 2 or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be a list of at least two finite logits, got {z!r}")
    return a


def softened(z, T: float = 1.0) -> np.ndarray:
    """softmax(z / T): T > 1 spreads the mass over more classes, T → ∞ gives the uniform vector."""
    a = _logits(z, "z") / _check_T(T)
    e = np.exp(a - a.max())
    return e / e.sum()


def lecture_softening(probs, T: float = 1.0) -> np.ndarray:
    """The lecture's form (eq. 21.1): p_i^{1/T} / Σ_j p_j^{1/T} — the same as softmax(log p / T)."""
    p = _distribution(probs, "probs")
    T = _check_T(T)
    with np.errstate(divide="ignore"):
        w = np.exp(np.log(p) / T - np.log(p[p > 0]).max() / T)
    return w / w.sum()


def distillation_terms(teacher_logits, student_logits, T: float = 1.0) -> dict:
    """The distillation loss between softened teacher and student outputs (nats).

    ``kl`` = KL(softmax(t/T) ‖ softmax(s/T)); ``kl_T2`` = T² · kl, the usual scaled loss;
    ``grad`` = ∂kl/∂s = (softmax(s/T) − softmax(t/T)) / T and its norm ``grad_norm``, plus
    ``grad_norm_T2`` = T² · grad_norm. For large T the raw gradient shrinks like 1/T² (the
    difference of two nearly uniform vectors is ≈ (s − t)/(nT)), so the T² factor keeps the
    distillation term's pull comparable as T changes.
    """
    t, s = _logits(teacher_logits, "teacher_logits"), _logits(student_logits, "student_logits")
    if t.shape != s.shape:
        raise ValueError(
            f"teacher and student need the same number of logits, got {t.size} and {s.size}"
        )
    T = _check_T(T)
    p, q = softened(t, T), softened(s, T)
    kl = kl_divergence(p, q, unit="nats")
    g = (q - p) / T
    norm = float(np.linalg.norm(g))
    return {
        "teacher": p,
        "student": q,
        "kl": kl,
        "kl_T2": kl * T * T,
        "grad": g,
        "grad_norm": norm,
        "grad_norm_T2": norm * T * T,
    }


# ---------------------------------------------------------------------------------------------
# 5. Real runs condensed for the lessons (3, 5, 6)
# ---------------------------------------------------------------------------------------------


def _summary_row(label: str, result) -> dict:
    old, new = old_new_accuracy(result.R)
    m = result.metrics
    return {
        "label": label,
        "strategy": result.config["strategy"]["name"],
        "old_acc": old,
        "new_acc": new,
        "acc": m.get("acc"),
        "learning_acc": m.get("learning_acc"),
        "bwt": m.get("bwt"),
        "forgetting": m.get("forgetting"),
        "R": result.R,
        "key": result.key,
        "cached": result.cached,
        "status": result.status,
        "seconds": result.timing.get("total_s"),
    }


def run_table(
    configs: Mapping[str, dict],
    run: Callable,
    on_event: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run (or fetch from the store) each labelled config; one summary row per config.

    Rows hold ``old_acc``/``new_acc`` (see :func:`old_new_accuracy`), ACC, learning accuracy,
    BWT, forgetting, the R matrix, the store key and whether it came from the cache.
    """
    return [_summary_row(label, run(cfg, on_event=on_event)) for label, cfg in configs.items()]


def replay_tradeoff(
    base_config: dict,
    run: Callable,
    fractions: Sequence[float] = (0.0, 0.25, 0.5, 0.75),
    on_event: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Replay runs that differ only in the share of each batch drawn from the buffer.

    ``base_config`` is a raw config whose strategy is ``replay``; each fraction sets
    ``strategy.replay_fraction``. Returns :func:`run_table` rows with a ``fraction`` field: the old
    tasks' accuracy rises with the fraction while the newest task's may dip.
    """
    if base_config.get("strategy", {}).get("name") != "replay":
        raise ValueError("base_config: strategy.name must be 'replay'")
    configs = {}
    for f in fractions:
        cfg = copy.deepcopy(base_config)
        cfg["strategy"]["replay_fraction"] = float(f)
        configs[f"{float(f):.2f}"] = cfg
    rows = run_table(configs, run=run, on_event=on_event)
    for f, row in zip(fractions, rows, strict=True):
        row["fraction"] = float(f)
    return rows
