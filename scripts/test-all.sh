#!/usr/bin/env bash
# The whole test suite, as the README gives it and as CI runs it.
#
#   scripts/test-all.sh
#
# Stages: formatting, clippy (warnings are errors; also with every feature, and without
# the metrics feature the test build turns on), rustdoc (warnings are errors), the
# workspace's unit, property and integration tests, doctests, Autobahn
# WebSocket conformance (kosoku from PyPI: our server and client, with and without
# permessage-deflate), the reliability suite (hostile
# and broken clients against both bindings, docs/reliability.md), a bounded fuzz run of every
# fuzz target, the interop matrix against the real peers (Node engine.io and
# engine.io-client, python-engineio, Chromium), the eio command-line tool against those
# peers and behind nginx, the cluster (redis-server, nginx, HAProxy, three nodes, every
# client through the balancers), the guide as an mdBook (warnings as errors) and
# `cargo package` of every library crate. Everything it needs is installed by the stages
# themselves (cargo-fuzz, mdbook; npm and pip packages into local folders; Debian's
# chromium, nginx, redis-server, haproxy). It prints a summary table and exits non-zero
# if any stage failed.
#
# The fuzz, book and package stages build their own tools and targets; they run in the
# background (at the lowest CPU priority) while the reliability, interop, CLI and cluster
# stages (mostly waiting on peers, sockets and timers) run, and report after them, with
# their own run times.
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

metrics_off() {
    local crates=(-p engineio-proto -p engineio-hyper -p engineio-tokio -p engineio-smol)
    cargo clippy "${crates[@]}" --all-targets -- -D warnings &&
        cargo test "${crates[@]}" --lib
}

# The reliability suite holds 1,000 slowloris and 500 frozen connections at once: the suite
# and the server it starts need a few thousand descriptors each, so the soft limit is raised
# to the hard one (in a subshell: the rest of the run keeps its limits). It uses the debug
# build that the test stage made (a release build costs more time than it saves).
run_reliability() (
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
        echo "the reliability suite needs 4096 file descriptors; ulimit -n allows $(ulimit -n)" >&2
        return 1
    fi
    cargo build -p engineio-tests --bins &&
        "${CARGO_TARGET_DIR:-target}/debug/reliability"
)

stage "cargo fmt --check" cargo fmt --all -- --check
stage "cargo clippy -D warnings" cargo clippy --workspace --all-targets -- -D warnings
stage "cargo clippy --all-features" cargo clippy --workspace --all-targets --all-features -- -D warnings
# The tests crate turns the metrics feature on, and a workspace build unifies features:
# the build without it (the default for users) is checked on its own.
stage "without the metrics feature (clippy, unit tests)" metrics_off
stage "cargo doc -D warnings" env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
stage "tests (unit, property, integration)" run_tests
stage "doctests (crates, README, docs/ pages)" cargo test --workspace --doc
# Before the background stages: kosoku's cases have timeouts of their own, and this stage
# is CPU-bound (about 1.5 minutes on 2 cores).
stage "Autobahn WebSocket conformance (server, client, with and without deflate)" scripts/autobahn.sh
# Background stages: their output goes to target/stage-logs/NAME.log. They run at the
# lowest CPU priority, so that the timing-sensitive stages in the foreground keep theirs.
declare -A bg_pids
background() {
    local name="$1"
    shift
    mkdir -p target/stage-logs
    (
        local start=$SECONDS
        nice -n 19 "$@" >"target/stage-logs/$name.log" 2>&1
        echo "$? $((SECONDS - start))" >"target/stage-logs/$name.rc"
    ) &
    bg_pids[$name]=$!
}
join_background() {
    local name="$1" label="$2"
    wait "${bg_pids[$name]}"
    echo
    echo "================ $label (ran in the background)"
    cat "target/stage-logs/$name.log"
    local rc took
    read -r rc took <"target/stage-logs/$name.rc"
    if [ "$rc" -eq 0 ]; then results+=("ok"); else results+=("FAILED"); failed=1; fi
    names+=("$label")
    times+=("${took}s")
}
# The fuzz smoke run, the book and the packaging use the CPU the foreground stages leave
# (those mostly wait on peers, timers and sockets): on 2 cores this saves their whole time.
background fuzz scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-30}"
background book scripts/book.sh
background package scripts/package.sh

stage "reliability suite (both bindings)" run_reliability
stage "interop with Node, python-engineio, Chromium" scripts/interop.sh
stage "eio CLI: connect, doctor (nginx setups), bench" scripts/cli.sh
stage "cluster: Redis, nginx, HAProxy, three nodes" scripts/cluster.sh
join_background fuzz "fuzz targets (build + ${FUZZ_SECONDS:-30}s each)"
join_background book "mdBook (docs/, warnings as errors)"
join_background package "cargo package (library crates)"

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
