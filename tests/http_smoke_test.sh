#!/usr/bin/env bash
# Smoke test of the HTTP listener with the real binary and curl:
#
#   bash http_smoke_test.sh GRADIENTD
#
# gradientd on port 0 prints its HTTP line after the protocol's; /healthz,
# /readyz and the API answer over it; a second gradientd asked for the same
# HTTP port exits 1 naming --http-listen; --http-listen off prints no HTTP
# line. No timing assertions: the only waits are lib.sh's bounded polls.
set -u

TEST_NAME=http_smoke
ARG_NAMES=(GRADIENTD)
FAIL_LOGS=("server*.out")
source "$(dirname "$0")/lib.sh" || exit 1
command -v curl >/dev/null || skip "curl is not installed (tools/install-deps.sh installs it)"

start_server --in-memory
http=""
for _ in $(seq 1 300); do  # at most ~30 s
  http=$(sed -n 's/^gradientd http listening on \(.*\)$/\1/p' "$tmp/server.out" | head -n 1)
  [[ -n $http ]] && break
  sleep 0.1
done
[[ -n $http ]] || fail "no 'gradientd http listening on HOST:PORT' line"
[[ $(head -n 1 "$tmp/server.out") == "gradientd http listening on $http" ]] ||
  fail "the HTTP line is not first (HTTP answers /healthz during recovery)"
[[ $http != "$server" && ${http##*:} -gt 0 ]] || fail "bad HTTP address '$http' (protocol: $server)"
pass "gradientd http listening on $http, before the protocol's line"

run 0 "curl /healthz" curl -sS --max-time 60 "http://$http/healthz"
expect_out "/healthz says ok" '^ok$'
run 0 "curl /readyz" curl -sS --max-time 60 "http://$http/readyz"
expect_out "/readyz says ready" '^ready$'
run 0 "curl a missing series" curl -sS --max-time 60 -w '%{http_code}' "http://$http/api/v1/series/no%20such"
expect_out "404 naming the series" "\"code\":\"NOT_FOUND\".*no such.*404$"

run 1 "a second gradientd on the same HTTP port" \
  "$GRADIENTD" --in-memory --listen 127.0.0.1:0 --http-listen "$http"
expect_err "the error names the flag" "gradientd: --http-listen $http: cannot listen: .*in use"

stop_server
start_server -n off --in-memory --http-listen off
stop_server
grep -q "http listening" "$tmp/server.off.out" && fail "--http-listen off printed an HTTP line"
pass "--http-listen off: no HTTP line"
echo "http_smoke: $checks checks passed"
