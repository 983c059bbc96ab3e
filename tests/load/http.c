/*
 * http.c - the parsers of roomcast-load: HTTP/1.1 response heads, bodies
 * (fixed length, chunked, or up to the close), Server-Sent Events, and the
 * numbered payloads the tool publishes.
 *
 * Everything here takes bytes and returns results, with no I/O, so that
 * selftest.c can feed it one byte at a time. Every parser is incremental:
 * a read may end anywhere, inside a head, a chunk-size line or an SSE line.
 * Not a general HTTP library: it reads only what Roomcast (behind lighttpd)
 * and nginx with Nchan send, and it ignores every header it does not need.
 */
#include "load.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A head longer than this is not from either server under test. */
#define HEAD_MAX 16384
/* Nor is an SSE line longer than this: events here are a few hundred
 * bytes. */
#define SSE_LINE_MAX 65536

enum chunk_state {
    CH_SIZE_START,              /* expecting the first hex digit */
    CH_SIZE,                    /* in the hex digits */
    CH_EXT,                     /* chunk extension, up to the LF */
    CH_SIZE_LF,                 /* after the CR of the size line */
    CH_DATA,
    CH_DATA_CR,                 /* the CRLF after the data */
    CH_DATA_LF,
    CH_TRAILER_START,           /* after the last chunk: a line or the end */
    CH_TRAILER_LINE,
    CH_TRAILER_LF,              /* the CR of the final empty line seen */
};

int
load_buf_append(struct load_buf *b, const char *p, size_t n, size_t limit)
{
    size_t need = (size_t)b->len + n;
    size_t cap;
    char *q;

    if (need > limit) {
        return -1;
    }
    if (need > b->cap) {
        cap = b->cap ? b->cap : 128;
        while (cap < need) {
            cap *= 2;
        }
        q = realloc(b->p, cap);
        if (q == NULL) {
            return -1;
        }
        b->p = q;
        b->cap = (uint32_t)cap;
    }
    if (n > 0) {
        memcpy(b->p + b->len, p, n);
    }
    b->len = (uint32_t)need;
    return 0;
}

void
load_buf_free(struct load_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

/* --- heads ------------------------------------------------------------- */

size_t
http_head_end(const char *p, size_t len)
{
    size_t i;

    for (i = 0; i + 1 < len; i++) {
        if (p[i] != '\n') {
            continue;
        }
        if (p[i + 1] == '\n') {
            return i + 2;
        }
        if (p[i + 1] == '\r' && i + 2 < len && p[i + 2] == '\n') {
            return i + 3;
        }
    }
    return 0;
}

/* Copies a header value, trimmed, into out (cut to fit). */
static void
copy_value(const char *v, size_t n, char *out, size_t out_size)
{
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t')) {
        n--;
    }
    if (n >= out_size) {
        n = out_size - 1;
    }
    memcpy(out, v, n);
    out[n] = '\0';
}

static bool
value_has(const char *v, size_t n, const char *word)
{
    size_t w = strlen(word), i;

    for (i = 0; i + w <= n; i++) {
        if (strncasecmp(v + i, word, w) == 0) {
            return true;
        }
    }
    return false;
}

static int
parse_header(const char *line, size_t n, struct http_head *h)
{
    const char *colon = memchr(line, ':', n);
    size_t name_len, vlen;
    const char *v;
    char num[24];

    if (colon == NULL) {
        return -1;
    }
    name_len = (size_t)(colon - line);
    v = colon + 1;
    vlen = n - name_len - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vlen--;
    }
#define IS(name) (name_len == strlen(name) && \
                  strncasecmp(line, name, name_len) == 0)
    if (IS("Content-Length")) {
        copy_value(v, vlen, num, sizeof(num));
        if (num[0] < '0' || num[0] > '9') {
            return -1;
        }
        h->length = strtoull(num, NULL, 10);
        h->has_length = true;
    } else if (IS("Transfer-Encoding")) {
        h->is_chunked = value_has(v, vlen, "chunked");
    } else if (IS("Connection")) {
        if (value_has(v, vlen, "close")) {
            h->keep_alive = false;
        } else if (value_has(v, vlen, "keep-alive")) {
            h->keep_alive = true;
        }
    } else if (IS("Last-Modified")) {
        copy_value(v, vlen, h->last_modified, sizeof(h->last_modified));
    } else if (IS("Etag")) {
        copy_value(v, vlen, h->etag, sizeof(h->etag));
    }
#undef IS
    return 0;
}

int
http_parse_head(const char *p, size_t len, struct http_head *h)
{
    const char *end = p + len, *line = p, *nl;
    size_t n;

    memset(h, 0, sizeof(*h));
    if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' ||
        !isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) ||
        !isdigit((unsigned char)p[11])) {
        return -1;
    }
    h->keep_alive = p[7] == '1';
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');

    nl = memchr(line, '\n', (size_t)(end - line));
    while (nl != NULL) {
        line = nl + 1;
        nl = memchr(line, '\n', (size_t)(end - line));
        if (nl == NULL) {
            break;
        }
        n = (size_t)(nl - line);
        if (n > 0 && line[n - 1] == '\r') {
            n--;
        }
        if (n == 0) {
            break;
        }
        if (parse_header(line, n, h) < 0) {
            return -1;
        }
    }
    return 0;
}

/* --- bodies ------------------------------------------------------------ */

void
http_body_init(struct http_body *b, const struct http_head *h)
{
    memset(b, 0, sizeof(*b));
    if (h->status < 200 || h->status == 204 || h->status == 304) {
        b->kind = HTTP_BODY_NONE;
    } else if (h->is_chunked) {
        b->kind = HTTP_BODY_CHUNKED;
        b->chunk_state = CH_SIZE_START;
    } else if (h->has_length) {
        b->kind = h->length > 0 ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
        b->left = h->length;
    } else {
        b->kind = HTTP_BODY_CLOSE;
    }
}

bool
http_body_is_done(const struct http_body *b)
{
    return b->kind == HTTP_BODY_NONE;
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* The LF after a chunk's data; the next size line follows. */
static int
chunk_data_end(struct http_body *b, char c)
{
    if (c != '\n') {
        return -1;
    }
    b->chunk_state = CH_SIZE_START;
    return 0;
}

/* One byte of the framing around chunk data. Returns 0 or -1. */
static int
chunk_frame_byte(struct http_body *b, char c)
{
    int v;

    switch (b->chunk_state) {
    case CH_SIZE_START:
    case CH_SIZE:
        v = hex_value(c);
        if (v >= 0) {
            if (b->left > (UINT64_MAX >> 4)) {
                return -1;
            }
            b->left = (b->left << 4) | (uint64_t)v;
            b->chunk_state = CH_SIZE;
            return 0;
        }
        if (b->chunk_state == CH_SIZE_START) {
            return -1;
        }
        if (c == ';' || c == ' ' || c == '\t') {
            b->chunk_state = CH_EXT;
            return 0;
        }
        if (c == '\r') {
            b->chunk_state = CH_SIZE_LF;
            return 0;
        }
        if (c != '\n') {
            return -1;
        }
        break;
    case CH_EXT:
        if (c != '\n') {
            return 0;
        }
        break;
    case CH_SIZE_LF:
        if (c != '\n') {
            return -1;
        }
        break;
    case CH_DATA_CR:
        if (c == '\r') {
            b->chunk_state = CH_DATA_LF;
            return 0;
        }
        /* A bare LF ends the data as well. */
        return chunk_data_end(b, c);
    case CH_DATA_LF:
        return chunk_data_end(b, c);
    case CH_TRAILER_START:
        if (c == '\r') {
            b->chunk_state = CH_TRAILER_LF;
        } else if (c == '\n') {
            b->kind = HTTP_BODY_NONE;
        } else {
            b->chunk_state = CH_TRAILER_LINE;
        }
        return 0;
    case CH_TRAILER_LINE:
        if (c == '\n') {
            b->chunk_state = CH_TRAILER_START;
        }
        return 0;
    case CH_TRAILER_LF:
        if (c != '\n') {
            return -1;
        }
        b->kind = HTTP_BODY_NONE;
        return 0;
    default:
        return -1;
    }

    /* The size line is complete. */
    b->chunk_state = b->left == 0 ? CH_TRAILER_START : CH_DATA;
    return 0;
}

static ssize_t
chunked_feed(struct http_body *b, const char *p, size_t len,
             void (*sink)(void *, const char *, size_t), void *arg)
{
    size_t i = 0, take;

    while (i < len && b->kind == HTTP_BODY_CHUNKED) {
        if (b->chunk_state == CH_DATA) {
            take = len - i;
            if (take > b->left) {
                take = (size_t)b->left;
            }
            sink(arg, p + i, take);
            i += take;
            b->left -= take;
            if (b->left == 0) {
                b->chunk_state = CH_DATA_CR;
            }
            continue;
        }
        if (chunk_frame_byte(b, p[i]) < 0) {
            return -1;
        }
        i++;
    }
    return (ssize_t)i;
}

ssize_t
http_body_feed(struct http_body *b, const char *p, size_t len,
               void (*sink)(void *, const char *, size_t), void *arg)
{
    size_t take;

    switch (b->kind) {
    case HTTP_BODY_NONE:
        return 0;
    case HTTP_BODY_CLOSE:
        sink(arg, p, len);
        return (ssize_t)len;
    case HTTP_BODY_LENGTH:
        take = len < b->left ? len : (size_t)b->left;
        sink(arg, p, take);
        b->left -= take;
        if (b->left == 0) {
            b->kind = HTTP_BODY_NONE;
        }
        return (ssize_t)take;
    case HTTP_BODY_CHUNKED:
        return chunked_feed(b, p, len, sink, arg);
    default:
        return -1;
    }
}

/* --- responses, one after another -------------------------------------- */

void
http_reader_reset(struct http_reader *r)
{
    r->state = HTTP_READ_HEAD;
    r->carry.len = 0;
    memset(&r->body, 0, sizeof(r->body));
}

/* Consumes head bytes. Returns the bytes used and sets *is_complete once
 * r->head holds a parsed head; -1 when the head is malformed or too long. */
static ssize_t
reader_head(struct http_reader *r, const char *p, size_t len,
            bool *is_complete)
{
    size_t end, old = r->carry.len;

    *is_complete = false;
    if (old == 0) {
        /* The common case: the whole head came in one read. */
        end = http_head_end(p, len);
        if (end > 0) {
            if (http_parse_head(p, end, &r->head) < 0) {
                return -1;
            }
            *is_complete = true;
            return (ssize_t)end;
        }
    }
    if (load_buf_append(&r->carry, p, len, HEAD_MAX) < 0) {
        return -1;
    }
    end = http_head_end(r->carry.p, r->carry.len);
    if (end == 0) {
        return (ssize_t)len;
    }
    if (http_parse_head(r->carry.p, end, &r->head) < 0) {
        return -1;
    }
    r->carry.len = 0;
    *is_complete = true;
    return (ssize_t)(end - old);
}

static int
reader_body_done(struct http_reader *r, const struct http_reader_ops *ops,
                 void *arg)
{
    r->state = HTTP_READ_HEAD;
    return ops->on_done(arg);
}

int
http_reader_feed(struct http_reader *r, const char *p, size_t len,
                 const struct http_reader_ops *ops, void *arg)
{
    bool is_complete;
    ssize_t used;
    int rc;

    while (len > 0) {
        if (r->state == HTTP_READ_HEAD) {
            used = reader_head(r, p, len, &is_complete);
            if (used < 0) {
                return -1;
            }
            p += used;
            len -= (size_t)used;
            if (!is_complete) {
                continue;
            }
            rc = ops->on_head(arg, &r->head);
            if (rc != 0) {
                return rc;
            }
            http_body_init(&r->body, &r->head);
            r->state = HTTP_READ_BODY;
            if (http_body_is_done(&r->body)) {
                rc = reader_body_done(r, ops, arg);
                if (rc != 0) {
                    return rc;
                }
            }
            continue;
        }
        used = http_body_feed(&r->body, p, len, ops->on_body, arg);
        if (used < 0) {
            return -1;
        }
        p += used;
        len -= (size_t)used;
        if (http_body_is_done(&r->body)) {
            rc = reader_body_done(r, ops, arg);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* --- Server-Sent Events ------------------------------------------------ */

static void
sse_line(struct sse *s, const char *line, size_t n, sse_event_fn *fn,
         void *arg)
{
    if (n > 0 && line[n - 1] == '\r') {
        n--;
    }
    if (n == 0) {
        /* An empty line ends the event. */
        if (s->has_data) {
            fn(arg, s->n, s->t_us);
        }
        s->has_data = false;
        return;
    }
    if (n < 5 || memcmp(line, "data:", 5) != 0) {
        return;                 /* id:, event:, retry:, comments */
    }
    s->has_data = true;
    if (load_parse_nt(line + 5, n - 5, &s->n, &s->t_us) == NULL) {
        s->n = -1;
        s->t_us = 0;
    }
}

int
sse_feed(struct sse *s, const char *p, size_t len, sse_event_fn *fn,
         void *arg)
{
    const char *nl;
    size_t n;

    while (len > 0) {
        nl = memchr(p, '\n', len);
        if (nl == NULL) {
            return load_buf_append(&s->line, p, len, SSE_LINE_MAX);
        }
        n = (size_t)(nl - p);
        if (s->line.len > 0) {
            if (load_buf_append(&s->line, p, n, SSE_LINE_MAX) < 0) {
                return -1;
            }
            sse_line(s, s->line.p, s->line.len, fn, arg);
            s->line.len = 0;
        } else {
            sse_line(s, p, n, fn, arg);
        }
        p = nl + 1;
        len -= n + 1;
    }
    return 0;
}

/* --- payloads ---------------------------------------------------------- */

/* Parses the integer after key (as "\"n\":") in p. Returns the position
 * after its digits, or NULL. */
static const char *
parse_key_int(const char *p, size_t len, const char *key, int64_t *out)
{
    size_t klen = strlen(key);
    const char *k = memmem(p, len, key, klen), *end = p + len, *q;
    bool is_negative = false;
    int64_t v = 0;

    if (k == NULL) {
        return NULL;
    }
    q = k + klen;
    while (q < end && *q == ' ') {
        q++;
    }
    if (q < end && *q == '-') {
        is_negative = true;
        q++;
    }
    if (q >= end || !isdigit((unsigned char)*q)) {
        return NULL;
    }
    while (q < end && isdigit((unsigned char)*q)) {
        if (v > (INT64_MAX - 9) / 10) {
            return NULL;
        }
        v = v * 10 + (*q - '0');
        q++;
    }
    *out = is_negative ? -v : v;
    return q;
}

const char *
load_parse_nt(const char *p, size_t len, int64_t *n, int64_t *t_us)
{
    const char *q = parse_key_int(p, len, "\"n\":", n);

    if (q == NULL) {
        return NULL;
    }
    return parse_key_int(q, len - (size_t)(q - p), "\"t\":", t_us);
}

int
load_parse_cursor(const char *p, size_t len, char *out, size_t out_size)
{
    static const char key[] = "\"cursor\":\"";
    const char *k = memmem(p, len, key, sizeof(key) - 1), *v, *q;
    size_t n;

    if (k == NULL) {
        return -1;
    }
    v = k + sizeof(key) - 1;
    q = memchr(v, '"', len - (size_t)(v - p));
    if (q == NULL) {
        return -1;
    }
    n = (size_t)(q - v);
    if (n + 1 > out_size) {
        return -1;
    }
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}
