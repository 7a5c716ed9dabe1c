"""The container's health check (the Dockerfile's HEALTHCHECK): exit 0 when the server started
by deploy/serve.sh answers ``ok`` on Streamlit's ``/_stcore/health``, else exit 1 with one line
saying why. Reads PORT, HOST and BASE_URL_PATH as serve.sh does; standard library only (no curl in the image).
"""

from __future__ import annotations

import os
import sys
import urllib.request

WILDCARDS = ("", "0.0.0.0", "::")  # a server bound to every address answers on loopback


def health_url(env: dict[str, str] = os.environ) -> str:
    """Where serve.sh's server answers, from the same PORT, HOST and BASE_URL_PATH."""
    host = env.get("HOST", "").strip()
    host = "127.0.0.1" if host in WILDCARDS else host
    if ":" in host:  # an IPv6 address goes in brackets
        host = f"[{host}]"
    base = env.get("BASE_URL_PATH", "").strip("/ ")
    prefix = f"/{base}" if base else ""
    return f"http://{host}:{env.get('PORT', '8501').strip()}{prefix}/_stcore/health"


def main() -> int:
    url = health_url()
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            body = response.read(64).decode("utf-8", "replace").strip()
    except OSError as err:  # refused, timed out, HTTP error status
        print(f"unhealthy: {url}: {err}", file=sys.stderr)
        return 1
    if body != "ok":
        print(f"unhealthy: {url} answered {body[:40]!r}, not 'ok'", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
