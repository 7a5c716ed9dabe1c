"""Plugins (engine.plugins, docs/extending.md): the MAS example of examples/plugins/mas, installed
with pip as a real entry point, is a strategy of the CLI (help, a run), of a sweep and of the
app's sidebar, with no line of engine/ or app/ naming it; a plugin file given with --plugin adds
a benchmark and a model; a bad plugin is one line naming it; a hosted server loads only the
plugins its operator lists.

The registries are built when the engine is first imported, so whatever needs the plugin
registered runs in a fresh interpreter with the plugin's install folder on PYTHONPATH.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from engine import plugins
from engine.cli import main
from engine.models import build_model
from engine.runner import run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "plugins"
TINY = ["--set", "depth=1", "--set", "width=32", "--set", "batch_size=64", "--set", "lr=0.005"]


@pytest.fixture(scope="module")
def mas_site(tmp_path_factory) -> Path:
    """examples/plugins/mas installed by pip (no dependencies, no index) into its own folder:
    the module and a dist-info whose entry_points.txt declares the strategy."""
    work = tmp_path_factory.mktemp("mas")
    source = work / "src"
    shutil.copytree(EXAMPLES / "mas", source)  # the build writes beside the sources: not in ours
    site = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        + ["--no-build-isolation", "--target", str(site), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return site


def engine_env(tmp_path: Path, site: Path | None = None, **extra: str) -> dict[str, str]:
    """This environment without plugin settings, the repository (and ``site``) importable,
    a store of the test's own, and ``extra``."""
    plugin_settings = ("FORGET_PLUGINS", "FORGET_PLUGINS_ALLOWED", "FORGET_HOSTED")
    env = {k: v for k, v in os.environ.items() if k not in plugin_settings}
    paths = [str(ROOT)] + ([str(site)] if site else [])
    return {
        **env,
        "PYTHONPATH": os.pathsep.join(paths),
        "FORGET_CACHE_DIR": str(tmp_path / "cache"),
        **extra,
    }


def cli(tmp_path, *args, site=None, timeout=300, **extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=engine_env(tmp_path, site, **extra),
        timeout=timeout,
    )


def python(tmp_path, code: str, *args, site=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=engine_env(tmp_path, site),
        timeout=timeout,
    )


def flat(rows: list[list[float]]) -> list[float]:
    return [v for row in rows for v in row]


def test_pip_installs_a_real_entry_point(mas_site, monkeypatch):
    monkeypatch.syspath_prepend(str(mas_site))
    found = importlib.metadata.entry_points(group="forgetting_explorer.strategies")
    assert [(ep.name, ep.value) for ep in found] == [("mas", "mas_plugin")]
    (mas,) = [p for p in plugins.discover() if p.name == "mas"]
    assert mas.group == "strategies" and mas.origin == "entry point mas = mas_plugin"


def test_hosted_mode_loads_only_the_plugins_the_operator_lists(mas_site, monkeypatch):
    monkeypatch.syspath_prepend(str(mas_site))
    monkeypatch.setenv("FORGET_PLUGINS", str(EXAMPLES / "stripes.py"))
    found = [p for p in plugins.discover() if p.name in ("mas", "stripes")]
    assert plugins.admitted(found) == (found, [])  # local: everything
    monkeypatch.setenv("FORGET_HOSTED", "1")
    assert plugins.admitted(found) == ([], ["mas", "stripes"])
    monkeypatch.setenv("FORGET_PLUGINS_ALLOWED", "stripes, other")
    chosen, left_out = plugins.admitted(found)
    assert [p.name for p in chosen] == ["stripes"] and left_out == ["mas"]


def test_mas_importance_is_the_mean_absolute_gradient_of_the_squared_output(mas_site, monkeypatch):
    # For the head, f = W h + b, so ∂‖f‖²/∂W = 2 f hᵀ and ∂‖f‖²/∂b = 2 f, sample by sample:
    # Ω is the mean of their absolute values (not the absolute value of their mean).
    monkeypatch.syspath_prepend(str(mas_site))
    import mas_plugin

    torch.manual_seed(0)
    cfg = type("M", (), {"arch": "mlp", "depth": 1, "width": 5})()
    model = build_model(cfg, (1, 2, 3), 4)
    x = torch.randn(7, 1, 2, 3)
    omega = mas_plugin.importance(model, x, (0, 4))
    h = model.features(x).detach()
    f = model(x).detach()
    expected_w = (2 * f[:, :, None] * h[:, None, :]).abs().mean(0)
    torch.testing.assert_close(omega["head.weight"], expected_w)
    torch.testing.assert_close(omega["head.bias"], (2 * f).abs().mean(0))
    assert (expected_w - (2 * f[:, :, None] * h[:, None, :]).mean(0).abs()).max() > 1e-3
    # Only the task's own output units count: the other rows of the head get no importance.
    part = mas_plugin.importance(model, x, (1, 3))
    assert part["head.weight"][[0, 3]].abs().max() == 0
    torch.testing.assert_close(part["head.weight"][1:3], expected_w[1:3])
    assert set(omega) == {n for n, _ in model.named_parameters()}


def test_cli_lists_mas_and_runs_it(mas_site, tmp_path):
    help_text = cli(tmp_path, "run", "--help", site=mas_site)
    assert help_text.returncode == 0, help_text.stderr
    assert ",lora,mas}" in help_text.stdout  # a --strategy choice, after the built-ins
    assert "strategy.lam              [mas] (default 1.0, 0.0…1000000.0)" in help_text.stdout
    assert "strategy.samples          [mas] (default 500, 1…100000)" in help_text.stdout
    # λ = 0: no penalty, so MAS trains exactly as naive does (its importances use their own
    # random stream) — the plugin is driven by the same loop, seed for seed.
    out = tmp_path / "mas.json"
    args = ["run", "--strategy", "mas", "--scenario", "task", "--epochs", "2", *TINY]
    done = cli(tmp_path, *args, "--set", "lam=0", "--json", str(out), site=mas_site)
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["config"]["strategy"] == {"name": "mas", "lam": 0.0, "samples": 500}
    naive = run(tiny_config(scenario="task"), use_cache=False)
    assert flat(doc["R"]) == pytest.approx(flat(naive.R), abs=1e-6)


SWEEP_AND_APP = """
    import json, sys
    from streamlit.testing.v1 import AppTest
    from engine.jobs import get_manager
    from engine.runner import prepare
    from engine.store import Store
    from engine.sweep import run_sweep

    tiny = {
        "scenario": "task",
        "data": {"benchmark": "split-digits"},
        "model": {"arch": "mlp", "depth": 1, "width": 32},
        "train": {"epochs": 2, "batch_size": 64, "lr": 5e-3, "evals_per_task": 2},
        "strategy": {"name": "mas"},
    }
    spec = {"base": tiny, "grid": {"strategy.lam": [0, 100]}}
    swept = run_sweep(spec, n_jobs=1, store=Store(sys.argv[1]))  # not the app's store
    out = {"sweep": [(e.config["strategy"], e.status, e.result["R"]) for e in swept.entries]}

    at = AppTest.from_file("app/main.py", default_timeout=120)
    for k, v in {"scenario": "task", "strategy": "mas", "lam": "100", "depth": "1",
                 "width": "32", "epochs": "2", "batch_size": "64", "lr": "0.005",
                 "evals_per_task": "2"}.items():
        at.query_params[k] = v
    at.run()
    box = at.sidebar.selectbox(key="cfg:strategy.name")
    lam = at.sidebar.number_input(key="cfg:strategy.mas.lam")
    samples = at.sidebar.number_input(key="cfg:strategy.mas.samples")
    out["app"] = {
        "options": list(box.options), "value": box.value,
        "lam": [lam.value, lam.min, lam.max, lam.help], "samples": samples.value,
        "errors": [e.value for e in at.error], "exceptions": [str(e.value) for e in at.exception],
    }
    next(b for b in at.button if b.label == "Run").click().run()
    cfg, key = prepare({**tiny, "strategy": {"name": "mas", "lam": 100.0}})
    out["app"]["job"] = get_manager().wait(key, 300)["state"]
    stored = get_manager().store.get_result(key)
    out["app"]["stored_R"] = stored["R"] if stored else None
    out["swept_key_R"] = next(e.result["R"] for e in swept.entries if e.key == key)
    print("RESULT " + json.dumps(out))
    get_manager().shutdown()
"""


def test_a_sweep_and_the_app_offer_mas(mas_site, tmp_path):
    done = python(tmp_path, SWEEP_AND_APP, str(tmp_path / "sweep"), site=mas_site, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line.removeprefix("RESULT "))
    # The sweep: both λ ran in a worker process that loaded the plugin by itself.
    (s0, st0, r0), (s1, st1, r1) = out["sweep"]
    assert (s0, st0, s1, st1) == ({"name": "mas", "lam": 0.0, "samples": 500}, "done",
                                  {"name": "mas", "lam": 100.0, "samples": 500}, "done")  # fmt: skip
    assert len(r0) == len(r1) == 5 and r0 != r1  # the penalty changed the training
    # The sidebar: the strategy is a choice, its fields are widgets with the field's bounds.
    app = out["app"]
    assert app["exceptions"] == [] and app["errors"] == []
    assert app["options"][-1] == "mas" and app["value"] == "mas"
    assert app["lam"] == [100.0, 0.0, 1e6, "λ: weight of the importance-weighted squared distance"]
    assert app["samples"] == 500
    # Run in the app trains the link's config; the sweep's result for that config agrees.
    assert app["job"] == "done"
    assert flat(app["stored_R"]) == pytest.approx(flat(out["swept_key_R"]), abs=1e-6)


def test_a_plugin_file_adds_a_benchmark_and_a_model(tmp_path, capsys):
    out = tmp_path / "r.json"
    plugin = str(EXAMPLES / "stripes.py")
    args = ["run", "--benchmark", "stripes", "--set", "arch=gelu-mlp", "--scenario", "task"]
    done = cli(tmp_path, "--plugin", plugin, *args, "--epochs", "3", "--json", str(out))
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["config"]["data"]["benchmark"] == "stripes"
    model = doc["config"]["model"]
    assert (model["arch"], model["depth"], model["width"]) == ("gelu-mlp", 2, 100)  # preset
    R = doc["R"]
    assert len(R) == 4 and min(R[t][t] for t in range(4)) > 0.9  # the gratings are learnt
    # Without the plugin (this process did not load it) the name is unknown: one line, exit 2.
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().endswith("(got 'stripes')")


BAD = {
    "broken.py": "import no_such_module_anywhere\n",
    "noname.py": """
        from engine.strategies.base import Strategy, StrategyParams
        class Params(StrategyParams):
            lam: float = 1.0
        IMPLEMENTATION = Strategy
    """,
    "clash.py": """
        from typing import Literal
        from engine.strategies.base import Strategy, StrategyParams
        class Params(StrategyParams):
            name: Literal["ewc"] = "ewc"
        IMPLEMENTATION = Strategy
    """,
}


def test_bad_plugins_are_one_line_each_naming_the_plugin(tmp_path):
    for name, code in BAD.items():
        (tmp_path / name).write_text(textwrap.dedent(code))
    files = [tmp_path / n for n in (*BAD, "absent.py")]
    done = cli(tmp_path, "run", "--help", FORGET_PLUGINS=os.pathsep.join(map(str, files)))
    assert done.returncode == 2 and done.stdout == ""
    broken, noname, clash, absent = files
    assert done.stderr.strip().splitlines() == [
        f"error: plugin 'broken' ({broken}): cannot be loaded: ModuleNotFoundError: No module "
        "named 'no_such_module_anywhere'",
        f"error: plugin 'noname' ({noname}): Params has no name; give it "
        "`name: Literal['<name>'] = '<name>'`",
        f"error: plugin 'clash' ({clash}): strategy name 'ewc' is taken by a built-in strategy",
        f"error: plugin 'absent' ({absent}): cannot be loaded: FileNotFoundError: no file "
        f"'{absent}'",
    ]


@pytest.mark.parametrize(
    ("code", "line"),
    [
        ("ARCH = 'half'\n", "has no build (a model needs both)"),
        ("def load(cfg):\n    return None\n", "has no FACTS (a benchmark needs both)"),
    ],
)
def test_a_plugin_with_half_of_what_its_group_needs_is_one_line(tmp_path, code, line):
    half = tmp_path / "half.py"
    half.write_text(code)
    done = cli(tmp_path, "run", "--help", FORGET_PLUGINS=str(half))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"error: plugin 'half' ({half}): {line}"]
