/*
 * selftest.c - roomcast-load --self-test: checks the parsers of http.c and
 * the latency histogram before a bench trusts their counts.
 *
 * Each stream is fed whole and then one byte at a time, since a read may
 * end anywhere. Output is TAP, one line per case, with what was expected
 * and what came on failure. Run by tests/bench.sh before any scenario; not
 * a test of Roomcast itself.
 */
#include "load.h"

#include <stdio.h>
#include <string.h>

#define EVENTS_MAX 16

/* What the callbacks saw. */
struct seen {
    int heads;
    int dones;
    int statuses[EVENTS_MAX];
    int events;
    int64_t n[EVENTS_MAX];
    int64_t t[EVENTS_MAX];
    struct sse sse;
    bool is_sse;
    struct load_buf body;
};

static int g_case;
static int g_failed;

static void
check(bool ok, const char *name, const char *expected, const char *got)
{
    g_case++;
    printf("%s %d - %s\n", ok ? "ok" : "not ok", g_case, name);
    if (!ok) {
        printf("#   expected: %s\n#   got:      %s\n", expected, got);
        g_failed++;
    }
}

static void
on_event(void *arg, int64_t n, int64_t t)
{
    struct seen *s = arg;

    if (s->events < EVENTS_MAX) {
        s->n[s->events] = n;
        s->t[s->events] = t;
    }
    s->events++;
}

static int
on_head(void *arg, const struct http_head *h)
{
    struct seen *s = arg;

    if (s->heads < EVENTS_MAX) {
        s->statuses[s->heads] = h->status;
    }
    s->heads++;
    return 0;
}

static void
on_body(void *arg, const char *p, size_t n)
{
    struct seen *s = arg;

    if (s->is_sse) {
        sse_feed(&s->sse, p, n, on_event, s);
    } else {
        load_buf_append(&s->body, p, n, 1 << 20);
    }
}

static int
on_done(void *arg)
{
    struct seen *s = arg;

    s->dones++;
    return 0;
}

static const struct http_reader_ops ops = { on_head, on_body, on_done };

/* Feeds text to a fresh reader, whole or byte by byte. Returns the
 * reader's result. */
static int
feed(const char *text, bool is_bytewise, bool is_sse, struct seen *s)
{
    struct http_reader r;
    size_t len = strlen(text), i;
    int rc = 0;

    memset(&r, 0, sizeof(r));
    memset(s, 0, sizeof(*s));
    s->is_sse = is_sse;
    if (!is_bytewise) {
        rc = http_reader_feed(&r, text, len, &ops, s);
    }
    for (i = 0; is_bytewise && i < len && rc == 0; i++) {
        rc = http_reader_feed(&r, text + i, 1, &ops, s);
    }
    load_buf_free(&r.carry);
    load_buf_free(&s->sse.line);
    return rc;
}

static void
describe_events(const struct seen *s, char *out, size_t size)
{
    int i, used = snprintf(out, size, "%d events:", s->events);

    for (i = 0; i < s->events && i < EVENTS_MAX && used < (int)size; i++) {
        used += snprintf(out + used, size - (size_t)used, " %lld/%lld",
                         (long long)s->n[i], (long long)s->t[i]);
    }
}

/* A chunked Roomcast stream: heads, retry, two events (the second split
 * over two chunks), a heartbeat comment, and the end of the stream. */
static const char roomcast_sse[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    "Transfer-Encoding: chunked\r\n\r\n"
    "d\r\nretry: 2000\n\n\r\n"
    "5e\r\nid: r:1\nevent: text\ndata: {\"type\":\"text\",\"room\":\"r\","
    "\"seq\":1,\"data\":{\"n\":0,\"t\":111},\"ts\":1.5}\n\n\r\n"
    "20\r\nid: r:2\nevent: text\ndata: {\"type\r\n"
    "3e;ext=1\r\n\":\"text\",\"room\":\"r\",\"seq\":2,\"data\":{\"n\":1,"
    "\"t\":222},\"ts\":1.5}\n\n\r\n"
    "3\r\n:\n\n\r\n"
    "0\r\n\r\n";

/* Nchan: no length, no chunks; the body ends with the connection. */
static const char nchan_sse[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
    "Connection: keep-alive\r\n\r\n"
    ": hi\n\nid: 5:0\ndata: {\"type\":\"text\",\"data\":{\"n\":7,"
    "\"t\":9}}\n\nid: 5:1\ndata: hello\n\n";

static void
test_sse(void)
{
    struct seen s;
    char got[256];
    int bytewise, rc;

    for (bytewise = 0; bytewise < 2; bytewise++) {
        rc = feed(roomcast_sse, bytewise, true, &s);
        describe_events(&s, got, sizeof(got));
        check(rc == 0 && s.heads == 1 && s.dones == 1 && s.events == 2 &&
                  s.n[0] == 0 && s.t[0] == 111 && s.n[1] == 1 &&
                  s.t[1] == 222,
              bytewise ? "chunked SSE, one byte at a time"
                       : "chunked SSE, whole",
              "2 events: 0/111 1/222, one head, one end", got);

        rc = feed(nchan_sse, bytewise, true, &s);
        describe_events(&s, got, sizeof(got));
        check(rc == 0 && s.heads == 1 && s.dones == 0 && s.events == 2 &&
                  s.n[0] == 7 && s.t[0] == 9 && s.n[1] == -1,
              bytewise ? "close-delimited SSE, one byte at a time"
                       : "close-delimited SSE, whole",
              "2 events: 7/9 -1/0, no end yet", got);
    }
}

/* Two long-poll answers on one keep-alive connection. */
static const char two_polls[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    "Content-Length: 121\r\n\r\n"
    "{\"cursor\":\"room_1:3\",\"messages\":["
    "{\"seq\":2,\"data\":{\"n\":4,\"t\":40}},"
    "{\"seq\":3,\"data\":{\"n\":6,\"t\":60}}],\"x\":\"abcdefghijklmnop\"}"
    "HTTP/1.1 200 OK\r\nLast-Modified: Fri, 04 Dec 2026 07:18:04 GMT\r\n"
    "Etag: 12\r\nTransfer-Encoding: chunked\r\n\r\n"
    "4\r\nabcd\r\n0\r\nX-Trailer: 1\r\n\r\n";

static void
test_polls(void)
{
    struct seen s;
    char got[256], cursor[32];
    int64_t n = 0, t = 0;
    const char *q;
    int bytewise, rc;

    for (bytewise = 0; bytewise < 2; bytewise++) {
        rc = feed(two_polls, bytewise, false, &s);
        snprintf(got, sizeof(got), "rc %d, %d heads, %d ends, %u bytes",
                 rc, s.heads, s.dones, s.body.len);
        check(rc == 0 && s.heads == 2 && s.dones == 2 && s.body.len == 125,
              bytewise ? "two answers on one connection, bytewise"
                       : "two answers on one connection, whole",
              "rc 0, 2 heads, 2 ends, 125 bytes", got);
        load_buf_free(&s.body);
    }

    q = strstr(two_polls, "{\"cursor");
    rc = load_parse_cursor(q, 121, cursor, sizeof(cursor));
    check(rc == 0 && strcmp(cursor, "room_1:3") == 0, "poll cursor",
          "room_1:3", rc == 0 ? cursor : "(none)");
    q = load_parse_nt(q, 121, &n, &t);
    snprintf(got, sizeof(got), "%lld/%lld", (long long)n, (long long)t);
    check(q != NULL && n == 4 && t == 40, "first message of a poll",
          "4/40", got);
    q = load_parse_nt(q, strlen(q), &n, &t);
    snprintf(got, sizeof(got), "%lld/%lld", (long long)n, (long long)t);
    check(q != NULL && n == 6 && t == 60, "second message of a poll",
          "6/60", got);
}

static void
test_heads(void)
{
    static const char head[] =
        "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n"
        "Last-Modified: Fri, 04 Dec 2026 07:18:04 GMT\r\nEtag: 3\r\n\r\n";
    struct http_head h;
    struct seen s;
    char got[160];
    int rc;

    rc = http_parse_head(head, strlen(head), &h);
    snprintf(got, sizeof(got), "rc %d status %d keep-alive %d lm '%s' etag "
             "'%s'", rc, h.status, h.keep_alive, h.last_modified, h.etag);
    check(rc == 0 && h.status == 304 && !h.keep_alive &&
              strcmp(h.last_modified, "Fri, 04 Dec 2026 07:18:04 GMT") == 0 &&
              strcmp(h.etag, "3") == 0,
          "head with Connection: close, Last-Modified and Etag",
          "rc 0 status 304 keep-alive 0 lm 'Fri, 04 Dec 2026 07:18:04 GMT' "
          "etag '3'", got);

    check(http_head_end("HTTP/1.1 200 OK\r\n\r", 18) == 0,
          "an unfinished head is not complete", "0", "non-zero");

    rc = feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              "zz\r\n", false, false, &s);
    snprintf(got, sizeof(got), "%d", rc);
    check(rc < 0, "a bad chunk size is an error", "-1", got);
    load_buf_free(&s.body);

    rc = feed("SSH-2.0-x\r\n\r\n", false, false, &s);
    snprintf(got, sizeof(got), "%d", rc);
    check(rc < 0, "a reply that is not HTTP is an error", "-1", got);
}

static void
test_histogram(void)
{
    static const uint64_t values[] = { 0, 1, 63, 64, 100, 999, 1000, 4096,
                                       123456, 5000000, 60000000 };
    char got[128];
    size_t i;
    bool ok = true;
    uint64_t v, back;
    unsigned b, last = 0;

    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        v = values[i];
        b = load_lat_bucket(v);
        back = load_lat_value(b);
        if (b < last || (v >= 64 && (back < v - v / 30 || back > v + v / 30))
            || (v < 64 && back != v)) {
            ok = false;
            snprintf(got, sizeof(got), "%llu -> bucket %u -> %llu",
                     (unsigned long long)v, b, (unsigned long long)back);
            break;
        }
        last = b;
    }
    check(ok, "latency buckets are ordered and within 3.4%",
          "each value back within 3.4%", ok ? "" : got);
}

int
load_selftest(void)
{
    test_heads();
    test_sse();
    test_polls();
    test_histogram();
    printf("1..%d\n", g_case);
    return g_failed == 0 ? 0 : 1;
}
