"""The GPU path in one prepared run: CUDA tests, the training race, CKA, an app-level job, reach.

    bash bench/gpu_check.sh                       # on a lent GPU: sets up Python, then runs this
    bash bench/gpu_check.sh --device cpu --tiny   # the CPU dry run: tiny sizes, same code paths
    python bench/gpu_check.py --device cuda --out DIR

Every step runs in its own process (its own process group) under its own timeout, inside one
overall budget counted from the start of gpu_check.sh; a step that fails or times out is
recorded and the next one runs, and a step that no longer fits the budget is recorded as
skipped. Steps, most important first:

1. ``env``: bench/gpu_env.py (device, driver, CUDA, packages) and nvidia-smi's own table;
2. ``tests``: the CUDA tests (tests/test_cuda_*.py and every test of tests/test_cka.py whose
   name says cuda), with ``FORGET_TEST_DEVICE`` set to the device;
3. ``train-mlp``: bench/bench_train.py on the device, engine vs bare loop vs Avalanche, naive,
   EWC and replay, split-mnist5k and full-MNIST-sized synthetic, plus ``cpu-ref`` (the engine on
   the CPU with the same config, for the ACC check);
4. ``job``: bench/gpu_job.py, one run through the app's job manager on the device;
5. ``cka``: bench/bench_cka.py on the device (ours vs torch-cka);
6. ``train-vgg19``, ``train-resnet18``: the conv nets on 3×32×32 synthetic data (naive; the engine
   also with bf16 autocast).

Everything measured goes to one file, ``DIR/gpu_results.json``, rewritten after every step (a
run killed half-way still leaves what it measured); at the end bench/gpu_results_table.py turns
it into ``DIR/gpu_results.md``, the GPU section of bench/results.md. ``--tiny`` shrinks every
size for a dry run on the CPU; the reach checks are computed either way and say which it was.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from gpu_results_table import render  # noqa: E402

RESULTS = "gpu_results.json"
TABLE = "gpu_results.md"
RESERVE_S = 8  # kept back from the budget for writing the table at the end
MIN_STEP_S = 10  # a step that would get less than this is skipped

# Sizes: "full" for the device (the whole script in ≤ 6 minutes on one H200), "tiny" for the
# CPU dry run (minutes on 2 shared cores).
SIZES = {
    "full": {
        "mnist_epochs": 10,
        "synthetic_n": 70_000,
        "conv_n": 20_000,
        "conv_width": 1.0,
        "fisher_samples": 1000,
        "cka": ["--repeats", "2"],
        "job_epochs": 2,
        "budget_s": 345,
        "child_timeout_s": 90,
        "timeouts": {
            "env": 60,
            "tests": 90,
            "train-mlp": 200,
            "job": 60,
            "cka": 60,
            "train-vgg19": 70,
            "train-resnet18": 60,
        },
    },
    "tiny": {
        "mnist_epochs": 1,
        "synthetic_n": 3_000,
        "conv_n": 200,
        "conv_width": 0.25,
        "fisher_samples": 100,
        "cka": ["--samples", "1024", "--layers", "6", "--repeats", "1"],
        "job_epochs": 1,
        "budget_s": 1800,
        "child_timeout_s": 300,
        "timeouts": {
            "env": 120,
            "tests": 400,
            "train-mlp": 900,
            "job": 200,
            "cka": 200,
            "train-vgg19": 400,
            "train-resnet18": 400,
        },
    },
}


@dataclass
class Outcome:
    status: str  # ok | failed | timeout
    seconds: float
    lines: list[str]
    rc: int | None


def run_cmd(cmd: list[str], timeout: float, env: dict[str, str]) -> Outcome:
    """Run ``cmd`` in its own process group, echoing its output as it comes; kill the group at
    the timeout (a hung grandchild must not outlive its step)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []

    def pump() -> None:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            print(f"    {line}", end="", flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout)
        status = "ok" if rc == 0 else "failed"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rc, status = None, "timeout"
    reader.join(5)
    return Outcome(status, time.perf_counter() - t0, lines, rc)


def last_line(lines: list[str]) -> str:
    return next((ln.strip() for ln in reversed(lines) if ln.strip()), "no output")[:300]


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class Check:
    """The run's state: the results document, its file, the clock and the budget."""

    def __init__(self, args) -> None:
        self.args = args
        self.size = SIZES["tiny" if args.tiny else "full"]
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="forget-gpu-check-"))
        self.t0 = args.t0 or time.time()  # the shell script's start, setup included
        budget = args.budget or self.size["budget_s"]
        self.deadline = self.t0 + budget
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "PYTHONWARNINGS": "ignore",
            "FORGET_CACHE_DIR": str(self.work / "cache"),  # never the repo's cache/
            "FORGET_TEST_DEVICE": args.device,
        }
        self.doc: dict = {
            "schema": 1,
            "mode": "cpu-dry-run" if args.device == "cpu" else "device",
            "device": args.device,
            "tiny": args.tiny,
            "sizes": {k: v for k, v in self.size.items() if k != "timeouts"},
            "budget_s": budget,
            "started": dt.datetime.fromtimestamp(self.t0)
            .astimezone()
            .isoformat(timespec="seconds"),
            "setup": {"python": sys.executable, "how": args.setup_how, "seconds": args.setup_s},
            "steps": [],
            "env": None,
            "nvidia_smi_text": None,
            "tests": None,
            "train": [],
            "cka": None,
            "job": None,
            "reach": [],
        }

    def save(self) -> None:
        self.doc["wall_s"] = round(time.time() - self.t0, 1)
        tmp = self.out / (RESULTS + ".tmp")
        tmp.write_text(json.dumps(self.doc, indent=1))
        tmp.replace(self.out / RESULTS)

    def step(self, name: str, cmd: list[str]) -> Outcome | None:
        """Run one step under min(its timeout, what the budget has left); record it."""
        left = self.deadline - time.time() - RESERVE_S
        timeout = min(self.size["timeouts"][name], left)
        record = {"name": name, "cmd": " ".join(cmd[1:]), "timeout_s": round(timeout)}
        if timeout < MIN_STEP_S:
            record.update(
                status="skipped", seconds=0.0, message=f"budget spent ({left:.0f} s left)"
            )
            print(f"== {name}: skipped, {record['message']}", flush=True)
            self.doc["steps"].append(record)
            self.save()
            return None
        print(f"== {name} (timeout {timeout:.0f} s): {record['cmd']}", flush=True)
        outcome = run_cmd(
            [sys.executable, *cmd[1:]] if cmd[0] == "python" else cmd, timeout, self.env
        )
        message = "" if outcome.status == "ok" else last_line(outcome.lines)
        if outcome.status == "timeout":
            message = f"killed after {timeout:.0f} s; last output: {message}"
        record.update(status=outcome.status, seconds=round(outcome.seconds, 1), message=message)
        self.doc["steps"].append(record)
        print(f"== {name}: {outcome.status} in {outcome.seconds:.1f} s {message}", flush=True)
        self.save()
        return outcome


def do_env(check: Check) -> None:
    outcome = check.step("env", ["python", str(HERE / "gpu_env.py")])
    if outcome is not None:
        docs = [ln for ln in outcome.lines if ln.startswith("{")]
        check.doc["env"] = json.loads(docs[-1]) if docs else None
    try:
        smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20)
        check.doc["nvidia_smi_text"] = smi.stdout or smi.stderr
    except (OSError, subprocess.TimeoutExpired) as err:
        check.doc["nvidia_smi_text"] = f"nvidia-smi: {err}"
    print(check.doc["nvidia_smi_text"], flush=True)
    check.save()


def do_tests(check: Check) -> None:
    xml = check.work / "tests.xml"
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_cuda_*.py"))
    cmd = ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"]
    # -k: the tests about CUDA (every test_cuda_* module, test_cka's cuda tests), less this
    # script's own bookkeeping tests, which need no GPU.
    cmd += [f"--junitxml={xml}", *files, "tests/test_cka.py"]
    cmd += ["-k", "cuda and not test_cuda_check"]
    outcome = check.step("tests", cmd)
    if outcome is None:
        return
    check.doc["tests"] = parse_junit(xml) or {"error": last_line(outcome.lines)}
    check.save()


def parse_junit(path: Path) -> dict | None:
    """Counts and the names (with the reason) of every test that did not pass."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    not_passed = []
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
        kinds = {child.tag: child for child in case}
        kind = next((k for k in ("failure", "error", "skipped") if k in kinds), None)
        if kind is None:
            counts["passed"] += 1
            continue
        counts["skipped" if kind == "skipped" else "failed"] += 1
        reason = ((kinds[kind].get("message") or "").splitlines() or [""])[0][:200]
        not_passed.append({"test": name, "outcome": kind, "reason": reason})
    return {**counts, "not_passed": not_passed}


def do_train(check: Check, name: str, extra: list[str]) -> None:
    path = check.work / f"{name}.json"
    size = check.size
    cmd = ["python", str(HERE / "bench_train.py"), "--device", check.args.device]
    cmd += ["--seeds", "1", "--json", str(path), "--child-timeout", str(size["child_timeout_s"])]
    cmd += ["--fisher-samples", str(size["fisher_samples"]), *extra]
    check.step(name, cmd)
    doc = read_json(path)
    if doc is not None:
        check.doc["train"].append({"group": name, **doc})
        check.save()


def do_job(check: Check) -> None:
    path = check.work / "job.json"
    cmd = ["python", str(HERE / "gpu_job.py"), "--device", check.args.device]
    cmd += ["--epochs", str(check.size["job_epochs"]), "--json", str(path)]
    cmd += ["--timeout", str(check.size["timeouts"]["job"] / 2)]
    check.step("job", cmd)
    check.doc["job"] = read_json(path)
    check.save()


def do_cka(check: Check) -> None:
    path = check.work / "cka.json"
    cmd = ["python", str(HERE / "bench_cka.py"), "--device", check.args.device]
    cmd += ["--theirs-budget", "20", "--json", str(path), *check.size["cka"]]
    check.step("cka", cmd)
    check.doc["cka"] = read_json(path)
    check.save()


# -- reach: the targets, from what was measured --------------------------------------
def median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if key in r and r[key] is not None]
    return statistics.median(values) if values else None


def runs_of(doc: dict, group: str, benchmark: str, strategy: str, side: str) -> list[dict]:
    for train in doc["train"]:
        if train["group"] == group:
            return [
                r
                for r in train["runs"]
                if r["benchmark"] == benchmark
                and r["strategy"] == strategy
                and r["side"] == side
                and "error" not in r
            ]
    return []


def reach(doc: dict) -> list[dict]:
    """Each target of the issue, with the value measured (None when the step did not run)."""
    device = doc["device"]
    n = doc["sizes"]["synthetic_n"]
    rows = []

    def add(name, value, op, target, note=""):
        met = None if value is None else (value <= target if op == "<=" else value >= target)
        rows.append(
            {"name": name, "value": value, "op": op, "target": target, "met": met, "note": note}
        )

    tests = doc.get("tests") or {}
    bad = tests.get("failed", 0) + tests.get("skipped", 0) if "passed" in tests else None
    note = f"{tests.get('passed', 0)} passed, {tests.get('failed', 0)} failed, {tests.get('skipped', 0)} skipped"
    add("CUDA tests: failed + skipped", bad, "<=", 0, note if tests else "did not run")

    ours = runs_of(doc, "train-mlp", "synthetic", "naive", "ours")
    train_s = median_of(ours, "train_s")
    add(
        f"engine, synthetic {n:,} images, 5 tasks × 1 epoch, MLP 784-400-400-10: whole run, s",
        median_of(ours, "time_s"),
        "<=",
        1.5,
        f"of which training steps {train_s:.2f} s" if train_s is not None else "",
    )
    gaps = []
    for bench in ("split-mnist5k", "synthetic"):
        for strategy in ("naive", "ewc", "replay"):
            a = median_of(runs_of(doc, "train-mlp", bench, strategy, "ours"), "acc")
            b = median_of(runs_of(doc, "train-mlp", bench, strategy, "cpu-ref"), "acc")
            if a is not None and b is not None:
                gaps.append((abs(a - b), f"{bench} {strategy}"))
    worst = max(gaps) if gaps else (None, "")
    add(
        f"ACC gap, {device} vs cpu (same config; absolute, worst of {len(gaps)})",
        worst[0],
        "<=",
        0.02,
        worst[1],
    )
    for strategy in ("naive", "ewc", "replay"):
        t_ours = median_of(runs_of(doc, "train-mlp", "synthetic", strategy, "ours"), "time_s")
        t_ava = median_of(runs_of(doc, "train-mlp", "synthetic", strategy, "avalanche"), "time_s")
        ratio = t_ava / t_ours if t_ours and t_ava else None
        add(f"Avalanche/engine time, synthetic {strategy}, {device}", ratio, ">=", 10.0)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (the device) or cpu (the dry run)")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes: the CPU dry run")
    ap.add_argument(
        "--out",
        default=os.environ.get("GPU_CHECK_OUT") or os.environ.get("OUT") or str(HERE),
        help="folder for gpu_results.json and gpu_results.md (default $GPU_CHECK_OUT, $OUT, bench/)",
    )
    ap.add_argument("--budget", type=float, default=None, help="seconds for everything")
    ap.add_argument("--t0", type=float, default=None, help="epoch seconds the check started")
    ap.add_argument("--setup-how", default="", help="how Python was set up (gpu_check.sh)")
    ap.add_argument("--setup-s", type=float, default=None, help="seconds the setup took")
    ap.add_argument(
        "--only", nargs="+", metavar="STEP", help="run only these steps (env always runs)"
    )
    args = ap.parse_args()

    check = Check(args)
    size = check.size
    mnist = ["--epochs", str(size["mnist_epochs"])]
    conv = ["--benchmarks", "synthetic", "--strategies", "naive", "--shape", "3x32x32"]
    conv += ["--synthetic-n", str(size["conv_n"]), "--width-factor", str(size["conv_width"])]
    conv += ["--sides", "ours", "bare", "avalanche"]
    conv += ["ours-bf16"]
    steps = {
        "tests": lambda: do_tests(check),
        "train-mlp": lambda: do_train(
            check,
            "train-mlp",
            [*mnist, "--synthetic-n", str(size["synthetic_n"])]
            + ["--sides", "ours", "bare", "avalanche", "cpu-ref"],
        ),
        "job": lambda: do_job(check),
        "cka": lambda: do_cka(check),
        "train-vgg19": lambda: do_train(check, "train-vgg19", ["--arch", "vgg19", *conv]),
        "train-resnet18": lambda: do_train(check, "train-resnet18", ["--arch", "resnet18", *conv]),
    }
    print(f"== gpu check on {args.device}{' (tiny)' if args.tiny else ''}; results to {check.out}")
    do_env(check)
    for name, fn in steps.items():
        if args.only and name not in args.only:
            continue
        try:
            fn()
        except Exception as err:  # a bug in one step's bookkeeping must not lose the others
            check.doc["steps"].append(
                {"name": name, "status": "failed", "seconds": 0.0, "message": repr(err)[:300]}
            )
            check.save()
    check.doc["reach"] = reach(check.doc)
    check.doc["finished"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    check.save()
    table = render(check.doc)
    (check.out / TABLE).write_text(table)
    print(table)
    print(f"== written {check.out / RESULTS} and {check.out / TABLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
