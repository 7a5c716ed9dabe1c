"""Benchmark: cache hits — reopening a stored run in process, and a cached `python -m engine run`.

    python bench/bench_cache.py           # 20 in-process reopenings, 7 process starts per side
    python bench/bench_cache.py --quick   # 10 and 5

Into a fresh temporary store (FORGET_CACHE_DIR) it first computes one run — split-mnist5k,
class-incremental, naive, 2 epochs — and its record (the same run with activations recorded on
512 test images after each task, kind ``record``), then measures:

1. in process, the way the app reopens a run: open the store, ``engine.runner.run(config)``
   (validate, resolve, key, fetch R, metrics, curves) and read every task's recorded activations
   back into tensors. Median of the repeats, plus the first (cold) one. Goal: < 100 ms.
2. as processes, taking turns: ``python -m engine run …`` answered from the store, against
   ``python -c "import torch"`` — the floor for any command that uses torch. Medians of the
   wall times; goal: ratio ≤ 1.2.
3. as processes: the default ``python -m engine run --no-cache`` (split-digits, computed every
   time) against the same floor; goal (issue #16): at most the floor + 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUN_ARGS = [
    "--benchmark",
    "split-mnist5k",
    "--scenario",
    "class",
    "--strategy",
    "naive",
    "--epochs",
    "2",
]


def config() -> dict:
    """The config the CLI arguments above describe (so both measurements hit the same key)."""
    import argparse as ap

    from engine.commands.run import config_from_args

    ns = ap.Namespace(
        benchmark="split-mnist5k",
        scenario="class",
        strategy="naive",
        epochs=2,
        seed=0,
        device="auto",
        set=[],
    )
    return config_from_args(ns)


def reopen_once(directory: str, cfg: dict, record_key: str) -> tuple[float, int]:
    from engine.analysis.activations import recording_for
    from engine.runner import run
    from engine.store import Store

    t0 = time.perf_counter()
    store = Store(directory)
    result = run(cfg, store=store)
    recs = recording_for(store, record_key)
    elapsed = time.perf_counter() - t0
    assert result.cached and len(recs) == len(result.R)
    store.close()
    return elapsed, len(recs)


def timed_process(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        cmd, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--repeats", type=int, default=None, help="in-process reopenings (default 20; 10 quick)"
    )
    ap.add_argument(
        "--starts", type=int, default=None, help="process starts per side (default 7; 5 quick)"
    )
    args = ap.parse_args()
    repeats = args.repeats or (10 if args.quick else 20)
    starts = args.starts or (5 if args.quick else 7)

    with tempfile.TemporaryDirectory(prefix="forget-bench-cache-") as tmp:
        os.environ["FORGET_CACHE_DIR"] = tmp
        from engine.executor import execute
        from engine.runner import run
        from engine.store import Store

        cfg = config()
        t0 = time.perf_counter()
        first = run(cfg, store=Store(tmp))
        record_key = execute("record", {**cfg, "n": 512}, store=Store(tmp))["key"]
        compute_s = time.perf_counter() - t0

        times = [reopen_once(tmp, cfg, record_key)[0] for _ in range(repeats)]
        cold, warm = times[0], statistics.median(times[1:] or times)

        env = {**os.environ, "FORGET_CACHE_DIR": tmp, "PYTHONWARNINGS": "ignore"}
        cli = [sys.executable, "-m", "engine", "run", *RUN_ARGS, "--quiet"]
        floor = [sys.executable, "-c", "import torch"]
        fresh = [sys.executable, "-m", "engine", "run", "--no-cache", "--quiet"]
        t_cli, t_floor, t_fresh = [], [], []
        timed_process(fresh, env)  # the first run keeps the embedded set split on disk
        for i in range(starts):
            trio = [(cli, t_cli), (floor, t_floor), (fresh, t_fresh)]
            for cmd, out in trio if i % 2 == 0 else trio[::-1]:
                out.append(timed_process(cmd, env))

    med_cli, med_floor = statistics.median(t_cli), statistics.median(t_floor)
    med_fresh = statistics.median(t_fresh)
    ratio = med_cli / med_floor
    print("## Cache hits\n")
    print(
        f"stored run: split-mnist5k, class-IL, naive, 2 epochs, activations on 512 test images after "
        f"each of {len(first.R)} tasks (computed once in {compute_s:.1f} s); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n"
    )
    print("| measurement | median | other |")
    print("|---|---|---|")
    print(
        f"| reopen in process: store + run() hit + {len(first.R)} recordings | {warm * 1e3:.1f} ms | "
        f"first (cold) {cold * 1e3:.1f} ms, {repeats} repeats |"
    )
    print(
        f"| `python -m engine run …` answered from the store | {med_cli:.2f} s | all: {', '.join(f'{t:.2f}' for t in t_cli)} |"
    )
    print(
        f'| `python -c "import torch"` | {med_floor:.2f} s | all: {", ".join(f"{t:.2f}" for t in t_floor)} |'
    )
    print(
        f"| default `python -m engine run --no-cache` | {med_fresh:.2f} s | all: {', '.join(f'{t:.2f}' for t in t_fresh)} |"
    )
    print()
    print(
        f"goal reopen in process (ms): {warm * 1e3:.1f} <= 100 — {'met' if warm < 0.1 else 'MISSED'}"
    )
    print(
        f"goal cached CLI / import torch: {ratio:.2f} <= 1.2 — {'met' if ratio <= 1.2 else 'MISSED'}"
    )
    extra = med_fresh - med_floor
    print(
        f"goal default run − import torch (s): {extra:.2f} <= 1.5 — {'met' if extra <= 1.5 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
