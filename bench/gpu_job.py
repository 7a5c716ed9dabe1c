"""One app-level run on a device: the app's job manager, a run in its own process, the store.

    python bench/gpu_job.py --device cuda --json job.json

What the app does when someone presses Run: ``engine.jobs.JobManager.submit`` (here with a fresh
store directory, so nothing is cached), then the job's progress until it is done. Measured:
seconds from submit to the first row of R in the job's progress (what the live view draws
first) and to the end, the device the run reports, its ACC. Three submits: ``cold`` (the job
process server starts and imports torch and the engine first), the same config again, which
must come back from the store (``cached``) without training, and ``warm``, another seed on the
running server (what every Run after the first costs).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.jobs import Job, JobManager  # noqa: E402


def submit(manager: JobManager, config: dict) -> Job:
    """The one call that knows the manager's submit signature (one line to change with it)."""
    return manager.submit(config)


def job_config(device: str, epochs: int, seed: int = 0) -> dict:
    """The app's default experiment on split-mnist5k (class-IL, MLP, preset optimizer)."""
    return {
        "scenario": "class",
        "data": {"benchmark": "split-mnist5k"},
        "train": {"device": device, "epochs": epochs, "seed": seed},
        "strategy": {"name": "naive"},
    }


def run_once(manager: JobManager, config: dict, timeout: float) -> dict:
    """Submit, watch the job's progress for its first row, wait for the end."""
    t0 = time.perf_counter()
    job = submit(manager, config)
    first_row = None
    while not job.wait(0.02):
        if first_row is None and job.snapshot()["R"]:
            first_row = time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout:
            manager.cancel(job.key)
            break
    total = time.perf_counter() - t0
    snap = job.snapshot()
    result = job.result or {}
    return {
        "state": snap["state"],
        "message": snap["message"],
        "cached": snap["cached"],
        "first_row_s": first_row,
        "total_s": total,
        "rows": len(snap["R"]),
        "device": result.get("device"),
        "acc": (result.get("metrics") or {}).get("acc"),
        "train_s": (result.get("timing") or {}).get("train_s"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per task")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds before cancelling")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()

    config = job_config(args.device, args.epochs)
    with tempfile.TemporaryDirectory(prefix="forget-gpu-job-") as store_dir:
        manager = JobManager(store_dir=store_dir)
        try:
            cold = run_once(manager, config, args.timeout)
            again = run_once(manager, config, args.timeout)
            warm = run_once(manager, job_config(args.device, args.epochs, seed=1), args.timeout)
        finally:
            manager.shutdown(wait=True)
    doc = {
        "config": config,
        "workers": manager.workers,
        "in_processes": manager.isolate,
        "cold": cold,
        "resubmit": again,
        "warm": warm,
    }
    print(json.dumps(doc, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    ok = all(r["state"] == "done" and r["device"] == args.device for r in (cold, again, warm))
    ok = ok and again["cached"] and not warm["cached"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
