#!/usr/bin/env bash
# Builds the three service binaries fully static (glibc linked in) for the FROM-scratch images:
# target/x86_64-unknown-linux-gnu/release/{webapp,authorization-server,resource-server}.
# `--target` keeps +crt-static away from build scripts and proc macros, which must stay dynamic.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --locked --target "$target" \
  -p webapp -p authorization-server -p resource-server
for binary in webapp authorization-server resource-server; do
  path="target/$target/release/$binary"
  # static: no shared library needed and no program interpreter (ld.so) requested
  if readelf -d "$path" | grep -q NEEDED || readelf -l "$path" | grep -q INTERP; then
    echo "build-static: $path is not static:" >&2
    readelf -d "$path" | grep NEEDED >&2 || true
    readelf -l "$path" | grep -A1 INTERP >&2 || true
    exit 1
  fi
  echo "$path: $(du -h "$path" | cut -f1), static"
done
