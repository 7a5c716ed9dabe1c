"""Turn a GPU check's results file into the GPU section of bench/results.md.

    python bench/gpu_results_table.py bench/gpu_results.json             # Markdown on stdout
    python bench/gpu_results_table.py DIR/gpu_results.json --into bench/results.md

``--into`` replaces the file's GPU section (from the ``## GPU`` heading this writes to the end
of the file) or appends one; bench/run_all.py keeps that section when it rewrites the file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HEADING = "## GPU"
MARK = "<!-- GPU section: bench/gpu_results_table.py from gpu_results.json; run_all.py keeps it -->"


def fmt(x, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


def header(doc: dict) -> list[str]:
    env = doc.get("env") or {}
    smi = env.get("nvidia_smi") or {}
    setup = doc.get("setup") or {}
    if doc["mode"] == "cpu-dry-run":
        lines = [
            "**CPU dry run — no GPU figures exist yet.** `bash bench/gpu_check.sh --device cpu"
            f"{' --tiny' if doc.get('tiny') else ''}` on the development machine: the same steps "
            "and code paths as on the GPU, at tiny sizes on 2 shared cores. The numbers show that "
            "the script works end to end, not how fast anything is; the reach rows are computed "
            "the same way a device run computes them.",
            "",
        ]
    else:
        lines = [
            f"`bash bench/gpu_check.sh` on a lent device{' (tiny sizes)' if doc.get('tiny') else ''}.",
            "",
        ]
    gpu = env.get("device_name") or smi.get("name") or "none"
    lines += [
        f"- started {doc.get('started')}, wall time {fmt(doc.get('wall_s'), '.0f')} s "
        f"(budget {fmt(doc.get('budget_s'), '.0f')} s); setup: {setup.get('how') or '—'} "
        f"({fmt(setup.get('seconds'), '.0f')} s)",
        f"- device: {gpu}; driver {smi.get('driver_version', '—')}; torch CUDA "
        f"{env.get('torch_cuda') or '—'}; cuDNN {env.get('cudnn') or '—'}; capability "
        f"{env.get('capability', '—')}; memory {env.get('memory_gib', '—')} GiB",
        f"- CPU: {env.get('cpu', '—')}, {env.get('cpus', '—')} cores, load "
        f"{fmt(env.get('load'), '.1f')}; Python {env.get('python', '—')}",
        "- packages: "
        + ", ".join(f"{k} {v or 'missing'}" for k, v in (env.get("packages") or {}).items()),
        "",
    ]
    return lines


def reach_table(doc: dict) -> list[str]:
    lines = ["### Reach", "", "| check | measured | target | met |", "|---|---|---|---|"]
    for r in doc.get("reach", []):
        met = {True: "met", False: "MISSED", None: "not measured"}[r["met"]]
        note = f" ({r['note']})" if r.get("note") else ""
        name = f"{r['name']}{note}".replace("|", "\\|")  # a pipe would end the cell
        lines.append(f"| {name} | {fmt(r['value'])} | {r['op']} {r['target']:g} | {met} |")
    return [*lines, ""]


def steps_table(doc: dict) -> list[str]:
    lines = [
        "### Steps",
        "",
        "| step | status | seconds | timeout s | note |",
        "|---|---|---|---|---|",
    ]
    for s in doc.get("steps", []):
        note = (s.get("message") or "").replace("|", "\\|")
        lines.append(
            f"| {s['name']} | {s['status']} | {fmt(s.get('seconds'), '.1f')} | "
            f"{s.get('timeout_s', '—')} | {note} |"
        )
    return [*lines, ""]


def summarise(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0].get("error", "no runs") if runs else "no runs"}
    train = [r["train_s"] for r in ok if r.get("train_s") is not None]
    return {
        "time": statistics.median(r["time_s"] for r in ok),
        "train": statistics.median(train) if train else None,
        "acc": statistics.fmean(r["acc"] for r in ok),
        "device": ok[0].get("device"),
        "n": len(ok),
    }


def train_table(doc: dict) -> list[str]:
    if not doc.get("train"):
        return []
    lines = [
        "### Training: engine vs bare loop vs Avalanche",
        "",
        "One seed. Time: the whole run after imports, raw data load and CUDA context (median over "
        "seeds); engine train s: the engine's own count of its training steps; ΔACC: against "
        "`cpu-ref`, the engine on the CPU with the same config.",
        "",
        "| model | benchmark | strategy | side | device | time s | engine train s | ACC "
        "| time / bare | time / engine | ΔACC vs cpu-ref |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for group in doc["train"]:
        groups: dict[tuple[str, str], dict[str, list[dict]]] = {}
        for run in group["runs"]:
            key = (run["benchmark"], run["strategy"])
            groups.setdefault(key, {}).setdefault(run["side"], []).append(run)
        for (bench, strategy), sides in groups.items():
            s = {side: summarise(runs) for side, runs in sides.items()}
            bare = s.get("bare", {}).get("time")
            ours = s.get("ours", {}).get("time")
            ref = s.get("cpu-ref", {}).get("acc")
            where = bench if bench != "synthetic" else f"synthetic {group['synthetic_n']:,}"
            where += f" ({group['shape']})" if group.get("arch") != "mlp" else ""
            for side, r in s.items():
                first = f"| {group['model']} | {where} | {strategy} | {side} |"
                if "error" in r:
                    lines.append(f"{first} failed: {r['error'][:120]} | | | | | | |")
                    continue
                gap = abs(r["acc"] - ref) if ref is not None and side == "ours" else None
                lines.append(
                    f"{first} {r['device'] or '—'} | {r['time']:.2f} | {fmt(r['train'])} | "
                    f"{r['acc']:.3f} | {fmt(r['time'] / bare if bare else None)} | "
                    f"{fmt(r['time'] / ours if ours else None)} | {fmt(gap, '.3f')} |"
                )
    return [*lines, ""]


def cka_table(doc: dict) -> list[str]:
    c = doc.get("cka")
    if not c:
        return []
    return [
        "### CKA: minibatch CKA of every layer pair, ours vs torch-cka",
        "",
        "| device | layers | samples | ours s | ours float64 s | torch-cka s | speed-up "
        "| max diff vs float64 | max diff vs torch-cka |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {c['device_name']} | {c['layers']} | {c['samples']:,} | {c['ours_s']:.3f} | "
        f"{c['ours_float64_s']:.3f} | {c['torch_cka_s']:.3f} | {c['speedup']:.1f}× | "
        f"{c['max_diff_vs_float64']:.1e} | {c['max_diff_vs_torch_cka']:.1e} |",
        "",
    ]


def job_table(doc: dict) -> list[str]:
    j = doc.get("job")
    if not j:
        return []
    lines = [
        "### The app's job manager on the device",
        "",
        f"`JobManager(store_dir=tmp).submit(config)`: split-mnist5k, class-IL, naive, "
        f"{j['config']['train']['epochs']} epoch(s) a task; {j['workers']} worker(s), runs in "
        f"{'their own processes' if j['in_processes'] else 'threads'}.",
        "",
        "| submit | state | from the store | first row s | done s | device | ACC |",
        "|---|---|---|---|---|---|---|",
    ]
    labels = {
        "cold": "first (starts the job process server)",
        "resubmit": "same config again",
        "warm": "new seed, server running",
    }
    for key, label in labels.items():
        r = j.get(key)
        if r:
            lines.append(
                f"| {label} | {r['state']} | {'yes' if r['cached'] else 'no'} | "
                f"{fmt(r['first_row_s'])} | {fmt(r['total_s'])} | {r['device']} | {fmt(r['acc'], '.3f')} |"
            )
    return [*lines, ""]


def tests_table(doc: dict) -> list[str]:
    t = doc.get("tests")
    if not t:
        return []
    if "error" in t:
        return ["### CUDA tests", "", f"no result: {t['error']}", ""]
    lines = [
        "### CUDA tests",
        "",
        f"{t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped "
        "(tests/test_cuda_*.py and tests/test_cka.py -k cuda).",
        "",
    ]
    for n in t.get("not_passed", []):
        lines.append(f"- {n['outcome']}: `{n['test']}` — {n['reason']}")
    return [*lines, ""] if t.get("not_passed") else lines


def render(doc: dict) -> str:
    """The GPU section: heading, machine, reach, steps, then each step's figures."""
    parts = [HEADING, "", MARK, "", *header(doc), *reach_table(doc), *steps_table(doc)]
    parts += [*train_table(doc), *cka_table(doc), *job_table(doc), *tests_table(doc)]
    return "\n".join(parts).rstrip() + "\n"


def replace_section(text: str, section: str) -> str:
    """``text`` with its GPU section (heading to end of file) replaced by ``section``."""
    lines = text.splitlines()
    if HEADING in lines:
        lines = lines[: lines.index(HEADING)]
    return "\n".join(lines).rstrip() + "\n\n" + section


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", help="gpu_results.json")
    ap.add_argument("--into", metavar="MARKDOWN", help="replace that file's GPU section")
    args = ap.parse_args()
    section = render(json.loads(Path(args.results).read_text()))
    if args.into:
        target = Path(args.into)
        target.write_text(replace_section(target.read_text(), section))
        print(f"GPU section of {target} replaced", file=sys.stderr)
    else:
        print(section, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
