#!/usr/bin/env bash
# CTest GpuCheck.Tier1OnSim: runs the kiln steps of scripts/gpu_check.sh tier 1 (device_tests,
# train_cuda_vs_cpu, serve_smoke) with KILN_GPU_CHECK_DEVICE=SIM on a machine without a GPU, so their command lines,
# the IDX subset writer and the comparisons are tried before a GPU run spends device time on them.
# On sim the results equal the CPU's, so both steps must pass.
#   tests/scripts/gpu_check_tier1_sim.sh KILN_BINARY SOURCE_DIR
set -euo pipefail
KILN="${1:?usage: gpu_check_tier1_sim.sh KILN_BINARY SOURCE_DIR}"
SRC="${2:?usage: gpu_check_tier1_sim.sh KILN_BINARY SOURCE_DIR}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Small random IDX files (768 training images, 192 test) through the script's subset writer: a
# full-size random file first, then its first rows, as --prepare cuts Fashion-MNIST.
python3 - "$WORK/full" <<'PY'
import gzip, os, random, struct, sys
d = sys.argv[1]
os.makedirs(d)
rng = random.Random(5)
for name, n in (("train", 1000), ("t10k", 300)):
    labels = bytes(rng.randrange(10) for _ in range(n))
    # Images that depend on the label, so the model has something to learn.
    images = bytearray()
    for y in labels:
        images += bytes(min(255, rng.randrange(64) + (160 if (i % 10) == y else 0)) for i in range(784))
    with gzip.open(f"{d}/{name}-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\0\0\x08\x03" + struct.pack(">3I", n, 28, 28) + bytes(images))
    with gzip.open(f"{d}/{name}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\0\0\x08\x01" + struct.pack(">I", n) + labels)
PY
mkdir -p "$WORK/data"
KILN_GPU_CHECK_TRAIN_ROWS=768 KILN_GPU_CHECK_EVAL_ROWS=192 KILN_FASHION_MNIST="$WORK/full" \
  "$SRC/scripts/gpu_check.sh" --subset "$WORK/data"

rc=0
KILN_BIN="$KILN" KILN_FASHION_MNIST="$WORK/data" KILN_GPU_CHECK_DEVICE=SIM KILN_GPU_CHECK_TIER=1 \
  KILN_GPU_CHECK_LOG_EVERY=2 KILN_GPU_CHECK_SKIP="environment build tests nccl" \
  "$SRC/scripts/gpu_check.sh" "$WORK/out" || rc=$?
for log in device_tests train_cuda_vs_cpu serve_smoke; do
  echo "--- $log.log"
  cat "$WORK/out/$log.log" 2>/dev/null || echo "(no $log.log)"
done
[ "$rc" -eq 0 ] || { echo "FAIL: scripts/gpu_check.sh exited $rc"; exit 1; }
expect() {
  grep -q -- "$2" "$WORK/out/$1" || { echo "FAIL: no '$2' in $1"; exit 1; }
}
expect steps.tsv $'device_tests\tpass'
expect device_tests.log 'PASSED  \] [1-9][0-9]* tests'
expect steps.tsv $'train_cuda_vs_cpu\tpass'
expect steps.tsv $'serve_smoke\tpass'
# The subset's counts reached kiln: 768 / 128 = 6 steps, the curve every 2 steps on both devices.
expect train_cuda_vs_cpu.log '^ *6 *[0-9.]* *[0-9.]* *0.0000$'
expect train_cuda_vs_cpu.log 'largest loss difference: 0.0000'
expect serve_smoke.log '64 of 64 rows identical'
expect serve_smoke.log 'largest probability difference 0 '
echo "PASS"
