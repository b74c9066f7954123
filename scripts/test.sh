#!/usr/bin/env bash
# Builds bootstate with warnings as errors and runs every test (unit, integration, crash,
# fwupd, PostgreSQL, Nix syntax, scenarios). Installs the Debian packages it needs first.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/install-deps.sh test
build=${BOOTSTATE_BUILD_DIR:-$top/build-ci}
# The tests' Python modules come from Debian packages (python3-jsonschema, …), which only the
# system interpreter sees; another python3 first on PATH (pyenv) would make those tests skip.
python=()
[ -x /usr/bin/python3 ] && python=(-DPython3_EXECUTABLE=/usr/bin/python3)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBOOTSTATE_WERROR=ON \
  "${python[@]}" -DBOOTSTATE_FIRMWARE=ON -DBOOTSTATE_MODULES="core;bootloader;initrd;stage2;firmware;cli"
cmake --build "$build" -j "$(nproc)"
cd "$build"
ctest --output-on-failure -j "$(nproc)" "$@"
