#!/usr/bin/env bash
# Rotates the authorization server's signing key in a key directory (SIGNING_KEYS_DIR) without a
# failed call. Every replica must mount the same directory; each reloads it within
# SIGNING_KEYS_RELOAD_SECONDS (or at once on SIGHUP).
#
#   rotate-signing-key.sh DIR publish        # add a new key: published in the JWKS, not signing yet
#   rotate-signing-key.sh DIR activate NAME  # sign with NAME (it must be published already)
#   rotate-signing-key.sh DIR retire NAME    # stop publishing NAME (never the active key), then
#                                            # wait until no resource server trusts it
#   rotate-signing-key.sh DIR rotate         # all three, with the waits in between
#
# The waits (seconds, override by environment):
#   PUBLISH_WAIT (default 5): every replica has reloaded (SIGNING_KEYS_RELOAD_SECONDS, 1) and every
#     resource server may refetch the JWKS on the new kid (JWKS_REFETCH_INTERVAL_SECONDS, 2);
#   RETIRE_WAIT (default 10): the last token signed with the old key has expired (5 s) and every
#     replica has switched (1 s), with margin;
#   RETIREMENT_WAIT (default 10, after `retire`): every replica has reloaded
#     (SIGNING_KEYS_RELOAD_SECONDS, 1), then every resource server's copy of the JWKS has expired
#     (JWKS_MAX_AGE_SECONDS, 5) and been refetched (JWKS_REFETCH_INTERVAL_SECONDS, 2), plus 2 s of
#     margin; computed from those three variables when they are set here.
# SIGNING_ALGORITHM (EdDSA, ES256, RS256; default EdDSA) chooses the type of the new key.
set -euo pipefail

die() { echo "rotate-signing-key: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: $0 DIR publish|activate NAME|retire NAME|rotate"
dir=$1 command=$2
[ -d "$dir" ] || die "$dir is not a directory"

generate_key() {
  case "${SIGNING_ALGORITHM:-EdDSA}" in
    EdDSA) openssl genpkey -algorithm ed25519 ;;
    ES256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 ;;
    RS256) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 ;;
    *) die "unknown SIGNING_ALGORITHM ${SIGNING_ALGORITHM}" ;;
  esac
}

# Write beside, then rename: a server reloading at that instant never reads half a file. The new
# file gets the owner and mode of the current active key (a container may read it as another
# user); private by default.
write_atomically() {
  local temporary="$dir/.$1.tmp" reference
  (umask 077 && cat >"$temporary")
  reference="$dir/$(active_key 2>/dev/null || true)"
  if [ -f "$reference" ]; then
    chmod --reference="$reference" "$temporary"
    chown --reference="$reference" "$temporary" 2>/dev/null || true
  fi
  mv -f "$temporary" "$dir/$1"
}

active_key() {
  if [ -f "$dir/ACTIVE" ]; then
    tr -d '[:space:]' <"$dir/ACTIVE"
    return
  fi
  local keys=("$dir"/*.pem)
  [ ${#keys[@]} -eq 1 ] && [ -f "${keys[0]}" ] || die "no ACTIVE file and not exactly one key"
  basename "${keys[0]}"
}

publish() {
  # Name the current key explicitly first: with two keys the server needs ACTIVE.
  active_key | write_atomically ACTIVE
  local name
  name="key-$(date -u +%Y%m%dT%H%M%SZ)-$$-$RANDOM.pem"
  generate_key | write_atomically "$name"
  echo "$name"
}

activate() {
  [ -f "$dir/$1" ] || die "$1 is not in $dir"
  printf '%s\n' "$1" | write_atomically ACTIVE
}

retire() {
  [ "$(active_key)" != "$1" ] || die "$1 is the active key"
  rm -- "$dir/$1"
  local reload=${SIGNING_KEYS_RELOAD_SECONDS:-1} max_age=${JWKS_MAX_AGE_SECONDS:-5}
  local refetch=${JWKS_REFETCH_INTERVAL_SECONDS:-2} margin=2 wait why
  if [ -n "${RETIREMENT_WAIT:-}" ]; then
    wait=$RETIREMENT_WAIT why="RETIREMENT_WAIT"
  else
    wait=$((reload + max_age + refetch + margin))
    why="reload ${reload}s + JWKS max-age ${max_age}s + refetch interval ${refetch}s + margin ${margin}s"
  fi
  echo "retired $1; waiting ${wait}s until no resource server trusts it ($why)"
  sleep "$wait"
  echo "$1 is no longer trusted by any resource server that can reach the JWKS"
}

case "$command" in
  publish) publish ;;
  activate) activate "${3:?activate NAME}" ;;
  retire) retire "${3:?retire NAME}" ;;
  rotate)
    old=$(active_key)
    new=$(publish)
    echo "published $new; waiting ${PUBLISH_WAIT:-5}s before signing with it"
    sleep "${PUBLISH_WAIT:-5}"
    activate "$new"
    echo "signing with $new; waiting ${RETIRE_WAIT:-10}s before retiring $old"
    sleep "${RETIRE_WAIT:-10}"
    retire "$old"
    ;;
  *) die "unknown command $command" ;;
esac
