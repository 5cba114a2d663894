#!/usr/bin/env bash
# End-to-end check of the scaled topology (compose.yaml + compose.scale.yaml): Redis, two
# authorization-server replicas sharing it and a key directory, the webapp and resource server in
# front. Checks that calls flow and that both replicas serve, that a key rotation under load fails
# no call, and that losing a replica or Redis is survived. The Redis image is built from the
# host's redis-server (no registry here). Exits 0 with a plain message where Docker or
# redis-server is missing: nothing was tested then.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
  echo "compose-scale-e2e: no Docker engine answers here: NOT run."; exit 0
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "compose-scale-e2e: redis-server is not installed (the Redis image is built from it): NOT run."; exit 0
fi
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi

project="oauth-scale-$$"
keys=$(mktemp -d)
export BINARIES=host AUTHORIZATION_SERVER_PORTS=8081-8089 SIGNING_KEYS_HOST_DIR=$keys
export REDIS_IMAGE=oauth-time/redis:host
dc() { "${compose[@]}" -p "$project" -f compose.yaml -f compose.scale.yaml "$@"; }
fail() { echo "compose-scale-e2e: FAILED: $*" >&2; dc logs --no-color --tail 30 >&2 || true; exit 1; }
cleanup() { dc down -v --remove-orphans >/dev/null 2>&1 || true; rm -rf "$keys"; }
trap cleanup EXIT

openssl genpkey -algorithm ed25519 -out "$keys/first.pem"
# the containers read the keys as uid 65534; rotate-signing-key.sh keeps new keys alike
chmod -R a+rX "$keys"
bash scripts/redis-image.sh "$REDIS_IMAGE" >/dev/null
[ -x target/x86_64-unknown-linux-gnu/release/webapp ] || bash scripts/build-static.sh
dc build --quiet
dc up -d --scale authorization-server=2
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}running{{end}}' "$1"; }
deadline=$((SECONDS + 60))
for id in $(dc ps -q); do
  until [ "$(health "$id")" = healthy ] || [ "$(health "$id")" = running ]; do
    [ $SECONDS -lt $deadline ] || fail "container $id not healthy"; sleep 0.2
  done
done
replicas=($(dc ps -q authorization-server))
[ ${#replicas[@]} -eq 2 ] || fail "expected 2 authorization-server replicas, got ${#replicas[@]}"

call() { curl -s -o /dev/null -w '%{http_code}' -m 10 "http://127.0.0.1:8080/epoch_time?user=$1"; }
echo "== 40 calls through two replicas"
for i in $(seq 40); do
  status=$(call "user$i"); [ "$status" = 200 ] || fail "call $i: $status"
done
busiest=${replicas[0]} most=-1
for id in "${replicas[@]}"; do
  served=$(docker logs "$id" 2>&1 | grep -c '"access token issued"' || true)
  echo "replica ${id:0:12}: $served tokens issued"
  [ "$served" -le "$most" ] || { most=$served busiest=$id; }
done
active_kids() {  # the active kid (first in the JWKS) at each replica, through its own host port
  for index in 1 2; do
    port=$(dc port --index="$index" authorization-server 8081 | cut -d: -f2)
    curl -s "http://127.0.0.1:$port/.well-known/jwks.json" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["keys"][0]["kid"])'
  done | sort -u
}
kid_before=$(active_kids)
[ "$(wc -l <<<"$kid_before")" = 1 ] || fail "the replicas publish different active keys: $kid_before"

echo "== key rotation under load (two replicas, one key directory)"
failures=$(mktemp)
( while [ ! -f "$keys/.stop" ]; do s=$(call load); [ "$s" = 200 ] || echo "$s" >>"$failures"; done ) &
load=$!
PUBLISH_WAIT=4 RETIRE_WAIT=8 bash scripts/rotate-signing-key.sh "$keys" rotate
touch "$keys/.stop"; wait $load
[ ! -s "$failures" ] || fail "$(wc -l <"$failures") calls failed during the rotation: $(sort "$failures" | uniq -c | tr '\n' ' ')"
kid_after=$(active_kids)
[ "$(wc -l <<<"$kid_after")" = 1 ] || fail "after rotation the replicas disagree: $kid_after"
[ "$kid_after" != "$kid_before" ] || fail "the active key did not change"
echo "rotation: no failed call; active kid ${kid_before:0:12}… -> ${kid_after:0:12}… on both replicas"

echo "== the replica that served the calls stopped"
docker stop "$busiest" >/dev/null
ok=0
for i in $(seq 20); do [ "$(call "after$i")" = 200 ] && ok=$((ok + 1)); done
echo "$ok of 20 calls succeeded right after losing a replica"
[ "$(call final)" = 200 ] || fail "calls do not recover with one replica left"

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
