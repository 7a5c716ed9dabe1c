"""`python -m engine run`: one continual-learning experiment, memoized and resumable.

Prints a progress bar on stderr and a short table on stdout; ``--json PATH`` writes the
contract document of ARCHITECTURE.md.
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from engine.commands import check_writable, write_json
from engine.config import (
    BENCHMARKS,
    FOLDER_HELP,
    SCENARIOS,
    DataConfig,
    ModelConfig,
    TrainConfig,
    apply_overrides,
    check_benchmark,
)
from engine.errors import DataUnavailable
from engine.runner import prepare, run
from engine.settings import echo
from engine.strategies import PARAMS_MODELS, STRATEGY_NAMES


def _settings_help() -> str:
    """Every settable field with its range and description (the same text the app shows)."""
    lines = ["settings for --set NAME=VALUE (bare names or section.name):"]
    for section, model in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
        for name, f in model.model_fields.items():
            lines.append(f"  {section}.{name:<20} {_range(f)}  {f.description}")
    for params in PARAMS_MODELS:
        for name, f in params.model_fields.items():
            if name != "name":
                lines.append(
                    f"  strategy.{name:<16} [{params.model_fields['name'].default}] {_range(f)}  {f.description}"
                )
    return "\n".join(lines)


def _range(field) -> str:
    lo = hi = None
    for meta in field.metadata:
        lo = (
            getattr(meta, "ge", None)
            if getattr(meta, "ge", None) is not None
            else getattr(meta, "gt", lo)
        )
        hi = (
            getattr(meta, "le", None)
            if getattr(meta, "le", None) is not None
            else getattr(meta, "lt", hi)
        )
    default = "preset" if field.default is None else field.default
    return f"(default {default}" + (f", {lo}…{hi})" if lo is not None or hi is not None else ")")


def add_parser(subs) -> None:
    p = subs.add_parser(
        "run",
        help="train a strategy on a benchmark and print R",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--benchmark",
        type=benchmark_name,
        default="split-digits",
        metavar="NAME",
        help=f"{', '.join(BENCHMARKS)}, or {FOLDER_HELP} (default split-digits)",
    )
    p.add_argument("--scenario", choices=SCENARIOS, default="class")
    p.add_argument("--strategy", choices=STRATEGY_NAMES, default="naive")
    p.add_argument("--epochs", type=int, help="epochs per task (default: the benchmark's preset)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation and shuffling")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other setting (see below)",
    )
    p.add_argument("--json", metavar="PATH", help="write the result as JSON ('-' = stdout)")
    p.add_argument("--no-cache", action="store_true", help="recompute and do not store")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def benchmark_name(text: str) -> str:
    """--benchmark's value: a catalog name or folder:PATH (argparse's one-line error if not)."""
    try:
        return check_benchmark(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{err} (got {echo(text)})") from None


def config_from_args(args) -> dict:
    """The raw config the flags describe (validated later, in one place)."""
    raw = {
        "scenario": args.scenario,
        "data": {"benchmark": args.benchmark},
        "train": {"seed": args.seed, "device": args.device},
        "strategy": {"name": args.strategy},
    }
    if args.epochs is not None:
        raw["train"]["epochs"] = args.epochs
    return apply_overrides(raw, args.set)


class ProgressBar:
    """tqdm on stderr driven by the runner's events."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.done = 0

    def __call__(self, event: dict) -> None:
        if self.quiet and event["type"] != "waiting":
            return

        kind = event["type"]
        if kind == "waiting":  # said even with --quiet: otherwise the command looks hung
            print(waiting_line(event), file=sys.stderr)
            return
        if kind == "start":
            self.bar = tqdm(
                total=event["total_steps"],
                unit="step",
                file=sys.stderr,
                desc="training",
                leave=False,
            )
        elif kind == "task_start" and self.bar is not None:
            self.bar.set_description(f"task {event['phase'] + 1}")
        elif kind == "progress" and self.bar is not None:
            self.bar.total = event["total_steps"]  # a phase may be longer than planned
            self.bar.update(event["global_step"] - self.done)
            self.done = event["global_step"]
        elif kind == "row" and self.bar is not None:
            self.bar.write(
                f"after task {event['t'] + 1}: " + " ".join(f"{a:.3f}" for a in event["row"]),
                file=sys.stderr,
            )
        elif kind in ("done", "diverged", "cancelled") and self.bar is not None:
            self.bar.close()


def waiting_line(event: dict) -> str:
    """What a CLI says while another process holds the key's lease (it may have died: then its
    lease expires and this one takes over, resuming from its checkpoint)."""
    left = event.get("expires_in")
    when = f" (lease expires in {left:.0f} s)" if left is not None else ""
    return f"waiting for another process's run of this config{when}…"


def print_table(result) -> None:
    T = len(result.R[0]) if result.R else 0
    print(f"key {result.key}  ({'cached' if result.cached else 'computed'} on {result.device})")
    print("R[t,i]   " + " ".join(f"  i={i + 1:<3}" for i in range(T)))
    for t, row in enumerate(result.R):
        print(f"after {t + 1:<3}" + " ".join(f"{a:7.3f}" for a in row))
    if result.metrics:
        m = result.metrics
        fwt = "n/a" if m.get("fwt") is None else f"{m['fwt']:+.3f}"
        print(
            f"ACC {m['acc']:.3f}  learning ACC {m['learning_acc']:.3f}  BWT {m['bwt']:+.3f}  "
            f"FWT {fwt}  forgetting {m['forgetting']:.3f}"
        )
    print(
        f"time {result.timing.get('total_s', 0):.2f} s (train {result.timing.get('train_s', 0):.2f} s)"
    )


def main(args) -> int:
    cfg, _ = prepare(config_from_args(args))  # bad input exits 2 here, before anything runs
    if args.json:
        check_writable(args.json)
    try:
        result = run(cfg, on_event=ProgressBar(args.quiet), use_cache=not args.no_cache)
    except DataUnavailable as err:  # data missing: one line, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return 1
    if result.status == "diverged":
        print(f"diverged: {result.message}", file=sys.stderr)
    print_table(result)
    if args.json:
        write_json(args.json, result.to_json_contract())
    return 3 if result.status == "diverged" else 0
