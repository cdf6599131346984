#!/usr/bin/env bash
# The whole benchmark comparison in one command (after bench/install.sh). Not part of the
# test suite: it prints figures. Options and environment: python3 bench/compare.py --help
set -euo pipefail
exec python3 "$(cd "$(dirname "$0")" && pwd)/compare.py" "$@"
