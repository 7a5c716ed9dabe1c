"""Benchmark: sweep throughput (configs per minute) with 1, 2 and 4 local worker processes.

    python bench/bench_sweep.py                 # 8 split-digits configs, MLP 2×100, 5 epochs a task
    python bench/bench_sweep.py --configs 16 --epochs 2 --jobs 1 2 4 8

The same sweep (seeds 0..N-1 of one small split-digits config, class-incremental, on the CPU)
runs through engine.sweep.run_sweep with each number of processes, into a fresh store every
time, so every config is computed. Two timings per row:

* cold: a fresh pool, so the time includes starting the worker processes (importing torch and
  the engine, loading the digits) — what a short sweep pays;
* warm: the same sweep again on the pool left running — the steady state of a long sweep.

With 1 process joblib runs the configs in this process (no pool; cold = first load of the
data). CPU threads are budgeted per process (cores // processes, at least 1), so more
processes than cores oversubscribe nothing but also gain nothing: on a 2-core machine expect
the speed-up to stop at 2 processes. The machine's load average is printed with the table,
because on a shared machine it moves the numbers more than anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.store import Store  # noqa: E402
from engine.sweep import run_sweep  # noqa: E402


def spec(n_configs: int, epochs: int, width: int) -> dict:
    return {
        "base": {
            "scenario": "class",
            "data": {"benchmark": "split-digits"},
            "model": {"arch": "mlp", "depth": 2, "width": width},
            "train": {"epochs": epochs, "device": "cpu"},
        },
        "grid": {"seed": list(range(n_configs))},
    }


def stop_pool() -> None:
    """Shut joblib's reusable loky pool down, so the next sweep starts its workers afresh."""
    from joblib.externals.loky import reusable_executor

    if reusable_executor._executor is not None:
        reusable_executor._executor.shutdown(wait=True, kill_workers=True)


def timed_sweep(sweep_spec: dict, jobs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp)
        t0 = time.perf_counter()
        out = run_sweep(sweep_spec, backend="loky", n_jobs=jobs, store=store)
        elapsed = time.perf_counter() - t0
        store.close()
    counts = out.counts()
    if counts["done"] != counts["total"]:
        raise SystemExit(
            f"bench: {counts['failed']} configs failed: {[e.error for e in out.problems()]}"
        )
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--width", type=int, default=100)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    args = ap.parse_args()
    os.environ.pop("FORGET_THREADS", None)  # let the sweep budget threads per process
    sweep_spec = spec(args.configs, args.epochs, args.width)
    load0 = os.getloadavg()[0]
    rows = []
    for jobs in args.jobs:
        stop_pool()  # cold: no pool left from the previous row
        cold = timed_sweep(sweep_spec, jobs)
        warm = timed_sweep(sweep_spec, jobs)
        rows.append((jobs, cold, warm))
        print(f"  {jobs} process(es): cold {cold:.1f} s, warm {warm:.1f} s", file=sys.stderr)
    stop_pool()
    load1 = os.getloadavg()[0]

    cores = os.cpu_count()
    print(
        f"\n{args.configs} configs (split-digits, class-IL, MLP 2×{args.width}, {args.epochs} epochs a task, CPU); "
        f"{cores} cores; load average {load0:.1f} before, {load1:.1f} after\n"
    )
    print(
        "| processes | threads each | cold s | cold configs/min | warm s | warm configs/min | warm speed-up |"
    )
    print("|---|---|---|---|---|---|---|")
    base_warm = rows[0][2]
    for jobs, cold, warm in rows:
        threads = "runner's choice" if jobs == 1 else max(1, (cores or 1) // jobs)
        print(
            f"| {jobs} | {threads} | {cold:.1f} | {60 * args.configs / cold:.1f} | {warm:.1f} | "
            f"{60 * args.configs / warm:.1f} | {base_warm / warm:.2f}× |"
        )
    ratios = ", ".join(
        f"{j} vs {rows[0][0]}: {base_warm / w:.2f}× warm, {rows[0][1] / c:.2f}× cold"
        for j, c, w in rows[1:]
    )
    print(f"\nspeed-up ({ratios})")


if __name__ == "__main__":
    main()
