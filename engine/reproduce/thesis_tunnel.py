"""The thesis's tunnel picture (§5.2, Table 5.2.1 and Fig. 5.2.1): where a deep MLP's linear
probes saturate (the tunnel's start) and how far the numerical rank of its representations falls
after it (kind ``tunnel``).

Published: Table 5.2.1's MLP on CIFAR-10 — the tunnel starts at layer 4 (95 %) and 5 (98 %) of
13 — and §5.2.2's statement that in the tunnel the rank falls to about the number of classes
(10). The per-layer probe accuracies and ranks are given only as figures, so no per-layer
number is compared; the page shows the measured curves.
"""

from __future__ import annotations

from engine.reproduce.base import TINY_PROBES, Measured, Published, Source, seed_list, tiny
from engine.reproduce.compare import comparison, measurements

NAME = "thesis-tunnel"
TITLE = "Thesis Table 5.2.1 — the tunnel of an MLP: start layer and rank"
CITATION = (
    "The thesis in seeds/003, §5.2.2, Table 5.2.1 (“The tunnel of various lengths is present "
    "in all tested configurations…”) and Fig. 5.2.1 (MLP-12 on CIFAR-10)."
)
SOURCES = {
    "T5.2.1": Source(
        "T5.2.1",
        "Thesis Table 5.2.1, MLP (13 layers), CIFAR-10: > 0.95 → layer 4 (31 %), > 0.98 → "
        "layer 5 (38 %)",
        "/work/shared/seeds/003_d68e8a0d795ffa1c.txt lines 692–707",
    ),
    "5.2.2": Source(
        "5.2.2",
        "Thesis §5.2.2: “the numerical rank of the representations … is reduced to approximately "
        "the number of CIFAR-10 classes” (read off Fig. 5.2.1: ≈ 10)",
        "/work/shared/seeds/003_d68e8a0d795ffa1c.txt line 716",
    ),
}
VARIANTS = ("embedded", "full")
SEEDS = [0, 1, 2]
GROUP = "MLP-12"
START_95, START_98, LAST_RANK = (
    "tunnel start, 95 % (layer)",
    "tunnel start, 98 % (layer)",
    ("last hidden layer's rank"),
)

PROTOCOL = (
    "One MLP-12 trained on all 10 classes as one task, then per hidden layer: a linear probe "
    "(Adam, lr 1e-3, 30 epochs as in the thesis; batches of 64 instead of its 512, which "
    "would leave too few steps on the embedded sets' few images) and the numerical rank of "
    "the layer's representations (singular values of the sample covariance above σ₁·1e-3). "
    "Embedded variant: split-mnist5k, width 512, He initialisation, SGD lr 0.05 (the "
    "thesis's MLP learning rate), batch 128, 40 epochs; seeds 0, 1, 2. Variant `full`: "
    "CIFAR-10, width 1,024, SGD lr 0.05, batch 128, 1,000 epochs (Table 5.8.1; needs the "
    "torchvision files)."
)
DEVIATIONS = """\
- **Data.** The thesis uses CIFAR-10 (50,000 colour images); the embedded variant uses
  split-mnist5k (4,000 training digits), whose pixels are already ~90 % linearly separable,
  so there is little extractor to build.
- **Tunnel start.** Table 5.2.1 takes the first layer whose probe reaches 95 % (98 %) of the
  final accuracy. On nearly separable data that is layer 1 for every network, so the engine
  counts the first layer that has made 95 % (98 %) of the *gain* from the raw-input probe to
  the best probe (engine.analysis.probes.tunnel_start) — the same on CIFAR-10, where the input
  probe is weak, and informative here.
- **Model and training.** Width 512 instead of 1,024 and 40 epochs instead of 1,000 (CPU time).
- **Layer count.** The thesis counts the output layer (13 layers); layer numbers are
  comparable (both count from the first hidden layer), shares of the depth are not.
- **No ordering.** Each published number is one item, so there is no ranking to correlate."""

PUBLISHED = (
    Published(GROUP, "95 %", START_95, 4.0, "T5.2.1"),
    Published(GROUP, "98 %", START_98, 5.0, "T5.2.1"),
    Published(GROUP, "rank", LAST_RANK, 10.0, "5.2.2", approx=True),
)


def sweeps(variant: str = "embedded", seeds: int | None = None) -> list[dict]:
    seed_values = seed_list(SEEDS, seeds)
    if variant == "full":
        base = {
            "data": {"benchmark": "split-cifar10"},
            "model": {"arch": "mlp", "depth": 12, "width": 1024},
            "train": {"optimizer": "sgd", "lr": 0.05, "batch_size": 128, "epochs": 1000},
        }
    else:
        base = {
            "data": {"benchmark": "split-mnist5k"},
            "model": {"arch": "mlp", "depth": 12, "width": 512},
            "train": {"optimizer": "sgd", "lr": 0.05, "batch_size": 128, "epochs": 40},
        }
    if tiny():  # test-only: seconds of work, meaningless numbers
        base = {
            "data": {"benchmark": "split-digits"},
            "model": {"arch": "mlp", "depth": 3, "width": 16},
            "train": {**base["train"], "epochs": 1},
            **TINY_PROBES,
        }
        seed_values = [0]
    return [
        {
            "name": f"thesis-tunnel-{variant}",
            "description": "Thesis Table 5.2.1: the tunnel of an MLP-12",
            "kind": "tunnel",
            "base": base,
            "grid": {"seed": seed_values},
        }
    ]


def measure(e) -> list[Measured]:
    m = e.result.get("metrics") or {}
    seed = e.config["train"]["seed"]
    pairs = (("95 %", START_95, "tunnel_start_95"), ("98 %", START_98, "tunnel_start_98"))
    out = [Measured(GROUP, item, metric, float(m[k]), seed) for item, metric, k in pairs if k in m]
    if m.get("last_rank") is not None:
        out.append(Measured(GROUP, "rank", LAST_RANK, float(m["last_rank"]), seed))
    return out


def compare(results):
    """Table 5.2.1's MLP row and the rank statement against the measured tunnel."""
    return comparison(PUBLISHED, measurements(results, measure))
