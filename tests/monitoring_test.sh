#!/usr/bin/env bash
# promtool accepts the alert rules and the sample scrape configuration in
# tools/monitoring/ (README, "Monitoring"). The configuration's token file
# must exist for promtool: it is checked from a copy that points at a
# temporary one.
#   bash tests/monitoring_test.sh [SOURCE_DIR]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
promtool check rules "$root/tools/monitoring/gradientd_alerts.yml"
cp "$root/tools/monitoring/gradientd_alerts.yml" "$dir/"
echo "a-token" >"$dir/gradientd.token"
sed "s|/etc/prometheus/gradientd.token|$dir/gradientd.token|" \
  "$root/tools/monitoring/prometheus.yml" >"$dir/prometheus.yml"
grep -q "credentials_file: $dir/gradientd.token" "$dir/prometheus.yml"
promtool check config "$dir/prometheus.yml"
