#!/usr/bin/env bash
# The WebSocket framing-crate comparison (docs/benchmarks.md, "WebSocket framing crates"):
# builds our two bench servers once per framing backend (yawc, the default; tokio-websockets;
# tungstenite, the baseline), then runs, with bench/compare.py, WebSocket echo (32 B with 10
# and 1 in flight, 16 KiB with 10 in flight) in ROUNDS alternating rounds (default 5), then
# idle connections (2000, 5000, 10000) three times in rotated order, and prints the table.
# Needs bench/install.sh first (the engineioxide peer). BUILD=0 skips the builds.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 20000
B=bench/target/bin
if [ "${BUILD:-1}" = 1 ]; then
  nice -n 19 cargo build --release --locked -p eio-bench
  install -m 0755 target/release/eio-bench $B/eio-bench
  for b in yawc tokio-websockets tungstenite; do
    F=(); [ $b = yawc ] || F=(--features "engineio-hyper/ws-$b")
    nice -n 19 cargo build --release --locked -p engineio-tokio --example bench_server \
      -p engineio-smol --example smol_bench_server "${F[@]}"
    install -m 0755 target/release/examples/bench_server $B/ws-$b-tokio
    install -m 0755 target/release/examples/smol_bench_server $B/ws-$b-smol
  done
fi
T=tokio-tungstenite=$B/ws-tungstenite-tokio
W=tokio-tokio-websockets=$B/ws-tokio-websockets-tokio
Y=tokio-yawc=$B/ws-yawc-tokio
E=engineioxide
ST=smol-tungstenite=$B/ws-tungstenite-smol
SW=smol-tokio-websockets=$B/ws-tokio-websockets-smol
SY=smol-yawc=$B/ws-yawc-smol
newest() { ls -d bench/results/*/ | sort | tail -1; }
ROUNDS=${ROUNDS:-5} TESTS=echo10,echo1,echo16k CONNS=0 TWO_CORE=0 \
  python3 bench/compare.py --servers "$T,$W,$Y,$E,$ST,$SW,$SY"
dirs=("$(newest)")
for order in "$T,$W,$Y,$E,$ST,$SW,$SY" "$W,$Y,$E,$ST,$SW,$SY,$T" "$Y,$E,$ST,$SW,$SY,$T,$W"; do
  CONNS_STEPS=2000,5000,10000 TESTS=none HOLD=0 ROUNDS=1 TWO_CORE=0 \
    python3 bench/compare.py --servers "$order"
  dirs+=("$(newest)")
done
python3 bench/ws_framing_table.py "${dirs[@]}"
