"""The import contract of ARCHITECTURE.md (.importlinter, also run by `make lint`): it holds on
the code as it is, and it fails when a violation is planted — so it can fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(cwd), "PATH": str(LINT.parent)},
    )


pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")


def copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in ("engine", "app"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", root / ".importlinter")
    return root


def test_the_contract_holds():
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("engine/metrics.py", "import streamlit", "engine never imports the app or Streamlit"),
        ("engine/analysis/cka.py", "import engine.jobs", "the executor, the kinds, jobs or sweeps"),
        (
            "engine/strategies/naive.py",
            "import engine.train",
            "the phase loop or anything above them",
        ),
        ("engine/data/raw.py", "import engine.config", "Data imports nothing above it"),
        ("app/figures.py", "import torch", "it submits, polls, draws)"),
    ],
)
def test_a_planted_violation_breaks_it(tmp_path, module, line, contract):
    root = copy_tree(tmp_path)
    target = root / module
    target.write_text(target.read_text() + f"\n{line}  # planted\n")
    out = lint(root)
    assert out.returncode != 0
    report = "".join(out.stdout.split())  # contract names wrap across lines
    assert "".join(contract.split()) + "BROKEN" in report, out.stdout[-2000:]
