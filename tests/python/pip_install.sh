#!/usr/bin/env bash
# The route docs/python.md gives users: `pip install ./python` (scikit-build-core + nanobind over
# the repository's CMake tree), then `import kiln` from elsewhere. Installs into a temporary
# directory with the test venv's build tools (no build isolation: no network needed).
#   tests/python/pip_install.sh [PYTHON]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
python=${1:-${KILN_PYTHON:-$root/.venv/test/bin/python}}
target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT
start=$(date +%s)
# The main build's compiler name, CUDA choice and warnings, so ccache serves the objects it
# compiled (pip's environment would otherwise pick g++, a different ccache key from CMake's c++).
export CC=${CC:-cc} CXX=${CXX:-c++}
"$python" -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps --target "$target" \
  -C cmake.define.KILN_WERROR=ON -C cmake.define.KILN_CUDA="${KILN_CUDA:-OFF}" "$root/python"
echo "pip install ./python: $(( $(date +%s) - start )) s"
cd "$target"
PYTHONPATH="$target" "$python" - "$target" <<'PY'
import sys
import kiln
assert kiln.__file__.startswith(sys.argv[1]), kiln.__file__
spec = 'features { name: "x" numeric { scaling: Z_SCORE } }\nlabel { column: "y" type: REGRESSION }\n'
state = kiln.analyze({"x": [1.0, 2.0, 3.0, float("nan")], "y": [0.0, 1.0, 0.0, 1.0]}, spec)
assert state.rows == 4, state
print("import kiln from", kiln.__file__, "->", state)
PY
