"""Freezing layers for good (frozen, freeze-k): no gradients, and BatchNorm statistics fixed.

requires_grad=False keeps the weights out of the optimizer, but a BatchNorm layer in training
mode would still normalise with batch statistics and update its running ones. A forward
pre-hook switches frozen BatchNorm layers to eval mode on every call (the training loop puts
the whole model back in train mode after each evaluation), so a frozen layer computes exactly
what it computes at test time and its buffers stay bit-identical.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn


def _eval_mode(module: nn.Module, args) -> None:
    module.training = False


def freeze(modules: Iterable[nn.Module]) -> None:
    """Freeze ``modules`` (idempotent)."""
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(False)
        for sub in m.modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm) and not getattr(
                sub, "_frozen", False
            ):
                sub.register_forward_pre_hook(_eval_mode)
                sub._frozen = True
