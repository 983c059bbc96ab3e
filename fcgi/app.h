/*
 * app.h - what every endpoint of roomcast-fcgi works with.
 *
 * One app per process: the settings, the store connection, the hub with
 * its LISTEN connection, and the loop that holds waiting requests.
 */
#ifndef ROOMCAST_APP_H
#define ROOMCAST_APP_H

#include <stdbool.h>

#include "access.h"
#include "config.h"
#include "hub.h"
#include "request.h"
#include "store.h"
#include "stream.h"

struct app {
    struct config cfg;
    struct store *store;
    struct hub *hub;
    struct stream_loop loop;
    struct access *access;
    bool is_cgi;
};

/* Routes one request to its endpoint and answers it, or parks it as a
 * stream. The request's parameters are gone once it is parked. */
void app_handle(struct app *app, struct request *req);

/* The endpoints, one file each group (messages.c, subscribe.c). */
void messages_publish(struct app *app, struct request *req,
                      const char *room);
void messages_history(struct app *app, struct request *req,
                      const char *room);
void subscribe_sse(struct app *app, struct request *req);
void tickets_issue(struct app *app, struct request *req);

/* "{room}" as a PostgreSQL array literal fits this. */
#define ROOM_LITERAL_SIZE 72

void presence_heartbeat(struct app *app, struct request *req,
                        const char *room);
void presence_get(struct app *app, struct request *req, const char *room);
void presence_delete(struct app *app, struct request *req,
                     const char *room);
void presence_typing(struct app *app, struct request *req, const char *room);
void subscribe_poll(struct app *app, struct request *req);

#endif
