"""Load on the hosted app: N concurrent sessions over loopback asking for K distinct configs.

Starts ``streamlit run app/main.py`` in hosted mode with its own empty store, then opens N
websocket sessions that speak Streamlit's own protocol (the protobuf ``BackMsg`` a browser
sends, the ``ForwardMsg`` it receives): each opens the Forgetting page on a link holding one of
K configs, presses Run, and reruns the page once a second — as the live view's fragments do —
until the page says ``Done: … key <key>``. The server's process tree (the app and the forked
run processes) is sampled for memory meanwhile. At the end a last session reads the Runs
page's counters (runs started, shared, opened from the store) and the store is opened to count
its results.

    .venv/bin/python bench/load_sessions.py --sessions 20 --configs 5

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
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.share import config_to_query  # noqa: E402
from engine.runner import prepare  # noqa: E402

RERUN_EARLY = 2  # ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN: another script run follows
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
def app_server(cache_dir: Path, log_path: Path, hosted: bool = True) -> Iterator[tuple[str, int]]:
    """``streamlit run app/main.py`` on a free loopback port; yields (url, pid)."""
    port = free_port()
    env = {**os.environ, "FORGET_CACHE_DIR": str(cache_dir)}
    env.pop("FORGET_HOSTED", None)
    if hosted:
        env["FORGET_HOSTED"] = "1"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", "app/main.py",
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


class Session:
    """One visitor: a websocket speaking Streamlit's protocol, as the browser does."""

    def __init__(self, ws, query: str, page_name: str = "") -> None:
        self.ws, self.query, self.page_name = ws, query, page_name
        self.page_hash = ""
        self.errors: list[str] = []

    async def rerun(self, widgets: list[WidgetState] = (), timeout: float = 120) -> list:
        """Ask for a script run; the elements it drew, once the run has finished."""
        back = BackMsg()
        state = back.rerun_script
        state.query_string, state.page_name = self.query, self.page_name
        state.page_script_hash = self.page_hash
        state.widget_states.widgets.extend(widgets)
        await self.ws.send(back.SerializeToString())
        elements = []
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await asyncio.wait_for(self.ws.recv(), timeout))
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = msg.new_session.page_script_hash or self.page_hash
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                el = msg.delta.new_element
                elements.append(el)
                if el.WhichOneof("type") == "exception":
                    self.errors.append(f"exception: {el.exception.message}")
                elif el.WhichOneof("type") == "alert" and el.alert.format == el.alert.ERROR:
                    self.errors.append(f"error: {el.alert.body}")
            elif kind == "script_finished" and msg.script_finished != RERUN_EARLY:
                return elements


def _texts(elements) -> list[str]:
    out = []
    for el in elements:
        kind = el.WhichOneof("type")
        if kind == "alert":
            out.append(el.alert.body)
        elif kind == "markdown":
            out.append(el.markdown.body)
    return out


async def visit(url: str, raw: dict, key: str, poll_s: float, timeout: float) -> dict:
    """Open the Forgetting page on the config's link, press Run, rerun until it is done."""
    query = "&".join(f"{k}={v}" for k, v in config_to_query(raw).items())
    t0 = time.perf_counter()
    ws_url = url.replace("http", "ws", 1) + "/_stcore/stream"
    async with websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None) as ws:
        s = Session(ws, query)
        elements = await s.rerun()
        done = lambda els: any(t.startswith("Done:") and key in t for t in _texts(els))  # noqa: E731
        pressed, reruns = False, 1
        while not done(elements):
            if time.perf_counter() - t0 > timeout:
                s.errors.append(f"not done after {timeout:.0f} s")
                break
            widgets = []
            ids = [
                e.button.id
                for e in elements
                if e.WhichOneof("type") == "button" and e.button.label == "Run"
            ]
            if ids and not pressed:  # press Run once; later reruns only watch
                widgets, pressed = [WidgetState(id=ids[0], trigger_value=True)], True
            else:
                await asyncio.sleep(poll_s)
            elements = await s.rerun(widgets)
            reruns += 1
        served = done(elements)
        return {
            "served": served,
            "pressed_run": pressed,
            "seconds": time.perf_counter() - t0,
            "reruns": reruns,
            "errors": s.errors,
        }


async def read_counters(url: str) -> dict | None:
    """The Runs page's line of server counters, as a visitor sees it."""
    ws_url = url.replace("http", "ws", 1) + "/_stcore/stream"
    async with websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None) as ws:
        elements = await Session(ws, "", page_name="runs").rerun()
    for text in _texts(elements):
        if m := COUNTERS.search(text):
            names = ("requests", "started", "shared", "from_store", "refused")
            return dict(zip(names, map(int, m.groups()), strict=True))
    return None


async def _drive(url: str, configs: list[tuple[dict, str]], n: int, poll_s, timeout, stagger):
    async def one(i: int) -> dict:
        await asyncio.sleep(stagger * i)
        raw, key = configs[i % len(configs)]
        try:
            return await visit(url, raw, key, poll_s, timeout)
        except Exception as err:  # a dropped connection is a failed session, not a crash
            return {"served": False, "errors": [f"{type(err).__name__}: {err}"], "seconds": 0}

    return await asyncio.gather(*(one(i) for i in range(n)))


def drive(
    workdir: Path,
    sessions: int = 20,
    n_configs: int = 5,
    poll_s: float = 1.0,
    timeout: float = 300.0,
    stagger: float = 0.05,
) -> dict:
    """Run the load and return the report (see the module docstring)."""
    from engine.store import Store

    configs = []
    for seed in range(n_configs):
        raw = load_config(seed)
        configs.append((raw, prepare(raw)[1]))
    cache = workdir / "cache"
    log_path = workdir / "streamlit.log"
    with app_server(cache, log_path) as (url, pid):
        sampler = MemorySampler(pid)
        sampler.start()
        t0 = time.perf_counter()
        visits = asyncio.run(_drive(url, configs, sessions, poll_s, timeout, stagger))
        wall = time.perf_counter() - t0
        counters = asyncio.run(read_counters(url))
        sampler.stop()
    store = Store(cache)
    stored = [key for _, key in configs if store.get_result(key) is not None]
    store.close()
    log = log_path.read_text(errors="replace")
    seconds = sorted(v["seconds"] for v in visits)
    return {
        "sessions": sessions,
        "configs": n_configs,
        "served": sum(v["served"] for v in visits),
        "errors": [e for v in visits for e in v["errors"]],
        "tracebacks_in_server_log": log.count("Traceback"),
        "runs_started": counters["started"] if counters else None,
        "counters": counters,
        "results_in_store": len(stored),
        "wall_s": round(wall, 2),
        "session_s": {
            "median": round(seconds[len(seconds) // 2], 2),
            "max": round(seconds[-1], 2),
        },
        "reruns": sum(v.get("reruns", 0) for v in visits),
        "memory_mb": {
            "start": round(sampler.first_mb),
            "peak": round(sampler.peak_mb),
            "end": round(sampler.last_mb),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--configs", type=int, default=5)
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between a session's reruns")
    args = ap.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        report = drive(Path(tmp), args.sessions, args.configs, args.poll)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
