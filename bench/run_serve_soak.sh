#!/usr/bin/env bash
# Serving soak (see serve_soak.py): kiln serve on babyweight at half of its peak QPS for 10
# minutes, a version exported every 30 s, the fuzz corpus mixed in at 1%. Writes
# bench/results/serve_soak.json; exit 1 when a criterion fails.
#   bench/run_serve_soak.sh [--minutes 10] [--reload-seconds 30]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
dpkg-query -W -f='${Status}' wrk 2>/dev/null | grep -q "install ok installed" || {
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk
}
bash examples/babyweight/fetch_data.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target kiln -j "$(nproc)"
python3 bench/serve_soak.py --kiln build/cli/kiln "$@"
