/*
 * routes.c - which endpoint answers which method and path.
 *
 * Paths are relative to the mount point (/rt in the shipped configs).
 * A known path with a method it does not take is 405 with an Allow
 * header; anything else is 404.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "room.h"

static void
respond_not_found(struct request *req)
{
    struct rc_error err = {0};

    rc_error_set(&err, 404, "not_found", "no endpoint at this path; see "
                 "the README for the list");
    request_respond_error(req, &err);
}

static void
respond_bad_method(struct request *req, const char *allow)
{
    struct rc_error err = {0};
    char header[64];

    rc_error_set(&err, 405, "method_not_allowed", "this path takes %s",
                 allow);
    snprintf(header, sizeof(header), "Allow: %s\r\n", allow);
    request_respond_error_with(req, &err, header);
}

static bool
method_is(const struct request *req, const char *method)
{
    return strcmp(req->method, method) == 0;
}

static void
health(struct app *app, struct request *req)
{
    struct rc_error err = {0};

    if (store_ping(app->store, &err) != 0) {
        request_respond_error(req, &err);
        return;
    }
    request_respond(req, 200, "Cache-Control: no-store\r\n",
                    "{\"status\":\"ok\"}");
}

/* "/rooms/{room}/messages": copies the room segment (unchecked) into
 * room and returns the rest ("/messages"), or NULL for another shape. */
static const char *
room_path(const char *path, char *room, size_t size)
{
    const char *start, *end;

    if (strncmp(path, "/rooms/", 7) != 0)
        return NULL;
    start = path + 7;
    end = strchr(start, '/');
    if (end == NULL || (size_t)(end - start) >= size)
        return NULL;
    memcpy(room, start, (size_t)(end - start));
    room[end - start] = '\0';
    return end;
}

static void
room_endpoint(struct app *app, struct request *req, const char *room,
              const char *rest)
{
    struct rc_error err = {0};
    char echo[ROOM_ECHO_SIZE];

    if (strcmp(rest, "/messages") != 0 && strcmp(rest, "/presence") != 0 &&
        strcmp(rest, "/typing") != 0) {
        respond_not_found(req);
        return;
    }
    if (!room_name_is_valid(room, strlen(room))) {
        rc_bad_request(&err, "room name '%s' is not 1-64 characters of "
                       "A-Z a-z 0-9 _ - .",
                       room_echo(echo, room, strlen(room)));
        request_respond_error(req, &err);
        return;
    }
    if (strcmp(rest, "/typing") == 0) {
        if (method_is(req, "POST"))
            presence_typing(app, req, room);
        else
            respond_bad_method(req, "POST");
    } else if (strcmp(rest, "/presence") == 0) {
        if (method_is(req, "POST"))
            presence_heartbeat(app, req, room);
        else if (method_is(req, "GET"))
            presence_get(app, req, room);
        else if (method_is(req, "DELETE"))
            presence_delete(app, req, room);
        else
            respond_bad_method(req, "GET, POST, DELETE");
    } else if (method_is(req, "POST")) {
        messages_publish(app, req, room);
    } else if (method_is(req, "GET") || method_is(req, "HEAD")) {
        messages_history(app, req, room);
    } else {
        respond_bad_method(req, "GET, POST");
    }
}

/* A CORS preflight: the allowed-origin headers, or none at all for an
 * origin that is not allowed (the browser then refuses by itself). */
static void
preflight(struct app *app, struct request *req)
{
    access_cors_headers(&app->cfg, req, true, req->cors, sizeof(req->cors));
    request_respond(req, 204, NULL, NULL);
}

void
app_handle(struct app *app, struct request *req)
{
    const char *path = req->path;
    char room[256];
    const char *rest;

    access_cors_headers(&app->cfg, req, false, req->cors, sizeof(req->cors));
    if (method_is(req, "OPTIONS")) {
        preflight(app, req);
    } else if (strcmp(path, "/health") == 0) {
        if (method_is(req, "GET") || method_is(req, "HEAD"))
            health(app, req);
        else
            respond_bad_method(req, "GET");
    } else if (strcmp(path, "/events") == 0) {
        if (method_is(req, "GET"))
            subscribe_sse(app, req);
        else
            respond_bad_method(req, "GET");
    } else if (strcmp(path, "/poll") == 0) {
        if (method_is(req, "GET"))
            subscribe_poll(app, req);
        else
            respond_bad_method(req, "GET");
    } else if (strcmp(path, "/tickets") == 0) {
        if (method_is(req, "POST"))
            tickets_issue(app, req);
        else
            respond_bad_method(req, "POST");
    } else if ((rest = room_path(path, room, sizeof(room))) != NULL) {
        room_endpoint(app, req, room, rest);
    } else {
        respond_not_found(req);
    }
}
