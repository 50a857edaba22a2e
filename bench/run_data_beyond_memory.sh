#!/usr/bin/env bash
# Training on data beyond memory (see data_beyond_memory.py): generates a flights-like CSV of
# --gb GB (default 5), then times kiln analyze, kiln transform, the input pipeline alone (Kiln's
# input_pipeline_bench vs a PyTorch DataLoader peer) and one epoch of wide & deep training on 1
# and 2 ranks, with peak RSS; writes bench/results/data_beyond_memory.json. Needs about 4x --gb
# of free space under the work directory (default /tmp/kiln_dbm; --keep keeps it for a rerun).
# KILN_BUILD_DIR picks the build directory (default build), KILN_JOBS the build parallelism.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kiln=$(bash bench/build_kiln.sh)
build=${KILN_BUILD_DIR:-build}
# The Kiln side of the pipeline step (bench/input_pipeline.cc, target kiln_bench_input_pipeline).
# Without it the driver runs the PyTorch peer alone and says so.
cmake --build "$build" --target kiln_bench_input_pipeline -j "${KILN_JOBS:-$(nproc)}" >&2 ||
  echo "run_data_beyond_memory.sh: warning: could not build kiln_bench_input_pipeline" >&2
# /usr/bin/time -v measures each step's peak RSS (Debian package `time`, not in scripts/setup.sh).
if [ ! -x /usr/bin/time ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends time
fi
bash examples/flights/fetch_data.sh
python=$(bash scripts/python_env.sh bench)
"$python" bench/data_beyond_memory.py --python "$python" --kiln "$kiln" "$@"
