#!/usr/bin/env bash
# Makes the Redis secrets of compose.scale.yaml in DIR: `password` (random, 32 bytes, hex) and
# `acl` (the default user off; one user `oauth` with that password), both owned by uid 65534, the
# containers' user, and private to it. Run as root (or with sudo) for the chown.
# Usage: redis-secrets.sh DIR
set -euo pipefail
dir=${1:?usage: $0 DIR}
mkdir -p "$dir"
password=$(openssl rand -hex 32)
(umask 077
 printf '%s\n' "$password" >"$dir/password"
 printf 'user default off\nuser oauth on >%s ~* +@all\n' "$password" >"$dir/acl")
chmod 0400 "$dir/password" "$dir/acl"
chown 65534:65534 "$dir/password" "$dir/acl"
