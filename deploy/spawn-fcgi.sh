#!/usr/bin/env bash
#
# spawn-fcgi.sh - starts (or stops) the Roomcast FastCGI workers in
# production, one spawn-fcgi process per worker socket.
#
# For administrators, from an init script or by hand; a service manager
# can run the same spawn-fcgi command line per worker instead. Each
# worker K listens on RUN_DIR/fcgi-K.sock, which lighttpd lists as one
# host of /rt (see deploy/lighttpd.conf), and writes its log lines to
# LOG_DIR/fcgi-K.log. Not for the development stack: deploy/devstack.sh
# starts that one.
#
# Usage: deploy/spawn-fcgi.sh start|stop
# Environment, with defaults:
#   ROOMCAST_DB               libpq conninfo of the database (required)
#   ROOMCAST_WORKERS=2        worker processes; one or two per core
#   ROOMCAST_FCGI_BIN=/usr/local/bin/roomcast-fcgi
#   ROOMCAST_USER=roomcast    the account the workers run as; create it
#                             with: useradd --system --no-create-home roomcast
#   WEB_GROUP=www-data        lighttpd's group, which may use the sockets
#   RUN_DIR=/run/roomcast     sockets and pid files
#   LOG_DIR=/var/log/roomcast
#   ROOMCAST_NOFILE=65536     descriptor limit per worker: every held
#                             request costs one
# Needs root (spawn-fcgi switches to ROOMCAST_USER) and the spawn-fcgi
# package.

set -eu

WORKERS=${ROOMCAST_WORKERS:-2}
FCGI_BIN=${ROOMCAST_FCGI_BIN:-/usr/local/bin/roomcast-fcgi}
RUN_USER=${ROOMCAST_USER:-roomcast}
WEB_GROUP=${WEB_GROUP:-www-data}
RUN_DIR=${RUN_DIR:-/run/roomcast}
LOG_DIR=${LOG_DIR:-/var/log/roomcast}
NOFILE=${ROOMCAST_NOFILE:-65536}
STOP_WAIT_TENTHS=100

die() {
    printf 'spawn-fcgi.sh: %s\n' "$*" >&2
    exit 1
}

usage() {
    echo "usage: $0 start|stop" >&2
    exit 2
}

check() {
    [ "$(id -u)" = 0 ] || die "run as root: the workers switch to $RUN_USER"
    command -v spawn-fcgi >/dev/null ||
        die "spawn-fcgi is missing: apt-get install spawn-fcgi"
    [ -x "$FCGI_BIN" ] || die "$FCGI_BIN is missing: make install"
    id "$RUN_USER" >/dev/null 2>&1 ||
        die "no user $RUN_USER: useradd --system --no-create-home $RUN_USER"
    getent group "$WEB_GROUP" >/dev/null || die "no group $WEB_GROUP"
    [[ $WORKERS =~ ^[1-9][0-9]?$ ]] ||
        die "ROOMCAST_WORKERS=$WORKERS: give 1 to 99"
}

# The sockets belong to the worker user and lighttpd's group, mode 0660:
# lighttpd can connect, other local users cannot. spawn-fcgi sends the
# worker's stderr to /dev/null, so a shell opens the log first and then
# becomes the worker, keeping the pid that spawn-fcgi writes down.
start_worker() {
    local k=$1
    local sock=$RUN_DIR/fcgi-$k.sock pidfile=$RUN_DIR/fcgi-$k.pid
    local log=$LOG_DIR/fcgi-$k.log
    if [ -f "$pidfile" ] && kill -0 "$(cat -- "$pidfile")" 2>/dev/null; then
        echo "worker $k already runs (pid $(cat -- "$pidfile"))"
        return 0
    fi
    rm -f -- "$sock"
    touch -- "$log"
    chown "$RUN_USER" -- "$log"
    ROOMCAST_DB=$ROOMCAST_DB spawn-fcgi \
        -s "$sock" -U "$RUN_USER" -G "$WEB_GROUP" -M 0660 \
        -u "$RUN_USER" -g "$(id -gn "$RUN_USER")" \
        -P "$pidfile" \
        -- /bin/sh -c 'exec "$0" 2>>"$1"' "$FCGI_BIN" "$log"
}

stop_worker() {
    local pidfile=$1 pid i
    pid=$(cat -- "$pidfile" 2>/dev/null) || return 0
    if [[ $pid =~ ^[1-9][0-9]*$ ]] && kill -TERM "$pid" 2>/dev/null; then
        for ((i = 0; i < STOP_WAIT_TENTHS; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        echo "stopped pid $pid"
    fi
    rm -f -- "$pidfile"
}

cmd_start() {
    local k
    : "${ROOMCAST_DB:?set ROOMCAST_DB to the conninfo of the database}"
    check
    install -d -m 0755 "$RUN_DIR"
    install -d -m 0750 -o "$RUN_USER" "$LOG_DIR"
    ulimit -n "$NOFILE" 2>/dev/null ||
        echo "spawn-fcgi.sh: could not raise the descriptor limit to" \
            "$NOFILE; it stays at $(ulimit -n)" >&2
    for ((k = 1; k <= WORKERS; k++)); do
        start_worker "$k"
    done
}

cmd_stop() {
    local pidfile
    for pidfile in "$RUN_DIR"/fcgi-*.pid; do
        [ -e "$pidfile" ] || continue
        stop_worker "$pidfile"
        rm -f -- "${pidfile%.pid}.sock"
    done
}

[ $# -eq 1 ] || usage
case $1 in
start) cmd_start ;;
stop) cmd_stop ;;
*) usage ;;
esac
