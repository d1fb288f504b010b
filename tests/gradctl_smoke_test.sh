#!/usr/bin/env bash
# Smoke test of gradctl against the real gradientd.
#
#   bash gradctl_smoke_test.sh GRADIENTD GRADCTL SOURCE_DIR
#
# Starts gradientd on a free port, drives every gradctl command, and checks
# results numerically (the revenue example's gradient and least-squares line,
# a synthetic line's recovery) and the error paths' exit codes and messages.
# Exits non-zero, saying what failed, on the first failure. No timing
# assertions: the only waits are bounded polls.
set -u

TEST_NAME=gradctl_smoke
ARG_NAMES=(GRADIENTD GRADCTL SOURCE_DIR)
source "$(dirname "$0")/lib.sh" || exit 1

# --- Start the server on a free port and read the port it reports. ---------
start_server --in-memory
pass "gradientd listening on $server"
GC=("$GRADCTL" --server "$server")  # gradctl against the test server

# --- Help. ------------------------------------------------------------------
run 0 "gradctl --help" "$GRADCTL" --help
for word in produce gradient fit step configure reset list --server --series --json; do
  expect_out "gradctl --help lists $word" "$word"
done
pass "gradctl --help"
run 0 "gradctl produce --help" "$GRADCTL" produce --help
for word in --x-column --y-column --synthetic --batch --window --progress-every; do
  expect_out "gradctl produce --help documents $word" "$word"
done
pass "gradctl produce --help"
run 0 "gradctl help step" "$GRADCTL" help step
expect_out "gradctl help step" "--iterations"

# --- The revenue example: CSV with a header, columns by name. ---------------
csv=$tmp/revenue.csv
{
  echo "month,revenue"
  month=1
  for revenue in 52 74 79 95 115 110 129 126 147 146 156 184; do
    echo "$month,$revenue"
    month=$((month + 1))
  done
} >"$csv"
if [[ -f $SOURCE_DIR/tools/demo/revenue.csv ]]; then
  cmp -s "$csv" "$SOURCE_DIR/tools/demo/revenue.csv" ||
    fail "tools/demo/revenue.csv differs from the revenue data"
  pass "tools/demo/revenue.csv holds the revenue data"
fi

run 0 "produce revenue.csv" "${GC[@]}" --series revenue produce "$csv" --x-column month --y-column revenue
expect_out "produce summary" "points sent: +12$"
expect_out "produce summary" "series total: +12$"
expect_out "produce summary" "batches: +1$"
pass "produce revenue.csv: 12 points"

# The gradient of the MSE at (0, 0): dL/db = -2 * mean(revenue) = -235.5,
# dL/dm = -2/12 * sum(month * revenue) = -1778.333...
run 0 "gradient --json" "${GC[@]}" --series revenue gradient --m 0 --b 0 --json
near "gradient intercept_gradient" "$(json_number "$out" '"intercept_gradient')" -235.5 1e-9
near "gradient slope_gradient" "$(json_number "$out" '"slope_gradient')" -1778.3333333333333 1e-9
near "gradient n" "$(json_number "$out" '"n')" 12 0
run 0 "gradient" "${GC[@]}" --series revenue gradient --m 0 --b 0
expect_out "gradient readable" "dL/db: +-235.5$"

# The least-squares line: m = 1485.5/143 = 10.388..., b = 117.75 - 6.5 m = 50.227...
run 0 "fit" "${GC[@]}" --series revenue fit
expect_out "fit readable" "least-squares m: +10\.388111"
expect_out "fit readable" "least-squares b: +50\.227272"
expect_out "fit readable" "R²: +0\.96301"
run 0 "fit --json" "${GC[@]}" --series revenue fit --json
near "least-squares m" "$(json_number "$out" '"least_squares":{"m')" 10.388111888111888 1e-9
near "least-squares b" "$(json_number "$out" '"least_squares":{"m":[^,]*,"b')" 50.22727272727273 1e-9

# One step of rate 0.01 from (0, 0): b = 0.01 * 235.5 = 2.355,
# m = 0.01 * 1778.333... = 17.78333... Reset drops the points, so configure
# no steps per batch (so the model stays at (0, 0)), reset, and send the
# points again.
run 0 "configure" "${GC[@]}" --series revenue configure --learning-rate 0.01 --steps-per-batch 0
expect_out "configure" "learning rate: +0\.01$"
expect_out "configure" "steps per batch: +0$"
run 0 "reset" "${GC[@]}" --series revenue reset
expect_out "reset" "^n: +0$"
expect_out "reset keeps the configuration" "learning rate: +0\.01$"
run 0 "produce again" "${GC[@]}" --series revenue produce "$csv" --x-column month --y-column revenue
run 0 "step" "${GC[@]}" --series revenue step --iterations 1
expect_out "step readable" "^b: +2\.355$"
expect_out "step readable" "^iterations: +1$"
run 0 "step --json" "${GC[@]}" --series revenue step --iterations 0 --json
near "step b" "$(json_number "$out" '"b')" 2.355 1e-12
near "step m" "$(json_number "$out" '"m')" 17.783333333333333 1e-9

# stdin, columns by index, header auto-detected; GRADIENTD_SERVER.
run 0 "produce from stdin" env GRADIENTD_SERVER="$server" "$GRADCTL" --series stdin \
  produce - --x-column 0 --y-column 1 <"$csv"
expect_out "produce from stdin" "points sent: +12$"
pass "produce from stdin with \$GRADIENTD_SERVER"

# --- list. ------------------------------------------------------------------
run 0 "list" "${GC[@]}" list
expect_out "list" "^SERIES"
expect_out "list" "^revenue +12 "
expect_out "list" "^stdin +12 "
run 0 "list --json" "${GC[@]}" list --json
expect_out "list --json" '"series_list"'
# Pages: one series per page still lists every series, once, in order.
for s in page-a page-b page-c; do
  run 0 "configure $s" "${GC[@]}" --series "$s" configure --steps-per-batch 1
done
run 0 "list --page-size 1" "${GC[@]}" list --page-size 1
expect_out "list --page-size 1" "^revenue +12 "
[[ $(grep -Ec '^(page-a|page-b|page-c|revenue|stdin) ' <<<"$out") -eq 5 ]] ||
  fail "list --page-size 1 does not list each series once: $out"
run 0 "list --prefix page- --page-size 2" "${GC[@]}" list --prefix page- --page-size 2
[[ $(grep -Ec '^page-[abc] ' <<<"$out") -eq 3 ]] || fail "list --prefix: $out"
grep -Eq '^revenue ' <<<"$out" && fail "list --prefix lists revenue: $out"
run 2 "list --page-size 0" "${GC[@]}" list --page-size 0
expect_err "list --page-size 0" "--page-size must be between 1 and 4096"
pass "list"

# --- A synthetic line is recovered. -----------------------------------------
run 0 "synthetic produce" "${GC[@]}" --series synth produce --synthetic --slope 3.5 --intercept -7 \
  --noise 0.05 --count 100000 --x-min -10 --x-max 10 --seed 42 --batch 4096 --window 8 \
  --progress-every 5
expect_out "synthetic produce" "points sent: +100000$"
expect_out "synthetic produce progress" "^batch 5: "
run 0 "synthetic fit" "${GC[@]}" --series synth fit --json
near "synthetic n" "$(json_number "$out" '"n')" 100000 0
near "synthetic least-squares m" "$(json_number "$out" '"least_squares":{"m')" 3.5 1e-3
near "synthetic least-squares b" "$(json_number "$out" '"least_squares":{"m":[^,]*,"b')" -7 1e-2
run 0 "synthetic step to convergence" "${GC[@]}" --series synth step --iterations 100000 \
  --tolerance 1e-9 --json
expect_out "synthetic step converged" '"converged":true'
near "synthetic descent m" "$(json_number "$out" '"m')" 3.5 1e-3

# --- Error paths. -----------------------------------------------------------
run 1 "unknown series" "${GC[@]}" --series no-such-series fit
expect_err "unknown series" "NOT_FOUND"
expect_err "unknown series" "no-such-series"
pass "unknown series: exit 1, NOT_FOUND"
run 1 "unknown series --json" "${GC[@]}" --series no-such-series gradient --json
expect_out "unknown series --json" '"code":"NOT_FOUND"'
pass "unknown series --json: the error as JSON"

bad=$tmp/bad.csv
printf 'x,y\n1,2\n2,4\n# a comment\n3,6\n4,oops\n5,10\n' >"$bad"
run 1 "bad CSV line" "${GC[@]}" --series badcsv produce "$bad" --batch 2
expect_err "bad CSV line" "bad\.csv:6: .*not a number: \"oops\""
expect_err "bad CSV line" "3 points"
pass "bad CSV line: exit 1, line 6 named"
run 0 "points before the bad line were sent" "${GC[@]}" --series badcsv fit
expect_out "points before the bad line" "^n: +3$"
pass "points before the bad line were sent"

run 1 "missing CSV column" "${GC[@]}" --series badcsv produce "$csv" --y-column sales
expect_err "missing CSV column" "revenue\.csv:1: no column named 'sales'.*'month', 'revenue'"
pass "unknown column name: exit 1, columns listed"

long_name=$(printf 'n%.0s' $(seq 1 300))
run 1 "ingest rejected" "${GC[@]}" --series "$long_name" produce "$csv"
expect_err "ingest rejected" "server error INVALID_ARGUMENT"
pass "rejected ingest: exit 1, server error"

run 2 "unknown subcommand" "$GRADCTL" --server "$server" frobnicate
expect_err "unknown subcommand" "unknown command 'frobnicate'"
run 2 "unknown flag" "${GC[@]}" fit --frobnicate
run 2 "bad flag value" "${GC[@]}" step --iterations many
run 2 "no subcommand" "$GRADCTL"
pass "usage errors: exit 2"

run 0 "a chosen congestion control" "${GC[@]}" --tcp-congestion reno --series revenue fit
run 1 "an unknown congestion control" "${GC[@]}" --tcp-congestion no-such-cc --series revenue fit
expect_err "an unknown congestion control" \
  "cannot use TCP congestion control 'no-such-cc': this kernel has no such algorithm"
run 2 "an empty congestion control" "${GC[@]}" --tcp-congestion "" fit
expect_err "an empty congestion control" "--tcp-congestion needs a NAME"
pass "--tcp-congestion: used, or a clear error"

# --- The server down: its port is closed once it has stopped. ----------------
stop_server
run 1 "server down" "$GRADCTL" --server "$server" list
expect_err "server down" "cannot connect to $server"
pass "server down: exit 1, cannot connect"

echo "PASS: $checks checks"
