# Shared by the suites that drive the embedded default (oauth-time on 127.0.0.1:8080-8082, from the
# one static release build of scripts/build-static.sh): the Python ones (tests/interop,
# tests/schemathesis) and scripts/attack-proof.sh. The free-port check, the virtualenv of pinned
# packages, the build, the server's start, health wait and stop.
# Sourced from the repository root by a script that sets, before sourcing:
#   suite           the name in messages
#   here            the suite's folder (with requirements.txt); unset: no virtualenv
#   venv            the virtualenv's folder (with here)
#   shown_packages  a regex of the packages whose versions are printed (with here)
# and then uses step, fail, stop_server and wait_healthy LOG with server_pid set.

binary=target/x86_64-unknown-linux-gnu/release/oauth-time
ports=(8080 8081 8082)

step() { printf '\n==> %s: %s\n' "$suite" "$*"; }
fail() { printf '%s: %s\n' "$suite" "$*" >&2; exit 1; }

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
  printf '%s: port(s) %s on 127.0.0.1 already in use; the suite starts its own server there.\n' \
    "$suite" "${busy[*]}" >&2
  printf '%s: stop whatever listens there (e.g. a `cargo run` or `docker compose up`) and retry.\n' "$suite" >&2
  if command -v ss >/dev/null 2>&1; then
    ss -ltnp 2>/dev/null | grep -E ":($(IFS='|'; echo "${busy[*]}"))\b" >&2 || true
  fi
  exit 1
fi

python=python3
if [ -n "${here:-}" ]; then
  python="$venv/bin/python"
  step "virtualenv $venv (pinned packages from $here/requirements.txt)"
  # shellcheck source=tests/lib/venv.sh
  source tests/lib/venv.sh
  make_venv "$here" "$venv"
  "$python" -m pip freeze --disable-pip-version-check | grep -iE "^($shown_packages)=="
fi

step "the static release build (scripts/build-static.sh; nothing to do when it is current)"
bash scripts/build-static.sh >/dev/null
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

# wait_healthy LOG [CA_FILE]: all three /healthz answer 200 within 30 s, or fail; over HTTPS,
# trusting CA_FILE, when one is given.
wait_healthy() {
  "$python" - "$suite" "$server_pid" "${2:-}" "${ports[@]}" <<'EOF' || { cat "$1" >&2; return 1; }
import os, ssl, sys, time, urllib.request
suite, pid, ca_file, ports = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
deadline = time.monotonic() + 30
scheme = "https" if ca_file else "http"
handlers = [urllib.request.ProxyHandler({})]
if ca_file:
    handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_file)))
opener = urllib.request.build_opener(*handlers)
for port in ports:
    while True:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(f"{suite}: the server (pid {pid}) exited during start-up; its log follows")
        try:
            with opener.open(f"{scheme}://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"{suite}: 127.0.0.1:{port}/healthz did not answer within 30 s; the log follows")
        time.sleep(0.05)
EOF
}

