#!/usr/bin/env bash
# Shared first half of the bench/run_*.sh scripts: installs the Debian packages, configures a
# Release build in $KILN_BUILD_DIR (default build) and builds the kiln binary with $KILN_JOBS
# jobs (default all cores). Prints the binary's path on stdout; everything else goes to stderr.
#   kiln=$(bash bench/build_kiln.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${KILN_BUILD_DIR:-build}
bash scripts/setup.sh >&2
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$build" --target kiln -j "${KILN_JOBS:-$(nproc)}" >&2
echo "$root/$build/cli/kiln"
