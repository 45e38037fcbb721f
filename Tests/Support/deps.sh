#!/usr/bin/env bash
# deps.sh: install what Herald needs to build and test, and do nothing when it is all there.
#
# Why: `make run`, `make test` and `make bench` must work on a fresh Debian 12 machine (as root) and
# stay fast on one that is already set up. So:
#   1. the apt packages: checked with dpkg first; `apt-get update` and `apt-get install` run only
#      when something is missing, and then once;
#   2. a Python venv at .run/venv for the tests' Python side (Celery, croniter, psycopg, aiosmtpd),
#      where pip runs only when Tests/Support/requirements.txt (or the Python) changed since the last
#      successful install (a hash is kept in .run/venv/.herald-requirements.sha256).
# Quiet when there is nothing to do; one line per step otherwise; details go to .run/deps.log and
# are shown when a step fails.
#
# `deps.sh --runtime` (what `make run` uses): the apt packages only, no Python venv.
set -euo pipefail
RUNTIME_ONLY=0
[[ ${1:-} == --runtime ]] && RUNTIME_ONLY=1

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/../.." && pwd)
RUN_TOP="$REPO_ROOT/.run"
VENV="$RUN_TOP/venv"
REQUIREMENTS="$SCRIPT_DIR/requirements.txt"
STAMP="$VENV/.herald-requirements.sha256"
LOG="$RUN_TOP/deps.log"

# The C libraries Package.swift links (with pkg-config, which SwiftPM uses to find them), the two
# servers the tests run privately (Tests/Support/services.sh), git and CA certificates for SwiftPM to
# fetch its packages, and tzdata for time-zone-aware cron.
APT_PACKAGES=(
    libhiredis-dev libevent-dev libpq-dev libcurl4-openssl-dev
    redis-server postgresql
    pkg-config git ca-certificates tzdata
)
# For the tests only (not with --runtime): systemd-analyze, which checks the installed unit
# (Tests/HeraldEndToEndTests/InstallTests.swift).
TEST_APT_PACKAGES=(systemd)

export DEBIAN_FRONTEND=noninteractive

say() { echo "deps: $*" >&2; }
die() { echo "deps: error: $*" >&2; exit 1; }

# fail_with_log MESSAGE: show the end of the log, then stop.
fail_with_log() {
    echo "deps: error: $1 (last lines of $LOG follow)" >&2
    tail -n 30 -- "$LOG" >&2 || true
    exit 1
}

mkdir -p -- "$RUN_TOP"
# Two concurrent `make test` in one checkout must not both build the venv.
exec 8>"$RUN_TOP/deps.lock"
flock -w 600 8 || die "timed out waiting for another deps.sh ($RUN_TOP/deps.lock)"
: >"$LOG"

# --- apt -----------------------------------------------------------------------------------------

is_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == *" ok installed" ]]
}

as_root() {
    if ((EUID == 0)); then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -E "$@"
    else die "need root to run: $*"
    fi
}

APT_UPDATED=0
# apt_install PACKAGE...: install those of PACKAGE that are missing; true when it installed any.
apt_install() {
    local missing=() p
    for p in "$@"; do is_installed "$p" || missing+=("$p"); done
    ((${#missing[@]} > 0)) || return 1
    command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]}, and no apt-get to install them"
    say "installing ${missing[*]}"
    if ((APT_UPDATED == 0)); then
        as_root apt-get -q update >>"$LOG" 2>&1 || fail_with_log "apt-get update failed"
        APT_UPDATED=1
    fi
    as_root apt-get -q install -y --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1 ||
        fail_with_log "apt-get install ${missing[*]} failed"
    NEWLY_INSTALLED+=("${missing[@]}")
}

# Installing redis-server or postgresql starts their system services on 6379/5432 where an init
# system allows it. Herald's tests never use them (they run private servers on other ports), so when
# this script is what installed them, stop them again; they stay enabled and the machine's owner
# may start them at will.
stop_system_service() {
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
        as_root systemctl stop "$1" >>"$LOG" 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
        as_root service "$1" stop >>"$LOG" 2>&1 || true
    fi
}

NEWLY_INSTALLED=()
if command -v dpkg-query >/dev/null 2>&1; then
    wanted=("${APT_PACKAGES[@]}")
    ((RUNTIME_ONLY)) || wanted+=("${TEST_APT_PACKAGES[@]}")
    apt_install "${wanted[@]}" || true
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv || true
    for svc in redis-server postgresql; do
        if [[ " ${NEWLY_INSTALLED[*]} " == *" $svc "* ]]; then
            stop_system_service "$svc"
            say "stopped the system $svc service apt may have started (the tests use private servers)"
        fi
    done
else
    say "not a Debian system (no dpkg); assuming ${APT_PACKAGES[*]} are installed"
fi

command -v swift >/dev/null 2>&1 ||
    die "swift is not on PATH; install a Swift 6 toolchain (https://www.swift.org/install/linux/)"

# --- Python venv ---------------------------------------------------------------------------------

venv_ok() {
    [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c 'import pip' >/dev/null 2>&1
}

# Debian's python3 ships without ensurepip; `python3 -m venv` then fails until python3-venv is
# installed. A non-Debian python3 first on PATH (pyenv and the like) that cannot make a venv is
# replaced by Debian's /usr/bin/python3.
make_venv() {
    local py
    py=$(command -v python3 || true)
    say "creating .run/venv"
    rm -rf -- "$VENV"
    if [[ -n $py ]] && "$py" -m venv "$VENV" >>"$LOG" 2>&1 && venv_ok; then return 0; fi
    rm -rf -- "$VENV"
    apt_install python3 python3-venv || true
    py=/usr/bin/python3
    [[ -x $py ]] || fail_with_log "no usable python3 to create $VENV"
    if ! { "$py" -m venv "$VENV" >>"$LOG" 2>&1 && venv_ok; }; then
        fail_with_log "python3 -m venv $VENV failed"
    fi
}

((RUNTIME_ONLY == 0)) || exit 0
venv_ok || make_venv

want=$({ sha256sum <"$REQUIREMENTS"; "$VENV/bin/python" -VV; } | sha256sum | cut -d' ' -f1)
if [[ $(cat -- "$STAMP" 2>/dev/null || true) != "$want" ]]; then
    say "installing Python packages from Tests/Support/requirements.txt"
    rm -f -- "$STAMP"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$REQUIREMENTS" \
        >>"$LOG" 2>&1 || fail_with_log "pip install -r Tests/Support/requirements.txt failed"
    echo "$want" >"$STAMP"
fi
