#!/usr/bin/env bash
#
# bench.sh - `make bench`: Roomcast against nginx with Nchan, the same
# scenarios on both, alternating, and one table at the end with each
# figure for Roomcast, for Nchan and their ratio (Roomcast / Nchan).
#
# Usage: bash tests/bench.sh        (make bench, or make bench QUICK=1)
#
# It starts, in state/bench, a Roomcast stack of its own through
# deploy/devstack.sh (its own PostgreSQL cluster, workers and lighttpd with
# several worker processes and 20,000 open files each) and a private nginx
# with Nchan from tests/bench/nginx.conf.in; both are restarted before each
# scenario, so every scenario starts from fresh processes and its memory
# figures are its own. A `make run` stack that may be running elsewhere is
# left alone. Everything listens on 127.0.0.1 only, and everything this
# script started is stopped when it ends, however it ends.
#
# Roomcast's rooms are made public (Nchan checks no token either), and the
# bench's own database lifts the per-address publish limiter, since every
# publisher here comes from 127.0.0.1. Scenario 5 runs as many lighttpd
# processes as 20,000 streams need, and nginx as many workers. The load
# tool is tests/load (roomcast-load); its reports stay in state/bench/out.
#
# Scenarios (QUICK=1: about a tenth of each):
#   1  SSE, 10,000 subscribers in one room, 200 messages at 20/s
#   1p scenario 1 with the servers on core 0 and the load tool on core 1
#   2  SSE, 1,000 subscribers in one room, 5,000 messages at 500/s
#   3  SSE, 1,000 subscribers over 100 rooms, 5,000 messages at 500/s
#   4  long-poll, 1,000 subscribers in one room, 200 messages at 20/s
#   5  idle SSE streams held until 20,000 (or the first failure)
#   6  publish throughput: 32 HTTP publishers over 100 rooms for 10 s, and
#      32 SQL sessions calling roomcast.publish for 10 s (pgbench)
#
# Exit status: 0 when no scenario lost, duplicated or refused anything,
# 1 when one did (the lines starting with FAIL say which), 2 when the bench
# could not run.
#
# Environment, with defaults:
#   QUICK=0                      1 for the short run
#   BENCH_ROOMCAST_PORT=8091     lighttpd of the bench's Roomcast stack
#   BENCH_NCHAN_PORT=8090        the bench's nginx
#   BENCH_WS_PORT=8093           roomcast-ws of the bench stack, if built
#   LIGHTTPD_WORKERS=2           lighttpd processes (2 at least)
#   ROOMCAST_WORKERS=2           FastCGI worker processes
#   ROOMCAST_LOAD_BIN            the load tool (the Makefile builds it)
#   ROOMCAST_FCGI_BIN            the worker (bin/roomcast-fcgi)
#
# Needs root (PostgreSQL runs as the postgres user, through devstack.sh),
# nginx with libnginx-mod-nchan (installed here with apt-get when missing),
# taskset, psql and pgbench (postgresql-15).

set -eu

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
BENCH=$ROOT/state/bench
RC_STATE=$BENCH/rc
NGX=$BENCH/nginx
OUT=$BENCH/out
STACK=$ROOT/deploy/devstack.sh
LOAD=${ROOMCAST_LOAD_BIN:-$ROOT/build/default/load/roomcast-load}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
NCHAN_MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so
QUICK=${QUICK:-0}
RC_PORT=${BENCH_ROOMCAST_PORT:-8091}
NCHAN_PORT=${BENCH_NCHAN_PORT:-8090}
WS_PORT=${BENCH_WS_PORT:-8093}
CORES=$(nproc)
LW=${LIGHTTPD_WORKERS:-2}
[ "$LW" -ge 2 ] 2>/dev/null || LW=2
RW=${ROOMCAST_WORKERS:-2}
# The per-process ceiling of open files every server process runs with.
NOFILE=20000
# Streams one lighttpd process holds: two descriptors each, and lighttpd
# stops accepting ("sockets disabled, out-of-fds") at 90% of server.max-fds
# (20,000 in deploy/lighttpd-dev.conf). Scenario 5 runs as many lighttpd
# processes as its streams need.
STREAMS_PER_LIGHTTPD=9000
# lighttpd processes of the scenario being run, and nginx workers: one per
# core, and never fewer than lighttpd has (set by restart_servers).
LW_NOW=$LW
NGINX_WORKERS=$CORES
# Room names: bench_<pid>_<scenario>_<server>_<k>, unique to this run.
RUN_ID=bench_$$

# Bounds of the waits, in tenths of a second.
NGINX_WAIT_TENTHS=100
# New connections per second while subscribers ramp up, all processes.
RAMP=2500
# How long subscribers may wait for the last deliveries after publishing.
DRAIN_S=30

NGINX_STARTED=0
RC_STARTED=0
PAIRS=0
LOG_LINES=0
FAILURES=()
# Every figure of every run, as V[scenario.server.key].
declare -A V=()

say() {
    printf 'bench: %s\n' "$*"
}

# Records a failure for the summary; the bench goes on with the rest.
fail() {
    FAILURES+=("$*")
}

die() {
    printf 'bench: %s\n' "$*" >&2
    exit 2
}

# --- setup ------------------------------------------------------------------

check_setup() {
    [ "$(id -u)" = 0 ] ||
        die "run as root: the Roomcast stack runs PostgreSQL through runuser"
    [ -x "$LOAD" ] ||
        die "$LOAD is missing: run make bench (it builds the load tool)"
    command -v taskset >/dev/null || die "taskset is missing (util-linux)"
    [ -x "$PG_BIN/pgbench" ] || die "$PG_BIN/pgbench is missing: make deps"
    [ -x "$PG_BIN/psql" ] || die "$PG_BIN/psql is missing: make deps"
}

install_nchan() {
    if command -v nginx >/dev/null && [ -f "$NCHAN_MODULE" ]; then
        return 0
    fi
    say "installing nginx-light and libnginx-mod-nchan with apt-get"
    # Debian may start its own nginx on port 80 on install; it is not
    # used here, and not stopped either, since this script did not start it.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        nginx-light libnginx-mod-nchan >"$OUT/apt.log" 2>&1; then
        apt-get update -q >>"$OUT/apt.log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            nginx-light libnginx-mod-nchan >>"$OUT/apt.log" 2>&1 ||
            die "could not install nginx with Nchan; see $OUT/apt.log"
    fi
    [ -f "$NCHAN_MODULE" ] || die "$NCHAN_MODULE is missing after install"
}

raise_nofile() {
    ulimit -n "$NOFILE" 2>/dev/null || ulimit -S -n "$(ulimit -H -n)"
    [ "$(ulimit -n)" -ge "$NOFILE" ] ||
        say "only $(ulimit -n) open files per process: the large" \
            "scenarios will stop early"
}

# --- the Roomcast stack of the bench ----------------------------------------

rc_env() {
    env ROOMCAST_STATE="$RC_STATE" PORT="$RC_PORT" LIGHTTPD_WORKERS="$LW_NOW" \
        ROOMCAST_WORKERS="$RW" ROOMCAST_WS_LISTEN="127.0.0.1:$WS_PORT" "$@"
}

rc_start() {
    # The stack inherits this shell's limit of open files (raise_nofile).
    rc_env "$STACK" start >>"$OUT/stack.log" 2>&1 || {
        tail -n 20 "$OUT/stack.log" >&2
        die "the bench's Roomcast stack did not start; see $OUT/stack.log"
    }
    RC_STARTED=1
    rc_settings
}

# The per-address publish limiter guards against a runaway client; every
# publisher of the bench comes from 127.0.0.1, and the bench measures what
# the server can commit, so the bench's own database lifts the limit.
# Workers read settings when they start, so a change restarts them.
rc_settings() {
    local changed
    changed=$(rc_sql "UPDATE roomcast.settings SET value = '100000000'
                      WHERE key IN ('publish_rate_per_second',
                                    'publish_burst')
                        AND value <> '100000000' RETURNING key" | wc -l)
    if [ "$changed" -gt 0 ]; then
        rc_env "$STACK" restart-workers >>"$OUT/stack.log" 2>&1 ||
            die "the bench's workers did not restart; see $OUT/stack.log"
    fi
}

rc_stop() {
    rc_env "$STACK" stop >>"$OUT/stack.log" 2>&1 || true
    RC_STARTED=0
}

rc_dburl() {
    rc_env "$STACK" dburl
}

rc_sql() {
    "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$(rc_dburl)" -c "$1"
}

# Rooms <prefix>0 .. <prefix>N-1 readable and writable without a token:
# Nchan checks nobody either, so neither server spends time on it.
rc_public_rooms() {
    rc_sql "INSERT INTO roomcast.rooms (name, public_read, public_write)
            SELECT '$1' || k, true, true FROM generate_series(0, $2 - 1) k
            ON CONFLICT (name) DO UPDATE
            SET public_read = true, public_write = true" >/dev/null
}

rc_pidfile() {
    local pid
    pid=$(head -n 1 -- "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && [ -d "/proc/$pid" ] && printf '%s\n' "$pid"
}

rc_web_pids() {
    rc_pidfile "$RC_STATE/run/lighttpd.pid"
}

rc_work_pids() {
    local file list=''
    for file in "$RC_STATE"/run/fcgi-*.pid; do
        [ -e "$file" ] || continue
        list=$list${list:+,}$(rc_pidfile "$file" || true)
    done
    printf '%s\n' "$list"
}

rc_db_pids() {
    rc_pidfile "$RC_STATE/pg/postmaster.pid"
}

# --- nginx with Nchan -------------------------------------------------------

# The master pid of the bench's nginx, when it runs from our config.
nginx_pid() {
    local pid
    pid=$(rc_pidfile "$NGX/nginx.pid") || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
        grep -qF -- "$NGX/nginx.conf" || return 1
    printf '%s\n' "$pid"
}

nginx_write_conf() {
    mkdir -p -- "$NGX/tmp"
    sed -e "s|@PREFIX@|$NGX|g" -e "s|@PORT@|$NCHAN_PORT|g" \
        -e "s|@WORKERS@|$NGINX_WORKERS|g" -e "s|@MODULE@|$NCHAN_MODULE|g" \
        "$ROOT/tests/bench/nginx.conf.in" >"$NGX/nginx.conf"
}

nginx_start() {
    local i code
    nginx_write_conf
    nginx -q -t -p "$NGX/" -e "$NGX/error.log" -c "$NGX/nginx.conf" ||
        die "nginx rejects $NGX/nginx.conf"
    # nginx puts itself in the background once it listens; its pid file
    # names the master, which this script stops at the end.
    nginx -p "$NGX/" -e "$NGX/error.log" -c "$NGX/nginx.conf" ||
        die "nginx did not start (port $NCHAN_PORT taken?); see" \
            "$NGX/error.log"
    NGINX_STARTED=1
    for ((i = 0; i < NGINX_WAIT_TENTHS; i++)); do
        code=$(curl -s --noproxy '*' -o /dev/null -m 1 -w '%{http_code}' \
            "http://127.0.0.1:$NCHAN_PORT/" 2>/dev/null || true)
        [ -n "$code" ] && [ "$code" != 000 ] && return 0
        sleep 0.1
    done
    die "nginx does not answer on 127.0.0.1:$NCHAN_PORT"
}

nginx_stop() {
    local pid i
    if pid=$(nginx_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < NGINX_WAIT_TENTHS; i++)); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
        [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null
    fi
    NGINX_STARTED=0
}

# Fresh processes for each scenario: memory taken by one scenario and kept
# by an allocator would otherwise lower the next one's figures. $1: the
# streams the scenario holds at most, which sets the number of lighttpd
# processes (and so of nginx workers).
restart_servers() {
    local streams=${1:-0} need
    need=$(((streams + STREAMS_PER_LIGHTTPD - 1) / STREAMS_PER_LIGHTTPD))
    LW_NOW=$((need > LW ? need : LW))
    NGINX_WORKERS=$((CORES > LW_NOW ? CORES : LW_NOW))
    nginx_stop
    rc_stop
    rc_start
    nginx_start
}

cleanup() {
    trap '' INT TERM HUP
    [ "$NGINX_STARTED" = 1 ] && nginx_stop
    [ "$RC_STARTED" = 1 ] && rc_stop
    return 0
}

# --- running the load tool --------------------------------------------------

# Stores the "key value" lines of file $2 under run name $1.
load_results() {
    local run=$1 file=$2 key value
    while IFS=' ' read -r key value; do
        [ -n "$key" ] && V[$run.$key]=$value
    done <"$file"
}

# Pids of every process of a server, descendants included.
tree_pids() {
    local pid
    for pid in ${1//,/ }; do
        printf '%s\n' "$pid"
        pgrep -P "$pid" 2>/dev/null | while read -r child; do
            tree_pids "$child"
        done
    done
}

pin_to_core0() {
    local pid
    for pid in $(tree_pids "$1"); do
        taskset -a -p -c 0 "$pid" >/dev/null 2>&1 || true
    done
}

# The web server's error log, to say why streams stopped being accepted.
server_log() {
    if [ "$1" = roomcast ]; then
        printf '%s\n' "$RC_STATE/log/lighttpd-error.log"
    else
        printf '%s\n' "$NGX/error.log"
    fi
}

log_mark() {
    LOG_LINES=$(wc -l <"$(server_log "$1")" 2>/dev/null || echo 0)
}

# The first line the web server logged since log_mark about descriptors or
# connections running out, or a note that it logged none.
log_news() {
    local line
    line=$(tail -n +"$((LOG_LINES + 1))" "$(server_log "$1")" 2>/dev/null |
        grep -m 1 -i -E 'out-of-fds|worker_connections|too many open' ||
        true)
    printf '%s\n' "${line:-the web server logged nothing about it}"
}

# The value of --rooms among the load tool's arguments (1 without).
rooms_of() {
    local n=1
    while [ $# -gt 0 ]; do
        [ "$1" = --rooms ] && [ $# -ge 2 ] && n=$2
        shift
    done
    printf '%s\n' "$n"
}

# run_load SCENARIO SERVER [PIN] -- LOAD-ARGS...: one run of the load tool
# against one server; its report goes to state/bench/out and into V.
run_load() {
    local scen=$1 server=$2 pin=$3 file status port web work='' db=''
    local prefix_name probe='' pinning=(taskset -c 1)
    shift 4
    file=$OUT/$scen-$server.txt
    prefix_name=${RUN_ID}_${scen}_${server:0:2}_
    if [ "$server" = roomcast ]; then
        rc_public_rooms "$prefix_name" "$(rooms_of "$@")"
        port=$RC_PORT
        web=$(rc_web_pids)
        work=$(rc_work_pids)
        db=$(rc_db_pids)
        probe="$PG_BIN/psql -X -A -t -d '$(rc_dburl)' -c \"SELECT count(*)"
        probe+=" FROM pg_stat_activity WHERE datname = 'roomcast'"
        probe+=" AND pid <> pg_backend_pid()\""
    else
        port=$NCHAN_PORT
        web=$(nginx_pid)
    fi
    if [ "$pin" = pin ]; then
        pin_to_core0 "$web,$work,$db"
    else
        pinning=()
    fi
    say "scenario $scen, $server"
    log_mark "$server"
    set +e
    "${pinning[@]}" "$LOAD" --server "$server" --port "$port" \
        --prefix "$prefix_name" \
        --web "$web" --work "$work" --db "$db" --probe "$probe" \
        "$@" >"$file" 2>"$OUT/$scen-$server.err"
    status=$?
    set -e
    load_results "$scen.$server" "$file"
    if [ "${V[$scen.$server.status]-}" = short ]; then
        V[$scen.$server.hold_error]+="; $(log_news "$server")"
    fi
    if [ "$status" -ge 2 ] || [ -z "${V[$scen.$server.status]-}" ]; then
        fail "scenario $scen on $server: the load tool failed" \
            "(status $status); see $OUT/$scen-$server.err"
    elif [ "${V[$scen.$server.status]}" = FAIL ]; then
        fail "scenario $scen on $server:" \
            "missing ${V[$scen.$server.missing]-?}," \
            "duplicated ${V[$scen.$server.duplicated]-?}," \
            "refused ${V[$scen.$server.connect_failed]-0}," \
            "broken ${V[$scen.$server.disconnects]-0}," \
            "publish failures ${V[$scen.$server.publish_failed]-0}:" \
            "${V[$scen.$server.error]-}"
    fi
    # Closed sockets and freed slabs settle before the next measurement.
    sleep 2
}

# Both servers, in an order that alternates from scenario to scenario so
# neither always runs on a machine warmed (or tired) by the other.
run_pair() {
    local scen=$1 pin=$2 streams=$3 order
    shift 3
    if [ $((PAIRS % 2)) = 0 ]; then
        order='roomcast nchan'
    else
        order='nchan roomcast'
    fi
    PAIRS=$((PAIRS + 1))
    restart_servers "$streams"
    V[$scen.roomcast.web_procs]=$LW_NOW
    V[$scen.nchan.web_procs]=$NGINX_WORKERS
    say "scenario $scen: $LW_NOW lighttpd processes and $RW workers;" \
        "$NGINX_WORKERS nginx workers"
    for server in $order; do
        run_load "$scen" "$server" "$pin" -- "$@"
    done
}

# --- scenario 6: publish throughput -----------------------------------------

# Acknowledged but not stored is missing; stored beyond what was
# acknowledged is duplicated.
count_difference() {
    local run=$1 acked=$2 stored=$3
    V[$run.missing]=$((acked > stored ? acked - stored : 0))
    V[$run.duplicated]=$((stored > acked ? stored - acked : 0))
}

# Checks that what Roomcast acknowledged is stored, gap-free, once.
check_stored() {
    local run=$1 like=$2 acked=$3 got gaps
    got=$(rc_sql "SELECT count(*) FROM roomcast.messages
                  WHERE room LIKE '$like%'")
    gaps=$(rc_sql "SELECT count(*) FROM (SELECT room FROM roomcast.messages
          WHERE room LIKE '$like%' GROUP BY room
          HAVING max(seq) <> count(*)) AS g")
    V[$run.stored]=$got
    count_difference "$run" "$acked" "$got"
    if [ "$got" != "$acked" ] || [ "$gaps" != 0 ]; then
        fail "scenario 6 ($run): $acked publishes acknowledged," \
            "$got stored, $gaps rooms with gaps"
    fi
}

# Sums Nchan's "queued messages" over the channels of the run.
check_nchan_queued() {
    local run=$1 prefix=$2 rooms=$3 acked=$4 k n sum=0
    for ((k = 0; k < rooms; k++)); do
        n=$(curl -s --noproxy '*' -m 5 \
            "http://127.0.0.1:$NCHAN_PORT/pub/$prefix$k" |
            sed -n 's/^queued messages: \([0-9]*\).*/\1/p')
        sum=$((sum + ${n:-0}))
    done
    V[$run.stored]=$sum
    count_difference "$run" "$acked" "$sum"
    if [ "$sum" != "$acked" ]; then
        fail "scenario 6 ($run): $acked publishes acknowledged," \
            "$sum queued in Nchan"
    fi
}

run_sql_publish() {
    local seconds=$1 prefix=${RUN_ID}_6_sql_ script=$OUT/publish.sql
    local out=$OUT/6-sql.txt tps processed
    cat >"$script" <<EOF
\\set r random(0, 99)
SELECT seq FROM roomcast.publish('$prefix' || :r, 'text', '{"n":1}');
EOF
    say "scenario 6, roomcast.publish from 32 SQL sessions"
    "$PG_BIN/pgbench" -n -M prepared -c 32 -j 2 -T "$seconds" \
        -f "$script" "$(rc_dburl)" >"$out" 2>&1 || {
        fail "scenario 6 (SQL): pgbench failed; see $out"
        return 0
    }
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without.*/\1/p' "$out")
    processed=$(sed -n \
        's/^number of transactions actually processed: \([0-9]*\).*/\1/p' \
        "$out")
    V[6sql.roomcast.publishes_per_s]=${tps%.*}
    V[6sql.roomcast.published]=$processed
    check_stored 6sql.roomcast "$prefix" "$processed"
}

run_publish_throughput() {
    local seconds=$1 server
    restart_servers
    for server in roomcast nchan; do
        run_load 6 "$server" nopin -- --mode pubrate --pub-conns 32 \
            --rooms 100 --seconds "$seconds" --deadline $((seconds + 60))
    done
    check_stored 6.roomcast "${RUN_ID}_6_ro_" "${V[6.roomcast.published]-0}"
    check_nchan_queued 6.nchan "${RUN_ID}_6_nc_" 100 \
        "${V[6.nchan.published]-0}"
    run_sql_publish "$seconds"
}

# --- the table --------------------------------------------------------------

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a !~ /^-?[0-9.]+$/ || b !~ /^-?[0-9.]+$/ || b + 0 == 0) {
            print "-"
        } else {
            printf "%.2f\n", a / b
        }
    }'
}

# row SCENARIO LABEL KEY: one line of the table.
row() {
    local scen=$1 label=$2 key=$3 rc nc
    rc=${V[$scen.roomcast.$key]--}
    nc=${V[$scen.nchan.$key]--}
    printf '%-4s %-30s %14s %14s %7s\n' "$scen" "$label" "$rc" "$nc" \
        "$(ratio "$rc" "$nc")"
}

delivery_rows() {
    local scen=$1
    row "$scen" 'deliveries/s' deliveries_per_s
    row "$scen" 'latency p50 ms' lat_p50_ms
    row "$scen" 'latency p99 ms' lat_p99_ms
    row "$scen" 'latency max ms' lat_max_ms
    row "$scen" 'publish answer p99 ms' publat_p99_ms
    row "$scen" 'missing' missing
    row "$scen" 'duplicated' duplicated
    row "$scen" 'refused or broken streams' connect_failed
    row "$scen" 'CPU s, web server + workers' cpu_s
    row "$scen" 'CPU s, PostgreSQL' cpu_db_s
    row "$scen" 'user memory kB, before' mem_user_before_kb
    row "$scen" 'user memory kB, connected' mem_user_after_kb
    row "$scen" 'user memory B/subscriber' mem_user_per_sub_b
    row "$scen" 'DB connections' probe
}

print_table() {
    local server
    echo
    printf '%-4s %-30s %14s %14s %7s\n' scen metric roomcast nchan ratio
    printf '%s\n' "$(printf '%.0s-' {1..73})"
    delivery_rows 1
    [ -n "${V[1p.roomcast.status]-}" ] && delivery_rows 1p
    delivery_rows 2
    delivery_rows 3
    delivery_rows 4
    row 4 'long-poll answers' polls
    row 5 'streams held' held
    row 5 'web server processes' web_procs
    row 5 'web server memory B/held' mem_web_per_sub_b
    row 5 'worker memory B/held' mem_work_per_sub_b
    row 5 'user memory B/held' mem_user_per_sub_b
    row 5 'kernel TCP memory B/held' tcp_mem_per_sub_b
    row 5 'kernel slab B/held' slab_per_sub_b
    row 5 'DB connections' probe
    row 5 'held streams lost' disconnects
    row 5 'seconds to open' connect_s
    row 6 'HTTP publishes/s' publishes_per_s
    row 6 'HTTP publish p99 ms' publat_p99_ms
    row 6 'stored (or queued)' stored
    row 6 'missing' missing
    row 6 'duplicated' duplicated
    row 6 'CPU s, web server + workers' cpu_s
    row 6sql 'SQL publishes/s' publishes_per_s
    row 6sql 'stored' stored
    row 6sql 'missing' missing
    row 6sql 'duplicated' duplicated
    printf '%s\n' "$(printf '%.0s-' {1..73})"
    for server in roomcast nchan; do
        if [ "${V[5.$server.status]-}" = short ]; then
            printf 'scenario 5, %s stopped at %s held: %s\n' "$server" \
                "${V[5.$server.held]-?}" "${V[5.$server.hold_error]-?}"
        fi
    done
    printf 'DB connections of %d workers during scenario 5: %s\n' "$RW" \
        "${V[5.roomcast.probe]--}"
    [ -n "${V[1p.roomcast.status]-}" ] ||
        echo "scenario 1p skipped: it needs 2 cores and taskset"
}

# --- main -------------------------------------------------------------------

main() {
    local q=1 subs1 msgs1 subs2 msgs2 rooms3 subs4 msgs4 hold secs6 f
    mkdir -p -- "$OUT"
    check_setup
    install_nchan
    raise_nofile
    "$LOAD" --self-test >"$OUT/selftest.txt" ||
        die "the load tool fails its self-test; see $OUT/selftest.txt"
    trap cleanup EXIT
    trap 'exit 2' INT TERM HUP

    [ "$QUICK" = 1 ] && q=10
    subs1=$((10000 / q)) msgs1=$((200 / q))
    subs2=$((1000 / q)) msgs2=$((5000 / q)) rooms3=$((100 / q))
    subs4=$((1000 / q)) msgs4=$((200 / q))
    hold=$((20000 / q)) secs6=$((q == 1 ? 10 : 3))
    say "Roomcast on 127.0.0.1:$RC_PORT, Nchan on 127.0.0.1:$NCHAN_PORT"

    run_pair 1 nopin "$subs1" --subs "$subs1" --messages "$msgs1" --rate 20 \
        --ramp "$RAMP" --drain "$DRAIN_S" --deadline 150
    if [ "$CORES" -ge 2 ]; then
        run_pair 1p pin "$subs1" --subs "$subs1" --messages "$msgs1" --rate 20 \
            --ramp "$RAMP" --drain "$DRAIN_S" --deadline 150
    fi
    run_pair 2 nopin "$subs2" --subs "$subs2" --messages "$msgs2" --rate 500 \
        --ramp "$RAMP" --drain "$DRAIN_S" --deadline 120
    run_pair 3 nopin "$subs2" --subs "$subs2" --rooms "$rooms3" \
        --messages "$msgs2" --rate 500 --ramp "$RAMP" --drain "$DRAIN_S" \
        --deadline 120
    run_pair 4 nopin "$subs4" --transport poll --subs "$subs4" \
        --messages "$msgs4" --rate 20 --ramp "$RAMP" --drain "$DRAIN_S" \
        --deadline 120
    run_pair 5 nopin "$hold" --mode hold --subs "$hold" --seconds 5 \
        --ramp "$RAMP" --deadline 90
    run_publish_throughput "$secs6"

    cleanup
    print_table
    if [ ${#FAILURES[@]} -gt 0 ]; then
        echo
        for f in "${FAILURES[@]}"; do
            echo "FAIL: $f"
        done
        echo "bench: FAILED: a scenario lost, duplicated or refused" \
            "deliveries (reports in $OUT)"
        exit 1
    fi
    echo "bench: no scenario lost or duplicated a delivery" \
        "(reports in $OUT)"
}

main "$@"
