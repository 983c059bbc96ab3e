/*
 * subscribe.c - GET /events (Server-Sent Events) and GET /poll.
 *
 * Both start the same way: for each room, find where the client is (its
 * cursor, Last-Event-ID, or now), read what it missed, and then either
 * answer (a poll with messages) or park the request as a stream that the
 * hub feeds. A room this process already follows, with a client that is
 * up to date, needs no query at all: that is what lets thousands of
 * clients connect without a query each.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "buf.h"
#include "cursor.h"
#include "envelope.h"
#include "log.h"
#include "query.h"
#include "room.h"

/* Messages one SSE request sends as catch-up; a client further behind
 * gets this many, then the stream ends and the browser reconnects from
 * the new Last-Event-ID for the next page. */
#define SSE_CATCHUP_MAX 1000
#define BACKLOG_MAX 1000

/* Where each room of a request starts, and what it missed. */
struct start {
    struct room_list rooms;
    struct cursor cursor;           /* position before the catch-up */
    int64_t seq[ROOM_LIST_MAX];     /* position after the catch-up */
    struct hub_event **events;      /* catch-up, oldest first per room */
    size_t nevents;
    size_t cap;
    bool is_truncated;              /* more missed than one answer holds */
};

static void
start_free(struct start *s)
{
    for (size_t i = 0; i < s->nevents; i++)
        hub_event_unref(s->events[i]);
    free(s->events);
}

static int
start_add(struct start *s, struct hub_event *ev)
{
    if (ev == NULL)
        return -1;
    if (s->nevents == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct hub_event **p = realloc(s->events, cap * sizeof(*p));

        if (p == NULL) {
            hub_event_unref(ev);
            return -1;
        }
        s->events = p;
        s->cap = cap;
    }
    s->events[s->nevents++] = ev;
    return 0;
}

/* A system event (gap or reset) for the catch-up; not stored, no seq. */
static int
start_add_system(struct start *s, const char *room, char *json)
{
    int rc;

    if (json == NULL)
        return -1;
    rc = start_add(s, hub_event_new(room, "system", 0, json, strlen(json)));
    free(json);
    return rc;
}

static int
start_add_recent(void *arg, struct hub_event *ev)
{
    hub_event_ref(ev);
    return start_add(arg, ev);
}

struct fetch_ctx {
    struct start *start;
    const char *room;
    int64_t last;
};

static int
fetch_row(void *arg, int64_t seq, const char *envelope, size_t len)
{
    struct fetch_ctx *fc = arg;
    char type[ENVELOPE_TYPE_MAX + 1];

    hub_envelope_type(envelope, len, type, sizeof(type));
    fc->last = seq;
    return start_add(fc->start, hub_event_new(fc->room, type, seq, envelope,
                                              len));
}

/* Works out one room's start; -1 with err when the database fails. */
static int
start_room(struct app *app, struct start *s, size_t i, int64_t backlog,
           int64_t *budget, struct rc_error *err)
{
    const char *room = s->rooms.name[i];
    int64_t c = cursor_get(&s->cursor, room);
    struct hub_room *known = hub_room_find(app->hub, room);
    struct store_bounds b;
    struct fetch_ctx fc = {s, room, 0};

    /* A room this process follows: a client that is up to date, or only
     * a little behind, is served from memory without a query. */
    if (known != NULL && hub_is_live(app->hub) && backlog == 0 &&
        c <= hub_room_last_seq(known)) {
        int64_t from = c < 0 ? hub_room_last_seq(known) : c;
        size_t had = s->nevents;

        if (hub_room_recent(known, from, start_add_recent, s) == 0) {
            s->seq[i] = hub_room_last_seq(known);
            return cursor_set(&s->cursor, room, from) ? rc_internal(err,
                              "too many rooms") : 0;
        }
        while (s->nevents > had)
            hub_event_unref(s->events[--s->nevents]);
    }
    if (store_bounds(app->store, room, &b, err) != 0)
        return -1;

    if (c > b.last_seq) {
        if (start_add_system(s, room, envelope_reset(room)) != 0)
            return rc_internal(err, "out of memory");
        c = -1;
    }
    if (c < 0)
        c = backlog > 0 ? b.last_seq - backlog : b.last_seq;
    if (c < b.first_kept - 1) {
        /* Only a cursor the client gave can point at trimmed messages;
         * a backlog just starts at the oldest kept one. */
        if (cursor_get(&s->cursor, room) >= 0 &&
            start_add_system(s, room, envelope_gap(room, c + 1,
                                                   b.first_kept - 1)) != 0)
            return rc_internal(err, "out of memory");
        c = b.first_kept - 1;
    }
    if (cursor_set(&s->cursor, room, c) != 0)
        return rc_internal(err, "too many rooms");

    fc.last = c;
    if (c < b.last_seq && *budget > 0) {
        if (store_fetch_after(app->store, room, c, *budget, fetch_row, &fc,
                              err) != 0)
            return -1;
        *budget -= fc.last - c;
    }
    if (fc.last < b.last_seq)
        s->is_truncated = true;
    s->seq[i] = fc.last;
    return 0;
}

/* Parses ?rooms= and reads every room's start. given is the client's
 * cursor (rooms it does not name start from now). */
static int
start_all(struct app *app, struct start *s, const struct cursor *given,
          int64_t backlog, int64_t budget, struct rc_error *err)
{
    s->cursor = *given;
    for (size_t i = 0; i < s->rooms.n; i++) {
        if (start_room(app, s, i, backlog, &budget, err) != 0)
            return -1;
    }
    return 0;
}

static int
parse_rooms(struct request *req, struct room_list *rooms,
            struct rc_error *err)
{
    char text[ROOM_LIST_MAX * (ROOM_NAME_MAX + 1) + 1];
    int n = query_get(req->query, "rooms", text, sizeof(text));

    if (n == -1)
        return rc_bad_request(err, "name the rooms: ?rooms=general,random");
    if (n < 0)
        return rc_bad_request(err, "too many rooms in ?rooms=");
    return room_list_parse(text, rooms, err);
}

static int
parse_cursor_param(struct request *req, struct cursor *cursor,
                   struct rc_error *err)
{
    char text[CURSOR_TEXT_SIZE];
    int n = query_get(req->query, "cursor", text, sizeof(text));

    cursor_init(cursor);
    if (n == -1)
        return 0;
    if (n < 0)
        return rc_bad_request(err, "the cursor is too long");
    return cursor_parse(text, (size_t)n, cursor, err);
}

/* The rights and limits of a subscriber: token, rooms per stream, read
 * access to every room, streams per user. 0 with *who set (NULL:
 * anonymous) or -1 with err. */
static int
subscriber_allowed(struct app *app, struct request *req,
                   const struct room_list *rooms, struct auth_identity **who,
                   struct rc_error *err)
{
    int64_t now = app->loop.now_ms;

    if (access_identify(app->access, req, now, who, err) != 0)
        return -1;
    if ((int64_t)rooms->n > app->cfg.max_rooms_per_stream) {
        rc_bad_request(err, "at most %" PRId64 " rooms per request",
                       app->cfg.max_rooms_per_stream);
        goto refuse;
    }
    for (size_t i = 0; i < rooms->n; i++) {
        if (access_may_read(app->access, *who, rooms->name[i], now, err))
            goto refuse;
    }
    if (*who != NULL && stream_user_count(&app->loop, (*who)->user) >=
                        app->cfg.max_streams_per_user) {
        rc_error_set(err, 429, "rate_limited", "this user holds %" PRId64
                     " streams already; close one first",
                     app->cfg.max_streams_per_user);
        goto refuse;
    }
    return 0;

refuse:
    auth_identity_unref(*who);
    *who = NULL;
    return -1;
}

/* "{a,b}": the rooms as a PostgreSQL array literal. */
static void
rooms_literal(const struct room_list *rooms, struct buf *out)
{
    buf_puts(out, "{");
    for (size_t i = 0; i < rooms->n; i++)
        buf_printf(out, "%s%s", i ? "," : "", rooms->name[i]);
    buf_puts(out, "}");
}

/* Hands a parked stream to the hub, each room at the seq its catch-up
 * ended with. A room that cannot be joined (out of memory) stays silent;
 * the client's cursor still names it, so nothing is lost on reconnect. */
static void
subscribe_rooms(struct app *app, struct stream *st, const struct start *s)
{
    for (size_t i = 0; i < s->rooms.n; i++) {
        if (stream_subscribe(&app->loop, st, i, s->rooms.name[i], s->seq[i],
                             s->seq[i]) != 0)
            log_warn("subscribe", "out of memory joining room %s",
                     s->rooms.name[i]);
    }
}

/* ---- SSE ---- */

static const char sse_headers[] =
    "Status: 200 OK\r\n"
    "Content-Type: text/event-stream\r\n"
    "Cache-Control: no-cache, no-transform\r\n"
    "X-Accel-Buffering: no\r\n";

/* A stream that cannot start now but will on retry (database down):
 * 200, so the browser's EventSource keeps reconnecting. */
static void
sse_retry_later(struct request *req)
{
    struct buf b = BUF_INIT;

    buf_printf(&b, "%sX-Roomcast-Worker: %d\r\n%s\r\nretry: 2000\n\n",
               sse_headers, (int)getpid(), req->cors);
    if (!buf_failed(&b)) {
        FCGX_Request *f = req->fcgx;

        if (f != NULL)
            FCGX_PutStr(b.data, (int)b.len, f->out);
        else if (write(STDOUT_FILENO, b.data, b.len) < 0)
            log_debug("sse", "CGI client gone before the answer");
    }
    req->is_answered = true;
    buf_free(&b);
}

/* The headers, the retry line and the catch-up, as the stream's first
 * bytes. Each stored event's id is the whole cursor after it. */
static int
sse_initial(struct start *s, const char *cors, struct buf *b)
{
    struct cursor pos = s->cursor;
    char id[CURSOR_TEXT_SIZE];

    buf_printf(b, "%sX-Roomcast-Worker: %d\r\n%s\r\nretry: 2000\n\n",
               sse_headers, (int)getpid(), cors);
    for (size_t i = 0; i < s->nevents; i++) {
        struct hub_event *ev = s->events[i];

        if (ev->seq > 0) {
            if (cursor_set(&pos, ev->room, ev->seq) != 0)
                return -1;
            cursor_format(&pos, id, sizeof(id));
            buf_printf(b, "id: %s\n", id);
        }
        buf_printf(b, "event: %s\ndata: ", ev->type);
        buf_append(b, ev->envelope, ev->envelope_len);
        buf_puts(b, "\n\n");
    }
    return buf_failed(b) ? -1 : 0;
}

/* Last-Event-ID wins over ?cursor=. One that cannot be parsed resets
 * every room to now, each with a reset event. */
static int
sse_resume_point(struct request *req, struct start *s, struct cursor *given,
                 struct rc_error *err)
{
    const char *last_id = request_param(req, "HTTP_LAST_EVENT_ID");

    if (last_id == NULL || last_id[0] == '\0')
        return parse_cursor_param(req, given, err);

    cursor_init(given);
    if (cursor_parse(last_id, strlen(last_id), given, NULL) == 0)
        return 0;
    cursor_init(given);
    for (size_t i = 0; i < s->rooms.n; i++) {
        if (start_add_system(s, s->rooms.name[i],
                             envelope_reset(s->rooms.name[i])) != 0)
            return rc_internal(err, "out of memory");
    }
    return 0;
}

void
subscribe_sse(struct app *app, struct request *req)
{
    struct start *s = calloc(1, sizeof(*s));
    struct cursor *given = malloc(sizeof(*given));
    struct rc_error err = {0};
    struct buf initial = BUF_INIT;
    int64_t backlog = 0;
    struct auth_identity *who = NULL;
    struct stream *st;
    int fd;
    unsigned request_id;
    bool is_raw;

    if (s == NULL || given == NULL) {
        rc_internal(&err, "out of memory");
        goto fail;
    }
    if (parse_rooms(req, &s->rooms, &err) != 0)
        goto fail;
    if (subscriber_allowed(app, req, &s->rooms, &who, &err) != 0) {
        if (err.status >= 500) {
            sse_retry_later(req);
            goto out;
        }
        goto fail;
    }
    if (sse_resume_point(req, s, given, &err) != 0)
        goto fail;
    if (query_get_int(req->query, "backlog", 0, BACKLOG_MAX, &backlog) < 0) {
        rc_bad_request(&err, "backlog must be a whole number from 0 to %d",
                       BACKLOG_MAX);
        goto fail;
    }
    if (start_all(app, s, given, backlog, SSE_CATCHUP_MAX, &err) != 0) {
        if (err.status >= 500) {
            sse_retry_later(req);
            goto out;
        }
        goto fail;
    }
    if (sse_initial(s, req->cors, &initial) != 0) {
        rc_internal(&err, "out of memory");
        goto fail;
    }

    request_detach(req, &fd, &request_id, &is_raw);
    st = stream_open(&app->loop, STREAM_SSE, fd, request_id, is_raw,
                     s->rooms.n, s->is_truncated ? 0
                     : app->cfg.sse_max_seconds * 1000, who);
    if (st == NULL)
        goto out;
    stream_write(&app->loop, st, initial.data, initial.len);
    subscribe_rooms(app, st, s);
    if (who != NULL) {
        initial.len = 0;
        rooms_literal(&s->rooms, &initial);
        if (!buf_failed(&initial))
            stream_join_presence(&app->loop, st, initial.data);
    }
    goto out;

fail:
    request_respond_error(req, &err);
out:
    if (s != NULL)
        start_free(s);
    free(s);
    free(given);
    buf_free(&initial);
    auth_identity_unref(who);
}

/* ---- long-poll ---- */

/* Each poll of an authenticated user counts as a heartbeat in its rooms:
 * a long-poll client stays present by polling. */
static void
poll_presence(struct app *app, const struct auth_identity *who,
              const struct room_list *rooms)
{
    struct buf literal = BUF_INIT;
    char conn[AUTH_USER_MAX + 8];

    snprintf(conn, sizeof(conn), "poll:%s", who->user);
    rooms_literal(rooms, &literal);
    if (!buf_failed(&literal) &&
        store_presence_join(app->store, conn, literal.data, who->user, NULL,
                            NULL) != 0)
        log_debug("poll", "presence of a poll not recorded");
    buf_free(&literal);
}

static void
poll_answer_now(struct request *req, struct start *s)
{
    struct cursor end = s->cursor;
    char *body;

    for (size_t i = 0; i < s->rooms.n; i++) {
        if (cursor_set(&end, s->rooms.name[i], s->seq[i]) != 0)
            break;
    }
    body = stream_poll_body(s->events, s->nevents, &end);
    if (body == NULL) {
        request_respond_error(req, &(struct rc_error){500, "internal",
                                                      "out of memory"});
        return;
    }
    request_respond(req, 200, "Cache-Control: no-store\r\n", body);
    free(body);
}

void
subscribe_poll(struct app *app, struct request *req)
{
    struct start *s = calloc(1, sizeof(*s));
    struct cursor *given = malloc(sizeof(*given));
    struct rc_error err = {0};
    int64_t timeout = app->cfg.poll_default_seconds;
    struct auth_identity *who = NULL;
    struct stream *st;
    int fd;
    unsigned request_id;
    bool is_raw;

    if (s == NULL || given == NULL) {
        rc_internal(&err, "out of memory");
        goto fail;
    }
    if (parse_rooms(req, &s->rooms, &err) != 0 ||
        subscriber_allowed(app, req, &s->rooms, &who, &err) != 0 ||
        parse_cursor_param(req, given, &err) != 0)
        goto fail;
    if (query_get_int(req->query, "timeout", 0, INT32_MAX, &timeout) < 0) {
        rc_bad_request(&err, "timeout must be a whole number of seconds");
        goto fail;
    }
    if (timeout > app->cfg.poll_max_seconds)
        timeout = app->cfg.poll_max_seconds;
    if (who != NULL)
        poll_presence(app, who, &s->rooms);
    if (start_all(app, s, given, 0, app->cfg.poll_max_messages, &err) != 0)
        goto fail;

    if (s->nevents > 0 || timeout == 0) {
        poll_answer_now(req, s);
        goto out;
    }
    request_detach(req, &fd, &request_id, &is_raw);
    st = stream_open(&app->loop, STREAM_POLL, fd, request_id, is_raw,
                     s->rooms.n, timeout * 1000, who);
    if (st == NULL)
        goto out;
    stream_set_answer_headers(st, req->cors);
    subscribe_rooms(app, st, s);
    goto out;

fail:
    request_respond_error(req, &err);
out:
    if (s != NULL)
        start_free(s);
    free(s);
    free(given);
    auth_identity_unref(who);
}
