"""`make mutate`: mutation testing of the modules whose numbers users read (docs/testing.md).

mutmut (its settings: ``[tool.mutmut]`` in pyproject.toml) is run once per module on that
module's mutants; each mutant runs only the configured fast tests that reach the mutated
function. Scratch output stays in ``mutants/`` (git-ignored): mutmut's copy of the tree, one
log per module, ``survivors.txt`` (the diff of every surviving mutant) and ``summary.txt``.

The score counts a mutant as caught when a test failed or timed out, and leaves out the
mutants docs/testing.md lists as equivalent (no input can tell them from the original).

    python tests/mutate.py [--jobs N] [--keep | --report] [MODULE ...]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / "mutants"
DOC = ROOT / "docs" / "testing.md"
MUTMUT = str(Path(sys.executable).with_name("mutmut"))


def _functions(module: str, *names: str) -> list[str]:
    """Globs for the mutants of some functions (mutmut names them ``x_<function>__mutmut_<n>``)."""
    return [f"{module}.x_{name}__mutmut_*" for name in names]


# Mutant-name globs per module. probes.py: the tunnel, κ and ρ (the probe training loop is
# exercised by its own tests but is not a closed-form number); config.py: the canonical key;
# store.py: the result checksum (mutmut leaves decorated functions alone, so the store's
# methods themselves are not mutated; their checksum lives in these helpers).
MODULES: dict[str, list[str]] = {
    "metrics": ["engine.metrics.*"],
    "cka": ["engine.analysis.cka.*"],
    "rank": ["engine.analysis.rank.*", "engine.analysis.stats.*"],
    "probes": _functions(
        "engine.analysis.probes",
        "tunnel_start",
        "compression_kappa",
        "ood_loss_rho",
        "_first_reaching",
        "_check_curve",
        "_check_fraction",
        "_check_accuracy",
    ),
    "softmax": ["engine.analysis.softmax.*"],
    "config": _functions("engine.config", "canonical_json", "config_key"),
    "store": _functions("engine.store", "_digest", "_json_dict", "unwrap_result"),
}

# mutmut's marks in its result list; a mutant counts as caught when a test failed, the tests
# ran out of time, or the mutant crashed the interpreter.
_STATUS_BY_EMOJI = {
    "🎉": "killed",
    "⏰": "timeout",
    "💥": "segfault",
    "🙁": "survived",
    "🫥": "no tests",
    "🤔": "suspicious",
    "🔇": "skipped",
}
_RESULT_LINE = re.compile(r"^(\S+) (engine\.\S+__mutmut_\d+)$")
CAUGHT = {"killed", "timeout", "segfault"}
# A doc table row that lists an equivalent mutant starts with its name in backticks.
_EQUIVALENT_ROW = re.compile(r"^\|\s*`(engine\.[^`]+__mutmut_\d+)`")


def equivalent_mutants() -> set[str]:
    if not DOC.exists():
        return set()
    return {
        m.group(1) for line in DOC.read_text().splitlines() if (m := _EQUIVALENT_ROW.match(line))
    }


def statuses(log: Path) -> dict[str, str]:
    """Mutant name -> status, from the result list ``mutmut run`` prints for named mutants.

    Read from the log rather than from ``mutmut results``: mutmut forgets earlier verdicts when
    its test selection changes between runs.
    """
    found = (_RESULT_LINE.match(line) for line in log.read_text(errors="replace").splitlines())
    return {m.group(2): _STATUS_BY_EMOJI.get(m.group(1), "unknown") for m in found if m}


def run_module(name: str, jobs: int) -> None:
    start = time.monotonic()
    log = SCRATCH / f"{name}.log"
    with log.open("w") as fh:
        cmd = [MUTMUT, "run", "--max-children", str(jobs), *MODULES[name]]
        done = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"mutmut failed on {name} (exit {done.returncode}); see {log}")
    (SCRATCH / f"{name}.seconds").write_text(f"{time.monotonic() - start:.0f}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"some of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--keep", action="store_true", help="reuse mutants/ from a last run")
    parser.add_argument("--report", action="store_true", help="only summarise the last run")
    args = parser.parse_args()
    names = args.modules or list(MODULES)
    unknown = sorted(set(names) - set(MODULES))
    if unknown:
        parser.error(f"modules must be among {', '.join(MODULES)}; got {', '.join(unknown)}")

    if not (args.keep or args.report):
        shutil.rmtree(SCRATCH, ignore_errors=True)
    SCRATCH.mkdir(exist_ok=True)
    for name in [] if args.report else names:
        run_module(name, args.jobs)
    report(names)


def report(names: list[str]) -> None:
    """Scores per module from the logs in mutants/; writes summary.txt and survivors.txt."""
    equivalent = equivalent_mutants()
    rows, survivors = [], []
    for name in names:
        log = SCRATCH / f"{name}.log"
        if not log.exists():
            rows.append(f"{name:8} not run")
            continue
        mine = statuses(log)
        seconds = float((SCRATCH / f"{name}.seconds").read_text())
        counted = {m: s for m, s in mine.items() if m not in equivalent}
        caught = sum(s in CAUGHT for s in counted.values())
        missed = sorted(m for m, s in counted.items() if s not in CAUGHT)
        survivors += missed
        stale = sorted(m for m in equivalent if mine.get(m) in CAUGHT)
        score = 100.0 * caught / len(counted) if counted else 100.0
        raw = 100.0 * caught / len(mine) if mine else 100.0
        rows.append(
            f"{name:8} {len(mine):5} mutants  {len(mine) - len(counted):3} equivalent  "
            f"{caught:5} caught  {len(missed):3} missed  {score:5.1f} % "
            f"({raw:5.1f} % of all)  {seconds / 60:4.1f} min"
        )
        rows += [f"         listed as equivalent but caught (update the doc): {m}" for m in stale]

    with (SCRATCH / "survivors.txt").open("w") as fh:
        for m in survivors:
            show = subprocess.run([MUTMUT, "show", m], cwd=ROOT, capture_output=True, text=True)
            fh.write(show.stdout + "\n")
    summary = "\n".join([time.strftime("%Y-%m-%d %H:%M"), *rows])
    (SCRATCH / "summary.txt").write_text(summary + "\n")
    print(summary)
    print(f"diffs of the {len(survivors)} missed mutants: {SCRATCH / 'survivors.txt'}")


if __name__ == "__main__":
    main()
