/*
 * messages.c - POST and GET /rooms/{room}/messages: publish and history.
 *
 * Publish checks what it can before the database (content type, body
 * size, the body's shape) and leaves the rest to roomcast.publish(), which
 * validates again: SQL publishers get the same rules as HTTP ones.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "buf.h"
#include "envelope.h"
#include "query.h"

#define HISTORY_DEFAULT_LIMIT 100

static bool
is_json_content_type(const char *ct)
{
    size_t n = strlen("application/json");

    if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
        return false;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

void
messages_publish(struct app *app, struct request *req, const char *room)
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
    } else if (store_publish(app->store, room, pub.type, pub.data, NULL,
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
    int rc;

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
