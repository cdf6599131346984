#!/usr/bin/env bash
# The main job: the latency demo server. Installs the engine.io-client browser bundle
# (npm, pinned by demo/package-lock.json), builds and starts the server; open the
# printed address in a browser. Ctrl-C stops it.
#
#   scripts/demo.sh            (PORT and HOST change the address; default 127.0.0.1:5000)
set -euo pipefail
cd "$(dirname "$0")/.."
demo/install.sh
exec cargo run --release -p engineio-tokio --example latency
