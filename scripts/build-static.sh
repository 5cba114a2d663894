#!/usr/bin/env bash
# The one release build: every binary of the workspace (the three services, the embedded default
# `oauth-time`, the bench) fully static (glibc linked in), in
# target/x86_64-unknown-linux-gnu/release/. The FROM-scratch images, the interop and Schemathesis
# suites and the bench smoke run in CI all use these binaries, so nothing is compiled twice.
# `--target` keeps +crt-static away from build scripts and proc macros, which must stay dynamic.
# Needs readelf (Debian's binutils) for the check that each binary really is static.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
command -v readelf >/dev/null 2>&1 || {
  echo "build-static: readelf is needed to check the binaries (apt-get install binutils)" >&2
  exit 1
}
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --locked --target "$target" --workspace --bins
for binary in webapp authorization-server resource-server oauth-time bench; do
  path="target/$target/release/$binary"
  [ -x "$path" ] || { echo "build-static: $path was not built" >&2; exit 1; }
  # static: no shared library needed and no program interpreter (ld.so) requested
  dynamic=$(readelf -d "$path") || { echo "build-static: readelf cannot read $path" >&2; exit 1; }
  headers=$(readelf -l "$path") || { echo "build-static: readelf cannot read $path" >&2; exit 1; }
  if grep -q NEEDED <<<"$dynamic" || grep -q INTERP <<<"$headers"; then
    echo "build-static: $path is not static:" >&2
    grep NEEDED <<<"$dynamic" >&2 || true
    grep -A1 INTERP <<<"$headers" >&2 || true
    exit 1
  fi
  echo "$path: $(du -h "$path" | cut -f1), static"
done
