/*
 * tickets.c - POST /tickets: a single-use ticket for a URL.
 *
 * EventSource and WebSocket cannot send headers, and a URL ends up in
 * logs and Referer headers, so a page trades its token (sent in a header)
 * for a ticket that works once, within 60 s, with the token's rights.
 * Only the ticket's hash is stored; the ticket itself appears only in
 * this answer.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"

void
tickets_issue(struct app *app, struct request *req)
{
    struct rc_error err = {0};
    struct auth_identity *who = NULL;
    char ticket[128], body[256];

    if (access_identify(app->access, req, app->loop.now_ms, &who, &err)
        != 0) {
        request_respond_error(req, &err);
        return;
    }
    if (who == NULL) {
        rc_error_set(&err, 401, "unauthorized", "a ticket needs a token; "
                     "send Authorization: Bearer <token>");
        request_respond_error(req, &err);
        return;
    }
    if (store_issue_ticket(app->store, who, ticket, sizeof(ticket), &err)
        != 0) {
        request_respond_error(req, &err);
    } else {
        snprintf(body, sizeof(body), "{\"ticket\":\"%s\",\"expires_in\":60}",
                 ticket);
        request_respond(req, 200, "Cache-Control: no-store\r\n", body);
        memset(ticket, 0, sizeof(ticket));
        memset(body, 0, sizeof(body));
    }
    auth_identity_unref(who);
}
