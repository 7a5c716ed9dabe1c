"""`python -m engine sweep FILE.yaml`: run a grid or list of configs, skipping the cached ones.

Local worker processes by default (joblib/loky), or a Dask cluster (``--backend dask
--scheduler tcp://HOST:8786``). Progress (done / cached / running / failed) on stderr, the
summary table (mean ± std over seeds) on stdout; ``--json PATH`` writes every entry.
Exit status: 0 when every config has a result, 3 when some failed or diverged (the others
are stored), 2 for a bad spec, 1 when the Dask scheduler cannot be reached.
"""

from __future__ import annotations

import sys

from engine.commands import check_writable, write_json
from engine.errors import ConfigError
from engine.sweep import MAX_CONFIGS, SweepError, collect, leaves, load_spec, run_sweep


def add_parser(subs) -> None:
    p = subs.add_parser(
        "sweep", help="run a grid or list of configs (YAML), locally or on a Dask cluster"
    )
    p.add_argument(
        "file", metavar="FILE.yaml", help="sweep spec: base, grid, list, exclude (docs/sweeps.md)"
    )
    add_execution_flags(p, "a spec", "write counts, summary and every entry as JSON ('-' = stdout)")
    p.set_defaults(func=main)


def add_execution_flags(p, what: str, json_help: str) -> None:
    """The flags of running configs through engine.sweep, shared by ``sweep`` and
    ``reproduce``; ``what`` names the thing --max-configs refuses ("a spec")."""
    p.add_argument(
        "--backend", choices=("loky", "dask"), help="local processes (default) or a Dask cluster"
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (implies dask)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="local processes (default: one per GPU, else one per core); "
        "dask without --scheduler: workers of the local cluster",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=1,
        metavar="N",
        help="rounds to rerun configs of a lost worker",
    )
    p.add_argument(
        "--json",
        metavar="PATH",
        help=json_help,
    )
    p.add_argument(
        "--dry-run", action="store_true", help="list the configs and which are cached; run nothing"
    )
    p.add_argument(
        "--max-configs",
        type=int,
        default=MAX_CONFIGS,
        metavar="N",
        help=f"refuse {what} of more configs, counted before expanding it "
        f"(default {MAX_CONFIGS:,})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _label(entry, paths: list[str]) -> str:
    flat = leaves(entry.config)
    return ", ".join(f"{p}={flat.get(p)}" for p in paths) or entry.key


class SweepProgress:
    """tqdm on stderr: one tick per config, done / cached / running / failed in the postfix."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.paths: list[str] = []

    def __call__(self, event: dict) -> None:
        from tqdm import tqdm

        c = event["counts"]
        kind = event["type"]
        if kind == "start":
            self.paths = event["varying"]
            if not self.quiet:
                self.bar = tqdm(
                    total=c["total"],
                    initial=c["cached"],
                    unit="config",
                    file=sys.stderr,
                    desc="sweep",
                    dynamic_ncols=True,
                )
        if self.bar is None:
            return
        self.bar.set_postfix_str(
            f"done={c['done']} cached={c['cached']} running={c['running']} failed={c['failed']}",
            refresh=False,
        )
        if kind == "result":
            e = event["entry"]
            if e.status != "done":
                self.bar.write(f"{e.status}: {_label(e, self.paths)}: {e.error}", file=sys.stderr)
            self.bar.update(1)
        elif kind == "retry":
            self.bar.write(
                f"a worker was lost ({event['reason']}); running its {event['resubmitted']} configs again",
                file=sys.stderr,
            )
        elif kind == "done":
            self.bar.close()
        else:
            self.bar.refresh()


def check_execution_flags(args) -> str:
    """The backend the flags of :func:`add_execution_flags` ask for (ConfigError naming a bad
    flag)."""
    backend = args.backend or ("dask" if args.scheduler else "loky")
    if args.scheduler and backend != "dask":
        raise ConfigError("--scheduler: a scheduler address needs --backend dask")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs: expected a positive number of processes, got {args.jobs}")
    if args.retries < 0:
        raise ConfigError(f"--retries: expected 0 or more, got {args.retries}")
    if args.max_configs < 1:
        raise ConfigError(f"--max-configs: expected a positive number, got {args.max_configs}")
    return backend


def main(args) -> int:
    backend = check_execution_flags(args)
    if args.json:
        check_writable(args.json)  # before the sweep, not after hours of it
    spec = load_spec(args.file)
    if args.dry_run:
        out = collect(spec, max_configs=args.max_configs)
        paths = out.varying()
        for e in out.entries:
            print(f"{'cached' if e.cached else 'to run':>7}  {e.key}  {_label(e, paths)}")
        c = out.counts()
        print(
            f"{c['total']} configs ({out.duplicates} duplicates merged): {c['cached']} cached, {c['pending']} to run"
        )
        return 0
    progress = SweepProgress(args.quiet)
    try:
        out = run_sweep(
            spec,
            backend=backend,
            n_jobs=args.jobs,
            scheduler=args.scheduler,
            on_event=progress,
            retries=args.retries,
            max_configs=args.max_configs,
        )
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    c = out.counts()
    print(out.summary_markdown())
    print(
        f"\n{c['total']} configs: {c['done']} computed, {c['cached']} cached, {c['failed']} failed "
        f"({out.wall_s:.1f} s, {out.backend} × {out.n_jobs})"
    )
    problems = out.problems()
    for e in problems:
        print(
            f"{e.status}{' (cached)' if e.cached else ''}: {_label(e, progress.paths)}: {e.error}",
            file=sys.stderr,
        )
    if args.json:
        write_json(args.json, out.to_dict())
    return 3 if problems else 0
