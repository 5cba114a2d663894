#!/usr/bin/env bash
# Builds a Redis image FROM scratch out of the host's own redis-server and its shared libraries,
# for machines with no container registry (the official image cannot be pulled there).
# Usage: redis-image.sh TAG
set -euo pipefail
tag=${1:?usage: $0 TAG}
binary=$(command -v redis-server) || { echo "redis-image: redis-server is not installed" >&2; exit 1; }
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/rootfs/usr/bin"
cp -L "$binary" "$context/rootfs/usr/bin/redis-server"
ldd "$binary" | grep -o '/[^ ]*' | while read -r library; do
  mkdir -p "$context/rootfs$(dirname "$library")"
  cp -L "$library" "$context/rootfs$library"
done
cat >"$context/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
USER 65534:65534
ENV PATH=/usr/bin
DOCKERFILE
docker build -q -t "$tag" "$context" >/dev/null
echo "$tag"
