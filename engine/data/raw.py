"""The raw form every dataset loader returns before tasks and scenarios are applied."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch


def data_dir() -> Path:
    """Where datasets live: $FORGET_DATA_DIR, else ./data (never from a visitor)."""
    return Path(os.environ.get("FORGET_DATA_DIR", "data")).expanduser()


@dataclass
class RawData:
    x_train: torch.Tensor  # N×C×H×W, uint8 (0–255) or float
    y_train: torch.Tensor  # N, int64 class ids 0…n_classes−1
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    class_names: list[str]
