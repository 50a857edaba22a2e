#!/usr/bin/env bash
# Creates (once) a Python venv under .venv/NAME with the packages a test or benchmark needs:
#   test  - tensorboard (reads Kiln's event files back in the compatibility test)
#   bench - torch, numpy and psutil: the peer of the training benchmarks (PyPI's torch also
#           pulls its CUDA libraries, a few GB, once)
# Prints the venv's python. Idempotent: an existing, complete venv is reused.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: python_env.sh test|bench}
venv="$root/.venv/$name"
case "$name" in
  test) packages=(tensorboard); probe="import tensorboard" ;;
  bench) packages=(torch numpy psutil); probe="import torch, numpy, psutil" ;;
  *) echo "python_env.sh: unknown environment $name" >&2; exit 2 ;;
esac
if ! "$venv/bin/python" -c "$probe" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "${packages[@]}" >&2
fi
echo "$venv/bin/python"
