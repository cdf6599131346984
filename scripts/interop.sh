#!/usr/bin/env bash
# The interop matrix against the real peers (see tests/interop/README.md):
#   - our servers (tokio and smol bindings, and the mio example driving engineio-proto
#     alone) with Node engine.io-client, python-engineio's Client, Chromium running
#     engine.io-client in the demo page, and our own clients;
#   - our clients (tokio and smol, and the plain-loop example) with Node's engine.io
#     server and python-engineio's AsyncServer under uvicorn;
#   - Engine.IO v3: our server with allow_eio3 against engine.io-client 3.x (Node and
#     Chromium), and our v3 clients against Node engine.io 3.x and 6.x with allowEIO3;
#   - our clients through a real HTTP proxy (Debian's tinyproxy, installed by install.sh,
#     started and stopped by run.py) to an http and an https server;
#   - permessage-deflate: our server with deflate on x engine.io-client (Node, Chromium),
#     python-engineio's AsyncClient (aiohttp, compress=15) and our clients, and x clients
#     that do not offer it (python-engineio's Client, Node with perMessageDeflate false);
#     our clients with deflate x Node engine.io with perMessageDeflate and python-engineio
#     under uvicorn (which accepts it by default).
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

echo "== Engine.IO v3: our server with allow_eio3 x engine.io-client 3 (Node, Chromium), v4 beside it;"
echo "   our v3 clients x Node engine.io 3.x and engine.io 6 with allowEIO3"
eio3_clients=(
    --client "rust-tokio-eio3=$bin/e2e_client --runtime tokio --eio 3 --url {url} --transport {transport}"
    --client "rust-smol-eio3=$bin/e2e_client --runtime smol --eio 3 --url {url} --transport {transport}"
)
python3 tests/interop/run.py --log-dir tests/interop/logs/latest-eio3 \
    --server "rust-tokio-eio3=$bin/e2e_server --runtime tokio --allow-eio3 --port {port}" --demo rust-tokio-eio3 \
    "${eio3_clients[@]}" \
    --servers rust-tokio-eio3 \
    --clients node-eio3,browser-eio3,node,rust-tokio-eio3,rust-smol-eio3 || status=1
python3 tests/interop/run.py --log-dir tests/interop/logs/latest-eio3-peers \
    "${eio3_clients[@]}" \
    --servers node-eio3,node-allow-eio3 \
    --clients rust-tokio-eio3,rust-smol-eio3 || status=1

echo "== our clients through a real HTTP proxy (tinyproxy, basic auth), to http and https servers"
proxy_cases=connect,text,binary,text_100k,binary_100k,heartbeat,over_limit,client_close,server_close,proxy_refused
tls="--tls-cert tests/interop/tls/server.pem --tls-key tests/interop/tls/server.key"
client="$bin/e2e_client --cacert {cacert} --url {url} --transport {transport} --cases {cases}"
python3 tests/interop/run.py --log-dir tests/interop/logs/latest-proxy \
    --server "rust-tokio=$bin/e2e_server --runtime tokio --port {port}" \
    --server "rust-tokio-tls=$bin/e2e_server --runtime tokio --port {port} $tls" --tls rust-tokio-tls \
    --client "rust-tokio-proxy=$client --runtime tokio --proxy {proxy}" \
    --client "rust-smol-proxy=$client --runtime smol --proxy {proxy}" \
    --client "rust-tokio-proxy-env=env HTTP_PROXY={proxy_noauth} HTTPS_PROXY={proxy_noauth} $client --runtime tokio --proxy-env" \
    --client "rust-tokio-no-proxy=env HTTP_PROXY={proxy_noauth} HTTPS_PROXY={proxy_noauth} NO_PROXY=localhost,127.0.0.1 $client --runtime tokio --proxy-env" \
    --client-cases "rust-tokio-proxy=$proxy_cases" --client-cases "rust-smol-proxy=$proxy_cases" \
    --client-cases "rust-tokio-proxy-env=proxy_refused" --client-cases "rust-tokio-no-proxy=connect,text,binary" \
    --servers rust-tokio,rust-tokio-tls \
    --clients rust-tokio-proxy,rust-smol-proxy,rust-tokio-proxy-env,rust-tokio-no-proxy || status=1

echo "== permessage-deflate: our server with deflate x Node, Chromium, python-engineio's AsyncClient"
echo "   and our clients; x clients that do not offer it; our clients with deflate x Node and python servers"
deflate_cases=text,binary,text_100k,binary_100k,deflate
plain_cases=text,text_100k,binary_100k,no_deflate
deflate_clients=(
    --client "rust-tokio-deflate=$bin/e2e_client --runtime tokio --deflate --url {url} --transport {transport} --cases {cases}"
    --client "rust-smol-deflate=$bin/e2e_client --runtime smol --deflate --url {url} --transport {transport} --cases {cases}"
    --client-cases "rust-tokio-deflate=$deflate_cases" --client-cases "rust-smol-deflate=$deflate_cases"
)
python3 tests/interop/run.py --log-dir tests/interop/logs/latest-deflate --transports websocket,upgrade \
    --server "rust-tokio-deflate=$bin/e2e_server --runtime tokio --deflate --port {port}" --demo rust-tokio-deflate \
    "${deflate_clients[@]}" \
    --client-cases "node=$deflate_cases" --client-cases "browser=$deflate_cases" \
    --client-cases "python-async-deflate=$deflate_cases" \
    --client-cases "node-no-deflate=$plain_cases" --client-cases "python=$plain_cases" \
    --servers rust-tokio-deflate \
    --clients node,browser,python-async-deflate,rust-tokio-deflate,rust-smol-deflate,node-no-deflate,python || status=1
# The smol binding's server with deflate, against a few of them (the WebSocket code is shared).
python3 tests/interop/run.py --log-dir tests/interop/logs/latest-deflate-smol --transports websocket,upgrade \
    --server "rust-smol-deflate=$bin/e2e_server --runtime smol --deflate --port {port}" \
    --client-cases "node=$deflate_cases" --client-cases "python-async-deflate=$deflate_cases" \
    --client-cases "node-no-deflate=$plain_cases" \
    --servers rust-smol-deflate \
    --clients node,python-async-deflate,node-no-deflate || status=1
python3 tests/interop/run.py --log-dir tests/interop/logs/latest-deflate-peers --transports websocket,upgrade \
    "${deflate_clients[@]}" \
    --servers node-deflate,python \
    --clients rust-tokio-deflate,rust-smol-deflate || status=1

exit $status
