#!/usr/bin/env bash
# services.sh: private, throwaway Redis and PostgreSQL servers for Herald's tests, `make run` and
# `make bench`.
#
# Why: the tests need real servers, but must never depend on (or disturb) whatever the machine runs on
# the default ports 6379/5432, and two checkouts or two test runs must not collide. So every server
# here lives in one run directory, listens on 127.0.0.1 on a free non-default port, and is stopped by
# the same script that started it.
#
#   services.sh start          start both (a no-op for what already runs), write <run dir>/env
#   services.sh stop           stop both; fine when they are already stopped
#   services.sh status         print what runs; exit 0 when both run, 3 otherwise
#   services.sh redis-restart  stop Redis and start it again on the same port and socket
#   services.sh outage-start   stop Redis and PostgreSQL (ports kept); outage-end starts both again
#   services.sh env            print <run dir>/env (export lines, for `source`)
#   services.sh createdb NAME  create database NAME in the private cluster when it is missing
#   services.sh loadschema NAME FILE  create database NAME, load the SQL FILE into it, mark it a template
#   services.sh destroy        stop both and delete the run directory (and its /tmp base, if any)
#   services.sh reap           destroy leftover .run/test-<pid> and .run/bench-<pid> directories
#                              whose owning process is gone
#
# The run directory is $HERALD_RUN_DIR, default <repo>/.run/services. Must run as root (PostgreSQL is
# run as the `postgres` user through runuser) or as the postgres user itself.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
SERVICES_SH="$SCRIPT_DIR/$(basename -- "${BASH_SOURCE[0]}")"
REPO_ROOT=$(cd -- "$SCRIPT_DIR/../.." && pwd)

RUN_DIR=${HERALD_RUN_DIR:-$REPO_ROOT/.run/services}
[[ $RUN_DIR == /* ]] || RUN_DIR="$PWD/$RUN_DIR"
RUN_DIR=${RUN_DIR%/}

REDIS_DEFAULT_PORT=16379
PG_DEFAULT_PORT=16432
MARKER=.herald-run-dir  # written into every directory this script may later rm -rf

# Waits are polls with a deadline, never fixed sleeps.
REDIS_START_TIMEOUT=15  # seconds
REDIS_STOP_TIMEOUT=10
PG_START_TIMEOUT=60

die() { echo "services.sh: $*" >&2; exit 1; }
note() { echo "services.sh: $*" >&2; }

# --- helpers -------------------------------------------------------------------------------------

python_bin() {
    if command -v python3 >/dev/null 2>&1; then echo python3
    elif [[ -x $REPO_ROOT/.run/venv/bin/python ]]; then echo "$REPO_ROOT/.run/venv/bin/python"
    else die "python3 is needed to find free ports (run Tests/Support/deps.sh)"
    fi
}

# port_free PORT: true when nothing listens on 127.0.0.1:PORT. SO_REUSEADDR as the servers use it, so
# TIME_WAIT leftovers of an earlier run do not count as busy.
port_free() {
    "$(python_bin)" - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

# any_free_port: a port the kernel says is free right now.
any_free_port() {
    "$(python_bin)" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# pick_port PREFERRED...: the first preferred port that is free, else any free port.
pick_port() {
    local p
    for p in "$@"; do
        [[ -n $p ]] && port_free "$p" && { echo "$p"; return; }
    done
    any_free_port
}

# wait_until SECONDS COMMAND...: poll COMMAND every 50 ms until it succeeds; false on timeout.
wait_until() {
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# A zombie counts as gone: daemons are reparented to pid 1, which may reap them late (it does here).
pid_alive() {
    [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}
pid_gone() { ! pid_alive "$1"; }

# wait_gone PID SECONDS: true once PID has exited.
wait_gone() { wait_until "$2" pid_gone "$1"; }

read_file() { [[ -s $1 ]] && head -n1 -- "$1"; }

as_postgres() {
    if [[ $(id -un) == postgres ]]; then "$@"
    elif ((EUID == 0)); then runuser -u postgres -- "$@"
    else die "run as root (PostgreSQL runs as the postgres user through runuser)"
    fi
}

# detached COMMAND...: run COMMAND (a function is fine) with stdin from /dev/null and no inherited
# descriptor above 2. The servers outlive this script and keep open whatever they inherit: our lock
# (fd 9), a pipe a caller reads to EOF, or the socket swift-corelibs-foundation's Process hands each
# child to learn that it exited. That last one made a Swift test calling `services.sh redis-restart`
# hang forever in waitUntilExit while redis-server held a copy.
detached() {
    (
        local fd
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-"; fi
        done
        "$@" </dev/null
    )
}

# Holds an exclusive lock on the run directory for the rest of the script (servers are started through
# `detached`, so they do not inherit it).
lock_run_dir() {
    exec 9>"$RUN_DIR/.lock"
    flock -w 120 9 || die "timed out waiting for the lock on $RUN_DIR"
}

make_run_dir() {
    mkdir -p -- "$RUN_DIR"
    [[ -e $RUN_DIR/$MARKER ]] || : >"$RUN_DIR/$MARKER"
    # The postgres user must be able to traverse the run directory (see choose_base).
    chmod 755 -- "$RUN_DIR"
    [[ $RUN_DIR != "$REPO_ROOT/.run/"* ]] || chmod 755 -- "$REPO_ROOT/.run"
}

# --- where the sockets and the PostgreSQL cluster live -------------------------------------------
#
# Normally inside the run directory: <run dir>/redis.sock and <run dir>/pg/{data,sock,postgres.log}.
# Two things can make that impossible, and then everything socket- and postgres-related goes to
# /tmp/herald-<hash of the run dir path> instead (recorded in <run dir>/base, removed by `destroy`):
#   - PostgreSQL runs as the `postgres` user, which needs search (x) permission on every directory
#     of the path. The project directory belongs to whoever checked it out (root here); we only chmod
#     directories this script creates, never the user's own ones.
#   - A unix socket path is limited to 107 bytes; a deep checkout can exceed it.
choose_base() {
    local base
    if base=$(read_file "$RUN_DIR/base"); then echo "$base"; return; fi
    base=$RUN_DIR
    if ((${#RUN_DIR} > 80)) || ! as_postgres test -x "$RUN_DIR" 2>/dev/null; then
        base="/tmp/herald-$(printf '%s' "$RUN_DIR" | sha256sum | cut -c1-12)"
        mkdir -p -- "$base"
        chmod 755 -- "$base"
        : >"$base/$MARKER"
    fi
    echo "$base" >"$RUN_DIR/base"
    echo "$base"
}

# Sets the path variables; reads <run dir>/base when it exists, otherwise leaves BASE empty
# (nothing was ever started here).
load_paths() {
    BASE=$(read_file "$RUN_DIR/base" || true)
    REDIS_PIDFILE="$RUN_DIR/redis.pid"
    REDIS_LOG="$RUN_DIR/redis.log"
    REDIS_PORTFILE="$RUN_DIR/redis.port"
    REDIS_SOCK="${BASE:-$RUN_DIR}/redis.sock"
    PG_DIR="${BASE:-$RUN_DIR}/pg"
    PG_DATA="$PG_DIR/data"
    PG_SOCK_DIR="$PG_DIR/sock"
    PG_LOG="$PG_DIR/postgres.log"
    PG_PORTFILE="$RUN_DIR/pg.port"
}

# --- Redis ---------------------------------------------------------------------------------------

# The pid of our running redis-server, or false. Checks the process name so a recycled pid does not
# count.
redis_pid() {
    local pid
    pid=$(read_file "$REDIS_PIDFILE") || return 1
    pid_alive "$pid" || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server* ]] || return 1
    echo "$pid"
}

redis_cli() { timeout 5 redis-cli "$@"; }

redis_pong() { [[ $(redis_cli -s "$REDIS_SOCK" ping 2>/dev/null) == PONG ]]; }

# redis_start_on PORT: 0 when up, 2 when the port was taken, 1 on any other failure.
redis_start_on() {
    local port=$1 log_offset=0 rc
    [[ -f $REDIS_LOG ]] && log_offset=$(stat -c %s -- "$REDIS_LOG")
    rm -f -- "$REDIS_PIDFILE" "$REDIS_SOCK"
    detached redis-server --port "$port" --bind 127.0.0.1 \
        --save '' --appendonly no --hz 100 --daemonize yes \
        --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_LOG" --dir "$RUN_DIR" \
        --unixsocket "$REDIS_SOCK" --unixsocketperm 777 ||
        return 1
    local deadline=$((SECONDS + REDIS_START_TIMEOUT))
    while ! redis_pong; do
        # The daemonized child exits when it cannot listen; its log says why.
        if tail -c +$((log_offset + 1)) -- "$REDIS_LOG" 2>/dev/null |
            grep -q -e 'Address already in use' -e 'Could not create server TCP listening socket'; then
            return 2
        fi
        if ((SECONDS >= deadline)); then
            note "redis-server did not answer PING within ${REDIS_START_TIMEOUT}s; log: $REDIS_LOG"
            tail -n 20 -- "$REDIS_LOG" >&2 2>/dev/null || true
            return 1
        fi
        sleep 0.05
    done
    # The socket is ours alone; make sure the TCP port reaches the same process.
    local tcp_pid our_pid
    our_pid=$(redis_pid || true)
    tcp_pid=$(redis_cli -p "$port" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p' || true)
    if [[ -z $our_pid || $tcp_pid != "$our_pid" ]]; then redis_stop; return 2; fi
    echo "$port" >"$REDIS_PORTFILE"
}

redis_start() {
    local port attempt rc
    if redis_pid >/dev/null && redis_pong; then return 0; fi
    redis_stop  # a half-dead leftover
    for attempt in 1 2 3 4 5; do
        if ((attempt == 1)); then
            port=$(pick_port "$(read_file "$REDIS_PORTFILE" || true)" "$REDIS_DEFAULT_PORT")
        else
            port=$(any_free_port)
        fi
        rc=0
        redis_start_on "$port" || rc=$?
        ((rc == 0)) && return 0
        ((rc == 2)) || die "could not start redis-server (log: $REDIS_LOG)"
        note "port $port was taken, trying another"
    done
    die "could not find a free port for redis-server"
}

redis_stop() {
    local pid
    if ! pid=$(redis_pid); then
        rm -f -- "$REDIS_PIDFILE"
        return 0
    fi
    redis_cli -s "$REDIS_SOCK" shutdown nosave >/dev/null 2>&1 || true
    if ! wait_gone "$pid" "$REDIS_STOP_TIMEOUT"; then
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 5 || true; }
    fi
    pid_gone "$pid" || die "redis-server (pid $pid) would not stop"
    rm -f -- "$REDIS_PIDFILE" "$REDIS_SOCK"
}

redis_restart() {
    local port rc=0
    port=$(read_file "$REDIS_PORTFILE") || die "redis was never started in $RUN_DIR"
    redis_stop
    redis_start_on "$port" || rc=$?
    case $rc in
        0) ;;
        2) die "port $port was taken while redis was down; cannot restart on the same port" ;;
        *) die "could not restart redis-server on port $port (log: $REDIS_LOG)" ;;
    esac
}

# --- PostgreSQL ----------------------------------------------------------------------------------

# The bin directory of the newest installed PostgreSQL (Debian: /usr/lib/postgresql/<major>/bin), or
# $HERALD_PG_BINDIR.
pg_bindir() {
    if [[ -n ${HERALD_PG_BINDIR:-} ]]; then echo "$HERALD_PG_BINDIR"; return; fi
    local d
    d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n1)
    [[ -n $d ]] || die "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); run Tests/Support/deps.sh"
    dirname -- "$d"
}

pg() { local tool=$1; shift; "$PG_BIN/$tool" "$@"; }

# Line 1 of postmaster.pid is the pid, line 4 the port.
pg_pid() {
    local pid
    pid=$(sed -n 1p -- "$PG_DATA/postmaster.pid" 2>/dev/null) || return 1
    pid_alive "$pid" || return 1
    echo "$pid"
}

pg_running() { [[ -d $PG_DATA ]] && as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

pg_port() {
    local port
    port=$(sed -n 4p -- "$PG_DATA/postmaster.pid" 2>/dev/null || true)
    [[ -n $port ]] || port=$(read_file "$PG_PORTFILE") || return 1
    echo "$port"
}

pg_ready() { pg pg_isready -q -h "$PG_SOCK_DIR" -p "$1" && pg pg_isready -q -h 127.0.0.1 -p "$1"; }

pg_init() {
    mkdir -p -- "$PG_DIR" "$PG_SOCK_DIR"
    chown postgres:postgres -- "$PG_DIR" "$PG_SOCK_DIR"
    chmod 755 -- "$PG_DIR"
    chmod 1777 -- "$PG_SOCK_DIR"  # postgres creates its socket here; clients of any user connect
    [[ -s $PG_DATA/PG_VERSION ]] && return 0
    rm -rf -- "$PG_DATA"
    if ! as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1; then
        cat -- "$PG_DIR/initdb.log" >&2
        die "initdb failed"
    fi
    # Everyone is trusted, except members of herald_password_login over TCP: a test that must
    # prove a password is sent and checked (a Dify-like DB_* login) makes its role one of them.
    as_postgres sed -i '1i host all +herald_password_login 127.0.0.1/32 scram-sha-256' -- "$PG_DATA/pg_hba.conf"
}

# pg_start_on PORT: 0 when up, 2 when the port was taken, 1 on any other failure.
pg_start_on() {
    local port=$1 log_offset=0
    [[ -f $PG_LOG ]] && log_offset=$(stat -c %s -- "$PG_LOG")
    if ! detached as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$PG_START_TIMEOUT" \
        -o "-p $port -k '$PG_SOCK_DIR' -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null 2>&1; then
        if tail -c +$((log_offset + 1)) -- "$PG_LOG" 2>/dev/null |
            grep -q -e 'could not bind' -e 'Address already in use'; then
            return 2
        fi
        note "PostgreSQL did not start; log: $PG_LOG"
        tail -n 20 -- "$PG_LOG" >&2 2>/dev/null || true
        return 1
    fi
    wait_until "$PG_START_TIMEOUT" pg_ready "$port" || { note "pg_isready never succeeded on port $port"; return 1; }
    echo "$port" >"$PG_PORTFILE"
}

pg_start() {
    local port attempt rc
    pg_init
    if pg_running; then
        port=$(pg_port) || die "PostgreSQL runs but its port is unknown"
        echo "$port" >"$PG_PORTFILE"
        wait_until "$PG_START_TIMEOUT" pg_ready "$port" || die "PostgreSQL runs but is not ready"
        return 0
    fi
    for attempt in 1 2 3 4 5; do
        if ((attempt == 1)); then
            port=$(pick_port "$(read_file "$PG_PORTFILE" || true)" "$PG_DEFAULT_PORT")
        else
            port=$(any_free_port)
        fi
        rc=0
        pg_start_on "$port" || rc=$?
        ((rc == 0)) && return 0
        ((rc == 2)) || die "could not start PostgreSQL (log: $PG_LOG)"
        note "port $port was taken, trying another"
    done
    die "could not find a free port for PostgreSQL"
}

pg_stop() {
    [[ -d $PG_DATA ]] || return 0
    if pg_running; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" stop -m fast -w -t 30 >/dev/null 2>&1 ||
            as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" stop -m immediate -w -t 30 >/dev/null 2>&1 ||
            die "PostgreSQL in $PG_DATA would not stop"
    fi
}

pg_createdb() {
    local name=$1 port exists
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "bad database name: $name"
    pg_running || die "PostgreSQL is not running in $RUN_DIR (services.sh start first)"
    port=$(pg_port)
    exists=$(pg psql -X -q -A -t -h "$PG_SOCK_DIR" -p "$port" -U postgres -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = '$name'")
    [[ $exists == 1 ]] || pg createdb -h "$PG_SOCK_DIR" -p "$port" -U postgres "$name"
}

# --- env file ------------------------------------------------------------------------------------

write_env() {
    local rport pport tmp
    rport=$(read_file "$REDIS_PORTFILE")
    pport=$(pg_port)
    tmp="$RUN_DIR/env.tmp"
    {
        echo "# Written by $SERVICES_SH start; source it."
        printf 'export %s=%q\n' \
            HERALD_TEST_REDIS_URL "redis://127.0.0.1:$rport/0" \
            HERALD_TEST_REDIS_PORT "$rport" \
            HERALD_TEST_REDIS_SOCKET "$REDIS_SOCK" \
            HERALD_TEST_DATABASE_URL "postgresql://postgres@127.0.0.1:$pport/herald_test" \
            HERALD_TEST_PG_PORT "$pport" \
            HERALD_TEST_PG_SOCKET_DIR "$PG_SOCK_DIR" \
            HERALD_TEST_PYTHON "$REPO_ROOT/.run/venv/bin/python" \
            HERALD_TEST_SERVICES "$SERVICES_SH" \
            HERALD_RUN_DIR "$RUN_DIR" \
            HERALD_TEST_REQUIRE_SERVERS 1
    } >"$tmp"
    mv -f -- "$tmp" "$RUN_DIR/env"
}

# --- commands ------------------------------------------------------------------------------------

cmd_start() {
    command -v redis-server >/dev/null || die "redis-server is not installed; run Tests/Support/deps.sh"
    make_run_dir
    lock_run_dir
    choose_base >/dev/null
    load_paths
    PG_BIN=$(pg_bindir)
    redis_start
    pg_start
    pg_createdb herald_test
    pg psql -X -q -h "$PG_SOCK_DIR" -p "$(pg_port)" -U postgres -d postgres -c \
        "DO \$\$ BEGIN CREATE ROLE herald_password_login NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" \
        >/dev/null
    write_env
}

cmd_stop() {
    [[ -d $RUN_DIR ]] || return 0
    lock_run_dir
    load_paths
    redis_stop
    if [[ -d $PG_DATA ]]; then PG_BIN=$(pg_bindir); pg_stop; fi
}

cmd_status() {
    local up=0 pid
    load_paths
    if [[ -d $RUN_DIR ]] && pid=$(redis_pid) && redis_pong; then
        echo "redis: running, pid $pid, port $(read_file "$REDIS_PORTFILE"), socket $REDIS_SOCK"
        up=$((up + 1))
    else
        echo "redis: stopped"
    fi
    if [[ -d $PG_DATA ]] && PG_BIN=$(pg_bindir) && pg_running; then
        echo "postgres: running, pid $(pg_pid || echo '?'), port $(pg_port), socket dir $PG_SOCK_DIR"
        up=$((up + 1))
    else
        echo "postgres: stopped"
    fi
    ((up == 2)) || return 3
}

# An outage of both servers, for the tests of what Herald does meanwhile: `outage-start` stops
# Redis and PostgreSQL (their ports stay recorded, so a test may listen on them meanwhile),
# `outage-end` starts both again on the same ports.
cmd_outage_start() {
    [[ -d $RUN_DIR ]] || die "nothing was started in $RUN_DIR"
    lock_run_dir
    load_paths
    PG_BIN=$(pg_bindir)
    redis_stop
    pg_stop
}

cmd_outage_end() {
    [[ -d $RUN_DIR ]] || die "nothing was started in $RUN_DIR"
    lock_run_dir
    load_paths
    PG_BIN=$(pg_bindir)
    local rport pport rc=0
    rport=$(read_file "$REDIS_PORTFILE") || die "redis was never started in $RUN_DIR"
    pport=$(read_file "$PG_PORTFILE") || die "postgres was never started in $RUN_DIR"
    redis_start_on "$rport" || rc=$?
    ((rc == 0)) || die "could not start redis-server again on port $rport (rc $rc, log: $REDIS_LOG)"
    pg_start_on "$pport" || rc=$?
    ((rc == 0)) || die "could not start PostgreSQL again on port $pport (rc $rc, log: $PG_LOG)"
}

cmd_redis_restart() {
    [[ -d $RUN_DIR ]] || die "nothing was started in $RUN_DIR"
    lock_run_dir
    load_paths
    redis_restart
}

cmd_env() {
    [[ -s $RUN_DIR/env ]] || die "no env file in $RUN_DIR (services.sh start first)"
    cat -- "$RUN_DIR/env"
}

cmd_createdb() {
    [[ $# -eq 1 ]] || die "usage: services.sh createdb NAME"
    load_paths
    PG_BIN=$(pg_bindir)
    pg_createdb "$1"
}

# A template database holding a schema file (Dify's real schema for the second test pass): made
# once per run directory, then every test database of that pass is a file copy of it.
cmd_loadschema() {
    [[ $# -eq 2 ]] || die "usage: services.sh loadschema NAME FILE"
    local name=$1 file=$2 port
    [[ -r $file ]] || die "cannot read $file"
    load_paths
    PG_BIN=$(pg_bindir)
    pg_createdb "$name"
    port=$(pg_port)
    pg psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$port" -U postgres -d "$name" -f "$file" >/dev/null ||
        die "loading $file into $name failed"
    pg psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK_DIR" -p "$port" -U postgres -d postgres \
        -c "UPDATE pg_database SET datistemplate = true WHERE datname = '$name'" >/dev/null
}

cmd_destroy() {
    [[ -d $RUN_DIR ]] || return 0
    [[ -e $RUN_DIR/$MARKER ]] || die "$RUN_DIR was not made by services.sh; not deleting it"
    cmd_stop
    exec 9>&-
    if [[ -n $BASE && $BASE != "$RUN_DIR" && -e $BASE/$MARKER ]]; then rm -rf -- "$BASE"; fi
    rm -rf -- "$RUN_DIR"
}

# Leftovers of test or bench runs that were killed before they could clean up. The directory name
# carries the owner's pid.
cmd_reap() {
    local dir pid
    for dir in "$REPO_ROOT"/.run/test-* "$REPO_ROOT"/.run/bench-*; do
        [[ -d $dir ]] || continue
        pid=${dir##*-}
        [[ $pid =~ ^[0-9]+$ ]] || continue
        pid_alive "$pid" && continue
        HERALD_RUN_DIR=$dir bash "$SERVICES_SH" destroy || note "could not clean up $dir"
    done
}

usage() {
    sed -n '/^#   services.sh/,/^#$/p' "$SERVICES_SH" | sed 's/^# \{0,1\}//' >&2
    exit "${1:-2}"
}

main() {
    local cmd=${1:-}
    (($# > 0)) && shift
    case $cmd in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        redis-restart) cmd_redis_restart ;;
        env) cmd_env ;;
        createdb) cmd_createdb "$@" ;;
        loadschema) cmd_loadschema "$@" ;;
        outage-start) cmd_outage_start "$@" ;;
        outage-end) cmd_outage_end "$@" ;;
        destroy) cmd_destroy ;;
        reap) cmd_reap ;;
        -h | --help | help) usage 0 ;;
        *) usage ;;
    esac
}

main "$@"
