#!/usr/bin/env bash
# CPU GEMM benchmark: Kiln's gemm<float> (oneDNN, ISA chosen at run time) against Debian's
# OpenBLAS in the same run, on square and on the example models' layer shapes.
# Writes bench/results/gemm_cpu.json.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
dpkg-query -W -f='${Status}' libopenblas0-pthread 2>/dev/null | grep -q "install ok installed" ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libopenblas0-pthread >/dev/null
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target kiln_bench_gemm -j "$(nproc)"
openblas=$(ls /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 2>/dev/null || echo libopenblas.so.0)
build/bench/kiln_bench_gemm --openblas "$openblas" --json bench/results/gemm_cpu.json "$@"
