/*
 * request.c - FastCGI and CGI requests behind one interface (request.h).
 */
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "envelope.h"
#include "log.h"

const char *
request_param(const struct request *req, const char *name)
{
    if (req->fcgx != NULL)
        return FCGX_GetParam(name, req->fcgx->envp);
    return getenv(name);
}

/* The route path below the mount point. Web servers disagree on how they
 * split a prefix mapping: lighttpd and Apache's CGI give PATH_INFO, a
 * plain handler mapping or a proxy gives only the REQUEST_URI, so both
 * are read.
 * Anything up to and including the first "/rt" segment (the shipped
 * mount point) or SCRIPT_NAME is dropped. */
static const char *
route_path(const struct request *req, char *buf, size_t size)
{
    const char *path_info = request_param(req, "PATH_INFO");
    const char *uri = request_param(req, "REQUEST_URI");
    const char *script = request_param(req, "SCRIPT_NAME");
    size_t len;

    if (path_info != NULL && path_info[0] != '\0')
        return path_info;
    if (uri == NULL)
        return "/";

    /* Apache's mod_proxy_fcgi sets SCRIPT_NAME to the whole path; only a
     * SCRIPT_NAME that ends where a path segment does is a mount point. */
    len = strcspn(uri, "?");
    if (script != NULL && script[0] != '\0' &&
        strncmp(uri, script, strlen(script)) == 0 && len > strlen(script) &&
        uri[strlen(script)] == '/') {
        uri += strlen(script);
        len -= strlen(script);
    } else if (strncmp(uri, "/rt/", 4) == 0 || (len == 3 &&
               strncmp(uri, "/rt", 3) == 0)) {
        uri += 3;
        len -= 3;
    }
    if (len >= size)
        len = size - 1;
    memcpy(buf, uri, len);
    buf[len] = '\0';
    return len > 0 ? buf : "/";
}

static int
read_body(struct request *req, size_t max_body)
{
    const char *cl = request_param(req, "CONTENT_LENGTH");
    long long want = cl ? atoll(cl) : 0;
    size_t got = 0;

    if (want <= 0)
        return 0;
    if ((unsigned long long)want > max_body) {
        /* The web server already buffered it; nothing is read or kept. */
        req->is_body_too_large = true;
        return 0;
    }
    req->body = malloc((size_t)want + 1);
    if (req->body == NULL)
        return -1;
    while (got < (size_t)want) {
        ssize_t n;

        if (req->fcgx != NULL)
            n = FCGX_GetStr(req->body + got, (int)((size_t)want - got),
                            req->fcgx->in);
        else
            n = read(STDIN_FILENO, req->body + got, (size_t)want - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    req->body[got] = '\0';
    req->body_len = got;
    return 0;
}

int
request_init(struct request *req, FCGX_Request *fcgx, size_t max_body)
{
    static char path_buf[1024];
    const char *q;

    memset(req, 0, sizeof(*req));
    req->fcgx = fcgx;
    req->method = request_param(req, "REQUEST_METHOD");
    if (req->method == NULL)
        req->method = "GET";
    q = request_param(req, "QUERY_STRING");
    req->query = q != NULL ? q : "";
    req->path = route_path(req, path_buf, sizeof(path_buf));
    return read_body(req, max_body);
}

const char *
request_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

static void
write_all(struct request *req, const char *data, size_t len)
{
    if (req->fcgx != NULL) {
        FCGX_PutStr(data, (int)len, req->fcgx->out);
        return;
    }
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, data, len);

        if (n <= 0)
            return;         /* the client is gone; nothing to tell */
        data += n;
        len -= (size_t)n;
    }
}

void
request_respond(struct request *req, int status, const char *extra_headers,
                const char *json_body)
{
    struct buf out = BUF_INIT;

    buf_printf(&out, "Status: %d %s\r\nX-Roomcast-Worker: %d\r\n", status,
               request_reason(status), (int)getpid());
    if (json_body != NULL)
        buf_puts(&out, "Content-Type: application/json\r\n");
    if (extra_headers != NULL)
        buf_puts(&out, extra_headers);
    buf_puts(&out, req->cors);
    buf_puts(&out, "\r\n");
    if (json_body != NULL) {
        buf_puts(&out, json_body);
        buf_puts(&out, "\n");
    }
    if (!buf_failed(&out))
        write_all(req, out.data, out.len);
    buf_free(&out);
    req->is_answered = true;
}

void
request_respond_error(struct request *req, const struct rc_error *err)
{
    request_respond_error_with(req, err,
                               err->status == 503 ? "Retry-After: 2\r\n"
                                                  : NULL);
}

void
request_respond_error_with(struct request *req, const struct rc_error *err,
                           const char *extra)
{
    char *json = envelope_error(err);

    request_respond(req, err->status ? err->status : 500, extra,
                    json ? json : "{\"type\":\"error\",\"code\":\"internal\","
                                  "\"message\":\"out of memory\"}");
    free(json);
}

int
request_detach(struct request *req, int *fd, unsigned *request_id,
               bool *is_raw)
{
    req->is_answered = true;
    if (req->fcgx == NULL) {
        *fd = STDOUT_FILENO;
        *request_id = 0;
        *is_raw = true;
        return 0;
    }
    *fd = req->fcgx->ipcFd;
    *request_id = (unsigned)req->fcgx->requestId;
    *is_raw = false;

    /* Free libfcgi's streams and parameters without closing the socket,
     * then make libfcgi forget it, so its next accept starts clean. */
    FCGX_Free(req->fcgx, 0);
    req->fcgx->ipcFd = -1;
    req->fcgx = NULL;
    return 0;
}

void
request_done(struct request *req)
{
    free(req->body);
    req->body = NULL;
    if (req->fcgx != NULL) {
        /* Close the connection after each answer even when the web server
         * asked to keep it: the next request must come through accept in
         * the event loop, never as a blocking read on an idle socket. */
        req->fcgx->keepConnection = 0;
        FCGX_Finish_r(req->fcgx);
        req->fcgx = NULL;
    } else if (req->is_answered) {
        fflush(stdout);
    }
}
