"""Every per-layer view of one trained model: rank, linear probes (ID and OOD), CKA and class
variances by layer — what the tunnel, erosion and temperature experiments read.

``spec`` is any object with the analysis settings of engine.kinds.trained.TrainedSpec
(n_eval, probe_train, probe_epochs, probe_lr, probe_batch, max_features, rel_tol, cka_method
and train.seed).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine.analysis.activations import collect, eval_subset, flat_features, logits_of
from engine.analysis.cka import cka_matrix
from engine.analysis.geometry import class_variances
from engine.analysis.probes import train_probes
from engine.analysis.rank import numerical_rank, rank_by_layer

PROBE_BUDGET = 1 << 28  # activation floats held at once while probing (1 GiB in float32)


def _groups(widths: list[int], rows: int, budget: int) -> list[list[int]]:
    """Consecutive layer indices in groups whose rows × summed widths stay within budget."""
    groups: list[list[int]] = [[]]
    size = 0
    for i, w in enumerate(widths):
        if groups[-1] and size + w * rows > budget:
            groups.append([])
            size = 0
        groups[-1].append(i)
        size += w * rows
    return groups


def probe_subset(bench, n: int, seed: int) -> torch.Tensor:
    """Seeded subset of the training rows for fitting probes (all when n ≥ size)."""
    return eval_subset(len(bench.x_train), n, seed, device=bench.x_train.device)


def analyze_model(
    model, bench, spec, ood=None, stage: Callable[[str], None] | None = None, labels=None
) -> dict:
    """Rank, linear probes (ID and OOD), CKA and class variances by layer, for one model.

    ``labels`` maps output-unit targets to probe labels (default: the targets themselves).
    Probes: trained on up to ``probe_train`` training images, tested on the whole test split.
    Rank, CKA and variances: on the fixed evaluation subset of ``n_eval`` test images.
    """
    stage = stage or (lambda name: None)
    seed = spec.train.seed
    lab = (lambda y: y) if labels is None else labels
    n_cls = bench.n_outputs if labels is None else int(lab(bench.y_train).max()) + 1
    stage("activations")
    ev = eval_subset(len(bench.x_test), spec.n_eval, device=bench.x_test.device)
    acts_eval = collect(model, bench.x_test[ev], max_features=spec.max_features)
    stage("rank")
    rank = rank_by_layer(acts_eval, spec.rel_tol, max_features=spec.max_features)
    input_rank = numerical_rank(bench.x_test[ev], spec.rel_tol, max_features=spec.max_features)
    # The logits' rank is where the collapse to about the number of classes shows.
    logits_rank = numerical_rank(logits_of(model, bench.x_test[ev]), spec.rel_tol)
    stage("cka")
    cka = cka_matrix(acts_eval, method=spec.cka_method)
    variances = class_variances(acts_eval, bench.y_test[ev])
    stage("probes")
    tr = probe_subset(bench, spec.probe_train, seed)
    rows = len(tr) + len(bench.x_test) + (0 if ood is None else len(ood.x_train) + len(ood.x_test))

    def fit(features) -> dict[str, list[float]]:
        """Probes on ``features(x)`` (a list of n×p matrices), ID and OOD alike."""
        ood_args = None
        if ood is not None:
            ood_args = (
                features(ood.x_train),
                ood.y_train,
                features(ood.x_test),
                ood.y_test,
                ood.n_classes,
            )
        return train_probes(
            features(bench.x_train[tr]),
            lab(bench.y_train[tr]),
            features(bench.x_test),
            lab(bench.y_test),
            n_cls,
            epochs=spec.probe_epochs,
            lr=spec.probe_lr,
            batch_size=spec.probe_batch,
            seed=seed,
            ood=ood_args,
        )

    probes: dict[str, list[float]] = {}
    # Probes of different layers are independent (engine.analysis.probes trains them together
    # only for speed), so layers are taken in groups whose activations fit PROBE_BUDGET floats.
    for group in _groups([int(a.shape[1]) for a in acts_eval], rows, PROBE_BUDGET):
        points = [model.probe_points[i] for i in group]
        part = fit(lambda x, points=points: collect(model, x, points, spec.max_features))
        for name, values in part.items():
            probes.setdefault(name, []).extend(values)
    # The raw input's probe: the baseline that a layer's gain (and the tunnel start) counts from.
    stage("input probe")
    inputs = fit(lambda x: [flat_features(x, spec.max_features, seed)])
    return {
        "layers": list(model.probe_points),
        "widths": [int(a.shape[1]) for a in acts_eval],
        "rank": rank,
        "input_rank": input_rank,
        "logits_rank": logits_rank,
        "input_probe": {name: values[0] for name, values in inputs.items()},
        "cka": cka,
        "variances": variances,
        "probe": probes,
        "acts_eval": acts_eval,  # dropped before storing; callers may compare models with it
    }
