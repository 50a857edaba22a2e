#!/usr/bin/env bash
# The full fault-injection run (tests/fault/fault_injection.py without --quick): 15 training runs,
# 40 exports, 40 tune creations and 12 tune studies killed at random points, a full tmpfs (when
# mount is allowed), a corrupt checkpoint, a corrupt newest servable version, SIGTERM under
# keep-alive load, and two trainings at once against one. Writes bench/results/fault_injection.md.
#   bash bench/run_fault_injection.sh [--seed N]      (KILN=path/to/kiln to skip the build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
kiln=${KILN:-$(bash bench/build_kiln.sh)}
# TensorBoard itself reads the resumed runs' event files back.
KILN_PYTHON=${KILN_PYTHON:-$(bash scripts/python_env.sh test)}
export KILN_PYTHON
report=$(mktemp)
trap 'rm -f "$report"' EXIT
rc=0
load=$(cut -d' ' -f1-3 /proc/loadavg)
python3 tests/fault/fault_injection.py --kiln "$kiln" --source "$root" --report "$report" "$@" || rc=$?
{
  echo "# Fault injection (issue 18)"
  echo
  echo "Command: \`bash bench/run_fault_injection.sh $*\` ($(date -u +%Y-%m-%dT%H:%MZ), exit code $rc)"
  echo "Commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/results' || echo ' (with uncommitted changes)')"
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average before: $load"
  echo
  echo "What each line asserts: see the docstring of tests/fault/fault_injection.py."
  echo
  sed 's/^/    /' "$report"
} > bench/results/fault_injection.md
cat bench/results/fault_injection.md
exit $rc
