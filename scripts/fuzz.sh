#!/usr/bin/env bash
# Builds the request-parsing fuzzer with clang (libFuzzer, AddressSanitizer, UndefinedBehavior-
# Sanitizer) and runs it for a bounded time from the seed corpus in tests/fuzz/corpus.
#   scripts/fuzz.sh [SECONDS=60]
# The parsers depend on simdjson and a few headers only, so this compiles a handful of files, not Kiln.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
build=${KILN_BUILD_DIR:-build}
case "$build" in /*) out="$build/fuzz" ;; *) out="$root/$build/fuzz" ;; esac
mkdir -p "$out/corpus"
cxx=$(command -v clang++ || command -v clang++-14)
"$cxx" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root" "$root/tests/fuzz/request_fuzzer.cc" "$root/runtime/json_request.cc" "$root/runtime/kserve_request.cc" \
  "$root/runtime/request_rows.cc" "$root/runtime/json_document.cc" "$root/runtime/tensor_request_scan.cc" \
  "$root/io/number_parse.cc" "$root/core/error.cc" -lsimdjson -o "$out/request_fuzzer"
cp -n "$root"/tests/fuzz/corpus/* "$out/corpus/" 2>/dev/null || true
echo "fuzz: running request_fuzzer for ${seconds}s"
"$out/request_fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=5 -rss_limit_mb=1024 \
  -print_final_stats=1 "$out/corpus" 2>&1 | tail -n 12
