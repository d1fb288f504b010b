#!/usr/bin/env bash
# Smoke test of access control with the real binaries:
#
#   bash auth_smoke_test.sh GRADIENTD GRADCTL
#
# Starts gradientd --auth-file on a free port and drives gradctl with
# --token and $GRADIENTD_TOKEN: no token, a wrong token, a forbidden and an
# allowed operation, produce, a malformed auth file at startup, and kill -HUP
# with a good and a bad file. Checks that no token ever reaches the server's
# output or gradctl's messages. No timing assertions: the only waits are
# bounded polls.
set -u

TEST_NAME=auth_smoke
ARG_NAMES=(GRADIENTD GRADCTL)
FAIL_LOGS=("server*.out")
source "$(dirname "$0")/lib.sh" || exit 1

INGEST_TOKEN=ingest-5f2c9a1d7e3b4c60
QUERY_TOKEN=query-8b7d6e5f4a3c2b1a
ADMIN_TOKEN=admin-0a1b2c3d4e5f6071
NEW_TOKEN=newcomer-99aa88bb77cc66dd
WRONG_TOKEN=wrong-0000000000000000
SECRET_TOKEN=5e3c7a9b1d2f4e6a8c0b9d7f5e3a1c2b4d6f8a0e9c7b5d3f1a2c4e6b8d0f9a7c
ALL_TOKENS=("$INGEST_TOKEN" "$QUERY_TOKEN" "$ADMIN_TOKEN" "$NEW_TOKEN" "$WRONG_TOKEN" "$SECRET_TOKEN")

# No token may appear in gradctl's output or messages.
no_token_in_output() {
  local t
  for t in "${ALL_TOKENS[@]}"; do
    if grep -qF -- "$t" "$tmp/out" "$tmp/err"; then fail "$1: a token appears in gradctl's output"; fi
  done
}

auth=$tmp/tokens.conf
cat >"$auth" <<EOT
# name      roles                token
ingester    produce              $INGEST_TOKEN
dashboard   query                $QUERY_TOKEN
ops         produce,query,admin  $ADMIN_TOKEN
EOT
chmod 600 "$auth"

# --- A malformed file stops the server at startup, naming file and line. ----
bad=$tmp/bad.conf
printf 'ok query %s\nops query,root %s\n' "$QUERY_TOKEN" "$ADMIN_TOKEN" >"$bad"
run 1 "malformed auth file" "$GRADIENTD" --listen 127.0.0.1:0 --in-memory --auth-file "$bad"
expect_err "malformed auth file" "--auth-file: $bad:2: 'ops': unknown role 'root'"
no_token_in_output "malformed auth file"
printf '%s query short\n' "$SECRET_TOKEN" >"$bad"
run 1 "a token in the name column" "$GRADIENTD" --listen 127.0.0.1:0 --in-memory --auth-file "$bad"
expect_err "a token in the name column" "--auth-file: $bad:1: the token of the name on line 1"
grep -qF -- "${SECRET_TOKEN:0:16}" "$tmp/err" && fail "startup quotes a token in the name column"
chmod 644 "$bad"
printf 'ok query %s\n' "$QUERY_TOKEN" >"$bad"
# (A port out of range stops it right after it has read the file.)
run 1 "world-readable auth file" "$GRADIENTD" --listen 127.0.0.1:99999 --in-memory \
  --auth-file "$bad"
expect_err "world-readable auth file" "warning: $bad is readable by other users"
run 1 "missing auth file" "$GRADIENTD" --listen 127.0.0.1:0 --in-memory --auth-file "$tmp/none"
expect_err "missing auth file" "cannot open $tmp/none"
pass "a malformed or missing auth file: exit 1, file and line named"

# --- Start the server with the good file. ------------------------------------
start_server --in-memory --auth-file "$auth"
grep -q "access control: 3 token(s) from $auth" "$tmp/server.err" ||
  fail "the server does not say how many tokens it loaded"
grep -q "readable by other users" "$tmp/server.err" && fail "a chmod 600 auth file gets a warning"
pass "gradientd --auth-file listening on $server"
unset GRADIENTD_TOKEN
GC=("$GRADCTL" --server "$server")

run 0 "gradctl --help" "$GRADCTL" --help
expect_out "gradctl --help" "--token"
run 0 "gradientd --help" "$GRADIENTD" --help
expect_out "gradientd --help" "--auth-file"
pass "--token and --auth-file are documented"

# --- No token, a wrong token. ------------------------------------------------
run 1 "no token" "${GC[@]}" list
expect_err "no token" "UNAUTHENTICATED: not authenticated: .*--token or \\\$GRADIENTD_TOKEN"
run 1 "wrong token" "${GC[@]}" --token "$WRONG_TOKEN" list
expect_err "wrong token" "refused the token: UNAUTHENTICATED"
no_token_in_output "wrong token"
run 1 "wrong token, produce" "${GC[@]}" --token "$WRONG_TOKEN" produce --synthetic --count 10
expect_err "wrong token, produce" "refused the token: UNAUTHENTICATED"
no_token_in_output "wrong token, produce"
pass "no token or a wrong one: exit 1, UNAUTHENTICATED"

# --- Allowed and forbidden operations. ---------------------------------------
run 0 "produce with --token" "${GC[@]}" --token "$INGEST_TOKEN" produce --synthetic --count 1000 \
  --slope 2 --intercept 1 --noise 0 --seed 7
expect_out "produce with --token" "points sent: +1000"
# The ingester may not query: the summary goes without the fit.
expect_err "produce with --token" "no fit in the summary: 'ingester' \\(roles: produce\\)"
no_token_in_output "produce"
GRADIENTD_TOKEN=$QUERY_TOKEN run 0 "fit with \$GRADIENTD_TOKEN" "${GC[@]}" --json fit
expect_out "fit with \$GRADIENTD_TOKEN" '"n":"1000"'
GRADIENTD_TOKEN=$QUERY_TOKEN run 0 "list with \$GRADIENTD_TOKEN" "${GC[@]}" --json list
state_before=$out
pass "allowed operations: produce (--token), fit and list (\$GRADIENTD_TOKEN)"

GRADIENTD_TOKEN=$QUERY_TOKEN run 1 "step as dashboard" "${GC[@]}" step --iterations 5
expect_err "step as dashboard" \
  "PERMISSION_DENIED: 'dashboard' \\(roles: query\\) may not step: it needs the admin role"
run 1 "ingest as dashboard" "${GC[@]}" --token "$QUERY_TOKEN" produce --synthetic --count 10
expect_err "ingest as dashboard" "PERMISSION_DENIED"
run 1 "reset as ingester" "${GC[@]}" --token "$INGEST_TOKEN" reset
expect_err "reset as ingester" "PERMISSION_DENIED"
# --token wins over $GRADIENTD_TOKEN.
GRADIENTD_TOKEN=$ADMIN_TOKEN run 1 "--token over \$GRADIENTD_TOKEN" "${GC[@]}" \
  --token "$QUERY_TOKEN" reset
expect_err "--token over \$GRADIENTD_TOKEN" "PERMISSION_DENIED"
no_token_in_output "forbidden operations"
GRADIENTD_TOKEN=$ADMIN_TOKEN run 0 "list after refusals" "${GC[@]}" --json list
[[ $out == "$state_before" ]] || fail "the refused requests changed the state"
pass "forbidden operations: exit 1, PERMISSION_DENIED, nothing changed"

# replay and bench connect on their own: they say Hello too.
run 0 "produce --save as ops" "${GC[@]}" --token "$ADMIN_TOKEN" --series rec produce \
  --synthetic --count 500 --seed 3 --save "$tmp/rec.gdr"
run 1 "replay without a token" "${GC[@]}" --series rec replay --max "$tmp/rec.gdr"
expect_err "replay without a token" "UNAUTHENTICATED"
GRADIENTD_TOKEN=$INGEST_TOKEN run 0 "replay with \$GRADIENTD_TOKEN" "${GC[@]}" --series rec2 \
  replay --max "$tmp/rec.gdr"
run 1 "bench with a wrong token" "${GC[@]}" --token "$WRONG_TOKEN" bench --seconds 0.2 \
  --idle-seconds 0 --no-baseline
expect_err "bench with a wrong token" "refused the token"
run 0 "bench as ops" "${GC[@]}" --token "$ADMIN_TOKEN" bench --seconds 0.2 --idle-seconds 0 \
  --no-baseline --query-rate 50 --json
no_token_in_output "replay and bench"
pass "replay and bench authenticate every connection"

GRADIENTD_TOKEN=$ADMIN_TOKEN run 0 "step as ops" "${GC[@]}" step --iterations 3
GRADIENTD_TOKEN=$ADMIN_TOKEN run 0 "configure as ops" "${GC[@]}" configure --steps-per-batch 0
pass "admin operations as ops"

# --- kill -HUP: a bad file keeps the previous tokens. ------------------------
hup_and_wait() {  # hup_and_wait PATTERN: SIGHUP, then wait for PATTERN on stderr
  local before
  before=$(grep -c "SIGHUP" "$tmp/server.err")
  kill -HUP "$server_pid" || fail "kill -HUP"
  for _ in $(seq 1 300); do
    [[ $(grep -c "SIGHUP" "$tmp/server.err") -gt $before ]] && break
    sleep 0.1
  done
  kill -0 "$server_pid" 2>/dev/null || fail "gradientd died on SIGHUP"
  tail -n 1 "$tmp/server.err" | grep -Eq -- "$1" ||
    fail "after SIGHUP the server's stderr does not end with /$1/"
}
cp "$auth" "$tmp/tokens.good"
printf 'ops produce,query,admin %s\nnewcomer query\n' "$ADMIN_TOKEN" >"$auth"
hup_and_wait "cannot reload the auth file: $auth:2: expected 3 fields .*; keeping the previous 3 token\\(s\\)"
run 0 "old token after a failed reload" "${GC[@]}" --token "$QUERY_TOKEN" list
pass "kill -HUP with a malformed file: the previous tokens stay"

# A token written in the name column (a 64-hex token is a valid name) is
# never quoted, whatever else is wrong with the line.
printf 'ops produce,query,admin %s
%s query short
%s query,query %s
' "$ADMIN_TOKEN" \
  "$SECRET_TOKEN" "$SECRET_TOKEN" "$NEW_TOKEN" >"$auth"
hup_and_wait "cannot reload the auth file: $auth:2: the token of the name on line 2 \\(not quoted: it could be a token\\) has 5 characters"
grep -qF -- "${SECRET_TOKEN:0:16}" "$tmp/server.err" && fail "SIGHUP quotes a token in the name column"
pass "kill -HUP: a token in the name column is not quoted"

# --- kill -HUP: a new token works, a removed one is refused. -----------------
cat >"$auth" <<EOT
ops       produce,query,admin  $ADMIN_TOKEN
newcomer  query                $NEW_TOKEN
EOT
hup_and_wait "reloaded $auth: 2 token\\(s\\)"
GRADIENTD_TOKEN=$NEW_TOKEN run 0 "new token after reload" "${GC[@]}" --json fit
expect_out "new token after reload" '"n":"1000"'
run 1 "removed token after reload" "${GC[@]}" --token "$QUERY_TOKEN" fit
expect_err "removed token after reload" "refused the token: UNAUTHENTICATED"
run 1 "removed ingest token after reload" "${GC[@]}" --token "$INGEST_TOKEN" produce \
  --synthetic --count 10
expect_err "removed ingest token after reload" "UNAUTHENTICATED"
pass "kill -HUP: the new token works, removed ones are refused"

# --- No token anywhere in the server's output. -------------------------------
for t in "${ALL_TOKENS[@]}"; do
  if grep -qF -- "$t" "$tmp/server.out" "$tmp/server.err"; then
    fail "a token appears in the server's output"
  fi
done
stop_server
rc=$?
[[ $rc -eq 0 ]] || fail "gradientd exited with $rc on SIGTERM"
pass "no token in the server's output; clean shutdown"

# --- Without --auth-file: open, and Hello is harmless. -----------------------
start_server -n open --in-memory
run 0 "open server, no token" "$GRADCTL" --server "$server" configure --m 1
GRADIENTD_TOKEN=anything-at-all-12345 run 0 "open server, a token" "$GRADCTL" --server "$server" \
  reset
pass "an open server serves with or without a token"

echo "PASS: $checks checks"
