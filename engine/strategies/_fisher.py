"""The diagonal Fisher information E[(∂L/∂θ)²] from per-sample gradients (ewc, online-ewc).

Per-sample gradients come from torch.func (functional_call + vmap + grad): one batched pass per
chunk on the device instead of a Python loop of single-sample backward passes. For nn.Linear
layers the sum of squared per-sample gradients has a closed form that never materialises them:
a sample's weight gradient is the outer product δ xᵀ of the gradient at the layer's output and
its input, so Σ_b (δ_b x_bᵀ)² = (δ²)ᵀ (x²) — one matmul of squares, exact, and for an MLP
hundreds of times cheaper than the N × P per-sample gradients (the test checks both paths agree).
Other parameters (convolutions, BatchNorm) go through vmap.

The loss of each sample is the training loss (engine.train.task_loss): the sample's own head in
task-IL and the softmax temperature; a dynamic temperature uses each sample's own logit norm.
So the Fisher measures the same likelihood the model was trained on.

Which label each sample's log-likelihood uses (``fisher_labels``): its dataset label (the
empirical Fisher), one label drawn from the model's prediction, or every label weighted by its
predicted probability (the true Fisher, exact; van de Ven 2025's "EXACT"). Then ``fisher_norm``
scales each task's Fisher by its mean entry (the default), its largest entry, or not at all: a
converged model's Fisher is tiny, and how tiny depends on how confident training left it, so an
unscaled λ that works on one benchmark does nothing on another (docs/strategies-regularization.md).

Only the squared-gradient form is offered. The "observed" form, the diagonal of the Hessian
E[∂²L/∂θ²], agrees with it only at an exact optimum of a well-specified model; elsewhere its
entries can be negative, and a negative F_i turns the EWC penalty into a force that pushes θ_i
away from its anchor (the blog in seeds/004 found about a third of them negative, which wrecked
training). A square is never negative.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from engine.losses import scaled_logits
from engine.strategies.base import StrategyParams

FisherLabels = Literal["true", "sampled", "expected"]
FisherNorm = Literal["mean", "max", "none"]
ELEMENTS_PER_CHUNK = 2**24  # per-sample gradients held at once (64 MiB of float32)
ROWS_PER_CHUNK = 4096  # samples per chunk when no per-sample gradient is materialised


class FisherParams(StrategyParams):
    """Hyperparameters of the Fisher estimate, shared by ewc and online-ewc."""

    fisher_samples: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Training samples of the finished task used to estimate the Fisher (capped at its size)",
    )
    fisher_labels: FisherLabels = Field(
        "true",
        description="Labels in the log-likelihood: 'true' = dataset labels (empirical Fisher), 'sampled' = one drawn from the model's prediction, 'expected' = every class weighted by its predicted probability (true Fisher, exact)",
    )
    fisher_norm: FisherNorm = Field(
        "mean",
        description="Scale of each task's Fisher: 'mean' = divided by its mean over all weights (λ = 1 pulls an average weight as l2 with λ = 0.5), 'max' = by its largest entry, 'none' = raw (the literature's λ of 1e2…1e9)",
    )

    @field_validator("fisher_labels", mode="before")
    @classmethod
    def _bool_is_true(cls, v):
        # `--set fisher_labels=true` and URL query strings parse the word as a boolean.
        return "true" if v is True else v

    @field_validator("fisher_norm", mode="before")
    @classmethod
    def _null_is_none(cls, v):
        # A query string or JSON null for "none" means the unscaled Fisher, not a missing value.
        return "none" if v is None else v


def fisher_generator(seed: int, phase: int, device: torch.device) -> torch.Generator:
    """The Fisher's own random stream (sample subset, sampled labels), fixed by seed and phase."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + 7_919 * phase + 17)


def _row_logits(logits: torch.Tensor, mask: torch.Tensor | None, train_cfg) -> torch.Tensor:
    """task_loss's logits, row by row: head mask, then temperature (dynamic: each row's norm)."""

    logits = logits.float()
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    if train_cfg.dynamic_temperature:
        return logits / logits.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return scaled_logits(logits, train_cfg)


@torch.no_grad()
def _sample_labels(model, x, mask, train_cfg, generator) -> torch.Tensor:
    probs = F.softmax(_row_logits(model(x), mask, train_cfg), dim=1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def _linear_squares(model, linears: dict[str, nn.Linear], x, y, w, mask, train_cfg) -> dict | None:
    """Σ_b w_b² · (per-sample gradient)² of every Linear in ``linears`` (None: not applicable).

    One batched forward and one backward to the layers' outputs. Rows are independent (eval
    mode, row-wise loss), so the gradient at row b of an output is that sample's own δ_b.
    ``w`` (one per row, or None for 1) scales each sample's loss, so its square weights the row.
    """
    seen: dict[str, list] = {name: [] for name in linears}

    def keep(name):
        return lambda module, args, out: seen[name].append((args[0], out))

    handles = [m.register_forward_hook(keep(name)) for name, m in linears.items()]
    try:
        with torch.enable_grad():
            logits = model(x)
            losses = F.cross_entropy(_row_logits(logits, mask, train_cfg), y, reduction="none")
            loss = (losses if w is None else losses * w).sum()
            if any(len(v) != 1 or v[0][0].dim() != 2 for v in seen.values()):
                return None  # a layer called twice or on non-flat input: no closed form
            outs = [seen[name][0][1] for name in linears]
            deltas = torch.autograd.grad(loss, outs, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    squares = {}
    for (name, module), delta in zip(linears.items(), deltas, strict=True):
        d2 = torch.zeros_like(seen[name][0][1]) if delta is None else delta.square()
        prefix = f"{name}." if name else ""  # "" = the model itself is the Linear
        squares[f"{prefix}weight"] = d2.T @ seen[name][0][0].detach().square()
        if module.bias is not None:
            squares[f"{prefix}bias"] = d2.sum(0)
    return squares


def _vmap_squares(model, params, buffers, x, y, w, mask, train_cfg) -> dict[str, torch.Tensor]:
    """Σ_b w_b² · (per-sample gradient of ``params``)², the per-sample gradients from vmap."""

    def per_sample(p, xs, ys, ws, ms):
        logits = torch.func.functional_call(model, (p, buffers), (xs.unsqueeze(0),))
        row_mask = None if ms is None else ms.unsqueeze(0)
        loss = F.cross_entropy(_row_logits(logits, row_mask, train_cfg), ys.unsqueeze(0))
        return loss if ws is None else loss * ws

    in_dims = (None, 0, 0, None if w is None else 0, None if mask is None else 0)
    grads = torch.func.vmap(torch.func.grad(per_sample), in_dims=in_dims)(params, x, y, w, mask)
    return {name: g.square().sum(0) for name, g in grads.items()}


@torch.no_grad()
def _label_weights(model, x, mask, train_cfg) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The true Fisher's sum over labels as (labels, row weights) pairs, one per class c with
    p(c|x) > 0 somewhere: rows label c with weight √p(c|x), so squares weigh in p(c|x). Rows
    where p(c|x) = 0 (units outside their head) get weight 0 and a label their loss is finite
    for (their most likely class), so they add nothing."""
    probs = F.softmax(_row_logits(model(x), mask, train_cfg), dim=1)
    top = probs.argmax(1)
    pairs = []
    for c in range(probs.shape[1]):
        p = probs[:, c]
        if bool((p > 0).any()):
            pairs.append((torch.where(p > 0, c, top), p.sqrt()))
    return pairs


def normalized(fisher: dict[str, torch.Tensor], how: FisherNorm) -> dict[str, torch.Tensor]:
    """The Fisher divided by its mean (or largest) entry over every weight; ``none`` as it is.

    A converged model's Fisher is tiny and its scale follows how confident training made the
    model (a mean entry from 2e-14 to 4e-5 over the presets, docs/strategies-regularization.md),
    so a fixed λ does nothing on one run and too much on another. Divided by its mean, the weights' importances average 1 and EWC's λ/2 is
    the pull an average weight feels, as l2's λ is; the ranking of the weights is unchanged.
    An all-zero Fisher (a model certain of every sample, to float precision) stays zero.
    """
    if how == "none":
        return fisher
    flat = torch.cat([f.flatten() for f in fisher.values()])
    scale = flat.mean() if how == "mean" else flat.max()
    if not bool(scale > 0):
        return fisher
    return {name: f / scale for name, f in fisher.items()}


def diagonal_fisher(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    tid: torch.Tensor,
    train_cfg,
    head_mask: torch.Tensor | None = None,
    labels: FisherLabels = "true",
    generator: torch.Generator | None = None,
    closed_form: bool = True,
) -> dict[str, torch.Tensor]:
    """Mean over the samples of the squared per-sample gradient of the loss, per parameter.

    ``head_mask`` (T × units, task-IL) restricts each sample's softmax to its task's units;
    ``labels="sampled"`` draws each sample's label from the model's predictive distribution
    (with ``generator``) instead of using ``y``; ``labels="expected"`` sums over every label,
    each weighted by its predicted probability (the true Fisher, exact: one backward pass per
    class the heads allow); ``closed_form=False`` sends the Linear layers
    through vmap too (the reference the closed form is tested against). The model is evaluated
    in eval mode (BatchNorm uses its running statistics, as at test time) and left in the mode
    it was in.
    """
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    n = len(x)
    if n == 0:
        return fisher
    linears = {}
    if closed_form:
        linears = {
            name: m
            for name, m in model.named_modules()
            if isinstance(m, nn.Linear)
            and m.weight.requires_grad
            and (m.bias is None or m.bias.requires_grad)
        }
    was_training = model.training
    model.eval()
    try:
        for start in range(0, n, ROWS_PER_CHUNK if linears else n):
            sl = slice(start, start + (ROWS_PER_CHUNK if linears else n))
            xb, yb, tb = x[sl], y[sl], tid[sl]
            mask = head_mask[tb] if head_mask is not None else None
            if labels == "expected":
                pairs = _label_weights(model, xb, mask, train_cfg)
            elif labels == "sampled":
                pairs = [(_sample_labels(model, xb, mask, train_cfg, generator), None)]
            else:
                pairs = [(yb, None)]
            for yc, w in pairs:
                squares = (
                    _linear_squares(model, linears, xb, yc, w, mask, train_cfg) if linears else {}
                )
                if squares is None:  # no closed form for this model: everything through vmap
                    linears, squares = {}, {}
                rest = {k: v for k, v in params.items() if k not in squares}
                if rest:
                    per_chunk = max(1, ELEMENTS_PER_CHUNK // sum(p.numel() for p in rest.values()))
                    for s in range(0, len(xb), per_chunk):
                        part = slice(s, s + per_chunk)
                        m = None if mask is None else mask[part]
                        wp = None if w is None else w[part]
                        for name, sq in _vmap_squares(
                            model, rest, buffers, xb[part], yc[part], wp, m, train_cfg
                        ).items():
                            fisher[name] += sq
                for name, sq in squares.items():
                    fisher[name] += sq
    finally:
        model.train(was_training)
    return {name: f / n for name, f in fisher.items()}
