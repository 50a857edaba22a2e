#!/usr/bin/env bash
# kiln tune's suggesters vs Optuna's (GPSampler, TPESampler, RandomSampler) in one run: simple
# regret on Branin (40 trials) and Hartmann-6 (50 trials) over 20 seeds each, and the time to one
# suggestion at 200 completed trials. Writes bench/results/tune.md and tune.json.
#   bench/run_tune.sh [--seeds N]          (KILN_BUILD_DIR=build-x to use another build directory)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seeds=20
if [ "${1:-}" = "--seeds" ]; then seeds=$2; fi
bash scripts/setup.sh
python=$(bash scripts/python_env.sh tune)
build=${KILN_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target kiln_bench_tune -j "$(nproc)"
bench="$build/bench/kiln_bench_tune"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for spec in branin:40 hartmann6:50; do
  fn=${spec%:*}; trials=${spec#*:}
  echo "== $fn, $trials trials, $seeds seeds"
  "$bench" --function "$fn" --trials "$trials" --seeds "$seeds" > "$out/${fn}_kiln_gp.json"
  "$bench" --function "$fn" --trials "$trials" --seeds "$seeds" --batch 4 > "$out/${fn}_kiln_gp_batch4.json"
  "$bench" --function "$fn" --trials "$trials" --seeds "$seeds" --algorithm random > "$out/${fn}_kiln_random.json"
  for s in gp tpe random; do
    "$python" bench/tune_vs_optuna.py run --function "$fn" --trials "$trials" --seeds "$seeds" --sampler "$s" \
      > "$out/${fn}_optuna_$s.json" 2>/dev/null
  done
done
echo "== suggestion time at 200 completed trials"
"$bench" --timing 200 > "$out/timing_kiln.json"
"$python" bench/tune_vs_optuna.py timing --completed 200 > "$out/timing_optuna.json"
mkdir -p bench/results
"$python" bench/tune_vs_optuna.py report --inputs "$out" --json bench/results/tune.json --md bench/results/tune.md \
  --command "bench/run_tune.sh --seeds $seeds"
