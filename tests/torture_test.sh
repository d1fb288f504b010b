#!/usr/bin/env bash
# kill -9 torture: a durable gradientd (--fsync always) is killed with SIGKILL
# over and over at random moments -- during recovery (right after start,
# before it listens, with a big journal to replay), while it checkpoints
# constantly (tiny --checkpoint-bytes and --checkpoint-interval, so kills
# land while snapshots are written), mid-stream, and within 50 ms of a
# SIGTERM (during the final snapshot) -- and restarted on the
# same data directory and port, while pipelining producers stream into
# hundreds of series from thousands of short-lived producer ids, plain and
# exactly-once (tests/ledger_client.cc: an independent ledger of what was
# acknowledged). Exactly-once producers resend what went unanswered with the
# same id and sequence. After the last restart, every acknowledged batch must
# be counted exactly once and nothing else (plain batches whose answer was
# lost may or may not count), and one more kill -9 and restart changes nothing.
#
# Usage: torture_test.sh GRADIENTD GRADCTL LEDGER_CLIENT [SECONDS]
#   SECONDS: how long the kills go on (default 40; the whole test takes
#   about 20 s more)
set -uo pipefail
GRADIENTD=$1
GRADCTL=$2
LEDGER=$3
SECONDS_OF_KILLS=${4:-40}

TEST_NAME=torture_test
CLEANUP_SIGNAL=KILL
LIMIT_SECONDS=400  # generous: the sanitizer builds run this too
FAIL_LOGS=(kills.log produce.*.out check.*.out resend.*.out probe.*.out)
source "$(dirname "$0")/lib.sh" || exit 1
[[ -x $LEDGER ]] || fail "ledger_client binary not found: $LEDGER"

data=$tmp/data
# The load uses over 100 000 producer ids (each lives a few batches): more
# than the default --max-producers, whose refusals have tests of their own.
durable=(--fsync always --max-producers 1000000)
constant_checkpoints=("${durable[@]}" --checkpoint-bytes 16KiB --checkpoint-interval 50ms)
# Half the restarts do not checkpoint: their journal piles up (until a
# recovery completes and snapshots it), so the recoveries after them are long.
no_checkpoints=("${durable[@]}" --checkpoint-bytes 1GiB --checkpoint-interval 1h)

ledger() {  # ledger LOG COMMAND ARGS...: runs ledger_client, its output in $tmp/LOG
  local log=$1
  shift
  "${LIMIT[@]}" "$LEDGER" "$@" >"$tmp/$log" 2>&1
  local rc=$?
  sed "s/^/  $log: /" "$tmp/$log"
  return "$rc"
}

# Phase 1: a big journal (no checkpoint; 120000 batches, or what 15 s
# allow), so that the first recoveries take a while and kills land in them.
start_server -n fill --data-dir "$data" "${no_checkpoints[@]}"
listen=$server
ledger produce.fill.out produce --server "$listen" --ledger "$tmp/ledger.fill" --tag fill \
  --threads 4 --batches 30000 --duration 15 --window 32 --series 150 --producer-life 3 \
  --max-points 10 --deadline 300 || fail "filling the journal failed"
stop_server KILL
journal_bytes=$(cat "$data"/journal-*.log | wc -c)
pass "a journal of $journal_bytes bytes to recover, no snapshot"

# Phase 2: producers for SECONDS_OF_KILLS, reconnecting for up to 60 s after
# each kill, while the server is killed and restarted.
"$LEDGER" produce --server "$listen" --ledger "$tmp/ledger.torture" --tag t \
  --threads 4 --duration "$SECONDS_OF_KILLS" --batches 10000000 --window 8 --series 150 \
  --producer-life 3 --max-points 20 --retry-for 60 --resend-refused 1 --answer-timeout 30 \
  --deadline $((SECONDS_OF_KILLS + 300)) >"$tmp/produce.torture.out" 2>&1 7>&- &
producer=$!
pids+=("$producer")

kills=0 in_recovery=0 in_snapshot=0 in_shutdown=0
end=$((SECONDS + SECONDS_OF_KILLS))
round=0
while ((SECONDS < end)); do
  round=$((round + 1))
  log=$tmp/server.k$round
  : >"$log.out"
  if ((RANDOM % 2)); then config=("${constant_checkpoints[@]}"); else config=("${no_checkpoints[@]}"); fi
  # HTTP on port 0: the fixed port next to $listen may be a producer's.
  "$GRADIENTD" --listen "$listen" --http-listen 127.0.0.1:0 --data-dir "$data" "${config[@]}" \
    >"$log.out" 2>"$log.err" 7>&- &
  server_pid=$!
  pids+=("$server_pid")
  mode=$((RANDOM % 5))  # 0-1: in recovery, 2-3: mid-stream, 4: in shutdown
  ((round <= 3)) && mode=0  # the first ones: while the big journal is replayed
  if ((mode <= 1)); then
    # during recovery: within 300 ms of the start, often before it listens
    sleep "$(printf '0.%03d' $((RANDOM % 300)))"
  else
    # running: wait until it listens (at most ~60 s), then up to 1.5 s of traffic
    for _ in $(seq 1 600); do
      grep -q '^gradientd listening on' "$log.out" && break
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    sleep "$(printf '%d.%03d' $((RANDOM % 2)) $((RANDOM % 1000)))"
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    wait "$server_pid"
    fail "gradientd (restart $round) exited by itself with status $?; its stderr: $(cat "$log.err")"
  fi
  listened=1
  grep -q '^gradientd listening on' "$log.out" || { listened=0; in_recovery=$((in_recovery + 1)); }
  if ((mode == 4 && listened)); then
    # during the graceful shutdown (its final snapshot): SIGTERM, then
    # SIGKILL within 50 ms unless it has exited (with status 0) by then
    kill -TERM "$server_pid"
    sleep "$(printf '0.%03d' $((RANDOM % 50)))"
    rc=0
    stop_server KILL || rc=$?
    ((rc == 0 || rc == 137)) ||
      fail "gradientd (restart $round) exited with status $rc on SIGTERM; its stderr: $(cat "$log.err")"
    ((rc == 137)) && in_shutdown=$((in_shutdown + 1))
  else
    stop_server KILL
  fi
  kills=$((kills + 1))
  echo "kill $kills: mode $mode, listened $listened, ${config[*]: -1}" >>"$tmp/kills.log"
  ls "$data" | grep -q '\.tmp$' && in_snapshot=$((in_snapshot + 1))
done
pass "$kills kills: $in_recovery before the server listened (in recovery), $in_snapshot while a snapshot was being written, $in_shutdown during a graceful shutdown (SIGTERM then SIGKILL)"

# The last restart: the producers drain (resending what went unanswered).
start_server -n final -l "$listen" --data-dir "$data" "${constant_checkpoints[@]}"
wait "$producer"
produced=$?
sed "s/^/  produce.torture.out: /" "$tmp/produce.torture.out"
[[ $produced -eq 0 ]] || fail "the producers did not finish (status $produced)"
pass "producers finished: $(grep -o '[0-9]* batches.*' "$tmp/produce.torture.out")"

ledger resend.out resend --server "$listen" --ledger "$tmp/ledger.torture" --window 8 \
  --deadline 300 || fail "resending the unacknowledged exactly-once batches failed"
ledger check.final.out check --server "$listen" --ledger "$tmp/ledger.fill" \
  --ledger "$tmp/ledger.torture" --deadline 300 ||
  fail "after $kills kills, the state is not the acknowledged ledger (see MISMATCH above)"
pass "after $kills kills, every acknowledged batch counts exactly once"
for l in fill torture; do
  ledger "probe.$l.out" probe --server "$listen" --ledger "$tmp/ledger.$l" --probes 500 \
    --window 8 --deadline 300 ||
    fail "after $kills kills, exactly-once batches acknowledged before were applied again"
done
pass "resent acknowledged exactly-once batches (old and new producer ids) are all duplicates"

stop_server KILL
start_server -n again -l "$listen" --data-dir "$data" "${constant_checkpoints[@]}"
ledger check.again.out check --server "$listen" --ledger "$tmp/ledger.fill" \
  --ledger "$tmp/ledger.torture" --deadline 300 ||
  fail "one more kill -9 and restart changed the state"
pass "one more kill -9 and restart changed nothing"
stop_server TERM || fail "gradientd did not exit cleanly on SIGTERM (status $?)"
echo "torture_test: passed ($checks checks, $kills kills)"
