#!/usr/bin/env bash
# Crash test: several exactly-once producers stream into a real gradientd
# with --fsync always while the server is killed with SIGKILL at random
# moments and restarted on the same data directory and port. Afterwards every
# point must be counted exactly once (n exact, statistics equal to a
# reference run without crashes), whatever the kill points.
#
# Usage: crash_test.sh GRADIENTD GRADCTL [ROUNDS]
set -uo pipefail
GRADIENTD=$1
GRADCTL=$2
ROUNDS=${3:-3}
PRODUCERS=3
COUNT=400000   # points per producer
BATCH=500

TEST_NAME=crash_test
CLEANUP_SIGNAL=KILL
on_cleanup() { jobs -p | xargs -r kill -9 2>/dev/null; }  # the servers and the producers
source "$(dirname "$0")/lib.sh" || exit 1

produce_all() {  # produce_all ADDRESS TAG -> starts the producers in the background
  for i in $(seq "$PRODUCERS"); do
    "$GRADCTL" --server "$1" --series crash produce --synthetic --count "$COUNT" \
      --seed "$i" --slope 1.5 --intercept -3 --noise 2 --x-min 1.7e9 --x-max 1.7001e9 \
      --batch "$BATCH" --window 8 --producer-id "crash-$2-$i" --retry-for 60s \
      >"$tmp/producer.$2.$i.out" 2>&1 &
  done
}

fit_field() {  # fit_field ADDRESS FIELD-PATH(python) -> value
  "$GRADCTL" --server "$1" --series crash --json fit |
    python3 -c "import json,sys; r=json.load(sys.stdin)['fit']; print(repr($2))"
}

# The reference: the same producers against an in-memory server, no crashes.
start_server -n ref --in-memory --data-dir "$tmp/unused"
produce_all "$server" ref
wait $(jobs -p | grep -v "^$server_pid$") 2>/dev/null
ref_n=$(fit_field "$server" "r['n']")
ref_m=$(fit_field "$server" "r['least_squares']['m']")
stop_server KILL
[ "$ref_n" = "'$((PRODUCERS * COUNT))'" ] || fail "reference run counted $ref_n points"

for round in $(seq "$ROUNDS"); do
  data=$tmp/data.$round
  start_server -n "r$round" --data-dir "$data"
  listen=$server
  produce_all "$listen" "r$round"
  producer_pids=$(jobs -p | grep -v "^$server_pid$")
  kills=0
  for k in 1 2 3 4; do
    sleep "$(printf "0.%02d" $((RANDOM % 25 + 2)))"
    running=0
    for p in $producer_pids; do kill -0 "$p" 2>/dev/null && running=1; done
    [ "$running" = 1 ] || break
    stop_server KILL
    kills=$((kills + 1))
    start_server -n "r$round.k$kills" -l "$listen" --data-dir "$data"
  done
  for p in $producer_pids; do
    wait "$p" || { cat "$tmp"/producer.r"$round".*.out >&2; fail "round $round: a producer failed"; }
  done
  n=$(fit_field "$listen" "r['n']")
  m=$(fit_field "$listen" "r['least_squares']['m']")
  [ "$n" = "$ref_n" ] || fail "round $round: $n points after $kills kills, expected $ref_n"
  python3 -c "import sys; a,b=float($m),float($ref_m); sys.exit(0 if abs(a-b)<=1e-9*abs(b) else 1)" ||
    fail "round $round: slope $m differs from the reference $ref_m"
  # One more restart: the recovered state is the same.
  stop_server KILL
  start_server -n "r$round.final" -l "$listen" --data-dir "$data"
  n2=$(fit_field "$listen" "r['n']")
  [ "$n2" = "$n" ] || fail "round $round: $n2 points after a final restart, expected $n"
  stop_server KILL
  echo "crash_test: round $round: $kills kills mid-stream, n = $n exact, slope matches"
done
echo "crash_test: passed $ROUNDS rounds"
