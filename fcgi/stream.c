/*
 * stream.c - waiting requests in the event loop (see stream.h).
 *
 * Invariants:
 * - Output of a stream is written in order: while st->out holds bytes,
 *   new output is appended behind them, never written around them.
 * - A stream is closed only in stream_flush(), never inside a delivery
 *   callback, because the hub is walking a room's subscriber list then.
 * - Everything a stream writes is whole SSE events or comments, so a
 *   stream that ends or is cut ends after a complete event.
 */
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "record.h"
#include "strmap.h"

#define STREAM_IS_RAW 0x01          /* plain CGI: no FastCGI framing */
#define STREAM_IS_DIRTY 0x02        /* on the flush list */
#define STREAM_IS_DEAD 0x04         /* close at the next flush */
#define STREAM_IS_ENDING 0x08       /* close once the output is written */
#define STREAM_WANTS_OUT 0x10       /* EPOLLOUT registered */
#define STREAM_IS_PRESENT 0x20      /* has rows in roomcast.presence */

/* Events gathered for one stream before it writes them (SSE) or before
 * the batch ends (long-poll). */
#define STREAM_PENDING_FLUSH 64

/* The web server notices that a client left only when it next writes to
 * it. A stream that makes its user present therefore gets a comment line
 * every second, so the user's leave follows the close within about a
 * second; other streams need one only every sse_heartbeat_seconds. */
#define PRESENCE_PROBE_MS 1000
#define STREAM_IOV_MAX 512

struct stream_sub {
    struct hub_sub hub;
    struct stream *owner;
    int64_t sent_seq;               /* newest seq written to the client */
};

struct stream {
    struct stream *prev;
    struct stream *next;
    struct stream *dirty_next;
    struct buf *out;                /* framed bytes not yet written */
    struct hub_event **pending;
    struct auth_identity *who;      /* NULL: anonymous */
    char *answer_headers;           /* long-poll only; NULL: none */
    int64_t deadline_ms;
    int64_t beat_ms;
    int fd;
    uint32_t id;                    /* names its presence rows */
    uint16_t npending;
    uint16_t pending_cap;
    uint16_t request_id;
    uint8_t kind;
    uint8_t flags;
    uint16_t nsubs;
    struct record_reader reader;
    struct stream_sub subs[];
};

static struct stream *all_streams;
static struct stream *dirty_streams;
static struct stream *retired_streams;  /* closed, freed by stream_reap() */

void
stream_loop_init(struct stream_loop *loop, int epoll_fd, struct hub *hub,
                 struct store *store, const struct config *cfg)
{
    memset(loop, 0, sizeof(*loop));
    loop->epoll_fd = epoll_fd;
    loop->hub = hub;
    loop->store = store;
    loop->cfg = cfg;
    loop->user_streams = strmap_new();
}

void
stream_set_answer_headers(struct stream *st, const char *headers)
{
    if (headers[0] != '\0')
        st->answer_headers = strdup(headers);
}

int64_t
stream_user_count(const struct stream_loop *loop, const char *user)
{
    if (loop->user_streams == NULL)
        return 0;
    return (int64_t)(intptr_t)strmap_get(loop->user_streams, user);
}

/* Counts streams per user; an entry goes when its count reaches 0. */
static void
count_user(struct stream_loop *loop, const char *user, int delta)
{
    int64_t n = stream_user_count(loop, user) + delta;

    if (loop->user_streams == NULL)
        return;
    if (n <= 0)
        strmap_remove(loop->user_streams, user);
    else
        strmap_put(loop->user_streams, user, (void *)(intptr_t)n);
}

static int64_t
beat_interval_ms(const struct stream_loop *loop, const struct stream *st)
{
    int64_t ms = loop->cfg->sse_heartbeat_seconds * 1000;

    return (st->flags & STREAM_IS_PRESENT) && ms > PRESENCE_PROBE_MS
           ? PRESENCE_PROBE_MS : ms;
}

static void
mark_dirty(struct stream *st)
{
    if (st->flags & STREAM_IS_DIRTY)
        return;
    st->flags |= STREAM_IS_DIRTY;
    st->dirty_next = dirty_streams;
    dirty_streams = st;
}

static void
mark_dead(struct stream *st)
{
    st->flags |= STREAM_IS_DEAD;
    mark_dirty(st);
}

static void
watch_output(struct stream_loop *loop, struct stream *st, bool want)
{
    struct epoll_event ev = {0};

    if (want == !!(st->flags & STREAM_WANTS_OUT) ||
        (st->flags & STREAM_IS_RAW))
        return;
    ev.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0);
    ev.data.ptr = st;
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_MOD, st->fd, &ev) != 0) {
        mark_dead(st);
        return;
    }
    st->flags ^= STREAM_WANTS_OUT;
}

/* Keeps the bytes of iov that were not written, from byte offset done. */
static void
queue_rest(struct stream_loop *loop, struct stream *st,
           const struct iovec *iov, int iovcnt, size_t done)
{
    if (st->out == NULL) {
        st->out = calloc(1, sizeof(*st->out));
        if (st->out == NULL) {
            mark_dead(st);
            return;
        }
    }
    for (int i = 0; i < iovcnt; i++) {
        if (done >= iov[i].iov_len) {
            done -= iov[i].iov_len;
            continue;
        }
        buf_append(st->out, (const char *)iov[i].iov_base + done,
                   iov[i].iov_len - done);
        done = 0;
    }
    if (buf_failed(st->out) ||
        st->out->len > (size_t)loop->cfg->out_queue_max_bytes) {
        log_debug("stream", "fd %d: client too slow, %zu bytes unsent; "
                  "closing, it resumes from its cursor", st->fd,
                  st->out->len);
        mark_dead(st);
        return;
    }
    watch_output(loop, st, true);
}

/* Writes framed bytes now, or queues them behind earlier output. */
static void
send_framed(struct stream_loop *loop, struct stream *st,
            const struct iovec *iov, int iovcnt)
{
    ssize_t n = 0;

    if (st->flags & STREAM_IS_DEAD)
        return;
    if (st->out == NULL || st->out->len == 0) {
        n = writev(st->fd, iov, iovcnt);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
            errno != EINTR) {
            mark_dead(st);
            return;
        }
        if (n < 0)
            n = 0;
    }
    size_t total = 0;

    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if ((size_t)n < total)
        queue_rest(loop, st, iov, iovcnt, (size_t)n);
}

/* Frames content pieces as STDOUT records (at most RECORD_CONTENT_MAX
 * bytes each) and sends them. Raw (CGI) streams send them as they are. */
static void
send_content(struct stream_loop *loop, struct stream *st,
             const struct iovec *content, int n)
{
    struct iovec iov[STREAM_IOV_MAX + 32];
    unsigned char headers[32][RECORD_HEADER_LEN];
    size_t total = 0, left_in_record = 0;
    int out = 0, nheaders = 0;

    if (st->flags & STREAM_IS_RAW) {
        send_framed(loop, st, content, n);
        return;
    }
    for (int i = 0; i < n; i++)
        total += content[i].iov_len;

    for (int i = 0; i < n; i++) {
        size_t off = 0;

        while (off < content[i].iov_len) {
            size_t take;

            if (left_in_record == 0) {
                if (nheaders == 32 || out >= STREAM_IOV_MAX + 30) {
                    send_framed(loop, st, iov, out);
                    out = nheaders = 0;
                }
                left_in_record = total < RECORD_CONTENT_MAX
                                 ? total : RECORD_CONTENT_MAX;
                record_header(headers[nheaders], RECORD_STDOUT,
                              st->request_id, left_in_record);
                iov[out].iov_base = headers[nheaders++];
                iov[out++].iov_len = RECORD_HEADER_LEN;
            }
            take = content[i].iov_len - off;
            if (take > left_in_record)
                take = left_in_record;
            iov[out].iov_base = (char *)content[i].iov_base + off;
            iov[out++].iov_len = take;
            off += take;
            left_in_record -= take;
            total -= take;
        }
    }
    if (out > 0)
        send_framed(loop, st, iov, out);
}

void
stream_write(struct stream_loop *loop, struct stream *st, const char *data,
             size_t len)
{
    struct iovec iov = {(void *)data, len};

    if (len > 0)
        send_content(loop, st, &iov, 1);
}

static void
set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags >= 0)
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

struct stream *
stream_open(struct stream_loop *loop, enum stream_kind kind, int fd,
            unsigned request_id, bool is_raw, size_t nrooms,
            int64_t lifetime_ms, struct auth_identity *who)
{
    struct stream *st = calloc(1, sizeof(*st) +
                                  nrooms * sizeof(struct stream_sub));
    struct epoll_event ev = {0};

    if (st == NULL) {
        close(fd);
        return NULL;
    }
    st->fd = fd;
    st->id = ++loop->next_stream_id;
    st->request_id = (uint16_t)request_id;
    st->kind = (uint8_t)kind;
    st->flags = is_raw ? STREAM_IS_RAW : 0;
    st->nsubs = (uint16_t)nrooms;
    st->deadline_ms = loop->now_ms + lifetime_ms;
    st->beat_ms = loop->now_ms + beat_interval_ms(loop, st);
    for (size_t i = 0; i < nrooms; i++)
        st->subs[i].owner = st;
    if (who != NULL && who->expires_at > 0) {
        int64_t left_ms = (who->expires_at - (int64_t)time(NULL)) * 1000;

        if (left_ms < lifetime_ms)
            st->deadline_ms = loop->now_ms + (left_ms > 0 ? left_ms : 0);
    }

    /* Under CGI the one client is stdout, which may be a pipe or a file:
     * it is written with blocking writes and not watched, and a client
     * that left shows as a failed write. */
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = st;
    if (!is_raw)
        set_nonblocking(fd);
    if (!is_raw && epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        log_warn("stream", "cannot watch fd %d: %s", fd, strerror(errno));
        close(fd);
        free(st);
        return NULL;
    }

    if (who != NULL) {
        auth_identity_ref(who);
        st->who = who;
        count_user(loop, who->user, +1);
    }
    st->next = all_streams;
    if (all_streams != NULL)
        all_streams->prev = st;
    all_streams = st;
    loop->count++;
    return st;
}

int
stream_subscribe(struct stream_loop *loop, struct stream *st, size_t i,
                 const char *room, int64_t seq, int64_t room_last_seq)
{
    struct stream_sub *sub = &st->subs[i];

    sub->hub.seq = seq;
    sub->sent_seq = seq;
    return hub_subscribe(loop->hub, room, room_last_seq, &sub->hub);
}

/* "<host>:<pid>:<id>": the stream's name in roomcast.presence. */
static const char *
conn_id(struct stream_loop *loop, const struct stream *st, char *buf,
        size_t size)
{
    snprintf(buf, size, "%s:%d:%u", store_host(loop->store), (int)getpid(),
             st->id);
    return buf;
}

void
stream_join_presence(struct stream_loop *loop, struct stream *st,
                     const char *rooms)
{
    char conn[300];

    if (st->who == NULL || st->kind != STREAM_SSE)
        return;
    if (store_presence_join(loop->store, conn_id(loop, st, conn,
                                                 sizeof(conn)),
                            rooms, st->who->user, NULL, NULL) == 0) {
        st->flags |= STREAM_IS_PRESENT;
        st->beat_ms = loop->now_ms + PRESENCE_PROBE_MS;
    }
}

void
stream_touch_presence(struct stream_loop *loop)
{
    struct buf conns = BUF_INIT;
    char conn[300];
    int64_t n = 0;

    buf_puts(&conns, "{");
    for (struct stream *st = all_streams; st != NULL; st = st->next) {
        if (!(st->flags & STREAM_IS_PRESENT))
            continue;
        buf_printf(&conns, "%s\"%s\"", n++ ? "," : "",
                   conn_id(loop, st, conn, sizeof(conn)));
    }
    buf_puts(&conns, "}");
    if (n > 0 && !buf_failed(&conns) &&
        store_presence_touch(loop->store, conns.data, NULL) != 0)
        log_debug("stream", "presence refresh of %" PRId64 " streams "
                  "failed; retried next round", n);
    buf_free(&conns);
}

/* Unlinks, unwatches and closes a stream, and puts it on the list of
 * streams to free. Its memory outlives this call because epoll may have
 * returned an event for it that the loop has not handled yet; the loop
 * frees it with stream_reap() once the round is over. */
static void
stream_retire(struct stream_loop *loop, struct stream *st)
{
    for (size_t i = 0; i < st->nsubs; i++)
        hub_unsubscribe(loop->hub, &st->subs[i].hub);
    for (size_t i = 0; i < st->npending; i++)
        hub_event_unref(st->pending[i]);
    free(st->pending);
    free(st->answer_headers);
    if (st->flags & STREAM_IS_PRESENT) {
        char conn[300];

        /* Gone from every room at once; when the database is down the
         * rows expire and the sweep says the same, a little later. */
        if (store_presence_leave(loop->store, conn_id(loop, st, conn,
                                                      sizeof(conn)),
                                 NULL, NULL) != 0)
            log_debug("stream", "presence of stream %u left to expire",
                      st->id);
    }
    if (st->who != NULL) {
        count_user(loop, st->who->user, -1);
        auth_identity_unref(st->who);
    }

    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        all_streams = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    loop->count--;

    epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, st->fd, NULL);
    close(st->fd);
    if (st->out != NULL)
        buf_free(st->out);
    free(st->out);
    st->out = NULL;
    st->next = retired_streams;
    retired_streams = st;
}

void
stream_loop_free(struct stream_loop *loop)
{
    strmap_free(loop->user_streams, NULL);
    loop->user_streams = NULL;
}

void
stream_reap(struct stream_loop *loop)
{
    (void)loop;
    while (retired_streams != NULL) {
        struct stream *st = retired_streams;

        retired_streams = st->next;
        free(st);
    }
}

/* Ends the request after what is queued: end records, then close. */
static void
stream_end(struct stream_loop *loop, struct stream *st)
{
    unsigned char end[RECORD_END_LEN];
    struct iovec iov = {end, sizeof(end)};

    if (st->flags & (STREAM_IS_ENDING | STREAM_IS_DEAD))
        return;
    st->flags |= STREAM_IS_ENDING;
    if (!(st->flags & STREAM_IS_RAW)) {
        record_end(end, st->request_id);
        send_framed(loop, st, &iov, 1);
    }
    if (st->out == NULL || st->out->len == 0)
        mark_dead(st);
}

static void
write_pending_output(struct stream_loop *loop, struct stream *st)
{
    ssize_t n = write(st->fd, st->out->data, st->out->len);

    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            mark_dead(st);
        return;
    }
    buf_consume(st->out, (size_t)n);
    if (st->out->len > 0)
        return;
    buf_free(st->out);
    free(st->out);
    st->out = NULL;
    watch_output(loop, st, false);
    if (st->flags & STREAM_IS_ENDING)
        mark_dead(st);
}

void
stream_on_io(struct stream_loop *loop, struct stream *st, uint32_t events)
{
    /* Retired earlier in this round: its socket is closed (and its number
     * may already belong to a new request). */
    if (st->flags & STREAM_IS_DEAD)
        return;
    if (events & EPOLLIN) {
        unsigned char data[512];
        ssize_t n = read(st->fd, data, sizeof(data));

        /* The web server closes its side, or asks to abort, when the
         * client went away. */
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
            (n > 0 && record_read(&st->reader, data, (size_t)n) != 0)) {
            mark_dead(st);
            return;
        }
    }
    if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
        mark_dead(st);
        return;
    }
    if ((events & EPOLLOUT) && st->out != NULL)
        write_pending_output(loop, st);
}

/* ---- delivery ---- */

/* "id: room:seq\nevent: type\ndata: envelope\n\n" for a stored message,
 * "event: type\ndata: envelope\n\n" for an ephemeral one; encoded once
 * per event and shared by every SSE stream. encoded_tail is where the
 * part after the id line starts. */
static int
sse_encode(struct hub_event *ev)
{
    struct buf b = BUF_INIT;

    if (ev->encoded != NULL)
        return 0;
    if (ev->seq > 0)
        buf_printf(&b, "id: %s:%" PRId64 "\n", ev->room, ev->seq);
    ev->encoded_tail = b.len;
    buf_printf(&b, "event: %s\ndata: ", ev->type);
    buf_append(&b, ev->envelope, ev->envelope_len);
    buf_puts(&b, "\n\n");
    if (buf_failed(&b)) {
        buf_free(&b);
        return -1;
    }
    ev->encoded = b.data;
    ev->encoded_len = b.len;
    return 0;
}

static void
add_pending(struct stream *st, struct hub_event *ev)
{
    if (st->npending == st->pending_cap) {
        uint16_t cap = st->pending_cap ? st->pending_cap * 2 : 4;
        struct hub_event **p = realloc(st->pending, cap * sizeof(*p));

        if (p == NULL) {
            mark_dead(st);
            return;
        }
        st->pending = p;
        st->pending_cap = cap;
    }
    hub_event_ref(ev);
    st->pending[st->npending++] = ev;
    mark_dirty(st);
}

static void sse_write_pending(struct stream_loop *loop, struct stream *st);

void
stream_deliver(void *ctx, struct hub_sub *sub, struct hub_event *ev)
{
    struct stream_loop *loop = ctx;
    struct stream *st = ((struct stream_sub *)sub)->owner;

    if (st->flags & (STREAM_IS_DEAD | STREAM_IS_ENDING))
        return;
    /* Typing is for everyone else in the room. */
    if (ev->seq == 0 && st->who != NULL && ev->from[0] != '\0' &&
        strcmp(ev->type, "typing") == 0 && strcmp(ev->from, st->who->user) == 0)
        return;
    if (st->kind == STREAM_POLL &&
        st->npending >= loop->cfg->poll_max_messages)
        return;     /* the answer is full; the next poll reads the rest */
    if (st->kind == STREAM_SSE && sse_encode(ev) != 0) {
        mark_dead(st);
        return;
    }
    add_pending(st, ev);
    if (st->kind == STREAM_SSE && st->npending >= STREAM_PENDING_FLUSH)
        sse_write_pending(loop, st);
}

static struct stream_sub *
sub_of_room(struct stream *st, const char *room)
{
    for (size_t i = 0; i < st->nsubs; i++) {
        if (st->subs[i].hub.room != NULL &&
            strcmp(hub_room_name(st->subs[i].hub.room), room) == 0)
            return &st->subs[i];
    }
    return NULL;
}

/* Appends the stream's whole cursor ("a:3,b:7") to b. */
static void
format_cursor(struct stream *st, struct buf *b)
{
    const char *sep = "";

    for (size_t i = 0; i < st->nsubs; i++) {
        if (st->subs[i].hub.room == NULL)
            continue;
        buf_printf(b, "%s%s:%" PRId64, sep,
                   hub_room_name(st->subs[i].hub.room),
                   st->subs[i].sent_seq);
        sep = ",";
    }
}

/* Writes the gathered events of an SSE stream with one writev. A
 * single-room stream writes each event's shared encoding as it is; a
 * multi-room stream writes its own id line (its whole cursor) before
 * the shared rest of each stored event. */
static void
sse_write_pending(struct stream_loop *loop, struct stream *st)
{
    struct iovec iov[2 * STREAM_PENDING_FLUSH + 2];
    struct buf ids = BUF_INIT;
    size_t id_off[STREAM_PENDING_FLUSH * 2];
    int n = 0;
    bool is_multi = st->nsubs > 1;

    while (st->npending > 0) {
        uint16_t count = st->npending;

        if (count > STREAM_PENDING_FLUSH)
            count = STREAM_PENDING_FLUSH;

        /* First the id lines, into one buffer that no longer moves once
         * the iovecs point into it. */
        for (uint16_t i = 0; i < count && is_multi; i++) {
            struct hub_event *ev = st->pending[i];
            struct stream_sub *sub;

            id_off[i] = ids.len;
            if (ev->seq == 0)
                continue;
            sub = sub_of_room(st, ev->room);
            if (sub != NULL)
                sub->sent_seq = ev->seq;
            buf_puts(&ids, "id: ");
            format_cursor(st, &ids);
            buf_puts(&ids, "\n");
        }
        if (buf_failed(&ids)) {
            mark_dead(st);
            break;
        }
        n = 0;
        for (uint16_t i = 0; i < count; i++) {
            struct hub_event *ev = st->pending[i];

            if (is_multi && ev->seq > 0) {
                size_t end = i + 1 < count ? id_off[i + 1] : ids.len;

                iov[n].iov_base = ids.data + id_off[i];
                iov[n++].iov_len = end - id_off[i];
                iov[n].iov_base = ev->encoded + ev->encoded_tail;
                iov[n++].iov_len = ev->encoded_len - ev->encoded_tail;
            } else {
                if (ev->seq > 0 && st->nsubs == 1)
                    st->subs[0].sent_seq = ev->seq;
                iov[n].iov_base = ev->encoded;
                iov[n++].iov_len = ev->encoded_len;
            }
        }
        send_content(loop, st, iov, n);
        loop->delivered += count;

        for (uint16_t i = 0; i < count; i++)
            hub_event_unref(st->pending[i]);
        memmove(st->pending, st->pending + count,
                (st->npending - count) * sizeof(*st->pending));
        st->npending -= count;
        ids.len = 0;
    }
    buf_free(&ids);
    st->beat_ms = loop->now_ms + beat_interval_ms(loop, st);
}

char *
stream_poll_body(struct hub_event *const *events, size_t n,
                 const struct cursor *cursor)
{
    struct buf b = BUF_INIT;
    char text[CURSOR_TEXT_SIZE];

    cursor_format(cursor, text, sizeof(text));
    buf_printf(&b, "{\"cursor\":\"%s\",\"messages\":[", text);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_puts(&b, ",");
        buf_append(&b, events[i]->envelope, events[i]->envelope_len);
    }
    buf_puts(&b, "]}");
    if (buf_failed(&b)) {
        buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* Answers a held long-poll with what it gathered and ends it. */
static void
poll_answer(struct stream_loop *loop, struct stream *st)
{
    struct cursor cursor;
    struct buf b = BUF_INIT;
    char *body;

    cursor_init(&cursor);
    for (size_t i = 0; i < st->npending; i++) {
        struct stream_sub *sub = sub_of_room(st, st->pending[i]->room);

        if (sub != NULL && st->pending[i]->seq > sub->sent_seq)
            sub->sent_seq = st->pending[i]->seq;
    }
    for (size_t i = 0; i < st->nsubs; i++) {
        if (st->subs[i].hub.room != NULL &&
            cursor_set(&cursor, hub_room_name(st->subs[i].hub.room),
                       st->subs[i].sent_seq) != 0)
            break;
    }
    body = stream_poll_body(st->pending, st->npending, &cursor);
    buf_printf(&b, "Status: 200 OK\r\nContent-Type: application/json\r\n"
               "Cache-Control: no-store\r\nX-Roomcast-Worker: %d\r\n%s\r\n"
               "%s\n", (int)getpid(),
               st->answer_headers ? st->answer_headers : "",
               body ? body : "");
    free(body);
    if (buf_failed(&b) || body == NULL) {
        mark_dead(st);
    } else {
        stream_write(loop, st, b.data, b.len);
        loop->delivered += st->npending;
        stream_end(loop, st);
    }
    buf_free(&b);
}

void
stream_flush(void *ctx)
{
    struct stream_loop *loop = ctx;

    while (dirty_streams != NULL) {
        struct stream *st = dirty_streams;

        dirty_streams = st->dirty_next;
        st->flags &= ~STREAM_IS_DIRTY;
        if (!(st->flags & STREAM_IS_DEAD) && st->npending > 0) {
            if (st->kind == STREAM_SSE)
                sse_write_pending(loop, st);
            else
                poll_answer(loop, st);
        }
        /* Answering may have put it back on the list: free it when it
         * comes round again, never while the list still points at it. */
        if ((st->flags & STREAM_IS_DEAD) && !(st->flags & STREAM_IS_DIRTY))
            stream_retire(loop, st);
    }
}

void
stream_tick(struct stream_loop *loop)
{
    static const char beat[] = ":\n\n";

    for (struct stream *st = all_streams; st != NULL; st = st->next) {
        if (st->flags & (STREAM_IS_DEAD | STREAM_IS_ENDING))
            continue;
        if (loop->now_ms >= st->deadline_ms) {
            if (st->kind == STREAM_POLL)
                poll_answer(loop, st);
            else
                stream_end(loop, st);
            continue;
        }
        if (st->kind == STREAM_SSE && loop->now_ms >= st->beat_ms) {
            stream_write(loop, st, beat, sizeof(beat) - 1);
            st->beat_ms = loop->now_ms + beat_interval_ms(loop, st);
        }
    }
    stream_flush(loop);
}

void
stream_each_token(struct stream_loop *loop,
                  void (*fn)(void *arg, const char *hash), void *arg)
{
    struct strmap *seen = strmap_new();

    (void)loop;
    if (seen == NULL)
        return;
    for (struct stream *st = all_streams; st != NULL; st = st->next) {
        if (st->who == NULL || st->who->hash[0] == '\0' ||
            (st->flags & (STREAM_IS_DEAD | STREAM_IS_ENDING)) ||
            strmap_get(seen, st->who->hash) != NULL)
            continue;
        if (strmap_put(seen, st->who->hash, st) == NULL)
            fn(arg, st->who->hash);
    }
    strmap_free(seen, NULL);
}

static bool
listens_to(struct stream *st, const char *room)
{
    return sub_of_room(st, room) != NULL;
}

int64_t
stream_end_matching(struct stream_loop *loop, const char *hash,
                    const char *user, const char *room)
{
    int64_t n = 0;

    for (struct stream *st = all_streams; st != NULL; st = st->next) {
        if (st->who == NULL ||
            (st->flags & (STREAM_IS_DEAD | STREAM_IS_ENDING)))
            continue;
        if ((hash != NULL && strcmp(st->who->hash, hash) != 0) ||
            (user != NULL && strcmp(st->who->user, user) != 0) ||
            (room != NULL && !listens_to(st, room)))
            continue;
        if (st->kind == STREAM_POLL)
            poll_answer(loop, st);
        else
            stream_end(loop, st);
        n++;
    }
    return n;
}

void
stream_close_all(struct stream_loop *loop)
{
    for (struct stream *st = all_streams; st != NULL; st = st->next) {
        if (!(st->flags & STREAM_IS_RAW))
            stream_end(loop, st);
        mark_dead(st);
    }
    stream_flush(loop);
}
