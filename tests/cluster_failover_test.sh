#!/usr/bin/env bash
# Cluster mode end to end: a real 3-node nats-server cluster on loopback and
# three gradientd --cluster processes.
#
#   bash cluster_failover_test.sh GRADIENTD GRADCTL NATS_SERVER
#
# - a producer with --server A,B,C pipelines into node A; A is killed with
#   -9 mid-stream; gradctl fails over to B and resends what A had not
#   acknowledged; afterwards the series holds every point of the input
#   exactly once (the input is the ledger), on both surviving nodes, with
#   bit-identical statistics;
# - a second producer on C meanwhile is unaffected;
# - a node started after the traffic catches up to the same statistics;
# - with every nats-server gone, a write gets UNAVAILABLE and a read is
#   still answered; usage errors of --cluster exit 2.
# No timing assertions: every wait is a bounded poll on an observable state.
set -u

TEST_NAME=cluster_failover
ARG_NAMES=(GRADIENTD GRADCTL NATS_SERVER)
CLEANUP_SIGNAL=KILL
FAIL_LOGS=("produce.*" "nats-*.log")
on_cleanup() { exec 7>&- 2>/dev/null; }  # the FIFO's write end
source "$(dirname "$0")/lib.sh" || exit 1
[[ -x $NATS_SERVER ]] || fail "no nats-server at $NATS_SERVER (tools/install-deps.sh installs it)"

# Six free loopback ports (client and route port of each nats-server).
read -r -a ports < <(/usr/bin/python3 - <<'EOF'
import socket
held = []
for _ in range(6):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
)
[[ ${#ports[@]} -eq 6 ]] || fail "could not pick free ports"
routes="nats://127.0.0.1:${ports[3]},nats://127.0.0.1:${ports[4]},nats://127.0.0.1:${ports[5]}"
nats_pids=()
for i in 0 1 2; do
  "$NATS_SERVER" -a 127.0.0.1 -p "${ports[i]}" -n "n$i" -js -sd "$tmp/nats-$i" \
    --cluster_name gradientd-test --cluster "nats://127.0.0.1:${ports[i + 3]}" --routes "$routes" \
    -l "$tmp/nats-$i.log" 7>&- &
  nats_pids+=($!)
  pids+=($!)
done
urls="nats://127.0.0.1:${ports[0]},nats://127.0.0.1:${ports[1]},nats://127.0.0.1:${ports[2]}"

# A node waits (up to --cluster-timeout) for NATS to elect its JetStream
# leader, so it may be started at once.
start_node() { start_server -n "$1" --cluster "$urls" --cluster-shards 3 --cluster-timeout 30s; }
start_node a
A=$server A_pid=$server_pid
start_node b
B=$server
start_node c
C=$server
pass "three nodes joined the cluster on $urls"

fit_json() { "$GRADCTL" --server "$1" --series "$2" fit --json 7>&- 2>/dev/null; }
json_field() { grep -o -- "\"$2\":\"\{0,1\}[^,}\"]*" <<<"$1" | head -n 1 | sed -e 's/^[^:]*://' -e 's/"//g'; }
poll_n() {  # poll_n SERVER SERIES N: until SERIES has N points (~60 s); sets $n
  n=""
  for _ in $(seq 1 600); do
    n=$(json_field "$(fit_json "$1" "$2")" n)
    [[ $n == "$3" ]] && return 0
    sleep 0.1
  done
  return 1
}
# The statistics every node must agree on bit for bit (printed with %.17g).
stats() {  # stats SERVER SERIES
  local json
  json=$(fit_json "$1" "$2") || return 1
  local ls=${json#*\"least_squares\":}
  echo "n=$(json_field "$json" n) mean_x=$(json_field "$json" mean_x)" \
    "mean_y=$(json_field "$json" mean_y) m=$(json_field "$ls" m) b=$(json_field "$ls" b)"
}

# --- kill -9 of the producer's node mid-stream. -----------------------------
total=3000
fifo=$tmp/points.fifo
mkfifo "$fifo" || fail "mkfifo"
"$GRADCTL" --server "$A,$B,$C" --series fail.over produce "$fifo" --batch 10 --window 32 \
  --producer-id failover-test >"$tmp/produce.failover.out" 2>"$tmp/produce.failover.err" 7>&- &
producer=$!
pids+=("$producer")
exec 7<>"$fifo"
for i in $(seq 1 1500); do echo "$i,$((3 * i + 1))"; done >&7
poll_n "$B" fail.over 1500 || fail "the first 1500 points did not reach node B (n = '$n')"
# A second producer, on C, during what follows.
seq 1 500 | awk '{ print $1 "," 2 * $1 }' >"$tmp/other.csv"
"$GRADCTL" --server "$C" --series other produce "$tmp/other.csv" --batch 7 \
  >"$tmp/produce.other.out" 2>&1 7>&- &
other=$!
pids+=("$other")
kill -9 "$A_pid"
wait "$A_pid" 2>/dev/null
pass "node A killed with -9 while the producer streams into it"
for i in $(seq 1501 "$total"); do echo "$i,$((3 * i + 1))"; done >&7
exec 7>&-
for _ in $(seq 1 1200); do kill -0 "$producer" 2>/dev/null || break; sleep 0.1; done
wait "$producer"
rc=$?
[[ $rc -eq 0 ]] || fail "the producer exited $rc after the failover"
grep -q "failed" "$tmp/produce.failover.err" ||
  fail "the producer did not say it failed over: $(cat "$tmp/produce.failover.err")"
pass "the producer failed over: $(grep -m1 failed "$tmp/produce.failover.err")"
wait "$other" || fail "the producer on node C failed"

poll_n "$B" fail.over "$total" || fail "node B holds $n points of fail.over, not $total"
poll_n "$C" fail.over "$total" || fail "node C holds $n points of fail.over, not $total"
pass "every point counted exactly once after the failover ($total on B and C)"
expected_mean_x=$(awk -v n="$total" 'BEGIN { printf "%.6f", (n + 1) / 2 }')
near "mean x of fail.over" "$(json_field "$(fit_json "$B" fail.over)" mean_x)" "$expected_mean_x" 1e-6
poll_n "$B" other 500 || fail "node B holds $n points of other, not 500"
b_stats=$(stats "$B" fail.over)
c_stats=$(stats "$C" fail.over)
[[ -n $b_stats && $b_stats == "$c_stats" ]] || fail "B says '$b_stats', C says '$c_stats'"
pass "B and C agree bit for bit: $b_stats"

# --- A new node catches up. --------------------------------------------------
start_node d
D=$server
[[ $(stats "$D" fail.over) == "$b_stats" ]] || fail "node D says '$(stats "$D" fail.over)'"
[[ $(stats "$D" other) == "$(stats "$B" other)" ]] || fail "node D disagrees on other"
pass "node D, started after the traffic, caught up to the same statistics"

# --- NATS gone: writes refused, reads answered. --------------------------------
for p in "${nats_pids[@]}"; do kill -9 "$p"; wait "$p" 2>/dev/null; done
run 1 "a write with NATS gone" "$GRADCTL" --server "$B" --series fail.over produce "$tmp/other.csv" \
  --retry-for 1s
expect_err "the write is refused as UNAVAILABLE" "UNAVAILABLE|not acknowledged|gave up"
run 0 "a read with NATS gone" "$GRADCTL" --server "$B" --series fail.over fit
expect_out "the read answers from the node's state" "^n: +$total$"

# --- Usage errors. -------------------------------------------------------------
run 2 "--cluster with --data-dir" "$GRADIENTD" --cluster "$urls" --data-dir "$tmp/d"
expect_err "names the flag" "--data-dir is not for a cluster node"
run 2 "--cluster-shards alone" "$GRADIENTD" --cluster-shards 3
expect_err "names the flag" "--cluster-shards needs --cluster"
echo "cluster_failover: $checks checks passed"
