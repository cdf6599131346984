#!/usr/bin/env bash
# The whole test suite, as the README gives it and as CI runs it.
#
#   scripts/test-all.sh
#
# Stages: formatting, clippy (warnings are errors), rustdoc (warnings are errors), the
# workspace's unit, property and integration tests, doctests, a bounded fuzz run of every
# fuzz target, the interop matrix against the real peers (Node engine.io and
# engine.io-client, python-engineio, Chromium), the eio command-line tool against those
# peers and behind nginx, and the cluster (redis-server, nginx, HAProxy, three nodes,
# every client through the balancers). Everything it needs is installed by the stages
# themselves (cargo-fuzz; npm and pip packages into local folders; Debian's chromium,
# nginx, redis-server, haproxy). It prints a summary table and exits non-zero if any
# stage failed.
#
# Environment: FUZZ_SECONDS (per fuzz target, default 30).
set -uo pipefail
cd "$(dirname "$0")/.."

declare -a names results times
failed=0

stage() {
    local name="$1"
    shift
    echo
    echo "================ $name"
    local start=$SECONDS
    if "$@"; then
        results+=("ok")
    else
        results+=("FAILED")
        failed=1
    fi
    names+=("$name")
    times+=("$((SECONDS - start))s")
}

run_tests() {
    if command -v cargo-nextest >/dev/null 2>&1; then
        cargo nextest run --workspace --all-targets --no-fail-fast
    else
        cargo test --workspace --all-targets --no-fail-fast
    fi
}

stage "cargo fmt --check" cargo fmt --all -- --check
stage "cargo clippy -D warnings" cargo clippy --workspace --all-targets -- -D warnings
stage "cargo doc -D warnings" env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
stage "tests (unit, property, integration)" run_tests
stage "doctests" cargo test --workspace --doc
stage "fuzz targets (build + ${FUZZ_SECONDS:-30}s each)" scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-30}"
stage "interop with Node, python-engineio, Chromium" scripts/interop.sh
stage "eio CLI: connect, doctor (nginx setups), bench" scripts/cli.sh
stage "cluster: Redis, nginx, HAProxy, three nodes" scripts/cluster.sh

echo
echo "================ summary"
for i in "${!names[@]}"; do
    printf '%-45s %-7s %s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
done
if [ "$failed" -ne 0 ]; then
    echo "SOME STAGES FAILED"
    exit 1
fi
echo "ALL STAGES PASSED"
