/*
 * sub.c - one subscriber process of roomcast-load: opens its share of the
 * subscribers at a bounded rate, reads their streams in one epoll loop and
 * counts every delivery in a per-subscriber bitmap.
 *
 * Subscriber i listens to room i % rooms; message n goes to room n % rooms,
 * so each subscriber knows exactly which numbers it must see. SSE streams
 * are read incrementally (chunked or not); a long-poll is sent again at
 * once with the cursor (Roomcast) or the Last-Modified and Etag (Nchan)
 * of the answer before it. Roomcast subscribers start from seq 0 and
 * Nchan's from the oldest message of a channel: the rooms are new for
 * every run, so no message can fall between connecting and publishing.
 *
 * Runs in a child forked by main.c and reports through struct load_stats
 * in shared memory; it never publishes and never prints. Limitation: a
 * broken SSE stream is not resumed, so what it would have received counts
 * as missing; a bench should see such a failure, not hide it.
 */
#include "load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connections that may be opening at once in one process, so a burst of
 * connects never overruns the server's listen queue. */
#define PENDING_MAX 256
/* A subscriber whose response head has not come by then has failed. */
#define CONNECT_TIMEOUT_S 15.0
/* Roomcast long-polls are held this long at most (poll_max_seconds). */
#define POLL_TIMEOUT_S 60
/* A long-poll connection the server closed between answers is opened
 * again; this many times in a row without an answer is a failure. */
#define POLL_RETRIES_MAX 3
/* A long-poll answer larger than this is not from the servers measured. */
#define POLL_BODY_MAX (16u << 20)
#define EVENTS_MAX 512

enum sub_state {
    SUB_NEW,
    SUB_CONNECTING,
    SUB_OPEN,
    SUB_DEAD,
};

struct sub {
    int fd;
    uint32_t idx;               /* over all processes */
    uint32_t room;
    uint8_t state;
    bool is_ready;
    bool is_broken;             /* a parser gave up inside a callback */
    uint8_t retries;
    double started;             /* monotonic, when its connect began */
    uint32_t expected;
    uint32_t got;
    uint64_t *seen;             /* bit k: message room + k * rooms */
    struct http_reader rd;
    struct sse sse;
    struct load_buf body;       /* long-poll: the answer so far */
    char cursor[80];            /* Roomcast long-poll resume point */
    char last_modified[48];     /* Nchan long-poll resume point */
    char etag[48];
};

struct child {
    const struct load_opts *o;
    struct load_shared *sh;
    struct load_stats *st;
    int ep;
    struct sub *subs;
    uint64_t *bitmaps;
    uint32_t count;
    uint32_t opened;            /* subscribers whose first connect began */
    uint32_t settled;           /* of those: up, or failed before */
    double rate;                /* connects per second in this process */
    double t_start;
    double drain_until;         /* 0 until the parent is done publishing */
    double next_scan;
    char rbuf[65536];
};

/* One child per process, and the reader callbacks get only the sub. */
static struct child *g_child;

static void sub_deliver(struct sub *s, int64_t n, int64_t t_us);
static int sub_open(struct child *c, struct sub *s);

/* --- failure and readiness --------------------------------------------- */

static void
sub_close(struct child *c, struct sub *s)
{
    if (s->fd >= 0) {
        epoll_ctl(c->ep, EPOLL_CTL_DEL, s->fd, NULL);
        load_abort_fd(s->fd);
        s->fd = -1;
    }
}

static void
record_hold_failure(struct child *c, const char *what)
{
    uint64_t held = __atomic_load_n(&c->sh->held, __ATOMIC_SEQ_CST);

    if (__atomic_exchange_n(&c->sh->hold_failed, 1, __ATOMIC_SEQ_CST) == 0) {
        snprintf(c->sh->hold_error, sizeof(c->sh->hold_error),
                 "after %llu held: %s", (unsigned long long)held, what);
    }
}

/* Ends subscriber s for good, counting it as a failed connect when it was
 * not up yet, else as a broken stream. */
static void
sub_fail(struct child *c, struct sub *s, const char *what)
{
    if (s->state == SUB_DEAD) {
        return;
    }
    if (!s->is_ready) {
        c->st->connect_failed++;
        c->settled++;
        if (c->o->mode == LOAD_MODE_HOLD) {
            record_hold_failure(c, what);
        }
    } else {
        c->st->disconnects++;
        __atomic_sub_fetch(&c->sh->held, 1, __ATOMIC_SEQ_CST);
    }
    load_set_error(c->st->error, "subscriber %u: %s", s->idx, what);
    sub_close(c, s);
    s->state = SUB_DEAD;
}

static void
sub_ready(struct child *c, struct sub *s)
{
    if (s->is_ready) {
        return;
    }
    s->is_ready = true;
    c->settled++;
    c->st->connected++;
    __atomic_add_fetch(&c->sh->held, 1, __ATOMIC_SEQ_CST);
}

/* --- requests ---------------------------------------------------------- */

static int
format_request(struct child *c, struct sub *s, char *out, size_t size)
{
    const struct load_opts *o = c->o;
    char room[64];

    load_room_name(o, s->room, room, sizeof(room));
    if (o->transport == LOAD_SSE && o->server == LOAD_ROOMCAST) {
        return snprintf(out, size,
                        "GET /rt/events?rooms=%s&cursor=%s:0 HTTP/1.1\r\n"
                        "Host: 127.0.0.1:%d\r\n"
                        "Accept: text/event-stream\r\n\r\n",
                        room, room, o->port);
    }
    if (o->transport == LOAD_SSE) {
        return snprintf(out, size,
                        "GET /sub/%s HTTP/1.1\r\n"
                        "Host: 127.0.0.1:%d\r\n"
                        "Accept: text/event-stream\r\n\r\n",
                        room, o->port);
    }
    if (o->server == LOAD_ROOMCAST) {
        return snprintf(out, size,
                        "GET /rt/poll?rooms=%s&cursor=%s&timeout=%d "
                        "HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
                        room, s->cursor, POLL_TIMEOUT_S, o->port);
    }
    if (s->last_modified[0] == '\0') {
        return snprintf(out, size,
                        "GET /lp/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
                        room, o->port);
    }
    return snprintf(out, size,
                    "GET /lp/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                    "If-Modified-Since: %s\r\nIf-None-Match: %s\r\n\r\n",
                    room, o->port, s->last_modified, s->etag);
}

/* Writes the request of s. Its socket has nothing queued (a request goes
 * out only after the previous answer was read), so a short write means
 * the connection is broken. Returns 0 or -1 with s failed. */
static int
sub_send(struct child *c, struct sub *s)
{
    char req[512];
    int len = format_request(c, s, req, sizeof(req));
    ssize_t n;

    if (len <= 0 || (size_t)len >= sizeof(req)) {
        sub_fail(c, s, "request does not fit");
        return -1;
    }
    do {
        n = write(s->fd, req, (size_t)len);
    } while (n < 0 && errno == EINTR);
    if (n != len) {
        char what[LOAD_ERROR_MAX];

        snprintf(what, sizeof(what), "write: %s",
                 n < 0 ? strerror(errno) : "short write");
        sub_fail(c, s, what);
        return -1;
    }
    return 0;
}

/* --- the reader's callbacks -------------------------------------------- */

static int
on_head(void *arg, const struct http_head *h)
{
    struct sub *s = arg;
    struct child *c = g_child;
    char what[64];

    if (h->status == 200) {
        s->retries = 0;
        s->body.len = 0;
        if (c->o->transport == LOAD_SSE) {
            sub_ready(c, s);
        }
        return 0;
    }
    if (c->o->transport == LOAD_POLL && (h->status == 304 ||
                                         h->status == 408)) {
        return 0;               /* Nchan: nothing new within its timeout */
    }
    c->st->http_errors++;
    snprintf(what, sizeof(what), "HTTP status %d", h->status);
    sub_fail(c, s, what);
    return 1;
}

static void
on_sse_event(void *arg, int64_t n, int64_t t_us)
{
    sub_deliver(arg, n, t_us);
}

static void
on_body(void *arg, const char *p, size_t n)
{
    struct sub *s = arg;

    if (s->is_broken) {
        return;
    }
    if (g_child->o->transport == LOAD_SSE) {
        if (sse_feed(&s->sse, p, n, on_sse_event, s) < 0) {
            s->is_broken = true;
        }
    } else if (load_buf_append(&s->body, p, n, POLL_BODY_MAX) < 0) {
        s->is_broken = true;
    }
}

/* Delivers every message of a long-poll answer. */
static void
poll_answer(struct child *c, struct sub *s)
{
    const char *p = s->body.p, *end = p + s->body.len, *q;
    int64_t n, t_us;

    c->st->polls++;
    if (s->rd.head.status != 200) {
        return;
    }
    if (c->o->server == LOAD_NCHAN) {
        snprintf(s->last_modified, sizeof(s->last_modified), "%s",
                 s->rd.head.last_modified);
        snprintf(s->etag, sizeof(s->etag), "%s", s->rd.head.etag);
    } else if (load_parse_cursor(p, s->body.len, s->cursor,
                                 sizeof(s->cursor)) < 0) {
        s->is_broken = true;
        return;
    }
    while (p != NULL && p < end) {
        q = load_parse_nt(p, (size_t)(end - p), &n, &t_us);
        if (q == NULL) {
            break;
        }
        sub_deliver(s, n, t_us);
        p = q;
    }
    s->body.len = 0;
}

/* Opens the connection of s again and sends its request from there. */
static int
poll_reopen(struct child *c, struct sub *s)
{
    sub_close(c, s);
    c->st->reconnects++;
    return sub_open(c, s);
}

static int
on_done(void *arg)
{
    struct sub *s = arg;
    struct child *c = g_child;

    if (c->o->transport == LOAD_SSE) {
        sub_fail(c, s, "the server ended the stream");
        return 1;
    }
    poll_answer(c, s);
    if (s->is_broken) {
        sub_fail(c, s, "long-poll answer without a cursor");
        return 1;
    }
    if (!s->rd.head.keep_alive) {
        poll_reopen(c, s);
        return 1;
    }
    return sub_send(c, s) < 0 ? 1 : 0;
}

static const struct http_reader_ops sub_ops = {
    .on_head = on_head,
    .on_body = on_body,
    .on_done = on_done,
};

/* --- deliveries -------------------------------------------------------- */

static void
sub_deliver(struct sub *s, int64_t n, int64_t t_us)
{
    struct child *c = g_child;
    struct load_stats *st = c->st;
    uint32_t rooms = c->o->rooms;
    uint64_t local, bit, lat;
    int64_t now;

    if (n < 0) {
        st->unparsed++;
        return;
    }
    if ((uint64_t)n >= c->o->messages || (uint64_t)n % rooms != s->room) {
        st->foreign++;
        return;
    }
    local = (uint64_t)n / rooms;
    bit = 1ull << (local % 64);
    if (s->seen[local / 64] & bit) {
        st->duplicated++;
        return;
    }
    s->seen[local / 64] |= bit;
    s->got++;
    st->received++;

    now = load_now_us();
    lat = now > t_us ? (uint64_t)(now - t_us) : 0;
    load_lat_add(st->lat, lat);
    st->lat_count++;
    st->lat_sum_us += (double)lat;
    if (lat > st->lat_max_us) {
        st->lat_max_us = lat;
    }
    if (st->first_us == 0) {
        st->first_us = now;
    }
    st->last_us = now;
}

/* --- connections ------------------------------------------------------- */

static int
sub_open(struct child *c, struct sub *s)
{
    struct epoll_event ev;
    char what[LOAD_ERROR_MAX];

    s->started = load_mono_s();
    s->fd = load_connect(c->o->port);
    if (s->fd < 0) {
        snprintf(what, sizeof(what), "connect: %s", strerror(errno));
        s->state = SUB_CONNECTING;
        sub_fail(c, s, what);
        return -1;
    }
    s->state = SUB_CONNECTING;
    ev.events = EPOLLOUT | EPOLLIN;
    ev.data.ptr = s;
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
        snprintf(what, sizeof(what), "epoll_ctl: %s", strerror(errno));
        sub_fail(c, s, what);
        return -1;
    }
    http_reader_reset(&s->rd);
    s->sse.line.len = 0;
    s->sse.has_data = false;
    s->body.len = 0;
    return 0;
}

/* The connect finished (or failed): send the request. */
static void
sub_connected(struct child *c, struct sub *s)
{
    struct epoll_event ev;
    int err = 0;
    socklen_t len = sizeof(err);
    char what[LOAD_ERROR_MAX];

    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        err = errno;
    }
    if (err != 0) {
        snprintf(what, sizeof(what), "connect: %s", strerror(err));
        sub_fail(c, s, what);
        return;
    }
    ev.events = EPOLLIN;
    ev.data.ptr = s;
    epoll_ctl(c->ep, EPOLL_CTL_MOD, s->fd, &ev);
    s->state = SUB_OPEN;
    if (sub_send(c, s) < 0) {
        return;
    }
    /* A long-poll gives no sign that it is held; once sent, its cursor
     * (or Nchan's oldest-first start) already covers every message. */
    if (c->o->transport == LOAD_POLL) {
        sub_ready(c, s);
    }
}

/* The server closed the connection. */
static void
sub_eof(struct child *c, struct sub *s)
{
    if (s->rd.state == HTTP_READ_BODY && s->rd.body.kind == HTTP_BODY_CLOSE) {
        /* A body delimited by the close is complete now. */
        s->rd.head.keep_alive = false;
        s->rd.body.kind = HTTP_BODY_NONE;
        s->rd.state = HTTP_READ_HEAD;
        on_done(s);
        return;
    }
    if (c->o->transport == LOAD_POLL && s->rd.state == HTTP_READ_HEAD &&
        s->rd.carry.len == 0 && s->is_ready &&
        s->retries < POLL_RETRIES_MAX) {
        /* An idle keep-alive connection closed as the next poll went out:
         * nothing was answered, so asking again is safe. */
        s->retries++;
        poll_reopen(c, s);
        return;
    }
    sub_fail(c, s, s->is_ready ? "connection closed by the server"
                               : "connection closed before the response");
}

static void
sub_read(struct child *c, struct sub *s)
{
    char what[LOAD_ERROR_MAX];
    ssize_t n;
    int i, fd, rc;

    for (i = 0; i < 8 && s->state == SUB_OPEN; i++) {
        fd = s->fd;
        n = read(fd, c->rbuf, sizeof(c->rbuf));
        if (n > 0) {
            rc = http_reader_feed(&s->rd, c->rbuf, (size_t)n, &sub_ops, s);
            if (rc < 0 || s->is_broken) {
                sub_fail(c, s, "malformed response");
                return;
            }
            if (rc == 1 || s->fd != fd || (size_t)n < sizeof(c->rbuf)) {
                return;
            }
            continue;
        }
        if (n == 0) {
            sub_eof(c, s);
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        }
        if (errno != EINTR) {
            snprintf(what, sizeof(what), "read: %s", strerror(errno));
            sub_fail(c, s, what);
            return;
        }
    }
}

static void
sub_event(struct child *c, struct sub *s, uint32_t events)
{
    (void)events;
    if (s->state == SUB_CONNECTING) {
        sub_connected(c, s);
    } else if (s->state == SUB_OPEN) {
        sub_read(c, s);
    }
}

/* --- the loop ---------------------------------------------------------- */

static bool
may_open_more(struct child *c)
{
    if (c->opened >= c->count) {
        return false;
    }
    if (c->o->mode == LOAD_MODE_HOLD &&
        __atomic_load_n(&c->sh->hold_failed, __ATOMIC_SEQ_CST)) {
        return false;
    }
    return c->opened - c->settled < PENDING_MAX;
}

static void
open_more(struct child *c, double now)
{
    double allowed = (now - c->t_start) * c->rate + 1;

    while (may_open_more(c) && (double)c->opened < allowed) {
        sub_open(c, &c->subs[c->opened]);
        c->opened++;
    }
}

/* Fails subscribers whose head is overdue; says whether every live one
 * has all its messages. */
static bool
scan(struct child *c, double now)
{
    bool is_complete = true;
    uint32_t i;

    for (i = 0; i < c->opened; i++) {
        struct sub *s = &c->subs[i];

        if (s->state == SUB_DEAD) {
            continue;
        }
        if (!s->is_ready && now - s->started > CONNECT_TIMEOUT_S) {
            sub_fail(c, s, "no response head within 15 s");
            continue;
        }
        if (s->got < s->expected) {
            is_complete = false;
        }
    }
    return is_complete && c->opened == c->count;
}

static bool
is_done_opening(struct child *c)
{
    return c->settled == c->opened && !may_open_more(c) &&
           (c->opened == c->count || c->o->mode == LOAD_MODE_HOLD);
}

/* Reads the parent's flags and sets this process's. Returns false once
 * the parent asked to stop. */
static bool
follow_parent(struct child *c, double now)
{
    struct load_shared *sh = c->sh;
    bool is_complete;

    if (__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST)) {
        return false;
    }
    if (!c->st->ready && is_done_opening(c)) {
        __atomic_store_n(&c->st->ready, 1, __ATOMIC_SEQ_CST);
    }
    if (now < c->next_scan) {
        return true;
    }
    c->next_scan = now + 0.1;
    is_complete = scan(c, now);
    if (c->drain_until == 0 && __atomic_load_n(&sh->pub_done,
                                               __ATOMIC_SEQ_CST)) {
        c->drain_until = now + c->o->drain_seconds;
    }
    if (c->drain_until > 0 && !c->st->finished &&
        (is_complete || now > c->drain_until)) {
        __atomic_store_n(&c->st->finished, 1, __ATOMIC_SEQ_CST);
    }
    return true;
}

static int
child_init(struct child *c, const struct load_opts *o,
           struct load_shared *sh, int k, uint32_t first, uint32_t count)
{
    uint32_t rooms = o->rooms, words, i;

    memset(c, 0, sizeof(*c));
    c->o = o;
    c->sh = sh;
    c->st = &sh->child[k];
    c->count = count;
    c->rate = o->ramp / o->procs;
    c->ep = epoll_create1(EPOLL_CLOEXEC);
    words = (o->messages / rooms + 1 + 63) / 64;
    c->subs = calloc(count ? count : 1, sizeof(*c->subs));
    c->bitmaps = calloc((size_t)(count ? count : 1) * words,
                        sizeof(uint64_t));
    if (c->ep < 0 || c->subs == NULL || c->bitmaps == NULL) {
        return -1;
    }
    for (i = 0; i < count; i++) {
        struct sub *s = &c->subs[i];
        char room[64];

        s->fd = -1;
        s->idx = first + i;
        s->room = s->idx % rooms;
        s->seen = c->bitmaps + (size_t)i * words;
        s->expected = o->messages > s->room
                          ? (o->messages - s->room - 1) / rooms + 1
                          : 0;
        c->st->expected += s->expected;
        load_room_name(o, s->room, room, sizeof(room));
        snprintf(s->cursor, sizeof(s->cursor), "%s:0", room);
    }
    return 0;
}

int
sub_main(const struct load_opts *o, struct load_shared *sh, int k,
         uint32_t first, uint32_t count)
{
    static struct child c;
    struct epoll_event evs[EVENTS_MAX];
    double now, deadline;
    uint32_t i;
    int n, j;

    if (child_init(&c, o, sh, k, first, count) < 0) {
        load_set_error(sh->child[k].error, "out of memory");
        sh->child[k].ready = 1;
        sh->child[k].finished = 1;
        return 1;
    }
    g_child = &c;
    c.t_start = load_mono_s();
    deadline = c.t_start + o->deadline_seconds;

    for (;;) {
        now = load_mono_s();
        if (now > deadline) {
            load_set_error(c.st->error, "deadline reached");
            break;
        }
        open_more(&c, now);
        if (!follow_parent(&c, now)) {
            break;
        }
        n = epoll_wait(c.ep, evs, EVENTS_MAX,
                       c.opened < c.count ? 5 : 20);
        for (j = 0; j < n; j++) {
            sub_event(&c, evs[j].data.ptr, evs[j].events);
        }
    }

    for (i = 0; i < c.count; i++) {
        sub_close(&c, &c.subs[i]);
    }
    __atomic_store_n(&c.st->ready, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&c.st->finished, 1, __ATOMIC_SEQ_CST);
    return 0;
}
