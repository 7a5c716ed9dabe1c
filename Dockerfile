# Forgetting Explorer as a hosted demo (docs/deploy.md):
#   docker build -t forgetting-explorer .
#   docker run -p 8501:8501 -v forget-store:/data forgetting-explorer
# The start command is deploy/serve.sh; tests/test_deploy.py runs it (no Docker engine needed)
# and checks the health endpoint, a page answered from the store and the stop on one SIGTERM.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# tini as PID 1: passes SIGTERM on to the server and reaps any orphaned process.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# The pinned requirements. torch and torchvision come from PyTorch's CPU index at the versions
# requirements.txt pins (read from it): PyPI's default torch is the CUDA build, several GB more.
# The second install then finds them satisfied (2.14.1+cpu matches ==2.14.1) and adds the rest.
COPY requirements.txt ./
RUN pip install --index-url https://download.pytorch.org/whl/cpu \
        $(grep -E '^(torch|torchvision)==' requirements.txt) \
    && pip install -r requirements.txt

# uid 1000, as Hugging Face Spaces run containers. The code stays owned by root (read-only for
# the server); /data (the store) and the home directory are writable.
RUN useradd --create-home --uid 1000 app \
    && mkdir -p /data \
    && chown app:app /data
COPY . .
RUN python -m compileall -q app engine

USER app
ENV HOME=/home/app \
    PORT=8501 \
    FORGET_HOSTED=1 \
    FORGET_PROXIES=1 \
    FORGET_CACHE_DIR=/data/cache \
    FORGET_DATA_DIR=/data/datasets

# The result store (and any torchvision data) lives here: a named volume or a host directory.
VOLUME ["/data"]
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "deploy/healthcheck.py"]

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["deploy/serve.sh"]
