"""Screenshots of the analysis pages for docs/screenshots/ (Tunnel, Representations, Softmax,
the toy, Learn, Reproduce) from a real browser, each showing results the engine stored first.
Runs only when FORGET_SCREENSHOT_DIR is set (a few minutes: the Tunnel defaults train)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
_spec = importlib.util.spec_from_file_location("load_sessions", ROOT / "bench/load_sessions.py")
load_sessions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load_sessions)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
@pytest.mark.skipif(
    not os.environ.get("FORGET_SCREENSHOT_DIR"), reason="only to make docs/screenshots/"
)
def test_screenshots_of_the_analysis_pages(tmp_path, monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from engine.executor import execute
    from engine.store import Store

    out = Path(os.environ["FORGET_SCREENSHOT_DIR"])
    out.mkdir(parents=True, exist_ok=True)
    cache = tmp_path / "cache"
    monkeypatch.setenv("FORGET_CACHE_DIR", str(cache))
    store = Store(cache)
    run = {"scenario": "class", "strategy": {"name": "naive"}}
    for kind, raw in (
        ("tunnel", {}),
        ("record", {**run, "n": 256}),
        ("repforget", {"data": {"benchmark": "split-digits"}}),
        ("softmax", {}),
        ("toy", {}),
        ("lesson-curvature", {}),  # the EWC lesson's network, as its steps ask for it
    ):
        execute(kind, raw, store=store)
    with (
        load_sessions.app_server(cache, tmp_path / "log", hosted=False) as (url, _),
        sync_api.sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1800})
        try:
            for name, path, shown in (
                ("tunnel", "/tunnel", "κ (compression)"),
                ("representations", "/representations?v_tab=Drift+across+tasks", "Drift of layer"),
                (
                    "representations-repforget",
                    "/representations?benchmark=split-digits"
                    "&v_tab=Representation+forgetting+%283+models%29",
                    "Frozen per-task probes",
                ),
                ("softmax", "/softmax", "peak rank"),
                ("softmax-toy", "/softmax?v_tab=Deep-linear+toy", "Rank over training"),
                ("learn", "/learn?v_lesson=ewc-taylor&v_step=3", "share < 0"),
            ):
                page.goto(f"{url}{path}", wait_until="domcontentloaded")
                page.get_by_text(shown).first.wait_for(timeout=120_000)
                time.sleep(3)  # plotly's charts draw after their code has loaded
                page.mouse.move(5, 5)
                page.screenshot(path=str(out / f"{name}.png"), full_page=True)
        finally:
            browser.close()
