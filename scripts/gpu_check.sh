#!/usr/bin/env bash
# One-command check of the CUDA backend on a GPU machine (issue #6): builds the standalone CUDA
# project (tests/cuda/gpu_check: CUDA toolkit + GoogleTest sources, no -dev packages), runs the
# CUDA tests, compute-sanitizer memcheck on the kernel tests, and the GPU benchmarks (GEMM vs
# cuBLASLt, conv (+ cuDNN through PyTorch), embedding vs device copy bandwidth). Every step is
# logged under OUTDIR, has its own time limit, and a failing step does not stop the next one.
# The summary table is printed last and written to OUTDIR/summary.md.
#
#   scripts/gpu_check.sh OUTDIR            build (or reuse build-gpu-check/) and run everything
#   scripts/gpu_check.sh --prepare         on a CPU machine: copy GoogleTest sources to
#                                          build-gpu-deps/googletest and prebuild build-gpu-check/
#                                          (carry both to the GPU machine to skip the build there)
# Environment: KILN_GTEST_SRC (GoogleTest source tree), JOBS (default: all cores),
# KILN_GPU_CHECK_SKIP="memcheck peers ..." (steps to skip), CUDA_HOME (default /usr/local/cuda).
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
export PATH="$CUDA_HOME/bin:$PATH"
BUILD="$ROOT/build-gpu-check"
JOBS="${JOBS:-$(nproc)}"

find_gtest() {
  for d in "${KILN_GTEST_SRC:-}" "$ROOT/build-gpu-deps/googletest" /usr/src/googletest "$ROOT/third_party/googletest"; do
    if [ -n "$d" ] && [ -f "$d/CMakeLists.txt" ]; then echo "$d"; return 0; fi
  done
  return 1
}

configure_and_build() {
  local gtest
  gtest="$(find_gtest)" || gtest="/nonexistent"
  # NCCL: the toolkit's, else the one in PyTorch's nvidia-nccl wheel.
  local nccl_root=""
  if [ ! -f "$CUDA_HOME/include/nccl.h" ]; then
    nccl_root="$(python3 -c 'import nvidia.nccl; print(list(nvidia.nccl.__path__)[0])' 2>/dev/null || true)"
  fi
  cmake -S "$ROOT/tests/cuda/gpu_check" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc" -DCMAKE_CUDA_ARCHITECTURES=90 -DKILN_GTEST_SOURCE_DIR="$gtest" \
    -DNCCL_ROOT="$nccl_root" &&
    cmake --build "$BUILD" -j "$JOBS"
}

if [ "${1:-}" = "--prepare" ]; then
  mkdir -p "$ROOT/build-gpu-deps"
  src="$(find_gtest)" || { echo "no GoogleTest sources found (set KILN_GTEST_SRC)"; exit 1; }
  if [ "$src" != "$ROOT/build-gpu-deps/googletest" ]; then
    rm -rf "$ROOT/build-gpu-deps/googletest"
    # googletest/ alone (no googlemock, no docs) is what the build needs.
    mkdir -p "$ROOT/build-gpu-deps/googletest"
    cp -r "$src/googletest" "$ROOT/build-gpu-deps/googletest/"
    cp "$src/CMakeLists.txt" "$ROOT/build-gpu-deps/googletest/"
    [ -d "$src/googlemock" ] && cp -r "$src/googlemock" "$ROOT/build-gpu-deps/googletest/"
  fi
  configure_and_build
  rc=$?
  du -sh "$ROOT/build-gpu-deps" "$BUILD"
  exit $rc
fi

OUT="${1:?usage: scripts/gpu_check.sh OUTDIR | --prepare}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
SUMMARY="$OUT/summary.md"
: >"$OUT/steps.tsv"
START=$(date +%s)

skip() { case " ${KILN_GPU_CHECK_SKIP:-} " in *" $1 "*) return 0 ;; esac; return 1; }

# step NAME LIMIT_SECONDS COMMAND...: runs COMMAND with a time limit, its output in OUT/NAME.log.
step() {
  local name="$1" limit="$2"
  shift 2
  if skip "$name"; then
    printf '%s\tskipped\t0\n' "$name" >>"$OUT/steps.tsv"
    return 0
  fi
  echo "=== [$name] (limit ${limit}s) $*" | tee -a "$OUT/progress.log"
  local t0 rc
  t0=$(date +%s)
  timeout --signal=TERM --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  local dt=$(($(date +%s) - t0))
  [ $rc -eq 124 ] && echo "(timed out after ${limit}s)" >>"$OUT/$name.log"
  printf '%s\t%s\t%s\n' "$name" "$rc" "$dt" >>"$OUT/steps.tsv"
  echo "    rc=$rc in ${dt}s; last lines:" | tee -a "$OUT/progress.log"
  tail -n 5 "$OUT/$name.log" | sed 's/^/    | /' | tee -a "$OUT/progress.log"
  return $rc
}

environment() {
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown) $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) changed files"
  echo "host: $(uname -a)"
  echo "cores: $(nproc)"
  # Read-only queries: never change clocks, power, MIG or persistence settings.
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit,temperature.gpu \
    --format=csv 2>&1 || echo "nvidia-smi unavailable"
  nvcc --version 2>&1 | tail -2
  cmake --version 2>&1 | head -1
  ninja --version 2>&1 | sed 's/^/ninja /'
  command -v compute-sanitizer || echo "compute-sanitizer not on PATH"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1 | tail -1
  echo "gtest sources: $(find_gtest || echo none)"
}

export ROOT BUILD JOBS CUDA_HOME PATH
export -f find_gtest configure_and_build environment
# timeout runs programs, not shell functions: the functions go through an exported bash -c.
step environment 30 bash -c environment

# Build: reuse a carried build-gpu-check/ when its binaries exist and the rebuild fails.
step build 330 bash -c configure_and_build
TESTS="$BUILD/cuda_tests/kiln_cuda_tests"
[ -x "$TESTS" ] || TESTS="$(find "$BUILD" -name kiln_cuda_tests -type f -perm -u+x 2>/dev/null | head -1)"
bench() { echo "$BUILD/bench/kiln_bench_$1"; }

# The kernel tests, then memcheck on a compute-sanitizer-friendly subset (the large-size and
# cuBLASLt cases are left out: they add minutes under the sanitizer and no new code paths).
if [ -n "$TESTS" ] && [ -x "$TESTS" ]; then
  step tests 240 "$TESTS" --gtest_output="xml:$OUT/tests.xml" --gtest_color=no
  SAN="$(command -v compute-sanitizer || echo "$CUDA_HOME/bin/compute-sanitizer")"
  step memcheck 200 "$SAN" --tool memcheck --leak-check no --error-exitcode 99 --print-limit 50 \
    "$TESTS" --gtest_color=no --gtest_filter='Cuda*:-*Large*:*CublasLt*:CudaCore.Oversized*'
else
  printf 'tests\tnot built\t0\nmemcheck\tnot built\t0\n' >>"$OUT/steps.tsv"
fi

# The data-parallel device communicator (NCCL) with one rank.
NCCL_TESTS="$(find "$BUILD" -name kiln_nccl_tests -type f -perm -u+x 2>/dev/null | head -1)"
[ -n "$NCCL_TESTS" ] && step nccl 60 "$NCCL_TESTS" --gtest_color=no
[ -x "$(bench gpu_gemm)" ] && step bench_gemm 180 "$(bench gpu_gemm)" 8192
[ -x "$(bench gpu_conv)" ] && step bench_conv 90 "$(bench gpu_conv)"
[ -x "$(bench gpu_embedding)" ] && step bench_embedding 90 "$(bench gpu_embedding)"
command -v python3 >/dev/null && step peers 120 python3 "$ROOT/bench/gpu_peers.py"

# ---- summary -----------------------------------------------------------------------------------
{
  echo "# Kiln GPU check $(date -u +%FT%TZ)"
  echo
  grep -E "^(commit|cores):" "$OUT/environment.log" 2>/dev/null
  sed -n '/^name,/,+1p' "$OUT/environment.log" 2>/dev/null
  echo
  echo "| step | rc | seconds |"
  echo "|---|---|---|"
  awk -F'\t' '{printf "| %s | %s | %s |\n", $1, $2, $3}' "$OUT/steps.tsv"
  echo
  if [ -f "$OUT/tests.log" ]; then
    echo "tests: $(grep -E '^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ test' "$OUT/tests.log" | tr '\n' ' ')"
    grep -E '^\[  FAILED  \] [A-Za-z]+\.[A-Za-z]+' "$OUT/tests.log" | sort -u | head -20
  fi
  [ -f "$OUT/memcheck.log" ] && echo "memcheck: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
  echo
  echo "| GEMM | type | m | n | k | op | kiln TF/s | cuBLASLt TF/s | ratio |"
  echo "|---|---|---|---|---|---|---|---|---|"
  grep -h '^RESULT bench=gemm ' "$OUT"/bench_gemm.log 2>/dev/null | sed 's/RESULT //' | awk '{
    for (i = 1; i <= NF; ++i) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "| %s | %s | %s | %s | %s | %s%s | %s | %s | %s |\n", v["label"], v["type"], v["m"], v["n"], v["k"],
      (v["ta"] == 1 ? "T" : "N"), (v["tb"] == 1 ? "T" : "N"), v["kiln_tflops"], v["cublaslt_tflops"], v["ratio"] }'
  echo
  echo "| conv | type | kiln fwd/dgrad/wgrad ms | cuDNN fwd/dgrad/wgrad ms |"
  echo "|---|---|---|---|"
  grep -h '^RESULT bench=conv ' "$OUT"/bench_conv.log 2>/dev/null | sed 's/RESULT //' | while read -r line; do
    layer=$(echo "$line" | sed 's/.*layer=\([^ ]*\).*/\1/'); type=$(echo "$line" | sed 's/.*type=\([^ ]*\).*/\1/')
    k=$(echo "$line" | sed 's/.*fwd_ms=\([^ ]*\) dgrad_ms=\([^ ]*\) wgrad_ms=\([^ ]*\).*/\1 \/ \2 \/ \3/')
    c=$(grep -h "^RESULT bench=conv_cudnn layer=$layer type=$type " "$OUT"/peers.log 2>/dev/null |
      sed 's/.*fwd_ms=\([^ ]*\) dgrad_ms=\([^ ]*\) wgrad_ms=\([^ ]*\).*/\1 \/ \2 \/ \3/')
    echo "| $layer | $type | $k | ${c:-n/a} |"
  done
  echo
  echo "embedding (fraction of device copy bandwidth):"
  grep -h '^embedding ' "$OUT"/bench_embedding.log 2>/dev/null
  echo
  echo "total: $(($(date +%s) - START)) s; logs: $OUT"
} >"$SUMMARY" 2>&1
cat "$SUMMARY"
