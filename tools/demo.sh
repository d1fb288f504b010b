#!/usr/bin/env bash
# The quick-start demo: installs what is missing, builds, starts gradientd on a
# free port, streams the lesson's revenue data and then a million synthetic
# points into it, and shows the gradient and fit as they evolve.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
bash "$root/tools/build.sh"
gradientd=$build/tools/gradientd
gradctl=$build/tools/gradctl

work=$(mktemp -d)
server_pid=
trap 'stop_server; rm -rf "$work"' EXIT

# Starts gradientd on a free port with its data in $work/data.
start_server() {
  "$gradientd" --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/out" 2>"$work/err" &
  server_pid=$!
  # The HTTP line comes first, then the protocol's once recovery is done.
  for _ in $(seq 100); do
    grep -q "^gradientd listening on" "$work/out" && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/err"; exit 1; }
    sleep 0.1
  done
  address=$(sed -n 's/^gradientd listening on //p' "$work/out")
  http_address=$(sed -n 's/^gradientd http listening on //p' "$work/out")
  [ -n "$address" ] || { echo "demo: gradientd did not start" >&2; cat "$work/err"; exit 1; }
  export GRADIENTD_SERVER=$address
}
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  server_pid=
}

start_server
step() { printf '\n\033[1m$ gradctl %s\033[0m\n' "$*"; "$gradctl" "$@"; }

echo "gradientd is listening on $address; its dashboard is at http://$http_address/"
echo
echo "== 1. The lesson's data: monthly revenue, months 1..12"
step configure --series revenue --learning-rate 0.01 --steps-per-batch 0
step produce "$root/tools/demo/revenue.csv" --series revenue --x-column month --y-column revenue
step gradient --series revenue --m 0 --b 0
step step --series revenue --iterations 1 --learning-rate 0.01
step step --series revenue --iterations 100000 --tolerance 1e-9
step fit --series revenue

echo
echo "== 2. A million synthetic points, y = 2.5*x + 40 + noise, in batches of 8192;"
echo "   one auto-rate descent step runs after every batch, so the model follows the data"
step produce --series synthetic --synthetic --count 1000000 --x-min 0 --x-max 10 \
  --slope 2.5 --intercept 40 --noise 3 --seed 7 --progress-every 20
step step --series synthetic --iterations 1000000 --tolerance 1e-9
step fit --series synthetic

echo
echo "== 3. Offset data: Unix-timestamp x (10 hours from 1.7e9), slope 2.5 per hour."
echo "   The least-squares line stays exact; raw power sums would have lost every digit."
step produce --series sensor --synthetic --count 200000 --x-min 1700000000 --x-max 1700036000 \
  --slope 0.000694444444444444 --intercept -1180515.5555555555 --noise 0.01 --seed 7

echo
echo "== 4. Timestamped data (x in Unix seconds, 3 hours): a 1-hour sliding window and a"
echo "   10-minute half-life over event time; each batch is stamped with its last x"
step configure --series temp --window 1h --buckets 60 --half-life 10m
step produce "$root/tools/demo/timestamped.csv" --series temp --batch 6 --event-time x-seconds
step fit --series temp --view window
echo "   From (0, 0) the standardized step reaches the least-squares line at once;"
echo "   the lesson's plain step cannot, and says so"
step configure --series temp --m 0 --b 0
step step --series temp --iterations 100 --relative-tolerance 1e-9
step configure --series temp --m 0 --b 0
step step --series temp --iterations 100 --mode plain

echo
echo "== 5. Every series"
step list

echo
echo "== 6. Durable: kill -9 the server, start it again on the same data directory"
kill -9 "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
start_server
sed 's/^/   /' "$work/err"
step list

echo
echo "== 7. The dashboard: every series, and each one live (points, lines, loss)."
echo "   Its point samples are of traffic since the server started (never journaled),"
echo "   so the lesson's data goes once more into a new series, lesson"
step configure --series lesson --learning-rate 0.01 --steps-per-batch 0
step produce "$root/tools/demo/revenue.csv" --series lesson --x-column month --y-column revenue
echo "   http://$http_address/"
echo "   http://$http_address/series/lesson   (try: gradctl step --series lesson --iterations 10)"
if [ -t 0 ]; then
  echo "   The server stays up until you press Enter."
  read -r _
else
  echo "   (run tools/demo.sh from a terminal to keep the server up until Enter)"
fi
