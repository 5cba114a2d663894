#!/usr/bin/env bash
# End-to-end check of the docker compose stack, from the host: builds the static binaries and the
# images (host-binary targets: no registry needed), starts the stack under a unique project name,
# and checks the flow, TLS on every hop (a capture of the compose network holds no secret), the
# containers' hardening, a login through curl -L and through headless chromium, token expiry and
# fault recovery. Always tears the stack down.
# Needs curl, openssl, python3, tcpdump (for the capture), chromium and certutil (libnss3-tools;
# without them the browser's half is skipped, said loudly, except under CI=true).
# Fails where no Docker engine answers, unless SKIP_COMPOSE_E2E=1 says to skip knowingly.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${SKIP_COMPOSE_E2E:-}" = 1 ]; then
  echo "compose-e2e: SKIPPED (SKIP_COMPOSE_E2E=1): the container checks were NOT run."
  exit 0
fi
if ! docker info >/dev/null 2>&1; then
  echo "compose-e2e: no Docker engine answers here (SKIP_COMPOSE_E2E=1 skips this check)" >&2
  exit 1
fi
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "compose-e2e: neither 'docker compose' nor 'docker-compose' is installed" >&2
  exit 1
fi

project="oauth-e2e-$$"
export BINARIES=host
dc() { "${compose[@]}" -p "$project" "$@"; }
fail() {
  echo "compose-e2e: FAILED: $*" >&2
  dc logs --no-color --tail 40 >&2 || true
  exit 1
}
work=$(mktemp -d)
cleanup() {
  [ -z "${capture_pid:-}" ] || kill "$capture_pid" 2>/dev/null || true
  dc down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # so that the EXIT trap tears the stack down on Ctrl-C too

command -v tcpdump >/dev/null 2>&1 || fail "tcpdump is needed for the capture (apt-get install tcpdump)"
# shellcheck source=tests/lib/browser-login.sh
source tests/lib/browser-login.sh
for port in 8080 8081 8082 8443; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "port $port is already in use on 127.0.0.1 (is the embedded default running?)"
  fi
done

echo "== static binaries"
bash scripts/build-static.sh

echo "== images"
dc build --quiet
for service in webapp authorization-server resource-server; do
  size=$(docker image inspect -f '{{.Size}}' "oauth-time/$service:host")
  awk -v s="$service" -v b="$size" 'BEGIN { printf "image %-22s %5.1f MB\n", s, b / 1e6 }'
  [ "$size" -lt 20000000 ] || fail "image $service is $size bytes, over 20 MB"
done

container() { dc ps -q "$1"; }
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$(container "$1")" 2>/dev/null || echo missing; }
wait_healthy() {  # wait_healthy SECONDS SERVICE...
  local deadline=$((SECONDS + $1)); shift
  for service in "$@"; do
    until [ "$(health "$service")" = healthy ]; do
      [ $SECONDS -lt $deadline ] || fail "$service not healthy in time (status: $(health "$service"))"
      sleep 0.2
    done
  done
}
now_ms() { date +%s%3N; }

echo "== up"
started=$(now_ms)
dc up -d
wait_healthy 60 authorization-server resource-server webapp
awk -v ms="$(( $(now_ms) - started ))" 'BEGIN { printf "up to all three healthy: %.1f s\n", ms / 1000 }'

# The development CA the certs service made, as the README says to get it.
ca="$work/ca.pem"
docker cp "$(container webapp):/certs/ca.pem" "$ca" >/dev/null || fail "no ca.pem in the certs volume"
as=https://127.0.0.1:8081 rs=https://127.0.0.1:8082
tls=(--cacert "$ca")

echo "== hardening"
for service in webapp authorization-server resource-server; do
  settings=$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}} {{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.Config.User}}' "$(container "$service")")
  echo "$service: $settings"
  [[ $settings == "true [ALL] [no-new-privileges:true] "* ]] || fail "$service is not hardened: $settings"
  [[ $settings != *" 0 "* ]] || fail "$service has no memory or pids limit: $settings"
  [[ $settings == *" 65534:65534" ]] || fail "$service does not run as 65534: $settings"
done

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# check_body ENDPOINT USER BODY: exactly {"<endpoint>": <now>, "user": USER}, the time within 5 s
check_body() {
  python3 - "$@" <<'PY'
import datetime, json, sys, time
endpoint, user, body = sys.argv[1:4]
d = json.loads(body)
assert set(d) == {endpoint, "user"}, f"keys {sorted(d)}"
assert d["user"] == user, f"user {d['user']!r}"
v = d[endpoint]
if endpoint == "epoch_time":
    assert type(v) is int, f"epoch_time is not an integer: {v!r}"
    t = float(v)
else:
    assert isinstance(v, str) and (v.endswith("Z") or v.endswith("+00:00")), f"not RFC 3339 UTC: {v!r}"
    t = datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
assert abs(t - time.time()) <= 5, f"time off by {t - time.time():.1f} s"
PY
}
# check_error STATUS STEP BODY: a JSON error body {"error", "error_description", "step": STEP}
check_error() {
  python3 - "$@" <<'PY'
import json, sys
step, body = sys.argv[2:4]
d = json.loads(body)
assert isinstance(d.get("error"), str) and d["error"], "no error"
assert "error_description" in d, "no error_description"
assert d.get("step") == step, f"step {d.get('step')!r}"
PY
}
# get URL -> sets status and body
get() { body=$(curl -s -m 10 -o /dev/stdout -w '\n%{http_code}' "$@") || true; status=${body##*$'\n'}; body=${body%$'\n'*}; }

echo "== /metrics only on its own port, inside the network"
for service in webapp authorization-server resource-server; do
  id=$(container "$service")
  ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$id")
  status=$(curl -s "${tls[@]}" -o /dev/null -w '%{http_code}' --resolve "$service:9090:$ip" \
    "https://$service:9090/metrics") || true
  [ "$status" = 200 ] || fail "$service: /metrics on its metrics port answered $status"
done
for port in 8081 8082 8443; do
  status=$(curl -s "${tls[@]}" -o /dev/null -w '%{http_code}' "https://localhost:$port/metrics") || true
  [ "$status" = 404 ] || fail "/metrics on the published port $port answered $status (expected 404)"
done
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:8080/metrics") || true
[ "$status" = 404 ] || fail "/metrics on the published port 8080 answered $status (expected 404)"
if curl -s -m 2 -o /dev/null "http://127.0.0.1:9090/metrics"; then fail "the metrics port is published"; fi
echo "/metrics: 200 on each container's port 9090 (not published), 404 on 8080, 8081, 8082, 8443"

echo "== TLS on every hop: a capture of the compose network during full calls"
network=$(docker inspect -f '{{range $name, $_ := .NetworkSettings.Networks}}{{$name}}{{end}}' "$(container webapp)")
bridge="br-$(docker network inspect -f '{{.Id}}' "$network" | cut -c1-12)"
capture="$work/compose.pcap"
# --immediate-mode: each packet is written when it arrives, not in blocks that a stop would lose.
tcpdump -i "$bridge" --immediate-mode -U -s 0 -w "$capture" >"$work/tcpdump.log" 2>&1 &
capture_pid=$!
sleep 1   # tcpdump is listening once it has opened the interface
kill -0 "$capture_pid" 2>/dev/null || fail "tcpdump did not start: $(cat "$work/tcpdump.log")"
for user in alice bob; do
  for endpoint in epoch_time current_time; do
    get "http://127.0.0.1:8080/$endpoint?user=$user"
    [ "$status" = 200 ] || fail "webapp /$endpoint for $user: $status $body (expected 200)"
    check_body "$endpoint" "$user" "$body" || fail "webapp /$endpoint for $user: bad body $body"
    echo "webapp /$endpoint?user=$user: 200 $body"
  done
done
get "${tls[@]}" "https://localhost:8443/epoch_time?user=carol"
[ "$status" = 200 ] || fail "webapp over HTTPS on 8443: $status $body"
echo "webapp over HTTPS (8443): 200 $body"
sleep 0.5
kill "$capture_pid"; wait "$capture_pid" 2>/dev/null || true; capture_pid=
packets=$(tcpdump -r "$capture" 2>/dev/null | wc -l)
# Every full call is six exchanges on the network: enough packets prove the capture saw them.
[ "$packets" -ge 50 ] || fail "the capture holds $packets packets: it did not see the calls"
tls_packets=$(tcpdump -r "$capture" 'tcp port 8081 or tcp port 8082' 2>/dev/null | wc -l)
[ "$tls_packets" -ge 20 ] || fail "only $tls_packets packets to the servers' ports were captured"
text=$(tcpdump -r "$capture" -A 2>/dev/null)
for secret in qwerty MTIzNDpxd2VydHk eyJ code= code_verifier; do
  if grep -qF -- "$secret" <<<"$text"; then fail "'$secret' crossed the compose network in clear text"; fi
done
echo "capture: $packets packets ($tls_packets to the servers), none holds a secret"

echo "== clear text and strangers are refused"
if curl -s -m 5 -o /dev/null "http://127.0.0.1:8081/.well-known/jwks.json"; then
  fail "the authorization server answered plain HTTP on its TLS port"
fi
if curl -s -m 5 -o /dev/null "https://127.0.0.1:8081/.well-known/jwks.json"; then
  fail "a client without the development CA was not refused"
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other -days 1 \
  -keyout "$work/other-key.pem" -out "$work/other-ca.pem" 2>/dev/null
if curl -s -m 5 -o /dev/null --cacert "$work/other-ca.pem" "https://127.0.0.1:8081/.well-known/jwks.json"; then
  fail "a client trusting another CA was not refused"
fi
echo "plain HTTP to 8081: no answer; no CA or another CA: certificate refused"

echo "== a token used after its 5 seconds"
verifier=$(openssl rand -base64 48 | tr '+/' '-_' | tr -d '=\n')
challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '=')
location=$(curl -s "${tls[@]}" -o /dev/null -w '%{redirect_url}' -G "$as/authorize" \
  --data-urlencode response_type=code --data-urlencode client_id=1234 \
  --data-urlencode redirect_uri=https://localhost:8443/callback --data-urlencode scope=epoch_time \
  --data-urlencode resource=https://localhost:8082/epoch_time --data-urlencode state=e2e \
  --data-urlencode code_challenge="$challenge" --data-urlencode code_challenge_method=S256 \
  --data-urlencode login_hint=alice)
code=$(python3 - "$location" <<'PY'
import sys, urllib.parse as u
url = u.urlsplit(sys.argv[1])
q = u.parse_qs(url.query)
assert f"{url.scheme}://{url.netloc}{url.path}" == "https://localhost:8443/callback", url
assert q.get("state") == ["e2e"], f"state {q.get('state')}"
assert q.get("iss") == ["https://localhost:8081"], f"iss {q.get('iss')}"
print(q["code"][0])
PY
) || fail "authorization server /authorize: bad redirect: '$location'"
token_response=$(curl -s "${tls[@]}" -u 1234:qwerty "$as/token" \
  --data-urlencode grant_type=authorization_code --data-urlencode code="$code" \
  --data-urlencode redirect_uri=https://localhost:8443/callback --data-urlencode code_verifier="$verifier")
token=$(json_field access_token <<<"$token_response") || fail "authorization server /token: no token: $token_response"
get "${tls[@]}" -H "Authorization: Bearer $token" "$rs/epoch_time?user=alice"
[ "$status" = 200 ] || fail "resource server, fresh token: $status $body (expected 200)"
check_body epoch_time alice "$body" || fail "resource server, fresh token: bad body $body"
sleep 6
headers=$(curl -s "${tls[@]}" -m 10 -o /dev/null -D - -H "Authorization: Bearer $token" "$rs/epoch_time?user=alice" | tr -d '\r') || true
status=$(awk 'NR == 1 { print $2 }' <<<"$headers")
[ "$status" = 401 ] || fail "resource server, 6-second-old token: $status (expected 401)"
grep -qi '^www-authenticate: Bearer.*error="invalid_token"' <<<"$headers" \
  || fail "resource server, 6-second-old token: 401 without WWW-Authenticate error=\"invalid_token\": $headers"
echo "resource server: fresh token 200, the same token 6 s later 401 invalid_token"

echo "== the front channel: a login through curl -L and through a browser"
# The login starts on the host of the registered redirect URI (https://localhost:8443/callback),
# where the browser's cookie must come back; every hop of the trip is TLS, the development CA
# trusted.
login_with_curl https://localhost:8443 "${tls[@]}"
login_with_chromium https://localhost:8443 "$ca"

echo "== resource server stopped"
dc stop resource-server >/dev/null 2>&1
t0=$(now_ms)
get "http://127.0.0.1:8080/epoch_time?user=alice"
elapsed=$(( $(now_ms) - t0 ))
[ "$status" = 503 ] || fail "resource server stopped: webapp answered $status $body (expected 503) in $elapsed ms"
check_error 503 resource "$body" || fail "resource server stopped: bad 503 body $body"
[ "$elapsed" -le 3500 ] || fail "resource server stopped: the 503 took $elapsed ms (timeout 3000 ms)"
echo "503 in $elapsed ms: $body"
dc start resource-server >/dev/null 2>&1
wait_healthy 30 resource-server
get "http://127.0.0.1:8080/epoch_time?user=alice"
[ "$status" = 200 ] || fail "resource server started again: webapp answered $status $body (expected 200)"
echo "resource server started again: 200"

retry_until_200() {  # retry_until_200 SECONDS WHAT
  local deadline=$((SECONDS + $1)) t0; t0=$(now_ms)
  while :; do
    get "http://127.0.0.1:8080/epoch_time?user=alice"
    [ "$status" = 200 ] && break
    [ $SECONDS -lt $deadline ] || fail "$2: still $status $body after $1 s"
    sleep 0.2
  done
  echo "$2: 200 again after $(( $(now_ms) - t0 )) ms"
}

echo "== authorization server restarted (new signing key)"
started_at() { docker inspect -f '{{.Id}} {{.State.StartedAt}}' "$(container "$1")"; }
others_before="$(started_at webapp) $(started_at resource-server)"
kid_before=$(curl -s "${tls[@]}" "$as/.well-known/jwks.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0]["kid"])')
dc restart authorization-server >/dev/null 2>&1
wait_healthy 30 authorization-server
kid_after=$(curl -s "${tls[@]}" "$as/.well-known/jwks.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0]["kid"])')
[ "$kid_before" != "$kid_after" ] || fail "the restarted authorization server kept its key"
retry_until_200 10 "after the authorization server restart"
[ "$others_before" = "$(started_at webapp) $(started_at resource-server)" ] \
  || fail "the authorization server restart touched the webapp or the resource server"

echo "== webapp and resource server start while the authorization server is down"
dc stop authorization-server >/dev/null 2>&1
dc restart webapp resource-server >/dev/null 2>&1
wait_healthy 30 webapp resource-server
get "http://127.0.0.1:8080/epoch_time?user=alice"
[ "$status" = 503 ] || fail "authorization server down: webapp answered $status $body (expected 503)"
check_error 503 authorize "$body" || fail "authorization server down: bad 503 body $body"
dc start authorization-server >/dev/null 2>&1
wait_healthy 30 authorization-server
retry_until_200 10 "once the authorization server is up"

echo "== graceful stop (SIGTERM to PID 1)"
for service in webapp resource-server authorization-server; do
  id=$(container "$service")
  t0=$(now_ms)
  docker stop -t 10 "$id" >/dev/null
  elapsed=$(( $(now_ms) - t0 ))
  code=$(docker inspect -f '{{.State.ExitCode}}' "$id")
  echo "$service stopped in $elapsed ms, exit code $code"
  [ "$code" = 0 ] || fail "$service exited with $code on SIGTERM"
  [ "$elapsed" -lt 2000 ] || fail "$service took $elapsed ms to stop"
done

echo "compose-e2e: all checks passed"
