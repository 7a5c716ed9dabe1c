"""`python -m app.serve [streamlit flags]`: `streamlit run app/main.py` with the engine's job
processes started first.

Jobs run in processes forked from a server that has torch and the engine imported (engine.jobs).
Started by the first page view, that server made the first Run of a fresh server wait for its
imports (~7 s); started here, before Streamlit serves anything, it is ready by the time a
visitor presses Run. `make run` and deploy/serve.sh start the app this way.
"""

from __future__ import annotations

import sys
from pathlib import Path

from streamlit.web import cli as streamlit_cli

from engine.jobs import start_job_processes

MAIN = Path(__file__).resolve().parent / "main.py"


def main(argv: list[str]) -> None:
    start_job_processes()  # in the background: Streamlit starts serving meanwhile
    sys.argv = ["streamlit", "run", str(MAIN), *argv]
    streamlit_cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
