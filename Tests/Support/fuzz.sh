#!/usr/bin/env bash
# fuzz.sh: what `make fuzz` runs, and the short pass at the end of `make test`. Builds the fuzz
# package (Fuzz/, its own .build) with libFuzzer and AddressSanitizer, then runs each target for
# FUZZ_SECONDS (default 600) on one core, one after the other.
#
# Each target starts from its seed corpus in Tests/Fuzz/<target>/ (read only) plus the inputs
# earlier runs found, kept in .run/fuzz/<target>/corpus (git-ignored), with the dictionary
# Tests/Fuzz/<target>.dict when there is one. A finding (crash, sanitizer report, broken
# invariant, an input running longer than 10 s, more than 2 GiB) stops that target: its input is
# written to .run/fuzz/<target>/ and printed in base64, the log stays beside it, and the script
# exits 1 after the other targets ran. Reproduce with: Fuzz/.build/release/fuzz-<target> <file>
#
# Usage: Tests/Support/fuzz.sh [target...]   (targets: event-decoder cron topology resp)
# Environment: FUZZ_SECONDS (per target), FUZZ_JOBS (parallel workers per target, default 1).
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/../.." && pwd)
cd -- "$REPO_ROOT"

SECONDS_PER_TARGET=${FUZZ_SECONDS:-600}
JOBS=${FUZZ_JOBS:-1}
ALL=(event-decoder cron topology resp)
TARGETS=("$@")
((${#TARGETS[@]} > 0)) || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
    [[ " ${ALL[*]} " == *" $t "* ]] || { echo "fuzz.sh: no target $t (targets: ${ALL[*]})" >&2; exit 2; }
done
[[ $SECONDS_PER_TARGET =~ ^[0-9]+$ && $SECONDS_PER_TARGET -gt 0 ]] ||
    { echo "fuzz.sh: FUZZ_SECONDS must be a positive integer, not '$SECONDS_PER_TARGET'" >&2; exit 2; }

echo "==> swift build of Fuzz/ (libFuzzer, AddressSanitizer)" >&2
# -parse-as-library and --allow-multiple-definition: see Fuzz/Package.swift.
build() {
    set +o pipefail
    swift build -c release --package-path Fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library \
        -Xlinker --allow-multiple-definition 2>&1 | grep -v -E "Cannot export local symbol|prohibited flag" || true
    local rc=${PIPESTATUS[0]}
    set -o pipefail
    return "$rc"
}
# Fuzz/.build keeps its own plan of the root package's sources: after files were added to a root
# target it may fail with "cannot find ... in scope"; one clean build settles that.
if ! build; then
    echo "fuzz.sh: the build failed; once more from a clean Fuzz/.build" >&2
    rm -rf Fuzz/.build
    build || { echo "fuzz.sh: the build failed" >&2; exit 1; }
fi
BIN=$(swift build -c release --package-path Fuzz --show-bin-path)

failed=0
ROWS=()
for t in "${TARGETS[@]}"; do
    dir="$REPO_ROOT/.run/fuzz/$t"
    mkdir -p "$dir/corpus"
    log="$dir/fuzz.log"
    args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -max_len=16384
        -print_final_stats=1 -artifact_prefix="$dir/")
    [[ -r Tests/Fuzz/$t.dict ]] && args+=(-dict="Tests/Fuzz/$t.dict")
    ((JOBS > 1)) && args+=(-fork="$JOBS")
    echo "==> fuzz-$t for ${SECONDS_PER_TARGET}s (log: ${log#"$REPO_ROOT"/})" >&2
    rc=0
    "$BIN/fuzz-$t" "${args[@]}" "$dir/corpus" "Tests/Fuzz/$t" > "$log" 2>&1 || rc=$?
    runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
    corpus=$(find "$dir/corpus" -type f | wc -l)
    if ((rc == 0)); then
        ROWS+=("$(printf '%-14s %7s %12s %9s %7s  %s' "$t" "${SECONDS_PER_TARGET}s" "${runs:-?}" "${cov:-?}" "$corpus" ok)")
    else
        failed=1
        artifact=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -1 | sed 's/Test unit written to //' || true)
        ROWS+=("$(printf '%-14s %7s %12s %9s %7s  %s' "$t" "${SECONDS_PER_TARGET}s" "${runs:-?}" "${cov:-?}" "$corpus" "FINDING (exit $rc): ${artifact:-see $log}")")
        grep -E "ERROR|SUMMARY|Fatal error|Precondition failed|Base64" "$log" | head -8 >&2 || true
    fi
done
printf '%-14s %7s %12s %9s %7s  %s\n' target time executions coverage corpus result
printf '%s\n' "${ROWS[@]}"
exit "$failed"
