#!/usr/bin/env bash
# The interop matrix against the real peers (see tests/interop/README.md):
#   - our servers (tokio and smol bindings, and the mio example driving engineio-proto
#     alone) with Node engine.io-client, python-engineio's Client, Chromium running
#     engine.io-client in the demo page, and our own clients;
#   - our clients (tokio and smol, and the plain-loop example) with Node's engine.io
#     server and python-engineio's AsyncServer under uvicorn.
# Installs the peers first (npm and pip into local folders, Debian's chromium), builds our
# e2e server and client, and prints one matrix per run. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing the peers (tests/interop/install.sh, demo/install.sh)"
tests/interop/install.sh
demo/install.sh
echo "== building the e2e server and client, and the embedded examples"
cargo build -q -p engineio-tests --bins
cargo build -q -p engineio-embedded --bins
bin=target/debug
ex=target/debug
status=0

echo "== our servers x every client"
python3 tests/interop/run.py \
    --server "rust-tokio=$bin/e2e_server --runtime tokio --port {port}" --demo rust-tokio \
    --server "rust-smol=$bin/e2e_server --runtime smol --port {port}" --demo rust-smol \
    --server "rust-mio=$ex/mio_server --port {port}" --demo rust-mio \
    --client "rust-tokio=$bin/e2e_client --runtime tokio --url {url} --transport {transport}" \
    --client "rust-smol=$bin/e2e_client --runtime smol --url {url} --transport {transport}" \
    --client "rust-mio=$ex/plain_client --url {url} --transport {transport}" \
    --servers rust-tokio,rust-smol,rust-mio \
    --clients node,python,browser,rust-tokio,rust-smol,rust-mio || status=1

echo "== the peers' servers x our clients"
python3 tests/interop/run.py \
    --client "rust-tokio=$bin/e2e_client --runtime tokio --url {url} --transport {transport}" \
    --client "rust-smol=$bin/e2e_client --runtime smol --url {url} --transport {transport}" \
    --client "rust-mio=$ex/plain_client --url {url} --transport {transport}" \
    --servers node,python \
    --clients rust-tokio,rust-smol,rust-mio || status=1

exit $status
