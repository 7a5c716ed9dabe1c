"""bench/gpu_check.py's bookkeeping, on the CPU: the reach verdicts from measured figures, a hung
step killed with its children at its timeout, steps skipped once the budget is spent, the test
counts read from pytest's JUnit file, and the GPU section of bench/results.md replaced (and kept
by run_all.py) rather than duplicated or lost."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import gpu_check  # noqa: E402
import gpu_results_table  # noqa: E402
import run_all  # noqa: E402


def run(bench, strategy, side, time_s, acc, **extra):
    return {"benchmark": bench, "strategy": strategy, "side": side, "time_s": time_s, "acc": acc}


def measured_doc() -> dict:
    runs = []
    for strategy, ava_time in (("naive", 15.0), ("ewc", 5.0), ("replay", 30.0)):
        runs += [
            {**run("synthetic", strategy, "ours", 1.2, 0.60), "train_s": 0.4},
            run("synthetic", strategy, "avalanche", ava_time, 0.61),
            run("synthetic", strategy, "cpu-ref", 3.0, 0.61),
            run("split-mnist5k", strategy, "ours", 0.9, 0.80),
            run("split-mnist5k", strategy, "cpu-ref", 1.5, 0.83 if strategy == "replay" else 0.8),
        ]
    runs.append({"benchmark": "synthetic", "strategy": "naive", "side": "bare", "error": "boom"})
    return {
        "device": "cuda",
        "mode": "device",
        "sizes": {"synthetic_n": 70_000},
        "tests": {"passed": 8, "failed": 0, "skipped": 0, "not_passed": []},
        "train": [
            {
                "group": "train-mlp",
                "model": "MLP 784-400-400-10",
                "arch": "mlp",
                "shape": "1x28x28",
                "synthetic_n": 70_000,
                "runs": runs,
            }
        ],
    }


def by_name(rows: list[dict], start: str) -> dict:
    return next(r for r in rows if r["name"].startswith(start))


def test_reach_verdicts_follow_the_measured_figures():
    rows = gpu_check.reach(measured_doc())
    assert by_name(rows, "CUDA tests")["met"] is True
    fast = by_name(rows, "engine, synthetic 70,000 images")
    assert fast["value"] == 1.2 and fast["met"] is True and "0.40" in fast["note"]
    gap = by_name(rows, "ACC gap")
    assert gap["value"] == pytest.approx(0.03) and gap["met"] is False
    assert gap["note"] == "split-mnist5k replay" and "worst of 6" in gap["name"]
    ratios = {r["name"]: r for r in rows if r["name"].startswith("Avalanche/engine")}
    assert [round(r["value"], 2) for r in ratios.values()] == [12.5, 4.17, 25.0]
    assert [r["met"] for r in ratios.values()] == [True, False, True]


def test_reach_without_measurements_says_not_measured():
    doc = {"device": "cuda", "sizes": {"synthetic_n": 70_000}, "tests": None, "train": []}
    rows = gpu_check.reach(doc)
    assert rows and all(r["value"] is None and r["met"] is None for r in rows)
    table = gpu_results_table.reach_table({"reach": rows})
    assert sum("not measured" in line for line in table) == len(rows)


def test_a_skipped_cuda_test_misses_the_reach():
    doc = measured_doc()
    doc["tests"] = {"passed": 6, "failed": 0, "skipped": 2, "not_passed": []}
    row = by_name(gpu_check.reach(doc), "CUDA tests")
    assert row["value"] == 2 and row["met"] is False


def test_a_hung_step_is_killed_with_its_children_at_the_timeout():
    hang = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    t0 = time.perf_counter()
    out = gpu_check.run_cmd([sys.executable, "-c", hang], timeout=3, env=dict(os.environ))
    assert out.status == "timeout" and out.rc is None
    assert time.perf_counter() - t0 < 30
    grandchild = int(out.lines[0])
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):  # killed with the group (reaped by init)
        os.kill(grandchild, 0)
        state = Path(f"/proc/{grandchild}/stat").read_text().split()[2]
        if state == "Z":  # a zombie waiting for its reaper is dead too
            raise ProcessLookupError


def test_steps_past_the_budget_are_skipped_and_recorded(tmp_path):
    args = argparse.Namespace(
        device="cpu", tiny=True, out=str(tmp_path), budget=5.0, t0=time.time() - 4.0
    )
    args.setup_how, args.setup_s = "test", 0.0
    check = gpu_check.Check(args)
    assert check.step("cka", ["python", "-c", "print('never')"]) is None
    saved = gpu_check.read_json(tmp_path / gpu_check.RESULTS)
    assert saved["steps"][0]["status"] == "skipped"
    assert "budget spent" in saved["steps"][0]["message"]


def test_junit_counts_and_reasons(tmp_path):
    xml = tmp_path / "t.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_a" name="test_ok"/>'
        '<testcase classname="tests.test_a" name="test_bad"><failure message="assert 1 == 2"/>'
        "</testcase>"
        '<testcase classname="tests.test_b" name="test_gpu"><skipped message="needs CUDA"/>'
        "</testcase>"
        "</testsuite></testsuites>"
    )
    got = gpu_check.parse_junit(xml)
    assert (got["passed"], got["failed"], got["skipped"]) == (1, 1, 1)
    assert {"test": "test_a::test_bad", "outcome": "failure", "reason": "assert 1 == 2"} in got[
        "not_passed"
    ]
    assert gpu_check.parse_junit(tmp_path / "missing.xml") is None


def test_the_gpu_section_is_replaced_once_and_kept_by_run_all(tmp_path):
    doc = {**measured_doc(), "reach": gpu_check.reach(measured_doc()), "steps": []}
    section = gpu_results_table.render(doc)
    assert section.startswith(gpu_results_table.HEADING + "\n")
    assert "CPU dry run" not in section
    assert "CPU dry run" in gpu_results_table.render({**doc, "mode": "cpu-dry-run"})
    rows = [ln for ln in section.splitlines() if ln.startswith("| MLP 784-400-400-10 |")]
    assert len(rows) == 16  # 6 (benchmark, strategy) groups: 2 or 3 sides each, bare failed once
    assert "| synthetic 70,000 | naive | bare | failed: boom |" in section
    assert all(row.count("|") == 12 for row in rows)  # every row has all 11 cells

    results = tmp_path / "results.md"
    results.write_text("# Benchmark results\n\n## Training\n\n| a |\n")
    results.write_text(gpu_results_table.replace_section(results.read_text(), section))
    results.write_text(gpu_results_table.replace_section(results.read_text(), section))
    text = results.read_text()
    assert text.count(gpu_results_table.HEADING + "\n") == 1
    assert text.startswith("# Benchmark results\n\n## Training\n")
    assert run_all.gpu_section(results) == section.rstrip("\n")
    assert run_all.gpu_section(tmp_path / "absent.md") == ""
