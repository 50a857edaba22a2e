#!/usr/bin/env bash
# One-command check of the CUDA backend on a GPU machine (issue #6, issue 13 item 9), in tiers:
#
#   tier 1 (fits 3 minutes on an H100 with a prepared build): every CUDA unit test with
#          KILN_REQUIRE_GPU=1 (a test that cannot reach the GPU fails instead of skipping), the
#          NCCL communicator with one rank, then - once `kiln` runs on device CUDA (today it
#          refuses, and the steps say 'not yet available') - one epoch of the Fashion-MNIST CNN
#          on cuda vs cpu and a serve smoke test on cuda.
#   tier 2: compute-sanitizer memcheck over the kernel tests, racecheck / synccheck / initcheck on
#          small cases, the kernel benchmarks against cuBLASLt / cuDNN (through PyTorch), and the
#          training benchmark against PyTorch (bench/train_gpu_vs_pytorch.py; 'missing' if absent).
#
# Each tier stops at its first failing step and says which; the next tier still runs (unless the
# build failed). A short table is printed last; the full report is OUTDIR/report.md, each step's
# output OUTDIR/<step>.log, and OUTDIR/steps.tsv has tier, step, status, exit code and seconds.
#
#   scripts/gpu_check.sh OUTDIR     run the tiers chosen by KILN_GPU_CHECK_TIER (1, 2 or all; default all)
#   scripts/gpu_check.sh --prepare  on a CPU machine: build the standalone project here and put what
#                                   the GPU machine needs in build-gpu-prebuilt/ (stripped binaries and
#                                   a stamp of the sources) and build-gpu-deps/ (GoogleTest sources,
#                                   for a rebuild there); prints their size (must stay under 64 MiB).
#                                   Carry build-gpu-prebuilt and build-gpu-deps to the GPU machine.
#
# The prebuilt binaries are used when the sources still match their stamp; otherwise the GPU
# machine builds tests/cuda/gpu_check into build-gpu-check/ (2-4 minutes there).
# Environment: KILN_GPU_CHECK_TIER, KILN_GTEST_SRC (GoogleTest source tree), JOBS (default: all
# cores), KILN_GPU_CHECK_SKIP="memcheck peers ..." (steps to skip), CUDA_HOME (default
# /usr/local/cuda), KILN_BIN (a kiln binary built with CUDA; default build-cuda/cli/kiln),
# KILN_FASHION_MNIST (directory of the four Fashion-MNIST .gz files).
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
export PATH="$CUDA_HOME/bin:$PATH"
BUILD="$ROOT/build-gpu-check"
PREBUILT="$ROOT/build-gpu-prebuilt"
DEPS="$ROOT/build-gpu-deps"
JOBS="${JOBS:-$(nproc)}"
# Binaries the checks run (paths inside the build directory) and their name in build-gpu-prebuilt/.
BINARIES="cuda_tests/kiln_cuda_tests cuda_tests/kiln_nccl_tests bench/kiln_bench_gpu_gemm bench/kiln_bench_gpu_conv bench/kiln_bench_gpu_embedding"

find_gtest() {
  for d in "${KILN_GTEST_SRC:-}" "$DEPS/googletest" /usr/src/googletest "$ROOT/third_party/googletest"; do
    if [ -n "$d" ] && [ -f "$d/CMakeLists.txt" ]; then echo "$d"; return 0; fi
  done
  return 1
}

# A hash of every source the standalone project compiles: equal hashes, equal binaries.
source_stamp() {
  (cd "$ROOT" && find core kernels tests/cuda bench -type f \
    \( -name '*.cc' -o -name '*.cu' -o -name '*.h' -o -name '*.cuh' -o -name 'CMakeLists.txt' -o -name '*.cmake' \) \
    -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
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

# The build step: the prebuilt binaries when their stamp matches the sources, else a build here.
build_or_reuse() {
  local want have
  want="$(source_stamp)"
  have="$(cat "$PREBUILT/SOURCE_STAMP" 2>/dev/null || echo none)"
  if [ "$want" = "$have" ] && [ -x "$PREBUILT/kiln_cuda_tests" ]; then
    echo "prebuilt binaries in $PREBUILT match the sources (stamp $want): no build"
    return 0
  fi
  echo "sources stamp $want, prebuilt stamp $have: building $BUILD"
  configure_and_build
}

if [ "${1:-}" = "--prepare" ]; then
  src="$(find_gtest)" || { echo "no GoogleTest sources found (set KILN_GTEST_SRC)"; exit 1; }
  if [ "$src" != "$DEPS/googletest" ]; then
    rm -rf "$DEPS/googletest"
    # googletest/ and the top CMakeLists.txt are what the build needs (BUILD_GMOCK is off).
    mkdir -p "$DEPS/googletest"
    cp -r "$src/googletest" "$DEPS/googletest/"
    cp "$src/CMakeLists.txt" "$DEPS/googletest/"
    rm -rf "$DEPS/googletest/googletest/docs" "$DEPS/googletest/googletest/samples" "$DEPS/googletest/googletest/test"
  fi
  configure_and_build || exit $?
  # Only what runs: stripped executables (objects, libraries and the build tree are rebuilt on
  # the GPU machine if the sources changed; the stamp says whether they did).
  rm -rf "$PREBUILT"
  mkdir -p "$PREBUILT"
  for b in $BINARIES; do
    [ -x "$BUILD/$b" ] || { echo "(not built: $b)"; continue; }
    cp "$BUILD/$b" "$PREBUILT/"
    strip --strip-unneeded "$PREBUILT/$(basename "$b")"
  done
  source_stamp >"$PREBUILT/SOURCE_STAMP"
  bytes=$(du -sb "$PREBUILT" "$DEPS" | awk '{s += $1} END {print s}')
  du -sh "$PREBUILT" "$DEPS"
  mib=$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}')
  echo "prepared: $bytes bytes ($mib MiB) in build-gpu-prebuilt + build-gpu-deps (limit 64 MiB with the working tree)"
  [ "$bytes" -lt $((56 * 1048576)) ] || { echo "prepared files too large: leave room for the working tree"; exit 1; }
  exit 0
fi

OUT="${1:?usage: scripts/gpu_check.sh OUTDIR | --prepare}"
TIER="${KILN_GPU_CHECK_TIER:-all}"
case "$TIER" in 1 | 2 | all) ;; *) echo "KILN_GPU_CHECK_TIER=$TIER: choose 1, 2 or all"; exit 2 ;; esac
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
REPORT="$OUT/report.md"
: >"$OUT/steps.tsv"
: >"$OUT/progress.log"
START=$(date +%s)
CURRENT_TIER=0
STOPPED=""  # the step the current tier stopped at
# Exit code a step uses for "not yet available" (kiln does not run on cuda yet, no data, no binary).
NOT_YET=75

skip() { case " ${KILN_GPU_CHECK_SKIP:-} " in *" $1 "*) return 0 ;; esac; return 1; }
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$CURRENT_TIER" "$1" "$2" "$3" "$4" >>"$OUT/steps.tsv"; }

# step NAME LIMIT_SECONDS COMMAND...: runs COMMAND with a time limit, its output in OUT/NAME.log.
# After a failure in this tier, later steps are recorded as not run.
step() {
  local name="$1" limit="$2"
  shift 2
  if [ -n "$STOPPED" ]; then
    record "$name" "not run (tier $CURRENT_TIER stopped at $STOPPED)" - 0
    return 1
  fi
  if skip "$name"; then
    record "$name" skipped - 0
    return 0
  fi
  echo "=== tier $CURRENT_TIER [$name] (limit ${limit}s) $*" | tee -a "$OUT/progress.log"
  local t0 rc status
  t0=$(date +%s)
  timeout --signal=TERM --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  local dt=$(($(date +%s) - t0))
  [ $rc -eq 124 ] && echo "(timed out after ${limit}s)" >>"$OUT/$name.log"
  case $rc in
    0) status=pass ;;
    "$NOT_YET") status="not yet available: $(tail -n 1 "$OUT/$name.log")" ;;
    124) status="FAIL (timed out after ${limit}s)" ;;
    *) status="FAIL" ;;
  esac
  record "$name" "$status" "$rc" "$dt"
  echo "    $status (rc=$rc) in ${dt}s; last lines:" | tee -a "$OUT/progress.log"
  tail -n 5 "$OUT/$name.log" | sed 's/^/    | /' | tee -a "$OUT/progress.log"
  if [ $rc -ne 0 ] && [ $rc -ne "$NOT_YET" ]; then
    STOPPED="$name"
    echo "    tier $CURRENT_TIER stops: $name failed (see $OUT/$name.log)" | tee -a "$OUT/progress.log"
    return $rc
  fi
  return 0
}

begin_tier() {
  CURRENT_TIER=$1
  STOPPED=""
}

environment() {
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown) sources stamp $(source_stamp)"
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

# The binary NAME (basename): the prebuilt one when the build step reused them, else the build's.
bin() {
  if [ "$(cat "$PREBUILT/SOURCE_STAMP" 2>/dev/null)" = "$(source_stamp)" ] && [ -x "$PREBUILT/$1" ]; then
    echo "$PREBUILT/$1"
  else
    find "$BUILD" -name "$1" -type f -perm -u+x 2>/dev/null | head -1
  fi
}
# Runs a binary that must exist: a missing one is a failure naming it.
run_bin() {
  local b
  b="$(bin "$1")"
  shift
  [ -n "$b" ] && [ -x "$b" ] || { echo "not built: $1"; return 1; }
  "$b" "$@"
}

# ---- kiln on device CUDA (tier 1) --------------------------------------------------------------
KILN_BIN="${KILN_BIN:-$ROOT/build-cuda/cli/kiln}"
FMNIST="${KILN_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
kiln_available() {
  [ -x "$KILN_BIN" ] || { echo "no kiln binary at $KILN_BIN (set KILN_BIN)"; return 1; }
  "$KILN_BIN" --version >/dev/null 2>&1 || { echo "$KILN_BIN does not start here (missing libraries?)"; return 1; }
  [ -f "$FMNIST/train-images-idx3-ubyte.gz" ] || { echo "no Fashion-MNIST in $FMNIST (set KILN_FASHION_MNIST)"; return 1; }
}
# One epoch on DEVICE with OUTPUT_DIR OUT/train_DEVICE; 75 when kiln refuses the device.
train_one_epoch() {
  local device="$1" dir="$OUT/train_$1"
  "$KILN_BIN" train --config "$ROOT/examples/fashion_mnist/cnn.pbtxt" --set device="$device" --set epochs=1 \
    --set output_dir="$dir" --set resume=false \
    --set data.idx.train_images="$FMNIST/train-images-idx3-ubyte.gz" \
    --set data.idx.train_labels="$FMNIST/train-labels-idx1-ubyte.gz" \
    --set data.idx.eval_images="$FMNIST/t10k-images-idx3-ubyte.gz" \
    --set data.idx.eval_labels="$FMNIST/t10k-labels-idx1-ubyte.gz" >"$dir.log" 2>&1
  local rc=$?
  cat "$dir.log"
  if [ $rc -ne 0 ] && grep -q "does not run on cuda" "$dir.log"; then return $NOT_YET; fi
  return $rc
}
# cuda vs cpu: both train; eval accuracy within 0.02 (different summation orders, same data).
train_cuda_vs_cpu() {
  local why
  why="$(kiln_available)" || { echo "$why"; return $NOT_YET; }
  train_one_epoch CUDA
  local rc=$?
  if [ $rc -eq $NOT_YET ]; then echo "kiln train does not run on cuda yet"; return $NOT_YET; fi
  [ $rc -eq 0 ] || return $rc
  train_one_epoch CPU || return $?
  local acc_cuda acc_cpu
  acc_cuda=$(awk '$1 == "eval" && $2 == "accuracy" {v = $3} END {print v}' "$OUT/train_CUDA.log")
  acc_cpu=$(awk '$1 == "eval" && $2 == "accuracy" {v = $3} END {print v}' "$OUT/train_CPU.log")
  echo "eval accuracy after one epoch: cuda $acc_cuda, cpu $acc_cpu"
  [ -n "$acc_cuda" ] && [ -n "$acc_cpu" ] || { echo "no 'eval accuracy' line"; return 1; }
  awk -v a="$acc_cuda" -v b="$acc_cpu" 'BEGIN {d = a - b; if (d < 0) d = -d; exit !(d <= 0.02)}'
}
# Export the cuda-trained model, serve it on cuda, ask for its status, stop it.
serve_smoke() {
  local why
  why="$(kiln_available)" || { echo "$why"; return $NOT_YET; }
  [ -d "$OUT/train_CUDA/checkpoints" ] || { echo "no cuda-trained checkpoint (train_cuda_vs_cpu did not run on cuda)"; return $NOT_YET; }
  local base="$OUT/serve_models/fmnist"
  "$KILN_BIN" export --config "$ROOT/examples/fashion_mnist/cnn.pbtxt" --set output_dir="$OUT/train_CUDA" \
    --model_base_path "$base" || return 1
  "$KILN_BIN" serve --model_base_path "$base" --device cuda --rest_port 0 --port_file "$OUT/serve.port" \
    >"$OUT/serve_server.log" 2>&1 &
  local pid=$! port=""
  for _ in $(seq 1 100); do
    port="$(cat "$OUT/serve.port" 2>/dev/null)"
    [ -n "$port" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.2
  done
  cat "$OUT/serve_server.log"
  if [ -z "$port" ]; then
    kill $pid 2>/dev/null
    grep -q "does not run on cuda" "$OUT/serve_server.log" && { echo "kiln serve does not run on cuda yet"; return $NOT_YET; }
    echo "kiln serve did not start"
    return 1
  fi
  local status
  status="$(curl -sf "http://127.0.0.1:$port/v1/models/fmnist")"
  kill $pid
  wait $pid 2>/dev/null
  echo "$status"
  echo "$status" | grep -q AVAILABLE
}

# ---- tier 2 helpers ----------------------------------------------------------------------------
SAN="$(command -v compute-sanitizer || echo "$CUDA_HOME/bin/compute-sanitizer")"
# Small cases for the slower tools: every GEMM layout, the convolutions, embedding, pooling,
# batch norm, reductions, losses, dropout, and core (streams, allocator).
SMALL='CudaGemm.SmallEveryLayout:CudaGemm.KZero*:CudaConv.Tf32*:CudaEmbedding.*:CudaPooling.*:CudaBatchNorm.*:CudaReduce.SumRows*:CudaLoss.*:CudaDropout.*:CudaCore.CachingAllocator*'
# compute-sanitizer TOOL over the test binary with a gtest filter.
sanitizer() {
  local tool="$1" filter="$2" tests
  tests="$(bin kiln_cuda_tests)"
  [ -n "$tests" ] || { echo "not built: kiln_cuda_tests"; return 1; }
  local extra=()
  [ "$tool" = memcheck ] && extra=(--leak-check no)
  [ "$tool" = racecheck ] && extra=(--racecheck-report hazard)
  KILN_REQUIRE_GPU=1 "$SAN" --tool "$tool" "${extra[@]}" --error-exitcode 99 --print-limit 50 \
    "$tests" --gtest_color=no --gtest_filter="$filter"
}
train_vs_pytorch() {
  local script="$ROOT/bench/train_gpu_vs_pytorch.py"
  [ -f "$script" ] || { echo "missing: bench/train_gpu_vs_pytorch.py does not exist yet"; return $NOT_YET; }
  python3 "$script"
}

export ROOT BUILD PREBUILT DEPS JOBS CUDA_HOME PATH OUT KILN_BIN FMNIST NOT_YET SAN
export -f find_gtest source_stamp configure_and_build build_or_reuse environment bin run_bin kiln_available \
  train_one_epoch train_cuda_vs_cpu serve_smoke sanitizer train_vs_pytorch
# timeout runs programs, not shell functions: the functions go through an exported bash -c.

BUILD_OK=1
run_build() {
  step environment 30 bash -c environment
  step build 330 bash -c build_or_reuse || BUILD_OK=0
}

if [ "$TIER" = 1 ] || [ "$TIER" = all ]; then
  begin_tier 1
  run_build
  step tests 150 env KILN_REQUIRE_GPU=1 bash -c 'run_bin kiln_cuda_tests --gtest_output="xml:$OUT/tests.xml" --gtest_color=no'
  if [ -n "$(bin kiln_nccl_tests)" ]; then
    step nccl 30 env KILN_REQUIRE_GPU=1 bash -c 'run_bin kiln_nccl_tests --gtest_color=no'
  else
    record nccl "not built (no NCCL at build time)" - 0
  fi
  step train_cuda_vs_cpu 150 bash -c train_cuda_vs_cpu
  step serve_smoke 60 bash -c serve_smoke
fi

if { [ "$TIER" = 2 ] || [ "$TIER" = all ]; } && [ $BUILD_OK = 1 ]; then
  begin_tier 2
  [ "$TIER" = 2 ] && run_build
  # memcheck: every kernel test except the large-size and cuBLASLt cases (minutes under the
  # sanitizer, no new code paths); the other tools on the small cases.
  step memcheck 200 bash -c "sanitizer memcheck 'Cuda*:-*Large*:*Tile128*:*CublasLt*:CudaCore.Oversized*:CudaCore.StreamsAreBlocking*'"
  step racecheck 150 bash -c "sanitizer racecheck '$SMALL'"
  step synccheck 90 bash -c "sanitizer synccheck '$SMALL'"
  step initcheck 90 bash -c "sanitizer initcheck '$SMALL'"
  step bench_gemm 180 bash -c 'run_bin kiln_bench_gpu_gemm 8192'
  step bench_conv 90 bash -c 'run_bin kiln_bench_gpu_conv'
  step bench_embedding 90 bash -c 'run_bin kiln_bench_gpu_embedding'
  if command -v python3 >/dev/null; then step peers 120 python3 "$ROOT/bench/gpu_peers.py"; else record peers "no python3" - 0; fi
  step train_vs_pytorch 300 bash -c train_vs_pytorch
elif [ "$TIER" = all ]; then
  CURRENT_TIER=2
  record "(all)" "not run: the build failed" - 0
fi

# ---- report ------------------------------------------------------------------------------------
{
  echo "# Kiln GPU check $(date -u +%FT%TZ) (tiers: $TIER)"
  echo
  grep -E "^(commit|cores):" "$OUT/environment.log" 2>/dev/null
  sed -n '/^name,/,+1p' "$OUT/environment.log" 2>/dev/null
  echo
  echo "| tier | step | status | rc | seconds |"
  echo "|---|---|---|---|---|"
  awk -F'\t' '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}' "$OUT/steps.tsv"
  echo
  if [ -f "$OUT/tests.log" ]; then
    echo "tests: $(grep -E '^\[  (PASSED|FAILED|SKIPPED) +\] [0-9]+ test' "$OUT/tests.log" | tr '\n' ' ')"
    grep -E '^\[  FAILED  \] [A-Za-z0-9_]+\.[A-Za-z0-9_]+' "$OUT/tests.log" | sort -u | head -30
  fi
  for t in memcheck racecheck synccheck initcheck; do
    [ -f "$OUT/$t.log" ] && echo "$t: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$t.log" | tail -1)"
  done
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
} >"$REPORT" 2>&1

# The short table, last.
echo
echo "== Kiln GPU check (tiers: $TIER); full report: $REPORT"
awk -F'\t' '{printf "  tier %s  %-18s %5ss  %s\n", $1, $2, $5, $3}' "$OUT/steps.tsv"
# Exit 0 only when no step failed.
! cut -f3 "$OUT/steps.tsv" | grep -q '^FAIL'
