#!/usr/bin/env bash
# shellcheck disable=SC2317  # shellcheck 0.9 takes the trap handlers for unreachable code
# run-tests.sh: what `make test` runs. Installs what is missing, builds, starts private Redis and
# PostgreSQL servers, runs the whole Swift test suite against them, and always stops the servers.
#
# Why a script: the servers must be stopped whatever happens (test failure, Ctrl-C, kill), and each
# invocation gets its own run directory (.run/test-<pid>), so two checkouts, two concurrent runs or
# the leftovers of a killed run never collide. Leftover directories of dead runs are removed first.
#
# Usage: Tests/Support/run-tests.sh [swift test arguments...]   e.g. --filter HeraldCoreTests
# A whole run (no arguments) ends with a short pass of every fuzz target (Tests/Support/fuzz.sh).
# The exit code is swift test's (or the failing step's).
#
# The tests see: HERALD_BIN (the debug `herald` binary) and the HERALD_TEST_* variables written by
# services.sh (URLs, ports, sockets, the venv's python, the services.sh path for redis-restart),
# plus HERALD_TEST_SCHEMA (fallback | dify: which pass) and HERALD_TEST_DIFY_TEMPLATE (the template
# database holding Dify's real schema, when it was found).
#
# Two passes: every test on Herald's own fallback tables, then the database suites again on Dify's
# real schema (see below). HERALD_TEST_REQUIRE_DIFY_SCHEMA=1 (CI sets it) makes a missing schema an
# error instead of a skipped pass.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/../.." && pwd)
SERVICES="$SCRIPT_DIR/services.sh"
cd -- "$REPO_ROOT"

step() { echo "==> $*" >&2; }

step "dependencies"
bash "$SCRIPT_DIR/deps.sh"

step "swift build"
swift build
BIN_PATH=$(swift build --show-bin-path)

bash "$SERVICES" reap

export HERALD_RUN_DIR="$REPO_ROOT/.run/test-$$"
STARTED=0
TEST_PID=

# descendants PID: every process below PID, deepest last.
descendants() {
    local child
    for child in $(cat /proc/"$1"/task/*/children 2>/dev/null || true); do
        echo "$child"
        descendants "$child"
    done
}

# Stops a still-running swift test and the test processes it spawned (when we were signalled).
stop_tests() {
    [[ -n $TEST_PID ]] && kill -0 "$TEST_PID" 2>/dev/null || return 0
    local pids=() pid i alive
    mapfile -t pids < <(echo "$TEST_PID"; descendants "$TEST_PID")
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive=()
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
        ((${#alive[@]} > 0)) || return 0
        sleep 0.1
    done
    kill -KILL "${alive[@]}" 2>/dev/null || true
}

# On success the run directory goes; on failure the servers stop but their logs stay until the next
# run reaps the directory.
cleanup() {
    local rc=$?
    # A second Ctrl-C must not cut the clean-up short (and leave servers running).
    trap '' INT TERM HUP
    trap - EXIT
    stop_tests
    if ((STARTED)); then
        if ((rc == 0)); then
            bash "$SERVICES" destroy || echo "run-tests: could not remove $HERALD_RUN_DIR" >&2
        else
            bash "$SERVICES" stop || echo "run-tests: could not stop the services in $HERALD_RUN_DIR" >&2
            echo "run-tests: server logs kept in $HERALD_RUN_DIR" >&2
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

step "private Redis and PostgreSQL in ${HERALD_RUN_DIR#"$REPO_ROOT"/}"
STARTED=1
bash "$SERVICES" start
# shellcheck source=/dev/null
source "$HERALD_RUN_DIR/env"
export HERALD_BIN="$BIN_PATH/herald"
echo "    redis $HERALD_TEST_REDIS_URL, postgres $HERALD_TEST_DATABASE_URL" >&2

# Pass 2 runs the database tests again on Dify's real schema (the DDL Dify's own migrations make),
# loaded once into a template database; every test database of that pass is a copy of it, so
# Herald's migrations meet Dify's tables instead of creating its fallbacks. The schema file is
# data kept outside this repository: $HERALD_DIFY_SCHEMA, else the copy beside the clone (below).
DIFY_SCHEMA=${HERALD_DIFY_SCHEMA:-$REPO_ROOT/../shared/reference/dify-schema/schema.sql}
DIFY_TEMPLATE=herald_dify_schema
if [[ -r $DIFY_SCHEMA ]]; then
    bash "$SERVICES" loadschema "$DIFY_TEMPLATE" "$DIFY_SCHEMA"
    export HERALD_TEST_DIFY_TEMPLATE=$DIFY_TEMPLATE
    echo "    Dify's real schema: $DIFY_SCHEMA (template database $DIFY_TEMPLATE)" >&2
elif [[ ${HERALD_TEST_REQUIRE_DIFY_SCHEMA:-0} == 1 ]]; then
    echo "run-tests: Dify's real schema not found at $DIFY_SCHEMA (HERALD_TEST_REQUIRE_DIFY_SCHEMA=1)" >&2
    exit 1
fi

# One pass of swift test. In the background and waited for, so that a signal to this script alone
# (make passes SIGTERM on, `timeout` sends one) runs the trap at once instead of after the whole
# suite. XCTest only (Herald has no Swift Testing suites, whose empty run would otherwise print the
# last line). The output is teed so the closing line can state the XCTest totals plainly.
SUMMARY=()
run_pass() {
    local name=$1 log fifo rc=0 passed failed
    shift
    log="$HERALD_RUN_DIR/swift-test-$name.log"
    fifo="$HERALD_RUN_DIR/swift-test-$name.fifo"
    mkfifo "$fifo"
    tee "$log" < "$fifo" &
    local tee_pid=$!
    swift test --no-parallel --disable-swift-testing "$@" > "$fifo" 2>&1 &
    TEST_PID=$!
    wait "$TEST_PID" || rc=$?
    TEST_PID=
    wait "$tee_pid" || true
    # Count test cases (XCTest's "Executed N tests, with M failures" counts failed assertions).
    passed=$(grep -cE "^Test Case '.*' passed" "$log" || true)
    failed=$(grep -cE "^Test Case '.*' failed" "$log" || true)
    SUMMARY+=("$name: $passed passed, $failed failed")
    return "$rc"
}

rc=0
step "swift test, pass 1: Herald's own fallback tables"
HERALD_TEST_SCHEMA=fallback run_pass fallback "$@" || rc=$?
if [[ -n ${HERALD_TEST_DIFY_TEMPLATE:-} ]]; then
    # Without arguments, pass 2 runs the suites that use a database; with arguments, the same ones.
    args=("$@")
    ((${#args[@]} > 0)) || args=(--filter 'HeraldIntegrationTests|HeraldEndToEndTests')
    step "swift test, pass 2: Dify's real schema"
    HERALD_TEST_SCHEMA=dify run_pass dify "${args[@]}" || rc=$?
else
    SUMMARY+=("dify: SKIPPED, Dify's real schema not found at $DIFY_SCHEMA (set HERALD_DIFY_SCHEMA)")
fi
# The short fuzz pass (make fuzz runs the long one): every target for HERALD_TEST_FUZZ_SECONDS
# (default 20, 0 skips), from the seed corpus in Tests/Fuzz. Only on a whole run (no arguments).
FUZZ_SHORT=${HERALD_TEST_FUZZ_SECONDS:-20}
if (($# == 0)) && [[ $FUZZ_SHORT != 0 ]]; then
    step "fuzz, short pass: ${FUZZ_SHORT}s per target"
    if FUZZ_SECONDS=$FUZZ_SHORT bash "$SCRIPT_DIR/fuzz.sh"; then
        SUMMARY+=("fuzz: every target ${FUZZ_SHORT}s, no finding")
    else
        rc=1
        SUMMARY+=("fuzz: FINDING or failed build (see above; inputs under .run/fuzz)")
    fi
fi
printf '%s\n' "${SUMMARY[@]}"
exit "$rc"
