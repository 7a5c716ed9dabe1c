"""Sweeps: many computations of one kind, the cached ones skipped, the rest run through joblib.

A sweep spec (a YAML file, see docs/sweeps.md) names a ``kind`` (a continual ``run`` by default;
``tunnel``, ``temperature`` … any kind of engine.kinds) and expands into a list of raw specs:
``base`` (one raw spec) combined with every ``list`` entry and every point of the ``grid`` (a
cartesian product), minus the ``exclude`` matches. The grid is counted before it is expanded
(a limit refuses a grid of millions before any work), and :func:`expand` validates every spec
before anything runs, so a typo in the 40th config fails at once with one line naming it.

:func:`run_sweep` then looks every config up in the driver's store, and sends the missing
ones to joblib: local worker processes (loky) by default, or a Dask distributed cluster
through joblib's Dask backend. Workers compute without any store (``engine.executor.execute``
with ``use_cache=False``) and return the result; only the driver writes, as each result arrives,
so a sweep that is interrupted and started again runs only what is still missing, and the
store never sees two writers from two machines. A config that fails (data missing, diverged,
an error) is reported, not fatal; a worker process that dies has its configs run again.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import shutil
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from engine import kinds
from engine.config import ConfigError, apply_overrides, config_key, field_names, resolve, validate
from engine.executor import execute
from engine.store import Store
from engine.store_merge import merge
from engine.strategies import REGISTRY, STRATEGY_NAMES

SPEC_KEYS = (
    "name",
    "description",
    "kind",
    "base",
    "grid",
    "list",
    "exclude",
    "skip_unsupported",
)
MAX_CONFIGS = 10_000  # the CLI's default limit on a grid (--max-configs raises it)
BACKENDS = ("loky", "dask")
SUMMARY_METRICS = ("acc", "bwt", "forgetting")

EventFn = Callable[[dict], None]


class SweepError(RuntimeError):
    """The sweep cannot run at all (no scheduler, no workers): one line, not a config's fault."""


# ---- the spec grammar -------------------------------------------------------------------------


SPECS_DIR = Path(__file__).resolve().parents[1] / "examples" / "sweeps"


def shipped_specs() -> dict[str, Path]:
    """The sweep specs that come with the project (examples/sweeps), by name (the file stem):
    the only ones a hosted app offers, since visitors give no file-system paths."""
    return {p.stem: p for p in sorted(SPECS_DIR.glob("*.yaml"))}


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that names a key twice (YAML would keep the last
    silently, so a grid could lose half its values without a word)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_spec(text: str, name: str = "sweep file") -> dict:
    """A sweep spec from YAML text; bad YAML is a one-line ConfigError naming line and column."""
    if not text.strip():
        raise ConfigError(f"sweep: {name} is empty; expected a mapping with a base and a grid")
    try:
        spec = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"sweep: {name} is not valid YAML: {problem}{where}") from None
    if spec is None:  # comments only
        raise ConfigError(f"sweep: {name} is empty; expected a mapping with a base and a grid")
    return spec


def load_spec(path: str | os.PathLike) -> dict:
    """Read a sweep spec from a YAML file; a missing file or bad YAML is a one-line ConfigError."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"sweep: cannot read {str(path)!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"sweep: {path.name} is not UTF-8 text (a YAML file is)") from None
    return parse_spec(text, path.name)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _flatten(node: Any, where: str, prefix: str = "") -> dict[str, Any]:
    """{'train': {'lr': 0.1}, 'seed': 1} → {'train.lr': 0.1, 'seed': 1} (names for apply_overrides)."""
    if not isinstance(node, dict):
        raise ConfigError(f"{where}: expected a mapping of setting names to values, got {node!r}")
    flat: dict[str, Any] = {}
    for name, value in node.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(_flatten(value, where, f"{path}."))
        elif _scalar(value):
            flat[path] = value
        else:
            raise ConfigError(f"{where}: {path}: expected one value, got {value!r}")
    return flat


def leaves(config: dict, prefix: str = "") -> dict[str, Any]:
    """A canonical config as {dotted path: value} (what the summary and labels group by)."""
    flat: dict[str, Any] = {}
    for name, value in config.items():
        if isinstance(value, dict):
            flat.update(leaves(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _setting(name: str, value: Any) -> str:
    """A typed YAML value as the `name=value` text apply_overrides parses back to the same value."""
    if value is None:
        return f"{name}=none"
    if isinstance(value, bool):
        return f"{name}={'true' if value else 'false'}"
    if isinstance(value, float):
        return f"{name}={value!r}"
    return f"{name}={value}"


def spec_kind(spec: dict) -> str:
    """The kind a sweep spec computes (``run`` when it names none)."""
    kind = spec.get("kind", "run") if isinstance(spec, dict) else "run"
    if not isinstance(kind, str) or kind not in kinds.names():
        raise ConfigError(
            f"kind: {kind!r} is not a kind of computation; allowed: {', '.join(kinds.names())}"
        )
    return kind


def _overrides(kind: str, raw: dict, flat: dict[str, Any]) -> dict:
    items = [_setting(k, v) for k, v in flat.items()]
    return apply_overrides(raw, items) if kind == "run" else kinds.apply_settings(kind, raw, items)


def _describe(flat: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in flat.items())


def _excluded(kind: str, spec, raw: dict, patterns: list[dict[str, Any]]) -> bool:
    """Does a validated spec match every setting of one of the `exclude` patterns?"""
    names = kinds.setting_names(kind, raw)
    dumped = spec.model_dump(mode="json")
    for pattern in patterns:
        for name, value in pattern.items():
            node: Any = dumped
            for part in names.get(name, "?").split("."):
                node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
            if node is _MISSING or node != value:
                break
        else:
            return True
    return False


_MISSING = object()


def _unsupported(raw: dict) -> bool:
    """The config's strategy refuses its scenario (the validator would say why)."""
    name = raw.get("strategy", {}).get("name", "naive")
    scenario = raw.get("scenario", "class")
    return name in REGISTRY and scenario not in REGISTRY[name][0].scenarios


def count(spec: dict) -> int:
    """How many configs a spec describes (grid × list), computed without expanding it."""
    grid = spec.get("grid") or {}
    entries = spec.get("list")
    n_entries = len(entries) if isinstance(entries, list) and entries else 1
    sizes = [len(v) for v in grid.values() if isinstance(v, list)] if isinstance(grid, dict) else []
    return n_entries * math.prod(sizes)


def expand(spec: dict, max_configs: int | None = None) -> list[dict]:
    """Every raw config the spec describes, in order, each validated (ConfigError names it).
    With ``max_configs``, a spec whose grid × list holds more is refused before expanding (the
    app's limit: a visitor's upload must not make the server validate millions of configs).

    Order: list entries outermost, then the grid keys as written, the last varying fastest.
    Duplicates are kept here (run_sweep runs each distinct config once).
    """
    if not isinstance(spec, dict):
        raise ConfigError(
            f"sweep: expected a mapping with keys {', '.join(SPEC_KEYS)}, got {spec!r}"
        )
    unknown = [k for k in spec if k not in SPEC_KEYS]
    if unknown:
        raise ConfigError(f"sweep: unknown key {unknown[0]!r}; allowed: {', '.join(SPEC_KEYS)}")
    kind = spec_kind(spec)

    try:
        base = _overrides(kind, {}, _flatten(spec.get("base") or {}, "base"))
    except ConfigError as err:
        raise ConfigError(f"base: {str(err).removeprefix('--set: ')}") from None
    grid = spec.get("grid") or {}
    if not isinstance(grid, dict):
        raise ConfigError(
            f"grid: expected a mapping of setting names to lists of values, got {grid!r}"
        )
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{name}: expected a non-empty list of values, got {values!r}")
        bad = [v for v in values if not _scalar(v)]
        if bad:
            raise ConfigError(f"grid.{name}: every value must be a single value, got {bad[0]!r}")
    entries = spec.get("list")
    if entries is None:
        entries = [{}]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"list: expected a non-empty list of mappings, got {entries!r}")
    flat_entries = [_flatten(e, f"list[{i}]") for i, e in enumerate(entries)]
    excludes = spec.get("exclude") or []
    if not isinstance(excludes, list):
        raise ConfigError(f"exclude: expected a list of mappings, got {excludes!r}")
    flat_excludes = [_flatten(e, f"exclude[{i}]") for i, e in enumerate(excludes)]
    if kind == "run":
        known = {n for strategy in STRATEGY_NAMES for n in field_names(strategy)}
    else:
        known = set(kinds.setting_names(kind))
    for i, pattern in enumerate(flat_excludes):
        for name in pattern:
            if name not in known:
                raise ConfigError(f"exclude[{i}]: unknown setting {name!r}")
    skip_unsupported = spec.get("skip_unsupported", False)
    if not isinstance(skip_unsupported, bool):
        raise ConfigError(f"skip_unsupported: expected true or false, got {skip_unsupported!r}")

    size = count(spec)
    if max_configs is not None and size > max_configs:
        raise ConfigError(
            f"sweep: grid × list makes {size:,} configs, more than the {max_configs:,} allowed "
            "here (`python -m engine sweep FILE --max-configs N` raises the limit)"
        )
    configs = []
    names = list(grid)
    for i, entry in enumerate(flat_entries):
        clash = [n for n in entry if n in grid]
        if clash:
            raise ConfigError(f"list[{i}]: {clash[0]} is also a grid key; set it in one place")
        for values in itertools.product(*(grid[n] for n in names)):
            point = dict(zip(names, values, strict=True))
            where = ([f"list[{i}]"] if "list" in spec else []) + (
                [_describe(point)] if point else []
            )
            label = f"sweep config {len(configs) + 1}" + (f" ({', '.join(where)})" if where else "")
            flat = {**entry, **point}
            if kind == "run":
                for name in ("strategy", "strategy.name"):
                    if flat.get(name) == base["strategy"]["name"]:  # keeps base's settings
                        del flat[name]
            try:
                raw = _overrides(kind, base, flat)
                if kind == "run" and skip_unsupported and _unsupported(raw):
                    continue
                parsed = validate(raw) if kind == "run" else kinds.parse(kind, raw)
                if _excluded(kind, parsed, raw, flat_excludes):
                    continue
                if kind == "run":  # "cpu": expansion checks the settings, not this machine
                    resolve(parsed, device="cpu")
                else:
                    kinds.canonical(kind, parsed)
            except ConfigError as err:
                raise ConfigError(f"{label}: {str(err).removeprefix('--set: ')}") from None
            configs.append(raw)
    if not configs:
        raise ConfigError("sweep: the spec expands to no configs (everything excluded?)")
    return configs


# ---- one config on a worker -------------------------------------------------------------------

# token → (slot, open lock file): a worker process keeps its slot (its GPU) for its lifetime.
_SLOTS: dict[str, tuple[int, Any]] = {}


def claim_slot(token: str, n: int) -> int:
    """A slot in 0..n-1 that no other live process of sweep `token` holds.

    An flock on a file per slot: the kernel drops it when the process dies, so a replacement
    worker takes over the slot (the GPU) of the one that died.
    """
    import fcntl

    if token in _SLOTS:
        return _SLOTS[token][0]
    lock_dir = Path(tempfile.gettempdir()) / f"forget-sweep-{token}"
    lock_dir.mkdir(exist_ok=True)
    for slot in range(n):
        fh = open(
            lock_dir / f"{slot}.lock", "w"
        )  # held open: the lock lives as long as the process
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        _SLOTS[token] = (slot, fh)
        return slot
    return os.getpid() % n  # more processes than slots: spread them anyway


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """FORGET_THREADS=n while one config runs (the runner sets torch's threads from it)."""
    if n is None:
        yield
        return
    old = os.environ.get("FORGET_THREADS")
    os.environ["FORGET_THREADS"] = str(n)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("FORGET_THREADS", None)
        else:
            os.environ["FORGET_THREADS"] = old


def _dask_threads() -> int:
    """Threads for a config on a Dask worker: $FORGET_THREADS, else the $OMP_NUM_THREADS the Dask
    nanny sets (1 by default: one thread per task slot), else the cores shared by its slots."""
    for var in ("FORGET_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit() and int(os.environ[var]) > 0:
            return int(os.environ[var])
    try:
        from distributed import get_worker

        slots = get_worker().state.nthreads
    except (ImportError, ValueError):
        slots = 1
    return max(1, (os.cpu_count() or 1) // slots)


def compute(
    config: dict,
    key: str,
    threads: int | str | None = None,
    gpus: tuple[str, int, int] | None = None,
    kind: str = "run",
) -> dict:
    """Run one canonical spec of ``kind`` in this process, without any store, and return what
    the driver stores. Never raises for a failing config: the failure comes back as data.

    threads: CPU threads for this config (None: the runner's own choice; "dask": ask the worker).
    gpus: (sweep token, number of GPUs, number of processes): pins this process to one GPU, so
    the processes of a sweep take the GPUs round-robin.
    """
    t0 = time.perf_counter()
    out = {
        "key": key,
        "status": "failed",
        "result": None,
        "error": "",
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    try:
        if threads == "dask":
            threads = _dask_threads()
        if gpus is not None and _device(config) == "cuda":
            token, n_gpus, n_procs = gpus
            torch.cuda.set_device(claim_slot(token, n_procs) % n_gpus)
        with _threads(threads):
            result = execute(kind, config, store=None, use_cache=False)
        result.pop("cached", None)
        if result["key"] != key:
            out["error"] = (
                f"the worker's engine gives key {result['key']}, the driver's {key}: "
                "workers need the same code and packages as the driver"
            )
        else:
            out.update(status=result["status"], result=result, error=result.get("message", ""))
    except Exception as err:  # reported per config; the sweep goes on
        out["error"] = _one_line(err)
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


# ---- the sweep --------------------------------------------------------------------------------


def _device(config: dict) -> str | None:
    return (config.get("train") or {}).get("device")


@dataclass
class Entry:
    """One distinct config of a sweep and what became of it."""

    index: int  # position of its first occurrence in the expansion
    key: str
    config: dict  # canonical (resolved) config
    kind: str = "run"
    status: str = "pending"  # pending | done | diverged | failed
    cached: bool = False
    result: dict | None = None  # Result.to_dict() (done, diverged)
    error: str = ""
    worker: str = ""  # host:pid that computed it
    seconds: float = 0.0

    @property
    def metrics(self) -> dict:
        return (self.result or {}).get("metrics") or {}


@dataclass
class SweepResult:
    entries: list[Entry]
    kind: str = "run"
    duplicates: int = 0  # configs of the expansion that repeat an earlier one
    backend: str = "loky"
    n_jobs: int = 1
    wall_s: float = 0.0
    retried: int = 0  # rounds restarted after a worker was lost
    extra: dict = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """cached (any status), done / failed (computed by this sweep: failed includes diverged)."""
        c = {"total": len(self.entries), "cached": 0, "done": 0, "failed": 0, "pending": 0}
        for e in self.entries:
            if e.cached:
                c["cached"] += 1
            elif e.status == "pending":
                c["pending"] += 1
            else:
                c["done" if e.status == "done" else "failed"] += 1
        return c

    def problems(self) -> list[Entry]:
        """Entries without a clean result: failed, diverged (cached or not), never run."""
        return [e for e in self.entries if e.status != "done"]

    def varying(self) -> list[str]:
        """Dotted config fields whose value differs between entries."""
        flats = [leaves(e.config) for e in self.entries]
        paths = list(dict.fromkeys(p for f in flats for p in f))
        return [p for p in paths if len({json.dumps(f.get(p)) for f in flats}) > 1]

    def factors(self) -> list[str]:
        """The varying fields that say what differs, seed aside: a field that the others
        determine is dropped (checked from the last to the first), so a sweep over strategies
        shows ``strategy.name``, not also each strategy's own λ, k, α … that come with it, and
        a benchmark's preset lr and batch size go with ``data.benchmark``."""
        flats = [leaves(e.config) for e in self.entries]
        kept = [p for p in self.varying() if p != "train.seed"]
        for path in reversed(list(kept)):
            others = [p for p in kept if p != path]
            seen: dict[str, str] = {}
            determined = True
            for f in flats:
                group, value = json.dumps([f.get(p) for p in others]), json.dumps(f.get(path))
                if seen.setdefault(group, value) != value:
                    determined = False
                    break
            if determined and others:
                kept.remove(path)
        return kept

    def metric_names(self) -> tuple[str, ...]:
        """What the summary averages: ACC, BWT and forgetting for runs; a kind's scalar
        headline numbers otherwise."""
        if self.kind == "run":
            return SUMMARY_METRICS
        names: dict[str, None] = {}
        for e in self.entries:
            for name, v in e.metrics.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    names.setdefault(name)
        return tuple(names)

    def summary(self) -> list[dict]:
        """One row per config up to the seed: the factors (see :meth:`factors`), n (seeds with
        metrics), failed, and mean ± sample std of each metric (:meth:`metric_names`)."""
        by = self.factors()
        groups: dict[str, list[Entry]] = {}
        for e in self.entries:
            flat = leaves(e.config)
            groups.setdefault(json.dumps([flat.get(p) for p in by]), []).append(e)
        rows = []
        for label, members in groups.items():
            row = dict(zip(by, json.loads(label), strict=True))
            ok = [e.metrics for e in members if e.metrics]
            row["n"] = len(ok)
            row["failed"] = len(members) - len(ok)
            for m in self.metric_names():
                values = [
                    x[m] for x in ok if isinstance(x.get(m), int | float) and math.isfinite(x[m])
                ]
                row[f"{m}_mean"] = statistics.fmean(values) if values else None
                row[f"{m}_std"] = statistics.stdev(values) if len(values) > 1 else None
            rows.append(row)
        return rows

    def summary_markdown(self) -> str:
        rows = self.summary()
        if not rows:
            return ""
        fields = [k for k in rows[0] if not k.endswith(("_mean", "_std"))]

        def cell(row: dict, m: str) -> str:
            mean, std = row[f"{m}_mean"], row[f"{m}_std"]
            if mean is None:
                return "—"
            return f"{mean:.3f} ± {std:.3f}" if std is not None else f"{mean:.3f}"

        metrics = self.metric_names()
        titles = {"acc": "ACC", "bwt": "BWT", "forgetting": "forgetting"}
        head = fields + [titles.get(m, m) for m in metrics]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rows:
            vals = ["—" if row[f] is None else str(row[f]) for f in fields]
            lines.append("| " + " | ".join(vals + [cell(row, m) for m in metrics]) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The --json document: counts, the summary, and every entry with its R and metrics."""
        return {
            "kind": self.kind,
            "counts": self.counts(),
            "backend": self.backend,
            "n_jobs": self.n_jobs,
            "wall_s": round(self.wall_s, 3),
            "duplicates": self.duplicates,
            "retried": self.retried,
            "summary": self.summary(),
            "entries": [
                {
                    "key": e.key,
                    "status": e.status,
                    "cached": e.cached,
                    "error": e.error,
                    "worker": e.worker,
                    "seconds": e.seconds,
                    "config": e.config,
                    "metrics": e.metrics,
                    "R": (e.result or {}).get("R"),
                }
                for e in self.entries
            ],
        }


def _configs(
    spec_or_configs: Any, max_configs: int | None = None, kind: str = "run"
) -> tuple[str, list[dict]]:
    """(kind, raw specs) of a spec, a spec file, or a list of raw specs of ``kind``."""
    if isinstance(spec_or_configs, str | os.PathLike):
        spec_or_configs = load_spec(spec_or_configs)
    if isinstance(spec_or_configs, dict):
        return spec_kind(spec_or_configs), expand(spec_or_configs, max_configs)
    return kind, list(spec_or_configs)


def _entries(kind: str, raws: list[dict], trust_device: bool) -> tuple[list[Entry], int]:
    """Canonical specs and keys, each distinct one once (ConfigError names the config)."""
    entries: dict[str, Entry] = {}
    for i, raw in enumerate(raws):
        try:
            if kind == "run":
                cfg = validate(raw)
                # A Dask cluster may have GPUs the driver lacks: an explicit device is checked
                # where it runs; "auto" resolves here, so the key says what was asked for.
                device = cfg.train.device if trust_device and cfg.train.device != "auto" else None
                cfg = resolve(cfg, device=device)
                key = config_key(cfg)
            else:
                cfg, key = kinds.prepare(kind, raw)
        except ConfigError as err:
            raise ConfigError(f"sweep config {i + 1}: {err}") from None
        entries.setdefault(
            key, Entry(index=i, key=key, config=cfg.model_dump(mode="json"), kind=kind)
        )
    return list(entries.values()), len(raws) - len(entries)


def _fill_from_store(entries: list[Entry], store) -> None:
    """Mark the entries whose result the store holds as cached, with that result."""
    for e in entries:
        hit = store.get_result(e.key)
        if hit is not None:
            e.status, e.cached, e.result = hit.get("status", "done"), True, hit
            e.error = hit.get("message", "")


def collect(
    spec_or_configs: Any, store=None, max_configs: int | None = None, kind: str = "run"
) -> SweepResult:
    """What the store already holds for a sweep (computes nothing; the rest stays pending)."""
    store = store if store is not None else Store()
    kind, configs = _configs(spec_or_configs, max_configs, kind)
    entries, duplicates = _entries(kind, configs, trust_device=True)
    _fill_from_store(entries, store)
    return SweepResult(entries, kind=kind, duplicates=duplicates, backend="none", n_jobs=0)


def _lost_worker_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning a worker (not a config) failed: its configs are worth another round."""
    from concurrent.futures.process import BrokenProcessPool

    from joblib.externals.loky.process_executor import TerminatedWorkerError

    errors: list[type[BaseException]] = [TerminatedWorkerError, BrokenProcessPool]
    with contextlib.suppress(ImportError):
        from distributed import KilledWorker

        errors.append(KilledWorker)
    return tuple(errors)


@contextlib.contextmanager
def _dask_client(scheduler: Any, n_jobs: int | None) -> Iterator[Any]:
    """A distributed.Client: the one given, one for the address given, or a local cluster."""
    from distributed import Client, LocalCluster

    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler  # a Client the caller owns
        return
    if scheduler:
        from distributed.comm import get_address_host_port, normalize_address

        try:
            get_address_host_port(normalize_address(scheduler))
        except ValueError as err:
            raise ConfigError(f"--scheduler: {err}; expected tcp://HOST:PORT") from None
        try:
            client = Client(scheduler, timeout="20s", set_as_default=False)
        except OSError as err:
            raise SweepError(
                f"cannot reach a Dask scheduler at {scheduler!r}: {_one_line(err)}"
            ) from None
        with client:
            yield client
        return
    cluster = LocalCluster(
        n_workers=n_jobs or os.cpu_count() or 1,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
    )
    with cluster, Client(cluster, set_as_default=False) as client:
        yield client


def _plan_local(
    entries: list[Entry], n_jobs: int | None
) -> tuple[int, int | None, tuple[str, int, int] | None]:
    """(processes, CPU threads per config, GPU pinning) for a local sweep."""
    cuda = any(_device(e.config) == "cuda" for e in entries)
    n_gpus = 0
    if cuda:
        n_gpus = torch.cuda.device_count()
    cores = os.cpu_count() or 1
    if n_jobs is None or n_jobs < 1:
        n_jobs = max(1, n_gpus) if cuda else cores  # one process per GPU, or per core
    n_jobs = max(1, min(n_jobs, len(entries)))
    if n_jobs == 1:
        threads = None  # nothing to share: the runner's own choice
    elif os.environ.get("FORGET_THREADS"):
        threads = max(1, int(os.environ["FORGET_THREADS"]))
    else:
        threads = max(1, cores // n_jobs)  # processes × threads ≤ cores: no oversubscription
    gpus = (uuid.uuid4().hex[:12], n_gpus, n_jobs) if n_gpus > 1 and n_jobs > 1 else None
    return n_jobs, threads, gpus


def run_sweep(
    spec_or_configs: Any,
    backend: str = "loky",
    n_jobs: int | None = None,
    scheduler: Any = None,
    store=None,
    on_event: EventFn | None = None,
    retries: int = 1,
    max_configs: int | None = None,
    kind: str = "run",
) -> SweepResult:
    """Run every config of a sweep that the store lacks; store results as they come back.

    spec_or_configs: a spec dict (see :func:`expand`), a path to a YAML spec, or raw specs of
    ``kind`` (a spec names its own kind).
    backend: "loky" (local processes; n_jobs default: one per GPU when configs use CUDA, else
    one per core) or "dask" (scheduler: an address such as "tcp://10.0.0.5:8786", a
    distributed.Client, or None for a local cluster of n_jobs single-threaded workers).
    retries: further rounds for the configs in flight when a worker process is lost.
    on_event: called with {"type": "start" | "result" | "retry" | "done", "counts": {...}, ...}.
    """
    if backend not in BACKENDS:
        raise ConfigError(
            f"--backend: {backend!r} is not a backend; allowed: {', '.join(BACKENDS)}"
        )
    if scheduler is not None and backend != "dask":
        raise ConfigError("--scheduler: a scheduler address needs --backend dask")
    t0 = time.perf_counter()
    kind, configs = _configs(spec_or_configs, max_configs, kind)
    entries, duplicates = _entries(kind, configs, trust_device=backend == "dask")
    store = store if store is not None else Store()
    _fill_from_store(entries, store)
    todo = [e for e in entries if not e.cached]
    out = SweepResult(entries, kind=kind, duplicates=duplicates, backend=backend, n_jobs=0)
    by_key = {e.key: e for e in todo}

    def emit(kind: str, **extra: Any) -> None:
        if on_event is not None:
            counts = out.counts()
            counts["running"] = min(
                out.n_jobs, counts["pending"]
            )  # in flight: at most one per slot
            on_event({"type": kind, "counts": counts, **extra})

    def receive(payload: dict) -> None:
        e = by_key[payload["key"]]
        e.status, e.error, e.worker, e.seconds = (
            payload["status"],
            payload["error"],
            payload["worker"],
            payload["seconds"],
        )
        if payload["result"] is not None:
            e.result = payload["result"]
            store.put_result(e.key, e.result)  # the driver is the store's only writer
        emit("result", entry=e)

    if todo:
        _execute(todo, out, backend, n_jobs, scheduler, retries, receive, emit)
    else:
        emit("start", total=len(entries), to_run=0, varying=out.varying())
    out.wall_s = time.perf_counter() - t0
    emit("done")
    return out


def _execute(
    todo: list[Entry], out: SweepResult, backend, n_jobs, scheduler, retries, receive, emit
) -> None:
    """Send the missing configs to the workers; a lost worker's configs get `retries` more rounds."""
    from joblib import Parallel, delayed, parallel_config

    with contextlib.ExitStack() as stack:
        if backend == "dask":
            client = stack.enter_context(_dask_client(scheduler, n_jobs))
            stack.enter_context(
                parallel_config(backend="dask", client=client, wait_for_workers_timeout=60)
            )
            threads, gpus, jobs = "dask", None, -1
            out.n_jobs = max(1, sum(client.ncores().values()))
        else:
            jobs, threads, gpus = _plan_local(todo, n_jobs)
            out.n_jobs = jobs
            stack.enter_context(parallel_config(backend="loky", inner_max_num_threads=threads))
            if gpus is not None:
                lock_dir = Path(tempfile.gettempdir()) / f"forget-sweep-{gpus[0]}"
                stack.callback(shutil.rmtree, lock_dir, ignore_errors=True)
        emit("start", total=len(out.entries), to_run=len(todo), varying=out.varying())
        lost = ""
        for attempt in range(retries + 1):
            pending = [e for e in todo if e.status == "pending"]
            if not pending:
                break
            if attempt:
                out.retried += 1
                emit("retry", reason=lost, resubmitted=len(pending))
            # One config per task (they take seconds to hours), results in completion order.
            parallel = Parallel(n_jobs=jobs, batch_size=1, return_as="generator_unordered")
            try:
                for payload in parallel(
                    delayed(compute)(e.config, e.key, threads, gpus, e.kind) for e in pending
                ):
                    receive(payload)
            except _lost_worker_errors() as err:
                lost = _one_line(err)
            except TimeoutError as err:  # joblib's Dask backend found no worker to run on
                raise SweepError(f"the Dask cluster has no workers: {_one_line(err)}") from None
        for e in todo:
            if e.status == "pending":
                e.status, e.error = "failed", f"worker lost {retries + 1} times: {lost}"


# ---- combining stores -------------------------------------------------------------------------


def merge_results(source: str | os.PathLike, store=None) -> dict[str, int]:
    """Copy the finished results of another store directory into ``store`` (default: this one):
    for sweeps run from several drivers, or results computed on another machine. The other
    store is read as raw rows, never unpickled, and every entry is checked (schema, engine
    version, SHA-256) before it is copied (engine.store_merge)."""
    return merge(source, store if store is not None else Store())
