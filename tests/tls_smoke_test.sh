#!/usr/bin/env bash
# Smoke test of TLS with the real binaries: a throw-away CA made here with
# the openssl tool, gradientd --tls-cert/--tls-key (and --tls-client-ca), and
# gradctl --tls --tls-ca (and --tls-cert/--tls-key).
#
#   bash tls_smoke_test.sh GRADIENTD GRADCTL
#
# Exits non-zero, saying what failed, on the first failure. No timing
# assertions: the only waits are bounded polls.
set -u

TEST_NAME=tls_smoke
ARG_NAMES=(GRADIENTD GRADCTL)
source "$(dirname "$0")/lib.sh" || exit 1

reject_err() { ! grep -Eq -- "$2" <<<"$err" || fail "$1: stderr matches /$2/"; }

command -v openssl >/dev/null || fail "the openssl tool is needed to make the test CA"

# --- A throw-away CA, a server certificate, a client certificate, and a CA
# nobody trusts. -------------------------------------------------------------
make_ca() {  # make_ca NAME
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=$1" -keyout "$tmp/$1.key" -out "$tmp/$1.pem" 2>"$tmp/openssl.err" ||
    fail "openssl: cannot make CA $1: $(cat "$tmp/openssl.err")"
}
issue() {  # issue CA NAME SUBJECT_ALT_NAME_OR_EMPTY
  local ext="$tmp/$2.ext"
  : >"$ext"
  [[ -n $3 ]] && echo "subjectAltName=$3" >"$ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
    -keyout "$tmp/$2.key" -out "$tmp/$2.csr" 2>"$tmp/openssl.err" &&
    openssl x509 -req -in "$tmp/$2.csr" -CA "$tmp/$1.pem" -CAkey "$tmp/$1.key" \
      -set_serial "$RANDOM$RANDOM" -days 2 -extfile "$ext" -out "$tmp/$2.pem" 2>"$tmp/openssl.err" ||
    fail "openssl: cannot issue $2: $(cat "$tmp/openssl.err")"
}
make_ca ca
make_ca stranger-ca
issue ca server "IP:127.0.0.1,DNS:localhost"
issue ca client ""
issue stranger-ca stranger ""
pass "made a CA and certificates with openssl"

# --- gradientd's flags and startup errors. -----------------------------------
run 0 "gradientd --help" "$GRADIENTD" --help
for word in --tls-cert --tls-key --tls-client-ca; do
  expect_out "gradientd --help documents $word" "$word"
done
run 0 "gradctl --help" "$GRADCTL" --help
for word in --tls --tls-ca --tls-cert --tls-key GRADIENTD_TLS_CA; do
  expect_out "gradctl --help documents $word" "$word"
done
run 2 "gradientd --tls-cert without --tls-key" "$GRADIENTD" --in-memory --tls-cert "$tmp/server.pem"
expect_err "--tls-cert alone" "--tls-cert needs --tls-key"
run 2 "gradientd --tls-key without --tls-cert" "$GRADIENTD" --in-memory --tls-key "$tmp/server.key"
expect_err "--tls-key alone" "--tls-key needs --tls-cert"
run 1 "gradientd with a missing certificate" "$GRADIENTD" --in-memory --listen 127.0.0.1:0 \
  --tls-cert "$tmp/missing.pem" --tls-key "$tmp/server.key"
expect_err "missing certificate" "--tls-cert $tmp/missing.pem: cannot read it: No such file"
run 1 "gradientd with the key of another certificate" "$GRADIENTD" --in-memory \
  --listen 127.0.0.1:0 --tls-cert "$tmp/server.pem" --tls-key "$tmp/client.key"
expect_err "mismatched key" "--tls-key $tmp/client.key: does not match the certificate in --tls-cert $tmp/server.pem"
pass "gradientd's TLS usage and startup errors"

# --- produce then fit over TLS. -------------------------------------------------
start_server -n tls --in-memory --tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key"
tls_server=$server
GC=("$GRADCTL" --server "$tls_server" --tls --tls-ca "$tmp/ca.pem")
run 0 "produce over TLS" "${GC[@]}" --series line produce --synthetic --slope 2 --intercept 1 \
  --noise 0 --count 20000 --batch 1000 --window 4 --save "$tmp/line.grd"
expect_out "produce over TLS" "points sent: +20000$"
run 0 "fit over TLS" "${GC[@]}" --series line fit --json
near "fit over TLS: n" "$(json_number "$out" '"n')" 20000 0
near "fit over TLS: m" "$(json_number "$out" '"least_squares":{"m')" 2 1e-9
near "fit over TLS: b" "$(json_number "$out" '"least_squares":{"m":[^,]*,"b')" 1 1e-9
run 0 "replay over TLS" "${GC[@]}" --series copy replay --max --progress none "$tmp/line.grd"
run 0 "fit of the replayed copy" "${GC[@]}" --series copy fit --json
near "replayed over TLS: n" "$(json_number "$out" '"n')" 20000 0

# The host name is checked: localhost is in the certificate too.
port=${tls_server##*:}
run 0 "fit via localhost" "$GRADCTL" --server "localhost:$port" --tls --tls-ca "$tmp/ca.pem" \
  --series line fit
# The CA may come from the environment.
GRADIENTD_TLS_CA=$tmp/ca.pem run 0 "GRADIENTD_TLS_CA" "$GRADCTL" --server "$tls_server" --tls \
  --series line fit
pass "TLS with the CA from --tls-ca and from GRADIENTD_TLS_CA, by IP and by name"

# --- Failures are clear and final. -------------------------------------------
run 1 "fit with the wrong CA" "$GRADCTL" --server "$tls_server" --tls \
  --tls-ca "$tmp/stranger-ca.pem" fit
expect_err "wrong CA" "TLS handshake with $tls_server failed: certificate verify failed"
run 1 "produce with the wrong CA" "$GRADCTL" --server "$tls_server" --tls \
  --tls-ca "$tmp/stranger-ca.pem" produce --synthetic --count 10
expect_err "produce with the wrong CA" "certificate verify failed"
reject_err "produce does not retry a verification failure" "retrying"
run 1 "the system's CAs do not know the test CA" "$GRADCTL" --server "$tls_server" --tls fit
expect_err "system CAs" "certificate verify failed"
run 1 "a plaintext gradctl against the TLS server" "$GRADCTL" --server "$tls_server" fit
run 2 "--tls-ca without --tls" "$GRADCTL" --server "$tls_server" --tls-ca "$tmp/ca.pem" fit
expect_err "--tls-ca without --tls" "--tls-ca needs --tls"
run 2 "--tls-cert without --tls-key" "$GRADCTL" --server "$tls_server" --tls \
  --tls-cert "$tmp/client.pem" fit
expect_err "--tls-cert without --tls-key" "--tls-cert needs --tls-key"
run 1 "--tls-ca missing" "$GRADCTL" --server "$tls_server" --tls --tls-ca "$tmp/missing.pem" fit
expect_err "--tls-ca missing" "--tls-ca $tmp/missing.pem: cannot read it"
run 2 "bench --tls" "$GRADCTL" --server "$tls_server" --tls bench
expect_err "bench --tls" "--tls is not supported by bench"
# The server went on through all of that.
run 0 "fit after the failures" "${GC[@]}" --series line fit
pass "TLS failures"

# --- gradctl --tls against a plaintext gradientd. ----------------------------
start_server -n plain --in-memory
run 1 "gradctl --tls against a plaintext server" "$GRADCTL" --server "$server" --tls \
  --tls-ca "$tmp/ca.pem" fit
expect_err "TLS against plaintext" "TLS handshake with $server failed"

# --- Client certificates. ----------------------------------------------------
start_server -n mtls --in-memory --tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key" \
  --tls-client-ca "$tmp/ca.pem"
run 1 "no client certificate" "$GRADCTL" --server "$server" --tls --tls-ca "$tmp/ca.pem" fit
run 1 "a client certificate from another CA" "$GRADCTL" --server "$server" --tls \
  --tls-ca "$tmp/ca.pem" --tls-cert "$tmp/stranger.pem" --tls-key "$tmp/stranger.key" fit
run 0 "produce with a client certificate" "$GRADCTL" --server "$server" --tls \
  --tls-ca "$tmp/ca.pem" --tls-cert "$tmp/client.pem" --tls-key "$tmp/client.key" \
  produce --synthetic --count 100
run 0 "fit with a client certificate" "$GRADCTL" --server "$server" --tls \
  --tls-ca "$tmp/ca.pem" --tls-cert "$tmp/client.pem" --tls-key "$tmp/client.key" fit --json
near "mutual TLS: n" "$(json_number "$out" '"n')" 100 0
pass "client certificates"

# --- Graceful shutdown. -----------------------------------------------------
for pid in "${pids[@]}"; do
  kill -TERM "$pid"
  wait "$pid" || fail "gradientd (pid $pid) did not exit 0 on SIGTERM"
done
pids=()
pass "every gradientd stopped cleanly"
echo "tls_smoke: $checks checks passed"
