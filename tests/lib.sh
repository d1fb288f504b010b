# Shared helpers for the shell tests in this directory. A test script sets
# its variables, then sources this file:
#
#   TEST_NAME=gradctl_smoke    # required: the temp dir is $TMPDIR/TEST_NAME.XXXXXX
#   ARG_NAMES=(GRADIENTD GRADCTL)  # the script's arguments, in order: each
#                              # is set to its argument; exits 2 with "usage:
#                              # $0 NAMES..." unless there is one per name
#   GRADIENTD=... GRADCTL=...  # required (or in ARG_NAMES): the binaries
#                              # (checked to be executable); GRADCTL only
#                              # for the tests that run it
#   LIMIT_SECONDS=240          # optional: the guard on every `run` (default 120)
#   CLEANUP_SIGNAL=KILL        # optional: sent at exit to the processes in $pids (default TERM)
#   FAIL_LOGS=(produce.*)      # optional: more files (globs under $tmp) that fail prints
#   on_cleanup() { ...; }      # optional: runs first at exit, before $pids are stopped
#   source "$(dirname "$0")/lib.sh" || exit 1
#
# Sourcing it makes the temp dir $tmp, removed at exit (unless $KEEP_TMP is
# set), sets the exit trap, and provides:
#   fail MESSAGE            prints FAIL: MESSAGE, the last `run`'s stdout and
#                           stderr, every $tmp/server*.err and the FAIL_LOGS;
#                           exits 1
#   pass MESSAGE            prints ok: MESSAGE, counts it in $checks
#   run RC WHAT COMMAND...  runs COMMAND under $LIMIT (timeout), stdout to $out
#                           and $tmp/out, stderr to $err and $tmp/err; fails
#                           unless it exits RC
#   expect_out|expect_err WHAT ERE   $out / $err must match the regex
#   json_number JSON KEY    the first number after "KEY": in JSON text
#   near WHAT ACTUAL EXPECTED TOL    |ACTUAL - EXPECTED| <= TOL, then pass
#   start_server [-n NAME] [-l LISTEN] [ARGS...]
#                           starts $GRADIENTD --listen LISTEN (127.0.0.1:0) ARGS
#                           with stdout/stderr in $tmp/server[.NAME].out/.err,
#                           polls (at most ~30 s) for its line "gradientd
#                           listening on HOST:PORT"; sets $server (HOST:PORT)
#                           and $server_pid, adds the pid to $pids
#   stop_server [SIGNAL]    signals $server_pid (TERM) and waits for it;
#                           returns its exit status; clears $server_pid
#   skip MESSAGE            prints SKIPPED: MESSAGE loudly; exits 77 (ctest's
#                           SKIP_RETURN_CODE for the tests that may skip)
#   mount_scratch KIND SIZE DIR   mounts a small filesystem on DIR (created):
#                           KIND tmpfs, or ext4 (an image file under $tmp,
#                           loop-mounted); returns non-zero if it cannot.
#                           unmount_scratch DIR undoes it (and frees the loop
#                           device); unmount_all_scratch, every one still
#                           mounted: call it from on_cleanup, after stopping
#                           the servers that use them
#   free_bytes DIR          bytes available on DIR's filesystem
# Children started by `run` and `start_server` do not inherit fd 7 (scripts
# may hold a FIFO open on it). Every wait here is bounded.

: "${TEST_NAME:?set TEST_NAME before sourcing lib.sh}"
# Sourced without arguments, so "$@" is the script's.
if [[ -n ${ARG_NAMES+set} ]]; then
  if [[ $# -ne ${#ARG_NAMES[@]} ]]; then
    echo "usage: $0 ${ARG_NAMES[*]}" >&2
    exit 2
  fi
  for ((arg_index = 0; arg_index < $#; arg_index++)); do
    printf -v "${ARG_NAMES[arg_index]}" '%s' "${@:arg_index+1:1}"
  done
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/$TEST_NAME.XXXXXX") || exit 1
pids=()          # processes to stop at exit: the servers, and whatever a script adds
server=""
server_pid=""
checks=0
out=""
err=""
[[ -n ${FAIL_LOGS+set} ]] || FAIL_LOGS=()

cleanup() {
  if declare -F on_cleanup >/dev/null; then on_cleanup; fi
  local p
  for p in ${pids[@]+"${pids[@]}"}; do
    kill -s "${CLEANUP_SIGNAL:-TERM}" "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  if [[ -n ${KEEP_TMP:-} ]]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Guard every client call against hanging (a hang is a failure, not a wait).
LIMIT=()
if command -v timeout >/dev/null 2>&1; then LIMIT=(timeout "${LIMIT_SECONDS:-120}"); fi

fail() {
  echo "FAIL: $*" >&2
  if [[ -f $tmp/out ]]; then
    echo "--- stdout of the last command:" >&2
    cat "$tmp/out" >&2
    echo "--- stderr of the last command:" >&2
    cat "$tmp/err" >&2
  fi
  local pattern f
  for pattern in 'server*.err' ${FAIL_LOGS[@]+"${FAIL_LOGS[@]}"}; do
    for f in "$tmp"/$pattern; do
      [[ -f $f ]] || continue
      echo "--- $(basename "$f"):" >&2
      cat "$f" >&2
    done
  done
  exit 1
}
pass() {
  checks=$((checks + 1))
  echo "ok: $*"
}

run() {  # run EXPECTED_RC WHAT COMMAND...
  local expected=$1 what=$2
  shift 2
  ${LIMIT[@]+"${LIMIT[@]}"} "$@" >"$tmp/out" 2>"$tmp/err" 7>&-
  local rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
  [[ $rc -eq $expected ]] || fail "$what: exit code $rc, expected $expected (command: $*)"
}
expect_out() { grep -Eq -- "$2" <<<"$out" || fail "$1: stdout does not match /$2/"; }
expect_err() { grep -Eq -- "$2" <<<"$err" || fail "$1: stderr does not match /$2/"; }

# The first number after "KEY": in JSON text (keys may be nested paths
# written as they appear, e.g. '"least_squares":{"m"').
json_number() {  # json_number JSON KEY
  grep -o -- "$2\":\"\{0,1\}-\{0,1\}[0-9][0-9.eE+-]*" <<<"$1" | head -n 1 |
    sed -e 's/.*"://' -e 's/"//g'
}
near() {  # near WHAT ACTUAL EXPECTED TOLERANCE
  [[ -n $2 ]] || fail "$1: no value found"
  awk -v a="$2" -v b="$3" -v t="$4" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }' ||
    fail "$1: got $2, expected $3 (within $4)"
  pass "$1 = $2"
}

start_server() {  # start_server [-n NAME] [-l LISTEN] [GRADIENTD_ARGS...]
  local name="" listen=127.0.0.1:0
  while [[ $# -gt 0 ]]; do
    case $1 in
      -n) name=$2; shift 2 ;;
      -l) listen=$2; shift 2 ;;
      *) break ;;
    esac
  done
  local log=$tmp/server${name:+.$name} what="gradientd${name:+ ($name)}"
  # On a fixed port (a restart), HTTP's default would be the next port,
  # which a client's connection may hold: port 0 unless the test says.
  local http=()
  [[ $listen == *:0 || " $* " == *" --http-listen "* ]] || http=(--http-listen 127.0.0.1:0)
  "$GRADIENTD" --listen "$listen" ${http[@]+"${http[@]}"} "$@" >"$log.out" 2>"$log.err" 7>&- &
  server_pid=$!
  pids+=("$server_pid")
  server=""
  for _ in $(seq 1 300); do  # at most ~30 s
    server=$(sed -n 's/^gradientd listening on \(.*\)$/\1/p' "$log.out" | head -n 1)
    [[ -n $server ]] && break
    kill -0 "$server_pid" 2>/dev/null ||
      fail "$what exited before listening (command: gradientd --listen $listen $*)"
    sleep 0.1
  done
  [[ -n $server ]] ||
    fail "$what did not report 'gradientd listening on HOST:PORT' (command: gradientd --listen $listen $*)"
  local port=${server##*:}
  [[ $port =~ ^[0-9]+$ && $port -gt 0 ]] || fail "$what: bad listening address '$server'"
}

stop_server() {  # stop_server [SIGNAL]: returns the server's exit status
  local rc=0 p keep=()
  if [[ -n $server_pid ]]; then
    kill -s "${1:-TERM}" "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    rc=$?
    for p in ${pids[@]+"${pids[@]}"}; do [[ $p == "$server_pid" ]] || keep+=("$p"); done
    pids=(${keep[@]+"${keep[@]}"})
  fi
  server_pid=""
  return "$rc"
}

skip() {
  echo "SKIPPED: $*" >&2
  echo "SKIPPED: $*"
  exit 77
}

scratch_mounts=()  # "DIR LOOPDEV" (LOOPDEV "-" for tmpfs)
mount_scratch() {  # mount_scratch tmpfs|ext4 SIZE DIR
  local kind=$1 size=$2 dir=$3 loop=-
  mkdir -p "$dir" || return 1
  case $kind in
    tmpfs) mount -t tmpfs -o "size=$size" gradientd-scratch "$dir" || return 1 ;;
    ext4)
      local image=$tmp/$(basename "$dir").img
      truncate -s "$size" "$image" && mkfs.ext4 -q -F "$image" >/dev/null 2>&1 || return 1
      loop=$(losetup -f --show "$image") || return 1
      if ! mount -t ext4 "$loop" "$dir"; then losetup -d "$loop"; return 1; fi
      ;;
    *) echo "mount_scratch: unknown kind $kind" >&2; return 1 ;;
  esac
  scratch_mounts+=("$dir $loop")
}
unmount_scratch() {  # unmount_scratch DIR
  local entry keep=() d l
  for entry in ${scratch_mounts[@]+"${scratch_mounts[@]}"}; do
    read -r d l <<<"$entry"
    if [[ $d == "$1" ]]; then
      umount "$d" 2>/dev/null || umount -l "$d" 2>/dev/null
      [[ $l == - ]] || losetup -d "$l" 2>/dev/null
    else
      keep+=("$entry")
    fi
  done
  scratch_mounts=(${keep[@]+"${keep[@]}"})
}
unmount_all_scratch() {
  local entry d l
  for entry in ${scratch_mounts[@]+"${scratch_mounts[@]}"}; do
    read -r d l <<<"$entry"
    unmount_scratch "$d"
  done
}
free_bytes() { df -B1 --output=avail "$1" | tail -n 1 | tr -d ' '; }

[[ -x $GRADIENTD ]] || fail "gradientd binary not found: $GRADIENTD"
[[ -z ${GRADCTL+set} || -x $GRADCTL ]] || fail "gradctl binary not found: $GRADCTL"
