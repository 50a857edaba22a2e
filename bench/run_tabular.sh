#!/usr/bin/env bash
# Tabular quality benchmark (see tabular_vs_pytorch.py): fetches the example data, builds kiln,
# runs Kiln and PyTorch in one go, writes bench/results/tabular_quality.json.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
bash examples/flights/fetch_data.sh
bash examples/babyweight/fetch_data.sh
python=$(bash scripts/python_env.sh bench)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target kiln -j "$(nproc)"
"$python" bench/tabular_vs_pytorch.py "$@"
