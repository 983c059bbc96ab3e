/*
 * main.c - roomcast-fcgi: start-up and the event loop.
 *
 * One process serves every endpoint. Under spawn-fcgi it accepts FastCGI
 * connections on the socket it inherits as fd 0 and holds any number of
 * waiting requests at once in one epoll loop; under mod_fcgid the web
 * server simply sends one request at a time; started as plain CGI (fd 0
 * is not a socket) it answers one request and exits.
 *
 * The loop watches: the listening socket (accept, read the request with
 * libfcgi, answer or park it), the hub's LISTEN connection, and every
 * parked stream's socket. Four times a second it ticks: heartbeats and
 * ends of streams, hub reconnects, and every few seconds the settings and
 * this process's row in roomcast.workers.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <fastcgi.h>
#include <fcgiapp.h>

#include "app.h"
#include "log.h"

#define ACCEPTS_PER_ROUND 64        /* then let streams and the hub run */
#define REFRESH_EVERY_MS 5000       /* settings and the worker row */
#define EPOLL_BATCH 256
/* How often deadlines are checked: a long-poll answers within this much
 * of its timeout, and a stream ends within it of sse_max_seconds. */
#define TICK_MS 250

/* Tags for the two sockets that are not streams. */
static char listen_tag, hub_tag;
static volatile sig_atomic_t is_stopping;

static void
on_stop_signal(int sig)
{
    (void)sig;
    is_stopping = 1;
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void refresh(struct app *app);

/* Revocations, kicks and settings changes, sent by SQL to every process:
 * forget what the caches know and end the streams concerned, or read the
 * settings again, here, now. */
static void
on_control(void *ctx, const char *text)
{
    struct app *app = ctx;
    char room[65];
    int used = 0;
    int64_t n = 0;

    if (strcmp(text, "settings") == 0) {
        refresh(app);
        return;
    }
    if (strncmp(text, "revoke-token ", 13) == 0) {
        access_forget_token(app->access, text + 13);
        n = stream_end_matching(&app->loop, text + 13, NULL, NULL);
    } else if (strncmp(text, "revoke-user ", 12) == 0) {
        access_forget_user(app->access, text + 12);
        n = stream_end_matching(&app->loop, NULL, text + 12, NULL);
    } else if (sscanf(text, "kick %64s %n", room, &used) == 1 && used > 0) {
        n = stream_end_matching(&app->loop, NULL, text + used, room);
    } else {
        log_warn("control", "ignoring an unknown control notification");
        return;
    }
    log_info("control", "%.*s: ended %" PRId64 " streams",
             (int)strcspn(text, " "), text, n);
}

static void
refresh(struct app *app)
{
    struct rc_error err = {0};

    access_sweep(app->access, app->loop.now_ms);
    if (store_load_settings(app->store, &app->cfg, &err) != 0)
        return;         /* the store logged it; keep the last settings */
    if (!app->is_cgi &&
        store_worker_heartbeat(app->store, "fcgi", app->loop.count,
                               app->loop.delivered, &err) != 0)
        return;
}

/* Accepts and handles up to ACCEPTS_PER_ROUND requests. */
static void
accept_requests(struct app *app, FCGX_Request *fcgx)
{
    for (int i = 0; i < ACCEPTS_PER_ROUND && !is_stopping; i++) {
        struct request req;

        if (FCGX_Accept_r(fcgx) < 0)
            return;             /* EAGAIN: another worker took it */
        if (request_init(&req, fcgx, (size_t)app->cfg.max_body_bytes) != 0) {
            struct rc_error err = {0};

            rc_internal(&err, "could not read the request body");
            request_respond_error(&req, &err);
        } else {
            app_handle(app, &req);
        }
        request_done(&req);
        stream_flush(&app->loop);
    }
}

/* One open token, after the LISTEN connection was lost: a revocation
 * sent meanwhile never reached this process, so ask the table. */
static void
recheck_token(void *arg, const char *hash)
{
    struct app *app = arg;
    struct auth_identity *id = NULL;
    int rc = store_token_identity(app->store, hash, &id, NULL);

    auth_identity_unref(id);
    if (rc == 1) {
        access_forget_token(app->access, hash);
        stream_end_matching(&app->loop, hash, NULL, NULL);
    }
}

static void
watch_hub(struct app *app, unsigned *generation)
{
    struct epoll_event ev = {0};

    if (hub_generation(app->hub) == *generation || hub_fd(app->hub) < 0)
        return;
    if (*generation != 0) {
        access_forget_all(app->access);
        stream_each_token(&app->loop, recheck_token, app);
    }
    *generation = hub_generation(app->hub);
    ev.events = EPOLLIN;
    ev.data.ptr = &hub_tag;
    if (epoll_ctl(app->loop.epoll_fd, EPOLL_CTL_ADD, hub_fd(app->hub), &ev)
        != 0)
        log_error("loop", "cannot watch the LISTEN connection: %s",
                  strerror(errno));
}

/* Presence rows are refreshed three times per timeout, so one late
 * round never makes a user look gone; the sweep runs as often, and the
 * advisory lock in it lets one process at a time do the work. */
static void
presence_round(struct app *app, int64_t *next_presence_ms)
{
    struct rc_error err = {0};
    int64_t every_ms = app->cfg.presence_timeout_seconds * 1000 / 3;

    if (app->loop.now_ms < *next_presence_ms)
        return;
    if (every_ms > 5000)
        every_ms = 5000;
    *next_presence_ms = app->loop.now_ms + every_ms;
    stream_touch_presence(&app->loop);
    if (store_presence_sweep(app->store, &err) != 0)
        log_debug("presence", "sweep failed; the next round retries");
}

static void
tick(struct app *app, int64_t *next_refresh_ms, int64_t *next_presence_ms)
{
    hub_tick(app->hub, app->loop.now_ms);
    stream_tick(&app->loop);
    if (app->loop.now_ms >= *next_refresh_ms) {
        refresh(app);
        *next_refresh_ms = app->loop.now_ms + REFRESH_EVERY_MS;
    }
    if (!app->is_cgi)
        presence_round(app, next_presence_ms);
}

static void
run_loop(struct app *app, FCGX_Request *fcgx)
{
    struct epoll_event events[EPOLL_BATCH];
    unsigned hub_gen = 0;
    int64_t next_tick_ms = 0, next_refresh_ms = 0, next_presence_ms = 0;

    while (!is_stopping) {
        int n, timeout;

        app->loop.now_ms = now_ms();
        if (app->loop.now_ms >= next_tick_ms) {
            tick(app, &next_refresh_ms, &next_presence_ms);
            next_tick_ms = app->loop.now_ms + TICK_MS;
        }
        watch_hub(app, &hub_gen);
        if (app->is_cgi && app->loop.count == 0)
            break;              /* CGI: the one request is over */

        timeout = (int)(next_tick_ms - app->loop.now_ms);
        n = epoll_wait(app->loop.epoll_fd, events, EPOLL_BATCH,
                       timeout > 0 ? timeout : 0);
        app->loop.now_ms = now_ms();
        for (int i = 0; i < n; i++) {
            void *tag = events[i].data.ptr;

            if (tag == &listen_tag)
                accept_requests(app, fcgx);
            else if (tag == &hub_tag)
                hub_on_readable(app->hub);
            else
                stream_on_io(&app->loop, tag, events[i].events);
        }
        stream_flush(&app->loop);
        stream_reap(&app->loop);
    }
}

/* Each held request is one descriptor here; the usual soft limit of
 * 1024 would cap a worker far below what it can hold, so take the hard
 * limit the system grants. */
static void
raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_warn("loop", "cannot raise the open-file limit: %s",
                 strerror(errno));
}

static int
app_init(struct app *app, int epoll_fd)
{
    config_init(&app->cfg);
    app->store = store_new(app->cfg.db_conninfo, "roomcast-fcgi");
    if (app->store == NULL)
        return -1;
    app->hub = hub_new(app->cfg.db_conninfo, app->store, stream_deliver,
                       stream_flush, &app->loop);
    if (app->hub == NULL)
        return -1;
    hub_set_control(app->hub, on_control, app);
    app->access = access_new(app->store, &app->cfg);
    if (app->access == NULL)
        return -1;
    stream_loop_init(&app->loop, epoll_fd, app->hub, app->store, &app->cfg);
    app->loop.now_ms = now_ms();
    refresh(app);
    return 0;
}

/* Plain CGI: one request from the environment and stdin. A request that
 * waits (SSE, long-poll) runs the loop until it ends. */
static int
run_cgi(struct app *app)
{
    struct request req;

    if (request_init(&req, NULL, (size_t)app->cfg.max_body_bytes) != 0) {
        struct rc_error err = {0};

        rc_internal(&err, "could not read the request body");
        request_respond_error(&req, &err);
        return 1;
    }
    app_handle(app, &req);
    request_done(&req);
    if (app->loop.count > 0) {
        hub_tick(app->hub, app->loop.now_ms);
        run_loop(app, NULL);
    }
    return 0;
}

static int
run_fastcgi(struct app *app)
{
    FCGX_Request fcgx;
    struct epoll_event ev = {0};
    int flags;

    if (FCGX_InitRequest(&fcgx, FCGI_LISTENSOCK_FILENO, 0) != 0)
        return 1;

    /* Non-blocking, so that when several workers wake for one
     * connection, those that lose the race go back to the loop. */
    flags = fcntl(FCGI_LISTENSOCK_FILENO, F_GETFL);
    fcntl(FCGI_LISTENSOCK_FILENO, F_SETFL, flags | O_NONBLOCK);
    ev.events = EPOLLIN;
    ev.data.ptr = &listen_tag;
    if (epoll_ctl(app->loop.epoll_fd, EPOLL_CTL_ADD, FCGI_LISTENSOCK_FILENO,
                  &ev) != 0) {
        log_error("loop", "cannot watch the FastCGI socket: %s",
                  strerror(errno));
        return 1;
    }
    log_info("loop", "serving FastCGI; database %s",
             store_is_down(app->store) ? "unreachable for now" : "reachable");
    run_loop(app, &fcgx);
    log_info("loop", "stopping; closing %" PRId64 " streams",
             app->loop.count);
    stream_close_all(&app->loop);
    stream_reap(&app->loop);
    store_worker_gone(app->store, "fcgi");
    return 0;
}

int
main(void)
{
    struct app app = {0};
    int epoll_fd, rc;
    struct sigaction sa = {0};

    log_init("roomcast-fcgi");
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (FCGX_Init() != 0) {
        log_error("loop", "libfcgi failed to initialise");
        return 1;
    }
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0 || app_init(&app, epoll_fd) != 0) {
        log_error("loop", "out of memory at start");
        return 1;
    }
    app.is_cgi = FCGX_IsCGI();
    rc = app.is_cgi ? run_cgi(&app) : run_fastcgi(&app);

    stream_reap(&app.loop);
    stream_loop_free(&app.loop);
    access_free(app.access);
    hub_free(app.hub);
    store_free(app.store);
    close(epoll_fd);
    return rc;
}
