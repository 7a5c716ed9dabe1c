"""Where a report's result comes from (the store or a JSON file), and its validation.

A result is untrusted data: a file anyone may have edited, or a store merged from another
machine. It is parsed as JSON only (never unpickled) and checked here against the shapes the
report draws; a bad one is refused with one line naming the field. Fields the report does not
draw are shown as data (escaped), never interpreted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from engine.config import ConfigError
from engine.store import Store

KEY = re.compile(r"^[0-9a-f]{4,64}$")
MAX_FILE_BYTES = 64 * 2**20  # a 100-task run with dense curves is a few MB
MAX_TASKS = 100  # data.n_tasks allows at most 100
MAX_POINTS = 200_000
MAX_LAYERS = 1000

Num = Annotated[float, Strict()] | None  # JSON numbers only: no strings, no booleans; None = n/a
Vector = Annotated[list[Num], Field(max_length=MAX_POINTS)]
Matrix = Annotated[
    list[Annotated[list[Num], Field(max_length=MAX_POINTS)]], Field(max_length=MAX_POINTS)
]
Text = Annotated[str, Field(max_length=4000)]


class _Model(BaseModel):
    # Unknown fields are kept (a newer engine may add some) and shown as data.
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class Curves(_Model):
    step: Vector = []
    phase: Annotated[list[Annotated[int, Strict()]], Field(max_length=MAX_POINTS)] = []
    acc: Matrix = []
    loss: Vector = []

    @model_validator(mode="after")
    def _aligned(self) -> Curves:
        n = len(self.step)
        for name in ("acc", "phase", "loss"):
            values = getattr(self, name)
            if values and len(values) != n:
                raise ValueError(f"{len(values)} {name} points for {n} steps")
        if self.acc and len({len(row) for row in self.acc}) > 1:
            raise ValueError("every acc point needs one accuracy per task")
        return self


class Result(_Model):
    """What every stored result carries."""

    key: str = Field(pattern=KEY.pattern)
    kind: str = Field("run", pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    config: dict[str, Any]
    status: Annotated[str, Field(max_length=40)] = "done"
    message: Text = ""
    metrics: dict[str, Any] = {}
    timing: dict[str, Num] = {}
    device: Annotated[str, Field(max_length=40)] = ""


class Run(Result):
    """A continual run (engine.runner.Result)."""

    R: Annotated[
        list[Annotated[list[Num], Field(max_length=MAX_TASKS)]], Field(max_length=MAX_TASKS)
    ]
    baseline: Annotated[list[Num], Field(max_length=MAX_TASKS)] = []
    metrics: dict[str, Num] = {}
    curves: Curves = Curves()
    loss_matrix: Annotated[list[list[Num]], Field(max_length=MAX_TASKS)] = []

    @model_validator(mode="after")
    def _square(self) -> Run:
        # The number of tasks: R's width, else (a run that diverged in task 1) the baseline's.
        T = len(self.R[0]) if self.R else len(self.baseline)
        for t, row in enumerate(self.R):
            if len(row) != T:
                raise ValueError(f"R: row {t + 1} has {len(row)} values, row 1 has {T}")
        if len(self.R) > T:
            raise ValueError(f"R: {len(self.R)} rows for {T} tasks")
        if self.baseline and len(self.baseline) != T:
            raise ValueError(f"baseline: {len(self.baseline)} values for {T} tasks")
        if self.curves.acc and T and len(self.curves.acc[0]) != T:
            raise ValueError(f"curves.acc: {len(self.curves.acc[0])} tasks per point, R has {T}")
        return self


class Probe(_Model):
    test_acc: Vector = []
    train_acc: Vector = []


class Ood(_Model):
    name: Annotated[str, Field(max_length=80)] = "OOD"
    note: Text = ""
    acc: Vector = []


class Start(_Model):
    layer: Annotated[int, Strict()]


class Series(_Model):
    step: Vector = []
    value: Vector = []


class Variances(_Model):
    intra: Vector = []
    inter: Vector = []


class Tunnel(Result):
    """The tunnel experiment (engine.kinds.tunnel); a diverged one has only curves."""

    layers: Annotated[list[Annotated[str, Field(max_length=80)]], Field(max_length=MAX_LAYERS)] = []
    widths: Annotated[list[Annotated[int, Strict()]], Field(max_length=MAX_LAYERS)] = []
    rank: Vector = []
    input_rank: Num = None
    probe: Probe = Probe()
    ood: Ood | None = None
    cka: Matrix = []
    variances: Variances = Variances()
    # Keyed by the share of the last layer's probe accuracy: "0.95", "0.98".
    tunnel_start: dict[Annotated[str, Field(pattern=r"^0\.[0-9]{1,4}$")], Start] = {}
    kappa: Num = None
    rho: Num = None
    model_acc: Num = None
    train_acc: Num = None
    logits_norm: Series = Series()
    curves: Curves = Curves()

    @model_validator(mode="after")
    def _per_layer(self) -> Tunnel:
        L = len(self.layers)
        per_layer = {
            "widths": self.widths,
            "rank": self.rank,
            "probe.test_acc": self.probe.test_acc,
            "probe.train_acc": self.probe.train_acc,
            "ood.acc": self.ood.acc if self.ood else [],
            "variances.intra": self.variances.intra,
            "variances.inter": self.variances.inter,
            "cka": self.cka,
        }
        for name, values in per_layer.items():
            if values and len(values) != L:
                raise ValueError(f"{name}: {len(values)} values for {L} layers")
        if any(len(row) != L for row in self.cka):
            raise ValueError(f"cka: every row needs {L} values (one per layer)")
        for share, start in self.tunnel_start.items():
            if not 1 <= start.layer <= L:
                raise ValueError(
                    f"tunnel_start.{share}.layer: {start.layer} is not one of {L} layers"
                )
        return self


MODELS: dict[str, type[Result]] = {"run": Run, "tunnel": Tunnel}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_result(doc: Any, where: str = "result") -> Result:
    """The validated result (a pydantic model of its kind; others get the common fields)."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a JSON object holding one result")
    kind = doc.get("kind", "run")
    model = MODELS.get(kind, Result) if isinstance(kind, str) else Result
    try:
        return model.model_validate(doc)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        loc = loc.lstrip(".")
        msg = first["msg"].removeprefix("Value error, ")
        got = (
            ""
            if first["type"] in ("missing", "value_error")
            else f" (got {_short(first['input'])})"
        )
        raise ConfigError(f"{where}: {loc + ': ' if loc else ''}{msg}{got}") from None


def from_file(path: str | Path) -> Result:
    """A result document (``run --json``, ``analyze … --json``) read from a file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--json: no such file: {str(path)!r}")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ConfigError(
            f"--json: {str(path)!r} is {size / 2**20:.0f} MB; a result is at most "
            f"{MAX_FILE_BYTES // 2**20} MB"
        )
    try:
        doc = json.loads(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"--json: {str(path)!r} is not UTF-8 text") from None
    except RecursionError:
        raise ConfigError(f"--json: {str(path)!r} is nested too deeply for a result") from None
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"--json: {str(path)!r} is not JSON ({err.msg} at line {err.lineno}, column {err.colno})"
        ) from None
    return validate_result(doc, where=f"--json {path}")


def from_store(key: str, store=None) -> Result:
    """The stored result of ``key`` (or of the one stored key it begins)."""
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise ConfigError(
            f"KEY: expected the hexadecimal key of a stored result (4 to 64 characters 0-9a-f), "
            f"got {_short(key)}"
        )
    store = store if store is not None else Store()
    doc = store.get_result(key)
    if doc is None:
        matches = [r["key"] for r in store.list_results() if str(r.get("key", "")).startswith(key)]
        if len(matches) > 1:
            raise ConfigError(
                f"KEY: {key!r} begins {len(matches)} stored keys ({', '.join(matches[:3])}, …); "
                "give more characters"
            )
        doc = store.get_result(matches[0]) if matches else None
    if doc is None:
        raise ConfigError(
            f"KEY: no stored result with key {key!r} in {store.directory} "
            "(FORGET_CACHE_DIR chooses the store; the Runs page lists its keys)"
        )
    return validate_result(doc, where=f"stored result {key}")
