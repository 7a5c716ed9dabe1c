#!/usr/bin/env bash
# The GPU path in one prepared run (issue 18): set up Python, then bench/gpu_check.py, which
# prints nvidia-smi and torch's CUDA, runs the CUDA tests, the training race (engine vs bare
# loop vs Avalanche), CKA, one run through the app's job manager, and the reach checks, and
# writes everything to gpu_results.json (+ gpu_results.md, gpu_check.log) in the results folder.
#
#   bash bench/gpu_check.sh                       # on a lent GPU: ≤ 6 minutes on one H200
#   bash bench/gpu_check.sh --device cpu --tiny   # the CPU dry run (a development machine)
#   bash bench/gpu_check.sh --only tests job      # some steps only (env always runs)
#
# Arguments go to bench/gpu_check.py (--device, --tiny, --out, --budget, --only). Results
# folder: --out, else $GPU_CHECK_OUT, else $OUT (the device tool's output folder), else bench/.
#
# Python: the first of these that works (GPU_CHECK_SETUP=venv|image|make forces one):
#   0. $GPU_CHECK_PYTHON, as it is;
#   1. venv:  .venv/bin/python, when it imports torch, pydantic, diskcache and the engine;
#   2. image: the machine's python3 (GPU_CHECK_IMAGE_PYTHON) when it holds torch — the lent
#      device's image, which reaches no registry — plus the wheels of .whl/ (GPU_CHECK_WHEELS;
#      made here by bench/gpu_wheels.sh and carried) installed into a folder on PYTHONPATH;
#   3. make:  `make .venv/.bench`, the project's own requirements from the registries.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
T0=$(date +%s.%N)

OUTDIR=${GPU_CHECK_OUT:-${OUT:-bench}}
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = "--out" ] && [ $((i + 1)) -lt ${#args[@]} ]; then OUTDIR=${args[$((i + 1))]}; fi
done
mkdir -p "$OUTDIR"

imports_project() { "$1" -c "import torch, pydantic, diskcache, engine.runner" >/dev/null 2>&1; }

setup_python() {
  local want=${GPU_CHECK_SETUP:-auto} image=${GPU_CHECK_IMAGE_PYTHON:-python3}
  local wheels=${GPU_CHECK_WHEELS:-.whl}
  if [ -n "${GPU_CHECK_PYTHON:-}" ]; then
    PY=$GPU_CHECK_PYTHON HOW="GPU_CHECK_PYTHON=$GPU_CHECK_PYTHON"
    return
  fi
  if [[ $want == auto || $want == venv ]] && [ -x .venv/bin/python ] && imports_project .venv/bin/python; then
    PY=.venv/bin/python HOW="the .venv present"
    return
  fi
  if [[ $want == auto || $want == image ]] && "$image" -c "import torch" >/dev/null 2>&1; then
    PY=$(command -v "$image") HOW="the machine's $image"
    if compgen -G "$wheels/*.whl" >/dev/null; then
      local site=${TMPDIR:-/tmp}/forget-gpu-site
      echo ">> installing $(ls "$wheels"/*.whl | wc -l) carried wheels from $wheels into $site"
      "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" "$wheels"/*.whl || echo "!! pip install of the carried wheels failed"
      export PYTHONPATH="$PWD:$site${PYTHONPATH:+:$PYTHONPATH}"
      HOW="$HOW + $(ls "$wheels"/*.whl | wc -l) wheels from $wheels"
    else
      export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
      echo "!! no wheels in $wheels: run 'bash bench/gpu_wheels.sh' where PyPI answers and carry .whl"
      HOW="$HOW, no wheels (pydantic, Avalanche… missing)"
    fi
    return
  fi
  echo ">> make .venv/.bench (the project's requirements; the first time takes minutes)"
  make .venv/.bench
  PY=.venv/bin/python HOW="make .venv/.bench"
}

main() {
  echo ">> gpu check: $(date -Is) on $(hostname), results to $OUTDIR"
  local t=$SECONDS
  setup_python
  local setup_s=$((SECONDS - t))
  echo ">> Python: $HOW ($setup_s s): $("$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "CUDA", torch.version.cuda, "available:", torch.cuda.is_available())' 2>&1 | tail -1)"
  echo ">> imports: $("$PY" -c 'import engine.jobs, mlxtend, avalanche, torch_cka; print("ok")' 2>&1 | tail -1)"
  PYTHONUNBUFFERED=1 "$PY" bench/gpu_check.py --out "$OUTDIR" --t0 "$T0" \
    --setup-how "$HOW" --setup-s "$setup_s" "$@"
}

main "$@" 2>&1 | tee "$OUTDIR/gpu_check.log"
