#!/usr/bin/env bash
# Kiln vs PyTorch CPU training benchmark (see train_cpu_vs_pytorch.py). Builds kiln, creates the
# benchmark venv (PyPI torch) once, runs both in one go and writes bench/results/train_cpu.{json,md}.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
python=$(bash scripts/python_env.sh bench)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target kiln -j "$(nproc)"
"$python" bench/train_cpu_vs_pytorch.py --torch-python "$python" --json bench/results/train_cpu.json "$@"
