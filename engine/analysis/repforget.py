"""Representation forgetting with frozen per-task probes (thesis 3.3.1, Figs. 3.3.2–3.3.3).

Two networks with the same hidden layers (same widths, same initialisation) are trained on the
same task sequence with different objectives:

* **discriminative** — a multi-head classifier (task-incremental: each task's loss and
  prediction use only its own output units), cross-entropy;
* **autoencoder** — the same hidden layers, then a linear layer back to the input size,
  trained to reconstruct the task's images (MSE).

After each task t, the *penultimate* representations (the last hidden layer) of both networks
are read. A softmax-regression probe for task t is fitted on task t's training images
(``A^t(x^t)``, labels local to the task) and then **frozen**; every frozen probe j ≤ t is
evaluated on task j's test images seen through the current network, ``A^t(x^j)``. A probe's
accuracy can only fall because the representation under it drifted: this measures forgetting
of the representation itself, not of a head.

Drift is also measured with CKA (Fig. 3.3.3): for every task k, layer l and later task j ≥ k,
``CKA(A_l^k(x^k), A_l^j(x^k))`` on a fixed subset of task k's test images.

The thesis's third model, the VAE, is not included. Architecture default: the thesis's
MNIST widths 512, 256, 8, 256, 512 (``hidden``), with the narrowest layer linear
(``linear_bottleneck``): with a ReLU there, 7 of the 8 units of the autoencoder died during
its first task on split-mnist5k, leaving one unit through which nothing downstream could
separate the two classes (probe accuracy 0.565 right after the task).
"""

from __future__ import annotations

import math
import time

import torch
from pydantic import Field, field_validator
from torch import nn

from engine.analysis import experiments as ex
from engine.config import ConfigError, TrainConfig, resolve


class Spec(ex.Spec):
    kind = "repforget"

    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(optimizer="adam", lr=1e-3, batch_size=64, epochs=10)
    )
    hidden: str = Field(
        "512,256,8,256,512",
        pattern=r"^\s*\d+\s*(,\s*\d+\s*)*$",
        description="Hidden widths shared by both networks (thesis MNIST: 512,256,8,256,512)",
    )
    n_eval: int = Field(
        500, ge=16, le=50_000, description="Test images (all tasks) for the CKA drift"
    )
    linear_bottleneck: bool = Field(
        True,
        description="No ReLU on the narrowest layer (a ReLU on 8 units tends to die and cut the AE)",
    )

    @field_validator("hidden")
    @classmethod
    def _widths(cls, v: str) -> str:
        widths = [int(w) for w in v.split(",")]
        if not 1 <= len(widths) <= 16 or min(widths) < 1 or max(widths) > 8192:
            raise ValueError("hidden needs 1 to 16 widths, each 1…8192")
        return ",".join(str(w) for w in widths)

    def training_config(self):
        return ex.engine_config(self, "task", "naive")

    def canonical(self) -> Spec:
        spec = super().canonical()
        # The networks are built from `hidden`, not from the model section.
        spec.model = type(spec.model)()
        return spec


def _network(spec: Spec, input_shape, n_out: int, seed: int):
    """A ProbedModel of `hidden` dense layers and a linear head of n_out units (seeded)."""
    from engine.models import DenseLayer, ProbedModel, _init_hidden

    widths = [int(w) for w in spec.hidden.split(",")]
    n_in = math.prod(input_shape)
    torch.manual_seed(seed)
    layers = [DenseLayer(n_in if i == 0 else widths[i - 1], w) for i, w in enumerate(widths)]
    if spec.linear_bottleneck:
        layers[widths.index(min(widths))].act = nn.Identity()
    model = ProbedModel(
        "mlp",
        [f"fc{i + 1}" for i in range(len(widths))],
        layers,
        nn.Flatten(),
        widths[-1],
        n_out,
        input_shape,
    )
    _init_hidden(model)
    return model


def _train_autoencoder(model, x, train_cfg, phase: int, progress: ex.Progress) -> int:
    """Minibatch MSE reconstruction of x (the hot loop: no host syncs)."""
    from engine.train import Cancelled, make_optimizer

    opt = make_optimizer(
        train_cfg.model_copy(update={"temperature": 1.0}), [{"params": list(model.parameters())}]
    )
    gen = torch.Generator(device=x.device).manual_seed(train_cfg.seed * 100_003 + phase)
    n, bs = len(x), train_cfg.batch_size
    total = train_cfg.epochs * -(-n // bs)
    report = max(1, total // 20)
    on_progress = progress.phase_callback()
    flat = x.flatten(1)
    model.train()
    step = 0
    for _ in range(train_cfg.epochs):
        perm = torch.randperm(n, generator=gen, device=x.device)
        for start in range(0, n, bs):
            if progress.cancel is not None and progress.cancel():
                raise Cancelled(f"cancelled in task {phase} at step {step}")
            b = perm[start : start + bs]
            loss = nn.functional.mse_loss(model(x[b]), flat[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % report == 0 or step == total:
                on_progress({"step": step, "total": total})
    return step


def _local(bench, t: int, y: torch.Tensor) -> torch.Tensor:
    """Output units of task t → class index within the task (0…k−1)."""
    return y - bench.heads[t][0]


def compute(spec: Spec, progress: ex.Progress) -> dict:
    from engine.analysis.activations import collect, eval_subset
    from engine.analysis.cka import cka_drift
    from engine.analysis.probes import fit_probe
    from engine.data import build_benchmark
    from engine.strategies import Context, make_strategy
    from engine.train import Cancelled, Curves, Evaluator, train_phase

    cfg = resolve(spec.training_config())
    device = torch.device(cfg.train.device)
    bench = build_benchmark(cfg.data, cfg.scenario, device)
    T = bench.n_tasks
    if T < 2:
        raise ConfigError("data.n_tasks: representation forgetting needs at least 2 tasks")
    steps = ex.planned_steps(bench, cfg)
    progress.start(2 * steps, ["discriminative", "autoencoder"])
    ev = eval_subset(len(bench.x_test), spec.n_eval, device=device)
    ev_task = bench.t_test[ev]
    seed = cfg.train.seed

    def probe_fit(x, y, k):
        return fit_probe(x, y, k, spec.probe_epochs, spec.probe_lr, spec.probe_batch, seed)

    out: dict = {"tasks": T, "task_classes": bench.task_classes}
    timing = {}
    for kind in ("discriminative", "autoencoder"):
        progress.stage = kind
        n_out = bench.n_outputs if kind == "discriminative" else math.prod(bench.input_shape)
        model = _network(spec, bench.input_shape, n_out, seed).to(device)
        if device.type == "cpu":
            from engine.train import cpu_threads

            torch.set_num_threads(cpu_threads(model, cfg.train.batch_size))
        strategy = make_strategy(
            cfg.strategy, Context(bench, cfg.scenario, cfg.train, device, seed)
        )
        evaluate = Evaluator(bench)
        last = model.probe_points[-1]
        probes: list = []
        P = [[None] * T for _ in range(T)]
        R = []
        acts_by_task = []
        t_start = time.perf_counter()
        for t in range(T):
            lo, hi = bench.train_slices[t]
            if kind == "discriminative":
                try:
                    train_phase(
                        model,
                        strategy,
                        bench,
                        [t],
                        t,
                        cfg.train,
                        evaluate,
                        Curves(),
                        0,
                        progress.phase_callback(),
                        progress.cancel,
                    )
                except Cancelled:
                    progress.emit({"type": "cancelled", "stage": kind, "phase": t})
                    raise
                R.append(evaluate(model, strategy)[0].tolist())
            else:
                try:
                    _train_autoencoder(model, bench.x_train[lo:hi], cfg.train, t, progress)
                except Cancelled:
                    progress.emit({"type": "cancelled", "stage": kind, "phase": t})
                    raise
            progress.done += cfg.train.epochs * -(-(hi - lo) // cfg.train.batch_size)
            # Freeze task t's probe, fitted on the current representation of task t.
            x_t = collect(model, bench.x_train[lo:hi], [last], spec.max_features)[0]
            probes.append(
                probe_fit(x_t, _local(bench, t, bench.y_train[lo:hi]), len(bench.task_classes[t]))
            )
            for j in range(t + 1):
                a, b = bench.test_slices[j]
                feats = collect(model, bench.x_test[a:b], [last], spec.max_features)[0]
                P[t][j] = probes[j].accuracy(feats, _local(bench, j, bench.y_test[a:b]))
            acts_by_task.append(collect(model, bench.x_test[ev], max_features=spec.max_features))
        timing[f"{kind}_s"] = round(time.perf_counter() - t_start, 3)
        # Drift of every layer on each task's own images, from the task's end onwards.
        drift = []
        for k in range(T):
            rows = (ev_task == k).nonzero().flatten()
            if len(rows) < 4:
                drift.append(None)
                continue
            D = cka_drift(
                [[a[rows] for a in acts] for acts in acts_by_task[k:]], method=spec.cka_method
            )
            drift.append(D[:, 0, :].tolist())  # layer × (checkpoints k…T−1)
        final = [P[T - 1][j] for j in range(T)]
        first = [P[j][j] for j in range(T)]
        out[kind] = {
            "layers": list(model.probe_points),
            "probe_acc": P,
            "R": R if kind == "discriminative" else None,
            "drift": drift,
            "penultimate_drift": [None if d is None else d[-1] for d in drift],
        }
        out.setdefault("metrics", {})[kind] = {
            "probe_acc_final": sum(final) / T,
            "probe_acc_when_learned": sum(first) / T,
            "probe_forgetting": sum(first[j] - final[j] for j in range(T - 1)) / (T - 1),
            "cka_first_task_final": None if drift[0] is None else drift[0][-1][-1],
        }
    out["timing"] = timing
    return out
