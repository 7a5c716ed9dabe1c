"""The same experiment as bench/bare_loop.py, in Avalanche 0.6.0 (avalanche-lib).

    python bench/avalanche_run.py --benchmark split-mnist5k --strategy naive --seed 0

Class-incremental, MLP 784-400-400-10, SGD lr 0.01, train_mb_size 128; the same standardised
tensors and seeded class order as the bare loop and the engine (TensorDatasets, split with
``class_incremental_benchmark``). After each experience, ``eval`` on the whole test stream gives
a row of R. Set up as a user who cares about speed would:

* ``eval_mb_size`` 4096 (the engine's and the bare loop's evaluation chunk; Avalanche's default
  is 1), ``num_workers=0`` (the data are in memory already);
* an evaluator with experience accuracy only and no loggers (the default one also computes
  loss metrics and prints progress bars);
* ewc: ``EWC(ewc_lambda=λ/2, mode="separate")`` — Avalanche adds λ·Σ F (θ−θ*)², the engine and the
  bare loop λ/2·Σ F (θ−θ*)², so the coefficient is the same. Its Fisher differs, though: squared
  *minibatch-mean* gradients over the whole experience (batch 128) rather than per-sample
  squared gradients, so at equal λ its penalty is weaker;
* replay: ``ReplayPlugin(mem_size, storage_policy=ClassBalancedBuffer)`` — a class-balanced
  buffer like the engine's ``selection=class-balanced``; its loader pairs each batch of 128
  current samples with 128 buffer samples, the engine's ``replay_fraction=0.5``.

Prints one JSON line like the bare loop (time_s after imports and raw data loading).
"""

from __future__ import annotations

import importlib
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bare_loop import (  # noqa: E402
    class_order,
    load_raw,
    make_model,
    parser,
    standardise,
    warm_device,
)


def run(args) -> dict:
    warnings.filterwarnings("ignore")
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
    from avalanche.training.storage_policy import ClassBalancedBuffer
    from avalanche.training.supervised import EWC, Naive
    from torch.utils.data import TensorDataset

    x_tr_raw, y_tr_raw, x_te_raw, y_te_raw = load_raw(args.benchmark, args.synthetic_n, args.shape)
    if args.threads:
        torch.set_num_threads(args.threads)
    importlib.import_module("torch._dynamo")  # already imported by Avalanche; see bare_loop.py
    warm_device(args.device)

    t0, c0 = time.perf_counter(), time.process_time()
    x_tr, x_te = standardise(x_tr_raw, x_te_raw)
    order = class_order()
    scenario = class_incremental_benchmark(
        {"train": TensorDataset(x_tr, y_tr_raw), "test": TensorDataset(x_te, y_te_raw)},
        class_order=order,
        num_experiences=args.n_tasks,
    )
    torch.manual_seed(args.seed)
    model = make_model(args, tuple(x_tr.shape[1:]))
    common = dict(
        optimizer=torch.optim.SGD(model.parameters(), lr=args.lr),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=args.batch_size,
        train_epochs=args.epochs,
        eval_mb_size=4096,
        device=args.device,
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]),
    )
    if args.strategy == "ewc":
        strategy = EWC(model, ewc_lambda=args.lam / 2, mode="separate", **common)
    elif args.strategy == "replay":
        plugin = ReplayPlugin(
            mem_size=args.buffer,
            storage_policy=ClassBalancedBuffer(args.buffer, adaptive_size=True),
        )
        strategy = Naive(model, plugins=[plugin], **common)
    else:
        strategy = Naive(model, **common)

    R = []
    for exp in scenario.train_stream:
        strategy.train(exp, num_workers=0)
        res = strategy.eval(scenario.test_stream, num_workers=0)
        R.append(
            [
                float(res[f"Top1_Acc_Exp/eval_phase/test_stream/Exp{i:03d}"])
                for i in range(args.n_tasks)
            ]
        )
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "side": "avalanche",
        "device": torch.device(args.device).type,
        "time_s": elapsed,
        "cpu_s": cpu,
        "acc": sum(R[-1]) / len(R[-1]),
        "R": R,
        "threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(parser().parse_args())))
