#!/usr/bin/env bash
# The hostile-load proof (docs/security.md): starts the embedded default (the static release build) with
# a fresh signing-key directory and runs `attack all` against it (crates/attack): junk client
# authentications, an /authorize flood, slow connections and a key rotation, each from 127.0.0.2
# while a legitimate loop calls the webapp from 127.0.0.1. Prints the figures as a markdown table
# (and writes them to target/attack-proof.json); fails, with the server's log, when a bound breaks.
#
#   bash scripts/attack-proof.sh [ATTACK-ALL-OPTIONS...]   # e.g. --flood-seconds 10
#
# About three minutes. ATTACK_QUICK=1 runs a short version for local work (10 s flood without the
# wait for the codes' expiry, 20,000 junk requests, 500 slow connections). Needs python3 and
# openssl.
set -euo pipefail
cd "$(dirname "$0")/.."

suite=attack-proof
# shellcheck source=tests/lib/embedded-default.sh
source tests/lib/embedded-default.sh

attack="$(dirname "$binary")/attack"
log=target/attack-proof-server.log
json=target/attack-proof.json
[ -x "$attack" ] || fail "$attack was not built"
command -v openssl >/dev/null 2>&1 || fail "openssl is needed for the signing key (apt-get install openssl)"

# 2,000 slow connections cost a descriptor each on both ends.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 8192 ]; then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
echo "open files allowed: $(ulimit -n)"

step "a fresh signing-key directory (docs/scaling.md): one Ed25519 key, named in ACTIVE"
keys=$(mktemp -d)
trap 'stop_server; rm -rf "$keys"' EXIT
(umask 077 && openssl genpkey -algorithm ed25519 -out "$keys/first.pem")
printf 'first.pem\n' >"$keys/ACTIVE"

step "start $binary"
# Nothing from the caller's environment (a REDIS_URL or ISSUER meant for something else); warnings
# and errors only: an INFO line per request of the flood would write hundreds of MB.
env -i PATH="$PATH" HOME="${HOME:-/}" SIGNING_KEYS_DIR="$keys" RUST_LOG=warn "$binary" >"$log" 2>&1 &
server_pid=$!
wait_healthy "$log" || fail "the server did not come up"

quick=()
if [ "${ATTACK_QUICK:-}" = 1 ]; then
  quick=(--flood-seconds 10 --no-expiry-wait --junk-count 20000 --slow-connections 500)
fi
step "attack all ${quick[*]} $*"
started=$SECONDS
status=0
"$attack" --pid "$server_pid" --json "$json" all --keys-dir "$keys" "${quick[@]}" "$@" || status=$?
echo "attack ran for $((SECONDS - started)) s; figures in $json"
if [ "$status" -ne 0 ]; then
  printf '\n%s: the last lines of the server log (%s):\n' "$suite" "$log" >&2
  if [ -s "$log" ]; then tail -n 40 "$log" >&2; else echo "(empty: no warning nor error)" >&2; fi
  fail "FAILED: a bound of the hostile-load proof broke (attack exited $status)"
fi
echo "$suite: every bound held"
