"""The app in a real browser: start `streamlit run app/main.py`, press Run on the default
experiment in Debian's Chromium (through playwright), and watch what a visitor sees — what only
a browser shows: the curves growing with the heatmap, one button (never Run and Cancel at once),
one row of metric cards, the finished rows kept after Cancel, the "Cancelled" line gone once
Run is pressed again.

The default experiment trains in about 10 s on an idle 2-core machine; the timeouts are
generous so a busy machine makes the test slower, not red.

Skips with the reason when Chromium or playwright is missing. FORGET_SCREENSHOT_DIR, when set,
receives the screenshots (docs/screenshots/ is made that way: forgetting, forgetting-live, and,
from test_screenshots_of_the_other_pages, compare, compare-sweep, runs, references).
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
# What the live view shows at one moment.
SEEN = """() => ({
  rows: new Set([...document.querySelectorAll('svg.r-heatmap rect[data-value]')]
    .map(c => c.dataset.t)).size,
  points: document.querySelectorAll('svg.line-chart .series circle').length,
  buttons: [...document.querySelectorAll('[data-testid="stButton"]')].map(b => b.innerText.trim()),
  cards: document.querySelectorAll('[data-testid="stMetric"]').length,
  alerts: [...document.querySelectorAll('[data-testid="stAlert"]')].map(a => a.innerText),
})"""
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
)

_spec = importlib.util.spec_from_file_location("load_sessions", ROOT / "bench/load_sessions.py")
load_sessions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load_sessions)


@pytest.fixture
def server(tmp_path):
    """A local-mode streamlit server on a free port with its own empty store: (URL, log path)."""
    log = tmp_path / "streamlit.log"
    with load_sessions.app_server(tmp_path / "cache", log, hosted=False) as (url, _pid):
        yield url, log


def shots() -> Path | None:
    out = os.environ.get("FORGET_SCREENSHOT_DIR")
    if not out:
        return None
    Path(out).mkdir(parents=True, exist_ok=True)
    return Path(out)


def watch(page, until, timeout: float = 120.0, every: float = 0.05, on_sample=None) -> list:
    """(seconds since the start, what is seen) every ``every`` s until ``until(seen)``."""
    t0, samples = time.monotonic(), []
    while True:
        seen = page.evaluate(SEEN)
        t = time.monotonic() - t0
        samples.append((t, seen))
        if on_sample is not None:
            on_sample(t, seen)
        if until(seen):
            return samples
        if t > timeout:
            raise TimeoutError(f"still waiting after {timeout:.0f} s; last seen: {seen}")
        time.sleep(every)


def done(seen: dict) -> bool:
    return any(a.startswith("Done:") for a in seen["alerts"])


def fail_with_context(page, log: Path, tmp_path: Path, err: Exception):
    page.screenshot(path=str(tmp_path / "failure.png"))
    text = page.inner_text("body")[-600:]
    pytest.fail(f"{err}\nthe page ends with:\n{text}\n--- server log:\n{log.read_text()[-1500:]}")


@needs_chromium
def test_default_experiment_live_view(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    server, log = server
    out = shots()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        try:
            page.goto(f"{server}/", wait_until="domcontentloaded")
            run = page.get_by_role("button", name="Run", exact=True)
            run.wait_for(timeout=30_000)
            # The page drawn before Run: on a loaded machine the Run button can show before
            # st.metric's component has loaded, and the first samples would time that instead.
            page.wait_for_function(f"({SEEN})().cards === 5", timeout=30_000)
            live_shot = tmp_path / "forgetting-live.png"

            def mid_run(_t, seen) -> None:
                if 2 <= seen["rows"] < 5 and not live_shot.exists():
                    page.screenshot(path=str(live_shot), full_page=True)

            run.click()
            page.mouse.move(5, 5)  # no tooltip over the screenshots
            samples = watch(
                page, lambda s: done(s) and s["rows"] == 5 and not s["buttons"], on_sample=mid_run
            )
            z = page.evaluate(SHOWN_R)
            shot = tmp_path / "forgetting.png"
            page.screenshot(path=str(shot), full_page=True)

            # Cancel on a longer run: the finished rows stay; Run again drops "Cancelled".
            page.goto(f"{server}/forgetting?seed=1&epochs=40", wait_until="domcontentloaded")
            page.get_by_role("button", name="Run", exact=True).click()
            watch(page, lambda s: s["rows"] >= 1 and "Cancel" in s["buttons"])
            page.get_by_role("button", name="Cancel", exact=True).click()
            cancelled = watch(page, lambda s: any(a.startswith("Cancelled") for a in s["alerts"]))
            kept = cancelled[-1][1]
            page.get_by_role("button", name="Run", exact=True).click()
            rerun = watch(page, lambda s: "Cancel" in s["buttons"], timeout=30)
            rerun_seen = rerun[-1][1]
            page.get_by_role("button", name="Cancel", exact=True).click()
            watch(page, lambda s: any(a.startswith("Cancelled") for a in s["alerts"]))
        except (sync_api.TimeoutError, TimeoutError) as err:
            fail_with_context(page, log, tmp_path, err)
        finally:
            browser.close()

    t_first = next(t for t, s in samples if s["rows"] >= 1)
    t_curves = next(t for t, s in samples if s["points"] > 0)
    t_done = samples[-1][0]
    both = [(t, s["buttons"]) for t, s in samples if {"Run", "Cancel"} <= set(s["buttons"])]
    stacked = [(t, s["cards"]) for t, s in samples if s["cards"] != 5]
    assert len(z) == 5 and all(len(row) == 5 and 0.0 <= v <= 1.0 for row in z for v in row)
    assert all(z[t][t] > 0.8 for t in range(5)), "every task is learned right after training on it"
    assert t_curves - t_first <= 1.0, f"curves {t_curves - t_first:.2f} s after the first row"
    assert not both, f"Run and Cancel at once: {both[:3]}"
    assert not stacked, f"metric cards not one row of five: {stacked[:3]}"
    assert kept["rows"] >= 1 and kept["points"] > 0, "Cancel kept the finished rows and curves"
    assert not any(a.startswith("Cancelled") for a in rerun_seen["alerts"])
    assert shot.stat().st_size > 10_000 and live_shot.exists()
    if out is not None:
        shutil.copy(shot, out / "forgetting.png")
        shutil.copy(live_shot, out / "forgetting-live.png")
    print(
        f"\nRun → first row of R: {t_first:.1f} s; first row → curves: "
        f"{max(0.0, t_curves - t_first):.2f} s; → all 5 rows: {t_done:.1f} s; "
        f"rows kept after Cancel: {kept['rows']}"
    )


@needs_chromium
@pytest.mark.skipif(
    not os.environ.get("FORGET_SCREENSHOT_DIR"), reason="only to make docs/screenshots/"
)
def test_screenshots_of_the_other_pages(server, tmp_path):
    """Compare (four strategies run from the page), a shipped sweep's results, Runs and
    References, as a visitor sees them."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    import yaml

    from engine.store import Store
    from engine.sweep import run_sweep

    server, log = server
    out = shots()
    spec = yaml.safe_load((ROOT / "examples/sweeps/ewc-lambda.yaml").read_text())
    old = os.environ.get("FORGET_CACHE_DIR")
    os.environ["FORGET_CACHE_DIR"] = str(tmp_path / "cache")  # the server's store
    try:
        run_sweep(spec, n_jobs=2, store=Store(tmp_path / "cache"))
    finally:
        if old is None:
            os.environ.pop("FORGET_CACHE_DIR")
        else:
            os.environ["FORGET_CACHE_DIR"] = old
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        # Streamlit scrolls its main area, not the page: a tall window shows the whole page.
        page = browser.new_page(viewport={"width": 1500, "height": 1800})
        try:
            page.goto(
                f"{server}/compare?v_mode=strategies&v_strategies=naive,ewc,replay,joint",
                wait_until="domcontentloaded",
            )
            page.get_by_role("button", name="Run 4 missing").click()
            page.get_by_text("Stability versus plasticity").wait_for(timeout=300_000)
            page.wait_for_function(
                "() => document.querySelectorAll('svg.r-heatmap').length === 4 && "
                "!document.querySelector('[data-testid=\"stProgress\"]')",
                timeout=300_000,
            )
            time.sleep(2)  # plotly's charts draw after their code has loaded
            page.screenshot(path=str(out / "compare.png"), full_page=True)
            page.goto(
                f"{server}/compare?v_mode=file&v_source=shipped&v_spec=ewc-lambda",
                wait_until="domcontentloaded",
            )
            page.get_by_text("45 in the store").wait_for(timeout=60_000)
            time.sleep(3)
            page.screenshot(path=str(out / "compare-sweep.png"), full_page=True)
            page.goto(f"{server}/runs", wait_until="domcontentloaded")
            page.get_by_text("One result").wait_for(timeout=60_000)
            time.sleep(1)
            page.screenshot(path=str(out / "runs.png"), full_page=True)
            page.goto(f"{server}/references", wait_until="domcontentloaded")
            page.get_by_text("The project's source documents").wait_for(timeout=60_000)
            time.sleep(1)
            page.screenshot(path=str(out / "references.png"), full_page=True)
        except (sync_api.TimeoutError, TimeoutError) as err:
            fail_with_context(page, log, tmp_path, err)
        finally:
            browser.close()
