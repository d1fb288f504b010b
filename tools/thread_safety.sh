#!/usr/bin/env bash
# Builds with clang and -Wthread-safety -Werror=thread-safety in build-tsa/
# (or $BUILD_DIR): a lock rule broken anywhere (a GUARDED_BY field touched
# without its mutex, a REQUIRES function called without it) fails the build.
# Compiles only; the tests run in the other builds. What it compiles: every
# library under src/ (through the gradientd and gradctl programs, which link
# them all) and the tests that take a util::Mutex or carry an annotation
# themselves; the other tests hold no lock the analysis could check.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-tsa}
bash "$root/tools/install-deps.sh" --fuzz  # clang
# Debug without debug information: nothing here is run or debugged.
CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DGRADIENTD_THREAD_SAFETY_ANALYSIS=ON >/dev/null
mapfile -t locking_tests < <(grep -lE 'util::Mutex|MutexLock|GUARDED_BY|REQUIRES\(|ACQUIRE\(|EXCLUDES\(' \
  "$root"/tests/*_test.cc | xargs -n1 basename | sed 's/\.cc$//')
# Every library must be reached from these targets (checked here, so a new
# library the programs do not link is not silently left out).
targets=(gradientd gradctl "${locking_tests[@]}")
libraries=$(sed -n 's/^add_library(\(gradientd_[a-z_]*\) .*/\1/p' "$root/src/CMakeLists.txt")
cmake --build "$build" --target "${targets[@]}"
for library in $libraries; do
  if [ ! -f "$build/src/lib$library.a" ]; then
    echo "thread-safety: $library was not built by: ${targets[*]}" >&2
    exit 1
  fi
done
echo "thread-safety: clean (${targets[*]} and the $(echo "$libraries" | wc -w) libraries)"
