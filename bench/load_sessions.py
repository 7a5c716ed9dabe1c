"""Load on the hosted app: N concurrent sessions over loopback asking for K distinct configs,
and (``--hostile``) one hostile visitor replaying every attack of issue 15 beside them.

Starts ``streamlit run app/main.py`` in hosted mode with its own empty store, then opens N
websocket sessions that speak Streamlit's own protocol (bench/st_client.py: the protobuf
``BackMsg`` a browser sends, the ``ForwardMsg`` it receives), each from its own address (an
``X-Forwarded-For`` header on the handshake, as a proxy sets it): each opens the Forgetting
page on a link holding one of K configs, presses Run, and reruns the page once a second — as
the live view's fragments do — until the page says ``Done: … key <key>``. How long until the
first row of R showed is each session's latency. The server's process tree (the app and the
forked run processes) is sampled for memory meanwhile. At the end a last session reads the
Runs page's counters (runs started, shared, opened from the store) and the store is opened to
count its results and check that none is over a hosted cap.

The hostile visitor (bench/hostile_visitor.py) opens its tabs first, so the jobs it is allowed
are ahead of everyone's in the queue, then sends crafted links, over-cap runs and cancel
attempts while the ordinary sessions run; a bystander reads the Runs page to count the jobs
going at once.

    .venv/bin/python bench/load_sessions.py --sessions 20 --configs 5 [--hostile]

prints a JSON report; ``tests/test_load.py`` runs the same drive and checks it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
from streamlit.proto.WidgetStates_pb2 import WidgetState

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (ROOT, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from hostile_visitor import Tally, reason, replay, watch  # noqa: E402
from st_client import Session, buttons, connect, texts  # noqa: E402

from app.share import config_to_query  # noqa: E402
from engine import kinds  # noqa: E402
from engine.caps import Caps  # noqa: E402
from engine.errors import ConfigError  # noqa: E402
from engine.runner import prepare  # noqa: E402
from engine.store import Store  # noqa: E402

COUNTERS = re.compile(
    r"(\d+) requests · (\d+) runs started · (\d+) shared with a run already going · "
    r"(\d+) opened from the store · (\d+) refused"
)


def load_config(seed: int) -> dict:
    """One of the K distinct configs: a small split-digits MLP that trains in about a second."""
    return {
        "scenario": "class",
        "data": {"benchmark": "split-digits"},
        "model": {"arch": "mlp", "depth": 1, "width": 32},
        "train": {"epochs": 2, "batch_size": 64, "lr": 5e-3, "seed": seed, "device": "cpu"},
        "strategy": {"name": "naive"},
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(
    cache_dir: Path, log_path: Path, hosted: bool = True, env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """The app (``python -m app.serve``: Streamlit with the job processes started first, as
    ``make run`` and deploy/serve.sh start it) on a free loopback port (``env``: more
    environment); yields (url, pid). The sessions' X-Forwarded-For headers stand for distinct
    visitors behind one trusted proxy (FORGET_PROXIES=1), as on a hosted demo."""
    port = free_port()
    env = {
        **os.environ,
        "FORGET_PROXIES": "1",
        **(env or {}),
        "FORGET_CACHE_DIR": str(cache_dir),
    }
    env.pop("FORGET_HOSTED", None)
    if hosted:
        env["FORGET_HOSTED"] = "1"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "app.serve",
                "--server.headless", "true", "--server.port", str(port),
                "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited with status {proc.returncode}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.read().strip() == b"ok":
                            break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"streamlit did not answer on {url}") from None
                    time.sleep(0.3)
            yield url, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


class MemorySampler(threading.Thread):
    """Peak memory (proportional set size) of a process and its children (the forked run
    processes): what the server tree really holds, pages shared after a fork counted once."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.root, self.every = psutil.Process(pid), every
        self.peak_mb = self.first_mb = self.last_mb = 0.0
        self._halt = threading.Event()

    def tree_mb(self) -> float:
        total = 0
        for p in [self.root, *self.root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_full_info().pss  # shared pages counted once, not per fork
        return total / 2**20

    def run(self) -> None:
        self.first_mb = self.tree_mb()
        while not self._halt.is_set():
            self.last_mb = self.tree_mb()
            self.peak_mb = max(self.peak_mb, self.last_mb)
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()


ROWS = re.compile(r"(\d+) of (\d+) rows of R")


def ordinary_ip(i: int) -> str:
    """The address of ordinary visitor ``i`` (TEST-NET-2): each its own browser."""
    return f"198.51.100.{i % 250 + 1}"


def first_row(elements, key: str) -> bool:
    """The page shows a row of R of this config: trained (a progress line counts the rows) or
    done."""
    for text in texts(elements):
        if text.startswith("Done:") and key in text:
            return True
        m = ROWS.search(text)
        if m and int(m.group(1)) >= 1:
            return True
    return False


def link_of(raw: dict) -> str:
    return "&".join(f"{k}={v}" for k, v in config_to_query(raw).items())


async def visit(
    url: str,
    raw: dict,
    key: str,
    poll_s: float,
    timeout: float,
    forwarded_for: str | None = None,
) -> dict:
    """Open the Forgetting page on the config's link, press Run, rerun until it is done; how
    long until the first row of R showed, and any error or refusal on the way."""
    t0 = time.perf_counter()
    async with connect(url, forwarded_for) as ws:
        s = Session(ws, link_of(raw))
        elements = await s.rerun()
        done = lambda els: any(t.startswith("Done:") and key in t for t in texts(els))  # noqa: E731
        pressed, reruns, row_s = False, 1, None
        while not done(elements):
            if row_s is None and first_row(elements, key):
                row_s = time.perf_counter() - t0
            if any(t.startswith("Cancelled:") for t in texts(elements)):
                s.errors.append("cancelled: " + next(t for t in texts(elements) if "Cancel" in t))
                break
            if time.perf_counter() - t0 > timeout:
                s.errors.append(f"not done after {timeout:.0f} s")
                break
            widgets = []
            ids = [b.id for b in buttons(elements, "Run")]
            if ids and not pressed:  # press Run once; later reruns only watch
                widgets, pressed = [WidgetState(id=ids[0], trigger_value=True)], True
            else:
                await asyncio.sleep(poll_s)
            elements = await s.rerun(widgets)
            reruns += 1
        served = done(elements)
        seconds = time.perf_counter() - t0
        return {
            "served": served,
            "pressed_run": pressed,
            "seconds": seconds,
            "first_row_s": row_s if row_s is not None else (seconds if served else None),
            "reruns": reruns,
            "errors": s.errors,
            "refused": [e for e in s.errors if reason(e) != "invalid value"],
        }


async def read_counters(url: str) -> dict | None:
    """The Runs page's line of server counters, as a visitor sees it."""
    async with connect(url) as ws:
        elements = await Session(ws, "", page_name="runs").rerun()
    for text in texts(elements):
        if m := COUNTERS.search(text):
            names = ("requests", "started", "shared", "from_store", "refused")
            return dict(zip(names, map(int, m.groups()), strict=True))
    return None


async def _drive(
    url: str,
    configs: list[tuple[dict, str]],
    n: int,
    poll_s: float,
    timeout: float,
    stagger: float,
    hostile: Tally | None,
    hostile_cancels: bool,
) -> list[dict]:
    """The ordinary sessions; with ``hostile``, the hostile visitor's attacks beside them and a
    bystander reading the Runs page throughout. Unless the hostile visitor cancels its jobs,
    the ordinary sessions start once its tabs have pressed Run: the jobs it was allowed are
    ahead of theirs in the queue, the worst case for their latency."""
    tabs_done, stop = asyncio.Event(), asyncio.Event()
    # a short drive (no hostile visitor, or one that cancels its jobs): everyone at once
    wait_for_tabs = hostile is not None and not hostile_cancels
    tasks = []
    if hostile is not None:
        ordinary = [(link_of(raw), key) for raw, key in configs]
        deadline = time.monotonic() + timeout
        tasks = [
            asyncio.create_task(watch(url, hostile, {k for _, k in configs}, stop)),
            asyncio.create_task(
                replay(url, hostile, ordinary, tabs_done, hostile_cancels, deadline)
            ),
        ]

    async def one(i: int) -> dict:
        if wait_for_tabs:
            await tabs_done.wait()
        await asyncio.sleep(stagger * i)
        raw, key = configs[i % len(configs)]
        try:
            return await visit(url, raw, key, poll_s, timeout, forwarded_for=ordinary_ip(i))
        except Exception as err:  # a dropped connection is a failed session, not a crash
            return {"served": False, "errors": [f"{type(err).__name__}: {err}"], "seconds": 0}

    try:
        visits = await asyncio.gather(*(one(i) for i in range(n)))
        if hostile is not None:
            hostile.mark("ordinary sessions")
        if tasks:
            await tasks[1]  # the hostile visitor's attacks
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return visits


def percentiles(values: list[float]) -> dict:
    """p50, p95 and max of the values (seconds), None when there are none."""
    if len(values) < 2:
        only = round(values[0], 2) if values else None
        return {"p50": only, "p95": only, "max": only}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(cuts[49], 2), "p95": round(cuts[94], 2), "max": round(max(values), 2)}


EXCEPTION_LINE = re.compile(r"^(\w+(?:Error|Exception|Exceeded)): .+$", re.MULTILINE)
APP_FRAME = re.compile(r"(?:engine|app)/[\w/]+\.py:\d+")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def server_exceptions(log: str) -> list[str]:
    """The distinct exceptions of the server's tracebacks (a page shows them redacted), each
    with the project's last frame before it."""
    text = ANSI.sub("", log)
    out = set()
    for m in EXCEPTION_LINE.finditer(text):
        frames = APP_FRAME.findall(text, 0, m.start())
        where = f" ({frames[-1]})" if frames else ""
        out.add(f"{m.group(0)[:200]}{where}")
    return sorted(out)


def over_caps_in_store(store) -> list[str]:
    """Stored results whose computation is over a hosted cap (none may be, in hosted mode)."""
    caps, out = Caps.from_env(), []
    for meta in store.list_results():
        kind = meta.get("kind", "run")
        try:
            spec, _ = kinds.prepare(kind, meta.get("config") or {})
            caps.check(kind, spec, kinds.estimate(kind, spec))
        except ConfigError as err:
            out.append(f"{kind} {meta.get('key')}: {err}")
    return out


def drive(
    workdir: Path,
    sessions: int = 20,
    n_configs: int = 5,
    poll_s: float = 1.0,
    timeout: float | None = None,
    stagger: float = 0.05,
    hostile: bool = False,
    hostile_cancels: bool = False,
    server_env: dict[str, str] | None = None,
) -> dict:
    """Run the load and return the report (see the module docstring). ``hostile``: the
    hostile visitor too; ``hostile_cancels``: it cancels the jobs it got once its tabs have
    pressed Run (a short drive; otherwise they run ahead of everyone's, the worst case).
    ``server_env``: more environment for the server (caps, e.g. FORGET_MAX_WALL_S)."""
    configs = []
    for seed in range(n_configs):
        raw = load_config(seed)
        configs.append((raw, prepare(raw)[1]))
    if timeout is None:  # a session may wait behind two of the hostile's jobs at the wall limit
        wall = float((server_env or {}).get("FORGET_MAX_WALL_S", Caps.from_env().max_wall_s))
        timeout = 300.0 + (2 * wall if hostile and not hostile_cancels else 0.0)
    cache = workdir / "cache"
    log_path = workdir / "streamlit.log"
    tally = Tally() if hostile else None
    with app_server(cache, log_path, env=server_env) as (url, pid):
        sampler = MemorySampler(pid)
        sampler.start()
        t0 = time.perf_counter()
        visits = asyncio.run(
            _drive(url, configs, sessions, poll_s, timeout, stagger, tally, hostile_cancels)
        )
        wall_s = time.perf_counter() - t0
        counters = asyncio.run(read_counters(url))
        sampler.stop()
    with contextlib.closing(Store(cache)) as store:
        stored = [key for _, key in configs if store.get_result(key) is not None]
        over = over_caps_in_store(store)
    log = log_path.read_text(errors="replace")
    report = {
        "sessions": sessions,
        "configs": n_configs,
        "served": sum(v["served"] for v in visits),
        "errors": [e for v in visits for e in v["errors"]],
        "refused": [e for v in visits for e in v.get("refused", [])],
        "tracebacks_in_server_log": log.count("Traceback"),
        "server_exceptions": server_exceptions(log),
        "runs_started": counters["started"] if counters else None,
        "counters": counters,
        "results_in_store": len(stored),
        "results_over_caps": over,
        "wall_s": round(wall_s, 2),
        "first_row_s": percentiles(
            [v["first_row_s"] for v in visits if v.get("first_row_s") is not None]
        ),
        "session_s": percentiles([v["seconds"] for v in visits if v["served"]]),
        "reruns": sum(v.get("reruns", 0) for v in visits),
        "memory_mb": {
            "start": round(sampler.first_mb),
            "peak": round(sampler.peak_mb),
            "end": round(sampler.last_mb),
        },
    }
    if tally is not None:
        report["hostile"] = tally.report()
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--configs", type=int, default=5)
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between a session's reruns")
    ap.add_argument(
        "--hostile", action="store_true", help="one hostile visitor replays every attack too"
    )
    ap.add_argument(
        "--hostile-cancels",
        action="store_true",
        help="the hostile visitor cancels the jobs it got (else they run ahead: the worst case)",
    )
    ap.add_argument(
        "--max-wall-s", type=float, help="the server's FORGET_MAX_WALL_S (default: the app's)"
    )
    args = ap.parse_args()
    env = {"FORGET_MAX_WALL_S": f"{args.max_wall_s:g}"} if args.max_wall_s else None
    with tempfile.TemporaryDirectory() as tmp:
        report = drive(
            Path(tmp),
            args.sessions,
            args.configs,
            args.poll,
            hostile=args.hostile,
            hostile_cancels=args.hostile_cancels,
            server_env=env,
        )
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
