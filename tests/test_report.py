"""`python -m engine report`: one self-contained HTML file per result (engine.report).

What a reader of the file sees is checked against the result: the key, the metrics, every R
value (in the heatmap and the table), the curves, and the command that reproduces it, which must
resolve to the same key. Bad input exits 2 with one line; data in a result is escaped, never
markup; the file fetches nothing. The browser test opens it in Chromium with the network off.
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import shutil
import time
from pathlib import Path

import pytest
from conftest import tiny_config

from engine import kinds
from engine.cli import build_parser, main
from engine.commands.run import config_from_args
from engine.executor import execute
from engine.report import render_html
from engine.report.command_line import reproduce_command
from engine.report.svg import Series, nice_ticks, svg_lines, svg_matrix
from engine.runner import prepare, run
from engine.store import Store

MAX_BYTES = 5 * 2**20
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory):
    """A tiny real run (5 tasks of split-digits) in its own store: (store dir, result dict)."""
    directory = tmp_path_factory.mktemp("report_store")
    result = run(tiny_config(), store=Store(directory))
    return directory, result.to_json_contract()


@pytest.fixture(scope="module")
def tunnel_result(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("report_tunnel"))
    cfg = {
        "train": {"epochs": 3, "device": "cpu", "evals_per_task": 2, "batch_size": 64},
        "model": {"arch": "mlp", "depth": 3, "width": 32},
        "probe_epochs": 5,
        "n_eval": 200,
        "ood": "none",
    }
    return execute("tunnel", cfg, store=store)


def command_of(page: str) -> str:
    match = re.search(r'<pre id="command"><code>(.*?)</code></pre>', page, re.S)
    assert match, "the report shows a command"
    return html.unescape(match.group(1))


def run_key_of(command: str) -> str:
    """The key `python -m engine run …` computes for ``command`` (its own parser and resolver)."""
    argv = shlex.split(command)
    assert argv[:4] == ["python", "-m", "engine", "run"]
    args = build_parser().parse_args(argv[3:])
    return prepare(config_from_args(args))[1]


def analysis_key_of(command: str) -> str:
    argv = shlex.split(command)
    assert argv[:4] == ["python", "-m", "engine", "analyze"]
    args = build_parser().parse_args(argv[3:])
    # `analyze` turns its shortcut flags into settings (commands/analyze.py).
    flags = {"benchmark": "data.benchmark", "seed": "train.seed", "device": "train.device"}
    items = [
        f"{path}={getattr(args, f)}" for f, path in flags.items() if getattr(args, f) is not None
    ]
    raw = kinds.apply_settings(args.kind, {}, items + args.set)
    return kinds.prepare(args.kind, raw)[1]


# ------------------------------------------------------------------------------------ runs


def test_run_report_shows_the_key_metrics_every_R_value_curves_and_command(stored_run):
    _, result = stored_run
    page = render_html(result)
    assert len(page.encode()) < MAX_BYTES
    assert result["key"] in page
    R = result["R"]
    T = len(R)
    # Every R value: a heatmap cell carrying it, and a table cell showing it to 3 decimals.
    cells = re.findall(r'data-t="(\d+)" data-i="(\d+)" data-value="([0-9.]+)"', page)
    assert [(int(t), int(i)) for t, i, _ in cells] == [(t, i) for t in range(T) for i in range(T)]
    assert [float(v) for *_, v in cells] == pytest.approx([v for row in R for v in row], abs=1e-6)
    for t, row in enumerate(R):
        shown = re.search(rf"<th scope=\"row\">after task {t + 1}</th>(.*?)</tr>", page).group(1)
        assert re.findall(r"<td>([^<]*)</td>", shown) == [f"{v:.3f}" for v in row]
    m = result["metrics"]
    for name, signed in (("acc", False), ("learning_acc", False), ("bwt", True), ("fwt", True)):
        tile = re.search(rf'data-metric="{name}".*?class="value">([^<]*)<', page).group(1)
        assert tile == (f"{m[name]:+.3f}" if signed else f"{m[name]:.3f}")
    # One curve per task, one dot per evaluation point.
    assert page.count('<g class="series" data-name="task ') == T
    assert page.count("<circle cx=") == T * len(result["curves"]["step"])
    assert run_key_of(command_of(page)) == result["key"]
    assert "the same as this result" in page


@pytest.mark.parametrize(
    "raw",
    [
        tiny_config(),
        tiny_config(scenario="task", strategy={"name": "ewc", "lam": 250.0}, data__split="3,7"),
        tiny_config(
            strategy={"name": "replay", "buffer_size": 70},
            data__order_seed=None,
            train__lr=1.5e-05,
            train__seed=11,
        ),
        {
            "scenario": "domain",
            "data": {"benchmark": "synthetic", "synthetic_shape": "3x8x8", "n_tasks": 2},
            "model": {"arch": "cnn", "batch_norm": False, "depth": 2, "width": 4},
            "train": {"optimizer": "sgd", "momentum": 0.9, "device": "cpu", "amp": True},
            "strategy": {"name": "si"},
        },
    ],
    ids=["tiny", "ewc-split", "replay-order", "synthetic-cnn"],
)
def test_run_command_resolves_to_the_same_key(raw):
    cfg, key = prepare(raw)
    cmd = reproduce_command({"config": cfg.model_dump(mode="json"), "key": key})
    assert cmd.text is not None and cmd.note == ""
    assert run_key_of(cmd.text) == key == cmd.key
    # Only what differs from the flags' own resolution is spelled out.
    assert "synthetic_n" not in cmd.text and "train.device" not in cmd.text
    if raw["data"].get("split") == "3,7":
        assert "data.split=3,7" in cmd.text and "n_tasks" not in cmd.text


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("tunnel", {}),
        ("tunnel", {"classes": 4, "ood": "none", "eta": 0.95, "model": {"depth": 3}}),
        ("temperature", {"temperatures": [1.0, 30.0], "train": {"compensate_lr": True}}),
        ("substitution", {"split_at": 2, "data": {"split": "4,6"}}),
    ],
)
def test_analysis_command_resolves_to_the_same_key(kind, raw):
    spec, key = kinds.prepare(kind, {**raw, "train": {**raw.get("train", {}), "device": "cpu"}})
    cmd = reproduce_command({"kind": kind, "config": spec.model_dump(mode="json"), "key": key})
    assert cmd.text.startswith(f"python -m engine analyze {kind} ")
    assert analysis_key_of(cmd.text) == key == cmd.key


def test_a_diverged_run_shows_its_status_and_the_rows_it_finished(stored_run):
    _, result = stored_run
    T = len(result["R"])
    doc = {**result, "R": result["R"][:2], "status": "diverged", "message": "loss is NaN"}
    doc["metrics"] = {}
    page = render_html(doc)
    assert 'class="warning">Status: diverged. loss is NaN' in page
    assert page.count("data-t=") == 2 * T and page.count("not trained yet") == (T - 2) * T
    assert re.search(r'data-metric="acc".*?class="value">–<', page)  # no ACC without a last row
    nothing = render_html({**doc, "R": [], "curves": {}})
    assert nothing.count("not trained yet") == T * T  # the planned tasks, all grey


def test_a_config_this_engine_cannot_rebuild_gets_a_note_not_a_command(stored_run):
    _, result = stored_run
    alien = {**result, "config": {**result["config"], "strategy": {"name": "someone-elses"}}}
    page = render_html(alien)
    assert 'id="command"' not in page and "cannot rebuild it: strategy.name" in page
    edited = {**result, "key": "0" * 24}
    assert "not the stored 000000000000000000000000" in render_html(edited)


# ------------------------------------------------------------------------------------- CLI


def test_report_cli_writes_the_file_from_the_store_or_a_json_file(
    stored_run, tmp_path, capsys, monkeypatch
):
    directory, result = stored_run
    monkeypatch.setenv("FORGET_CACHE_DIR", str(directory))
    out = tmp_path / "out.html"
    assert main(["report", result["key"][:8], "--html", str(out)]) == 0  # a unique beginning
    assert f"wrote {out}" in capsys.readouterr().out
    from_store = out.read_text()
    doc = tmp_path / "result.json"
    doc.write_text(json.dumps(Store(directory).get_result(result["key"])))
    assert main(["report", "--json", str(doc), "--html", str(out)]) == 0
    from_file = out.read_text()
    stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")
    assert stamp.sub("", from_store) == stamp.sub("", from_file)
    assert len(from_store.encode()) < MAX_BYTES and result["key"] in from_store


@pytest.mark.parametrize(
    ("args", "content", "message"),
    [
        (["0123abcd"], None, "KEY: no stored result with key '0123abcd'"),
        (["../etc"], None, "KEY: expected the hexadecimal key"),
        ([], None, "give a stored result's KEY or --json FILE"),
        (["--json", "missing.json"], None, "--json: no such file"),
        (["--json", "{f}"], "{not json", "is not JSON (Expecting property name"),
        (["--json", "{f}"], "[1, 2]", "expected a JSON object holding one result"),
        (["--json", "{f}"], '{"key": "abcd", "R": []}', "config: Field required"),
        (
            ["--json", "{f}"],
            '{"key": "abcd", "config": {}, "R": [[0.5, "0.9"]]}',
            "R[0][1]: Input should be a valid number (got '0.9')",
        ),
        (
            ["--json", "{f}"],
            '{"key": "abcd", "config": {}, "R": [[0.5, 0.9], [0.1]]}',
            "R: row 2 has 1 values, row 1 has 2",
        ),
        (
            ["--json", "{f}"],
            '{"key": "<b>", "config": {}, "R": []}',
            "key: String should match pattern",
        ),
        (
            ["--json", "{f}"],
            '{"kind": "tunnel", "key": "abcd", "config": {}, "layers": ["a"], "rank": [1, 2]}',
            "rank: 2 values for 1 layers",
        ),
        (["--json", "{f}"], "[" * 100_000 + "]" * 100_000, "is nested too deeply"),
    ],
    ids=[
        "unknown-key",
        "not-a-key",
        "nothing",
        "missing-file",
        "not-json",
        "not-an-object",
        "no-config",
        "string-in-R",
        "ragged-R",
        "markup-key",
        "tunnel-lengths",
        "too-deep",
    ],
)
def test_bad_key_or_file_exits_2_with_one_line(tmp_path, capsys, args, content, message):
    f = tmp_path / "doc.json"
    if content is not None:
        f.write_text(content)
    argv = ["report", *(a.replace("{f}", str(f)) for a in args), "--html", str(tmp_path / "o.html")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not (tmp_path / "o.html").exists()


# ---------------------------------------------------------------------- self-contained, safe


def test_report_fetches_nothing_and_runs_no_script(stored_run, tunnel_result):
    for result in (stored_run[1], tunnel_result):
        page = render_html(result)
        # The only URLs are SVG's namespace name (an identifier, never fetched).
        urls = re.findall(r"https?://[^\s\"'<>]*", page)
        assert set(urls) == {"http://www.w3.org/2000/svg"}
        assert not re.search(r"""(src|href|action)\s*=|url\((?!#)|@import""", page, re.I)
        assert "<script" not in page.lower()
        assert not re.search(r"<[^>]*\son\w+\s*=", page)  # no event-handler attribute
        assert "default-src 'none'" in page  # the page forbids fetches and scripts itself


def test_every_field_is_escaped_as_data(stored_run):
    _, result = stored_run
    evil = "<script>alert(1)</script>"
    doc = {
        **result,
        "message": evil,
        "status": "diverged",
        "device": '"><img src=x onerror=alert(1)>',
        "config": {**result["config"], "scenario": evil, "extra": {"<b>": evil}},
    }
    page = render_html(doc)
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, as text
    other = {
        "kind": "my-kind",
        "key": "abcd",
        "config": {"x": evil},
        "metrics": {evil: 0.5, "nested": {"deep": [1, 2]}},
        "layers": [evil, "b"],
        "series": {"a": [0.1, 0.5, 0.2], "b": [0.2, 0.4, None]},
    }
    page = render_html(other)
    assert "<script" not in page and page.count("&lt;script&gt;") >= 3
    assert "no command rebuilds a 'my-kind' result" in html.unescape(page)


# --------------------------------------------------------------------------- other kinds


def test_tunnel_report_draws_rank_probes_and_the_cka_matrix(tunnel_result):
    page = render_html(tunnel_result)
    L = len(tunnel_result["layers"])
    cka = re.search(r'<svg class="matrix-heatmap".*?</svg>', page, re.S).group(0)
    values = [float(v) for v in re.findall(r'data-value="([^"]+)"', cka)]
    flat = [v for row in tunnel_result["cka"] for v in row]
    assert values == pytest.approx(flat, rel=1e-5)  # every CKA value, row by row
    ranks = re.findall(r'data-name="rank">.*?</g>', page, re.S)[0]
    assert [float(v) for v in re.findall(r'data-y="([^"]+)"', ranks)] == tunnel_result["rank"]
    m = tunnel_result["metrics"]
    assert f"layer {m['tunnel_start_95']} of {L}" in page and f"{m['kappa']:.3f}" in page
    assert analysis_key_of(command_of(page)) == tunnel_result["key"]


def test_other_kinds_show_metrics_matrices_series_and_records():
    doc = {
        "kind": "substitution",
        "key": "abcdef12",
        "config": {"not": "a valid spec"},
        "metrics": {"acc_task2": 0.875, "E1 + T2": 0.5},
        "x": [0, 1, 2],
        "m1_bottom": {"task1": [0.9, 0.8, 0.7], "task2": [0.1, 0.5, 0.95]},
        "R": [[0.98, 0.1], [0.6, 0.97]],
        "table": [{"name": "E1 + T1", "task1": 0.98}, {"name": "E2 + T1", "task1": 0.5}],
        "curves": {"step": [5, 10], "phase": [0, 1], "acc": [[0.5, 0.1], [0.4, 0.9]]},
    }
    page = render_html(doc)
    assert "0.875" in page and "E1 + T2" in page
    assert page.count('class="r-heatmap"') == 1 and page.count("data-t=") == 4
    series = re.search(r'data-name="task2">.*?</g>', page, re.S).group(0)
    assert re.findall(r'data-x="([^"]+)"', series) == ["0", "1", "2"]  # drawn against x
    assert "E2 + T1" in page and "cannot rebuild it" in page
    assert "<details>" in page  # the raw JSON, folded


def test_a_100_task_run_with_dense_curves_stays_under_5_MB(stored_run):
    _, result = stored_run
    T, points = 100, 2000
    R = [[round((t * 7 + i * 3) % 100 / 100, 6) for i in range(T)] for t in range(T)]
    curves = {
        "step": list(range(points)),
        "phase": [p * T // points for p in range(points)],
        "acc": [[0.5] * T for _ in range(points)],
        "loss": [0.1] * points,
    }
    doc = {**result, "R": R, "baseline": [0.1] * T, "curves": curves, "loss_matrix": []}
    t0 = time.perf_counter()
    page = render_html(doc)
    assert len(page.encode()) < MAX_BYTES
    assert page.count("data-t=") == T * T
    assert "is left out to keep this file small" in page  # the raw JSON (1.9 MB) is not shown
    assert time.perf_counter() - t0 < 10  # 1.3 s on one core


# --------------------------------------------------------------------------------- figures


def test_line_chart_breaks_at_gaps_and_marks_every_point():
    svg = svg_lines([Series("a", [1, 2, 3, 4], [0.1, None, 0.3, 0.4])], "x", "y")
    assert svg.count("<polyline") == 1  # [1] alone, then [3, 4]: one drawable segment
    assert re.findall(r'data-x="([^"]+)"', svg) == ["1", "3", "4"]
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 149) == [0, 50, 100]
    assert nice_ticks(0.93, 0.99) == [0.94, 0.96, 0.98]


def test_matrix_scale_and_empty_cells():
    svg = svg_matrix([[1.0, None], [3.0, 5.0]], "col", "row", "loss")
    assert svg.count("data-empty") == 1 and svg.count("data-value") == 3
    assert ">1<" in svg and ">5<" in svg  # the colour bar spans the values' own range


# --------------------------------------------------------------------------------- browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_report_opens_offline_in_chromium(stored_run, tunnel_result, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    _, result = stored_run
    files = {}
    for name, doc in (("run", result), ("tunnel", tunnel_result)):
        files[name] = tmp_path / f"{name}.html"
        files[name].write_text(render_html(doc), encoding="utf-8")
    requested: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1100})
            context.set_offline(True)
            context.route(
                "**/*",
                lambda route: (
                    route.continue_() if route.request.url.startswith("file:") else route.abort()
                ),
            )
            page = context.new_page()
            page.on("request", lambda r: requested.append(r.url))
            page.goto(files["run"].as_uri(), wait_until="load")
            heat = page.locator("svg.r-heatmap")
            assert heat.is_visible() and heat.bounding_box()["width"] > 200
            cells = page.locator("svg.r-heatmap rect[data-value]")
            T = len(result["R"])
            assert cells.count() == T * T
            tip = cells.nth(1).locator("title").text_content()
            assert (
                tip
                == f"after training task 1, evaluated on task 2: accuracy {result['R'][0][1]:.3f}"
            )
            acc = page.locator('[data-metric="acc"] .value')
            assert acc.is_visible() and acc.inner_text() == f"{result['metrics']['acc']:.3f}"
            assert page.locator("#command").inner_text().startswith("python -m engine run ")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot))  # the first screen: metrics, heatmap, curves
            page.goto(files["tunnel"].as_uri(), wait_until="load")
            L = len(tunnel_result["layers"])
            assert page.locator("svg.matrix-heatmap rect[data-value]").count() == L * L
            assert page.locator("svg.line-chart").first.is_visible()
        finally:
            browser.close()
    assert all(url.startswith("file:") for url in requested), requested
    assert shot.stat().st_size > 10_000
    if os.environ.get("FORGET_SCREENSHOT_DIR"):
        out = Path(os.environ["FORGET_SCREENSHOT_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, out / "report.png")
