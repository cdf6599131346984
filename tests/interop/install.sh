#!/usr/bin/env bash
# Installs every interop peer, from the registries, at pinned versions:
#   - demo/ (engine.io-client browser bundle for the demo page), via demo/install.sh
#   - tests/interop/node_modules: engine.io, engine.io-client, playwright-core, and the
#     Engine.IO v3 peers engine.io 3.x / engine.io-client 3.x under the aliases engine.io-v3
#     and engine.io-client-v3 (npm ci, package-lock.json)
#   - tests/interop/.venv: python-engineio, requests, websocket-client, uvicorn, ...
#     (pip, requirements.txt)
#   - Debian's chromium (/usr/bin/chromium) for browser.mjs, and tinyproxy (the HTTP proxy
#     of the proxy rows; run.py starts and stops it), via apt-get, when missing. apt-get
#     does not start tinyproxy's service where policy-rc.d forbids it (containers); run.py
#     never uses a proxy it did not start.
# Idempotent and quick when everything is already there: each step keeps a stamp with the
# sha256 of the lock file it installed from and is skipped when it still matches.
# Runs as root (CI); uses sudo for apt-get only when not root.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

log() { echo "interop install: $*"; }

# 1. the demo page's bundle
"$here/../../demo/install.sh"

# 2. Node peers
stamp=node_modules/.installed-from-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d node_modules/engine.io ] \
   && [ -d node_modules/engine.io-client ] && [ -d node_modules/playwright-core ] \
   && [ -d node_modules/engine.io-v3 ] && [ -d node_modules/engine.io-client-v3 ]; then
    log "node_modules up to date"
else
    log "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > "$stamp"
fi

# 3. Python peers
stamp=.venv/.installed-from-requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ -x .venv/bin/python ] && .venv/bin/python -c 'import sys' 2>/dev/null \
   && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log ".venv up to date"
else
    if ! [ -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys' 2>/dev/null; then
        log "creating .venv with $(python3 --version)"
        rm -rf .venv
        python3 -m venv .venv
    fi
    log "pip install -r requirements.txt"
    .venv/bin/python -m pip install --disable-pip-version-check --no-input -q -r requirements.txt
    echo "$want" > "$stamp"
fi

# 4. Chromium (Debian's package; playwright-core never downloads a browser here) and
#    tinyproxy (Debian's package), with one apt-get update for both when either is missing
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/tinyproxy ] || missing+=(tinyproxy)
if [ ${#missing[@]} -eq 0 ]; then
    log "chromium present: $(/usr/bin/chromium --version 2>/dev/null | head -n1); $(/usr/bin/tinyproxy -v 2>/dev/null | head -n1) present"
else
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    log "installing Debian ${missing[*]} with apt-get"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
    [ -x /usr/bin/chromium ] || { echo "interop install: /usr/bin/chromium still missing" >&2; exit 1; }
    [ -x /usr/bin/tinyproxy ] || { echo "interop install: /usr/bin/tinyproxy still missing" >&2; exit 1; }
fi

log "done: node $(node --version), $(.venv/bin/python --version), $(/usr/bin/chromium --version 2>/dev/null | head -n1), $(/usr/bin/tinyproxy -v 2>/dev/null | head -n1)"
