#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ (or $FUZZ_BUILD_DIR)
# and runs each for a bounded time on a temporary copy of the seed corpus
# (tests/fuzz/corpus/<target>/ plus tests/fuzz/regressions/<target>/), so a
# run never writes into the repository. Exits non-zero if any target finds a
# crash, leak, timeout or violated invariant, and prints where the input is
# (and the input itself, base64, for CI logs).
#
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_TARGETS   targets to run (default "frame_decoder request_path recovery")
#   Extra arguments go to every fuzzer (e.g. -jobs=2, -seed=1).
#
# A crasher found here is reproduced with
#   build-fuzz/tests/fuzz/<target>_fuzz CRASH_FILE
# and, once fixed, kept as a regression test by copying it to
# tests/fuzz/regressions/<target>/ (tests/fuzz_regression_test.cc runs it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-frame_decoder request_path recovery}

bash "$root/tools/install-deps.sh" --fuzz
start=$(date +%s)
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGRADIENTD_BUILD_FUZZERS=ON -DGRADIENTD_BUILD_TESTS=OFF >/dev/null
extra_targets=()
[[ " $targets " == *" recovery "* ]] && extra_targets+=(recovery_make_seeds)
cmake --build "$build" --target $(for t in $targets; do printf '%s_fuzz ' "$t"; done) \
  ${extra_targets[@]+"${extra_targets[@]}"}
echo "fuzz: built in $(($(date +%s) - start)) s"

work=$(mktemp -d "${TMPDIR:-/tmp}/gradientd-fuzz.XXXXXX")
# recovery_fuzz's data directories: in memory when /dev/shm is there; removed
# at exit (libFuzzer's _Exit skips the fuzzer's own clean-up).
if [ -d /dev/shm ]; then scratch=$(mktemp -d /dev/shm/gradientd-fuzz-scratch.XXXXXX); else scratch=$work/scratch; mkdir -p "$scratch"; fi
export GRADIENTD_FUZZ_SCRATCH=$scratch
trap 'rm -rf "$scratch"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=()
for target in $targets; do
  dir=$work/$target
  mkdir -p "$dir/corpus" "$dir/artifacts"
  for seeds in "$root/tests/fuzz/corpus/$target" "$root/tests/fuzz/regressions/$target"; do
    if [ -d "$seeds" ] && [ -n "$(ls -A "$seeds")" ]; then cp "$seeds"/* "$dir/corpus/"; fi
  done
  # recovery: seeds from real data directories, made now in the storage
  # format as it is (journals and snapshots; see tests/fuzz/recovery_checks.h).
  if [ "$target" = recovery ]; then "$build/tests/fuzz/recovery_make_seeds" "$dir/corpus"; fi
  args=(-max_total_time="$seconds" -timeout=30 -max_len=8192 -print_final_stats=1
        -artifact_prefix="$dir/artifacts/")
  dict=$root/tests/fuzz/$target.dict
  [ -f "$dict" ] && args+=(-dict="$dict")
  echo "fuzz: $target for ${seconds} s (log: $dir/log)"
  if "$build/tests/fuzz/${target}_fuzz" "${args[@]}" "$@" "$dir/corpus" >"$dir/log" 2>&1; then
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$dir/log" | sed "s/^/fuzz: $target: /"
    echo "fuzz: $target: corpus grew from $(ls "$root/tests/fuzz/corpus/$target" | wc -l) seeds to $(ls "$dir/corpus" | wc -l) inputs"
  else
    failed+=("$target")
    echo "fuzz: $target FAILED; the end of its log:"
    tail -n 80 "$dir/log"
    for input in "$dir"/artifacts/*; do
      [ -f "$input" ] || continue
      echo "fuzz: $target: failing input: $input ($(stat -c %s "$input") bytes); base64:"
      base64 "$input"
      echo "fuzz: reproduce with: $build/tests/fuzz/${target}_fuzz $input"
    done
  fi
done

echo "fuzz: total $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}; inputs and logs kept in $work"
  exit 1
fi
rm -rf "$work"
echo "fuzz: no crash, leak or invariant violation in: $targets"
