#!/usr/bin/env bash
# The front channel with real user agents, against the embedded default (the static release
# build): `curl -L` with a cookie jar follows /login/epoch_time to the authorization server and back
# to /callback (exactly two redirects) and ends on the JSON answer; Debian's headless chromium
# ends on the answer page, and loading the same callback URL again shows the refusal.
#
#   bash scripts/browser-proof.sh [SCREENSHOT.png]
#
# Needs python3, curl and chromium (apt-get install chromium): without chromium its half is
# skipped, said loudly, except under CI=true, where it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

suite=browser-proof
# shellcheck source=tests/lib/embedded-default.sh
source tests/lib/embedded-default.sh
# shellcheck source=tests/lib/browser-login.sh
source tests/lib/browser-login.sh

log=target/browser-proof-server.log
step "start $binary"
env -i PATH="$PATH" HOME="${HOME:-/}" "$binary" >"$log" 2>&1 &
server_pid=$!
wait_healthy "$log" || fail "the server did not come up"

# The host of the registered redirect URI (http://localhost:8080/callback), where the cookie goes.
webapp=http://localhost:8080
step "curl -L -c jar -b jar $webapp/login/epoch_time?user=alice"
login_with_curl "$webapp"
step "headless chromium: $webapp/login/epoch_time?user=alice, then the same callback URL again"
login_with_chromium "$webapp" "" "${1:-}"
echo "$suite: passed"
