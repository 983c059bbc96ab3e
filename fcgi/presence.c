/*
 * presence.c - /rooms/{room}/presence (POST heartbeat, GET list, DELETE
 * leave) and /rooms/{room}/typing.
 *
 * An HTTP client is one presence row per user and room ("http:<user>"),
 * kept alive by its heartbeats; open SSE streams keep their own rows
 * (stream.c). Typing goes out as an ephemeral event and is never stored.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "app.h"
#include "buf.h"

/* The identity of the request, which must have one and may read (or
 * write, for typing) the room. NULL with the answer sent otherwise. */
static struct auth_identity *
present_user(struct app *app, struct request *req, const char *room,
             bool is_write, bool is_required)
{
    struct rc_error err = {0};
    struct auth_identity *who = NULL;
    int64_t now = app->loop.now_ms;

    if (access_identify(app->access, req, now, &who, &err) != 0 ||
        (is_write ? access_may_write(app->access, who, room, now, &err)
                  : access_may_read(app->access, who, room, now, &err)) != 0)
        goto refuse;
    if (who == NULL && is_required) {
        rc_error_set(&err, 401, "unauthorized", "only a user with a token "
                     "can be present; send Authorization: Bearer <token>");
        goto refuse;
    }
    return who;

refuse:
    auth_identity_unref(who);
    if (err.status == 0)
        rc_internal(&err, "no identity");
    request_respond_error(req, &err);
    return NULL;
}

/* The optional body {"state": ...} as compact JSON text of the state, or
 * NULL for none. Returns -1 (answer sent) when the body is not valid. */
static int
heartbeat_state(struct request *req, char **state)
{
    struct rc_error err = {0};
    const char *ct = request_param(req, "CONTENT_TYPE");
    json_error_t jerr;
    json_t *doc, *value;

    *state = NULL;
    if (req->body == NULL || req->body_len == 0)
        return 0;
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
        rc_error_set(&err, 415, "unsupported_media_type",
                     "send the state as Content-Type: application/json");
    } else if (req->is_body_too_large) {
        rc_too_large(&err, "the request body is too large");
    } else if ((doc = json_loadb(req->body, req->body_len,
                                 JSON_REJECT_DUPLICATES, &jerr)) == NULL ||
               !json_is_object(doc)) {
        json_decref(doc);
        rc_bad_request(&err, "the body must be a JSON object such as "
                       "{\"state\":{...}}");
    } else {
        value = json_object_get(doc, "state");
        if (value != NULL)
            *state = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(doc);
        if (value != NULL && *state == NULL)
            rc_internal(&err, "out of memory");
    }
    if (err.status == 0)
        return 0;
    request_respond_error(req, &err);
    return -1;
}

static void
respond_list(struct app *app, struct request *req, const char *room)
{
    struct rc_error err = {0};
    struct buf body = BUF_INIT;

    buf_printf(&body, "{\"room\":\"%s\",\"online\":", room);
    if (store_presence_list(app->store, room, &body, &err) != 0) {
        request_respond_error(req, &err);
    } else {
        buf_puts(&body, "}");
        if (buf_failed(&body))
            request_respond_error(req, &(struct rc_error){500, "internal",
                                                          "out of memory"});
        else
            request_respond(req, 200, "Cache-Control: no-store\r\n",
                            body.data);
    }
    buf_free(&body);
}

void
presence_heartbeat(struct app *app, struct request *req, const char *room)
{
    struct rc_error err = {0};
    struct auth_identity *who = present_user(app, req, room, false, true);
    char conn[AUTH_USER_MAX + 8], rooms[ROOM_LITERAL_SIZE];
    char *state = NULL;

    if (who == NULL)
        return;
    if (heartbeat_state(req, &state) == 0) {
        snprintf(conn, sizeof(conn), "http:%s", who->user);
        snprintf(rooms, sizeof(rooms), "{%s}", room);
        if (store_presence_join(app->store, conn, rooms, who->user, state,
                                &err) != 0)
            request_respond_error(req, &err);
        else
            respond_list(app, req, room);
    }
    free(state);
    auth_identity_unref(who);
}

void
presence_get(struct app *app, struct request *req, const char *room)
{
    struct auth_identity *who = present_user(app, req, room, false, false);

    if (req->is_answered)
        return;
    respond_list(app, req, room);
    auth_identity_unref(who);
}

void
presence_delete(struct app *app, struct request *req, const char *room)
{
    struct rc_error err = {0};
    struct auth_identity *who = present_user(app, req, room, false, true);
    char conn[AUTH_USER_MAX + 8], rooms[ROOM_LITERAL_SIZE];

    if (who == NULL)
        return;
    snprintf(conn, sizeof(conn), "http:%s", who->user);
    snprintf(rooms, sizeof(rooms), "{%s}", room);
    if (store_presence_leave(app->store, conn, rooms, &err) != 0)
        request_respond_error(req, &err);
    else
        request_respond(req, 204, NULL, NULL);
    auth_identity_unref(who);
}

void
presence_typing(struct app *app, struct request *req, const char *room)
{
    struct rc_error err = {0};
    struct auth_identity *who = present_user(app, req, room, true, false);

    if (req->is_answered)
        return;
    if (store_typing(app->store, room, who ? who->user : NULL, &err) != 0)
        request_respond_error(req, &err);
    else
        request_respond(req, 204, NULL, NULL);
    auth_identity_unref(who);
}
