#!/usr/bin/env bash
# A fuzzing campaign: each cargo-fuzz target (or the ones named) for SECONDS of wall time,
# one after another under `nice -n 19`, starting from its seeds; then the corpus is
# minimised by coverage edges (`cargo fuzz cmin -- -use_counters=0`) and written back as the
# target's seeds. Not part of the test
# command (CI runs scripts/fuzz-smoke.sh for a bounded time); record the figures it prints
# (executions, cov, ft) in docs/reliability.md.
#
#   scripts/fuzz-campaign.sh [SECONDS] [TARGET...]       (default 1800 s, every target)
#
# Work happens in a temporary folder (FUZZ_WORK to keep it); a target that crashes leaves
# its input in fuzz/artifacts/<target>/ and the script stops with an error.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-1800}"
shift || true
export RUSTC_BOOTSTRAP=1
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz@0.13.2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
work="${FUZZ_WORK:-$(mktemp -d)}"
echo "== corpora in $work"
for target in "${targets[@]}"; do
    mkdir -p "$work/$target" "$work/$target.min"
    if [ -d "seeds/$target" ]; then cp seeds/"$target"/* "$work/$target/"; fi
    echo "== fuzzing $target for ${secs}s"
    nice -n 19 cargo fuzz run "$target" "$work/$target" -- -max_total_time="$secs" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
        grep -E '^(#[0-9]+\s+(INITED|DONE)|Done|stat::)|panicked|SUMMARY|ERROR' || true
    if compgen -G "artifacts/$target/*" >/dev/null; then
        echo "fuzz target $target found a failing input: see fuzz/artifacts/$target/" >&2
        exit 1
    fi
    # Minimised by coverage edges (-use_counters=0): the same coverage as the full
    # minimisation by features, in about a quarter of the inputs (a tenth of the bytes).
    echo "== minimising the $target corpus"
    nice -n 19 cargo fuzz cmin "$target" "$work/$target" -- -use_counters=0 2>&1 |
        grep -E 'MERGE-OUTER: [0-9]+ new files' || true
    # The hand-written seeds stay; the minimised corpus (named by its SHA-1, as libFuzzer
    # names inputs) replaces the previous campaign's.
    mkdir -p "seeds/$target"
    find "seeds/$target" -type f -regextype posix-extended -regex '.*/[0-9a-f]{40}' -delete
    mapfile -t written < <(find "seeds/$target" -type f)
    for f in "$work/$target"/*; do
        for w in "${written[@]}"; do
            if cmp -s "$f" "$w"; then continue 2; fi
        done
        cp "$f" "seeds/$target/$(sha1sum "$f" | cut -d' ' -f1)"
    done
    echo "== seeds/$target: $(find "seeds/$target" -type f | wc -l) files"
done
