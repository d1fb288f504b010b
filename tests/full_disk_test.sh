#!/usr/bin/env bash
# Full-disk test: a real gradientd with --fsync always on a small real
# filesystem (a tmpfs: ENOSPC on write; a loop-mounted ext4: ENOSPC on write
# and fsync behaviour), almost filled by a ballast file, while exactly-once
# and plain producers pipeline into many series (tests/ledger_client.cc keeps
# an independent ledger: per batch acked / refused / unknown). Once every
# producer has been refused for a while, the server is stopped (SIGTERM in
# one round, kill -9 in the other, which also checkpoints constantly so that
# a snapshot meets the full disk), the ballast is deleted, and it is
# restarted on the same data directory. Then:
#   - plain producers: the state must equal the acknowledged ledger exactly
#     (a batch answered with an Error must not come back after the restart);
#   - exactly-once producers resend every batch not acknowledged with the
#     same id and sequence: afterwards every batch counts exactly once;
#   - one more kill -9 and restart changes nothing.
#
# Needs root (mount); exits 77 (skipped) when not root or mounting is
# impossible, and says so. CI runs as root.
#
# Usage: full_disk_test.sh GRADIENTD GRADCTL LEDGER_CLIENT [KINDS]
#   KINDS: "tmpfs ext4" (default)
set -uo pipefail
GRADIENTD=$1
GRADCTL=$2
LEDGER=$3
KINDS=${4:-tmpfs ext4}

TEST_NAME=full_disk_test
CLEANUP_SIGNAL=KILL
LIMIT_SECONDS=180
FAIL_LOGS=(check.*.out produce.*.out resend.*.out)
on_cleanup() {
  local p
  for p in ${pids[@]+"${pids[@]}"}; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  pids=()
  unmount_all_scratch
}
source "$(dirname "$0")/lib.sh" || exit 1
# CI (.ci/run, as root) sets GRADIENTD_REQUIRE_MOUNT_TESTS: there, not being
# able to mount is a failure, not a skip.
skip_or_fail() {
  if [[ -n ${GRADIENTD_REQUIRE_MOUNT_TESTS:-} ]]; then fail "$* (GRADIENTD_REQUIRE_MOUNT_TESTS is set)"; fi
  skip "$*"
}

[[ $(id -u) -eq 0 ]] || skip_or_fail "full_disk_test needs root to mount a small filesystem; NOT RUN (CI runs it as root)"
[[ -x $LEDGER ]] || fail "ledger_client binary not found: $LEDGER"

deferred=()  # failures found that do not stop the test: all reported at the end
problem() {  # problem MESSAGE: a failure recorded; the test goes on to find more
  echo "PROBLEM: $*"
  deferred+=("$*")
}
fail_round() {  # fail_round MESSAGE: fails with MESSAGE and the deferred failures
  local d
  for d in ${deferred[@]+"${deferred[@]}"}; do echo "FAIL (found earlier): $d" >&2; done
  fail "$*"
}

ledger() {  # ledger WHAT LOG COMMAND ARGS...: runs ledger_client, its output in $tmp/LOG
  local what=$1 log=$2
  shift 2
  "${LIMIT[@]}" "$LEDGER" "$@" --deadline 150 >"$tmp/$log" 2>&1
  local rc=$?
  sed "s/^/  $log: /" "$tmp/$log"
  return "$rc"
}

one_round() {  # one_round KIND SIGNAL
  local kind=$1 signal=$2 mnt=$tmp/mnt.$1.$2 extra=()
  local name=$kind.$signal
  local size=16M
  [[ $kind == tmpfs ]] && size=8M
  mount_scratch "$kind" "$size" "$mnt" ||
    skip_or_fail "cannot mount a $size $kind on $mnt (mount refused here); full_disk_test NOT RUN"
  local data=$mnt/data
  # The kill -9 round checkpoints all the time, and its many short-lived
  # exactly-once producers grow the snapshot's producer table until a
  # snapshot meets the full disk.
  local headroom=$((768 * 1024)) life=200
  if [[ $signal == KILL ]]; then
    extra=(--checkpoint-bytes 32KiB --checkpoint-interval 200ms)
    headroom=$((256 * 1024)) life=4
  fi

  local avail
  avail=$(free_bytes "$mnt")
  fallocate -l $((avail - headroom)) "$mnt/ballast" ||
    fail "$name: cannot write the ballast file on $mnt"
  start_server -n "$name" --data-dir "$data" --fsync always ${extra[@]+"${extra[@]}"}
  local listen=$server

  # Pipelining producers until each has been refused 40 times (the disk is
  # full), or 60000 batches each (it never filled: a failure below). If the
  # server stops answering them (ledger_client's HANG), that is recorded, the
  # server is killed, and the test goes on to see what the restart recovers.
  local marker=$tmp/hung.$name
  "$LEDGER" produce --server "$listen" \
    --ledger "$tmp/ledger.$name" --tag "$kind$signal" --threads 6 --series 12 \
    --batches 60000 --window 16 --max-points 40 --producer-life "$life" --eo-share 0.5 \
    --stop-after-refusals 40 --retry-for 10 --answer-timeout 15 --hang-marker "$marker" \
    --deadline 170 >"$tmp/produce.$name.out" 2>&1 7>&- &
  local producer=$! hung=""
  pids+=("$producer")
  for _ in $(seq 1 1800); do  # at most ~180 s
    kill -0 "$producer" 2>/dev/null || break
    if [[ -f $marker && -z $hung ]]; then
      hung="gradientd stopped answering pipelined batches once the disk was full ($(grep -o 'HANG: .*' "$tmp/produce.$name.out"))"
      echo "  $name: $hung; killing it"
      stop_server KILL
    fi
    sleep 0.1
  done
  wait "$producer"
  local produced=$?
  sed "s/^/  produce.$name.out: /" "$tmp/produce.$name.out"
  [[ -n $hung || $produced -eq 0 ]] ||
    fail "$name: the producers did not finish (status $produced): see produce.$name.out"
  grep -q ' [1-9][0-9]* refused' "$tmp/produce.$name.out" ||
    fail "$name: no batch was refused: the disk never filled (raise --batches or lower the headroom)${hung:+; also: $hung}"
  pass "$name: the disk filled; producers refused: $(grep -o 'first refusal: .*' "$tmp/produce.$name.out")"
  [[ -n $hung ]] && deferred+=("$name: $hung")

  local rc=0
  if [[ -z $hung ]]; then
    # A full disk must not hang queries.
    run 0 "$name: list while the disk is full" "$GRADCTL" --server "$listen" list
    stop_server "$signal" || rc=$?
    echo "  $name: gradientd stopped by SIG$signal, exit status $rc"
  fi
  cp "$tmp/server.$name.err" "$tmp/server.$name.full.err" 2>/dev/null

  rm -f "$mnt/ballast"
  start_server -n "$name.restart" -l "$listen" --data-dir "$data" --fsync always
  pass "$name: restarted on the same data directory after the disk was freed"

  # Before any resend: the plain producers' series must be exactly what was
  # acknowledged (the exactly-once ones' unacknowledged batches are unknown).
  ledger "$name: check before resend" "check.$name.before.out" check --server "$listen" \
    --ledger "$tmp/ledger.$name" --eo-unacked-ok 1 &&
    pass "$name: after the restart, every series is exactly its acknowledged batches" ||
    problem "$name: after the restart, the state is not the acknowledged ledger: $(grep -m 3 MISMATCH "$tmp/check.$name.before.out" | tr '\n' ' ')"

  ledger "$name: resend" "resend.$name.out" resend --server "$listen" \
    --ledger "$tmp/ledger.$name" --window 16 ||
    fail_round "$name: resending the unacknowledged exactly-once batches failed"
  ledger "$name: check after resend" "check.$name.after.out" check --server "$listen" \
    --ledger "$tmp/ledger.$name" &&
    pass "$name: after resending, every batch of the exactly-once producers counts exactly once" ||
    problem "$name: after resending, the state is not the acknowledged ledger: $(grep -m 3 MISMATCH "$tmp/check.$name.after.out" | tr '\n' ' ')"

  stop_server KILL
  start_server -n "$name.final" -l "$listen" --data-dir "$data" --fsync always
  ledger "$name: check after one more restart" "check.$name.final.out" check \
    --server "$listen" --ledger "$tmp/ledger.$name" &&
    pass "$name: one more kill -9 and restart: the state is still the ledger" ||
    problem "$name: after one more kill -9 and restart, the state is not the acknowledged ledger"
  stop_server KILL
  unmount_scratch "$mnt"
}

for kind in $KINDS; do
  for signal in TERM KILL; do
    echo "full_disk_test: $kind, stopped with SIG$signal"
    one_round "$kind" "$signal"
  done
done
[[ ${#deferred[@]} -eq 0 ]] || fail_round "${#deferred[@]} problems (listed above)"
echo "full_disk_test: passed ($checks checks on: $KINDS)"
