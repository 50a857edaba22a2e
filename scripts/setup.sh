#!/usr/bin/env bash
# Installs every Debian package Kiln needs to build, test and run its demo. Idempotent:
# packages already present are skipped, so a second run costs one dpkg query. With arguments it
# installs those packages instead, the same way (scripts/container_test.sh: podman and the rest).
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache pkg-config
  protobuf-compiler libprotobuf-dev
  libdnnl-dev libcli11-dev libxxhash-dev
  libopenmpi-dev openmpi-bin
  libgtest-dev libgmock-dev
  zlib1g-dev
  libsqlite3-dev libeigen3-dev
  libboost1.81-dev libsimdjson-dev libjemalloc-dev
  libonnx-dev
  libpq-dev postgresql
  clang libclang-rt-14-dev
  dataset-fashion-mnist
  python3 python3-venv
  chromium chromium-driver  # the data report's browser test (tests/tools/report_in_browser.py)
)
[ $# -eq 0 ] || packages=("$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
