"""Run every benchmark in bench/ and write bench/results.md (what `make bench` calls).

    python bench/run_all.py              # every bench/bench_*.py, full size
    python bench/run_all.py --quick      # smaller inputs (scripts that take --quick get it)
    python bench/run_all.py --only train cache

Each ``bench/bench_*.py`` runs in its own process, one after another; its standard output (a
Markdown section with tables) goes into the results file as it is, and every line that states a
goal ("goal …: value <= target — met/MISSED", "goals met …: yes/NO") is also collected into the
summary at the top. A script that fails, or runs past ``--timeout``, is reported as such and the
others still run. The file starts with the machine: CPU model, cores, load, torch version and
the device (CUDA GPU name when there is one). With a CUDA GPU, bench_train runs a second time
on it (``--device cuda``: GPU section of issue 10). The file's ``## GPU`` section, written by
bench/gpu_results_table.py from a GPU check (bench/gpu_check.sh), is kept as it was.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from gpu_env import cpu_model  # noqa: E402
from gpu_results_table import HEADING as GPU_HEADING  # noqa: E402

GOAL_LINE = re.compile(r"^\s*goals?\b.*", re.IGNORECASE)


def machine() -> list[str]:
    import torch

    cuda = torch.cuda.is_available()
    device = (
        f"CUDA: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
        if cuda
        else "CPU only (no CUDA GPU)"
    )
    return [
        f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores; load average at start "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}",
        f"- Python {platform.python_version()}, torch {torch.__version__}, {platform.system()} {platform.release()}",
        f"- device: {device}",
    ]


def scripts(only: list[str] | None) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if only:
        found = [p for p in found if p.stem.removeprefix("bench_") in only or p.stem in only]
    return found


def run_script(path: Path, extra: list[str], quick: bool, timeout: float) -> tuple[str, float, str]:
    """(stdout, seconds, status) of one benchmark script."""
    cmd = [sys.executable, str(path), *extra]
    if quick and "--quick" in path.read_text():
        cmd.append("--quick")
    print(
        f">> {' '.join(Path(c).name if c.endswith('.py') else c for c in cmd[1:])}",
        file=sys.stderr,
        flush=True,
    )
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        return out, time.perf_counter() - t0, f"timed out after {timeout:.0f} s"
    status = (
        "ok"
        if proc.returncode == 0
        else f"failed (exit {proc.returncode}): "
        + ((proc.stderr.strip().splitlines() or ["no message"])[-1][:300])
    )
    return proc.stdout, time.perf_counter() - t0, status


def gpu_section(path: Path) -> str:
    """The results file's GPU section (a device run's figures), which a run here must keep."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return ""
    return "\n".join(lines[lines.index(GPU_HEADING) :]) if GPU_HEADING in lines else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="pass --quick to every script that takes it"
    )
    ap.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="e.g. train cache (bench_train.py, bench_cache.py)",
    )
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per script")
    ap.add_argument("--out", default=str(HERE / "results.md"))
    args = ap.parse_args()

    import torch

    runs: list[tuple[str, list[str]]] = [(p.name, []) for p in scripts(args.only)]
    if torch.cuda.is_available() and any(name == "bench_train.py" for name, _ in runs):
        runs.append(("bench_train.py", ["--device", "cuda"]))

    header = ["# Benchmark results", "", *machine(), ""]
    sections, goals = [], []
    for name, extra in runs:
        out, seconds, status = run_script(HERE / name, extra, args.quick, args.timeout)
        label = " ".join([name, *extra])
        sections += [f"<!-- {label}: {status}, {seconds:.0f} s -->", out.rstrip(), ""]
        if status != "ok":
            sections += [f"**{label}: {status}**", ""]
            goals.append(f"- {label}: {status}")
        goals += [
            f"- {label}: {m.group(0).strip()}"
            for line in out.splitlines()
            if (m := GOAL_LINE.match(line))
        ]
        print(f"   {status}, {seconds:.0f} s", file=sys.stderr, flush=True)

    mode = "quick (--quick)" if args.quick else "full"
    summary = [
        "## Goals",
        "",
        f"run: {mode}; command: `python bench/run_all.py {' '.join(sys.argv[1:])}`".rstrip(),
        "",
        *goals,
        "",
    ]
    kept = gpu_section(Path(args.out))
    text = "\n".join([*header, *summary, *sections, kept]).rstrip() + "\n"
    Path(args.out).write_text(text)
    print(text)
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
