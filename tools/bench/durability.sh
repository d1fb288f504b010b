#!/usr/bin/env bash
# Durability benchmark (not a test): acknowledged ingest with --fsync always,
# interval and never, and the recovery time of a journal of 10^6 batches.
# Builds Release into build-bench/ (or $BUILD_DIR) and prints a Markdown table.
#
# Usage: tools/bench/durability.sh [SECONDS_PER_RUN]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-5}
export BUILD_DIR=${BUILD_DIR:-$root/build-bench}
bash "$root/tools/build.sh" -DCMAKE_BUILD_TYPE=Release -DGRADIENTD_BUILD_TESTS=OFF >/dev/null
gradientd=$BUILD_DIR/tools/gradientd
gradctl=$BUILD_DIR/tools/gradctl

work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT

start() {  # start DATA_DIR ARGS... -> pid, address
  "$gradientd" --listen 127.0.0.1:0 --data-dir "$1" "${@:2}" >"$work/out" 2>"$work/err" &
  pid=$!
  address=
  for _ in $(seq 600); do
    address=$(sed -n 's/^gradientd listening on //p' "$work/out")
    [ -n "$address" ] && return 0
    sleep 0.05
  done
  cat "$work/err" >&2
  exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

echo "| --fsync | batch (points) | acknowledged points/s | acknowledged batches/s |"
echo "| --- | ---: | ---: | ---: |"
for mode in always interval never; do
  for batch in 8192 256; do
    rm -rf "$work/data"
    start "$work/data" --fsync "$mode" --fsync-interval 100ms
    "$gradctl" bench --server "$address" --producers 2 --batch "$batch" --window 16 \
      --seconds "$seconds" --no-baseline --json >"$work/bench.json"
    stop
    json "'| $mode | $batch | %.3g | %.3g |' % (d['points_per_second'], d['batches_per_second'])" \
      <"$work/bench.json"
  done
done

# Recovery: 10^6 journaled batches of 10 points, then kill -9 and restart.
rm -rf "$work/data"
start "$work/data" --fsync never --checkpoint-interval 1h --checkpoint-bytes 1GiB
"$gradctl" --server "$address" produce --synthetic --count 10000000 --batch 10 --window 64 \
  --series recovery >/dev/null
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
journal_bytes=$(du -sb "$work/data" | cut -f1)
start "$work/data"
echo
echo "Recovery of 10^6 journaled batches (10^7 points, $((journal_bytes / 1048576)) MiB of journal):"
sed 's/^/    /' "$work/err"
stop
