#!/usr/bin/env bash
# ctest dashboard_browser: installs puppeteer-core (package-lock.json, npm
# ci) into the build tree and runs dashboard_test.mjs there with Debian's
# Chromium.   run.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source_dir=$1
build_dir=$2
here=$source_dir/tests/browser
node_dir=$build_dir/tests/browser-node
mkdir -p "$node_dir"
cp "$here/package.json" "$here/package-lock.json" "$here/dashboard_test.mjs" "$node_dir/"
if ! cmp -s "$here/package-lock.json" "$node_dir/node_modules/.package-lock.json.installed" 2>/dev/null; then
  npm ci --prefix "$node_dir" --no-audit --no-fund --loglevel=error
  cp "$here/package-lock.json" "$node_dir/node_modules/.package-lock.json.installed"
fi
exec node "$node_dir/dashboard_test.mjs" "$build_dir/tools/gradientd" "$build_dir/tools/gradctl" \
  "$source_dir/tools/demo" "$build_dir/tests/browser-artifacts"
