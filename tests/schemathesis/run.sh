#!/usr/bin/env bash
# API fuzzing: Schemathesis (pinned, from PyPI, in target/schemathesis-venv) reads each service's
# /openapi.json from the embedded default (the static oauth-time of scripts/build-static.sh on 127.0.0.1:8080-8082) and
# sends a bounded number of generated requests per operation, checking every answer against the
# document: no 5xx, and status, content type, headers and body as documented.
#
#   bash tests/schemathesis/run.sh                        # all three services
#   SCHEMATHESIS_MAX_EXAMPLES=50 bash tests/schemathesis/run.sh
#   SCHEMATHESIS_SERVICES="8081" bash tests/schemathesis/run.sh   # one service, by port
#
# Exits non-zero when any service's run failed.
set -euo pipefail
cd "$(dirname "$0")/../.."

here=tests/schemathesis
venv=target/schemathesis-venv
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-300}
services=${SCHEMATHESIS_SERVICES:-8081 8082 8080}
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance

suite=schemathesis
shown_packages="schemathesis|hypothesis"
# shellcheck source=tests/lib/embedded-default.sh
source tests/lib/embedded-default.sh

step "start $binary"
log=target/schemathesis-server.log
# The embedded default, with nothing from the caller's environment (such as a REDIS_URL or ISSUER
# meant for something else).
env -i PATH="$PATH" HOME="${HOME:-/}" RUST_LOG=info LOG_FORMAT=text "$binary" >"$log" 2>&1 &
server_pid=$!
wait_healthy "$log" || fail "the server did not come up"

status=0
summary=()
for port in $services; do
  step "127.0.0.1:$port/openapi.json: $max_examples examples per operation"
  auth=()
  # The embedded default's client credentials, so that token requests get past client
  # authentication to the grant checks (without them every one is a 401).
  if [ "$port" = 8081 ]; then auth=(--auth 1234:qwerty); fi
  run_status=0
  # --seed: the same inputs every run, so that a failure in CI reproduces locally.
  NO_PROXY="localhost,127.0.0.1" no_proxy="localhost,127.0.0.1" PYTHONDONTWRITEBYTECODE=1 \
    "$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
    --checks "$checks" \
    --max-examples "$max_examples" \
    --seed 1 \
    --no-color \
    "${auth[@]}" "$@" || run_status=$?
  if [ "$run_status" -ne 0 ]; then
    status=$run_status
    summary+=("127.0.0.1:$port: FAILED ($run_status)")
  else
    summary+=("127.0.0.1:$port: passed")
  fi
done
stop_server

step "summary (the server's log: $log)"
printf '  %s\n' "${summary[@]}"
exit "$status"
