"""The classification loss every phase trains with, in a leaf module: the training loop and the
strategies that need the task loss of other samples (A-GEM, DER++, low-lr, the Fisher) share it."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def scaled_logits(logits: torch.Tensor, train_cfg) -> torch.Tensor:
    """logits / T, with T fixed or the batch's Frobenius norm (dynamic temperature, thesis 6.2.5)."""
    if train_cfg.dynamic_temperature:
        return logits / logits.norm().clamp_min(1e-12)
    if train_cfg.temperature != 1.0:
        return logits / train_cfg.temperature
    return logits


def task_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    tid: torch.Tensor,
    head_mask: torch.Tensor | None,
    train_cfg,
) -> torch.Tensor:
    """Cross-entropy over the units each sample's task may use (its own head in task-IL)."""
    if head_mask is not None:
        logits = logits.masked_fill(~head_mask[tid], float("-inf"))
    return F.cross_entropy(scaled_logits(logits, train_cfg), y)
