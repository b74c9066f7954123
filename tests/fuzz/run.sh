#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/targets) with clang in BUILD_DIR and runs each one on
# its seed corpus (tests/fuzz/corpus/TARGET) for at most SECONDS and RUNS executions, then prints
# the executions of each target and their total. Fails on the first crash, leak, sanitizer
# report or violated property; the input is kept as BUILD_DIR/artifacts/TARGET-crash-…
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS [RUNS] [TARGET…]
#
# The smoke run in ctest (label `fuzz`) is `run.sh … 12 500000`; the long run in docs/TESTING.md
# gives more seconds. Inputs libFuzzer finds go to BUILD_DIR/corpus/TARGET (kept between runs),
# never into the source tree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD_DIR SECONDS [RUNS] [TARGET...]}
seconds=${2:?usage: run.sh BUILD_DIR SECONDS [RUNS] [TARGET...]}
runs=${3:--1}
shift $(($# < 3 ? $# : 3))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(plan state_payload slot idle_certificate entry_name efivars)

cxx=${BOOTSTATE_FUZZ_CXX:-$(command -v clang++-14 || command -v clang++ || true)}
if [ -z "$cxx" ]; then
  echo "fuzz: no clang++ (libFuzzer needs clang; scripts/install-deps.sh test installs clang-14)" >&2
  exit 1
fi
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$here/targets" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_COMPILER="$cxx" \
  "${launcher[@]}" >"$build.configure.log" 2>&1 || { cat "$build.configure.log" >&2; exit 1; }
cmake --build "$build" -- -j "${BOOTSTATE_FUZZ_JOBS:-2}" >"$build.build.log" 2>&1 ||
  { cat "$build.build.log" >&2; exit 1; }

mkdir -p "$build/artifacts"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$here/ubsan.supp"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
total=0
for target in "${targets[@]}"; do
  mkdir -p "$build/corpus/$target"
  log=$build/$target.log
  # Scratch corpus first (new inputs are written there), the seeds after it (only read).
  if ! "$build/fuzz_$target" -max_total_time="$seconds" -runs="$runs" -print_final_stats=1 \
      -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$build/artifacts/$target-" \
      "$build/corpus/$target" "$here/corpus/$target" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $target FAILED (input kept in $build/artifacts/)" >&2
    exit 1
  fi
  # A target that exits 0 without fuzzing (no statistics, or none executed) is not a pass.
  executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if ! [[ "$executed" =~ ^[0-9]+$ ]] || [ "$executed" -eq 0 ]; then
    tail -n 20 "$log" >&2
    echo "fuzz: $target ran no input (no stat::number_of_executed_units > 0 in $log)" >&2
    exit 1
  fi
  echo "fuzz: $target: $executed executions, no crash"
  total=$((total + executed))
done
echo "fuzz: ${#targets[@]} targets, $total executions, no crash"
