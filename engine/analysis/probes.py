"""Linear probes on frozen layer representations, the tunnel, κ and ρ.

A *linear probe* is a linear classifier trained on one layer's frozen representations; its
test accuracy measures how linearly separable that layer's representations are (thesis 5.2.1,
"Accuracy of linear probing"). Probe accuracy by layer rises through the *extractor* and
saturates in *the tunnel* (thesis 5.2.2, Table 5.2.1). Probes trained on an out-of-distribution
data set on the same model's representations show the tunnel degrading OOD transfer (thesis
5.3.2, Fig. 5.3.3). Thesis 6.3.3 condenses both curves into two numbers: compression κ and
OOD generalisation loss ρ.

Layer numbering: functions here take and return 0-based *indices* into the per-layer lists.
The thesis counts layers from 1, so its "layer" is ``index + 1`` (e.g. Table 5.2.1's "4 (31%)"
for the 13-layer MLP is index 3, and 4/13 = 31%).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Features whose train-split standard deviation is below this are treated as constant: they are
# centred but not scaled, so a dead ReLU unit does not become 0/0.
_STD_EPS = 1e-6
# Rows per chunk when evaluating, to bound memory on wide layers.
_EVAL_CHUNK = 8192


def train_probes(
    acts_train: Sequence[torch.Tensor],
    y_train: torch.Tensor,
    acts_test: Sequence[torch.Tensor],
    y_test: torch.Tensor,
    n_classes: int,
    epochs: int = 30,
    lr: float = 1e-3,
    batch_size: int = 512,
    seed: int = 0,
    device: torch.device | str | None = None,
    ood: tuple | None = None,
) -> dict:
    """Train one linear probe per layer and report train/test accuracy by layer (thesis 5.2.1).

    Thesis defaults (5.8.1, probe hyper-parameters): Adam, lr 1e-3, no weight decay, 30 epochs,
    mini-batch 512.

    ``acts_train``/``acts_test`` are lists with one ``n×p_l`` tensor (or array) per layer;
    trailing dimensions (conv feature maps) are flattened. Every probe is trained at once:
    each step draws one shared shuffled batch of sample indices, each layer's logits come from
    its own weight, the per-layer losses are summed, and one backward pass and one Adam step
    update all probes. Because each probe's gradient depends only on its own loss and Adam is
    element-wise, this is the same computation as training each probe alone with the same seed.

    Features are standardised with the per-feature mean and standard deviation of the *train*
    split (features with std < 1e-6 are only centred). Layers differ in scale by orders of
    magnitude, and a single learning rate trains them all stably only after standardising;
    a linear probe's expressive power is unchanged by this affine map. Probes start at zero
    (the multinomial logistic loss is convex, so no random initialisation is needed), which
    with the seeded shuffle makes the result deterministic for a seed on a given device.

    ``ood``, if given, is ``(acts_train_ood, y_train_ood, acts_test_ood, y_test_ood,
    n_classes_ood)``: the same model's representations of an out-of-distribution data set.
    Separate probes are trained on its train split and evaluated on its test split, as in
    thesis 5.3.2 / 6.3.3 (e.g. CIFAR-10 model, probes on a 10-class subset of CIFAR-100).

    Returns a dict with ``train_acc`` and ``test_acc`` (lists of floats in [0, 1], one per
    layer) and, with ``ood``, ``ood_train_acc`` and ``ood_acc`` (OOD test accuracy per layer).
    """
    _check_positive(epochs=epochs, lr=lr, batch_size=batch_size, n_classes=n_classes)
    if device is None:
        device = _first_device(acts_train)
    train_acc, test_acc = _fit_and_score(
        acts_train, y_train, acts_test, y_test, n_classes, epochs, lr, batch_size, seed, device
    )
    out = {"train_acc": train_acc, "test_acc": test_acc}
    if ood is not None:
        if len(ood) != 5:
            raise ValueError(
                "ood must be (acts_train_ood, y_train_ood, acts_test_ood, y_test_ood, "
                f"n_classes_ood); got a tuple of length {len(ood)}"
            )
        a_tr, y_tr, a_te, y_te, n_ood = ood
        _check_positive(n_classes_ood=n_ood)
        if len(a_tr) != len(acts_train):
            raise ValueError(
                f"ood has {len(a_tr)} layers but the in-distribution acts have {len(acts_train)}"
            )
        ood_train, ood_test = _fit_and_score(
            a_tr, y_tr, a_te, y_te, n_ood, epochs, lr, batch_size, seed, device
        )
        out["ood_train_acc"] = ood_train
        out["ood_acc"] = ood_test
    return out


def tunnel_start(
    probe_acc: Sequence[float], fraction: float = 0.95, *, input_acc: float = 0.0
) -> int:
    """Index of the first layer whose probe has made ``fraction`` of the gain over the input.

    The gain runs from ``input_acc``, the accuracy of a linear probe on the raw input, to the
    best probe accuracy: the tunnel starts at the first layer whose probe reaches
    ``input_acc + fraction · (best − input_acc)``. Measuring from the input probe, not from 0
    (thesis Table 5.2.1 takes a share of the accuracy itself), keeps the start informative on
    data that is already nearly linearly separable at the input, where every layer holds well
    over 95 % of the best accuracy. With the default ``input_acc = 0`` the threshold is
    ``fraction`` × the best accuracy.

    When no probe beats the input probe (best ≤ ``input_acc``) there is no gain to share out
    and the result is 0. Returns a 0-based index (the thesis's layer number is
    ``index + 1``). "Reaches" is ≥, up to floating-point rounding.
    """
    acc = _check_curve(probe_acc, "probe_acc")
    _check_fraction(fraction, "fraction")
    base = _check_accuracy(input_acc, "input_acc")
    best = max(acc)
    if best <= base:
        return 0
    return _first_reaching(acc, base + fraction * (best - base))


def compression_kappa(
    probe_acc: Sequence[float],
    eta: float = 0.99,
    depth: int | None = None,
    layer_numbers: Sequence[int] | None = None,
) -> float:
    """Compression κ = (first layer reaching η × the best probe accuracy) ÷ depth (thesis 6.3.3).

    Layers are counted from 1, as in the thesis (ResNet-18 peaking at its 12th of 18 layers
    gives κ = 12/18 = 67%). η defaults to 0.99, the thesis value for CIFAR-10 (it uses 0.95
    for ImageNet-1k). Lower κ means the network uses fewer of its layers.

    By default probe ``i`` sits on layer ``i + 1`` and ``depth = len(probe_acc)``. When probes
    sit on only some layers, give their 1-based ``layer_numbers`` and, if the network is deeper
    than the last probed layer, ``depth``.
    """
    acc = _check_curve(probe_acc, "probe_acc")
    _check_fraction(eta, "eta")
    if layer_numbers is None:
        layer_numbers = list(range(1, len(acc) + 1))
    elif len(layer_numbers) != len(acc):
        raise ValueError(
            f"layer_numbers has {len(layer_numbers)} entries but probe_acc has {len(acc)}"
        )
    if depth is None:
        depth = max(layer_numbers)
    if depth < max(layer_numbers) or depth < 1:
        raise ValueError(f"depth must be ≥ the deepest probed layer ({max(layer_numbers)})")
    first = _first_reaching(acc, eta * max(acc))
    return layer_numbers[first] / depth


def ood_loss_rho(ood_acc: Sequence[float]) -> float:
    """OOD generalisation loss ρ = (best OOD probe accuracy − last layer's) ÷ best (thesis 6.3.3).

    Non-negative; 0 means the last layer transfers as well as the best layer. Returns 0.0 when
    every OOD probe is at 0 accuracy (nothing to lose).
    """
    acc = _check_curve(ood_acc, "ood_acc")
    best = max(acc)
    if best <= 0.0:
        return 0.0
    return (best - acc[-1]) / best


# ------------------------------------------------------------------------- one frozen probe


@dataclass(frozen=True)
class Probe:
    """A linear probe fitted on one layer and then frozen: the train split's standardisation
    and the weights, so it can score the same layer of a later model (representation
    forgetting: a probe fitted after task t, applied after task t' > t)."""

    stats: tuple[torch.Tensor, torch.Tensor]
    weights: tuple[torch.Tensor, torch.Tensor]

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return _accuracy([x], y, [self.stats], [self.weights])[0]


def fit_probe(
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> Probe:
    """Fit one layer's probe (features ``x``, labels ``y`` in 0…n_classes−1) as
    :func:`train_probes` does for every layer."""
    stats = _standardiser(x)
    return Probe(stats, _train([x], y, [stats], n_classes, epochs, lr, batch_size, seed)[0])


# ------------------------------------------------------------------------------- training


def _fit_and_score(acts_tr, y_tr, acts_te, y_te, n_classes, epochs, lr, batch_size, seed, device):
    """Train all layers' probes on one split and return (train accuracy, test accuracy) lists."""
    xs_tr = _prepare_layers(acts_tr, device, "acts_train")
    xs_te = _prepare_layers(acts_te, device, "acts_test")
    if len(xs_tr) != len(xs_te):
        raise ValueError(f"acts_train has {len(xs_tr)} layers but acts_test has {len(xs_te)}")
    y_tr = _prepare_labels(y_tr, xs_tr[0].shape[0], n_classes, device, "y_train")
    y_te = _prepare_labels(y_te, xs_te[0].shape[0], n_classes, device, "y_test")
    for x_tr, x_te in zip(xs_tr, xs_te, strict=True):
        if x_tr.shape[1] != x_te.shape[1]:
            raise ValueError("a layer has a different width in acts_train and acts_test")

    stats = [_standardiser(x) for x in xs_tr]
    probes = _train(xs_tr, y_tr, stats, n_classes, epochs, lr, batch_size, seed)
    return _accuracy(xs_tr, y_tr, stats, probes), _accuracy(xs_te, y_te, stats, probes)


def _train(xs, y, stats, n_classes, epochs, lr, batch_size, seed):
    """Adam on the summed cross-entropy of every layer's probe; one shared batch per step."""
    device = y.device
    probes = [
        (
            torch.zeros(x.shape[1], n_classes, device=device, requires_grad=True),
            torch.zeros(n_classes, device=device, requires_grad=True),
        )
        for x in xs
    ]
    params = [p for pair in probes for p in pair]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=0.0)
    # The shuffle comes from a CPU generator so it is the same on every device.
    gen = torch.Generator().manual_seed(seed)
    n = y.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).to(device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = sum(
                F.cross_entropy(_logits(x[idx], st, w, b), y[idx])
                for x, st, (w, b) in zip(xs, stats, probes, strict=True)
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return [(w.detach(), b.detach()) for w, b in probes]


@torch.no_grad()
def _accuracy(xs, y, stats, probes) -> list[float]:
    """Accuracy of every probe on (xs, y), evaluated in chunks; one host sync at the end."""
    correct = torch.zeros(len(xs), dtype=torch.long, device=y.device)
    for start in range(0, y.shape[0], _EVAL_CHUNK):
        sl = slice(start, start + _EVAL_CHUNK)
        for i, (x, st, (w, b)) in enumerate(zip(xs, stats, probes, strict=True)):
            pred = _logits(x[sl], st, w, b).argmax(dim=1)
            correct[i] += (pred == y[sl]).sum()
    n = y.shape[0]
    return [c / n for c in correct.tolist()]


def _logits(x, stats, w, b):
    """Probe logits on standardised features; standardising per batch avoids copying acts."""
    mean, inv_std = stats
    return ((x.float() - mean) * inv_std) @ w + b


def _standardiser(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and 1/std of a train split (constant features: 1/std = 1)."""
    xf = x.float()
    mean = xf.mean(dim=0)
    std = xf.std(dim=0, correction=0)
    inv_std = torch.where(std > _STD_EPS, 1.0 / std.clamp_min(_STD_EPS), torch.ones_like(std))
    return mean, inv_std


# ----------------------------------------------------------------------------- validation


def _prepare_layers(acts, device, name) -> list[torch.Tensor]:
    if acts is None or len(acts) == 0:
        raise ValueError(f"{name} must be a non-empty list of per-layer n×p activations")
    xs = []
    for i, a in enumerate(acts):
        x = torch.as_tensor(a).to(device)
        if x.ndim < 2:
            raise ValueError(f"{name}[{i}] must have shape n×p (or n×…); got {tuple(x.shape)}")
        xs.append(x.reshape(x.shape[0], -1))
    if any(x.shape[0] != xs[0].shape[0] for x in xs):
        raise ValueError(f"every layer in {name} must have the same number of samples")
    if xs[0].shape[0] == 0:
        raise ValueError(f"{name} has no samples")
    return xs


def _prepare_labels(y, n, n_classes, device, name) -> torch.Tensor:
    y = torch.as_tensor(y).to(device).long().reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} labels for {n} samples")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"{name} must hold class indices in [0, {n_classes})")
    return y


def _first_device(acts) -> torch.device:
    if acts is None or len(acts) == 0:
        raise ValueError("acts_train must be a non-empty list of per-layer n×p activations")
    first = acts[0]
    return first.device if isinstance(first, torch.Tensor) else torch.device("cpu")


def _check_positive(**values) -> None:
    for name, v in values.items():
        if not v > 0:
            raise ValueError(f"{name} must be positive; got {v}")


def _check_curve(values, name) -> list[float]:
    if values is None or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty sequence of accuracies")
    acc = [float(v) for v in values]
    if not all(math.isfinite(v) for v in acc):
        raise ValueError(f"{name} must hold finite numbers; got {acc}")
    return acc


def _check_accuracy(value, name) -> float:
    try:
        acc = float(value)
    except (TypeError, ValueError):
        acc = math.nan
    if not math.isfinite(acc):
        raise ValueError(f"{name} must be a finite accuracy; got {value!r}")
    return acc


def _check_fraction(value, name) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1]; got {value}")


def _first_reaching(acc: list[float], threshold: float) -> int:
    # A relative tolerance so that e.g. 0.95 × 0.8 rounding to 0.7600000000000001 still
    # counts an accuracy of 0.76 as reaching it.
    tol = 1e-9 * max(abs(threshold), 1.0)
    return next(i for i, a in enumerate(acc) if a >= threshold - tol)
