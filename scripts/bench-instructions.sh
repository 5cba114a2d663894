#!/usr/bin/env bash
# User-space instructions per operation of each service, counted by valgrind's callgrind: the
# same for the same binaries and inputs whatever else the machine is doing, so a change can be
# judged on a shared machine where timings swing by ±20 %. Kernel work (the TCP hops) is not
# counted; docs/performance.md says how to read the figures.
#
#   scripts/bench-instructions.sh [full|ceiling|floor] [BIN_DIR]
#
# Starts the three service binaries of BIN_DIR (default target/release, built by
# `cargo build --release --workspace --bins`) under callgrind on loopback ports 18180-18182,
# drives them with the bench (BIN_DIR's, else `target/release/bench`; target mode, concurrency 1, no warm-up),
# once with N1 and once with N2 operations, and prints (instructions(N2) - instructions(N1)) / (N2 - N1) per service: the
# start-up cost cancels out. `full`: full user calls through the webapp (all three services);
# `ceiling`: `GET /healthz` of the webapp; `floor`: both, then the floor of docs/performance.md
# (four ceiling requests, the signature `keys::Signer::sign` of the authorization server and the
# verification `VerifyingKey::verifies` of the resource server, read from the full calls' profiles
# with callgrind_annotate) and the full call's ratio to it. Needs valgrind (apt-get install
# valgrind) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-full}
bin_dir=${2:-target/release}
case "$mode" in
  full | ceiling | floor) ;;
  *) echo "usage: $0 [full|ceiling|floor] [BIN_DIR]" >&2; exit 2 ;;
esac
for tool in valgrind callgrind_annotate curl; do
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

# Total instructions of each service over a run of $2 operations of point $1, one line per
# service, in $out/counts-$2.
run() {
  local points=$1 ops=$2
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

# Instructions per operation of each service between runs of $2 and $3 operations of point $1,
# printed, and their sum in $per_call.
measure() {
  local points=$1 n1=$2 n2=$3 first second i per_op
  echo "callgrind, $points, $bin_dir: $n1 then $n2 operations at concurrency 1 ..."
  run "$points" "$n1"
  run "$points" "$n2"
  mapfile -t first <"$out/counts-$n1"
  mapfile -t second <"$out/counts-$n2"
  per_call=0
  for i in "${!services[@]}"; do
    per_op=$(((second[i] - first[i]) / (n2 - n1)))
    per_service[${services[i]}]=$per_op
    per_call=$((per_call + per_op))
    printf '%-22s %12d instructions per operation\n' "${services[i]}" "$per_op"
  done
  printf '%-22s %12d\n' "all three" "$per_call"
}

# Inclusive instructions per operation of the function $2 (exact name) in service $1, between
# the runs of $3 and $4 operations.
function_per_op() {
  local service=$1 name=$2 n1=$3 n2=$4 counts=()
  for ops in "$n1" "$n2"; do
    counts+=("$(callgrind_annotate --inclusive=yes --threshold=100 "$out/$service-$ops.out" 2>/dev/null |
      awk -v name="???:$name [" 'index($0, name) { gsub(",", "", $1); print $1; exit }')")
  done
  [[ -n ${counts[0]} && -n ${counts[1]} ]] ||
    { echo "$0: $name not found in the profile of $service" >&2; exit 1; }
  echo $(((counts[1] - counts[0]) / (n2 - n1)))
}

declare -A per_service
case "$mode" in
  full) measure full 100 400 ;;
  ceiling) measure ceiling 300 1200 ;;
  floor)
    measure full 100 400
    full=$per_call
    declare -A full_of
    for service in "${services[@]}"; do full_of[$service]=${per_service[$service]}; done
    sign=$(function_per_op authorization-server authorization_server::keys::Signer::sign 100 400)
    verify=$(function_per_op resource-server resource_server::verifying_key::VerifyingKey::verifies 100 400)
    measure ceiling 300 1200
    ceiling=${per_service[webapp]}
    floor=$((4 * ceiling + sign + verify))
    echo
    printf 'floor: 4 x %d (ceiling) + %d (signature) + %d (verification) = %d\n' \
      "$ceiling" "$sign" "$verify" "$floor"
    printf 'full call / floor: %d / %d = %s (target <= 1.25)\n' "$full" "$floor" \
      "$(awk -v a="$full" -v b="$floor" 'BEGIN { printf "%.3f", a / b }')"
    printf 'beyond the floor: %d (webapp %d, authorization server %d, resource server %d); 1.25 x allows %d\n' \
      "$((full - floor))" "$((${full_of[webapp]} - ceiling))" \
      "$((${full_of[authorization-server]} - 2 * ceiling - sign))" \
      "$((${full_of[resource-server]} - ceiling - verify))" "$((floor / 4))"
    ;;
esac
