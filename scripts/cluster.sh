#!/usr/bin/env bash
# The cluster stage of the test command (see docs/deployment.md):
#   1. installs Debian's redis-server, nginx and haproxy when missing (apt-get; services
#      are not started by the install: the tests start their own, on 127.0.0.1, and stop
#      them by PID), and the interop peers (tests/interop/install.sh);
#   2. runs the Rust cluster tests on a real redis-server (tests/tests/cluster.rs: they are
#      ignored in the plain workspace run, which may have no redis-server);
#   3. runs the system matrix, tests/interop/cluster/run.py: three nodes (tokio, smol,
#      tokio) behind nginx (sid routing and round-robin) and HAProxy, with the config files
#      of docs/deploy/, and Node engine.io-client, python-engineio, our client and Chromium
#      as clients. About 2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    echo "cluster: installing ${missing[*]} with apt-get"
    # Keep the packages' init scripts from starting system-wide daemons during the
    # install (the usual policy-rc.d of containers), unless the machine has its own.
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if [ "$own_policy" -eq 1 ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
fi
echo "cluster: $(redis-server --version | cut -d' ' -f1-3), $(nginx -v 2>&1), $(haproxy -v | head -n1 | cut -d' ' -f1-3)"

tests/interop/install.sh
cargo build -q -p engineio-tests --bins

echo "== the Rust cluster tests on a real redis-server"
cargo test -q -p engineio-tests --test cluster -- --include-ignored

echo "== the cluster matrix (tests/interop/cluster/run.py)"
python3 tests/interop/cluster/run.py
