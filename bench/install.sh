#!/usr/bin/env bash
# Installs and builds everything bench/compare.py runs. Idempotent: rerun at will.
#   - our load generator (eio-bench) and our two bench servers, release builds, copied to
#     bench/target/bin/;
#   - the engineioxide peer (its own workspace and Cargo.lock), release build;
#   - the Node peers: `npm ci` from the committed package-lock.json;
#   - the Python peer: a venv with the pinned requirements.lock.
# Only registries are used (crates.io, npm, PyPI). Nothing is started.
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
BIN=$BENCH/target/bin
mkdir -p "$BIN"
step() { printf '\n== %s\n' "$*"; }

step "eio-bench (load generator)"
(cd "$ROOT" && cargo build --release --locked -p eio-bench)
install -m 0755 "$ROOT/target/release/eio-bench" "$BIN/eio-bench"

step "engineio-tokio bench_server, engineio-smol smol_bench_server"
(cd "$ROOT" && cargo build --release --locked -p engineio-tokio --example bench_server \
  -p engineio-smol --example smol_bench_server)
install -m 0755 "$ROOT/target/release/examples/bench_server" "$BIN/tokio-bench-server"
install -m 0755 "$ROOT/target/release/examples/smol_bench_server" "$BIN/smol-bench-server"

step "engineioxide peer"
(cd "$BENCH/peers/engineioxide" && cargo build --release --locked)
install -m 0755 "$BENCH/peers/engineioxide/target/release/eio-bench-engineioxide" "$BIN/engineioxide-bench-server"

step "Node peers (engine.io on ws and on uWebSockets.js)"
command -v node >/dev/null || { echo "node is required (Node 20 was used)" >&2; exit 1; }
(cd "$BENCH/peers/node" && npm ci --no-audit --no-fund --loglevel=error)
(cd "$BENCH/peers/node" && node -e 'require("uWebSockets.js"); require("engine.io")') \
  || { echo "the Node peers do not load" >&2; exit 1; }

step "Python peer (python-engineio under uvicorn)"
PY=${PYTHON:-python3}
if [ ! -x "$BENCH/peers/python/venv/bin/python" ]; then
  "$PY" -m venv "$BENCH/peers/python/venv"
fi
"$BENCH/peers/python/venv/bin/pip" install --quiet --disable-pip-version-check \
  -r "$BENCH/peers/python/requirements.lock"
"$BENCH/peers/python/venv/bin/python" -c 'import engineio, uvicorn'

step "done"
ls -l "$BIN"
echo "next: bench/compare.sh   (or: python3 bench/compare.py --help)"
