#!/usr/bin/env bash
# Tabular quality benchmark (see tabular_vs_pytorch.py): fetches the example data, builds kiln,
# runs Kiln and PyTorch in one go, writes bench/results/tabular_quality.json.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
KILN_BUILD_DIR=build bash bench/build_kiln.sh >/dev/null  # tabular_vs_pytorch.py runs build/cli/kiln
bash examples/flights/fetch_data.sh
bash examples/babyweight/fetch_data.sh
python=$(bash scripts/python_env.sh bench)
"$python" bench/tabular_vs_pytorch.py "$@"
