"""A benchmark and a model in one plugin file (docs/extending.md).

    python -m engine --plugin examples/plugins/stripes.py run --benchmark stripes --set arch=gelu-mlp

``stripes``: 12×12 sine gratings at 8 orientations (0°, 22.5°, … 157.5°) with a random phase and
Gaussian noise, 100 of each, generated from a fixed seed; 4 tasks of two orientations.
``gelu-mlp``: the engine's MLP with GELU instead of ReLU (model.depth layers of model.width).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine.data.catalog import EMBEDDED_SOURCE, BenchmarkFacts
from engine.data.raw import RawData
from engine.models import ProbedModel

N_CLASSES, SIZE, PER_CLASS = 8, 12, 100

FACTS = BenchmarkFacts(
    "stripes",
    EMBEDDED_SOURCE,  # load() splits off data.test_fraction itself
    "Noisy sine gratings at 8 orientations, 12×12, 4 tasks of two",
    n_classes=N_CLASSES,
    input_shape=(1, SIZE, SIZE),
    images=N_CLASSES * PER_CLASS,
    preset={
        "data": {"n_tasks": 4},
        "model": {"arch": "mlp", "depth": 2, "width": 100},
        "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 32, "epochs": 5},
    },
)


def load(data_cfg) -> RawData:
    """The gratings; the first test_fraction of each orientation's images is its test set."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images, labels = [], []
    for k in range(N_CLASSES):
        angle = math.pi * k / N_CLASSES
        for _ in range(PER_CLASS):
            phase = rng.uniform(0, 2 * math.pi)
            wave = np.sin(1.5 * (xx * math.cos(angle) + yy * math.sin(angle)) + phase)
            images.append(wave + rng.normal(0, 0.5, wave.shape))
            labels.append(k)
    x = torch.tensor(np.array(images), dtype=torch.float32)[:, None]
    y = torch.tensor(labels)
    test = torch.arange(len(y)) % PER_CLASS < round(PER_CLASS * data_cfg.test_fraction)
    names = [f"{180 * k / N_CLASSES:g}°" for k in range(N_CLASSES)]
    return RawData(x[~test], y[~test], x[test], y[test], N_CLASSES, names)


ARCH = "gelu-mlp"


class GeluLayer(nn.Module):
    """Flatten → Linear → GELU: one probe point."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.linear(x.flatten(1)))


def build(cfg, input_shape: tuple[int, int, int], n_outputs: int) -> ProbedModel:
    n_in = math.prod(input_shape)
    layers = [GeluLayer(n_in if i == 0 else cfg.width, cfg.width) for i in range(cfg.depth)]
    names = [f"fc{i + 1}" for i in range(cfg.depth)]
    return ProbedModel(ARCH, names, layers, nn.Flatten(), cfg.width, n_outputs, input_shape)
