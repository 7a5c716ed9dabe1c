"""Layer substitution and the extractor/tunnel swap (thesis 5.11.1 and Table 5.4.1).

One network is trained on two tasks in turn (task-incremental: a head per task, as in the
thesis), keeping M₁ (after task 1) and M₂ (after task 2). Then hybrids are evaluated on both
tasks' test sets:

* ``M₁^{1:x} + M₂^{x+1:n}`` — the first x hidden layers from M₁, the rest from M₂ — and the
  reverse ``M₂^{1:x} + M₁^{x+1:n}``, for every x = 0…n (Figs. 5.11.1–5.11.3). x = 0 and x = n
  are M₂ and M₁ themselves.
* The swap table ``E_s + T_t``: the extractor (first x layers) of M_s with the tunnel (the
  rest) of M_t (Table 5.4.1), with x the extractor length — given (``split_at``) or the
  tunnel start of M₁ (first layer whose task-1 probe reaches ``fraction`` of the last layer's).
  Two recovery rows: ``E₂ + T₁ (FT)`` retrains a linear probe for task 1 on the hybrid's
  penultimate features; ``E₂ (FT)`` trains one directly on M₂'s extractor output.

Heads: each task is always read out by its own head as it was trained on that task (task 1's
output units from M₁, task 2's from M₂) — the thesis's "separate classifying head trained on
each task". In the task-incremental loss the other task's units get no gradient, so with plain
Adam/SGD this is exactly the final model's head.

Default: an MLP-8 of width 256 on split-digits with the thesis's 5/5 split; ``data.split``
'3,7' and '7,3' give the other two panels of 5.11.1.
"""

from __future__ import annotations

import copy

from pydantic import Field

from engine.analysis.activations import collect
from engine.analysis.probes import train_probes, tunnel_start
from engine.config import ConfigError, DataConfig, ModelConfig, TrainConfig, resolve
from engine.data import build_benchmark
from engine.kinds import trained
from engine.kinds.base import ComputeContext, Cost
from engine.models import build_model
from engine.train import Evaluator

NAME = "substitution"
TITLE = "Layer substitution"
SUMMARY = "Swap the first x layers between the models after task 1 and task 2 (thesis 5.11.1)."


class Spec(trained.TrainedSpec):
    kind = NAME

    data: DataConfig = Field(default_factory=lambda: DataConfig(split="5,5"))
    model: ModelConfig = Field(default_factory=lambda: ModelConfig(arch="mlp", depth=8, width=256))
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(optimizer="adam", lr=1e-3, batch_size=64, epochs=30)
    )
    split_at: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Extractor length x for the E/T swap table; empty = tunnel start of M1",
    )
    fraction: float = Field(
        0.95, gt=0.0, le=1.0, description="Tunnel start threshold when split_at is empty"
    )

    def training_config(self):
        return trained.engine_config(self, "task", "naive")


def estimate(spec: Spec) -> Cost:
    return trained.trained_cost(spec, models=1)


def compose(bottom: dict, top: dict, x: int, head: dict) -> dict:
    """State dict of bottom's first x hidden layers, top's other layers, and ``head``."""
    out = {}
    for k, v in top.items():
        if k.startswith("layers."):
            i = int(k.split(".")[1])
            out[k] = bottom[k] if i < x else v
        elif k.startswith("head."):
            out[k] = head[k]
        else:
            out[k] = v
    return out


def task_heads(snapshots: list[dict], heads: list[tuple[int, int]]) -> dict:
    """The head whose output units of task t come from the snapshot after task t."""
    head = {k: v.clone() for k, v in snapshots[-1].items() if k.startswith("head.")}
    for t, (lo, hi) in enumerate(heads):
        for k in head:
            head[k][lo:hi] = snapshots[t][k][lo:hi]
    return head


def compute(spec: Spec, ctx: ComputeContext) -> dict:
    cfg = resolve(spec.training_config())
    if cfg.data.split is None or len(cfg.data.split.split(",")) != 2:
        raise ConfigError(
            f"data.split: substitution needs exactly two tasks, e.g. '5,5', '3,7' (got {cfg.data.split!r})"
        )
    bench = build_benchmark(cfg.data, cfg.scenario, cfg.train.device)
    n = len(build_model(cfg.model, bench.input_shape, bench.n_outputs).probe_points)
    if spec.split_at is not None and spec.split_at >= n:  # checked before any training
        raise ConfigError(
            f"split_at: the extractor must leave a tunnel; use 1…{n - 1} for this {n}-layer model"
        )
    ctx.start(trained.planned_steps(bench, cfg), ["train", "substitute", "probes"])
    fitted = trained.fit(cfg, ctx, "train", bench=bench, keep_snapshots=True, resumable=True)
    if fitted.status != "done":
        return {
            "status": fitted.status,
            "message": fitted.message,
            "timing": {"train_s": round(fitted.train_s, 3)},
        }
    model, strategy = fitted.model, fitted.strategy
    device = bench.x_train.device
    m1, m2 = ({k: v.to(device) for k, v in s.items()} for s in fitted.snapshots)
    head = task_heads([m1, m2], bench.heads)
    scratch = copy.deepcopy(model)
    evaluate = Evaluator(bench)

    def accuracy(state: dict) -> list[float]:
        scratch.load_state_dict(state)
        return evaluate(scratch, strategy)[0].tolist()

    ctx.set_stage("substitute")
    m1_bottom = [accuracy(compose(m1, m2, x, head)) for x in range(n + 1)]
    m2_bottom = [accuracy(compose(m2, m1, x, head)) for x in range(n + 1)]

    ctx.set_stage("probes")
    (lo1, hi1), (a1, b1) = bench.train_slices[0], bench.test_slices[0]
    k1 = len(bench.task_classes[0])
    y1_tr = bench.y_train[lo1:hi1] - bench.heads[0][0]
    y1_te = bench.y_test[a1:b1] - bench.heads[0][0]
    x1_tr, x1_te = bench.x_train[lo1:hi1], bench.x_test[a1:b1]

    def probes_on(state: dict, points: list[str]) -> list[float]:
        scratch.load_state_dict(state)
        tr = collect(scratch, x1_tr, points, spec.max_features)
        te = collect(scratch, x1_te, points, spec.max_features)
        return train_probes(
            tr,
            y1_tr,
            te,
            y1_te,
            k1,
            epochs=spec.probe_epochs,
            lr=spec.probe_lr,
            batch_size=spec.probe_batch,
            seed=cfg.train.seed,
        )["test_acc"]

    m1_probe = probes_on({**m1, **head}, model.probe_points)
    if spec.split_at is None:
        x, source = (
            min(tunnel_start(m1_probe, spec.fraction) + 1, n - 1),
            f"tunnel start of M1 at {spec.fraction:g}",
        )
    else:
        x, source = spec.split_at, "given"
    e2_t1 = compose(m2, m1, x, head)
    ft_hybrid = probes_on(e2_t1, [model.probe_points[-1]])[0]
    ft_extractor = probes_on({**m2, **head}, [model.probe_points[x - 1]])[0]
    rows = [
        ("E1 + T1", m1_bottom[n]),
        ("E1 + T2", m1_bottom[x]),
        ("E2 + T2", m2_bottom[n]),
        ("E2 + T1", m2_bottom[x]),
    ]
    table = [{"name": name, "task1": acc[0], "task2": acc[1]} for name, acc in rows]
    table += [
        {"name": "E2 + T1 (FT)", "task1": ft_hybrid, "task2": None},
        {"name": "E2 (FT)", "task1": ft_extractor, "task2": None},
    ]
    return {
        "layers": list(model.probe_points),
        "x": list(range(n + 1)),
        "m1_bottom": {"task1": [a[0] for a in m1_bottom], "task2": [a[1] for a in m1_bottom]},
        "m2_bottom": {"task1": [a[0] for a in m2_bottom], "task2": [a[1] for a in m2_bottom]},
        "R": fitted.R,
        "m1_probe_task1": m1_probe,
        "split_at": x,
        "split_source": source,
        "table": table,
        "curves": fitted.curves,
        "timing": {"train_s": round(fitted.train_s, 3)},
        "metrics": {
            "acc_task1_after_task1": fitted.R[0][0],
            "acc_task1_after_task2": fitted.R[1][0],
            "acc_task2": fitted.R[1][1],
            "split_at": x,
            **{r["name"]: r["task1"] for r in table},
        },
    }
