#!/usr/bin/env bash
# The authorization server alone, measured by wrk instead of the bench: authorize + token pairs a
# second at 64 connections (scripts/wrk-pairs.lua), and the server's CPU per pair, user and
# kernel, from /proc. Fails if any answer was not a code or a token.
#
#   scripts/wrk-pairs.sh [BIN_DIR] [SECONDS]
#
# BIN_DIR holds `authorization-server` (default: the static build of scripts/build-static.sh).
# Needs wrk (apt-get install wrk) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=${1:-target/x86_64-unknown-linux-gnu/release}
seconds=${2:-8}
address=127.0.0.1:18191
for tool in wrk curl; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is not installed" >&2; exit 1; }
done
if curl -s -o /dev/null "http://$address/"; then
  echo "$0: something already listens on $address" >&2
  exit 1
fi
# One address asks for every code: the per-address rate limit would refuse most of them.
env -i AUTHORIZATION_SERVER_LISTEN_ADDR=$address AUTHORIZE_RATE_PER_SECOND=1000000 \
  "$bin_dir/authorization-server" >/dev/null 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; wait 2>/dev/null || true' EXIT
healthy=
for _ in $(seq 100); do
  curl -sf "http://$address/healthz" >/dev/null && { healthy=1; break; }
  sleep 0.1
done
[ -n "$healthy" ] || { echo "$0: the authorization server did not start on $address" >&2; exit 1; }

# utime and stime of the server, in clock ticks
cpu() { awk '{ print $14, $15 }' "/proc/$server/stat"; }
read -r user_before kernel_before < <(cpu)
report=$(wrk -t2 -c64 -d"${seconds}s" -s scripts/wrk-pairs.lua "http://$address")
read -r user_after kernel_after < <(cpu)
echo "$report"
if grep -q FAILED <<<"$report"; then
  exit 1
fi
tokens=$(sed -nE 's/.*tokens ([0-9]+),.*/\1/p' <<<"$report")
((tokens > 0)) || { echo "$0: no token was issued" >&2; exit 1; }
ticks=$(getconf CLK_TCK)
awk -v u=$((user_after - user_before)) -v k=$((kernel_after - kernel_before)) -v t="$tokens" \
  -v hz="$ticks" 'BEGIN {
    printf "authorization server CPU per pair: %.1f us user + %.1f us kernel = %.1f us\n",
      u / hz / t * 1e6, k / hz / t * 1e6, (u + k) / hz / t * 1e6 }'
