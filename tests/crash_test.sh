#!/usr/bin/env bash
# Crash test: several exactly-once producers stream into a real gradientd
# with --fsync always while the server is killed with SIGKILL at random
# moments and restarted on the same data directory and port. Afterwards every
# point must be counted exactly once (n exact, statistics equal to a
# reference run without crashes), whatever the kill points. When gradctl
# has the view flags, the series also has a sliding window and decay, the
# batches carry event times (their last x, in seconds): the window then
# holds exactly the reference's points, and a kill -9 restart reproduces
# every view bit for bit.
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

views=()
event_time=()
if "$GRADCTL" configure --help 2>&1 | grep -q -- --half-life &&
  "$GRADCTL" produce --help 2>&1 | grep -q -- --event-time; then
  views=(--window 1h --buckets 60 --half-life 10m)
  event_time=(--event-time x-seconds)
fi

configure_views() {  # configure_views ADDRESS
  [ ${#views[@]} -eq 0 ] && return
  "$GRADCTL" --server "$1" --series crash configure "${views[@]}" >/dev/null ||
    fail "gradctl configure ${views[*]} failed"
}

produce_all() {  # produce_all ADDRESS TAG -> starts the producers in the background
  for i in $(seq "$PRODUCERS"); do
    "$GRADCTL" --server "$1" --series crash produce --synthetic --count "$COUNT" \
      --seed "$i" --slope 1.5 --intercept -3 --noise 2 --x-min 1.7e9 --x-max 1.7001e9 \
      --batch "$BATCH" --window 8 --producer-id "crash-$2-$i" --retry-for 60s \
      "${event_time[@]}" >"$tmp/producer.$2.$i.out" 2>&1 &
  done
}

window_n() {  # window_n ADDRESS -> the window's point count ("" without views)
  [ ${#views[@]} -eq 0 ] && return
  "$GRADCTL" --server "$1" --series crash --json fit --view window |
    python3 -c "import json,sys; print(repr(json.load(sys.stdin)['fit']['n']))"
}

fit_field() {  # fit_field ADDRESS FIELD-PATH(python) -> value
  "$GRADCTL" --server "$1" --series crash --json fit |
    python3 -c "import json,sys; r=json.load(sys.stdin)['fit']; print(repr($2))"
}

# The reference: the same producers against an in-memory server, no crashes.
start_server -n ref --in-memory --data-dir "$tmp/unused"
configure_views "$server"
produce_all "$server" ref
wait $(jobs -p | grep -v "^$server_pid$") 2>/dev/null
ref_n=$(fit_field "$server" "r['n']")
ref_m=$(fit_field "$server" "r['least_squares']['m']")
ref_window_n=$(window_n "$server")
stop_server KILL
[ "$ref_n" = "'$((PRODUCERS * COUNT))'" ] || fail "reference run counted $ref_n points"

for round in $(seq "$ROUNDS"); do
  data=$tmp/data.$round
  start_server -n "r$round" --data-dir "$data"
  listen=$server
  configure_views "$listen"
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
  wn=$(window_n "$listen")
  [ "$wn" = "$ref_window_n" ] || fail "round $round: window has $wn points, expected $ref_window_n"
  # One more restart: the recovered state is the same, every view bit for bit.
  every_view=$("$GRADCTL" --server "$listen" --series crash --json fit)
  stop_server KILL
  start_server -n "r$round.final" -l "$listen" --data-dir "$data"
  n2=$(fit_field "$listen" "r['n']")
  [ "$n2" = "$n" ] || fail "round $round: $n2 points after a final restart, expected $n"
  [ "$("$GRADCTL" --server "$listen" --series crash --json fit)" = "$every_view" ] ||
    fail "round $round: the fit (every view) differs after a final restart"
  stop_server KILL
  echo "crash_test: round $round: $kills kills mid-stream, n = $n exact, slope matches${views:+, window n = $wn exact, every view survives a restart}"
done
echo "crash_test: passed $ROUNDS rounds"
