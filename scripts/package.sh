#!/usr/bin/env bash
# `cargo package` of every library crate, verified: each crate's packaged sources (what
# crates.io would get) build on their own. The crates that depend on other workspace
# crates not yet on crates.io (engineio-hyper on engineio-proto, the bindings on both)
# are packaged in one command: cargo (1.90 and later) then resolves those dependencies
# from the crates it just packaged. Packaging them one by one fails until their
# dependencies are published; publishing goes in the same order (`cargo publish` with
# the same -p list, or crate by crate from engineio-proto up).
#
# The verification builds in its own target directory (target/package-check), so that it
# can run beside other cargo commands without waiting for their lock.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="$PWD/target/package-check"
crates=(engineio-proto engineio-hyper engineio-tokio engineio-smol engineio-actix engineio-cluster engineio-redis)
args=()
for c in "${crates[@]}"; do args+=(-p "$c"); done
# cargo unpacks the crates it just packaged into $CARGO_HOME/registry/src/-<hash>/ (one
# folder per temporary registry path) and reuses a copy already there for the same name
# and version: after a change to engineio-proto, the verification of engineio-hyper would
# build against the sources of an earlier run. Those copies (only ours, only under the
# temporary registries, whose folder names start with "-") are removed first.
for c in "${crates[@]}"; do
    rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/"$c"-[0-9]*
done
# --allow-dirty: the test command also runs on uncommitted work trees.
cargo package --locked --allow-dirty "${args[@]}"
for c in "${crates[@]}"; do
    ls -l "$CARGO_TARGET_DIR/package/$c-"*.crate
done
