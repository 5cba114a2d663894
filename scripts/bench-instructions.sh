#!/usr/bin/env bash
# User-space instructions per operation of each service, counted by valgrind's callgrind: the
# same for the same binaries and inputs whatever else the machine is doing, so a change can be
# judged on a shared machine where timings swing by ±20 %. Kernel work (the TCP hops) is not
# counted; docs/performance.md says how to read the figures.
#
#   scripts/bench-instructions.sh [full|ceiling] [BIN_DIR]
#
# Starts the three service binaries of BIN_DIR (default target/release, built by
# `cargo build --release --workspace --bins`) under callgrind on loopback ports 18180-18182,
# drives them with the bench (BIN_DIR's, else `target/release/bench`; target mode, concurrency 1, no warm-up),
# once with N1 and once with N2 operations, and prints (instructions(N2) - instructions(N1)) / (N2 - N1) per service: the
# start-up cost cancels out. `full`: full user calls through the webapp (all three services);
# `ceiling`: `GET /healthz` of the webapp. Needs valgrind (apt-get install valgrind) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

points=${1:-full}
bin_dir=${2:-target/release}
case "$points" in
  full) n1=100 n2=400 ;;
  ceiling) n1=300 n2=1200 ;;
  *) echo "usage: $0 [full|ceiling] [BIN_DIR]" >&2; exit 2 ;;
esac
for tool in valgrind curl; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is not installed" >&2; exit 1; }
done
bench=$bin_dir/bench
[[ -x $bench ]] || bench=target/release/bench
for binary in "$bin_dir"/{authorization-server,resource-server,webapp} "$bench"; do
  [[ -x $binary ]] || { echo "$0: $binary not found: cargo build --release --workspace --bins" >&2; exit 1; }
done
services=(authorization-server resource-server webapp)
webapp=127.0.0.1:18180 authorization_server=127.0.0.1:18181 resource_server=127.0.0.1:18182
for address in $webapp $authorization_server $resource_server; do
  if curl -s -o /dev/null "http://$address/"; then
    echo "$0: something already listens on $address" >&2
    exit 1
  fi
done
out=$(mktemp -d)
pids=()
stop() {
  if ((${#pids[@]})); then kill -TERM "${pids[@]}" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  pids=()
}
trap 'stop; rm -rf "$out"' EXIT

# Total instructions of each service over a run of $1 operations, one line per service, in
# $out/counts-$1.
run() {
  local ops=$1
  for service in "${services[@]}"; do
    env -i WEBAPP_LISTEN_ADDR=$webapp AUTHORIZATION_SERVER_LISTEN_ADDR=$authorization_server \
      RESOURCE_SERVER_LISTEN_ADDR=$resource_server \
      ISSUER=http://$authorization_server AUTHORIZATION_SERVER_URL=http://$authorization_server \
      RESOURCE_SERVER_PUBLIC_URL=http://$resource_server RESOURCE_SERVER_URL=http://$resource_server \
      SIGNING_ALGORITHM=EdDSA \
      valgrind --tool=callgrind --callgrind-out-file="$out/$service-$ops.out" \
      "$bin_dir/$service" >/dev/null 2>"$out/$service-$ops.err" &
    pids+=($!)
  done
  for address in $webapp $authorization_server $resource_server; do
    for _ in $(seq 300); do
      curl -sf "http://$address/healthz" >/dev/null && break
      sleep 0.1
    done
  done
  "$bench" --no-build --webapp "http://$webapp" \
    --authorization-server "http://$authorization_server" --resource-server "http://$resource_server" \
    --points "$points" --concurrency 1 --rounds 1 --max-ops "$ops" --warmup 0 --duration 600 \
    --json "$out/bench-$ops.json" >"$out/bench-$ops.log" 2>&1 ||
    { cat "$out/bench-$ops.log" >&2; exit 1; }
  # SIGTERM: a graceful stop, so callgrind writes its counts.
  stop
  for service in "${services[@]}"; do
    awk '/^summary:/ { print $2 }' "$out/$service-$ops.out"
  done >"$out/counts-$ops"
}

echo "callgrind, $points, $bin_dir: $n1 then $n2 operations at concurrency 1 ..."
run $n1
run $n2
mapfile -t first <"$out/counts-$n1"
mapfile -t second <"$out/counts-$n2"
total=0
for i in "${!services[@]}"; do
  per_op=$(((second[i] - first[i]) / (n2 - n1)))
  total=$((total + per_op))
  printf '%-22s %12d instructions per operation\n' "${services[i]}" "$per_op"
done
printf '%-22s %12d\n' "all three" "$total"
