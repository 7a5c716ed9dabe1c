"""The floor: class-incremental Split-MNIST in a short plain-PyTorch script.

    python bench/bare_loop.py --benchmark split-mnist5k --strategy naive --seed 0

MLP 784-400-400-10, SGD (lr 0.01, batch 128). The data are tensors, a minibatch is an index
slice of them, and after each task one pass over the whole test set gives every task's accuracy
(a row of R). Nothing else: no framework, no hooks, no logging. Any framework should reach this.

Strategies, written the straightforward way:
* naive: fine-tune on each task in turn;
* ewc: after each task, the diagonal empirical Fisher E[g²] from per-sample gradients on
  ``--fisher-samples`` of its training images and the weights as an anchor; later tasks add
  λ/2 · Σ_k Σ_i F_k,i (θ_i − θ*_k,i)² (one term per past task, as in the paper);
* replay: a class-balanced buffer of ``--buffer`` past images (the same number per class seen,
  a random subset of each); every batch of 128 current images gets 128 buffer images drawn at
  random (half of each enlarged batch is replayed).

The data are exactly the engine's: the same raw images and train/test split (the engine's
loaders, called before the clock starts), the same per-channel standardisation and the same
seeded class order. Timing covers everything after that (and after importing torch._dynamo,
which torch.optim would otherwise import lazily inside the clock, and, on a GPU, after creating
the CUDA context: ``warm_device``): building the tasks, the model, training and evaluation.
Prints one JSON line: time_s, acc (mean of the last row of R), R.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MNIST_TEST_FRACTION = 10_000 / 70_000  # synthetic at full-MNIST size: 60,000 train + 10,000 test


def load_raw(benchmark: str, synthetic_n: int = 70_000, shape: str = "1x28x28"):
    """(x_train, y_train, x_test, y_test) as the engine loads them (raw, before standardising)."""
    from engine.data import embedded

    if benchmark == "split-mnist5k":
        raw = embedded.load_mnist5k(0.2)
    elif benchmark == "synthetic":
        raw = embedded.load_synthetic(synthetic_n, shape, 10, 1.0, MNIST_TEST_FRACTION)
    else:
        raise SystemExit(f"--benchmark: {benchmark!r} is not one of split-mnist5k, synthetic")
    return raw.x_train, raw.y_train, raw.x_test, raw.y_test


def standardise(x_train: torch.Tensor, x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel standardisation with the training set's statistics (as the engine does)."""
    x_train = x_train.float() / 255.0 if x_train.dtype == torch.uint8 else x_train.float()
    x_test = x_test.float() / 255.0 if x_test.dtype == torch.uint8 else x_test.float()
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (x_train - mean) / std, (x_test - mean) / std


def warm_device(device: str) -> None:
    """Create the CUDA context and a cuBLAS handle before the clock starts (a no-op on the CPU).

    Both are one-off costs of a process (0.3-1 s), not of a training loop; every side pays them
    here, outside its timing, as it pays its imports."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return
    a = torch.ones(64, 64, device=dev, requires_grad=True)
    (a @ a).sum().backward()
    torch.cuda.synchronize(dev)


def class_order(n_classes: int = 10, order_seed: int = 0) -> list[int]:
    return torch.randperm(n_classes, generator=torch.Generator().manual_seed(order_seed)).tolist()


def task_data(x, y, order: list[int], n_tasks: int):
    """Per task: (inputs, targets) with targets = the class's position in the class order."""
    unit = torch.empty(len(order), dtype=torch.long, device=y.device)
    unit[torch.tensor(order, device=y.device)] = torch.arange(len(order), device=y.device)
    per = len(order) // n_tasks
    out = []
    for t in range(n_tasks):
        keep = torch.isin(y, torch.tensor(order[t * per : (t + 1) * per], device=y.device))
        out.append((x[keep], unit[y[keep]]))
    return out


def mlp(width: int = 400, n_in: int = 784, n_out: int = 10) -> nn.Module:
    """784-w-w-10 with the engine's initialisation: He-normal hidden layers with zero biases,
    PyTorch's default for the head (the init decides how much a synthetic task is forgotten)."""
    net = nn.Sequential(
        nn.Flatten(),
        nn.Linear(n_in, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, n_out),
    )
    for layer in (net[1], net[3]):
        nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(layer.bias)
    return net


def make_model(args, input_shape: tuple[int, ...]) -> nn.Module:
    """The MLP above, or for --arch vgg19 / resnet18 … the engine's network of that name (the
    GPU section's conv nets; only the network is shared, the loop stays bare)."""
    if args.arch == "mlp":
        return mlp(args.width, n_in=int(torch.tensor(input_shape).prod()))
    from engine.config import ModelConfig
    from engine.models import build_model

    return build_model(ModelConfig(arch=args.arch, width_factor=args.width_factor), input_shape, 10)


@torch.no_grad()
def evaluate(
    model: nn.Module, x_test, y_test, t_test, n_tasks: int, chunk: int = 4096
) -> torch.Tensor:
    """Accuracy on every task's test split in one pass over the concatenated test set."""
    model.eval()
    correct = torch.zeros(n_tasks, device=x_test.device)
    for s in range(0, len(x_test), chunk):
        hit = (model(x_test[s : s + chunk]).argmax(1) == y_test[s : s + chunk]).float()
        correct.index_add_(0, t_test[s : s + chunk], hit)
    model.train()
    return correct / torch.bincount(t_test, minlength=n_tasks).float()


def fisher(model: nn.Module, x, y, chunk: int = 32) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher: mean squared per-sample gradient of the cross-entropy
    (per-sample gradients of ``chunk`` samples at a time: 1,000 at once would take 1.9 GB)."""
    params = {n: p.detach() for n, p in model.named_parameters()}

    def loss(p, xi, yi):
        return F.cross_entropy(torch.func.functional_call(model, p, (xi[None],)), yi[None])

    per_sample = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    for s in range(0, len(x), chunk):
        for n, g in per_sample(params, x[s : s + chunk], y[s : s + chunk]).items():
            total[n] += g.square().sum(0)
    return {n: t / len(x) for n, t in total.items()}


def run(args) -> dict:
    x_tr_raw, y_tr_raw, x_te_raw, y_te_raw = load_raw(args.benchmark, args.synthetic_n, args.shape)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    # torch.optim's constructor imports torch._dynamo on first use (seconds); Avalanche imports it
    # at its own import, so every side imports it before the clock starts.
    importlib.import_module("torch._dynamo")
    warm_device(args.device)

    t0, c0 = time.perf_counter(), time.process_time()
    x_tr, x_te = standardise(x_tr_raw.to(dev), x_te_raw.to(dev))
    order = class_order()
    tasks = task_data(x_tr, y_tr_raw.to(dev), order, args.n_tasks)
    tests = task_data(x_te, y_te_raw.to(dev), order, args.n_tasks)
    x_test = torch.cat([x for x, _ in tests])
    y_test = torch.cat([y for _, y in tests])
    t_test = torch.cat([torch.full((len(x),), t, device=dev) for t, (x, _) in enumerate(tests)])

    torch.manual_seed(args.seed)
    model = make_model(args, tuple(x_tr.shape[1:])).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    anchors: list[tuple[dict, dict]] = []  # ewc: (Fisher, weights) per finished task
    buf_x = buf_y = None  # replay: the buffer's images and targets
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []  # replay: each class's images, shuffled

    R = []
    for x, y in tasks:
        for _ in range(args.epochs):
            perm = torch.randperm(len(x), generator=gen, device=dev)
            for s in range(0, len(x), args.batch_size):
                b = perm[s : s + args.batch_size]
                xb, yb = x[b], y[b]
                if buf_x is not None:
                    pick = torch.randint(len(buf_x), (len(b),), generator=gen, device=dev)
                    xb, yb = torch.cat([xb, buf_x[pick]]), torch.cat([yb, buf_y[pick]])
                loss = F.cross_entropy(model(xb), yb)
                for fis, old in anchors:
                    for n, p in model.named_parameters():
                        loss = loss + 0.5 * args.lam * (fis[n] * (p - old[n]).square()).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
        if args.strategy == "ewc":
            pick = torch.randperm(len(x), generator=gen, device=dev)[: args.fisher_samples]
            anchors.append(
                (
                    fisher(model, x[pick], y[pick]),
                    {n: p.detach().clone() for n, p in model.named_parameters()},
                )
            )
        if args.strategy == "replay":
            for c in y.unique():
                xc = x[y == c]
                shuffled = xc[torch.randperm(len(xc), generator=gen, device=dev)]
                seen.append((shuffled, torch.full((len(xc),), int(c), device=dev)))
            quota = args.buffer // len(seen)
            buf_x = torch.cat([xc[:quota] for xc, _ in seen])
            buf_y = torch.cat([yc[:quota] for _, yc in seen])
        R.append(evaluate(model, x_test, y_test, t_test, args.n_tasks).tolist())
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "side": "bare",
        "device": torch.device(args.device).type,
        "time_s": elapsed,
        "cpu_s": cpu,
        "acc": sum(R[-1]) / len(R[-1]),
        "R": R,
        "threads": torch.get_num_threads(),
    }


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", default="split-mnist5k", choices=("split-mnist5k", "synthetic"))
    ap.add_argument(
        "--synthetic-n", type=int, default=70_000, help="synthetic: images (train + test)"
    )
    ap.add_argument("--strategy", default="naive", choices=("naive", "ewc", "replay"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--n-tasks", type=int, default=5)
    ap.add_argument("--width", type=int, default=400)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lam", type=float, default=100.0, help="ewc: λ")
    ap.add_argument(
        "--fisher-samples", type=int, default=1000, help="ewc: images per Fisher estimate"
    )
    ap.add_argument("--buffer", type=int, default=200, help="replay: buffer size")
    ap.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)"
    )
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--arch", default="mlp", help="mlp, or an engine conv net (vgg19, resnet18, …)")
    ap.add_argument("--width-factor", type=float, default=1.0, help="conv nets: channel multiplier")
    ap.add_argument("--shape", default="1x28x28", help="synthetic: image shape CxHxW")
    return ap


if __name__ == "__main__":
    print(json.dumps(run(parser().parse_args())))
