#!/usr/bin/env bash
# The main demo, from a fresh Debian 12 machine: installs what it needs, builds kiln, trains the
# Fashion-MNIST CNN (examples/fashion_mnist/cnn.pbtxt) on the CPU and evaluates it on the test set.
#   scripts/demo.sh           the full 15-epoch run (>= 92.5% test accuracy)
#   scripts/demo.sh --quick   2 epochs, a couple of minutes
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
extra=()
if [ "${1:-}" = "--quick" ]; then extra=(--set epochs=2 --set output_dir=runs/fashion_mnist_cnn_quick); fi
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target kiln -j "$(nproc)"
kiln=build/cli/kiln
echo "== kiln train (Fashion-MNIST CNN; checkpoints and TensorBoard events under runs/) =="
"$kiln" train --config examples/fashion_mnist/cnn.pbtxt "${extra[@]}"
echo "== kiln evaluate (10,000 test images) =="
"$kiln" evaluate --config examples/fashion_mnist/cnn.pbtxt "${extra[@]}"
