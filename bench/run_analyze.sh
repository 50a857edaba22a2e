#!/usr/bin/env bash
# Analysis throughput benchmark (see analyze_vs_peers.py): Kiln vs pandas, polars and DuckDB, one run; writes
# bench/results/analyze.json. Needs ~2 GB of free space under /tmp for the generated CSV.
# KILN_BUILD_DIR picks the build directory (default build), KILN_JOBS the build parallelism.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kiln=$(bash bench/build_kiln.sh)
bash examples/flights/fetch_data.sh
python=$(bash scripts/python_env.sh analyze)
"$python" bench/analyze_vs_peers.py --python "$python" --kiln "$kiln" "$@"
