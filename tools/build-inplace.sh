#!/usr/bin/env bash
# Developer build: compiles clarion._core into build/dev and copies it next to python/clarion, so
# `PYTHONPATH=python pytest` tests the working tree without reinstalling. CI uses `pip install .`.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python}
cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -Dpybind11_DIR="$($py -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v $py)" \
  -DCLARION_CUDA="${CLARION_CUDA:-AUTO}" >/dev/null
cmake --build build/dev -j "${JOBS:-2}"
cp build/dev/_core*.so python/clarion/
echo "built $(ls python/clarion/_core*.so)"
