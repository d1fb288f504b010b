#!/usr/bin/env bash
# Smoke test of recording, replay, inspect and produce's reconnect, against
# real gradientd processes.
#
#   bash replay_smoke_test.sh GRADIENTD GRADCTL
#
# - produce --save records what it sends; replaying the recordings (--max and
#   with the recorded timing) into a fresh server reproduces the original
#   statistics exactly; --series renames; replaying again with the same
#   --producer-id is all duplicates; CSV files replay too;
# - inspect summarises a recording (text and --json);
# - a recording cut mid-record replays up to its last whole record and says
#   where it stopped; a corrupt one is refused before anything is sent;
# - produce survives kill -9 of its server: it reconnects to a new server on
#   the same port and resends the unacknowledged batches. Its input is a FIFO
#   that the test feeds in steps, so produce is still running when the server
#   is killed whatever the machine's speed;
# - errors: missing file, not a recording, unsupported version, server down
#   beyond --retry-for (exit 1); usage errors (exit 2).
# No timing assertions: every wait is a bounded poll on an observable state.
set -u

TEST_NAME=replay_smoke
ARG_NAMES=(GRADIENTD GRADCTL)
CLEANUP_SIGNAL=KILL         # the servers and the background producers in $pids
FAIL_LOGS=("produce.*")     # the background producers' output
on_cleanup() { exec 7>&- 2>/dev/null; }  # the FIFO's write end
source "$(dirname "$0")/lib.sh" || exit 1

json_field() {  # json_field JSON KEY: the raw value after "KEY": (first match)
  grep -o -- "\"$2\":\"\{0,1\}[^,}\"]*" <<<"$1" | head -n 1 | sed -e 's/^[^:]*://' -e 's/"//g'
}

wait_for_exit() {  # wait_for_exit PID: its exit code; fails after ~120 s
  local i
  for i in $(seq 1 1200); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$1" 2>/dev/null && fail "process $1 did not finish"
  wait "$1"
}
# same_stats WHAT SERVER1 SERIES1 SERVER2 SERIES2: identical statistics.
same_stats() {
  local a b
  a=$(stats "$2" "$3") || fail "$1: cannot read $3 on $2"
  b=$(stats "$4" "$5") || fail "$1: cannot read $5 on $4"
  [[ -n $a && $a == "$b" ]] || fail "$1: '$a' on $2 but '$b' on $4"
  stats_line=$b
}
# poll_n SERVER SERIES N: polls (at most ~30 s) until SERIES on SERVER has N
# points; sets $n to the last count read.
poll_n() {
  n=""
  for _ in $(seq 1 300); do
    n=$(${LIMIT[@]+"${LIMIT[@]}"} "$GRADCTL" --server "$1" --series "$2" fit --json 7>&- 2>/dev/null |
        grep -o '"n":"[0-9]*"' | grep -o '[0-9]\+' | head -n 1)
    [[ $n == "$3" ]] && break
    sleep 0.1
  done
}
# The statistics that must be identical after a replay, as one line.
stats() {  # stats SERVER SERIES
  run 0 "fit $2 on $1" "$GRADCTL" --server "$1" --series "$2" fit --json
  local f=""
  for key in n mean_x mean_y; do f+="$key=$(json_field "$out" "$key") "; done
  local ls=${out#*\"least_squares\":}
  f+="ls_m=$(json_field "$ls" m) ls_b=$(json_field "$ls" b)"
  echo "$f"
}

# --- Help. ------------------------------------------------------------------
run 0 "gradctl --help" "$GRADCTL" --help
expect_out "gradctl --help lists replay" "^  replay "
expect_out "gradctl --help lists inspect" "^  inspect "
run 0 "replay --help" "$GRADCTL" replay --help
for word in --speed --max --batch --window --progress --x-column --delimiter --producer-id \
  --first-sequence --retry-for --series "truncated" "exactly" "GRDREC01|recording"; do
  expect_out "replay --help documents $word" "$word"
done
run 0 "inspect --help" "$GRADCTL" inspect --help
expect_out "inspect --help" "--json"
run 0 "produce --help" "$GRADCTL" produce --help
for word in --producer-id --first-sequence --retry-for --save "duplicate"; do
  expect_out "produce --help documents $word" "$word"
done
pass "help documents replay, inspect and produce's new flags"

# --- Record two series with produce --save. ----------------------------------
start_server -n a --in-memory
A=$server
# 20000 points in batches of 997: 20 whole batches and one of 60 points.
run 0 "produce --save one.grd" "$GRADCTL" --server "$A" --series one produce --synthetic \
  --count 20000 --batch 997 --seed 7 --slope 1.5 --intercept -2 --noise 0.3 \
  --x-min 1.7e9 --x-max 1.7000001e9 --save "$tmp/one.grd" --producer-id rec-one
expect_out "produce --save" "points sent: +20000$"
expect_out "produce --save" "saved to: +.*one\.grd \(21 batches\)"
expect_out "produce --save" "producer id: +rec-one$"
expect_out "produce --save" "sequences: +1\.\.21$"
run 0 "produce --save two.grd" "$GRADCTL" --server "$A" --series two produce --synthetic \
  --count 5000 --batch 250 --seed 8 --save "$tmp/two.grd" --json
expect_out "produce --json summary" '"reconnects":0'
expect_out "produce --json summary" '"saved_to":"'
expect_err "a generated producer id is printed at the start" "producer id gradctl-[0-9a-f]{16} \(sequences from 1\)"
[[ $(head -c 8 "$tmp/one.grd") == GRDREC01 ]] || fail "one.grd does not start with GRDREC01"
pass "produce --save wrote recordings"

# --- inspect. ---------------------------------------------------------------
run 0 "inspect one.grd" "$GRADCTL" inspect "$tmp/one.grd"
expect_out "inspect" "^batches: +21$"
expect_out "inspect" "^points: +20000$"
expect_out "inspect" "^series: +1$"
expect_out "inspect" "^one +20000 +21$"
expect_out "inspect" "^rec-one +21 +1\.\.21$"
expect_out "inspect" "^first batch: +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
expect_out "inspect" "^last batch: +[0-9]{4}-.*Z$"
expect_out "inspect" "^duration: "
expect_out "inspect" "^truncated: +no$"
run 0 "inspect --json two files" "$GRADCTL" inspect "$tmp/one.grd" "$tmp/two.grd" --json
[[ $(wc -l <<<"$out") -eq 2 ]] || fail "inspect --json: expected one line per file"
expect_out "inspect --json" '"points":20000'
expect_out "inspect --json" '"points":5000'
expect_out "inspect --json" '"truncated":null'
expect_out "inspect --json" '"id":"rec-one"'
pass "inspect"

# --- Replay into a fresh server: identical statistics. ----------------------
start_server -n b --in-memory
B=$server
run 0 "replay --max" "$GRADCTL" --server "$B" replay --max "$tmp/one.grd" "$tmp/two.grd"
expect_out "replay" "points sent: +25000$"
expect_out "replay" "batches: +41$"
expect_out "replay" "^one +20000 +20000$"
expect_out "replay" "^two +5000 +5000$"
expect_err "replay prints its producer id" "producer id gradctl-replay-[0-9a-f]{16}"
for series in one two; do
  same_stats "replayed $series" "$A" "$series" "$B" "$series"
  pass "replay reproduces $series exactly: $stats_line"
done

# With the recorded timing (the recording spans milliseconds), sped up, and
# renamed: the same statistics under the new name.
run 0 "replay --series renamed --speed 4" "$GRADCTL" --server "$B" --series renamed replay \
  --speed 4 "$tmp/one.grd" --producer-id replay-renamed
expect_out "replay --series" "^renamed +20000 +20000$"
same_stats "renamed replay" "$A" one "$B" renamed
pass "replay --series renames, with the recorded timing"

# Again with the same producer id: every batch is a duplicate, nothing counts twice.
run 0 "replay again, same producer id" "$GRADCTL" --server "$B" --series renamed replay --max \
  "$tmp/one.grd" --producer-id replay-renamed --json
expect_out "replay again" '"duplicate_batches":21'
expect_out "replay again" '"duplicate_points":20000'
expect_err "replay again" "21 batches \(20000 points\) were acknowledged as duplicates"
same_stats "a repeated replay" "$A" one "$B" renamed
pass "replaying with the same --producer-id applies nothing twice"

# --- CSV files replay too (to --series, in --batch batches). -----------------
printf 'x,y\n1,3\n2,5\n3,7\n4,9.5\n5,11\n' >"$tmp/points.csv"
run 0 "replay CSV" "$GRADCTL" --server "$B" --series csv replay "$tmp/points.csv" --batch 2 \
  --progress lines
expect_out "replay CSV" "points sent: +5$"
expect_out "replay CSV" "batches: +3$"
expect_out "replay CSV" "points\.csv \(CSV\)"
run 0 "produce the same CSV" "$GRADCTL" --server "$A" --series csv produce "$tmp/points.csv" --batch 2
same_stats "CSV replay" "$A" csv "$B" csv
pass "replay of a CSV file"

# --- A recording cut short by a crash. ----------------------------------------
size=$(wc -c <"$tmp/one.grd")
head -c $((size - 7)) "$tmp/one.grd" >"$tmp/cut.grd"
run 0 "inspect a truncated recording" "$GRADCTL" inspect "$tmp/cut.grd"
expect_out "inspect truncated" "^batches: +20$"
expect_out "inspect truncated" "^points: +19940$"
expect_out "inspect truncated" "^truncated: +yes: at byte offset [0-9]+ after 20 whole records"
expect_err "inspect truncated" "truncated at byte offset [0-9]+ after 20 whole records"
offset=$(sed -n 's/.*truncated at byte offset \([0-9]*\) after.*/\1/p' <<<"$err" | head -n 1)
run 0 "replay a truncated recording" "$GRADCTL" --server "$B" --series cut replay --max "$tmp/cut.grd"
expect_err "replay truncated" "cut\.grd: truncated at byte offset $offset after 20 whole records"
expect_out "replay truncated" "points sent: +19940$"
expect_out "replay truncated" "^truncated: "
run 0 "fit of the truncated replay" "$GRADCTL" --server "$B" --series cut fit --json
[[ $(json_field "$out" n) == 19940 ]] || fail "truncated replay: n is not 19940"
pass "a truncated recording replays its 20 whole records and says where it stopped (byte $offset)"

# --- Errors. ----------------------------------------------------------------
run 1 "replay a missing file" "$GRADCTL" --server "$B" replay "$tmp/missing.grd"
expect_err "replay missing" "cannot open .*missing\.grd: No such file or directory"
run 1 "inspect a missing file" "$GRADCTL" inspect "$tmp/missing.grd"
expect_err "inspect missing" "cannot open .*missing\.grd: No such file or directory"
run 1 "inspect a CSV file" "$GRADCTL" inspect "$tmp/points.csv"
expect_err "inspect CSV" "points\.csv is not a gradientd recording"
printf 'GRDREC02' >"$tmp/v2.grd"
run 1 "replay another version" "$GRADCTL" --server "$B" replay "$tmp/v2.grd"
expect_err "replay v2" "v2\.grd: unsupported recording version '02'"
# A corrupt record after the good ones: refused before anything is sent.
{ cat "$tmp/two.grd"; printf '\003\017\377\377'; } >"$tmp/corrupt.grd"
run 1 "replay a corrupt recording" "$GRADCTL" --server "$B" --series corrupt replay --max "$tmp/corrupt.grd"
expect_err "replay corrupt" "corrupt\.grd: record 21 at byte offset [0-9]+ .*is corrupt"
run 1 "nothing of a corrupt recording was sent" "$GRADCTL" --server "$B" --series corrupt fit
expect_err "nothing of a corrupt recording was sent" "NOT_FOUND"
run 1 "inspect a corrupt recording" "$GRADCTL" inspect "$tmp/corrupt.grd"
expect_err "inspect corrupt" "is corrupt"
run 2 "replay without a file" "$GRADCTL" --server "$B" replay
expect_err "replay without a file" "no FILE given"
run 2 "--max with --speed" "$GRADCTL" --server "$B" replay --max --speed 2 "$tmp/one.grd"
run 2 "bad --retry-for" "$GRADCTL" --server "$B" produce "$tmp/points.csv" --retry-for 10
expect_err "bad --retry-for" "a unit is needed"
pass "error paths"

# --- produce survives kill -9 of its server. ----------------------------------
# produce reads a FIFO the test writes in steps: 100 points, batches of 5,
# window 4. After the first 50 points have reached server C, C is killed;
# then 25 more points are written (produce notices the lost connection),
# server D starts on the same port, and the last 25 points are written.
fifo=$tmp/points.fifo
mkfifo "$fifo" || fail "mkfifo"
point_lines() { local i; for i in $(seq "$1" "$2"); do echo "$i,$((3 * i + 1))"; done; }
start_server -n c --in-memory
C=$server
"$GRADCTL" --server "$C" --series rc produce "$fifo" --batch 5 --window 4 --retry-for 60s \
  >"$tmp/produce.reconnect.out" 2>"$tmp/produce.reconnect.err" 7>&- &
producer=$!
pids+=("$producer")
exec 7<>"$fifo"  # read-write: does not wait for produce to open it
point_lines 1 50 >&7
poll_n "$C" rc 50
[[ $n == 50 ]] || fail "the first 50 points did not reach server C (n = '$n')"
kill -0 "$producer" 2>/dev/null || fail "produce exited before its input ended"
stop_server KILL  # server C
point_lines 51 75 >&7
start_server -n d -l "$C" --in-memory  # the same port
D=$server
[[ $D == "$C" ]] || fail "server D listens on $D, not $C"
point_lines 76 100 >&7
exec 7>&-
wait_for_exit "$producer"
rc=$?
out=$(cat "$tmp/produce.reconnect.out")
err=$(cat "$tmp/produce.reconnect.err")
[[ $rc -eq 0 ]] || fail "produce after kill -9 and restart: exit code $rc, expected 0"
expect_err "produce reconnect" "reconnected to $C after .*; resending [0-9]+ unacknowledged batch"
expect_out "produce reconnect" "^reconnects: +[1-9]"
expect_out "produce reconnect" "^batches resent: +[1-9]"
expect_out "produce reconnect" "^points sent: +100$"
expect_out "produce reconnect" "^sequences: +1\.\.20$"
# Server D (in memory) holds exactly the batches sent to it: the resent ones,
# from the first unacknowledged sequence, and every later one.
first=$(sed -n 's/.*resending [0-9]* unacknowledged batch.* (sequence \([0-9]*\).*/\1/p' <<<"$err" |
        tail -n 1)
[[ -n $first ]] || fail "no resent sequence range in produce's messages"
run 0 "fit on server D" "$GRADCTL" --server "$D" --series rc fit --json
expected_n=$(((20 - first + 1) * 5))
[[ $(json_field "$out" n) == "$expected_n" ]] ||
  fail "server D has n = $(json_field "$out" n), expected $expected_n (batches $first..20)"
pass "produce reconnected after kill -9, resent batches $first..20 with their sequences, exit 0"

# Server down beyond --retry-for: mid-stream, then at the start.
fifo2=$tmp/points2.fifo
mkfifo "$fifo2" || fail "mkfifo"
"$GRADCTL" --server "$D" --series gone produce "$fifo2" --batch 5 --window 4 --retry-for 1s \
  >"$tmp/produce.gone.out" 2>"$tmp/produce.gone.err" 7>&- &
producer=$!
pids+=("$producer")
exec 7<>"$fifo2"
point_lines 1 10 >&7
poll_n "$D" gone 10
[[ $n == 10 ]] || fail "the first 10 points did not reach server D (n = '$n')"
stop_server KILL  # server D
point_lines 11 30 >&7
exec 7>&-
wait_for_exit "$producer"
rc=$?
out=$(cat "$tmp/produce.gone.out")
err=$(cat "$tmp/produce.gone.err")
[[ $rc -eq 1 ]] || fail "produce with its server gone: exit code $rc, expected 1"
expect_err "server gone" "could not reconnect within 1\.0 s: cannot connect to $D"
expect_err "server gone" "not acknowledged"
expect_err "server gone" "to resume, send the same input \(same --batch\) again with --producer-id gradctl-"
pass "server gone mid-stream beyond --retry-for: exit 1, what to resend said"

run 1 "produce, no server" "$GRADCTL" --server "$D" produce "$tmp/points.csv" --retry-for 500ms
expect_err "produce, no server" "cannot connect to $D.*retrying for up to 500 ms"
expect_err "produce, no server" "gave up after 500 ms: cannot connect to $D"
run 1 "replay, no server" "$GRADCTL" --server "$D" replay "$tmp/one.grd" --retry-for 0
expect_err "replay, no server" "cannot connect to $D"
pass "server down at the start: exit 1"

echo "PASS: $checks checks"
