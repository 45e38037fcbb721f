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
# The exit code is swift test's (or the failing step's).
#
# The tests see: HERALD_BIN (the debug `herald` binary) and the HERALD_TEST_* variables written by
# services.sh (URLs, ports, sockets, the venv's python, the services.sh path for redis-restart).
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

# In the background and waited for, so that a signal to this script alone (make passes SIGTERM on,
# `timeout` sends one) runs the trap at once instead of after the whole suite.
# XCTest only (Herald has no Swift Testing suites, whose empty run would otherwise print the last
# line). The output is teed so the closing line can state the XCTest totals plainly.
step "swift test"
TEST_LOG="$HERALD_RUN_DIR/swift-test.log"
mkfifo "$HERALD_RUN_DIR/swift-test.fifo"
tee "$TEST_LOG" < "$HERALD_RUN_DIR/swift-test.fifo" &
TEE_PID=$!
swift test --no-parallel --disable-swift-testing "$@" > "$HERALD_RUN_DIR/swift-test.fifo" 2>&1 &
TEST_PID=$!
rc=0
wait "$TEST_PID" || rc=$?
TEST_PID=
wait "$TEE_PID" || true
# Count test cases (XCTest's "Executed N tests, with M failures" counts failed assertions).
passed=$(grep -cE "^Test Case '.*' passed" "$TEST_LOG" || true)
failed=$(grep -cE "^Test Case '.*' failed" "$TEST_LOG" || true)
echo "$passed passed, $failed failed"
exit "$rc"
