#!/usr/bin/env bash
# Analysis throughput benchmark (see analyze_vs_pandas.py): Kiln vs pandas, one run; writes
# bench/results/analyze.json. Needs ~2 GB of free space under /tmp for the generated CSV.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
bash examples/flights/fetch_data.sh
python=$(bash scripts/python_env.sh bench)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target kiln -j "$(nproc)"
"$python" bench/analyze_vs_pandas.py --python "$python" "$@"
