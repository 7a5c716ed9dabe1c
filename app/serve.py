"""`python -m app.serve [streamlit flags]`: `streamlit run app/main.py` with the engine's job
processes started first and the pages' modules imported while Streamlit starts.

Jobs run in processes forked from a server that has torch and the engine imported (engine.jobs).
Started by the first page view, that server made the first Run of a fresh server wait for its
imports (~7 s); started here, before Streamlit serves anything, it is ready by the time a
visitor presses Run. Likewise the modules the pages import (figures, kinds, lessons: ~0.6 s) are
imported in the background, so a link opened on a fresh server shows its stored result without
waiting for them. `make run` and deploy/serve.sh start the app this way.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
import threading
import time
from pathlib import Path

from streamlit.runtime import Runtime
from streamlit.web import cli as streamlit_cli

import app
from engine import kinds
from engine.jobs import start_job_processes

MAIN = Path(__file__).resolve().parent / "main.py"
# Scripts Streamlit runs (their top level draws), not modules to import.
SCRIPTS = ("app.main", "app.serve", "app.views")

log = logging.getLogger(__name__)


def page_modules() -> list[str]:
    """Every module under app/ that the page scripts import."""
    return [
        m.name
        for m in pkgutil.walk_packages(app.__path__, "app.")
        if not any(m.name == s or m.name.startswith(s + ".") for s in SCRIPTS)
    ]


def preload_pages(wait_s: float = 60.0) -> None:
    """Import the pages' modules once Streamlit's runtime exists (st.cache_data binds to it)."""
    deadline = time.monotonic() + wait_s
    while not Runtime.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        kinds.table()  # discovers every kind
        for name in page_modules():
            importlib.import_module(name)
    except Exception:  # an optimisation: the first page view imports them instead
        log.debug("preloading the pages' modules failed", exc_info=True)


def main(argv: list[str]) -> None:
    start_job_processes()  # in the background: Streamlit starts serving meanwhile
    threading.Thread(target=preload_pages, name="forget-preload", daemon=True).start()
    sys.argv = ["streamlit", "run", str(MAIN), *argv]
    streamlit_cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
