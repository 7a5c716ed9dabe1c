"""The raw form every dataset loader returns before tasks and scenarios are applied."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RawData:
    x_train: torch.Tensor  # N×C×H×W, uint8 (0–255) or float
    y_train: torch.Tensor  # N, int64 class ids 0…n_classes−1
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    class_names: list[str]
