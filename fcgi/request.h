/*
 * request.h - one HTTP request as the worker sees it, from FastCGI or CGI.
 *
 * Hides where a request came from: libfcgi (many per process) or plain
 * CGI (the environment and stdin, one per process). Immediate answers go
 * out through request_respond(); a request that waits is handed over to
 * the stream module with request_detach(), after which libfcgi keeps
 * nothing of it.
 */
#ifndef ROOMCAST_REQUEST_H
#define ROOMCAST_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include <fcgiapp.h>

#include "error.h"

struct request {
    FCGX_Request *fcgx;         /* NULL under plain CGI */
    const char *method;
    const char *path;           /* below the mount point: "/rooms/x/..." */
    const char *query;          /* "" when none */
    char *body;                 /* NUL-terminated; NULL when none */
    size_t body_len;
    bool is_body_too_large;     /* more than the limit was sent */
    bool is_answered;
    char cors[512];             /* CORS header lines for every answer */
};

/* Fills req from the parameters of an accepted FastCGI request (fcgx
 * != NULL) or from the CGI environment, and reads the body, at most
 * max_body bytes. Returns 0, or -1 when the body could not be read. */
int request_init(struct request *req, FCGX_Request *fcgx, size_t max_body);

/* A CGI/FastCGI parameter ("HTTP_LAST_EVENT_ID", "CONTENT_TYPE"), or
 * NULL when absent. */
const char *request_param(const struct request *req, const char *name);

/* Sends a complete response: status, extra header lines (each ending in
 * "\r\n", may be NULL), and a JSON body (NULL for none). */
void request_respond(struct request *req, int status,
                     const char *extra_headers, const char *json_body);

/* The contract's JSON error for err. */
void request_respond_error(struct request *req, const struct rc_error *err);
/* The same with extra header lines ("Allow: GET\r\n"). */
void request_respond_error_with(struct request *req,
                                const struct rc_error *err,
                                const char *extra_headers);

/* Ends libfcgi's part of the request and returns the socket and the
 * FastCGI request id for writing records directly; under CGI, returns
 * stdout and id 0 (is_raw set). The request must not be answered. */
int request_detach(struct request *req, int *fd, unsigned *request_id,
                   bool *is_raw);

/* Frees the body; finishes the FastCGI request if it was not detached. */
void request_done(struct request *req);

/* "Status: 200 OK" style reason phrase for a status code. */
const char *request_reason(int status);

#endif
