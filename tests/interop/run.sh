#!/usr/bin/env bash
# Interop suite: Authlib, requests-oauthlib and PyJWT (pinned, from PyPI, in target/interop-venv)
# drive and check the embedded default (target/release/oauth-time on 127.0.0.1:8080-8082).
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
binary=target/release/oauth-time
algorithms=${INTEROP_ALGORITHMS:-EdDSA ES256 RS256}
ports=(8080 8081 8082)

step() { printf '\n==> interop: %s\n' "$*"; }
fail() { printf 'interop: %s\n' "$*" >&2; exit 1; }

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
  printf 'interop: port(s) %s on 127.0.0.1 already in use; the suite starts its own server there.\n' \
    "${busy[*]}" >&2
  printf 'interop: stop whatever listens there (e.g. a `cargo run` or `docker compose up`) and retry.\n' >&2
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
"$venv/bin/python" -m pip freeze --disable-pip-version-check | grep -iE '^(authlib|pyjwt|requests-oauthlib|oauthlib|cryptography|pytest)=='

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
            sys.exit(f"interop: the server (pid {pid}) exited during start-up; its log follows")
        try:
            with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"interop: 127.0.0.1:{port}/healthz did not answer within 30 s; the log follows")
        time.sleep(0.05)
EOF
}

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
