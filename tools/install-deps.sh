#!/usr/bin/env bash
# Installs the Debian 12 packages gradientd needs to build and test, if any
# is missing. Run as root (or with sudo available).
#   --fuzz   also the fuzzing toolchain (only tools/fuzz.sh needs it)
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config
  libboost1.81-dev libboost-program-options1.81-dev
  libprotobuf-dev protobuf-compiler
  libmpfr-dev  # a correctly rounded exp2: decay factors identical on every machine
  libssl-dev openssl
  libgtest-dev libgmock-dev libbenchmark-dev
  python3
  prometheus  # promtool: the metrics tests check the exposition and the alert rules
  e2fsprogs mount util-linux  # the full-disk test: mkfs.ext4, losetup, fallocate
  curl  # the HTTP smoke test (and README's examples)
  libjs-chart.js  # the dashboard's charts, compiled into gradientd (with its license)
  chromium        # the dashboard's browser test (ctest dashboard_browser)
  nats-server libnats-dev  # cluster mode: JetStream, its C client; tests start their own servers
)
# The browser test's driver, puppeteer-core, comes from npm (npm ci at test
# time); Debian's node and npm unless the machine already has them.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

# Optional, for tools/fuzz.sh only; the normal build uses g++. clang-14 does
# not depend on libclang-rt-14-dev, which holds libFuzzer and clang's
# sanitizer runtimes; llvm gives llvm-symbolizer for readable crash stacks.
fuzz_packages=(
  clang libclang-rt-14-dev llvm
)
if [ "${1:-}" = "--fuzz" ]; then
  packages+=("${fuzz_packages[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
