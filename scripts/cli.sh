#!/usr/bin/env bash
# The eio command-line tool against real servers and real nginx (tests/cli/run.py):
#   - eio connect and eio doctor against our e2e server (tokio and smol), Node's engine.io
#     and python-engineio;
#   - eio doctor against three broken setups, each with a passing control: nginx
#     round-robin over two backends without stickiness (the sticky check fails), nginx
#     timing long-polls out below pingInterval (the long-poll check fails), a server that
#     refuses the origin (the CORS check fails);
#   - eio bench against our server.
# Installs what it needs: the interop peers (tests/interop/install.sh: npm and pip into
# local folders) and Debian's nginx with apt-get when missing. Every server runs on
# 127.0.0.1 and is stopped by its PID. About 30 s once installed.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== installing the peers (tests/interop/install.sh) and nginx"
tests/interop/install.sh
nginx_bin="$(command -v nginx || true)"
[ -n "$nginx_bin" ] || [ ! -x /usr/sbin/nginx ] || nginx_bin=/usr/sbin/nginx
if [ -z "$nginx_bin" ]; then
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    echo "cli: installing Debian nginx with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx
    nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
fi
[ -x "$nginx_bin" ] || { echo "cli: nginx is still missing" >&2; exit 1; }
echo "cli: $("$nginx_bin" -v 2>&1)"

echo "== building eio and the e2e server"
cargo build -q -p eio-cli -p engineio-tests --bins

echo "== the eio tests"
python3 tests/cli/run.py --eio target/debug/eio --e2e-server target/debug/e2e_server \
    --nginx "$nginx_bin"
