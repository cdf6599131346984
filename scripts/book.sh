#!/usr/bin/env bash
# The guide (docs/) as an mdBook, warnings as errors: installs mdbook at a pinned version
# into target/tools (once; cargo install --locked from crates.io, about 2.5 CPU-minutes),
# checks the pages (scripts/check-docs.py: every page in SUMMARY.md, every code block
# with a language and no ignored Rust block, no dead relative link), then builds the book
# into target/book and fails on any warning mdbook prints.
#
#   scripts/book.sh            install if needed, check, build
#   scripts/book.sh install    only install mdbook
#
# The Rust code blocks themselves are compiled by the doctests stage (tests/build.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

MDBOOK_VERSION=0.5.4
tools="$PWD/target/tools"
mdbook="$tools/bin/mdbook"

if ! [ -x "$mdbook" ] || [ "$("$mdbook" --version 2>/dev/null)" != "mdbook v$MDBOOK_VERSION" ]; then
    echo "book: installing mdbook $MDBOOK_VERSION into $tools"
    start=$SECONDS
    # Only the HTML renderer with search: no file watcher, no web server.
    cargo install --locked --quiet "mdbook@$MDBOOK_VERSION" \
        --no-default-features --features search --root "$tools"
    echo "book: mdbook installed in $((SECONDS - start)) s"
fi
[ "${1:-}" = "install" ] && exit 0

python3 scripts/check-docs.py
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
"$mdbook" build 2>&1 | tee "$log" || status=$?
if [ "$status" -ne 0 ]; then
    echo "book: mdbook build failed"
    exit 1
fi
if grep -qE '(^|[^A-Za-z])(WARN|ERROR)' "$log"; then
    echo "book: mdbook printed warnings; they are errors here"
    exit 1
fi
echo "book: built into target/book"
