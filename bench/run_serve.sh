#!/usr/bin/env bash
# Serving benchmark (see serve_vs_nginx.py): wrk against `kiln serve` (babyweight wide & deep and
# the Fashion-MNIST CNN) and against nginx serving the same response body as a static file, in
# one run on this machine; then Triton's perf_analyzer against the KServe v2 endpoint. Writes
# bench/results/serve.json, serve.md and perf_analyzer.csv.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
# Benchmark-only tools: the load generator and the no-work ceiling.
missing=()
for p in wrk nginx-light libb64-0d; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
bash examples/babyweight/fetch_data.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target kiln kiln_bench_servable_latency -j "$(nproc)"
perf_python=$(bash scripts/python_env.sh perf)
KILN_BENCH_COMMAND="bash bench/run_serve.sh $*" python3 bench/serve_vs_nginx.py --kiln build/cli/kiln --perf_venv "$(dirname "$(dirname "$perf_python")")" "$@"
