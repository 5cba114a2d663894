#!/usr/bin/env bash
# Interop suite: Authlib, requests-oauthlib and PyJWT (pinned, from PyPI, in target/interop-venv)
# drive and check the embedded default (the static oauth-time of scripts/build-static.sh on 127.0.0.1:8080-8082).
#
#   bash tests/interop/run.sh                          # every signing algorithm, one server each
#   INTEROP_ALGORITHMS=EdDSA bash tests/interop/run.sh # only the default one
#   bash tests/interop/run.sh -k tampered              # extra arguments go to pytest
#   INTEROP_TLS=0 bash tests/interop/run.sh            # without the final run over HTTPS
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

# The HTTPS run: a development CA and certificate from the binaries' own `certs` subcommand (the
# webapp's certificate names localhost and 127.0.0.1), every listener on TLS, every URL https.
pki=$(mktemp -d)
trap 'stop_server; rm -rf "$pki"' EXIT
"$(dirname "$binary")/webapp" certs "$pki" >/dev/null
tls_env=(TLS_CERT_FILE="$pki/webapp.pem" TLS_KEY_FILE="$pki/webapp-key.pem" TLS_CA_FILE="$pki/ca.pem"
  ISSUER=https://localhost:8081 AUTHORIZATION_SERVER_URL=https://127.0.0.1:8081
  RESOURCE_SERVER_PUBLIC_URL=https://localhost:8082 RESOURCE_SERVER_URL=https://127.0.0.1:8082)

status=0
summary=()
# run_suite NAME SCHEME ALGORITHM [SERVER_VAR=VALUE...]
run_suite() {
  local name=$1 scheme=$2 algorithm=$3; shift 3
  step "$name: start $binary"
  local log="target/interop-server-$name.log"
  # The embedded default: no configuration but what the run names (and nothing from the caller's
  # environment, such as a REDIS_URL or ISSUER meant for something else).
  env -i PATH="$PATH" HOME="${HOME:-/}" RUST_LOG=info LOG_FORMAT=text \
    SIGNING_ALGORITHM="$algorithm" "$@" "$binary" >"$log" 2>&1 &
  server_pid=$!
  local ca=
  [ "$scheme" = http ] || ca="$pki/ca.pem"
  wait_healthy "$log" "$ca" || fail "the server did not come up for the $name run"

  step "$name: pytest"
  local run_status=0
  env -u AUTHLIB_INSECURE_TRANSPORT -u OAUTHLIB_INSECURE_TRANSPORT \
    NO_PROXY="localhost,127.0.0.1" no_proxy="localhost,127.0.0.1" \
    PYTHONDONTWRITEBYTECODE=1 INTEROP_SIGNING_ALGORITHM="$algorithm" INTEROP_SCHEME="$scheme" \
    REQUESTS_CA_BUNDLE="${ca:-${REQUESTS_CA_BUNDLE:-}}" \
    "$venv/bin/python" -m pytest -p no:cacheprovider --rootdir "$here" -q "$here" "${pytest_args[@]}" \
    || run_status=$?
  stop_server
  if [ "$run_status" -ne 0 ]; then
    echo "interop: failures in the $name run; the server's log: $log" >&2
    status=$run_status
    summary+=("$name: FAILED ($run_status)")
  else
    summary+=("$name: passed")
  fi
}

pytest_args=("$@")
for algorithm in $algorithms; do
  run_suite "$algorithm" http "$algorithm"
done
# Over HTTPS on every hop, with the default algorithm (TLS does not depend on it).
[ "${INTEROP_TLS:-1}" = 0 ] || run_suite "EdDSA-https" https EdDSA "${tls_env[@]}"

step "summary"
printf '  %s\n' "${summary[@]}"
exit "$status"
