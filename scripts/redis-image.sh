#!/usr/bin/env bash
# Builds a Redis image FROM scratch out of the host's own redis-server and redis-cli (the scaled
# check probes Redis from inside the network with it) and their shared libraries, for machines
# with no container registry (the official image cannot be pulled there).
# Usage: redis-image.sh TAG
set -euo pipefail
tag=${1:?usage: $0 TAG}
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/rootfs/usr/bin"
for program in redis-server redis-cli; do
  binary=$(command -v "$program") || { echo "redis-image: $program is not installed" >&2; exit 1; }
  cp -L "$binary" "$context/rootfs/usr/bin/$program"
  ldd "$binary" | grep -o '/[^ ]*' | while read -r library; do
    mkdir -p "$context/rootfs$(dirname "$library")"
    cp -L "$library" "$context/rootfs$library"
  done
done
cat >"$context/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
USER 65534:65534
ENV PATH=/usr/bin
DOCKERFILE
docker build -q -t "$tag" "$context" >/dev/null
echo "$tag"
