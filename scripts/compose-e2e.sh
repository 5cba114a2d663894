#!/usr/bin/env bash
# End-to-end check of the docker compose stack, from the host: builds the static binaries and the
# images (host-binary targets: no registry needed), starts the stack under a unique project name,
# and checks the flow, token expiry and fault recovery. Always tears the stack down.
# Where no Docker engine answers it says so and exits 0: nothing was tested then.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
  echo "compose-e2e: no Docker engine answers here: the container checks were NOT run."
  exit 0
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
cleanup() { dc down -v --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT

for port in 8080 8081 8082; do
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
  printf '%-22s %6.1f MB\n' "$service" "$(echo "$size / 1000000" | bc -l)"
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
echo "up to healthy: $(( $(now_ms) - started )) ms"

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# get URL -> sets status and body
get() { body=$(curl -s -m 10 -o /dev/stdout -w '\n%{http_code}' "$@") || true; status=${body##*$'\n'}; body=${body%$'\n'*}; }

echo "== the flow through the webapp"
for user in alice bob; do
  get "http://127.0.0.1:8080/epoch_time?user=$user"
  [ "$status" = 200 ] || fail "epoch_time for $user: $status $body"
  [ "$(json_field user <<<"$body")" = "$user" ] || fail "epoch_time user: $body"
  epoch=$(json_field epoch_time <<<"$body")
  [ $(( epoch - $(date +%s) )) -le 2 ] && [ $(( $(date +%s) - epoch )) -le 2 ] || fail "epoch_time is off: $body"
  get "http://127.0.0.1:8080/current_time?user=$user"
  [ "$status" = 200 ] || fail "current_time for $user: $status $body"
  [ "$(json_field user <<<"$body")" = "$user" ] || fail "current_time user: $body"
  echo "$user: ok ($body)"
done

echo "== a token used after its 5 seconds"
verifier=$(openssl rand -base64 48 | tr '+/' '-_' | tr -d '=\n')
challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '=')
location=$(curl -s -o /dev/null -w '%{redirect_url}' -G "http://127.0.0.1:8081/authorize" \
  --data-urlencode response_type=code --data-urlencode client_id=1234 \
  --data-urlencode redirect_uri=http://localhost:8080/callback --data-urlencode scope=epoch_time \
  --data-urlencode resource=http://localhost:8082/epoch_time --data-urlencode state=e2e \
  --data-urlencode code_challenge="$challenge" --data-urlencode code_challenge_method=S256 \
  --data-urlencode login_hint=alice)
code=$(python3 -c 'import sys,urllib.parse as u; print(u.parse_qs(u.urlsplit(sys.argv[1]).query)["code"][0])' "$location") \
  || fail "no code in the redirect: $location"
token_response=$(curl -s -u 1234:qwerty http://127.0.0.1:8081/token \
  --data-urlencode grant_type=authorization_code --data-urlencode code="$code" \
  --data-urlencode redirect_uri=http://localhost:8080/callback --data-urlencode code_verifier="$verifier")
token=$(json_field access_token <<<"$token_response") || fail "no token: $token_response"
get -H "Authorization: Bearer $token" "http://127.0.0.1:8082/epoch_time?user=alice"
[ "$status" = 200 ] || fail "a fresh token was refused: $status $body"
sleep 6
get -H "Authorization: Bearer $token" "http://127.0.0.1:8082/epoch_time?user=alice"
[ "$status" = 401 ] || fail "a 6-second-old token was not refused: $status $body"
echo "fresh token: 200, after 6 s: 401"

echo "== resource server stopped"
dc stop resource-server >/dev/null 2>&1
t0=$(now_ms)
get "http://127.0.0.1:8080/epoch_time?user=alice"
elapsed=$(( $(now_ms) - t0 ))
[ "$status" = 503 ] || fail "with the resource server stopped: $status $body (expected 503)"
[ "$(json_field step <<<"$body")" = resource ] || fail "503 without step=resource: $body"
[ "$elapsed" -le 3500 ] || fail "the 503 took $elapsed ms"
echo "503 in $elapsed ms: $body"
dc start resource-server >/dev/null 2>&1
wait_healthy 30 resource-server
get "http://127.0.0.1:8080/epoch_time?user=alice"
[ "$status" = 200 ] || fail "after the resource server came back: $status $body"
echo "back: 200"

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
kid_before=$(curl -s http://127.0.0.1:8081/.well-known/jwks.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0]["kid"])')
dc restart authorization-server >/dev/null 2>&1
wait_healthy 30 authorization-server
kid_after=$(curl -s http://127.0.0.1:8081/.well-known/jwks.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0]["kid"])')
[ "$kid_before" != "$kid_after" ] || fail "the restarted authorization server kept its key"
retry_until_200 10 "after the authorization server restart"

echo "== webapp and resource server start while the authorization server is down"
dc stop authorization-server >/dev/null 2>&1
dc restart webapp resource-server >/dev/null 2>&1
wait_healthy 30 webapp resource-server
get "http://127.0.0.1:8080/epoch_time?user=alice"
[ "$status" = 503 ] || fail "with the authorization server down: $status $body (expected 503)"
[ "$(json_field step <<<"$body")" = authorize ] || fail "503 without step=authorize: $body"
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
