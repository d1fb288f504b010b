#!/usr/bin/env bash
# Builds everything with clang and -Wthread-safety -Werror=thread-safety in
# build-tsa/ (or $BUILD_DIR): a lock rule broken anywhere (a GUARDED_BY field
# touched without its mutex, a REQUIRES function called without it) fails
# the build. Compiles only; the tests run in the other builds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-tsa}
bash "$root/tools/install-deps.sh" --fuzz  # clang
CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DGRADIENTD_THREAD_SAFETY_ANALYSIS=ON >/dev/null
cmake --build "$build"
echo "thread-safety: clean"
