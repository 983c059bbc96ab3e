#!/usr/bin/env bash
#
# devstack.sh - the Roomcast development stack: PostgreSQL 15, the FastCGI
# workers and lighttpd, all run from the checkout on 127.0.0.1.
#
# Everything the stack writes lives in state/: state/pg is the database
# cluster, state/run holds the sockets and pid files, state/log the logs
# (postgres.log, lighttpd-error.log, lighttpd-access.log, fcgi-K.log).
# Commands stop only the processes named by those pid files. Not for
# production: deploy/lighttpd.conf and deploy/spawn-fcgi.sh show how to
# run Roomcast for real. Used by the Makefile (run, stop, status, dburl,
# test, bench) and by the integration tests, as ROOMCAST_STACK.
#
# Usage: deploy/devstack.sh COMMAND [ARG...]
#   start              start whatever is not running; a no-op when all runs
#   stop               stop lighttpd, the workers and PostgreSQL
#   status             one line per part; exit 0 when all of it runs, else 3
#   dburl              print the libpq conninfo of the database, nothing else
#   pg-stop, pg-start  PostgreSQL alone (tests simulate a database restart)
#   restart-workers    stop and start the FastCGI workers
#   run                start, print the URL, wait until Ctrl-C (or until
#                      lighttpd is stopped from elsewhere), then stop what
#                      this command started
#   with CMD [ARG...]  start, run CMD with the ROOMCAST_* variables the
#                      integration tests read, stop what this command
#                      started, and exit with CMD's status
#
# Environment, with defaults:
#   PORT=8080                 lighttpd's port on 127.0.0.1
#   ROOMCAST_WORKERS=2        FastCGI worker processes
#   LIGHTTPD_WORKERS=1        lighttpd processes (server.max-worker)
#   ROOMCAST_FCGI_BIN=bin/roomcast-fcgi   the worker program
#   ROOMCAST_WS_BIN=bin/roomcast-ws       started only when it exists
#   ROOMCAST_WS_LISTEN=127.0.0.1:8081     where roomcast-ws listens
#   ROOMCAST_STATE=state      (in the checkout) where run-time files go
#   PG_BIN=/usr/lib/postgresql/15/bin     initdb, pg_ctl, pg_isready, psql
#
# Needs root for everything but status and dburl: PostgreSQL refuses to
# run as root, so it runs as the postgres system user through runuser, and
# that user must be able to traverse every directory down to state/. The
# packages come from deploy/install-deps.sh (make deps).

set -eu

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
STATE=$(realpath -m -- "${ROOMCAST_STATE:-$ROOT/state}")
RUN=$STATE/run
LOGDIR=$STATE/log
PGDATA=$STATE/pg
PG_PORT=5432
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PORT=${PORT:-8080}
WORKERS=${ROOMCAST_WORKERS:-2}
LIGHTTPD_WORKERS=${LIGHTTPD_WORKERS:-1}
FCGI_BIN=${ROOMCAST_FCGI_BIN:-$ROOT/bin/roomcast-fcgi}
WS_BIN=${ROOMCAST_WS_BIN:-$ROOT/bin/roomcast-ws}
WS_LISTEN=${ROOMCAST_WS_LISTEN:-127.0.0.1:8081}
DBURL="host=$RUN port=$PG_PORT dbname=roomcast user=roomcast"
URL="http://127.0.0.1:$PORT"
LIGHTTPD_CONF=$STATE/lighttpd.conf

# Bounds of every wait, in tenths of a second.
HTTP_WAIT_TENTHS=100
STOP_WAIT_TENTHS=100
PG_READY_TRIES=30
WORKER_SETTLE_TENTHS=10

# What this invocation started, so that run and with stop exactly that.
STARTED=()

say() {
    printf 'devstack: %s\n' "$*"
}

die() {
    printf 'devstack: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n 's/^# \{0,1\}//; /^Usage:/,/^$/p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# --- checks ------------------------------------------------------------------

# Paths go unquoted into a conninfo string and into lighttpd's config, and a
# unix socket path must fit in 108 bytes, so refuse what would not work.
check_settings() {
    local path
    for path in "$ROOT" "$STATE"; do
        [[ $path =~ ^[A-Za-z0-9_./+-]+$ ]] ||
            die "path '$path' has characters other than" \
                "A-Z a-z 0-9 _ . / + -; move the checkout or set ROOMCAST_STATE"
    done
    [ ${#RUN} -le 80 ] ||
        die "$RUN is too long for socket paths; set ROOMCAST_STATE shorter"
    [[ $PORT =~ ^[1-9][0-9]{0,4}$ ]] && [ "$PORT" -le 65535 ] ||
        die "PORT=$PORT is not a port number"
    [[ $WORKERS =~ ^[1-9][0-9]?$ ]] ||
        die "ROOMCAST_WORKERS=$WORKERS: give 1 to 99"
    [[ $LIGHTTPD_WORKERS =~ ^[1-9][0-9]?$ ]] ||
        die "LIGHTTPD_WORKERS=$LIGHTTPD_WORKERS: give 1 to 99"
    [[ $WS_LISTEN =~ ^[0-9.]+:[0-9]+$ ]] ||
        die "ROOMCAST_WS_LISTEN=$WS_LISTEN: give ADDRESS:PORT"
}

check_root() {
    [ "$(id -u)" = 0 ] ||
        die "run as root: PostgreSQL is started as the postgres user" \
            "through runuser"
}

check_tools() {
    local tool
    for tool in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$PG_BIN/pg_isready" \
        "$PG_BIN/psql"; do
        [ -x "$tool" ] || die "$tool is missing: run make deps (postgresql-15)"
    done
    for tool in lighttpd spawn-fcgi curl runuser setsid; do
        command -v "$tool" >/dev/null ||
            die "$tool is missing: run make deps"
    done
}

# --- processes ---------------------------------------------------------------

BOOT_TIME=$(awk '$1 == "btime" { print $2 }' /proc/stat)
CLK_TCK=$(getconf CLK_TCK)

# Prints the pid in pid file $1 when that process is alive (not a zombie)
# and started no later than the file was written. When the kernel has
# handed the pid to an unrelated process since, that process started after
# ours wrote the file, so it fails the test and is never signalled.
owned_pid() {
    local file=$1 pid stat fields mtime started
    [ -f "$file" ] || return 1
    pid=$(head -n 1 -- "$file" 2>/dev/null) || return 1
    [[ $pid =~ ^[1-9][0-9]{0,9}$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    # The name field may hold spaces; what follows its ')' splits cleanly.
    read -r -a fields <<<"${stat##*) }"
    [ "${fields[0]}" != Z ] || return 1
    started=$((BOOT_TIME + fields[19] / CLK_TCK))
    mtime=$(stat -c %Y -- "$file") || return 1
    [ "$started" -le $((mtime + 1)) ] || return 1
    printf '%s\n' "$pid"
}

is_alive() {
    local state
    state=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" \
        2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# Sends SIGTERM to the process of pid file $1 (named $2 in messages), waits
# for it to go, SIGKILL after STOP_WAIT_TENTHS; removes the pid file.
stop_pidfile() {
    local file=$1 name=$2 pid i
    if ! pid=$(owned_pid "$file"); then
        rm -f -- "$file"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_WAIT_TENTHS; i++)); do
        is_alive "$pid" || break
        sleep 0.1
    done
    if is_alive "$pid"; then
        say "$name (pid $pid) still runs after SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f -- "$file"
    say "stopped $name (pid $pid)"
}

# --- PostgreSQL --------------------------------------------------------------

as_postgres() {
    runuser -u postgres -- "$@"
}

pg_is_running() {
    if [ "$(id -u)" = 0 ]; then
        [ -f "$PGDATA/postmaster.pid" ] &&
            as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
    else
        "$PG_BIN/pg_isready" -q -h "$RUN" -p "$PG_PORT" -U roomcast \
            -d postgres -t 1
    fi
}

# state/run and state/log are shared: postgres puts its socket and log
# there, root the worker sockets, pid files and the other logs.
prepare_dirs() {
    mkdir -p -- "$STATE" "$RUN" "$LOGDIR"
    chmod 0755 "$STATE" "$RUN" "$LOGDIR"
    chown postgres:postgres "$RUN" "$LOGDIR"
    as_postgres test -w "$RUN" -a -w "$LOGDIR" ||
        die "the postgres user cannot reach $STATE: every directory" \
            "above it needs o+x (chmod o+x DIR), or set ROOMCAST_STATE"
}

pg_init() {
    [ -f "$PGDATA/PG_VERSION" ] && return 0
    mkdir -p -- "$PGDATA"
    [ -z "$(ls -A -- "$PGDATA")" ] ||
        die "$PGDATA holds files but no cluster; remove it to start afresh"
    chown postgres:postgres "$PGDATA"
    chmod 0700 "$PGDATA"
    say "creating the database cluster in $PGDATA"
    # C.UTF-8 exists on every Debian system, whatever locales are built.
    as_postgres "$PG_BIN/initdb" -D "$PGDATA" --username=roomcast \
        --auth=trust -E UTF8 --locale=C.UTF-8 >"$LOGDIR/initdb.log" 2>&1 || {
        tail -n 20 "$LOGDIR/initdb.log" >&2
        die "initdb failed; the whole output is in $LOGDIR/initdb.log"
    }
    echo "include_if_exists = 'roomcast-dev.conf'" >>"$PGDATA/postgresql.conf"
}

# Written on every start, so the socket path follows the checkout.
pg_write_conf() {
    cat >"$PGDATA/roomcast-dev.conf" <<EOF
# Written by deploy/devstack.sh on every start; edits here are lost.
# No TCP, and the socket in state/run: this cluster never meets another
# one on port 5432, such as Debian's own in /var/run/postgresql.
listen_addresses = ''
unix_socket_directories = '$RUN'
port = $PG_PORT
# Each worker process holds two connections; tests and tools add a few.
max_connections = 200
EOF
    chown postgres:postgres "$PGDATA/roomcast-dev.conf"
}

pg_wait_ready() {
    local i
    for ((i = 0; i < PG_READY_TRIES; i++)); do
        "$PG_BIN/pg_isready" -q -h "$RUN" -p "$PG_PORT" -U roomcast \
            -d postgres -t 1 && return 0
        sleep 1
    done
    die "PostgreSQL does not accept connections; see $LOGDIR/postgres.log"
}

pg_start() {
    if pg_is_running; then
        return 0
    fi
    prepare_dirs
    pg_init
    pg_write_conf
    as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$LOGDIR/postgres.log" \
        -w -t 60 -s start || {
        tail -n 20 "$LOGDIR/postgres.log" >&2
        die "PostgreSQL did not start; see $LOGDIR/postgres.log"
    }
    STARTED+=(pg)
    pg_wait_ready
    say "started PostgreSQL (socket in $RUN)"
}

pg_stop() {
    pg_is_running || return 0
    as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 -s stop
    say "stopped PostgreSQL"
}

db_ensure() {
    local admin="host=$RUN port=$PG_PORT dbname=postgres user=roomcast"
    local found
    found=$("$PG_BIN/psql" -X -q -A -t -d "$admin" \
        -c "SELECT 1 FROM pg_database WHERE datname = 'roomcast'")
    if [ "$found" != 1 ]; then
        "$PG_BIN/psql" -X -q -d "$admin" -c 'CREATE DATABASE roomcast'
        say "created database roomcast"
    fi
}

db_migrate() {
    local tool=$ROOT/deploy/roomcast-migrate
    if [ ! -f "$tool" ]; then
        say "deploy/roomcast-migrate is not there yet: schema not applied"
    elif [ -x "$tool" ]; then
        "$tool" "$DBURL" || die "migrations failed"
    else
        bash "$tool" "$DBURL" || die "migrations failed"
    fi
    demo_room
}

# The demo page talks to room 'demo' without a token, so the dev stack
# makes that one room public. Every other room needs a token, as in
# production.
demo_room() {
    "$PG_BIN/psql" -X -q -d "$DBURL" -c "INSERT INTO roomcast.rooms
        (name, public_read, public_write) VALUES ('demo', true, true)
        ON CONFLICT (name) DO NOTHING" >/dev/null 2>&1 ||
        say "could not create the public room 'demo'"
}

# --- FastCGI workers ---------------------------------------------------------

worker_start() {
    local k=$1
    local sock=$RUN/fcgi-$k.sock pidfile=$RUN/fcgi-$k.pid
    local log=$LOGDIR/fcgi-$k.log out
    owned_pid "$pidfile" >/dev/null && return 0
    rm -f -- "$sock" "$pidfile"
    # spawn-fcgi points the child's stdout and stderr at /dev/null, so a
    # shell first opens the log as stderr, then becomes the worker (the pid
    # in the pid file stays the worker's).
    out=$(ROOMCAST_DB=$DBURL spawn-fcgi -s "$sock" -M 0660 -P "$pidfile" \
        -- /bin/sh -c 'exec "$0" 2>>"$1"' "$FCGI_BIN" "$log" 2>&1) || {
        printf '%s\n' "$out" >&2
        tail -n 20 -- "$log" >&2 2>/dev/null || true
        die "worker $k did not start; see $log"
    }
    STARTED+=("worker-$k")
    say "started worker $k (pid $(cat -- "$pidfile"), $sock)"
}

# spawn-fcgi notices only a worker that dies at once; this watches the
# workers for WORKER_SETTLE_TENTHS more, to catch one that gives up a
# moment later, for example on a bad setting.
workers_check() {
    local k log i
    for ((i = 0; i <= WORKER_SETTLE_TENTHS; i += 2)); do
        for ((k = 1; k <= WORKERS; k++)); do
            log=$LOGDIR/fcgi-$k.log
            owned_pid "$RUN/fcgi-$k.pid" >/dev/null && continue
            tail -n 20 -- "$log" >&2 2>/dev/null || true
            die "worker $k exited; see $log"
        done
        [ "$i" -lt "$WORKER_SETTLE_TENTHS" ] && sleep 0.2
    done
    return 0
}

# Every worker with a pid file, also those beyond ROOMCAST_WORKERS left
# from a start with a larger count.
worker_numbers() {
    local file k
    for file in "$RUN"/fcgi-*.pid; do
        [ -e "$file" ] || continue
        k=${file##*/fcgi-}
        k=${k%.pid}
        [[ $k =~ ^[0-9]+$ ]] && printf '%s\n' "$k"
    done | sort -n
}

worker_stop() {
    stop_pidfile "$RUN/fcgi-$1.pid" "worker $1"
    rm -f -- "$RUN/fcgi-$1.sock"
}

workers_start() {
    local k
    if [ ! -x "$FCGI_BIN" ]; then
        say "$FCGI_BIN is missing (make builds it): no workers, /rt answers 503"
        return 0
    fi
    for ((k = 1; k <= WORKERS; k++)); do
        worker_start "$k"
    done
}

workers_stop() {
    local k
    for k in $(worker_numbers); do
        worker_stop "$k"
    done
}

# --- roomcast-ws, when built -------------------------------------------------

ws_start() {
    local pidfile=$RUN/ws.pid
    [ -x "$WS_BIN" ] || return 0
    owned_pid "$pidfile" >/dev/null && return 0
    # setsid: its own session, so Ctrl-C in the terminal that ran
    # `make run` reaches it only through this script's trap.
    ROOMCAST_DB=$DBURL ROOMCAST_WS_LISTEN=$WS_LISTEN \
        setsid "$WS_BIN" </dev/null >>"$LOGDIR/ws.log" 2>&1 &
    echo "$!" >"$pidfile"
    STARTED+=(ws)
    say "started roomcast-ws (pid $!, $WS_LISTEN)"
}

ws_stop() {
    stop_pidfile "$RUN/ws.pid" roomcast-ws
}

# --- lighttpd ----------------------------------------------------------------

write_lighttpd_conf() {
    local k
    {
        echo "# Written by deploy/devstack.sh on every start; edits here" \
            "are lost."
        echo "# The settings live in deploy/lighttpd-dev.conf."
        echo "var.roomcast_root = \"$ROOT\""
        echo "var.roomcast_state = \"$STATE\""
        echo "var.roomcast_port = $PORT"
        echo "var.roomcast_max_worker = $LIGHTTPD_WORKERS"
        echo "var.roomcast_ws_host = \"${WS_LISTEN%:*}\""
        echo "var.roomcast_ws_port = ${WS_LISTEN##*:}"
        echo "var.roomcast_fcgi_hosts = ("
        for ((k = 1; k <= WORKERS; k++)); do
            echo "    ( \"socket\" => \"$RUN/fcgi-$k.sock\"," \
                "\"check-local\" => \"disable\" ),"
        done
        echo ")"
        echo "include \"$ROOT/deploy/lighttpd-dev.conf\""
    } >"$LIGHTTPD_CONF"
}

http_wait() {
    local i code
    for ((i = 0; i < HTTP_WAIT_TENTHS; i++)); do
        code=$(curl -s --noproxy '*' -o /dev/null -m 1 -w '%{http_code}' \
            "$URL/" 2>/dev/null || true)
        [ -n "$code" ] && [ "$code" != 000 ] && return 0
        sleep 0.1
    done
    die "lighttpd does not answer at $URL/; see $LOGDIR/lighttpd-error.log"
}

# A running lighttpd keeps the port it was started with, so the URL this
# script prints and exports names that port, whatever PORT says now.
adopt_running_port() {
    local port
    owned_pid "$RUN/lighttpd.pid" >/dev/null || return 0
    port=$(sed -n 's/^var\.roomcast_port = \([0-9]*\)$/\1/p' \
        "$LIGHTTPD_CONF" 2>/dev/null) || return 0
    [ -n "$port" ] || return 0
    [ "$port" = "$PORT" ] ||
        printf 'devstack: lighttpd already runs on port %s; PORT=%s %s\n' \
            "$port" "$PORT" "takes effect after a stop" >&2
    PORT=$port
    URL="http://127.0.0.1:$PORT"
}

lighttpd_start() {
    local pidfile=$RUN/lighttpd.pid out
    if owned_pid "$pidfile" >/dev/null; then
        return 0
    fi
    rm -f -- "$pidfile"
    write_lighttpd_conf
    out=$(lighttpd -tt -f "$LIGHTTPD_CONF" 2>&1) || {
        printf '%s\n' "$out" >&2
        die "lighttpd rejects $LIGHTTPD_CONF"
    }
    # lighttpd binds before it detaches, so a taken port fails here.
    lighttpd -f "$LIGHTTPD_CONF" ||
        die "lighttpd did not start (port $PORT taken?); see" \
            "$LOGDIR/lighttpd-error.log"
    STARTED+=(lighttpd)
    http_wait
    say "started lighttpd (pid $(cat -- "$pidfile"), $URL/)"
}

lighttpd_stop() {
    stop_pidfile "$RUN/lighttpd.pid" lighttpd
}

# --- the whole stack ---------------------------------------------------------

start_all() {
    check_root
    check_tools
    prepare_dirs
    pg_start
    db_ensure
    db_migrate
    workers_start
    ws_start
    lighttpd_start
    if [ -x "$FCGI_BIN" ]; then
        workers_check
    fi
}

stop_all() {
    check_root
    lighttpd_stop
    ws_stop
    workers_stop
    pg_stop
}

was_started() {
    local part
    for part in "${STARTED[@]+"${STARTED[@]}"}"; do
        [ "$part" = "$1" ] && return 0
    done
    return 1
}

# Stops, in reverse order, the parts this invocation started. Signals are
# ignored meanwhile: every step is bounded, and a second Ctrl-C would
# otherwise leave half a stack behind.
stop_started() {
    local k
    trap '' INT TERM HUP
    was_started lighttpd && lighttpd_stop
    was_started ws && ws_stop
    for k in $(worker_numbers); do
        was_started "worker-$k" && worker_stop "$k"
    done
    was_started pg && pg_stop
    STARTED=()
}

print_status() {
    local k pid all=0 pg_pid
    if pg_is_running; then
        pg_pid=$(head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null || echo '?')
        say "postgresql   running (pid $pg_pid), $DBURL"
    else
        say "postgresql   stopped"
        all=3
    fi
    for ((k = 1; k <= WORKERS; k++)); do
        if pid=$(owned_pid "$RUN/fcgi-$k.pid"); then
            say "worker $k     running (pid $pid), $RUN/fcgi-$k.sock"
        else
            say "worker $k     stopped"
            all=3
        fi
    done
    for k in $(worker_numbers); do
        [ "$k" -le "$WORKERS" ] && continue
        pid=$(owned_pid "$RUN/fcgi-$k.pid") &&
            say "worker $k     running (pid $pid), beyond ROOMCAST_WORKERS"
    done
    if [ -x "$WS_BIN" ]; then
        if pid=$(owned_pid "$RUN/ws.pid"); then
            say "roomcast-ws  running (pid $pid), $WS_LISTEN"
        else
            say "roomcast-ws  stopped"
            all=3
        fi
    fi
    if pid=$(owned_pid "$RUN/lighttpd.pid"); then
        say "lighttpd     running (pid $pid), $URL/"
    else
        say "lighttpd     stopped"
        all=3
    fi
    return "$all"
}

cmd_start() {
    start_all
    if [ ${#STARTED[@]} -eq 0 ]; then
        say "already running: $URL/"
    else
        say "up: $URL/"
    fi
}

cmd_run() {
    # EXIT covers a failed start, Ctrl-C and the normal end alike. Ctrl-C
    # is how this command is meant to end, hence status 0.
    trap stop_started EXIT
    trap 'echo; exit 0' INT TERM HUP
    start_all
    if [ ${#STARTED[@]} -eq 0 ]; then
        say "the stack was already running; Ctrl-C here leaves it running" \
            "(make stop stops it)"
    fi
    say "Roomcast demo: $URL/"
    say "Ctrl-C stops what this command started"
    # Waits as long as the stack is up; `make stop` elsewhere ends it too.
    while owned_pid "$RUN/lighttpd.pid" >/dev/null; do
        sleep 1
    done
    say "lighttpd has stopped; stopping what this command started"
}

cmd_with() {
    local status
    [ $# -ge 1 ] || usage
    # Quiet on the way out, so that CMD's own summary (prove's) stays the
    # last thing printed; errors still reach stderr.
    trap 'stop_started >/dev/null' EXIT
    trap 'exit 130' INT TERM HUP
    start_all
    export ROOMCAST_URL=$URL ROOMCAST_DB=$DBURL ROOMCAST_STATE=$STATE \
        ROOMCAST_ROOT=$ROOT ROOMCAST_STACK=$ROOT/deploy/devstack.sh
    set +e
    "$@"
    status=$?
    set -e
    exit "$status"
}

main() {
    [ $# -ge 1 ] || usage
    local command=$1
    shift
    check_settings
    [ "$command" = dburl ] || adopt_running_port
    case $command in
    start) cmd_start ;;
    stop) stop_all ;;
    status) print_status ;;
    dburl) printf '%s\n' "$DBURL" ;;
    pg-start)
        check_root
        check_tools
        pg_start
        ;;
    pg-stop)
        check_root
        pg_stop
        ;;
    restart-workers)
        check_root
        workers_stop
        workers_start
        if [ -x "$FCGI_BIN" ]; then
            workers_check
        fi
        ;;
    run) cmd_run ;;
    with) cmd_with "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
    esac
}

main "$@"
