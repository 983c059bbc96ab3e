/*
 * pub.c - the publishers of roomcast-load: HTTP POSTs over keep-alive
 * connections, either paced (message n due at n / rate seconds after the
 * start) or closed-loop (every connection sends its next message as soon
 * as the answer to the last one arrives, for a fixed time).
 *
 * Message n goes to room n % rooms with the body
 * {"type":"text","data":{"n":N,"t":T}}, T being the send time in
 * microseconds of CLOCK_REALTIME, which the subscriber processes read to
 * measure latency. Both servers get the same body: Roomcast wraps it in its
 * envelope, Nchan passes it on as it is.
 *
 * Runs in the parent process of main.c; never subscribes. A request that
 * gets no answer is counted as failed and not sent again, so a loss shows.
 */
#include "load.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define PUB_CONNS_MAX 256
/* How long the closed-loop mode waits for answers still due at the end. */
#define PUB_TAIL_S 10.0

struct pub;

struct pconn {
    struct pub *p;
    int fd;
    bool is_busy;
    int64_t sent_us;
    struct http_reader rd;
};

struct pub {
    const struct load_opts *o;
    struct pub_result *r;
    int ep;
    struct pconn conns[PUB_CONNS_MAX];
    uint32_t nconns;
    uint64_t next;              /* the next message number */
    uint64_t inflight;
    char rbuf[65536];
};

static int
pconn_open(struct pub *p, struct pconn *pc)
{
    struct sockaddr_in sa;
    struct epoll_event ev;
    int one = 1, fd;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)p->o->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* A blocking connect: there are few publishers, made before the clock
     * starts, and the loopback answers at once. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    ev.events = EPOLLIN;
    ev.data.ptr = pc;
    if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        return -1;
    }
    pc->p = p;
    pc->fd = fd;
    pc->is_busy = false;
    http_reader_reset(&pc->rd);
    return 0;
}

static void
pconn_close(struct pub *p, struct pconn *pc)
{
    if (pc->fd >= 0) {
        epoll_ctl(p->ep, EPOLL_CTL_DEL, pc->fd, NULL);
        load_abort_fd(pc->fd);
        pc->fd = -1;
    }
    if (pc->is_busy) {
        pc->is_busy = false;
        p->inflight--;
    }
}

static int
format_publish(struct pub *p, uint64_t n, int64_t t_us, char *out,
               size_t size)
{
    const struct load_opts *o = p->o;
    char room[64], body[96];
    int blen;

    load_room_name(o, (uint32_t)(n % o->rooms), room, sizeof(room));
    blen = snprintf(body, sizeof(body),
                    "{\"type\":\"text\",\"data\":{\"n\":%llu,\"t\":%lld}}",
                    (unsigned long long)n, (long long)t_us);
    return snprintf(out, size,
                    "POST %s%s%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                    "Content-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n%s",
                    o->server == LOAD_ROOMCAST ? "/rt/rooms/" : "/pub/",
                    room,
                    o->server == LOAD_ROOMCAST ? "/messages" : "",
                    o->port, blen, body);
}

static int
write_all(int fd, const char *buf, size_t len)
{
    ssize_t n;

    do {
        n = write(fd, buf, len);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : -1;
}

/* Sends message n on pc. An idle keep-alive connection may have been
 * closed by the server; the request then went nowhere, so it is sent once
 * more on a new connection. */
static int
pconn_send(struct pub *p, struct pconn *pc, uint64_t n)
{
    char req[512];
    int64_t t_us = load_now_us();
    int len = format_publish(p, n, t_us, req, sizeof(req));

    if (pc->fd < 0 || write_all(pc->fd, req, (size_t)len) < 0) {
        pconn_close(p, pc);
        if (pconn_open(p, pc) < 0 ||
            write_all(pc->fd, req, (size_t)len) < 0) {
            load_set_error(p->r->error, "publish %llu: %s",
                           (unsigned long long)n, strerror(errno));
            p->r->failed++;
            return -1;
        }
    }
    pc->is_busy = true;
    pc->sent_us = t_us;
    p->inflight++;
    p->r->sent++;
    if (p->r->first_us == 0) {
        p->r->first_us = t_us;
    }
    return 0;
}

/* --- answers ---------------------------------------------------------- */

static int
on_head(void *arg, const struct http_head *h)
{
    struct pconn *pc = arg;
    struct pub_result *r = pc->p->r;
    int64_t now = load_now_us();
    uint64_t lat;

    if (h->status >= 200 && h->status < 300) {
        r->acked++;
    } else {
        r->failed++;
        load_set_error(r->error, "publish answered HTTP %d", h->status);
    }
    lat = now > pc->sent_us ? (uint64_t)(now - pc->sent_us) : 0;
    load_lat_add(r->lat, lat);
    r->lat_count++;
    r->lat_sum_us += (double)lat;
    if (lat > r->lat_max_us) {
        r->lat_max_us = lat;
    }
    r->end_us = now;
    return 0;
}

static void
on_body(void *arg, const char *p, size_t n)
{
    (void)arg;
    (void)p;
    (void)n;
}

static int
on_done(void *arg)
{
    struct pconn *pc = arg;
    struct pub *p = pc->p;

    if (pc->is_busy) {
        pc->is_busy = false;
        p->inflight--;
    }
    if (!pc->rd.head.keep_alive) {
        pconn_close(p, pc);
        return 1;
    }
    return 0;
}

static const struct http_reader_ops pub_ops = {
    .on_head = on_head,
    .on_body = on_body,
    .on_done = on_done,
};

static void
pconn_read(struct pub *p, struct pconn *pc)
{
    ssize_t n;

    for (;;) {
        n = read(pc->fd, p->rbuf, sizeof(p->rbuf));
        if (n > 0) {
            if (http_reader_feed(&pc->rd, p->rbuf, (size_t)n, &pub_ops,
                                 pc) != 0 || pc->fd < 0) {
                if (pc->fd >= 0) {
                    load_set_error(p->r->error, "malformed publish answer");
                    pconn_close(p, pc);
                }
                return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        /* Closed or broken: a request still waiting has failed. */
        if (pc->is_busy) {
            p->r->failed++;
            load_set_error(p->r->error,
                           "publish connection closed before the answer");
        }
        pconn_close(p, pc);
        return;
    }
}

static void
pub_poll(struct pub *p, int timeout_ms)
{
    struct epoll_event evs[PUB_CONNS_MAX];
    int n, i;

    n = epoll_wait(p->ep, evs, PUB_CONNS_MAX, timeout_ms);
    for (i = 0; i < n; i++) {
        pconn_read(p, evs[i].data.ptr);
    }
}

static struct pconn *
idle_conn(struct pub *p)
{
    uint32_t i;

    for (i = 0; i < p->nconns; i++) {
        if (!p->conns[i].is_busy) {
            return &p->conns[i];
        }
    }
    return NULL;
}

/* --- the two ways to publish ------------------------------------------- */

static void
run_paced(struct pub *p, double deadline)
{
    const struct load_opts *o = p->o;
    struct pub_result *r = p->r;
    double t0 = load_mono_s(), interval = 1.0 / o->rate, now, due, lag;
    struct pconn *pc;
    int timeout_ms;

    while (r->acked + r->failed < o->messages) {
        now = load_mono_s();
        if (now > deadline) {
            load_set_error(r->error, "deadline reached while publishing");
            return;
        }
        while (p->next < o->messages) {
            due = t0 + (double)p->next * interval;
            if (due > now || (pc = idle_conn(p)) == NULL) {
                break;
            }
            lag = (now - due) * 1000.0;
            if (lag > r->lag_max_ms) {
                r->lag_max_ms = lag;
            }
            pconn_send(p, pc, p->next++);
        }
        timeout_ms = 50;
        if (p->next < o->messages && idle_conn(p) != NULL) {
            due = t0 + (double)p->next * interval;
            timeout_ms = (int)ceil((due - load_mono_s()) * 1000.0);
            timeout_ms = timeout_ms < 0 ? 0 : timeout_ms > 50 ? 50
                                                              : timeout_ms;
        }
        pub_poll(p, timeout_ms);
    }
}

static void
run_closed_loop(struct pub *p, double deadline)
{
    double end = load_mono_s() + p->o->seconds, now;
    struct pconn *pc;

    for (;;) {
        now = load_mono_s();
        if (now > deadline || (now >= end && p->inflight == 0) ||
            now > end + PUB_TAIL_S) {
            break;
        }
        while (now < end && (pc = idle_conn(p)) != NULL) {
            if (pconn_send(p, pc, p->next++) < 0) {
                break;
            }
        }
        pub_poll(p, 5);
    }
    if (p->inflight > 0) {
        load_set_error(p->r->error, "%llu publishes never answered",
                       (unsigned long long)p->inflight);
        p->r->failed += p->inflight;
    }
}

int
pub_run(const struct load_opts *o, double deadline_s, struct pub_result *r)
{
    static struct pub p;
    uint32_t i;

    memset(&p, 0, sizeof(p));
    p.o = o;
    p.r = r;
    p.nconns = o->pub_conns > PUB_CONNS_MAX ? PUB_CONNS_MAX : o->pub_conns;
    p.ep = epoll_create1(EPOLL_CLOEXEC);
    if (p.ep < 0) {
        return -1;
    }
    for (i = 0; i < p.nconns; i++) {
        p.conns[i].fd = -1;
        if (pconn_open(&p, &p.conns[i]) < 0) {
            load_set_error(r->error, "publisher connect: %s",
                           strerror(errno));
            return -1;
        }
    }
    if (o->mode == LOAD_MODE_PUBRATE) {
        run_closed_loop(&p, deadline_s);
    } else {
        run_paced(&p, deadline_s);
    }
    for (i = 0; i < p.nconns; i++) {
        pconn_close(&p, &p.conns[i]);
    }
    close(p.ep);
    return 0;
}
