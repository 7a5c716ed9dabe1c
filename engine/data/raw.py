"""The raw form every dataset loader returns before tasks and scenarios are applied."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SPLIT_SEED = 0  # fixed: the train/test split is part of the benchmark, not of an experiment


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


def stratified_split(
    x: np.ndarray,
    y: np.ndarray,
    test_fraction: float,
    n_classes: int | None = None,
    class_names: list[str] | None = None,
) -> RawData:
    """The benchmark's fixed stratified train/test split of arrays (classes 0…n_classes−1;
    by default as many as ``y`` shows, named by their ids)."""
    # imported here: loaders that find their split cached never pay scikit-learn's import
    from sklearn.model_selection import train_test_split

    n = int(y.max()) + 1 if n_classes is None else n_classes
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=SPLIT_SEED, stratify=y
    )
    return RawData(
        x_train=torch.from_numpy(np.ascontiguousarray(x_tr)),
        y_train=torch.from_numpy(y_tr.astype(np.int64)),
        x_test=torch.from_numpy(np.ascontiguousarray(x_te)),
        y_test=torch.from_numpy(y_te.astype(np.int64)),
        n_classes=n,
        class_names=[str(c) for c in range(n)] if class_names is None else list(class_names),
    )
