#!/usr/bin/env bash
# Data-parallel scaling on CPU (see scale_data_parallel.py): Kiln 1 and 2 MPI ranks vs PyTorch
# DDP (gloo) 1 and 2 processes, one run; writes bench/results/scale.json.
# KILN_BUILD_DIR picks the build directory (default build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kiln=$(bash bench/build_kiln.sh)
bash examples/flights/fetch_data.sh
python=$(bash scripts/python_env.sh bench)
"$python" bench/scale_data_parallel.py --torch-python "$python" --kiln "$kiln" "$@"
