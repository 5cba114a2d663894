#!/usr/bin/env bash
# End-to-end check of the scaled topology (compose.yaml + compose.scale.yaml): Redis (TLS, one ACL
# user), two authorization-server replicas sharing it and a key directory, the webapp and resource server in
# front. Checks that both replicas serve and share codes, that calls flow, that a key rotation
# under load fails no call, and that losing a replica or Redis is survived. The Redis image is
# built from the host's redis-server (no registry here).
# Fails where Docker or redis-server is missing, unless SKIP_COMPOSE_E2E=1 says to skip knowingly.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${SKIP_COMPOSE_E2E:-}" = 1 ]; then
  echo "compose-scale-e2e: SKIPPED (SKIP_COMPOSE_E2E=1): the scaled topology was NOT checked."; exit 0
fi
if ! docker info >/dev/null 2>&1; then
  echo "compose-scale-e2e: no Docker engine answers here (SKIP_COMPOSE_E2E=1 skips this check)" >&2; exit 1
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "compose-scale-e2e: redis-server is not installed (the Redis image is built from it):" \
    "apt-get install redis-server (SKIP_COMPOSE_E2E=1 skips this check)" >&2; exit 1
fi
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi

project="oauth-scale-$$"
keys=$(mktemp -d)
export BINARIES=host AUTHORIZATION_SERVER_PORTS=8081-8089 SIGNING_KEYS_HOST_DIR=$keys
export REDIS_IMAGE=oauth-time/redis:host
dc() { "${compose[@]}" -p "$project" -f compose.yaml -f compose.scale.yaml "$@"; }
fail() { echo "compose-scale-e2e: FAILED: $*" >&2; dc logs --no-color --tail 30 >&2 || true; exit 1; }
secrets=$(mktemp -d)
export REDIS_SECRETS_DIR=$secrets
cleanup() { dc down -v --remove-orphans >/dev/null 2>&1 || true; rm -rf "$keys" "$secrets" "${ca:-}"; }
trap cleanup EXIT

openssl genpkey -algorithm ed25519 -out "$keys/first.pem"   # mode 0600
# The containers read the keys as uid 65534, and refuse a key others can read: the directory and
# the keys belong to 65534, private (rotate-signing-key.sh gives new keys the same owner and mode).
chown -R 65534:65534 "$keys"
chmod 0400 "$keys/first.pem"
# Redis speaks TLS only and lets in one ACL user, whose password the replicas read from a secret.
bash scripts/redis-secrets.sh "$secrets"
bash scripts/redis-image.sh "$REDIS_IMAGE" >/dev/null
[ -x target/x86_64-unknown-linux-gnu/release/webapp ] || bash scripts/build-static.sh
dc build --quiet
dc up -d --scale authorization-server=2
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}running{{end}}' "$1"; }
deadline=$((SECONDS + 60))
for id in $(dc ps -q redis authorization-server resource-server webapp); do
  until [ "$(health "$id")" = healthy ] || [ "$(health "$id")" = running ]; do
    [ $SECONDS -lt $deadline ] || fail "container $id not healthy"; sleep 0.2
  done
done
echo "== Redis: TLS only, and nothing without the password"
redis_id=$(dc ps -q redis)
rcli() { docker exec "$redis_id" redis-cli -h redis -p 6379 "$@" 2>&1 || true; }
answer=$(rcli PING)
[[ $answer != *PONG* && $answer != *NOAUTH* ]] || fail "Redis answered a clear-text PING: $answer"
answer=$(rcli --tls --cacert /certs/ca.pem PING)
[[ $answer == *NOAUTH* ]] || fail "Redis over TLS without a password: $answer (expected NOAUTH)"
answer=$(rcli --tls --cacert /certs/ca.pem --user oauth --pass wrong --no-auth-warning PING)
[[ $answer == *WRONGPASS* ]] || fail "Redis with a wrong password: $answer (expected WRONGPASS)"
echo "clear text: no answer; TLS without a password: NOAUTH; a wrong password: WRONGPASS"
replicas=($(dc ps -q authorization-server))
[ ${#replicas[@]} -eq 2 ] || fail "expected 2 authorization-server replicas, got ${#replicas[@]}"

call() { curl -s -o /dev/null -w '%{http_code}' -m 10 "http://127.0.0.1:8080/epoch_time?user=$1"; }
# the host port of each replica, in the order of `replicas`
replica_port() { docker port "$1" 8081/tcp | head -n 1 | cut -d: -f2; }
ports=("$(replica_port "${replicas[0]}")" "$(replica_port "${replicas[1]}")")
# replica_url INDEX(0|1) PATH: a URL of one replica, through its own host port (TLS, with the
# development CA of the certs volume)
replica_url() { echo "https://127.0.0.1:${ports[$1]}$2"; }
ca=$(mktemp)
docker cp "${replicas[0]}:/certs/ca.pem" "$ca" >/dev/null || fail "no ca.pem in the certs volume"
curl() { command curl --cacert "$ca" "$@"; }

echo "== both replicas serve, and share the codes (through Redis)"
verifier=$(openssl rand -base64 48 | tr '+/' '-_' | tr -d '=\n')
challenge=$(printf '%s' "$verifier" | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '=')
# code_at INDEX: an authorization code issued by that replica
code_at() {
  curl -s -o /dev/null -w '%{redirect_url}' -G "$(replica_url "$1" /authorize)" \
    --data-urlencode response_type=code --data-urlencode client_id=1234 \
    --data-urlencode redirect_uri=https://localhost:8443/callback --data-urlencode scope=epoch_time \
    --data-urlencode state=scale --data-urlencode code_challenge="$challenge" \
    --data-urlencode code_challenge_method=S256 --data-urlencode login_hint=alice |
    python3 -c 'import sys, urllib.parse as u; print(u.parse_qs(u.urlsplit(sys.stdin.read()).query)["code"][0])'
}
# redeem_at INDEX CODE: the status of the token request at that replica
redeem_at() {
  curl -s -o /dev/null -w '%{http_code}' -u 1234:qwerty "$(replica_url "$1" /token)" \
    --data-urlencode grant_type=authorization_code --data-urlencode code="$2" \
    --data-urlencode redirect_uri=https://localhost:8443/callback --data-urlencode code_verifier="$verifier"
}
for from in 0 1; do
  to=$((1 - from))
  code=$(code_at "$from") || fail "replica $from issued no code"
  status=$(redeem_at "$to" "$code"); [ "$status" = 200 ] || fail "a code of replica $from redeemed at replica $to: $status"
  status=$(redeem_at "$from" "$code"); [ "$status" = 400 ] || fail "the same code replayed at replica $from: $status (expected 400)"
  echo "a code issued by replica $from: redeemed at replica $to (200), replayed at replica $from (400)"
done

# tokens_issued INDEX: access tokens that replica has issued (its /metrics, on the metrics port
# that only the compose network reaches)
tokens_issued() {
  local ip
  ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "${replicas[$1]}")
  curl -s --resolve "authorization-server:9090:$ip" "https://authorization-server:9090/metrics" |
    awk '/^oauth_access_tokens_issued_total/ { sum += $2 } END { print sum + 0 }'
}
echo "== 40 calls through the webapp"
before=$(( $(tokens_issued 0) + $(tokens_issued 1) ))
for i in $(seq 40); do
  status=$(call "user$i"); [ "$status" = 200 ] || fail "call $i: $status"
done
served=("$(tokens_issued 0)" "$(tokens_issued 1)")
echo "tokens issued: replica 0 ${served[0]}, replica 1 ${served[1]} (one each by hand above)"
[ $(( served[0] + served[1] - before )) -eq 40 ] || fail "the replicas issued $(( served[0] + served[1] - before )) tokens for 40 calls"
busiest=${replicas[0]}
[ "${served[1]}" -le "${served[0]}" ] || busiest=${replicas[1]}
active_kids() {  # the active kid (first in the JWKS) at each replica, one line each
  for index in 0 1; do
    curl -s "$(replica_url "$index" /.well-known/jwks.json)" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0]["kid"])' || echo "?"
  done
}
# agreed_kid: the one active kid both replicas publish, or a failure
agreed_kid() {
  local kids; kids=($(active_kids))
  [ "${#kids[@]}" -eq 2 ] && [ "${kids[0]}" != "?" ] && [ "${kids[0]}" = "${kids[1]}" ] ||
    fail "the replicas do not publish one active key: ${kids[*]:-none}"
  echo "${kids[0]}"
}
kid_before=$(agreed_kid)

echo "== key rotation under load (two replicas, one key directory)"
failures=$(mktemp)
( while [ ! -f "$keys/.stop" ]; do s=$(call load); [ "$s" = 200 ] || echo "$s" >>"$failures"; done ) &
load=$!
PUBLISH_WAIT=4 RETIRE_WAIT=8 bash scripts/rotate-signing-key.sh "$keys" rotate
touch "$keys/.stop"; wait $load
[ ! -s "$failures" ] || fail "$(wc -l <"$failures") calls failed during the rotation: $(sort "$failures" | uniq -c | tr '\n' ' ')"
kid_after=$(agreed_kid)
[ "$kid_after" != "$kid_before" ] || fail "the active key did not change"
echo "rotation: no failed call; active kid ${kid_before:0:12}… -> ${kid_after:0:12}… on both replicas"

echo "== the replica that served the calls stopped"
docker stop "$busiest" >/dev/null
# A replica stopped gracefully closes its idle connections, and Docker's DNS stops naming it:
# no call may fail.
ok=0
for i in $(seq 20); do [ "$(call "after$i")" = 200 ] && ok=$((ok + 1)); done
echo "$ok of 20 calls succeeded right after losing a replica"
[ "$ok" -eq 20 ] || fail "$((20 - ok)) of 20 calls failed after a replica stopped"

echo "== Redis stopped and started"
dc stop redis >/dev/null 2>&1
status=$(call redisdown); [ "$status" = 502 ] || [ "$status" = 503 ] || fail "with Redis down: $status"
body=$(curl -s "http://127.0.0.1:8080/epoch_time?user=redisdown")
echo "with Redis down: $status $body"
dc start redis >/dev/null 2>&1
deadline=$((SECONDS + 20))
until [ "$(call back)" = 200 ]; do [ $SECONDS -lt $deadline ] || fail "no recovery after Redis"; sleep 0.3; done
echo "after Redis is back: 200"
echo "compose-scale-e2e: all checks passed"
