#!/usr/bin/env bash
# Installs the demo page's one dependency, the engine.io-client browser bundle, from the
# npm registry at the version pinned in package-lock.json (`npm ci`). Idempotent: skips
# the install when node_modules was installed from this very lock file (a stamp file holds
# the lock file's sha256) and the bundle is present.
set -euo pipefail
cd "$(dirname "$0")"

bundle=node_modules/engine.io-client/dist/engine.io.min.js
stamp=node_modules/.installed-from-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$bundle" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "demo: up to date (engine.io-client $(node -p 'require("./node_modules/engine.io-client/package.json").version'))"
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
test -f "$bundle" || { echo "demo: $bundle missing after npm ci" >&2; exit 1; }
echo "$want" > "$stamp"
echo "demo: installed engine.io-client $(node -p 'require("./node_modules/engine.io-client/package.json").version')"
