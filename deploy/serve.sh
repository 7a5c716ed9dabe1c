#!/bin/sh
# The container's start command (the Dockerfile's CMD), also usable outside a container:
#   PORT=8501 FORGET_CACHE_DIR=/data/cache deploy/serve.sh
# Settings come from the environment, with hosted-demo defaults (docs/deploy.md lists the rest);
# arguments are passed on to `streamlit run` (e.g. --logger.level debug):
#   PORT              port to serve on (8501; on Hugging Face Spaces it must equal app_port)
#   HOST              address to bind (0.0.0.0: reachable from outside the container)
#   BASE_URL_PATH     serve under a path prefix behind a reverse proxy (e.g. forget; default none)
#   FORGET_HOSTED     1 = hosted mode with the caps of Caps.from_env (0 turns it off)
#   FORGET_CACHE_DIR  the result store (put it on a volume; default: cache/ in the repository)
#   PYTHON            the interpreter with the requirements installed (python3 on PATH)
set -eu

cd "$(dirname "$0")/.."  # the repository root: app/main.py and .streamlit/config.toml

PORT="${PORT:-8501}"
HOST="${HOST:-0.0.0.0}"
BASE_URL_PATH="${BASE_URL_PATH:-}"
export FORGET_HOSTED="${FORGET_HOSTED:-1}"
export FORGET_CACHE_DIR="${FORGET_CACHE_DIR:-$PWD/cache}"
mkdir -p "$FORGET_CACHE_DIR"

# exec: the server replaces this shell, so SIGTERM / Ctrl-C reach it directly. app.serve is
# `streamlit run app/main.py` with the job processes started first (no wait on the first Run).
# The flags repeat .streamlit/config.toml on purpose: a hosted server must not depend on a file
# a deploy can drop.
exec "${PYTHON:-python3}" -m app.serve \
    --server.address "$HOST" \
    --server.port "$PORT" \
    --server.baseUrlPath "$BASE_URL_PATH" \
    --server.headless true \
    --server.enableXsrfProtection true \
    --server.enableCORS true \
    --server.maxUploadSize 1 \
    --server.maxMessageSize 64 \
    --server.fileWatcherType none \
    --server.runOnSave false \
    --browser.gatherUsageStats false \
    --client.showErrorDetails none \
    --client.toolbarMode minimal \
    --global.developmentMode false \
    "$@"
