#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time and fails on any crash, timeout or
# out-of-memory. See docs/fuzzing.md.
#
#   FUZZ_SECONDS   time per target (default 60)
#   FUZZ_TARGETS   space-separated targets (default: all of `cargo fuzz list`)
#
# cargo fuzz needs nightly-only flags (-Zsanitizer=address); on a stable toolchain
# RUSTC_BOOTSTRAP=1 makes rustc accept them. The build lives in fuzz/target, apart from the
# workspace's target/. What libFuzzer finds goes to fuzz/corpus/<target>/ (git-ignored but for
# the seed-* files); a crashing input to fuzz/artifacts/<target>/.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

cd fuzz
targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"

start=$SECONDS
cargo fuzz build
echo "fuzz-smoke: built in $((SECONDS - start)) s"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=()
summary=()
for target in $targets; do
    log="$logs/$target.log"
    mkdir -p "corpus/$target"
    echo "fuzz-smoke: $target for ${seconds} s"
    status=0
    # -timeout: an input taking over 10 s is a bug (a hang) and fails the run like a crash.
    cargo fuzz run "$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    corpus="$(grep -Eo 'corp: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)"
    line="$target: ${runs:-?} executions (${speed:-?}/s), corpus ${corpus:-?}"
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        line="$line: FAILED (exit $status)"
        echo "----- $target: last lines of the libFuzzer log -----" >&2
        tail -n 60 "$log" >&2
        echo "----- the input is in fuzz/artifacts/$target/ -----" >&2
    fi
    echo "fuzz-smoke: $line"
    summary+=("$line")
done

echo "fuzz-smoke: summary (total $((SECONDS - start)) s)"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz-smoke: FAILED: ${failed[*]} (reproduce: see docs/fuzzing.md)" >&2
    exit 1
fi
