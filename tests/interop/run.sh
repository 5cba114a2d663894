#!/usr/bin/env bash
# Interop suite: Authlib, requests-oauthlib and PyJWT (pinned, from PyPI, in target/interop-venv)
# drive and check the embedded default (the static oauth-time of scripts/build-static.sh on 127.0.0.1:8080-8082).
#
#   bash tests/interop/run.sh                          # every signing algorithm, one server each
#   INTEROP_ALGORITHMS=EdDSA bash tests/interop/run.sh # only the default one
#   bash tests/interop/run.sh -k tampered              # extra arguments go to pytest
#
# Exits with pytest's status (non-zero when any algorithm's run failed).
set -euo pipefail
cd "$(dirname "$0")/../.."

here=tests/interop
venv=target/interop-venv
algorithms=${INTEROP_ALGORITHMS:-EdDSA ES256 RS256}

suite=interop
shown_packages="authlib|pyjwt|requests-oauthlib|oauthlib|cryptography|pytest"
# shellcheck source=tests/lib/embedded-default.sh
source tests/lib/embedded-default.sh

status=0
summary=()
for algorithm in $algorithms; do
  step "SIGNING_ALGORITHM=$algorithm: start $binary"
  log="target/interop-server-$algorithm.log"
  # The embedded default: no configuration but the algorithm (and nothing from the caller's
  # environment, such as a REDIS_URL or ISSUER meant for something else).
  env -i PATH="$PATH" HOME="${HOME:-/}" RUST_LOG=info LOG_FORMAT=text \
    SIGNING_ALGORITHM="$algorithm" "$binary" >"$log" 2>&1 &
  server_pid=$!
  wait_healthy "$log" || fail "the server did not come up with SIGNING_ALGORITHM=$algorithm"

  step "SIGNING_ALGORITHM=$algorithm: pytest"
  run_status=0
  env -u AUTHLIB_INSECURE_TRANSPORT -u OAUTHLIB_INSECURE_TRANSPORT \
    NO_PROXY="localhost,127.0.0.1" no_proxy="localhost,127.0.0.1" \
    PYTHONDONTWRITEBYTECODE=1 INTEROP_SIGNING_ALGORITHM="$algorithm" \
    "$venv/bin/python" -m pytest -p no:cacheprovider --rootdir "$here" -q "$here" "$@" \
    || run_status=$?
  stop_server
  if [ "$run_status" -ne 0 ]; then
    echo "interop: failures with SIGNING_ALGORITHM=$algorithm; the server's log: $log" >&2
    status=$run_status
    summary+=("$algorithm: FAILED ($run_status)")
  else
    summary+=("$algorithm: passed")
  fi
done

step "summary"
printf '  %s\n' "${summary[@]}"
exit "$status"
