"""`python -m engine reproduce {list,NAME}`: published tables and figures as runnable entries.

``list`` prints the entries (engine.reproduce). ``NAME`` runs the entry's sweeps — only what
the store lacks, locally (joblib) or on a Dask cluster, with the flags of ``sweep`` — and then
prints the comparison: measured mean ± std over seeds against the published numbers, the
difference, and per group whether the ordering agrees (Spearman's ρ). ``--no-run`` compares
what the store holds without computing anything. Exit status as ``sweep``: 0 when every config
has a result, 3 when some failed, 2 for bad input, 1 when the Dask scheduler cannot be reached.
"""

from __future__ import annotations

import sys
import time

from engine import reproduce
from engine.commands import check_writable, write_json
from engine.commands.sweep import SweepProgress, add_execution_flags, check_execution_flags
from engine.errors import ConfigError
from engine.sweep import SweepError


def add_parser(subs) -> None:
    p = subs.add_parser(
        "reproduce",
        help="published tables and figures: run an entry, compare with the published numbers",
        description=__doc__,
    )
    p.add_argument("target", metavar="{list,NAME}", help="`list`, or the entry to run")
    p.add_argument(
        "--variant", help="protocol variant (default: the entry's first, the offline one)"
    )
    p.add_argument(
        "--seeds", type=int, metavar="N", help="only the protocol's first N seeds (default: all)"
    )
    p.add_argument(
        "--no-run", action="store_true", help="compare what the store holds; compute nothing"
    )
    add_execution_flags(
        p, "an entry", "write the comparison and every entry as JSON ('-' = stdout)"
    )
    p.set_defaults(func=main)


def list_entries(json_path: str | None) -> int:
    rows = []
    for name, module in reproduce.table().items():
        rows.append(
            {
                "name": name,
                "title": module.TITLE,
                "variants": list(reproduce.variants(module)),
                "configs": reproduce.n_configs(module),
                "published": len(module.PUBLISHED),
            }
        )
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['configs']:>3} configs  {r['title']}")
    print("\nRun one: python -m engine reproduce NAME   (see docs/reproduce.md)")
    if json_path:
        write_json(json_path, rows)
    return 0


def main(args) -> int:
    if args.json:
        check_writable(args.json)  # before the work, not after it
    if args.target == "list":
        return list_entries(args.json)
    module = reproduce.entry(args.target)
    backend = check_execution_flags(args)
    size = reproduce.n_configs(module, args.variant, args.seeds)
    if size > args.max_configs:
        raise ConfigError(
            f"reproduce: {module.NAME} has {size:,} configs, more than the {args.max_configs:,} "
            "allowed (--max-configs N raises the limit)"
        )
    t0 = time.perf_counter()
    if args.dry_run or args.no_run:
        results = reproduce.collect(module, variant=args.variant, seeds=args.seeds)
    else:
        progress = SweepProgress(args.quiet)
        try:
            results = reproduce.run(
                module,
                variant=args.variant,
                seeds=args.seeds,
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
    wall = time.perf_counter() - t0
    if args.dry_run:
        for result in results:
            for e in result.entries:
                print(f"{'cached' if e.cached else 'to run':>7}  {e.kind:<11} {e.key}")
        total = sum(r.counts()["total"] for r in results)
        cached = sum(r.counts()["cached"] for r in results)
        print(f"{total} configs: {cached} cached, {total - cached} to run")
        return 0
    comparison = module.compare(results)
    print(f"{module.TITLE}\n\n{module.CITATION}\n")
    print(comparison.markdown())
    counts = {k: sum(r.counts()[k] for r in results) for k in ("total", "done", "cached", "failed")}
    print(
        f"\n{counts['total']} configs: {counts['done']} computed, {counts['cached']} cached, "
        f"{counts['failed']} failed ({wall:.1f} s)"
    )
    print("Sources: " + "; ".join(f"[{k}] {s.where}" for k, s in module.SOURCES.items()))
    problems = [e for r in results for e in r.problems() if not (args.no_run and not e.cached)]
    for e in problems:
        print(f"{e.status}: {e.kind} {e.key}: {e.error}", file=sys.stderr)
    if args.json:
        write_json(
            args.json,
            {
                "entry": module.NAME,
                "title": module.TITLE,
                "citation": module.CITATION,
                "variant": args.variant or reproduce.variants(module)[0],
                "sources": {k: vars(s) for k, s in module.SOURCES.items()},
                "comparison": comparison.to_dict(),
                "wall_s": round(wall, 3),
                "sweeps": [r.to_dict() for r in results],
            },
        )
    return 3 if problems else 0
