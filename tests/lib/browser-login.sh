# The front channel, proved with real user agents: `curl -L` with a cookie jar, and Debian's
# headless chromium. Sourced by scripts/browser-proof.sh (the embedded default) and
# scripts/compose-e2e.sh (compose); both set `fail` before sourcing.
#   login_with_curl WEBAPP [CURL_OPTION...]      curl follows exactly two redirects to the JSON
#   login_with_chromium WEBAPP [CA_PEM [SHOT]]   chromium ends on the answer page; loading the same
#                                                callback URL again shows the refusal page;
#                                                CA_PEM is trusted as a CA; SHOT gets a screenshot

# WEBAPP must be the host of the registered redirect URI (http://localhost:8080): the login cookie
# is set for the host the login starts on, and the callback comes back to the redirect URI's.

# need_program COMMAND: under CI a missing program fails the suite; elsewhere it is skipped, said
# loudly.
need_program() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "${CI:-}" = true ]; then fail "$1 is required (CI installs it: see .ci/run)"; fi
  printf '\nSKIPPED: %s is not installed; the browser login proof did not run\n\n' "$1" >&2
  return 1
}

# expect_answer BODY USER ENDPOINT: the resource server's JSON for USER and ENDPOINT.
expect_answer() {
  python3 - "$@" <<'PY' || fail "not the answer for $2: $1"
import json, sys
body, user, endpoint = sys.argv[1:4]
d = json.loads(body)
assert set(d) == {endpoint, "user"} and d["user"] == user
PY
}

login_with_curl() {
  local webapp=$1; shift
  local jar out redirects status
  jar=$(mktemp)
  out=$(curl -sL -m 20 -c "$jar" -b "$jar" "$@" -w '\n%{num_redirects} %{http_code}' \
    "$webapp/login/epoch_time?user=alice") || fail "curl -L failed"
  rm -f "$jar"
  read -r redirects status <<<"${out##*$'\n'}"
  out=${out%$'\n'*}
  [ "$status" = 200 ] || fail "curl -L ended with $status: $out"
  [ "$redirects" = 2 ] || fail "curl -L followed $redirects redirects, not 2 (to /authorize, back to /callback)"
  expect_answer "$out" alice epoch_time
  echo "curl -L: 2 redirects, then $out"
}

login_with_chromium() {
  local webapp=$1 ca=${2:-} shot=${3:-}
  need_program chromium || return 0
  local home page callback
  home=$(mktemp -d)
  if [ -n "$ca" ]; then
    need_program certutil || { rm -rf "$home"; return 0; }
    mkdir -p "$home/.pki/nssdb"
    certutil -d "sql:$home/.pki/nssdb" -N --empty-password
    certutil -d "sql:$home/.pki/nssdb" -A -n oauth-time-development-ca -t C,, -i "$ca"
  fi
  # One profile for both loads, so the second is the same browser (its cookies, or their absence).
  chrome() {
    HOME=$home timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run \
      --user-data-dir="$home/profile" "$@" 2>>"$home/chromium.log"
  }
  page=$(chrome --log-net-log="$home/net.json" --dump-dom "$webapp/login/epoch_time?user=alice") \
    || fail "chromium failed: $(tail -5 "$home/chromium.log")"
  [[ $page == *"<h1>epoch_time for alice</h1>"* ]] || fail "chromium did not end on the answer: $page"
  [[ $page == *'"user":"alice"'* ]] || fail "chromium's page holds no answer for alice: $page"
  callback=$(grep -o '"url":"[^"]*/callback?code=[^"]*"' "$home/net.json" | head -1 | sed 's/^"url":"//; s/"$//')
  [ -n "$callback" ] || fail "no callback URL in chromium's network log"
  echo "chromium: the login ended on the answer page (came back to ${callback%%\?*})"
  page=$(chrome --dump-dom "$callback") || fail "chromium failed on the callback again"
  [[ $page == *"<h1>Login refused</h1>"* && $page == *"unknown or expired state"* ]] \
    || fail "the callback URL loaded twice was not refused: $page"
  echo "chromium: the same callback URL loaded again is refused (unknown or expired state)"
  if [ -n "$shot" ]; then
    chrome --window-size=800,420 --hide-scrollbars --screenshot="$shot" \
      "$webapp/login/current_time?user=bob" >/dev/null || fail "no screenshot"
    echo "chromium: screenshot of a login's page in $shot"
  fi
  rm -rf "$home"
}
