#!/usr/bin/env bash
# Kiln vs PyTorch CPU training benchmark (see train_cpu_vs_pytorch.py). Builds kiln, creates the
# benchmark venv (PyPI torch) once, runs both in one go and writes bench/results/train_cpu.{json,md}.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
KILN_BUILD_DIR=build bash bench/build_kiln.sh >/dev/null  # train_cpu_vs_pytorch.py runs build/cli/kiln
python=$(bash scripts/python_env.sh bench)
"$python" bench/train_cpu_vs_pytorch.py --torch-python "$python" --json bench/results/train_cpu.json "$@"
