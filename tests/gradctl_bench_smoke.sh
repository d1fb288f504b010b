#!/usr/bin/env bash
# Smoke test of `gradctl bench`.
#
#   bash gradctl_bench_smoke.sh GRADCTL GRADIENTD
#
# Short runs, checking what does not depend on speed: the exit code, the JSON
# report's keys and types, that every acknowledged point reached the server
# (the series' n), the readable report's lines, and usage errors. Nothing
# here asserts a speed or a latency; the only waits are bounded polls.
set -u

TEST_NAME=gradctl_bench_smoke
ARG_NAMES=(GRADCTL GRADIENTD)
LIMIT_SECONDS=240
source "$(dirname "$0")/lib.sh" || exit 1

# check_json WHAT PYTHON_EXPRESSIONS...: each expression, evaluated with the
# report as `j`, must be true.
check_json() {
  local what=$1
  shift
  python3 - "$tmp/out" "$@" <<'EOF' || fail "$what"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
if len(lines) != 1:
    sys.exit(f"expected one line of JSON, got {len(lines)}")
j = json.loads(lines[0])
def num(k):
    return isinstance(j.get(k), (int, float)) and not isinstance(j.get(k), bool) and j[k] >= 0
for expression in sys.argv[2:]:
    if not eval(expression):
        sys.exit(f"not true: {expression}")
EOF
}

command -v python3 >/dev/null 2>&1 || fail "python3 is needed to check the JSON"

# --- Help. ------------------------------------------------------------------
run 0 "gradctl bench --help" "$GRADCTL" bench --help
for word in --spawn-server --server-binary --producers --batch --window --seconds --query-rate \
  --idle-seconds --baseline --no-baseline --series-count --points --scrape-interval \
  --scrape-address; do
  grep -q -- "$word" "$tmp/out" || fail "gradctl bench --help does not document $word"
done
grep -q "bench" <("$GRADCTL" --help) || fail "gradctl --help does not list bench"
pass "help"

# --- Spawned server, baselines (the default), JSON. ---------------------------
# gradientd is found next to gradctl (both are in the build's tools/).
run 0 "bench --spawn-server --json" "$GRADCTL" bench --spawn-server --json --seconds 1 \
  --idle-seconds 0.2 --query-rate 200 --batch 1024 --window 4 --series-count 1000
required=(points_per_second payload_bytes_per_second query_p50_us query_p99_us query_p999_us
  idle_query_p50_us idle_query_p99_us idle_query_p999_us batches_per_second
  server_cpu_seconds server_peak_rss_bytes baseline_discard_bytes_per_second
  ingest_fraction_of_discard baseline_echo_p50_us baseline_echo_p99_us
  query_p50_over_echo_p50 series_bytes_per_series points_acknowledged batches_acknowledged)
exprs=()
for key in "${required[@]}"; do exprs+=("num('$key')"); done
check_json "bench --spawn-server --json: keys" "${exprs[@]}" \
  "j['server_spawned'] is True" "j['baseline'] is True" \
  "j['payload_bytes_per_point'] == 16" \
  "j['points_acknowledged'] >= 1024 and j['points_acknowledged'] % 1024 == 0" \
  "j['batches_acknowledged'] * 1024 == j['points_acknowledged']" \
  "j['query_count'] >= 1 and j['idle_query_count'] >= 1 and j['baseline_echo_count'] >= 1" \
  "j['query_p50_us'] <= j['query_p99_us'] <= j['query_p999_us'] <= j['query_max_us']" \
  "j['series_count'] == 1000" \
  "j['server_peak_rss_bytes'] > 0" \
  "isinstance(j['tcp_congestion'], str) and j['tcp_congestion'] != ''" \
  "j['ingest_window_seconds'] == 0.5 and j['ingest_windows'] >= 1" \
  "0 < j['ingest_window_min_points_per_second'] <= j['ingest_window_p50_points_per_second'] <= j['ingest_window_max_points_per_second']"
pass "bench --spawn-server --json: every key, numbers"

# --- Spawned server scraped every 100 ms: its HTTP line gives the address. ---
run 0 "bench --spawn-server --scrape-interval 100ms" "$GRADCTL" bench --spawn-server --json \
  --no-baseline --seconds 0.5 --idle-seconds 0.3 --query-rate 200 --batch 1024 \
  --scrape-interval 100ms
[[ ! -s $tmp/err ]] || fail "bench --scrape-interval: stderr: $(cat "$tmp/err")"
check_json "bench --scrape-interval 100ms: the scrape fields" \
  "j['scrape_interval_seconds'] == 0.1" \
  "j['scrape_address'].startswith('127.0.0.1:') and j['scrape_address'] != j['server']" \
  "j['scrapes'] >= 1 and j['scrapes_failed'] == 0" \
  "num('scrape_p50_us') and num('scrape_p99_us') and j['scrape_p50_us'] <= j['scrape_p99_us']" \
  "j['scrape_bytes_per_scrape'] > 100 and j['scrape_first_error'] is None" \
  "num('points_per_second') and num('query_p99_us') and num('idle_query_p99_us')"
run 0 "bench without scraping" "$GRADCTL" bench --spawn-server --json --no-baseline \
  --seconds 0.2 --idle-seconds 0 --batch 512
check_json "bench without scraping: interval 0, the rest null" \
  "j['scrape_interval_seconds'] == 0" "j['scrapes'] is None and j['scrapes_failed'] is None" \
  "j['scrape_address'] is None and j['scrape_p99_us'] is None"
pass "bench --scrape-interval with --spawn-server"

# --- Spawned server with an explicit binary, readable, no baselines. ---------
run 0 "bench readable" "$GRADCTL" bench --spawn-server --server-binary "$GRADIENTD" \
  --no-baseline --producers 1 --seconds 0.5 --idle-seconds 0.2 --query-rate 200 --batch 512
for line in "^ingest: " "^query, idle: " "^query, under ingest: " "^server CPU: " \
  "^server memory: "; do
  grep -Eq -- "$line" "$tmp/out" || fail "bench readable: no line /$line/"
done
! grep -q "discard baseline" "$tmp/out" || fail "bench --no-baseline ran the baselines"
pass "bench readable report"

# --- The congestion control of the benchmark's connections. -----------------
run 0 "bench --tcp-congestion reno" "$GRADCTL" --tcp-congestion reno bench --spawn-server --json \
  --seconds 0.5 --idle-seconds 0.1 --query-rate 200 --batch 512
check_json "bench --tcp-congestion reno: reported" "j['tcp_congestion'] == 'reno'" \
  "num('points_per_second')" "num('baseline_discard_bytes_per_second')"
run 1 "bench --tcp-congestion with an unknown name" "$GRADCTL" --tcp-congestion no-such-cc \
  bench --spawn-server --seconds 0.5 --idle-seconds 0.1
expect_err "bench --tcp-congestion no-such-cc" "cannot use TCP congestion control 'no-such-cc'"
pass "bench --tcp-congestion"

# --- A server started here: every acknowledged point is in the series. ------
start_server --in-memory
run 0 "bench --server" "$GRADCTL" --server "$server" --series smoke bench --json --seconds 0.5 \
  --idle-seconds 0.2 --query-rate 200 --batch 1000 --producers 3 --window 2
check_json "bench --server: no server statistics without --spawn-server" \
  "j['server_cpu_seconds'] is None and j['server_peak_rss_bytes'] is None" \
  "j['baseline'] is False and j['series'] == 'smoke'" "num('points_per_second')"
acked=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["points_acknowledged"])' \
  "$tmp/out")
run 0 "fit of the benchmarked series" "$GRADCTL" --server "$server" --series smoke fit --json
n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["fit"]["n"])' "$tmp/out")
# The series got one setup batch (it did not exist), then every acknowledged batch.
[[ $n == $((acked + 1000)) ]] || fail "series n is $n, expected $acked acknowledged + 1000 setup"
pass "every acknowledged point reached the series (n = $n)"
# A second run on the same series: no setup batch, no duplicate (fresh producer ids).
run 0 "bench --server again" "$GRADCTL" --server "$server" --series smoke bench --json \
  --seconds 0.2 --idle-seconds 0 --query-rate 200 --batch 1000 --producers 1 --baseline
check_json "bench --baseline without --spawn-server" "j['baseline'] is True" \
  "num('baseline_discard_bytes_per_second')" "j['idle_query_count'] is None"
acked2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["points_acknowledged"])' \
  "$tmp/out")
run 0 "fit again" "$GRADCTL" --server "$server" --series smoke fit --json
n2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["fit"]["n"])' "$tmp/out")
[[ $n2 == $((n + acked2)) ]] || fail "series n is $n2, expected $n + $acked2"
pass "a second run adds exactly its acknowledged points (n = $n2)"

# --- Errors. -----------------------------------------------------------------
run 2 "--series-count without --spawn-server" "$GRADCTL" bench --series-count 10
run 2 "--batch 0" "$GRADCTL" bench --batch 0
run 2 "--baseline --no-baseline" "$GRADCTL" bench --baseline --no-baseline
run 2 "--scrape-interval without an address" "$GRADCTL" bench --scrape-interval 1s
expect_err "--scrape-interval without an address" \
  "--scrape-interval needs --scrape-address HOST:PORT .*or --spawn-server"
for bad in abc -1s 1 5ms 2h; do
  run 2 "--scrape-interval $bad" "$GRADCTL" bench --spawn-server --scrape-interval "$bad"
  expect_err "--scrape-interval $bad" "--scrape-interval"
done
run 2 "--scrape-address without --scrape-interval" "$GRADCTL" bench --scrape-address 127.0.0.1:1
expect_err "--scrape-address alone" "--scrape-address needs --scrape-interval"
run 2 "--scrape-address with --spawn-server" "$GRADCTL" bench --spawn-server \
  --scrape-interval 1s --scrape-address 127.0.0.1:1
expect_err "--scrape-address with --spawn-server" "--scrape-address conflicts with --spawn-server"
run 2 "--scrape-address not an address" "$GRADCTL" bench --scrape-interval 1s \
  --scrape-address 127.0.0.1:notaport
expect_err "--scrape-address 127.0.0.1:notaport" "--scrape-address 127.0.0.1:notaport: "
run 1 "missing server binary" "$GRADCTL" bench --spawn-server --server-binary "$tmp/no-such-binary"
grep -q "no-such-binary" "$tmp/err" || fail "missing server binary: not named in the error"
stop_server
run 1 "server down" "$GRADCTL" --server "$server" bench --seconds 0.2
grep -q "cannot connect" "$tmp/err" || fail "server down: no 'cannot connect' message"
pass "errors: exit codes and messages"

echo "PASS: $checks checks"
