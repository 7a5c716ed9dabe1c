"""Representation forgetting with frozen per-task probes (thesis 3.3.1, Figs. 3.3.2–3.3.3).

Three networks with the same hidden layers (same widths, same initialisation) are trained on
the same task sequence with different objectives:

* **discriminative** — a multi-head classifier (task-incremental: each task's loss and
  prediction use only its own output units), cross-entropy;
* **autoencoder** — the same hidden layers, then a linear layer back to the input size,
  trained to reconstruct the task's images (MSE);
* **vae** — the autoencoder with its bottleneck turned into a Gaussian latent of the same
  width (engine.analysis.vae), trained with reconstruction + β·KL to N(0, I); β = 1 by default
  (the thesis says "ELBO" and gives no β). Its activations are read with z = μ.

After each task t, the *penultimate* representations (the last hidden layer) of every network
are read. A softmax-regression probe for task t is fitted on task t's training images
(``A^t(x^t)``, labels local to the task) and then **frozen**; every frozen probe j ≤ t is
evaluated on task j's test images seen through the current network, ``A^t(x^j)``. A probe's
accuracy can only fall because the representation under it drifted: this measures forgetting
of the representation itself, not of a head.

Drift is also measured with CKA (Fig. 3.3.3): for every task k, layer l and later task j ≥ k,
``CKA(A_l^k(x^k), A_l^j(x^k))`` on a fixed subset of task k's test images.

Architecture default: the thesis's MNIST widths 512, 256, 8, 256, 512 (``hidden``), with the
narrowest layer linear (``linear_bottleneck``; the VAE's mean is linear whatever it says): with
a ReLU there, 7 of the 8 units of the autoencoder died during its first task on split-mnist5k,
leaving one unit through which nothing downstream could separate the two classes (probe
accuracy 0.565 right after the task).
"""

from __future__ import annotations

import math
import textwrap
import time

import torch
from pydantic import Field, field_validator
from torch import nn

from engine.analysis import vae
from engine.analysis.activations import collect, eval_subset
from engine.analysis.cka import cka_drift
from engine.analysis.probes import fit_probe
from engine.config import ConfigError, TrainConfig, resolve
from engine.data import build_benchmark
from engine.errors import Cancelled
from engine.kinds import trained
from engine.kinds.base import ComputeContext, Cost
from engine.models import DenseLayer, ProbedModel, init_hidden
from engine.session import Session
from engine.train import cpu_threads, make_optimizer

NAME = "repforget"
TITLE = "Representation forgetting"
SUMMARY = "Frozen per-task probes on a classifier's, an autoencoder's and a VAE's representations."

MODELS = ("discriminative", "autoencoder", "vae")

# What the thesis reads in Figs. 3.3.2–3.3.3 (3.3.1), shown next to the figure and the table.
READING = (
    "Thesis (Figs. 3.3.2-3.3.3; MNIST, FashionMNIST, CIFAR-10): the frozen probes on the "
    "discriminative network's penultimate layer drop as soon as the next task starts and end "
    "near chance, and its representation changes abruptly, then chaotically. On both generative "
    "models (AE and VAE) the probes stay almost level - 'almost immune' to forgetting on MNIST "
    "and FashionMNIST - and the representation drifts slowly and monotonically. The VAE's "
    "representation changes more than the AE's over the first two tasks of MNIST and "
    "FashionMNIST (it takes longer to learn stable features); on CIFAR-10 its probes lose the "
    "least of the three."
)


class Spec(trained.TrainedSpec):
    kind = NAME

    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(optimizer="adam", lr=1e-3, batch_size=64, epochs=10)
    )
    hidden: str = Field(
        "512,256,8,256,512",
        pattern=r"^\s*\d+\s*(,\s*\d+\s*)*$",
        description="Hidden widths shared by all three networks (thesis MNIST: 512,256,8,256,512)",
    )
    n_eval: int = Field(
        500, ge=16, le=50_000, description="Test images (all tasks) for the CKA drift"
    )
    linear_bottleneck: bool = Field(
        True,
        description="No ReLU on the narrowest layer (a ReLU on 8 units tends to die and cut the AE)",
    )
    beta: float = Field(
        1.0,
        ge=0.0,
        le=1000.0,
        description="VAE: weight of the KL term (the thesis's plain ELBO: 1)",
    )

    @field_validator("hidden")
    @classmethod
    def _widths(cls, v: str) -> str:
        widths = [int(w) for w in v.split(",")]
        if not 1 <= len(widths) <= 16 or min(widths) < 1 or max(widths) > 8192:
            raise ValueError("hidden needs 1 to 16 widths, each 1…8192")
        return ",".join(str(w) for w in widths)

    def training_config(self):
        return trained.engine_config(self, "task", "naive")

    def canonical(self) -> Spec:
        spec = super().canonical()
        # The networks are built from `hidden`, not from the model section.
        spec.model = type(spec.model)()
        return spec


def _bottleneck(spec: Spec) -> int:
    """Index of the narrowest hidden layer (the first one if several tie)."""
    widths = [int(w) for w in spec.hidden.split(",")]
    return widths.index(min(widths))


def _network(spec: Spec, input_shape, n_out: int, seed: int):
    """A ProbedModel of `hidden` dense layers and a linear head of n_out units (seeded)."""
    widths = [int(w) for w in spec.hidden.split(",")]
    n_in = math.prod(input_shape)
    torch.manual_seed(seed)
    layers = [DenseLayer(n_in if i == 0 else widths[i - 1], w) for i, w in enumerate(widths)]
    if spec.linear_bottleneck:
        layers[_bottleneck(spec)].act = nn.Identity()
    model = ProbedModel(
        "mlp",
        [f"fc{i + 1}" for i in range(len(widths))],
        layers,
        nn.Flatten(),
        widths[-1],
        n_out,
        input_shape,
    )
    init_hidden(model)
    return model


def build(kind: str, spec: Spec, input_shape, n_outputs: int, seed: int):
    """The network of one of MODELS: the VAE is the autoencoder (same initialisation) with its
    bottleneck turned into the Gaussian latent."""
    n_out = n_outputs if kind == "discriminative" else math.prod(input_shape)
    model = _network(spec, input_shape, n_out, seed)
    return vae.make_vae(model, _bottleneck(spec)) if kind == "vae" else model


def objective(kind: str, spec: Spec):
    """The generative models' minibatch loss ``(model, x, generator) -> scalar``."""
    if kind == "vae":
        return lambda model, x, gen: vae.loss(model, x, spec.beta, gen)
    if kind == "autoencoder":
        return lambda model, x, gen: nn.functional.mse_loss(model(x), x.flatten(1))
    raise ValueError(f"kind: {kind!r} has no reconstruction objective; allowed: autoencoder, vae")


def train_generative(
    model, x, loss_fn, train_cfg, phase: int, on_progress=None, cancel=None
) -> int:
    """Minibatch training of the AE or the VAE on x with ``loss_fn`` (see :func:`objective`);
    one seeded generator draws the batches and the VAE's noise. ``on_progress`` and ``cancel``
    as in engine.train.train_phase. The hot loop: no host syncs."""
    opt = make_optimizer(
        train_cfg.model_copy(update={"temperature": 1.0}), [{"params": list(model.parameters())}]
    )
    gen = torch.Generator(device=x.device).manual_seed(train_cfg.seed * 100_003 + phase)
    n, bs = len(x), train_cfg.batch_size
    total = train_cfg.epochs * -(-n // bs)
    report = max(1, total // 20)
    model.train()
    step = 0
    for _ in range(train_cfg.epochs):
        perm = torch.randperm(n, generator=gen, device=x.device)
        for start in range(0, n, bs):
            if cancel is not None and cancel():
                raise Cancelled(f"cancelled in task {phase} at step {step}")
            loss = loss_fn(model, x[perm[start : start + bs]], gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if on_progress is not None and (step % report == 0 or step == total):
                on_progress({"step": step, "total": total})
    return step


@torch.no_grad()
def _elbo_on(model, x, seed: int) -> dict:
    """Mean reconstruction NLL and KL of the VAE on x (z sampled with a fixed seed): a KL near
    0 would mean the latent carries nothing (posterior collapse)."""
    recon, kl = vae.elbo_terms(model, x, torch.Generator(device=x.device).manual_seed(seed))
    return {"recon": recon.mean().item(), "kl": kl.mean().item()}


def _local(bench, t: int, y: torch.Tensor) -> torch.Tensor:
    """Output units of task t → class index within the task (0…k−1)."""
    return y - bench.heads[t][0]


def estimate(spec: Spec) -> Cost:
    return trained.trained_cost(spec, models=len(MODELS))


def compute(spec: Spec, ctx: ComputeContext) -> dict:
    cfg = resolve(spec.training_config())
    device = torch.device(cfg.train.device)
    bench = build_benchmark(cfg.data, cfg.scenario, device)
    T = bench.n_tasks
    if T < 2:
        raise ConfigError("data.n_tasks: representation forgetting needs at least 2 tasks")
    steps = trained.planned_steps(bench, cfg)
    ctx.start(len(MODELS) * steps, list(MODELS))
    ev = eval_subset(len(bench.x_test), spec.n_eval, device=device)
    ev_task = bench.t_test[ev]
    seed = cfg.train.seed

    def probe_fit(x, y, k):
        return fit_probe(x, y, k, spec.probe_epochs, spec.probe_lr, spec.probe_batch, seed)

    out: dict = {
        "tasks": T,
        "task_classes": bench.task_classes,
        "models": list(MODELS),
        "reading": READING,
    }
    timing = {}
    for kind in MODELS:
        ctx.stage = kind
        model = build(kind, spec, bench.input_shape, bench.n_outputs, seed).to(device)
        if device.type == "cpu":
            torch.set_num_threads(cpu_threads(model, cfg.train.batch_size))
        # The classifier trains through the one phase loop; the AE and VAE by their objective.
        session = Session(cfg, bench=bench, model=model) if kind == "discriminative" else None
        loss_fn = None if session is not None else objective(kind, spec)
        last = model.probe_points[-1]
        probes: list = []
        P = [[None] * T for _ in range(T)]
        R = []
        elbo = []
        acts_by_task = []
        t_start = time.perf_counter()
        for t in range(T):
            lo, hi = bench.train_slices[t]
            try:
                if session is not None:
                    session.run(on_event=ctx.session_events(), cancel=ctx.cancel, phases=1)
                    R.append(session.R[-1])
                else:
                    train_generative(
                        model,
                        bench.x_train[lo:hi],
                        loss_fn,
                        cfg.train,
                        t,
                        ctx.phase_callback(),
                        ctx.cancel,
                    )
            except Cancelled:
                ctx.emit({"type": "cancelled", "stage": kind, "phase": t})
                raise
            ctx.done += cfg.train.epochs * -(-(hi - lo) // cfg.train.batch_size)
            # Freeze task t's probe, fitted on the current representation of task t.
            x_t = collect(model, bench.x_train[lo:hi], [last], spec.max_features)[0]
            probes.append(
                probe_fit(x_t, _local(bench, t, bench.y_train[lo:hi]), len(bench.task_classes[t]))
            )
            for j in range(t + 1):
                a, b = bench.test_slices[j]
                feats = collect(model, bench.x_test[a:b], [last], spec.max_features)[0]
                P[t][j] = probes[j].accuracy(feats, _local(bench, j, bench.y_test[a:b]))
            if kind == "vae":
                a, b = bench.test_slices[t]
                elbo.append(_elbo_on(model, bench.x_test[a:b], seed))
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
        if kind == "vae":
            # The test-set ELBO terms of task t's images right after task t.
            out[kind].update(beta=spec.beta, elbo=elbo)
        out.setdefault("metrics", {})[kind] = {
            "probe_acc_final": sum(final) / T,
            "probe_acc_when_learned": sum(first) / T,
            "probe_forgetting": sum(first[j] - final[j] for j in range(T - 1)) / (T - 1),
            "cka_first_task_final": None if drift[0] is None else drift[0][-1][-1],
        }
    out["timing"] = timing
    return out


# ----------------------------------------------------------------------------- the table


def _cell(v) -> str:
    return f"{'–' if v is None else f'{v:.3f}':>6}"


def table(result: dict) -> str:
    """The CLI's text for a repforget result: per model the frozen-probe matrix (after task t ×
    task j) and the penultimate CKA drift on task 1's images, a summary row per model, and the
    thesis's reading."""
    T = result["tasks"]
    models = [m for m in result.get("models", MODELS) if result.get(m)]
    lines = []
    for m in models:
        r = result[m]
        beta = f" (β = {r['beta']:g})" if "beta" in r else ""
        lines.append(f"{m}{beta}: frozen probe of task j (columns) after training task t (rows)")
        lines.append(f"{'  after task':<14}" + " ".join(f"{j + 1:>6}" for j in range(T)))
        for t, row in enumerate(r["probe_acc"]):
            lines.append(f"{f'  {t + 1}':<14}" + " ".join(_cell(v) for v in row))
        d = r["penultimate_drift"][0]
        if d is not None:
            lines.append(f"{'  CKA task 1':<14}" + " ".join(_cell(v) for v in d))
        lines.append("")
    names = ("when learned", "final", "forgetting", "CKA task 1")
    lines.append(f"{'model':<16}" + " ".join(f"{n:>12}" for n in names))
    for m in models:
        k = result["metrics"][m]
        values = (
            k["probe_acc_when_learned"],
            k["probe_acc_final"],
            k["probe_forgetting"],
            k["cka_first_task_final"],
        )
        lines.append(f"{m:<16}" + " ".join(f"{_cell(v):>12}" for v in values))
    lines += ["", *textwrap.wrap(result.get("reading", READING), 100)]
    return "\n".join(lines)
