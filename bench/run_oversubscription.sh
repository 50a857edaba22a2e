#!/usr/bin/env bash
# Oversubscription benchmark (issue 18, item 7): two `kiln train` runs at once on 2 cores, each
# with the default thread count, against one at a time. 1,040 babyweight wide & deep steps per
# run. Measured twice with the same binary: with libgomp's stock spinning (GOMP_SPINCOUNT=300000,
# what kiln ran with before it bounded it) and with kiln's default (10,000 spins, then a futex);
# plus a lone 10,400-step run in both modes, the cost of the bound to a training alone.
# Writes bench/results/oversubscription.md.
#   bash bench/run_oversubscription.sh [ROUNDS]      (KILN=path/to/kiln to skip the build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rounds=${1:-5}
kiln=${KILN:-$(bash bench/build_kiln.sh)}
ex=$root/examples/babyweight
[ -e "$ex/data/eval.csv" ] || { echo "run examples/babyweight/fetch_data.sh first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
args=(--config "$ex/wide_deep.pbtxt" --set "data.csv.train_files=$ex/data/train-*.csv"
      --set "data.csv.eval_files=$ex/data/eval.csv" --set "data.csv.feature_spec_file=$ex/feature_spec.pbtxt"
      --set resume=false)
# The two runs share 2 cores, as on a 2-core CI machine.
cpus=0-1
seconds() { python3 -c 'import time; print(f"{time.time():.4f}")'; }
one() {  # one run alone (of $1 steps, default 1040): wall seconds
  local s e
  s=$(seconds)
  taskset -c $cpus "$kiln" train "${args[@]}" --set "max_steps=${1:-1040}" --set "output_dir=$work/a" >/dev/null 2>&1
  e=$(seconds)
  python3 -c "print(f'{$e - $s:.3f}')"
}
two() {  # two runs at once: the wall seconds of the slower one
  local s e
  s=$(seconds)
  taskset -c $cpus "$kiln" train "${args[@]}" --set max_steps=1040 --set "output_dir=$work/b" >/dev/null 2>&1 &
  taskset -c $cpus "$kiln" train "${args[@]}" --set max_steps=1040 --set "output_dir=$work/c" >/dev/null 2>&1 &
  wait
  e=$(seconds)
  python3 -c "print(f'{$e - $s:.3f}')"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

declare -A result
for mode in stock bounded; do
  if [ $mode = stock ]; then export GOMP_SPINCOUNT=300000; else unset GOMP_SPINCOUNT; fi
  ones=() twos=() longs=()
  for ((r = 0; r < rounds; ++r)); do  # interleaved, so drift in machine load hits both alike
    ones+=("$(one)")
    twos+=("$(two)")
    longs+=("$(one 10400)")
  done
  result[$mode-long]=$(median "${longs[@]}")
  result[$mode-longs]="${longs[*]}"
  result[$mode-one]=$(median "${ones[@]}")
  result[$mode-two]=$(median "${twos[@]}")
  result[$mode-ones]="${ones[*]}"
  result[$mode-twos]="${twos[*]}"
  echo "$mode: one at a time ${ones[*]} s; two at once ${twos[*]} s; 10,400 steps ${longs[*]} s" >&2
done
unset GOMP_SPINCOUNT

out=bench/results/oversubscription.md
{
  echo "# Two trainings on 2 cores (issue 18, item 7)"
  echo
  echo "Command: \`bash bench/run_oversubscription.sh $rounds\` ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo "Commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/results' || echo ' (with uncommitted changes)')"
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, runs pinned to CPUs $cpus with taskset;"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "Each run: \`kiln train\` on examples/babyweight/wide_deep.pbtxt, max_steps 1040, default threads"
  echo "(one OpenMP thread per core), process start and data loading included. Two at once: wall time"
  echo "until both end. Medians of $rounds interleaved rounds; all rounds below."
  echo
  echo "| OpenMP waiting | one at a time (s) | two at once (s) | slowdown | alone, 10,400 steps (s) |"
  echo "|---|---|---|---|---|"
  for mode in stock bounded; do
    label=$([ $mode = stock ] && echo "libgomp stock: spin 300,000 (GOMP_SPINCOUNT=300000)" || echo "kiln default: spin 10,000, then block")
    slow=$(python3 -c "print(f'{${result[$mode-two]} / ${result[$mode-one]}:.1f}x')")
    echo "| $label | ${result[$mode-one]} | ${result[$mode-two]} | $slow | ${result[$mode-long]} |"
  done
  echo
  echo "Two runs at once do twice the work of one on the same 2 cores: about 2x is the expected cost."
  echo
  for mode in stock bounded; do
    echo "- $mode: one at a time ${result[$mode-ones]}; two at once ${result[$mode-twos]}; alone, 10,400 steps ${result[$mode-longs]}"
  done
} > "$out"
cat "$out"
