"""The app in a real browser: start `streamlit run app/main.py`, press Run on the default
experiment in Debian's Chromium (through playwright), wait for the R heatmap to fill, screenshot.

The default experiment trains in about 10 s on an idle 2-core machine; the timeouts are
generous so a busy machine makes the test slower, not red.

Skips with the reason when Chromium or playwright is missing. FORGET_SCREENSHOT_DIR, when set,
receives a copy of the screenshot (docs/screenshots/ is made that way).
"""

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
# R as the page's SVG heatmap holds it: one cell per trained (t, i), value in data-value.
SHOWN_R = """() => {
  const cells = [...document.querySelectorAll('svg.r-heatmap rect[data-value]')];
  const R = [];
  for (const c of cells) (R[+c.dataset.t] ??= [])[+c.dataset.i] = +c.dataset.value;
  return R;
}"""
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


_spec = importlib.util.spec_from_file_location("load_sessions", ROOT / "bench/load_sessions.py")
load_sessions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load_sessions)


@pytest.fixture
def server(tmp_path):
    """A local-mode streamlit server on a free port with its own empty store: (URL, log path)."""
    log = tmp_path / "streamlit.log"
    with load_sessions.app_server(tmp_path / "cache", log, hosted=False) as (url, _pid):
        yield url, log


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_default_experiment_fills_the_heatmap(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    server, log = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.goto(f"{server}/", wait_until="domcontentloaded")
            run = page.get_by_role("button", name="Run", exact=True)
            run.wait_for(timeout=30_000)
            t0 = time.monotonic()
            run.click()
            page.wait_for_function(f"() => ({SHOWN_R})().length >= 1", timeout=90_000)
            t_first = time.monotonic() - t0
            page.get_by_text("Done: 5 of 5 tasks").wait_for(timeout=120_000)
            t_done = time.monotonic() - t0
            page.wait_for_function(f"() => ({SHOWN_R})().length === 5", timeout=10_000)
            z = page.evaluate(SHOWN_R)
            shot = tmp_path / "forgetting.png"
            page.screenshot(path=str(shot), full_page=True)
        except sync_api.TimeoutError:
            page.screenshot(path=str(tmp_path / "failure.png"))
            text = page.inner_text("body")[-600:]
            server_log = log.read_text()[-1500:]
            pytest.fail(f"timed out; the page ends with:\n{text}\n--- server log:\n{server_log}")
        finally:
            browser.close()
    assert len(z) == 5 and all(len(row) == 5 and 0.0 <= v <= 1.0 for row in z for v in row)
    assert all(z[t][t] > 0.8 for t in range(5)), "every task is learned right after training on it"
    assert shot.stat().st_size > 10_000
    if os.environ.get("FORGET_SCREENSHOT_DIR"):
        out = Path(os.environ["FORGET_SCREENSHOT_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, out / "forgetting.png")
    print(f"\nRun → first row of R drawn: {t_first:.1f} s; → all 5 rows: {t_done:.1f} s")
