/*
 * messages.c - POST and GET /rooms/{room}/messages: publish and history.
 *
 * Publish checks what it can before the database (content type, body
 * size, the body's shape) and leaves the rest to roomcast.publish(), which
 * validates again: SQL publishers get the same rules as HTTP ones.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "buf.h"
#include "envelope.h"
#include "query.h"

#define HISTORY_DEFAULT_LIMIT 100

static void messages_publish_as(struct app *app, struct request *req,
                                const char *room,
                                const struct auth_identity *who);

static bool
is_json_content_type(const char *ct)
{
    size_t n = strlen("application/json");

    if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
        return false;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* Who publishes, whether they may, and whether their bucket has room.
 * Returns 0 with *who set (NULL: anonymous), or -1 with err, and then
 * *retry_after_s is set when the answer is 429. */
static int
publish_allowed(struct app *app, struct request *req, const char *room,
                struct auth_identity **who, int64_t *retry_after_s,
                struct rc_error *err)
{
    int64_t now = app->loop.now_ms;

    if (access_identify(app->access, req, now, who, err) != 0)
        return -1;
    if (access_may_write(app->access, *who, room, now, err) != 0 ||
        access_take_publish(app->access, *who,
                            request_param(req, "REMOTE_ADDR"), now,
                            retry_after_s, err) != 0) {
        auth_identity_unref(*who);
        *who = NULL;
        return -1;
    }
    return 0;
}

void
messages_publish(struct app *app, struct request *req, const char *room)
{
    struct rc_error err = {0};
    struct auth_identity *who = NULL;
    int64_t retry_after_s = 0;
    char header[64];

    if (publish_allowed(app, req, room, &who, &retry_after_s, &err) != 0) {
        snprintf(header, sizeof(header), "Retry-After: %" PRId64 "\r\n",
                 retry_after_s);
        request_respond_error_with(req, &err, retry_after_s ? header : NULL);
        return;
    }
    messages_publish_as(app, req, room, who);
    auth_identity_unref(who);
}

/* Publishes the request's message as who (NULL: anonymous), once the
 * rights and the rate are checked. */
static void
messages_publish_as(struct app *app, struct request *req, const char *room,
                    const struct auth_identity *who)
{
    struct rc_error err = {0};
    struct publish_req pub;
    struct store_ack ack;
    char *json;

    if (!is_json_content_type(request_param(req, "CONTENT_TYPE"))) {
        rc_error_set(&err, 415, "unsupported_media_type",
                     "send the message as Content-Type: application/json");
        request_respond_error(req, &err);
        return;
    }
    if (req->is_body_too_large) {
        rc_too_large(&err, "the request body is over max_body_bytes (%"
                     PRId64 ")", app->cfg.max_body_bytes);
        request_respond_error(req, &err);
        return;
    }
    if (envelope_parse_publish(req->body ? req->body : "", req->body_len,
                               &pub, &err) != 0) {
        request_respond_error(req, &err);
        return;
    }

    /* The envelope is the data plus at most a few hundred bytes of
     * fields; the exact limit is checked where the envelope is built. */
    if ((int64_t)strlen(pub.data) > app->cfg.max_message_bytes) {
        rc_too_large(&err, "the message is over max_message_bytes (%"
                     PRId64 ")", app->cfg.max_message_bytes);
    } else if (store_publish(app->store, room, pub.type, pub.data,
                             who ? who->user : NULL,
                             pub.id[0] ? pub.id : NULL, &ack, &err) == 0) {
        json = envelope_ack(pub.id, room, ack.seq, ack.ts,
                            ack.is_duplicate);
        if (json != NULL) {
            request_respond(req, ack.is_duplicate ? 200 : 201, NULL, json);
            free(json);
        } else {
            rc_internal(&err, "out of memory");
        }
    }
    if (!req->is_answered)
        request_respond_error(req, &err);
    publish_req_free(&pub);
}

static int
history_row(void *arg, int64_t seq, const char *envelope, size_t len)
{
    struct buf *b = arg;

    (void)seq;
    if (b->data[b->len - 1] != '[')
        buf_puts(b, ",");
    buf_append(b, envelope, len);
    return 0;
}

/* ?after=, ?before= (not both) and ?limit=; without either, the newest
 * messages. first_seq and last_seq in the answer are the room's oldest
 * kept and newest seq, so a client can tell whether more pages exist. */
void
messages_history(struct app *app, struct request *req, const char *room)
{
    struct rc_error err = {0};
    struct store_bounds bounds;
    struct buf b = BUF_INIT;
    int64_t after = -1, before = -1, limit = HISTORY_DEFAULT_LIMIT;
    int has_after, has_before;
    struct auth_identity *who = NULL;
    int rc;

    if (access_identify(app->access, req, app->loop.now_ms, &who, &err) != 0
        || access_may_read(app->access, who, room, app->loop.now_ms,
                           &err) != 0) {
        auth_identity_unref(who);
        request_respond_error(req, &err);
        return;
    }
    auth_identity_unref(who);

    has_after = query_get_int(req->query, "after", 0, INT64_MAX, &after);
    has_before = query_get_int(req->query, "before", 0, INT64_MAX, &before);
    if (has_after < 0 || has_before < 0 ||
        query_get_int(req->query, "limit", 1, INT64_MAX, &limit) < 0) {
        rc_bad_request(&err, "after, before and limit must be whole "
                       "numbers (limit at least 1)");
    } else if (has_after && has_before) {
        rc_bad_request(&err, "give after or before, not both");
    }
    if (err.status != 0) {
        request_respond_error(req, &err);
        return;
    }
    if (limit > app->cfg.history_max_limit)
        limit = app->cfg.history_max_limit;

    if (store_bounds(app->store, room, &bounds, &err) != 0) {
        request_respond_error(req, &err);
        return;
    }
    buf_printf(&b, "{\"room\":\"%s\",\"messages\":[", room);
    if (has_after)
        rc = store_fetch_after(app->store, room, after, limit, history_row,
                               &b, &err);
    else
        rc = store_fetch_before(app->store, room,
                                has_before ? before : INT64_MAX, limit,
                                history_row, &b, &err);
    buf_printf(&b, "],\"first_seq\":%" PRId64 ",\"last_seq\":%" PRId64 "}",
               bounds.first_kept, bounds.last_seq);
    if (rc != 0)
        request_respond_error(req, &err);
    else if (buf_failed(&b))
        request_respond_error(req, &(struct rc_error){500, "internal",
                                                      "out of memory"});
    else
        request_respond(req, 200, "Cache-Control: no-store\r\n", b.data);
    buf_free(&b);
}
