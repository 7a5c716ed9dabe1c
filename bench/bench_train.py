"""Benchmark: training throughput of the engine against a bare PyTorch loop and Avalanche.

    python bench/bench_train.py            # 3 seeds, split-mnist5k (10 epochs) and synthetic 70,000
    python bench/bench_train.py --quick    # 1 seed, split-mnist5k at 3 epochs, synthetic 70,000
    python bench/bench_train.py --profile  # where the engine's time goes (torch profiler), no race

The experiment on every side: class-incremental, 5 tasks of 2 classes, MLP 784-400-400-10, SGD
lr 0.01, batch 128, evaluation of every task after every task; naive, EWC (λ = --lam on every
side; the engine's default 1e4 diverges with SGD at lr 0.01 on all three) and replay (200
samples, class-balanced, half of each enlarged batch replayed). Benchmarks: ``split-mnist5k``
(5,000 real MNIST images, 4,000 train) and ``synthetic`` at full-MNIST size (70,000 1×28×28
images, 60,000 train + 10,000 test).

Each run is its own subprocess (``python bench/bench_train.py --child ours …``,
``bench/bare_loop.py``, ``bench/avalanche_run.py``) and times itself after its imports (with
torch._dynamo, which torch.optim imports lazily and Avalanche eagerly) and the raw data load: training plus evaluation, wall clock and CPU time. The sides take turns seed by
seed, in a rotating order, so a shared machine's changing load hits them alike; the table shows
the median time over seeds and the mean ACC. Every side runs with the same number of intra-op
threads — the engine's own choice (engine.train.cpu_threads) unless ``--threads`` says otherwise
(0 = each side's default) — so the ratios compare the loops, not the thread settings.

Goals (issue 10): engine/bare ≤ 1.0 everywhere; Avalanche/engine ≥ 2.5 at MNIST scale
(synthetic 70,000) on the CPU and ≥ 10 with ``--device cuda``; |ACC engine − ACC Avalanche| ≤ 0.02
(mean of the seeds).

GPU section (``--device cuda``, run by run_all.py and bench/gpu_check.sh when CUDA is present):
the same race on the GPU; ``--arch vgg19 --shape 3x32x32 --benchmarks synthetic`` (or resnet18)
races the engine's conv nets, the bare loop using the same network definition from
engine.models. On a GPU every side creates the CUDA context and a cuBLAS handle before its clock
(bare_loop.warm_device). Two extra sides, off by default: ``cpu-ref`` is the engine on the CPU
with the same config (its ACC against the GPU run's: goal |ΔACC| ≤ 0.02), ``ours-bf16`` the
engine with ``train.amp`` (bf16 autocast on CUDA). ``--json PATH`` writes every run, the
summary rows and the goals to one file (bench/gpu_check.py reads it).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

SIDES = ("ours", "bare", "avalanche")
EXTRA_SIDES = ("ours-bf16", "cpu-ref")  # the engine with bf16 autocast; the engine on the CPU
ENGINE_SIDES = ("ours", *EXTRA_SIDES)  # run by this script's --child
SCRIPTS = {
    "ours": HERE / "bench_train.py",
    "ours-bf16": HERE / "bench_train.py",
    "cpu-ref": HERE / "bench_train.py",
    "bare": HERE / "bare_loop.py",
    "avalanche": HERE / "avalanche_run.py",
}
STRATEGIES = ("naive", "ewc", "replay")
SETTINGS = (
    "optimizer=sgd lr=0.01 batch_size=128 arch=mlp depth=2 width=400 evals_per_task=1".split()
)


def engine_config(args) -> dict:
    """The engine's config for one run (the bench settings plus the strategy's)."""
    from bare_loop import MNIST_TEST_FRACTION

    from engine.config import apply_overrides, field_names

    settings = [*SETTINGS, f"epochs={args.epochs}", f"seed={args.seed}", f"width={args.width}"]
    if args.arch != "mlp":  # the GPU section's conv nets, at their default sizes
        settings = [s for s in settings if s.split("=")[0] not in ("arch", "depth", "width")]
        settings += [f"arch={args.arch}", f"width_factor={args.width_factor}"]
    if args.benchmark == "synthetic":
        settings += [
            f"synthetic_n={args.synthetic_n}",
            f"test_fraction={MNIST_TEST_FRACTION!r}",
            f"synthetic_shape={args.shape}",
        ]
    if args.amp:
        settings += ["amp=true"]
    if args.strategy == "ewc":
        settings += [f"lam={args.lam}", f"fisher_samples={args.fisher_samples}"]
        # The bare loop and Avalanche penalise with the raw Fisher; where the engine offers to
        # rescale its Fisher (fisher_norm), the same λ is the same penalty only unscaled.
        if "fisher_norm" in field_names("ewc"):
            settings += ["fisher_norm=none"]
    if args.strategy == "replay":
        settings += [
            f"buffer_size={args.buffer}",
            "selection=class-balanced",
            "replay_fraction=0.5",
        ]
    raw = {
        "scenario": "class",
        "data": {"benchmark": args.benchmark},
        "train": {"device": args.device},
        "strategy": {"name": args.strategy},
    }
    return apply_overrides(raw, settings)


def child_ours(args) -> dict:
    """One engine run, timed like the others: after imports and the raw data load."""
    import torch
    from bare_loop import load_raw, warm_device

    from engine.runner import prepare, run

    cfg, _ = prepare(engine_config(args))
    load_raw(args.benchmark, args.synthetic_n, args.shape)  # memoized loaders: warm them
    if args.threads:
        os.environ["FORGET_THREADS"] = str(args.threads)
    importlib.import_module("torch._dynamo")  # imported lazily by torch.optim; see bare_loop.py
    warm_device(args.device)

    t0, c0 = time.perf_counter(), time.process_time()
    result = run(cfg, use_cache=False)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if result.status != "done":
        raise SystemExit(f"engine run {result.status}: {result.message}")
    return {
        "side": args.side,
        "time_s": elapsed,
        "cpu_s": cpu,
        "train_s": result.timing["train_s"],  # the engine's own split: training steps only
        "acc": result.metrics["acc"],
        "R": result.R,
        "device": result.device,
        "threads": torch.get_num_threads(),
    }


def model_name(args) -> str:
    if args.arch == "mlp":
        return f"MLP 784-{args.width}-{args.width}-10"
    return args.arch + (f" ×{args.width_factor:g} channels" if args.width_factor != 1 else "")


def engine_threads(width: int, batch_size: int) -> int:
    """The thread count the engine picks for this model (what every side gets by default)."""
    from engine.config import ModelConfig
    from engine.models import build_model
    from engine.train import cpu_threads

    model = build_model(ModelConfig(arch="mlp", depth=2, width=width), (1, 28, 28), 10)
    return cpu_threads(model, batch_size)


def run_child(side: str, benchmark: str, strategy: str, seed: int, args, threads: int) -> dict:
    """One timed run in its own process: its JSON line, or {"side", "error"}."""
    device = "cpu" if side == "cpu-ref" else args.device
    cmd = [
        sys.executable,
        str(SCRIPTS[side]),
        "--benchmark",
        benchmark,
        "--strategy",
        strategy,
        "--seed",
        str(seed),
        "--epochs",
        str(epochs_for(benchmark, args)),
        "--synthetic-n",
        str(args.synthetic_n),
        "--width",
        str(args.width),
        "--lam",
        str(args.lam),
        "--buffer",
        str(args.buffer),
        "--fisher-samples",
        str(args.fisher_samples),
        "--threads",
        str(threads),
        "--device",
        device,
        "--arch",
        args.arch,
        "--width-factor",
        str(args.width_factor),
        "--shape",
        args.shape,
    ]
    if side in ENGINE_SIDES:
        cmd[2:2] = ["--child", "--side", side] + (["--amp"] if side == "ours-bf16" else [])
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=args.child_timeout
        )
    except subprocess.TimeoutExpired:
        return {"side": side, "error": f"timed out after {args.child_timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"side": side, "error": tail[:200]}
    return {**json.loads(lines[-1]), "side": side}


def epochs_for(benchmark: str, args) -> int:
    if benchmark == "synthetic":
        return args.synthetic_epochs
    return args.epochs


def available_strategies(wanted: list[str]) -> tuple[list[str], list[str]]:
    from engine.strategies import REGISTRY

    have = [s for s in wanted if s in REGISTRY]
    notes = [
        f"{s}: not in this engine (engine/strategies/{s}.py missing) — rows skipped"
        for s in wanted
        if s not in REGISTRY
    ]
    return have, notes


def avalanche_available() -> str:
    try:
        import avalanche  # noqa: F401
    except Exception as err:  # ImportError, or a dependency that fails to load
        return f"Avalanche unavailable ({type(err).__name__}: {err}); install requirements-bench.txt (see bench/README.md)"
    return ""


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


def summarise(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0].get("error", "no runs") if runs else "no runs"}
    train = [r["train_s"] for r in ok if "train_s" in r]
    return {
        "time": statistics.median(r["time_s"] for r in ok),
        "cpu": statistics.median(r["cpu_s"] for r in ok),
        "train": statistics.median(train) if train else None,
        "acc": statistics.fmean(r["acc"] for r in ok),
        "threads": ok[0]["threads"],
        "n": len(ok),
    }


def goal_line(name: str, value: float | None, op: str, target: float) -> str:
    if value is None:
        return f"goal {name}: not measured"
    met = value <= target if op == "<=" else value >= target
    return f"goal {name}: {value:.2f} {op} {target} — {'met' if met else 'MISSED'}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 seed, split-mnist5k at 3 epochs")
    ap.add_argument(
        "--seeds", type=int, default=None, help="seeds per row (default 3; 1 with --quick)"
    )
    ap.add_argument("--benchmarks", nargs="+", default=["split-mnist5k", "synthetic"])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument(
        "--sides",
        nargs="+",
        default=list(SIDES),
        choices=SIDES + EXTRA_SIDES,
        help="who races; cpu-ref = the engine on the CPU, ours-bf16 = the engine with train.amp",
    )
    ap.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="split-mnist5k epochs per task (default 10; 3 with --quick)",
    )
    ap.add_argument("--synthetic-epochs", type=int, default=1, help="synthetic: epochs per task")
    ap.add_argument("--synthetic-n", type=int, default=70_000)
    ap.add_argument("--width", type=int, default=400)
    ap.add_argument("--lam", type=float, default=100.0, help="ewc λ on every side")
    ap.add_argument("--buffer", type=int, default=200, help="replay buffer size on every side")
    ap.add_argument(
        "--fisher-samples",
        type=int,
        default=1000,
        help="ewc: images per Fisher estimate (engine and bare loop; Avalanche uses them all)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads on every side (0 = each side's default)",
    )
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the GPU section)")
    ap.add_argument(
        "--arch", default="mlp", help="mlp (the issue's 784-400-400-10) or an engine conv net"
    )
    ap.add_argument(
        "--shape", default="1x28x28", help="synthetic image shape, e.g. 3x32x32 for the conv nets"
    )
    ap.add_argument("--width-factor", type=float, default=1.0, help="conv nets: channel multiplier")
    ap.add_argument(
        "--profile", action="store_true", help="profile one engine run instead of racing"
    )
    ap.add_argument("--json", metavar="PATH", help="also write every run and the goals here")
    ap.add_argument(
        "--child-timeout", type=float, default=900, help="seconds one run may take before it fails"
    )
    args = ap.parse_args()
    args.amp = False
    seeds = args.seeds or (1 if args.quick else 3)
    args.epochs = args.epochs or (3 if args.quick else 10)
    if args.profile:
        return profile(args)

    threads = engine_threads(args.width, 128) if args.threads is None else args.threads
    strategies, notes = available_strategies(args.strategies)
    sides = list(args.sides)
    if "avalanche" in sides and (why := avalanche_available()):
        notes.append(why)
        sides.remove("avalanche")
    where = f"{args.device}" + (f", {args.arch} on {args.shape}" if args.arch != "mlp" else "")
    print(f"## Training: engine vs bare PyTorch loop vs Avalanche ({where})\n")
    print(
        f"class-IL, {model_name(args)}, SGD lr 0.01, batch 128; split-mnist5k {args.epochs} epochs/task, "
        f"synthetic {args.synthetic_n:,} images {args.synthetic_epochs} epoch(s)/task; ewc λ={args.lam:g}; replay {args.buffer} "
        f"samples; {seeds} seed(s); intra-op threads: {threads or 'each side its default'}; "
        f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n"
    )
    for note in notes:
        print(f"note: {note}")

    results: dict[tuple[str, str, str], list[dict]] = {}
    t_start = time.perf_counter()
    for bench in args.benchmarks:
        for strategy in strategies:
            for seed in range(seeds):
                order = (
                    sides[seed % len(sides) :] + sides[: seed % len(sides)]
                )  # rotate who goes first
                for side in order:
                    out = run_child(side, bench, strategy, seed, args, threads)
                    results.setdefault((bench, strategy, side), []).append(out)
                    if args.json:  # as it goes: a run stopped half-way keeps what it measured
                        write_json(args, threads, seeds, notes, results, [], [], None)
                    status = out.get("error") or f"{out['time_s']:.2f} s, ACC {out['acc']:.3f}"
                    print(f"  {bench} {strategy} seed {seed} {side}: {status}", file=sys.stderr)

    print()
    print(
        "| benchmark | strategy | side | time s (median) | CPU s (median) | engine train s "
        "| ACC (mean) | time / bare | time / engine |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    goals: list[dict] = []
    rows: list[dict] = []
    for bench in args.benchmarks:
        for strategy in strategies:
            s = {side: summarise(results.get((bench, strategy, side), [])) for side in sides}
            base = s.get("bare", {}).get("time")
            ours = s.get("ours", {}).get("time")
            for side in sides:
                r = s[side]
                rows.append({"benchmark": bench, "strategy": strategy, "side": side, **r})
                if "error" in r:
                    print(f"| {bench} | {strategy} | {side} | failed: {r['error']} | | | | | |")
                    continue
                vs_bare = r["time"] / base if base else None
                vs_ours = r["time"] / ours if ours else None
                print(
                    f"| {bench} | {strategy} | {side} | {r['time']:.2f} | {r['cpu']:.2f} | "
                    f"{fmt(r['train'])} | {r['acc']:.3f} | {fmt(vs_bare)} | {fmt(vs_ours)} |"
                )
            goals += bench_goals(bench, strategy, s, args.device)
    print()
    for goal in goals:
        print(goal_line(goal["name"], goal["value"], goal["op"], goal["target"]))
    wall = time.perf_counter() - t_start
    print(f"\n(wall time of the whole comparison: {wall:.0f} s)")
    if args.json:
        write_json(args, threads, seeds, notes, results, rows, goals, wall)
    return 0


def bench_goals(bench: str, strategy: str, s: dict[str, dict], device: str) -> list[dict]:
    """The goals one (benchmark, strategy) row group can be held to, from its summaries."""
    goals = []
    ours = s.get("ours", {}).get("time")
    base = s.get("bare", {}).get("time")
    if ours and base:
        goals.append(goal(f"engine/bare time, {bench} {strategy}", ours / base, "<=", 1.0))
    ava = s.get("avalanche", {})
    if ours and "time" in ava:
        if bench == "synthetic":
            target = 10.0 if device == "cuda" else 2.5
            name = f"Avalanche/engine time, {bench} {strategy} on {device}"
            goals.append(goal(name, ava["time"] / ours, ">=", target))
        acc_gap = abs(s["ours"]["acc"] - ava["acc"])
        goals.append(goal(f"|ACC engine − Avalanche|, {bench} {strategy}", acc_gap, "<=", 0.02))
    ref = s.get("cpu-ref", {})
    if ours and "acc" in ref:
        acc_gap = abs(s["ours"]["acc"] - ref["acc"])
        goals.append(goal(f"|ACC {device} − cpu|, {bench} {strategy}", acc_gap, "<=", 0.02))
    return goals


def goal(name: str, value: float, op: str, target: float) -> dict:
    met = value <= target if op == "<=" else value >= target
    return {"name": name, "value": value, "op": op, "target": target, "met": met}


def write_json(args, threads, seeds, notes, results, rows, goals, wall) -> None:
    """Every run (R included), the summary rows and the goals, for bench/gpu_check.py."""
    runs = [
        {"benchmark": bench, "strategy": strategy, **run}
        for (bench, strategy, _), outs in results.items()
        for run in outs
    ]
    doc = {
        "device": args.device,
        "arch": args.arch,
        "model": model_name(args),
        "shape": args.shape,
        "synthetic_n": args.synthetic_n,
        "epochs": {"split-mnist5k": args.epochs, "synthetic": args.synthetic_epochs},
        "seeds": seeds,
        "threads": threads,
        "notes": notes,
        "runs": runs,
        "rows": rows,
        "goals": goals,
        "wall_s": wall,
    }
    Path(args.json).write_text(json.dumps(doc, indent=1))


def profile(args) -> int:
    """Where one engine run's time goes: the torch profiler's table, by self CPU time."""
    import torch
    from bare_loop import load_raw
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from engine.runner import prepare, run

    args.benchmark, args.strategy, args.seed = args.benchmarks[0], args.strategies[0], 0
    cfg, _ = prepare(engine_config(args))
    load_raw(args.benchmark, args.synthetic_n)
    if args.threads:
        os.environ["FORGET_THREADS"] = str(args.threads)
    run(cfg, use_cache=False)  # warm-up
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        run(cfg, use_cache=False)
        elapsed = time.perf_counter() - t0
    print(
        f"## Profile: engine, {args.benchmark} {args.strategy}, {elapsed:.2f} s with the profiler on, {torch.get_num_threads()} thread(s)\n"
    )
    print("```")
    print(
        prof.key_averages().table(
            sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=40
        )
    )
    print("```")
    return 0


def child_main() -> int:
    from bare_loop import parser

    ap = parser()
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--side", default="ours", choices=ENGINE_SIDES)
    ap.add_argument("--amp", action="store_true", help="train.amp: bf16 autocast on CUDA")
    args = ap.parse_args()
    print(json.dumps(child_ours(args)))
    return 0


if __name__ == "__main__":
    sys.exit(child_main() if "--child" in sys.argv else main())
