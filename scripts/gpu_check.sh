#!/usr/bin/env bash
# One-command check of the CUDA backend on a GPU machine (issue #6, issue 13 item 9), in tiers:
#
#   tier 1 (fits 3 minutes on an H100 with a prepared build): every CUDA unit test with
#          KILN_REQUIRE_GPU=1 (a test that cannot reach the GPU fails instead of skipping), the
#          NCCL communicator with one rank, the kernel op table's device tests on cuda (every
#          Devices/*/cuda case of kiln_kernel_tests against the CPU kernels, carried in the kiln
#          bundle with oneDNN), one epoch of the Fashion-MNIST CNN on cuda and on the
#          cpu (the carried subset: 10,000 training and 2,000 test images) with the two loss curves
#          side by side and eval accuracy within 0.02, and a serve smoke test: export on cuda,
#          `kiln serve --device cuda` answers 64 test images exactly as `kiln predict --device cuda`
#          and within KILN_GPU_CHECK_PROB_TOL (0.01) of `kiln predict --device cpu` per probability.
#   tier 2: compute-sanitizer memcheck over the kernel tests and the device tests, racecheck /
#          synccheck / initcheck on small cases, the kernel benchmarks against cuBLASLt / cuDNN
#          (through PyTorch), and the training benchmark against PyTorch eager and torch.compile
#          (bench/train_gpu_vs_pytorch.py).
#
# Each tier stops at its first failing step and says which; the next tier still runs (unless the
# build failed). A short table is printed last; the full report is OUTDIR/report.md, each step's
# output OUTDIR/<step>.log, and OUTDIR/steps.tsv has tier, step, status, exit code and seconds.
#
#   scripts/gpu_check.sh OUTDIR     run the tiers chosen by KILN_GPU_CHECK_TIER (1, 2 or all; default all)
#   scripts/gpu_check.sh --prepare  on a CPU machine: build the standalone project here and put what
#                                   the GPU machine needs in build-gpu-prebuilt/ (stripped binaries and
#                                   a stamp of the sources), build-gpu-deps/ (GoogleTest sources, for a
#                                   rebuild there) and build-gpu-kiln/ (kiln.tar.xz: a stripped kiln
#                                   built with CUDA for sm_90 in build-cuda/ and the shared libraries
#                                   the GPU image lacks; KILN_STAMP; the Fashion-MNIST subset); prints
#                                   the sizes with the working tree's (must stay under 60 of 64 MiB).
#                                   Carry build-gpu-prebuilt, build-gpu-deps and build-gpu-kiln.
#   scripts/gpu_check.sh --subset DIR  write the Fashion-MNIST subset alone into DIR.
#
# The prebuilt binaries are used when the sources still match their stamp; otherwise the GPU
# machine builds tests/cuda/gpu_check into build-gpu-check/ (2-4 minutes there). kiln cannot be
# rebuilt there (no oneDNN, protobuf, OpenMPI, simdjson there): a kiln bundle whose KILN_STAMP
# differs from the sources fails the kiln steps; rerun --prepare after changing kiln's sources.
# The bundle is unpacked into build-gpu-kiln-run/ and run with LD_LIBRARY_PATH naming its lib/,
# then CUDA_HOME's libraries (else PyTorch's nvidia wheels) for libcudart and libcublasLt.
# Environment: KILN_GPU_CHECK_TIER, KILN_GTEST_SRC (GoogleTest source tree), JOBS (default: all
# cores), KILN_GPU_CHECK_SKIP="memcheck peers ..." (steps to skip), CUDA_HOME (default
# /usr/local/cuda), KILN_BIN (a kiln to use instead of the bundle), KILN_FASHION_MNIST (directory
# of the four Fashion-MNIST .gz files: the source of the subset for --prepare; for a run, the data
# instead of the carried subset), KILN_GPU_CHECK_TRAIN_ROWS / KILN_GPU_CHECK_EVAL_ROWS (subset
# size, default 10000 / 2000), KILN_GPU_CHECK_LOG_EVERY (steps between loss values, default 10),
# KILN_GPU_CHECK_PROB_TOL (default 0.01), KILN_GPU_CHECK_DEVICE (default CUDA; SIM runs the kiln
# steps on a machine without a GPU: tests/scripts/gpu_check_tier1_sim.sh, CTest GpuCheck.Tier1OnSim).
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

# A hash of every source the kiln binary compiles (the top CMakeLists.txt and the libraries and
# CLI it builds from; not tests/, bench/, docs/ or scripts/): the carried kiln matches the
# sources when the hashes do.
kiln_source_stamp() {
  (cd "$ROOT" && find CMakeLists.txt cli core io kernels models proto runtime transform tuning tests/kernels -type f \
    \( -name '*.cc' -o -name '*.cu' -o -name '*.h' -o -name '*.cuh' -o -name '*.proto' -o -name 'CMakeLists.txt' \
    -o -name '*.cmake' \) -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
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

# ---- the kiln bundle (tier 1's kiln on the GPU machine) ------------------------------------------
# build-gpu-kiln/ (carried): kiln.tar.xz (bin/kiln, stripped, built with CUDA for sm_90, and lib/,
# the shared libraries it needs that the GPU image lacks), KILN_STAMP (kiln_source_stamp of the
# sources it was built from), MANIFEST (what is inside, sizes) and fashion-mnist/ (the first
# KILN_GPU_CHECK_TRAIN_ROWS training and KILN_GPU_CHECK_EVAL_ROWS test examples as gzipped IDX).
# The GPU machine unpacks kiln.tar.xz into build-gpu-kiln-run/ (not carried).
KILN_CARRY="$ROOT/build-gpu-kiln"
KILN_RUN="$ROOT/build-gpu-kiln-run"
KILN_BUILD="$ROOT/build-cuda"
TRAIN_ROWS="${KILN_GPU_CHECK_TRAIN_ROWS:-10000}"
EVAL_ROWS="${KILN_GPU_CHECK_EVAL_ROWS:-2000}"
# Libraries the GPU image has (glibc, GCC's runtime, the loader; the CUDA 13 toolkit's runtime,
# cuBLAS(Lt), cuDNN and NCCL, found at run time in CUDA_HOME or PyTorch's nvidia wheels): not bundled.
KILN_SYSTEM_LIBS='^(linux-vdso|ld-linux-x86-64|libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|libcudart|libcublasLt|libcublas|libcudnn|libnccl)\.so'

# Writes the first N examples of the IDX gz file SRC as the IDX gz file DST (the header's count is N).
idx_subset() {
  python3 - "$1" "$2" "$3" <<'PY'
import gzip, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with gzip.open(src, "rb") as f:
    magic = f.read(4)
    if len(magic) != 4 or magic[:3] != b"\0\0\x08":
        sys.exit(f"{src}: not an unsigned-byte IDX file")
    dims = list(struct.unpack(">%dI" % magic[3], f.read(4 * magic[3])))
    per = 1
    for d in dims[1:]:
        per *= d
    n = min(n, dims[0])
    data = f.read(n * per)
    if len(data) != n * per:
        sys.exit(f"{src}: truncated ({len(data)} of {n * per} bytes)")
dims[0] = n
with open(dst, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as g:
    g.write(magic + struct.pack(">%dI" % len(dims), *dims) + data)
print(f"{dst}: {n} examples of {src}")
PY
}

# Writes the Fashion-MNIST subset (TRAIN_ROWS training, EVAL_ROWS test examples) into DIR.
write_fmnist_subset() {
  local src="${KILN_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}" dir="$1" f
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [ -f "$src/$f.gz" ] || { echo "no $src/$f.gz (set KILN_FASHION_MNIST)"; return 1; }
  done
  mkdir -p "$dir" &&
    idx_subset "$src/train-images-idx3-ubyte.gz" "$dir/train-images-idx3-ubyte.gz" "$TRAIN_ROWS" &&
    idx_subset "$src/train-labels-idx1-ubyte.gz" "$dir/train-labels-idx1-ubyte.gz" "$TRAIN_ROWS" &&
    idx_subset "$src/t10k-images-idx3-ubyte.gz" "$dir/t10k-images-idx3-ubyte.gz" "$EVAL_ROWS" &&
    idx_subset "$src/t10k-labels-idx1-ubyte.gz" "$dir/t10k-labels-idx1-ubyte.gz" "$EVAL_ROWS" ||
    { echo "writing the Fashion-MNIST subset into $dir failed"; return 1; }
}

# Builds build-cuda/cli/kiln (CUDA, sm_90) and writes build-gpu-kiln/.
prepare_kiln_bundle() {
  echo "prepare: building kiln with CUDA (sm_90) in $KILN_BUILD"
  cmake -S "$ROOT" -B "$KILN_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=ON -DKILN_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc" -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null &&
    cmake --build "$KILN_BUILD" -j "$JOBS" --target kiln kiln_kernel_tests ||
    { echo "prepare: building kiln and kiln_kernel_tests in $KILN_BUILD failed"; return 1; }
  # kiln_kernel_tests rides along: its Devices/*/cuda cases check every op of the table against
  # the CPU kernels, which need oneDNN (not on the GPU image, so not in the standalone project).
  local kiln="$KILN_BUILD/cli/kiln" tests="$KILN_BUILD/tests/kiln_kernel_tests" stage
  stage="$(mktemp -d)"
  mkdir -p "$stage/bin" "$stage/lib"
  cp "$kiln" "$stage/bin/kiln" && strip --strip-unneeded "$stage/bin/kiln" || return 1
  cp "$tests" "$stage/bin/kiln_kernel_tests" && strip --strip-unneeded "$stage/bin/kiln_kernel_tests" || return 1
  # Every library the loader resolves for both, their dependencies' included, except the system ones.
  local libs
  libs="$( { ldd "$kiln"; ldd "$tests"; } | awk '$2 == "=>" && $3 ~ /^\// {print $1 " " $3}' | sort -u |
    grep -Ev "$KILN_SYSTEM_LIBS")"
  if { ldd "$kiln"; ldd "$tests"; } | grep -q 'not found'; then
    { ldd "$kiln"; ldd "$tests"; } | grep 'not found'
    echo "prepare: $kiln or $tests needs libraries this machine lacks"
    return 1
  fi
  local so path
  while read -r so path; do
    [ -n "$so" ] || continue
    cp -L "$path" "$stage/lib/$so" || return 1
  done <<<"$libs"
  LD_LIBRARY_PATH="$stage/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$stage/bin/kiln" --version >/dev/null ||
    { echo "prepare: the staged kiln in $stage does not start"; return 1; }
  rm -rf "$KILN_CARRY"
  mkdir -p "$KILN_CARRY"
  (cd "$stage" && find . -type f -printf '%s\t%P\n' | LC_ALL=C sort -k2) >"$KILN_CARRY/MANIFEST"
  echo "prepare: compressing $(du -sb "$stage" | cut -f1) bytes (bin/kiln, bin/kiln_kernel_tests and lib/: $(ls "$stage/lib" | tr '\n' ' '))"
  tar -C "$stage" -cf - bin lib | xz -9 -T "$JOBS" >"$KILN_CARRY/kiln.tar.xz" || { echo "prepare: xz failed"; return 1; }
  rm -rf "$stage"
  kiln_source_stamp >"$KILN_CARRY/KILN_STAMP"
  write_fmnist_subset "$KILN_CARRY/fashion-mnist"
}

if [ "${1:-}" = "--subset" ]; then
  write_fmnist_subset "${2:?usage: scripts/gpu_check.sh --subset DIR}"
  exit $?
fi

if [ "${1:-}" = "--prepare" ]; then
  # A missing dataset fails before the builds.
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [ -f "${KILN_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}/$f.gz" ] ||
      { echo "prepare: no Fashion-MNIST file $f.gz (set KILN_FASHION_MNIST)"; exit 1; }
  done
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
  prepare_kiln_bundle || exit 1
  # What travels: the carried folders plus the working tree (tracked and untracked, not ignored).
  tree=$(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null |
    awk '$2 == "total" {s += $1} END {print s + 0}')
  echo "prepared (bytes):"
  du -sb "$PREBUILT"/* "$DEPS" "$KILN_CARRY"/kiln.tar.xz "$KILN_CARRY"/fashion-mnist | sed 's/^/  /'
  echo "  $(awk -F'\t' '{s += $1} END {print s}' "$KILN_CARRY/MANIFEST")	(kiln bundle uncompressed: $KILN_CARRY/MANIFEST)"
  echo "  $tree	working tree (git ls-files, tracked and untracked not ignored)"
  bytes=$(du -sb "$PREBUILT" "$DEPS" "$KILN_CARRY" | awk '{s += $1} END {print s}')
  total=$((bytes + tree))
  mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
  echo "prepared: $bytes bytes ($(mib "$bytes") MiB) in build-gpu-prebuilt + build-gpu-deps + build-gpu-kiln;" \
    "with the working tree $total bytes ($(mib "$total") MiB) of the 64 MiB a call carries"
  echo "carry: build-gpu-prebuilt build-gpu-deps build-gpu-kiln"
  [ "$total" -lt $((60 * 1048576)) ] || { echo "prepared files too large: over 60 MiB with the working tree"; exit 1; }
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
# Exit code a step uses for "not yet available" (no step uses it today). kiln refusing the device,
# or no kiln or data, is a failure.
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
  echo "kiln bundle: $(cat "$KILN_CARRY/KILN_STAMP" 2>/dev/null || echo none) (sources now $(kiln_source_stamp)); data: $FMNIST"
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
  [ -n "$b" ] && [ -x "$b" ] || { echo "not built: $1"; return 1; }
  shift
  "$b" "$@"
}

# gtest_strict COMMAND...: a gtest run in which a skipped case fails the step. Under the GPU check
# a skip means the case did not run on the GPU (no device, a build without cuDNN), except for the
# cases in ALLOWED_SKIPS, which skip by design when a GPU is present: the check that
# KILN_REQUIRE_GPU fails where no GPU is usable, and an over-capacity batch the CUDA kernel cannot
# report (the trainer never passes one).
ALLOWED_SKIPS='^(CudaTestUtil\.RequireGpuFailsInsteadOfSkipping|Devices/EmbeddingDevices\.BackwardAsyncRefusesMoreIdsThanItsCapacity/cuda)$'
gtest_strict() {
  local log rc bad
  log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  bad=$(sed -n 's/^\[  SKIPPED \] \([A-Za-z0-9_/]*\.[A-Za-z0-9_/]*\).*/\1/p' "$log" | sort -u | grep -Ev "$ALLOWED_SKIPS")
  rm -f "$log"
  if [ -n "$bad" ]; then
    echo "skipped, which fails the GPU check (these cases did not run on the GPU):"
    echo "$bad" | sed 's/^/  /'
    [ "$rc" -eq 0 ] && rc=1
  fi
  return "$rc"
}

# ---- kiln on device CUDA (tier 1) --------------------------------------------------------------
# kiln: KILN_BIN if set, else the carried bundle (build-gpu-kiln/kiln.tar.xz, unpacked once into
# build-gpu-kiln-run/), which must match the sources (KILN_STAMP): a stale kiln would check other
# code, so it fails, naming both stamps. Data: KILN_FASHION_MNIST if set, else the carried subset,
# else /usr/share/datasets/fashion-mnist.
KILN_BIN="${KILN_BIN:-}"
if [ -z "${KILN_FASHION_MNIST:-}" ] && [ -f "$KILN_CARRY/fashion-mnist/train-images-idx3-ubyte.gz" ]; then
  FMNIST="$KILN_CARRY/fashion-mnist"
else
  FMNIST="${KILN_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
fi
LOG_EVERY="${KILN_GPU_CHECK_LOG_EVERY:-10}"  # steps between the loss values of the two curves
PREDICT_ROWS=64                               # test images for the serve smoke's predictions
# The device the two steps check against the cpu: CUDA; SIM runs the same command lines on a machine
# without a GPU (a dry run of the steps: there the comparisons hold exactly).
DEV="${KILN_GPU_CHECK_DEVICE:-CUDA}"
DEV="${DEV^^}"
dev="${DEV,,}"
# The largest difference allowed between a probability predicted on cuda and on the cpu (same
# exported weights; the cuda convolutions and dense layers run as TF32, see docs/cuda.md).
PROB_TOL="${KILN_GPU_CHECK_PROB_TOL:-0.01}"

# Sets KILN (the binary), LD_LIBRARY_PATH and DATA_SETS (the --set arguments naming the data);
# checks that kiln starts and the data is there. `kiln_setup verbose` lists where each library
# comes from.
kiln_setup() {
  if [ -n "$KILN_BIN" ]; then
    KILN="$KILN_BIN"
    echo "kiln: KILN_BIN=$KILN"
  else
    local archive="$KILN_CARRY/kiln.tar.xz" want have sum
    [ -f "$archive" ] || {
      echo "no kiln: $archive is missing (run scripts/gpu_check.sh --prepare on the CPU machine and carry build-gpu-kiln), or set KILN_BIN"
      return 1
    }
    want="$(kiln_source_stamp)"
    have="$(cat "$KILN_CARRY/KILN_STAMP" 2>/dev/null || echo none)"
    if [ "$want" != "$have" ]; then
      echo "stale kiln: $archive was built from sources stamp $have, the sources here are $want; rerun scripts/gpu_check.sh --prepare"
      return 1
    fi
    sum="$(sha256sum "$archive" | cut -c1-16)"
    if [ "$(cat "$KILN_RUN/ARCHIVE_SUM" 2>/dev/null)" != "$sum" ]; then
      rm -rf "$KILN_RUN" && mkdir -p "$KILN_RUN" || return 1
      # tar's xz filter, else Python's lzma (either is on the GPU image).
      if ! tar -C "$KILN_RUN" -xJf "$archive" 2>/dev/null; then
        python3 -c 'import sys, tarfile
kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2], **kw)' "$archive" "$KILN_RUN" ||
          { echo "cannot unpack $archive into $KILN_RUN"; return 1; }
      fi
      echo "$sum" >"$KILN_RUN/ARCHIVE_SUM"
      echo "unpacked $archive (sources stamp $have) into $KILN_RUN"
    fi
    KILN="$KILN_RUN/bin/kiln"
    LD_LIBRARY_PATH="$KILN_RUN/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  [ -x "$KILN" ] || { echo "no kiln binary at $KILN"; return 1; }
  # The CUDA 13 runtime and cuBLASLt: the toolkit's, else PyTorch's nvidia wheels.
  local d lib found
  for d in "$CUDA_HOME/lib64" "$CUDA_HOME/lib" "$CUDA_HOME/targets/x86_64-linux/lib"; do
    [ -d "$d" ] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
  done
  export LD_LIBRARY_PATH
  for lib in $(ldd "$KILN" 2>/dev/null | awk '$3 == "not" {print $1}'); do
    found="$(python3 -c 'import nvidia; print("\n".join(nvidia.__path__))' 2>/dev/null |
      while read -r d; do find "$d" -name "$lib" 2>/dev/null; done | head -1)"
    [ -n "$found" ] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$(dirname "$found")"
  done
  export LD_LIBRARY_PATH
  if ldd "$KILN" | grep 'not found'; then
    echo "$KILN: the libraries above are missing (LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-})"
    return 1
  fi
  local version
  version="$("$KILN" --version 2>&1)" || { echo "$version"; echo "$KILN does not start"; return 1; }
  echo "kiln: $KILN ($version)"
  [ "${1:-}" = verbose ] && ldd "$KILN" | awk '$2 == "=>" {print "  " $1 " " $3}'
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [ -f "$FMNIST/$f.gz" ] || { echo "no Fashion-MNIST: $FMNIST/$f.gz is missing (set KILN_FASHION_MNIST)"; return 1; }
  done
  echo "data: $FMNIST"
  DATA_SETS=(--set data.idx.train_images="$FMNIST/train-images-idx3-ubyte.gz"
    --set data.idx.train_labels="$FMNIST/train-labels-idx1-ubyte.gz"
    --set data.idx.eval_images="$FMNIST/t10k-images-idx3-ubyte.gz"
    --set data.idx.eval_labels="$FMNIST/t10k-labels-idx1-ubyte.gz")
}
# One epoch on DEVICE (CUDA or CPU) into OUT/train_DEVICE; its output in OUT/train_DEVICE.log.
train_one_epoch() {
  local device="$1" dir="$OUT/train_$1" t0 rc
  t0=$(date +%s.%N)
  "$KILN" train --config "$ROOT/examples/fashion_mnist/cnn.pbtxt" --set device="$device" --set epochs=1 \
    --set output_dir="$dir" --set resume=false --set log_every_steps="$LOG_EVERY" "${DATA_SETS[@]}" >"$dir.log" 2>&1
  rc=$?
  echo "--- kiln train on $device: exit $rc in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s ($dir.log)"
  cat "$dir.log"
  if [ $rc -ne 0 ]; then
    if grep -q '^step ' "$dir.log"; then
      echo "kiln train on $device failed after it started training (exit $rc): see $dir.log"
    else
      echo "kiln train refused or failed before the first step on $device (exit $rc): see $dir.log"
    fi
  fi
  return $rc
}
# cuda vs cpu: both train one epoch on the same data; the loss curves side by side; eval accuracy
# within 0.02 (same initial weights, data order and dropout masks; TF32 and other summation orders).
train_cuda_vs_cpu() {
  kiln_setup verbose || return 1
  train_one_epoch "$DEV" || return 1
  train_one_epoch CPU || return 1
  echo
  echo "training loss every $LOG_EVERY steps (progress lines of OUT/train_$DEV.log and OUT/train_CPU.log):"
  awk 'FNR == 1 {f++} $1 == "step" && $5 == "loss" {split($2, s, "/"); if (f == 1) c[s[1]] = $6; else { p[s[1]] = $6; o[++n] = s[1] }}
    END {
      printf "%8s %9s %9s %9s\n", "step", dev, "cpu", "|diff|"
      for (i = 1; i <= n; ++i) { k = o[i]; d = c[k] - p[k]; if (d < 0) d = -d; if (d > m) m = d
        printf "%8s %9s %9s %9.4f\n", k, (k in c) ? c[k] : "-", p[k], d }
      printf "largest loss difference: %.4f\n", m
    }' dev="$dev" "$OUT/train_$DEV.log" "$OUT/train_CPU.log"
  grep -h '^trained ' "$OUT/train_$DEV.log" | sed "s/^/$dev: /"
  grep -h '^trained ' "$OUT/train_CPU.log" | sed 's/^/cpu: /'
  local acc_dev acc_cpu
  acc_dev=$(awk '$1 == "eval" && $2 == "accuracy" {v = $3} END {print v}' "$OUT/train_$DEV.log")
  acc_cpu=$(awk '$1 == "eval" && $2 == "accuracy" {v = $3} END {print v}' "$OUT/train_CPU.log")
  echo "eval accuracy after one epoch: $dev $acc_dev, cpu $acc_cpu (allowed difference 0.02)"
  [ -n "$acc_dev" ] && [ -n "$acc_cpu" ] || { echo "no 'eval accuracy' line in OUT/train_$DEV.log or OUT/train_CPU.log"; return 1; }
  awk -v a="$acc_dev" -v b="$acc_cpu" 'BEGIN {d = a - b; if (d < 0) d = -d; exit !(d <= 0.02)}' ||
    { echo "eval accuracy differs by more than 0.02"; return 1; }
}
# Serve smoke: export the cuda-trained model on CUDA (the export's identity check runs there),
# predict PREDICT_ROWS test images with kiln predict on cuda and on the cpu, serve the model with
# --device cuda and POST the same rows. serve cuda == predict cuda exactly; predict cuda vs cpu:
# every probability within PROB_TOL, the same class wherever the top two probabilities of the cpu
# are more than 2 * PROB_TOL apart.
serve_smoke() {
  kiln_setup || return 1
  [ -d "$OUT/train_$DEV/checkpoints" ] || { echo "no $dev-trained checkpoint in $OUT/train_$DEV (train_cuda_vs_cpu did not train on $dev)"; return 1; }
  local base="$OUT/serve_models/fmnist" rows="$OUT/serve_rows.jsonl"
  rm -rf "$OUT/serve_models" "$OUT/serve.port"
  echo "--- kiln export --set device=$DEV"
  "$KILN" export --config "$ROOT/examples/fashion_mnist/cnn.pbtxt" --set output_dir="$OUT/train_$DEV" --set device="$DEV" \
    "${DATA_SETS[@]}" --model_base_path "$base" || { echo "kiln export on $dev failed"; return 1; }
  python3 - "$FMNIST/t10k-images-idx3-ubyte.gz" "$rows" "$PREDICT_ROWS" <<'PY' || { echo "writing $rows failed"; return 1; }
import gzip, json, struct, sys
with gzip.open(sys.argv[1], "rb") as f:
    _, n, h, w = struct.unpack(">4I", f.read(16))
    n = min(n, int(sys.argv[3]))
    data = f.read(n * h * w)
with open(sys.argv[2], "w") as out:
    for i in range(n):
        out.write(json.dumps(list(data[i * h * w:(i + 1) * h * w])) + "\n")
PY
  local device
  for device in "$dev" cpu; do
    echo "--- kiln predict --device $device"
    "$KILN" predict --model "$base" --input "$rows" --output "$OUT/predict_$device.jsonl" --device "$device" ||
      { echo "kiln predict --device $device failed"; return 1; }
  done
  echo "--- kiln serve --device $dev"
  "$KILN" serve --model_base_path "$base" --device "$dev" --rest_port 0 --port_file "$OUT/serve.port" \
    --poll_interval_s 0 --shutdown_grace_s 0 >"$OUT/serve_server.log" 2>&1 &
  local pid=$! port=""
  for _ in $(seq 1 150); do
    port="$(cat "$OUT/serve.port" 2>/dev/null)"
    [ -n "$port" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.2
  done
  if [ -z "$port" ]; then
    kill $pid 2>/dev/null
    wait $pid 2>/dev/null
    cat "$OUT/serve_server.log"
    echo "kiln serve --device $dev did not start (refused the device or failed): see $OUT/serve_server.log"
    return 1
  fi
  python3 - "$port" "$rows" "$OUT/serve_$dev.json" <<'PY'
import json, sys, urllib.request
port, rows, out = sys.argv[1], sys.argv[2], sys.argv[3]
url = f"http://127.0.0.1:{port}/v1/models/fmnist"
status = urllib.request.urlopen(url, timeout=30).read().decode()
print("model status:", status)
if "AVAILABLE" not in status:
    sys.exit("the model is not AVAILABLE")
body = json.dumps({"instances": [json.loads(l) for l in open(rows) if l.strip()]}).encode()
req = urllib.request.Request(url + ":predict", data=body, headers={"Content-Type": "application/json"})
answer = urllib.request.urlopen(req, timeout=60).read()
open(out, "wb").write(answer)
print(f"POST {url}:predict: {len(body)} bytes sent, {len(answer)} bytes back")
PY
  local rc=$?
  kill $pid 2>/dev/null
  wait $pid 2>/dev/null
  echo "--- kiln serve log"
  cat "$OUT/serve_server.log"
  [ $rc -eq 0 ] || { echo "the request to kiln serve --device $dev failed"; return 1; }
  echo "--- comparison"
  python3 - "$OUT/serve_$dev.json" "$OUT/predict_$dev.jsonl" "$OUT/predict_cpu.jsonl" "$PROB_TOL" "$dev" <<'PY'
import json, sys
served = json.load(open(sys.argv[1]))["predictions"]
cuda = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
cpu = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
tol, dev = float(sys.argv[4]), sys.argv[5]
bad = []
if not (len(served) == len(cuda) == len(cpu)) or not cuda:
    sys.exit(f"row counts differ or are 0: serve {len(served)}, predict cuda {len(cuda)}, predict cpu {len(cpu)}")
same = sum(a == b for a, b in zip(served, cuda))
print(f"serve --device {dev} vs predict --device {dev}: {same} of {len(cuda)} rows identical (want all)")
if same != len(cuda):
    i = next(i for i, (a, b) in enumerate(zip(served, cuda)) if a != b)
    bad.append(f"row {i}: serve {served[i]} != predict {cuda[i]}")
worst, flips, ties = 0.0, [], 0
for i, (g, c) in enumerate(zip(cuda, cpu)):
    pg, pc = g["probabilities"], c["probabilities"]
    worst = max(worst, max(abs(a - b) for a, b in zip(pg, pc)))
    top = sorted(pc, reverse=True)
    if g["class_ids"] != c["class_ids"]:
        if top[0] - top[1] > 2 * tol:
            flips.append(i)
        else:
            ties += 1
print(f"predict {dev} vs cpu: largest probability difference {worst:.3g} (allowed {tol}); "
      f"class differs on {len(flips)} clear rows, {ties} near-ties")
if worst > tol:
    bad.append(f"a probability differs by {worst:.3g} > {tol}")
if flips:
    bad.append(f"class differs on rows {flips[:10]} with a clear cpu margin")
if bad:
    sys.exit("; ".join(bad))
PY
}

# The op table on the device: every Devices/*/cuda case (kernels/<op>.h through the dispatch,
# against the CPU kernels; the */sim cases under KILN_GPU_CHECK_DEVICE=SIM), from the carried
# bundle; with KILN_REQUIRE_GPU=1 a case that cannot reach the GPU fails instead of skipping.
# The carried kiln_kernel_tests (or the one beside KILN_BIN), with kiln's libraries on the path.
kernel_tests_setup() {
  kiln_setup >/dev/null || { kiln_setup; return 1; }
  KERNEL_TESTS="${KILN_BIN:+$(dirname "$KILN_BIN")/../tests/kiln_kernel_tests}"
  [ -n "$KERNEL_TESTS" ] || KERNEL_TESTS="$KILN_RUN/bin/kiln_kernel_tests"
  [ -x "$KERNEL_TESTS" ] || { echo "no kiln_kernel_tests at $KERNEL_TESTS (rerun scripts/gpu_check.sh --prepare)"; return 1; }
}
device_tests() {
  kernel_tests_setup || return 1
  KILN_REQUIRE_GPU=1 gtest_strict "$KERNEL_TESTS" --gtest_filter="*/$dev" --gtest_color=no
}
# Tier 2: the same cases under compute-sanitizer memcheck (the sparse-rows merge, the async
# embedding backward's workspace and the device-count optimizers are only reached through them).
memcheck_devices() {
  kernel_tests_setup || return 1
  KILN_REQUIRE_GPU=1 "$SAN" --tool memcheck --leak-check no --error-exitcode 99 --print-limit 50 \
    "$KERNEL_TESTS" --gtest_filter="*/$dev" --gtest_color=no
}

# ---- tier 2 helpers ----------------------------------------------------------------------------
SAN="$(command -v compute-sanitizer || echo "$CUDA_HOME/bin/compute-sanitizer")"
# Small cases for the slower tools: every GEMM layout, the convolutions, embedding (Kiln's and the VENDOR reference kernels), pooling,
# batch norm, reductions, losses, dropout, and core (streams, allocator).
SMALL='CudaGemm.SmallEveryLayout:CudaGemm.KZero*:CudaConv.Tf32*:CudaEmbedding.*:CudaReferenceEmbedding.*:CudaPooling.*:CudaBatchNorm.*:CudaReduce.SumRows*:CudaLoss.*:CudaDropout.*:CudaCore.CachingAllocator*'
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
# Kiln (the carried CUDA kiln, on the carried data) against PyTorch eager and torch.compile.
train_vs_pytorch() {
  kiln_setup || return 1
  python3 "$ROOT/bench/train_gpu_vs_pytorch.py" --kiln "$KILN" --data "$FMNIST" --device cuda \
    --workdir "$OUT/train_vs_pytorch" --json "$OUT/train_vs_pytorch.json"
}

export ROOT BUILD PREBUILT DEPS JOBS CUDA_HOME PATH OUT KILN_BIN KILN_CARRY KILN_RUN FMNIST LOG_EVERY PREDICT_ROWS \
  PROB_TOL DEV dev NOT_YET SAN ALLOWED_SKIPS
export -f find_gtest source_stamp kiln_source_stamp configure_and_build build_or_reuse environment bin run_bin gtest_strict \
  kiln_setup train_one_epoch train_cuda_vs_cpu serve_smoke sanitizer train_vs_pytorch kernel_tests_setup device_tests \
  memcheck_devices
# timeout runs programs, not shell functions: the functions go through an exported bash -c.

BUILD_OK=1
run_build() {
  step environment 30 bash -c environment
  step build 330 bash -c build_or_reuse || BUILD_OK=0
}

if [ "$TIER" = 1 ] || [ "$TIER" = all ]; then
  begin_tier 1
  run_build
  step tests 150 env KILN_REQUIRE_GPU=1 bash -c 'gtest_strict run_bin kiln_cuda_tests --gtest_output="xml:$OUT/tests.xml" --gtest_color=no'
  if [ -n "$(bin kiln_nccl_tests)" ]; then
    step nccl 30 env KILN_REQUIRE_GPU=1 bash -c 'gtest_strict run_bin kiln_nccl_tests --gtest_color=no'
  else
    record nccl "not built (no NCCL at build time)" - 0
  fi
  step device_tests 90 bash -c device_tests
  step train_cuda_vs_cpu 150 bash -c train_cuda_vs_cpu
  step serve_smoke 90 bash -c serve_smoke
fi

if { [ "$TIER" = 2 ] || [ "$TIER" = all ]; } && [ $BUILD_OK = 1 ]; then
  begin_tier 2
  [ "$TIER" = 2 ] && run_build
  # memcheck: every kernel test except the large-size and cuBLASLt cases (minutes under the
  # sanitizer, no new code paths); the other tools on the small cases.
  step memcheck 200 bash -c "sanitizer memcheck 'Cuda*:-*Large*:*Tile128*:*CublasLt*:CudaCore.Oversized*:CudaCore.StreamsAreBlocking*'"
  step memcheck_devices 150 bash -c memcheck_devices
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
  if [ -f "$OUT/train_cuda_vs_cpu.log" ]; then
    echo
    echo "One epoch of the Fashion-MNIST CNN, $dev against cpu (OUT/train_cuda_vs_cpu.log):"
    echo
    echo '```'
    sed -n '/^training loss every/,/^eval accuracy after one epoch/p' "$OUT/train_cuda_vs_cpu.log"
    echo '```'
  fi
  if [ -f "$OUT/train_vs_pytorch.log" ]; then
    echo
    echo "Training step against PyTorch on this GPU (bench/train_gpu_vs_pytorch.py, OUT/train_vs_pytorch.json):"
    echo
    echo '```'
    sed -n '/^training on /,$p' "$OUT/train_vs_pytorch.log"
    echo '```'
  fi
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
