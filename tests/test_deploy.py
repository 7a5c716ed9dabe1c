"""The deploy recipe without a Docker engine: the Dockerfile is read, and its start command
(CMD ``deploy/serve.sh``, run from WORKDIR, the repository root) is run with the image's
environment on a free loopback port and a temporary store, as the container would run it.

Checked as a visitor and an operator see it: the health endpoint and the HEALTHCHECK command
answer, a link to a config already in the store opens as "Done … opened from the store", a Run
through the page finishes in hosted mode, and one SIGTERM ends the whole process tree (the
server, the forkserver that starts job processes, the job processes). A websocket client that
speaks Streamlit's protocol (bench/load_sessions.py) stands in for the browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
import websockets
from conftest import tiny_config
from streamlit.proto.WidgetStates_pb2 import WidgetState

from app.share import config_to_query
from engine.runner import prepare, run
from engine.store import Store

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("load_sessions", ROOT / "bench/load_sessions.py")
load_sessions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load_sessions)

# SIGTERM → no process of the tree left. Measured on 2 cores shared with other jobs (load 8–11):
# the server goes in 4–8 s, the forkserver 5–8 s later (ending an interpreter with torch loaded
# is slow there). In a container only the server counts: tini exits with it, and the rest goes
# with the container.
STOP_S = 20
# Paths and addresses of the image that a test run replaces with its own.
LOCAL = ("HOME", "PORT", "FORGET_CACHE_DIR", "FORGET_DATA_DIR")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# -- the Dockerfile ------------------------------------------------------------------------
def instructions(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        word, _, args = (pending + line).strip().partition(" ")
        out.append((word.upper(), args.strip()))
        pending = ""
    return out


def last(name: str) -> str:
    found = [args for word, args in instructions() if word == name]
    assert found, f"the Dockerfile has no {name}"
    return found[-1]


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) CMD / ENTRYPOINT: the argv as given; the shell form would put
    /bin/sh -c in front, and SIGTERM would stop at the shell."""
    argv = json.loads(args)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), args
    return argv


def image_env() -> dict[str, str]:
    env = {}
    for word, args in instructions():
        if word == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(args))
    return env


def test_dockerfile_serves_the_app_with_deploy_serve_sh_non_root_hosted_and_store_on_a_volume():
    assert last("FROM") == "python:3.11-slim"
    assert exec_form(last("CMD")) == ["deploy/serve.sh"]
    assert exec_form(last("ENTRYPOINT")) == ["/usr/bin/tini", "--"]  # signals on, zombies reaped
    assert os.access(ROOT / "deploy/serve.sh", os.X_OK), "deploy/serve.sh must be executable"
    assert last("USER") not in ("root", "0")
    env = image_env()
    assert env["FORGET_HOSTED"] == "1"
    volumes = exec_form(last("VOLUME"))
    assert any(Path(env["FORGET_CACHE_DIR"]).is_relative_to(v) for v in volumes), volumes
    assert last("EXPOSE") == env["PORT"] == "8501"
    health = last("HEALTHCHECK")
    assert exec_form(health.partition("CMD")[2]) == ["python", "deploy/healthcheck.py"]
    installs = " ".join(args for word, args in instructions() if word == "RUN")
    assert "--index-url https://download.pytorch.org/whl/cpu" in installs
    assert "pip install -r requirements.txt" in installs


def test_dockerfile_installs_the_cpu_torch_at_the_versions_requirements_txt_pins():
    installs = " ".join(args for word, args in instructions() if word == "RUN")
    cpu = installs.split("--index-url https://download.pytorch.org/whl/cpu", 1)[1]
    picked = re.match(r"\s*\$\((grep .*? requirements\.txt)\)", cpu)
    assert picked, cpu[:120]
    words = subprocess.run(
        ["sh", "-c", picked.group(1)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()  # the shell splits $(…) into words the same way
    pins = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("==")[0].strip() in ("torch", "torchvision")
    ]
    assert words == pins and len(pins) == 2, (words, pins)


_hc = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy/healthcheck.py")
healthcheck_py = importlib.util.module_from_spec(_hc)
_hc.loader.exec_module(healthcheck_py)


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://127.0.0.1:8501/_stcore/health"),
        ({"HOST": "0.0.0.0", "PORT": "7860"}, "http://127.0.0.1:7860/_stcore/health"),
        ({"HOST": "::"}, "http://127.0.0.1:8501/_stcore/health"),
        ({"HOST": "::1"}, "http://[::1]:8501/_stcore/health"),
        ({"HOST": "10.0.0.5"}, "http://10.0.0.5:8501/_stcore/health"),
        ({"BASE_URL_PATH": "/forget/"}, "http://127.0.0.1:8501/forget/_stcore/health"),
    ],
)
def test_healthcheck_asks_where_serve_sh_listens(env, url):
    assert healthcheck_py.health_url(env) == url


def test_spaces_header_declares_the_docker_sdk_on_the_images_port():
    header = (ROOT / "deploy/spaces-header.md").read_text().split("---")[1]
    fields = dict(line.split(": ", 1) for line in header.strip().splitlines())
    assert fields["sdk"] == "docker"
    assert fields["app_port"] == image_env()["PORT"]


# -- the start command, run as the container runs it ---------------------------------------
@contextlib.contextmanager
def container(tmp_path: Path):
    """CMD from WORKDIR with the image's environment; yields (url, process, store dir).

    Loopback only (HOST, which serve.sh reads), a free port, a temporary store, and the test's
    interpreter first on PATH standing in for the image's python3.
    """
    port = load_sessions.free_port()
    store = tmp_path / "store"
    env = {
        **os.environ,
        **{k: v for k, v in image_env().items() if k not in LOCAL},
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "FORGET_CACHE_DIR": str(store),
        "FORGET_DATA_DIR": str(tmp_path / "datasets"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("PYTHON", None)
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        exec_form(last("CMD")),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the teardown ends only what it started
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while health(url) != "ok":
            assert proc.poll() is None, f"serve.sh exited: {server_log(tmp_path)}"
            assert time.monotonic() < deadline, f"no health on {url}: {server_log(tmp_path)}"
            time.sleep(0.3)
        yield url, proc, store
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        log.close()


def health(url: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.read().decode().strip()
    except OSError:
        return None


def server_log(tmp_path: Path, tail: int = 3000) -> str:
    """The end of what the server printed, without the colours of Streamlit's tracebacks."""
    text = (tmp_path / "server.log").read_text(errors="replace")
    return ANSI.sub("", text)[-tail:]


def healthcheck(url: str) -> subprocess.CompletedProcess:
    """The image's HEALTHCHECK command, with the port serve.sh was given."""
    argv = exec_form(last("HEALTHCHECK").partition("CMD")[2])
    env = {**os.environ, "PORT": url.rsplit(":", 1)[1], "HOST": "127.0.0.1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)


def texts(elements) -> list[str]:
    return [
        el.alert.body if el.WhichOneof("type") == "alert" else el.markdown.body
        for el in elements
        if el.WhichOneof("type") in ("alert", "markdown")
    ]


async def open_page(url: str, raw: dict, press_run: bool = False) -> tuple[list[str], list]:
    """The Forgetting page on the config's link (pressing Run once if asked): its texts, and
    the exceptions and error messages it showed."""
    query = "&".join(f"{k}={v}" for k, v in config_to_query(raw).items())
    ws_url = url.replace("http", "ws", 1) + "/_stcore/stream"
    async with websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None) as ws:
        session = load_sessions.Session(ws, query)
        elements = await session.rerun(timeout=90)
        if press_run:
            run_ids = [
                e.button.id
                for e in elements
                if e.WhichOneof("type") == "button" and e.button.label == "Run"
            ]
            assert run_ids, (texts(elements), session.errors)
            elements = await session.rerun([WidgetState(id=run_ids[0], trigger_value=True)])
        return texts(elements), session.errors


def process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def job_processes(pid: int) -> list[psutil.Process]:
    """Processes forked by the server's forkserver (each runs one job)."""
    out = []
    for p in process_tree(pid)[1:]:
        with contextlib.suppress(psutil.Error):
            if p.ppid() != pid and "forkserver" in " ".join(p.cmdline()):
                out.append(p)
    return out


def stop_with_one_sigterm(proc: subprocess.Popen) -> tuple[list[psutil.Process], str]:
    """SIGTERM to the start command's process only, as `docker stop` (through tini) sends it:
    what of its tree is still alive STOP_S later, and when the server and the rest ended."""
    tree = process_tree(proc.pid)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    ended = {}
    _, alive = psutil.wait_procs(
        tree, timeout=STOP_S, callback=lambda p: ended.setdefault(p.pid, time.monotonic() - t0)
    )
    server = f"{ended[proc.pid]:.1f} s" if proc.pid in ended else f"not within {STOP_S} s"
    rest = "not all" if alive else f"{max(ended.values()):.1f} s"
    return alive, f"server gone in {server}; all {len(tree)} processes: {rest}"


def describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            out.append(f"{p.pid}: {' '.join(p.cmdline())[:90]}")
    return out


@pytest.mark.timeout(300)
def test_serve_sh_answers_health_serves_a_stored_run_runs_a_job_and_stops_on_one_sigterm(
    tmp_path,
):
    stored = tiny_config(train__seed=11)
    with contextlib.closing(Store(tmp_path / "store")) as prefill:
        key = run(stored, store=prefill).key
    with container(tmp_path) as (url, proc, store):
        assert health(url) == "ok"
        check = healthcheck(url)
        assert check.returncode == 0, check.stderr

        shown, errors = asyncio.run(open_page(url, stored))
        assert errors == [], server_log(tmp_path)
        done = [t for t in shown if t.startswith("Done:")]
        assert done and "opened from the store" in done[0] and key in done[0], shown

        fresh = tiny_config(train__seed=12)  # not stored: a visitor's Run through the page
        visit = asyncio.run(load_sessions.visit(url, fresh, prepare(fresh)[1], 0.5, 120))
        assert visit["served"] and visit["pressed_run"], (visit, server_log(tmp_path))
        assert visit["errors"] == [], server_log(tmp_path)
        with contextlib.closing(Store(store)) as opened:
            assert opened.get_result(prepare(fresh)[1]) is not None

        started = describe(process_tree(proc.pid))
        assert any("forkserver" in p for p in started), started  # the job workers are up
        alive, took = stop_with_one_sigterm(proc)
        assert not alive, f"still running {STOP_S} s after one SIGTERM: {describe(alive)}"
        print(f"\none SIGTERM, idle server with its forkserver: {took}")
        down = healthcheck(url)
        assert down.returncode == 1 and "unhealthy" in down.stderr
    assert "Traceback" not in server_log(tmp_path, tail=10**7)


# Still running STOP_S after the SIGTERM on a fast machine too (one CPU thread, 15,000 steps of
# batch 8 through a 4.9M-parameter MLP, ~1.8e12 multiply-adds), yet inside the hosted caps.
LONG_RUN = tiny_config(
    data__benchmark="split-mnist5k",
    model__depth=2,
    model__width=1850,
    train__epochs=30,
    train__batch_size=8,
)


class StillRunning(AssertionError):
    """The one failure the xfail below expects; any other failure of that test is a failure."""


@pytest.mark.timeout(300)
def test_one_sigterm_stops_a_server_with_a_run_in_progress_and_the_run_ends_cancelled(tmp_path):
    with container(tmp_path) as (url, proc, store):
        shown, errors = asyncio.run(open_page(url, LONG_RUN, press_run=True))
        assert errors == [], server_log(tmp_path)
        assert not any(t.startswith("Done:") for t in shown), shown
        deadline = time.monotonic() + 90
        while not job_processes(proc.pid):
            assert time.monotonic() < deadline, f"no job process: {server_log(tmp_path)}"
            time.sleep(0.2)
        time.sleep(1)  # into its training steps

        alive, took = stop_with_one_sigterm(proc)
        if alive:
            raise StillRunning(f"{took}; still running: {describe(alive)}")
        print(f"\none SIGTERM during a run: {took}")
    # Stopped at a step boundary, not killed: its lease is released and a rerun resumes.
    with contextlib.closing(Store(store)) as opened:
        progress = opened.get_progress(prepare(LONG_RUN)[1]) or {}
    assert progress.get("state") == "cancelled", progress
