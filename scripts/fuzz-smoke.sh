#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for a bounded time on its seed corpus.
#
#   scripts/fuzz-smoke.sh [SECONDS_PER_TARGET]     (default 30)
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer); with only a stable toolchain,
# RUSTC_BOOTSTRAP=1 lets stable rustc accept them. cargo-fuzz itself is installed with
# `cargo install` if it is missing. Corpora grow in a temporary directory, never in the tree.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-30}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (cargo install --locked cargo-fuzz@0.13.2)"
    cargo install --locked cargo-fuzz@0.13.2
fi
export RUSTC_BOOTSTRAP=1
echo "== building fuzz targets"
cargo fuzz build
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in $(cargo fuzz list); do
    mkdir -p "$work/$target"
    if [ -d "seeds/$target" ]; then cp seeds/"$target"/* "$work/$target/"; fi
    echo "== fuzzing $target for ${secs}s"
    cargo fuzz run "$target" "$work/$target" -- -max_total_time="$secs" -timeout=10 2>&1 |
        grep -E '^(Done|INFO: seed corpus)|panicked|SUMMARY|ERROR' || true
    # cargo fuzz exits non-zero on a crash; pipefail would lose that through grep, so
    # check for artifacts explicitly.
    if compgen -G "artifacts/$target/*" >/dev/null; then
        echo "fuzz target $target found a failing input: see fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
