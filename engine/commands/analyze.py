"""`python -m engine analyze KIND …`: representation experiments and views, memoized.

Experiments (each trains what it needs, memoized by the canonical config):
  tunnel, erosion, repforget, substitution, temperature

Views (cka, rank, probes), three sources:
  --key KEY            a stored continual run's recorded activations (no training);
  --run                a continual run described by --benchmark/--set (scenario=…, strategy=…,
                       any run setting), run or fetched with activations recorded on --record
                       test images after every task; then the view over tasks;
  neither              the tunnel experiment (--set tunnel settings), and its section.

Prints a short table on stdout and a progress bar on stderr; ``--json PATH`` ('-' = stdout)
writes the whole result. Bad input exits 2 with one line naming the field.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

from engine import kinds
from engine.analysis import recorded
from engine.commands import check_writable, write_json
from engine.commands.run import benchmark_name, waiting_line
from engine.config import BENCHMARKS
from engine.errors import ConfigError, DataUnavailable
from engine.executor import execute
from engine.kinds import repforget
from engine.kinds.base import clean
from engine.store import Store

EXPERIMENTS = ("tunnel", "erosion", "repforget", "substitution", "temperature")
VIEWS = ("cka", "rank", "probes")


def _settings_help() -> str:
    lines = [
        "experiment settings for --set NAME=VALUE (besides every data/model/train setting of `run`):"
    ]
    for kind in EXPERIMENTS:
        cls = kinds.spec_class(kind)
        own = [n for n in cls.model_fields if n not in ("data", "model", "train")]
        lines.append(f"  {kind}: {', '.join(own)}")
    return "\n".join(lines)


def add_parser(subs) -> None:
    import argparse

    p = subs.add_parser(
        "analyze",
        help="representation experiments: tunnel, erosion, repforget, substitution, temperature; views cka/rank/probes",
        description=__doc__,
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", choices=EXPERIMENTS + VIEWS)
    p.add_argument(
        "--benchmark",
        type=benchmark_name,
        metavar="BENCHMARK",
        help=f"dataset: {', '.join(BENCHMARKS)} or folder:PATH (default: the experiment's)",
    )
    p.add_argument("--epochs", type=int, help="training epochs (per task for sequences)")
    p.add_argument("--seed", type=int, help="seed of initialisation and shuffling")
    p.add_argument(
        "--device", choices=("auto", "cpu", "cuda", "mps"), help="where to train (default auto)"
    )
    p.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="any setting (see below)"
    )
    p.add_argument("--key", help="cka/rank/probes: a stored run's key (its recorded activations)")
    p.add_argument(
        "--run",
        action="store_true",
        help="cka/rank/probes: on a continual run described by the flags",
    )
    p.add_argument(
        "--record",
        type=int,
        default=500,
        help="--run: test images recorded after every task (default 500)",
    )
    p.add_argument("--json", metavar="PATH", help="write the result as JSON ('-' = stdout)")
    p.add_argument("--no-cache", action="store_true", help="recompute and do not store")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def _common(args) -> list[str]:
    """The shortcut flags as --set items (so one code path validates everything)."""
    items = []
    if args.benchmark:
        items.append(f"data.benchmark={args.benchmark}")
    if args.epochs is not None:
        items.append(f"train.epochs={args.epochs}")
    if args.seed is not None:
        items.append(f"train.seed={args.seed}")
    if args.device:
        items.append(f"train.device={args.device}")
    return items


class Bar:
    """tqdm on stderr driven by the experiment's events."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.bar, self.done = quiet, None, 0

    def __call__(self, event: dict) -> None:
        kind = event["type"]
        if kind == "waiting":  # said even with --quiet: otherwise the command looks hung
            print(waiting_line(event), file=sys.stderr)
            return
        if self.quiet:
            return
        if kind == "start" and self.bar is None:
            self.bar = tqdm(
                total=event.get("total_steps", 0),
                unit="step",
                file=sys.stderr,
                desc="training",
                leave=False,
            )
        elif kind == "progress" and self.bar is not None:
            if event.get("stage"):
                self.bar.set_description(str(event["stage"]))
            step = event.get("global_step", self.done)
            self.bar.update(max(0, step - self.done))
            self.done = max(self.done, step)
        elif kind in ("done", "cancelled") and self.bar is not None:
            self.bar.close()


def _fmt(v) -> str:
    if v is None:
        return "  –  "
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _row(name: str, values) -> str:
    return f"{name:<14}" + " ".join(f"{_fmt(v):>6}" for v in values)


def print_result(kind: str, r: dict) -> None:
    """A few lines a person can read; the JSON has everything."""
    head = f"{kind} {r.get('key', '')}  ({'cached' if r.get('cached') else 'computed'})"
    print(head)
    if r.get("status") not in (None, "done"):
        print(f"status {r['status']}: {r.get('message', '')}")
    layers = r.get("layers") or []
    if layers and kind != "substitution":  # substitution's columns are x = 0…n, printed below
        print(_row("layer", range(1, len(layers) + 1)))
    if kind == "tunnel":
        if "rank" in r:
            print(_row("rank", r["rank"]))
            print(_row("probe (ID)", r["probe"]["test_acc"]))
            if r.get("ood"):
                print(_row(f"probe ({r['ood']['name']})", r["ood"]["acc"]))
        m = r.get("metrics", {})
        print(
            f"model acc {_fmt(m.get('acc'))}  tunnel start 95% layer {m.get('tunnel_start_95')}  "
            f"98% layer {m.get('tunnel_start_98')}  κ {_fmt(m.get('kappa'))}  ρ {_fmt(m.get('rho'))}"
        )
    elif kind == "temperature":
        for row in r["table"]:
            print(_row(f"rank T={row['temperature']:g}", row["rank"] or []))
        for row in r["table"]:
            print(_row(f"probe T={row['temperature']:g}", row["probe"] or []))
        print(f"{'T':>8} {'acc':>6} {'κ':>6} {'ρ':>6} {'‖logits‖':>9}")
        for row in r["table"]:
            print(
                f"{row['temperature']:>8g} {_fmt(row['acc']):>6} {_fmt(row['kappa']):>6} {_fmt(row['rho']):>6} "
                f"{_fmt(row['logits_norm_end']):>9}"
            )
    elif kind == "erosion":
        print(_row("rank before", r["before"]["rank"]))
        print(_row("rank after", r["after"]["rank"]))
        print(_row("probe before", r["before"]["probe"]["test_acc"]))
        print(_row("probe after", r["after"]["probe"]["test_acc"]))
        print(_row("CKA diagonal", r["cka_diagonal"]))
        print(
            f"clean acc {r['acc_before']:.3f} → {r['acc_after']:.3f}; with squares "
            f"{r['patched_acc_before']:.3f} → {r['patched_acc_after']:.3f}"
        )
    elif kind == "substitution":
        print(_row("x", r["x"]))
        for name in ("m1_bottom", "m2_bottom"):
            for t in ("task1", "task2"):
                print(_row(f"{name[:2].upper()}^1:x {t}", r[name][t]))
        for row in r["table"]:
            print(f"{row['name']:<14} task1 {_fmt(row['task1'])}  task2 {_fmt(row['task2'])}")
    elif kind == "repforget":
        print(repforget.table(r))
    elif kind == "rank":
        if "tasks" in r:
            for t, row in enumerate(r["rank"]):
                print(_row(f"after task {t + 1}", row))
        else:
            print(_row("rank", r["rank"]))
    elif kind == "probes":
        if "tasks" in r:
            for t, row in enumerate(r["test_acc"]):
                print(_row(f"after task {t + 1}", row))
        else:
            print(_row("probe (ID)", r["probe"]["test_acc"]))
            if r.get("ood"):
                print(_row("probe (OOD)", r["ood"]["acc"]))
    elif kind == "cka":
        matrix = r.get("layer_by_layer", r.get("cka"))
        for i, row in enumerate(matrix):
            print(_row(f"layer {i + 1}", row))


def _view_from_tunnel(kind: str, r: dict) -> dict:
    keep = {
        "rank": ("rank", "input_rank"),
        "cka": ("cka",),
        "probes": ("probe", "ood", "tunnel_start", "kappa", "rho"),
    }[kind]
    return {
        "source": "tunnel",
        "key": r["key"],
        "cached": r["cached"],
        "layers": r.get("layers"),
        **{k: r.get(k) for k in keep},
    }


def main(args) -> int:
    if args.json:
        check_writable(args.json)
    bar = Bar(args.quiet)
    store = Store()
    try:
        if args.kind in VIEWS and (args.key or args.run):
            result = _recorded_view(args, store, bar)
        else:
            if args.key or args.run:
                raise ConfigError(
                    f"--key/--run: only the views {', '.join(VIEWS)} read a run's recordings"
                )
            kind = args.kind if args.kind in EXPERIMENTS else "tunnel"
            raw = kinds.apply_settings(kind, {}, _common(args) + args.set)
            kinds.prepare(kind, raw)  # bad input exits 2 here, before anything trains
            result = execute(kind, raw, on_event=bar, store=store, use_cache=not args.no_cache)
            if args.kind in VIEWS:
                result = _view_from_tunnel(args.kind, result)
    except DataUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except ValueError as err:  # bad input caught by an analysis function: one line, exit 2
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(str(err)) from None
    finally:
        if bar.bar is not None:
            bar.bar.close()
    print_result(args.kind, result)
    if args.json:
        write_json(args.json, result)
    return 0


def _recorded_view(args, store, bar) -> dict:
    if args.key and args.run:
        raise ConfigError("--key/--run: give one of them, not both")
    if args.run:
        raw = kinds.apply_settings("record", {"n": args.record}, _common(args) + args.set)
        kinds.prepare("record", raw)  # bad input exits 2 here, before anything trains
        key = execute("record", raw, on_event=bar, store=store, use_cache=not args.no_cache)["key"]
        cached = False
    else:
        key, cached = args.key, True
    recs = recorded.recordings(store, key)
    if args.kind == "rank":
        body = recorded.rank_view(recs)
    elif args.kind == "cka":
        body = recorded.cka_view(recs)
    else:
        body = recorded.probes_view(recs)
    return {"source": "recordings", "key": key, "cached": cached, **clean(body)}
