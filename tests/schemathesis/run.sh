#!/usr/bin/env bash
# API fuzzing: Schemathesis (pinned, from PyPI, in target/schemathesis-venv) reads each service's
# /openapi.json from the embedded default (target/release/oauth-time on 127.0.0.1:8080-8082) and
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
binary=target/release/oauth-time
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-300}
ports=(8080 8081 8082)
services=${SCHEMATHESIS_SERVICES:-8081 8082 8080}
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance

step() { printf '\n==> schemathesis: %s\n' "$*"; }
fail() { printf 'schemathesis: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null 2>&1 || fail "python3 (3.9 or newer) is required"

step "ports ${ports[*]} must be free"
busy=()
for port in "${ports[@]}"; do
  # Binding (with SO_REUSEADDR, as the server does) fails only if something listens there.
  if ! python3 - "$port" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
  then busy+=("$port"); fi
done
if [ "${#busy[@]}" -gt 0 ]; then
  printf 'schemathesis: port(s) %s on 127.0.0.1 already in use; the run starts its own server there.\n' \
    "${busy[*]}" >&2
  printf 'schemathesis: stop whatever listens there (e.g. a `cargo run` or `docker compose up`) and retry.\n' >&2
  if command -v ss >/dev/null 2>&1; then
    ss -ltnp 2>/dev/null | grep -E ":($(IFS='|'; echo "${busy[*]}"))\b" >&2 || true
  fi
  exit 1
fi

step "virtualenv $venv (pinned packages from $here/requirements.txt)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
wanted=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
  "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$here/requirements.txt"
  echo "$wanted" >"$stamp"
fi
"$venv/bin/python" -m pip freeze --disable-pip-version-check | grep -iE '^(schemathesis|hypothesis)=='

step "cargo build --release"
cargo build --release
[ -x "$binary" ] || fail "$binary was not built"

server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT
trap 'stop_server; exit 143' TERM

wait_healthy() {  # wait_healthy LOG: all three /healthz answer 200 within 30 s, or fail
  "$venv/bin/python" - "$server_pid" "${ports[@]}" <<'EOF' || { cat "$1" >&2; return 1; }
import os, sys, time, urllib.request
pid, ports = int(sys.argv[1]), sys.argv[2:]
deadline = time.monotonic() + 30
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
for port in ports:
    while True:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(f"schemathesis: the server (pid {pid}) exited during start-up; its log follows")
        try:
            with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"schemathesis: 127.0.0.1:{port}/healthz did not answer within 30 s; the log follows")
        time.sleep(0.05)
EOF
}

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
