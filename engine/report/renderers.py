"""What a report shows for each kind of result: a registry, one function per kind.

A renderer takes the validated result (engine.report.source) and returns the report's title,
a one-line summary and its kind-specific sections; the page adds what every report has (the
reproducing command, the config, the raw JSON). A kind without a renderer gets
:func:`generic`: its metrics, and every matrix and series it holds drawn as they come.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.metrics import forgetting_per_task
from engine.report import source
from engine.report.blocks import (
    Html,
    exact_text,
    figure,
    figures,
    is_number,
    note,
    num,
    pairs,
    seconds,
    section,
    table,
    tiles,
    value_text,
)
from engine.report.svg import Series, number, svg_lines, svg_matrix, svg_r_heatmap

ACC_AXIS = "test accuracy (0–1)"
STEP_AXIS = "training step (minibatches, all tasks)"
LAYER_AXIS = "layer (1 = first hidden layer)"


@dataclass
class Body:
    title: str
    summary: str
    sections: list[Html]


Renderer = Callable[[Any], Body]
RENDERERS: dict[str, Renderer] = {}


def renderer(kind: str) -> Callable[[Renderer], Renderer]:
    """Register the renderer of ``kind`` (a new kind adds one decorated function)."""

    def register(fn: Renderer) -> Renderer:
        RENDERERS[kind] = fn
        return fn

    return register


def render(doc: source.Result) -> Body:
    return RENDERERS.get(doc.kind, generic)(doc)


# ---------------------------------------------------------------------------------- shared


def task_ends(curves: source.Curves) -> list[float]:
    """Training step at which each phase but the last ended (dotted lines in curve charts)."""
    phases, steps = curves.phase, curves.step
    ends = [steps[i] for i in range(len(phases) - 1) if phases[i + 1] != phases[i]]
    return [s for s in ends if s is not None]


def curves_figure(curves: source.Curves, title: str = "Accuracy of every task during training"):
    T = len(curves.acc[0]) if curves.acc else 0
    series = [
        Series(f"task {i + 1}", curves.step, [row[i] for row in curves.acc]) for i in range(T)
    ]
    return figure(
        svg_lines(
            series, STEP_AXIS, ACC_AXIS, title, y_range=(0.0, 1.02), vlines=task_ends(curves)
        ),
        "Test accuracy of each task at every evaluation point; dotted lines mark the end of a "
        "task's training. Hover a point for its value.",
    )


def _cfg(doc: source.Result, section_name: str) -> dict:
    value = doc.config.get(section_name)
    return value if isinstance(value, dict) else {}


def _status(doc: source.Result) -> list[Html]:
    if doc.status == "done":
        return []
    return [note(f"Status: {doc.status}. {doc.message}".strip(), kind="warning")]


def timing_text(timing: dict) -> list[tuple[str, str]]:
    names = {"total_s": "total", "train_s": "training", "eval_s": "evaluation", "setup_s": "setup"}
    return [(f"time, {names.get(k, k.removesuffix('_s'))}", seconds(v)) for k, v in timing.items()]


# ------------------------------------------------------------------------------------- run

RUN_METRICS = (
    ("acc", "ACC", False, "mean accuracy over all tasks after the last one"),
    ("learning_acc", "learning accuracy", False, "mean of R[i,i]: each task right after it"),
    ("bwt", "BWT", True, "backward transfer: mean R[T,i] − R[i,i] (negative = forgetting)"),
    ("fwt", "FWT", True, "forward transfer: mean R[i−1,i] − b_i (before training on task i)"),
    ("forgetting", "forgetting", False, "mean of max_t R[t,i] − R[T,i] over the earlier tasks"),
)


@renderer("run")
def run(doc: source.Run) -> Body:
    data, model, train = _cfg(doc, "data"), _cfg(doc, "model"), _cfg(doc, "train")
    strategy = doc.config.get("strategy") if isinstance(doc.config.get("strategy"), dict) else {}
    name = str(strategy.get("name", "?"))
    scenario = str(doc.config.get("scenario", "?"))
    n_tasks = data.get("n_tasks")
    planned = n_tasks if isinstance(n_tasks, int) and 0 < n_tasks <= source.MAX_TASKS else 0
    # A run that diverged in task 1 has no row of R yet: its tasks are the baseline's, or planned.
    T = len(doc.R[0]) if doc.R else len(doc.baseline) or planned
    items = [
        (k, label, num(doc.metrics.get(k), signed=signed), help_text)
        for k, label, signed, help_text in RUN_METRICS
    ]
    rem = doc.metrics.get("rem")
    if rem is not None:
        items.append(
            ("rem", "REM", f"{num(rem, 1)} %", "mean R[T,i] / R[i,i] over the earlier tasks")
        )
    heat_height = min(900, max(380, 68 + 30 * T))
    figs = [
        figure(
            svg_r_heatmap(doc.R, T, title="Accuracy matrix R[t,i]", height=heat_height),
            "R[t,i]: test accuracy on task i (column) after training task t (row). Hover a cell "
            "for its value; grey rows were not trained.",
        )
    ]
    if doc.curves.step and doc.curves.acc:
        figs.append(curves_figure(doc.curves))
    header = ["", *(f"task {i + 1}" for i in range(T))]
    rows = [[f"after task {t + 1}", *(num(v) for v in row)] for t, row in enumerate(doc.R)]
    if doc.baseline:
        rows.append(["untrained (b_i)", *(num(v) for v in doc.baseline)])
    complete = len(doc.R) == T and T > 1 and all(v is not None for r in doc.R for v in r)
    if complete:
        rows.append(["forgetting", *(num(v) for v in forgetting_per_task(doc.R)), "–"])
    params = {k: v for k, v in strategy.items() if k != "name"}
    facts = [
        ("benchmark", data.get("benchmark")),
        ("tasks (classes per task)", f"{T} ({data.get('split') or 'all classes'})"),
        ("scenario", scenario),
        ("strategy", name + (f" ({value_text(params)})" if params else "")),
        ("model", f"{model.get('arch')}, depth {model.get('depth')}, width {model.get('width')}"),
        (
            "training",
            f"{train.get('optimizer')}, lr {exact_text(train.get('lr'))}, batch "
            f"{train.get('batch_size')}, {train.get('epochs')} epochs per task",
        ),
        ("seed", train.get("seed")),
        ("device", doc.device or train.get("device")),
        ("status", doc.status + (f": {doc.message}" if doc.message else "")),
        *timing_text(doc.timing),
    ]
    return Body(
        title=f"{name} on {data.get('benchmark', '?')}, {scenario}-incremental",
        summary=f"Continual run: {T} tasks, seed {train.get('seed')}, "
        f"ACC {num(doc.metrics.get('acc'))}",
        sections=[
            *_status(doc),
            section("Metrics", tiles(items), id="metrics"),
            section("Figures", figures(figs), id="figures"),
            section(
                "Accuracy matrix R",
                table(header, rows, "R[t,i], b_i and per-task forgetting", class_="matrix"),
                id="r-table",
            ),
            section("Run", pairs(facts), id="run"),
        ],
    )


# ---------------------------------------------------------------------------------- tunnel


@renderer("tunnel")
def tunnel(doc: source.Tunnel) -> Body:
    data, model = _cfg(doc, "data"), _cfg(doc, "model")
    L = len(doc.layers)
    x = list(range(1, L + 1))
    start = doc.tunnel_start.get("0.95")
    shade = (start.layer - 0.5, L + 0.5, "tunnel (from the 95 % start)") if start else None
    items = [
        ("acc", "test accuracy", num(doc.model_acc), "the trained model on its test split"),
        ("train_acc", "train accuracy", num(doc.train_acc), "the trained model on its training split"),
        *(
            (f"tunnel_start_{k[2:]}", f"tunnel start ({float(k):.0%})", f"layer {s.layer} of {L}",
             f"first layer whose probe reaches {float(k):.0%} of the last layer's")
            for k, s in sorted(doc.tunnel_start.items())
        ),
        ("kappa", "κ (compression)", num(doc.kappa), "first layer at η of the best probe ÷ depth"),
        ("rho", "ρ (OOD loss)", num(doc.rho), "OOD probe accuracy lost from its best layer to the last"),
        ("last_rank", "rank, last layer", num(doc.rank[-1] if doc.rank else None, 0),
         f"numerical rank of the representations (input: {num(doc.input_rank, 0)})"),
    ]  # fmt: skip
    figs = []
    if doc.rank:
        figs.append(
            figure(
                svg_lines(
                    [Series("rank", x, doc.rank)],
                    LAYER_AXIS,
                    "numerical rank",
                    "Rank of the representations by layer",
                    x_integer=True,
                    shade=shade,
                ),
                "Numerical rank (σ > rel_tol·σ₁) of each layer's representations of the test subset.",
            )
        )
    probe_lines = []
    if doc.probe.test_acc:
        probe_lines.append(Series("probe (in distribution)", x, doc.probe.test_acc))
    if doc.ood and doc.ood.acc:
        probe_lines.append(Series(f"probe (OOD: {doc.ood.name})", x, doc.ood.acc))
    if probe_lines:
        figs.append(
            figure(
                svg_lines(
                    probe_lines,
                    LAYER_AXIS,
                    f"linear-probe {ACC_AXIS}",
                    "Linear-probe accuracy by layer",
                    y_range=(0.0, 1.02),
                    x_integer=True,
                    shade=shade,
                ),
                "A linear classifier trained on each layer's representations (ID and OOD).",
            )
        )
    if doc.cka:
        figs.append(
            figure(
                svg_matrix(
                    doc.cka, "layer", "layer", "CKA", "CKA between layers", lo=0.0, hi=1.0,
                    height=min(900, max(420, 68 + 34 * L)),
                ),
                "Linear CKA of every pair of layers (1 = the same representation up to rotation "
                "and scale).",
            )
        )  # fmt: skip
    if len(doc.logits_norm.step) > 1:
        figs.append(
            figure(
                svg_lines(
                    [Series("‖logits‖", doc.logits_norm.step, doc.logits_norm.value)],
                    "training step",
                    "mean L2 norm of the logits",
                    "Logits norm during training",
                ),
                "Mean per-sample L2 norm of the raw logits on a fixed test subset.",
            )
        )
    per_layer = []
    columns = [
        ("width", doc.widths, 0),
        ("rank", doc.rank, 0),
        ("probe test", doc.probe.test_acc, 3),
        ("probe train", doc.probe.train_acc, 3),
        (f"OOD probe ({doc.ood.name})" if doc.ood else "OOD probe", doc.ood.acc if doc.ood else [], 3),
        ("intra-class var.", doc.variances.intra, 1),
        ("inter-class var.", doc.variances.inter, 1),
    ]  # fmt: skip
    columns = [c for c in columns if c[1]]
    for i, name in enumerate(doc.layers):
        per_layer.append([f"{i + 1} ({name})", *(num(v[i], d) for _, v, d in columns)])
    arch = f"{model.get('arch', '?')}-{model.get('depth', '?')} width {model.get('width', '?')}"
    sections = [
        *_status(doc),
        section("Metrics", tiles(items), id="metrics"),
        section("Figures", figures(figs), id="figures") if figs else "",
    ]
    if per_layer:
        sections.append(
            section("By layer", table(["layer", *(c[0] for c in columns)], per_layer), id="layers")
        )
    if doc.ood and doc.ood.note:
        sections.append(section("OOD set", note(f"{doc.ood.name}: {doc.ood.note}")))
    facts = [
        ("benchmark", data.get("benchmark")),
        ("model", arch),
        ("classes", doc.config.get("classes") or "all"),
        ("device", doc.device),
        ("status", doc.status + (f": {doc.message}" if doc.message else "")),
        *timing_text(doc.timing),
    ]
    sections.append(section("Experiment", pairs(facts), id="run"))
    return Body(
        title=f"Tunnel: {arch} on {data.get('benchmark', '?')}",
        summary=f"Representation analysis of one trained model, {L} layers",
        sections=[s for s in sections if s],
    )


# ----------------------------------------------------------------------------- temperature


@renderer("temperature")
def temperature(doc: source.Result) -> Body:
    """Tunnels trained at several softmax temperatures: rank and probes by layer per T, and
    the thesis's table (T, accuracy, κ, ρ, logits norm); anything else as :func:`generic`."""
    base = generic(doc)
    table_rows = [r for r in (doc.model_extra or {}).get("table") or [] if isinstance(r, dict)]
    layers = (doc.model_extra or {}).get("layers")
    L = len(layers) if isinstance(layers, list) else 0
    rows = [r for r in table_rows if is_number(r.get("temperature"))]
    if not rows or not L:
        return base
    x = list(range(1, L + 1))
    figs = []
    for field_name, title, y_title, y_range in (
        ("rank", "Rank by layer", "numerical rank", None),
        ("probe", "Probe accuracy by layer (ID)", f"linear-probe {ACC_AXIS}", (0.0, 1.02)),
        ("ood", "Probe accuracy by layer (OOD)", f"OOD probe {ACC_AXIS}", (0.0, 1.02)),
    ):
        lines = [
            Series(f"T = {number(r['temperature'])}", x, r[field_name])
            for r in rows
            if _vector(r.get(field_name)) and len(r[field_name]) == L
        ]
        if lines:
            figs.append(
                figure(
                    svg_lines(
                        lines, LAYER_AXIS, y_title, f"{title}, one line per T",
                        y_range=y_range, x_integer=True,
                    )
                )
            )  # fmt: skip
    summary = table(
        ["T", "test acc", "train acc", "κ", "ρ", "‖logits‖ start", "‖logits‖ end", "status"],
        (
            [
                number(r["temperature"]),
                num(r.get("acc")),
                num(r.get("train_acc")),
                num(r.get("kappa")),
                num(r.get("rho")),
                num(r.get("logits_norm_start"), 1),
                num(r.get("logits_norm_end"), 1),
                value_text(r.get("status")),
            ]
            for r in rows
        ),
        "One tunnel experiment per temperature (the thesis's Tables 6.3.1–6.3.2).",
    )
    data, model = _cfg(doc, "data"), _cfg(doc, "model")
    arch = f"{model.get('arch', '?')}-{model.get('depth', '?')} width {model.get('width', '?')}"
    return Body(
        title=f"Temperature: {arch} on {data.get('benchmark', '?')}",
        summary=f"Training at softmax temperatures {', '.join(number(r['temperature']) for r in rows)}",
        sections=[
            *_status(doc),
            section("By temperature", summary, id="metrics"),
            section("Figures", figures(figs), id="figures"),
            *base.sections[1:],  # the generic figures (each run's CKA, norms …) and tables
        ],
    )


# --------------------------------------------------------------------------------- generic

SKIP = {"key", "kind", "config", "status", "message", "metrics", "timing", "device", "cached"}
X_NAMES = ("step", "x", "iteration", "c", "sigma")
NOT_DRAWN = {"phase"}  # phase numbers of curve points: an index, not a measurement
MAX_FIGURES = 40
MAX_MATRIX = 100


def _vector(v: Any) -> bool:
    return isinstance(v, list) and len(v) >= 2 and all(x is None or is_number(x) for x in v)


def _matrix(v: Any) -> bool:
    return (
        isinstance(v, list)
        and 2 <= len(v) <= MAX_MATRIX
        and all(_vector(r) and len(r) == len(v[0]) for r in v)
        and len(v[0]) <= MAX_MATRIX
        and not all(isinstance(x, int) for r in v for x in r)  # labels (task classes), not values
    )


def _unit(values: Sequence) -> bool:
    return all(x is None or 0.0 <= x <= 1.0 for x in values)


def flatten(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out += flatten(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _curves(node: dict) -> source.Curves | None:
    """The engine's training curves (step, phase, acc), when ``node`` holds them."""
    acc = node.get("acc")
    if not (_vector(node.get("step")) and isinstance(acc, list) and acc):
        return None
    if not all(isinstance(r, list) and all(x is None or is_number(x) for x in r) for r in acc):
        return None
    try:
        return source.Curves.model_validate(node)
    except ValueError:
        return None


def _matrix_figure(name: str, label: str, value: list) -> Html:
    if name == "R" and len(value) == len(value[0]):
        return figure(svg_r_heatmap(value, len(value), title=label), f"{label}: R[t,i]")
    unit = _unit([x for r in value for x in r])
    svg = svg_matrix(
        value, "column", "row", name, label, lo=0.0 if unit else None, hi=1.0 if unit else None
    )
    return figure(svg, f"{label}: {len(value)}×{len(value[0])}")


def drawables(
    node: dict,
    path: str,
    n_layers: int,
    out: list[Html],
    depth: int = 0,
    xs: dict[str, list] | None = None,
) -> None:
    """Figures for what ``node`` holds: training curves, matrices, and series, drawn against
    an x-like sibling or ancestor (``step``, ``x`` …) of their length, else layer or index."""
    if depth > 3 or len(out) >= MAX_FIGURES:
        return
    curves = _curves(node)
    if curves is not None:
        out.append(curves_figure(curves, f"{path.rstrip('.') or 'training'}: accuracy"))
        node = {k: v for k, v in node.items() if k not in ("acc", "phase")}
    xs = {**(xs or {}), **{n: node[n] for n in X_NAMES if _vector(node.get(n))}}
    groups: dict[int, list[tuple[str, list]]] = {}
    for name, value in node.items():
        if (depth == 0 and name in SKIP) or name in xs or name in NOT_DRAWN:
            continue
        label = f"{path}{name}"
        if _matrix(value):
            out.append(_matrix_figure(name, label, value))
        elif _vector(value):
            groups.setdefault(len(value), []).append((label, value))
        elif isinstance(value, dict):
            drawables(value, f"{label}.", n_layers, out, depth + 1, xs)
        if len(out) >= MAX_FIGURES:
            return
    for n, members in groups.items():
        x_name = next((k for k, v in xs.items() if len(v) == n), None)
        x = xs[x_name] if x_name else list(range(1, n + 1))
        x_title = x_name or ("layer" if n == n_layers else "index")
        # Accuracies (0–1) of one object share a chart; anything else gets its own.
        shared = depth > 0 and len(members) > 1 and all(_unit(v) for _, v in members)
        for chunk in [members] if shared else [[m] for m in members]:
            if len(out) >= MAX_FIGURES:
                return
            title = chunk[0][0] if len(chunk) == 1 else path.rstrip(".")
            lines = [Series(label.rsplit(".", 1)[-1], x, v) for label, v in chunk]
            y_title = "value" if len(chunk) > 1 else lines[0].name
            out.append(figure(svg_lines(lines, x_title, y_title, title, x_integer=not x_name)))


def record_tables(node: dict, path: str = "") -> list[Html]:
    """Lists of flat records (a temperature experiment's table) as tables."""
    out = []
    for name, value in node.items():
        if (
            isinstance(value, list)
            and value
            and all(isinstance(r, dict) for r in value)
            and len(value) <= 1000
        ):
            columns = list(dict.fromkeys(k for r in value for k in r))
            rows = [
                [str(i + 1), *(value_text(r.get(c)) for c in columns)] for i, r in enumerate(value)
            ]
            out.append(section(f"{path}{name}", table(["#", *columns], rows, class_="records")))
        elif isinstance(value, dict) and name not in SKIP:
            out += record_tables(value, f"{path}{name}.")
    return out


def generic(doc: source.Result) -> Body:
    """Any result: its metrics, every matrix and series it holds, its lists of records."""
    data = doc.model_dump(mode="json")
    layers = data.get("layers")
    n_layers = len(layers) if isinstance(layers, list) else -1
    figs: list[Html] = []
    drawables(data, "", n_layers, figs)
    metrics = flatten(doc.metrics)
    sections = [
        *_status(doc),
        section("Metrics", pairs(metrics) if metrics else note("No metrics."), id="metrics"),
    ]
    if figs:
        sections.append(
            section(
                "Every matrix and series",
                note(f"What the result holds, drawn as it is ({len(figs)} figures)."),
                figures(figs),
                id="all-figures",
            )
        )
    sections += record_tables({k: v for k, v in data.items() if k not in SKIP})
    facts = [("device", doc.device), ("status", doc.status), *timing_text(doc.timing)]
    sections.append(section("Experiment", pairs(facts), id="run"))
    return Body(
        title=f"{doc.kind} experiment",
        summary=f"Analysis experiment '{doc.kind}'",
        sections=sections,
    )
