/*
 * load.h - declarations shared by the files of roomcast-load, the load
 * tool that `make bench` (tests/bench.sh) runs against Roomcast and, for
 * comparison, against nginx with Nchan.
 *
 * The tool opens many subscribers (SSE or long-poll) over one or more
 * processes, publishes numbered messages at a fixed rate and counts, per
 * subscriber, what arrived, what is missing and what came twice, with the
 * latency from publish to delivery. It also samples the memory and CPU of
 * the server processes it is told about. It talks to 127.0.0.1 only and
 * ends by itself within its deadline.
 *
 * Not a general HTTP client: it understands exactly the responses of the
 * two servers it measures (HTTP/1.1, chunked or not, SSE, the two kinds of
 * long-poll). Not part of Roomcast itself; nothing in lib/ or fcgi/ uses it.
 *
 * Layout: http.c parses bytes (response heads, bodies, SSE, message
 * payloads) without I/O; probe.c reads /proc; sub.c runs one subscriber
 * process; pub.c publishes; main.c reads the options, forks, coordinates
 * and prints the report; selftest.c checks the parsers.
 */
#ifndef LOAD_H
#define LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Subscriber processes at most; 8,000 streams each covers 128,000. */
#define LOAD_MAX_PROCS 16
/* Latency histogram: 64 exact microseconds, then 32 steps per power of
 * two (about 3% wide) up to 2^40 us. */
#define LOAD_LAT_LINEAR 64
#define LOAD_LAT_STEPS 32
#define LOAD_LAT_BUCKETS (LOAD_LAT_LINEAR + 35 * LOAD_LAT_STEPS)
/* Longest error text kept for the report. */
#define LOAD_ERROR_MAX 200

enum load_server {
    LOAD_ROOMCAST,
    LOAD_NCHAN,
};

enum load_mode {
    LOAD_MODE_DELIVER,          /* subscribe, publish, count deliveries */
    LOAD_MODE_HOLD,             /* open idle streams until N or a failure */
    LOAD_MODE_PUBRATE,          /* closed-loop publishers, no subscribers */
};

enum load_transport {
    LOAD_SSE,
    LOAD_POLL,
};

struct load_opts {
    enum load_mode mode;
    enum load_server server;
    enum load_transport transport;
    int port;
    const char *prefix;         /* room k is named <prefix><k> */
    uint32_t subs;
    uint32_t rooms;
    uint32_t messages;
    double rate;                /* publishes per second */
    uint32_t pub_conns;         /* keep-alive publisher connections */
    double ramp;                /* new connections per second, all procs */
    uint32_t per_proc;          /* most subscribers one process holds */
    uint32_t procs;             /* subscriber processes (computed) */
    double seconds;             /* pubrate: length; hold: time held */
    double drain_seconds;       /* wait for deliveries after publishing */
    double deadline_seconds;    /* the whole run, hard */
    const char *web_pids;       /* comma-separated, with descendants */
    const char *work_pids;
    const char *db_pids;
    const char *probe_cmd;      /* run once all subscribers are up */
};

/* A growable byte buffer; len <= cap, p is NULL while cap is 0. */
struct load_buf {
    char *p;
    uint32_t len;
    uint32_t cap;
};

/* Returns 0, or -1 when the buffer would pass limit bytes or memory runs
 * out (the buffer is then unchanged). */
int load_buf_append(struct load_buf *b, const char *p, size_t n,
                    size_t limit);
void load_buf_free(struct load_buf *b);

/* What each subscriber process counts, in memory shared with the parent.
 * Written by its child only; the parent reads it once the child is done,
 * except the flags and connected, which it polls. */
struct load_stats {
    int ready;                  /* every subscriber is up or failed */
    int finished;               /* deliveries complete or drain over */
    uint64_t connected;         /* streams up (SSE) or first polls sent */
    uint64_t connect_failed;
    uint64_t disconnects;       /* established streams that broke */
    uint64_t reconnects;        /* long-poll connections opened again */
    uint64_t http_errors;       /* responses other than 200 */
    uint64_t polls;             /* long-poll responses */
    uint64_t expected;
    uint64_t received;          /* distinct messages delivered */
    uint64_t duplicated;
    uint64_t foreign;           /* a number that was never sent there */
    uint64_t unparsed;          /* events without our payload */
    int64_t first_us;           /* first and last delivery, realtime */
    int64_t last_us;
    uint64_t lat_count;
    double lat_sum_us;
    uint64_t lat_max_us;
    uint64_t lat[LOAD_LAT_BUCKETS];
    char error[LOAD_ERROR_MAX]; /* the first failure seen */
};

/* Control block shared by the parent and its subscriber processes. */
struct load_shared {
    int stop;                   /* parent: close everything, exit */
    int pub_done;               /* parent: no more messages will come */
    int hold_failed;            /* a child could not open one more */
    uint64_t held;              /* streams up over all children */
    char hold_error[LOAD_ERROR_MAX + 64];
    struct load_stats child[LOAD_MAX_PROCS];
};

/* --- http.c: parsing, no I/O ------------------------------------------ */

struct http_head {
    int status;
    bool is_chunked;
    bool has_length;
    bool keep_alive;
    uint64_t length;
    char last_modified[48];     /* for Nchan's long-poll, else empty */
    char etag[48];
};

enum http_body_kind {
    HTTP_BODY_NONE,             /* nothing (more) to read */
    HTTP_BODY_LENGTH,
    HTTP_BODY_CHUNKED,
    HTTP_BODY_CLOSE,            /* until the server closes */
};

struct http_body {
    uint8_t kind;
    uint8_t chunk_state;
    uint64_t left;              /* of the body, or of the current chunk */
};

/* Calls made by http_reader_feed. on_head and on_done return 0 to go on,
 * 1 to stop feeding without error (the connection was closed or replaced),
 * -1 to fail. */
struct http_reader_ops {
    int (*on_head)(void *arg, const struct http_head *h);
    void (*on_body)(void *arg, const char *p, size_t n);
    int (*on_done)(void *arg);
};

enum http_reader_state {
    HTTP_READ_HEAD,
    HTTP_READ_BODY,
};

/* One response after another on a connection. */
struct http_reader {
    uint8_t state;
    struct http_head head;
    struct http_body body;
    struct load_buf carry;      /* a head that spans reads */
};

/* Length of the head in p (through the empty line), or 0 if incomplete. */
size_t http_head_end(const char *p, size_t len);
/* Parses a complete head. Returns 0, or -1 if it is not HTTP/1.x. */
int http_parse_head(const char *p, size_t len, struct http_head *h);
void http_body_init(struct http_body *b, const struct http_head *h);
/* Decodes body bytes, handing payload to sink. Returns the bytes used
 * (less than len when the body ends inside p), or -1 if malformed. */
ssize_t http_body_feed(struct http_body *b, const char *p, size_t len,
                       void (*sink)(void *, const char *, size_t),
                       void *arg);
bool http_body_is_done(const struct http_body *b);
/* Feeds received bytes through heads and bodies. Returns 0, 1 when a
 * callback stopped it, -1 on malformed input or a callback's -1. */
int http_reader_feed(struct http_reader *r, const char *p, size_t len,
                     const struct http_reader_ops *ops, void *arg);
void http_reader_reset(struct http_reader *r);

/* An SSE stream, parsed incrementally: each event with a data line calls
 * fn with the message number and send time found in it (n = -1 when the
 * data carries neither). Lines may be split anywhere. */
typedef void sse_event_fn(void *arg, int64_t n, int64_t t_us);
struct sse {
    struct load_buf line;       /* a line that spans reads */
    bool has_data;
    int64_t n;
    int64_t t_us;
};
/* Returns 0, or -1 when a line passes 64 KB. */
int sse_feed(struct sse *s, const char *p, size_t len, sse_event_fn *fn,
             void *arg);

/* Finds "n":<int> and then "t":<int> in p. Returns the position just past
 * t's digits, or NULL when either is missing. */
const char *load_parse_nt(const char *p, size_t len, int64_t *n,
                          int64_t *t_us);
/* Copies the value of "cursor":"..." of a Roomcast poll answer into out.
 * Returns 0, or -1 when absent or longer than out_size - 1. */
int load_parse_cursor(const char *p, size_t len, char *out, size_t out_size);

/* --- probe.c: the server side, from /proc ------------------------------- */

struct probe_mem {
    uint64_t web_kb;            /* PSS (RSS where PSS is missing) */
    uint64_t work_kb;
    uint64_t db_kb;
    uint64_t tcp_mem_pages;     /* /proc/net/sockstat, whole machine */
    uint64_t sockets_used;
    uint64_t slab_kb;           /* /proc/meminfo Slab, whole machine */
};

struct probe_cpu {
    double web_s;
    double work_s;
    double db_s;
};

void probe_mem(const struct load_opts *o, struct probe_mem *m);
void probe_cpu(const struct load_opts *o, struct probe_cpu *c);
/* Runs cmd with /bin/sh and returns its first line of output (without the
 * newline) in out; "-" when there is no command or no output. */
void probe_run(const char *cmd, char *out, size_t out_size);

/* --- sub.c ------------------------------------------------------------- */

/* Runs subscriber process k (of o->procs), holding subscribers
 * first .. first + count - 1. Returns the exit status. */
int sub_main(const struct load_opts *o, struct load_shared *sh, int k,
             uint32_t first, uint32_t count);

/* --- pub.c ------------------------------------------------------------- */

struct pub_result {
    uint64_t sent;
    uint64_t acked;             /* 2xx answers */
    uint64_t failed;
    int64_t first_us;           /* first request written, realtime */
    int64_t end_us;             /* last answer */
    double lag_max_ms;          /* how late the pacing fell behind */
    uint64_t lat[LOAD_LAT_BUCKETS];   /* request written to answer head */
    uint64_t lat_count;
    double lat_sum_us;
    uint64_t lat_max_us;
    char error[LOAD_ERROR_MAX];
};

/* Publishes o->messages at o->rate, or (pubrate) as fast as o->pub_conns
 * connections go for o->seconds. Returns 0, or -1 if it could not start. */
int pub_run(const struct load_opts *o, double deadline_s,
            struct pub_result *r);

/* --- main.c helpers used everywhere ------------------------------------- */

int64_t load_now_us(void);     /* CLOCK_REALTIME: comparable across procs */
double load_mono_s(void);      /* CLOCK_MONOTONIC, for timeouts */
/* Formats "<prefix><room>" into out. */
void load_room_name(const struct load_opts *o, uint32_t room, char *out,
                    size_t out_size);
/* Opens a non-blocking TCP socket and starts connecting to 127.0.0.1.
 * Returns the descriptor, or -1 with errno set. */
int load_connect(int port);
/* Closes fd with a reset, so no TIME_WAIT entry outlives the run. */
void load_abort_fd(int fd);
unsigned load_lat_bucket(uint64_t us);
uint64_t load_lat_value(unsigned bucket);
void load_lat_add(uint64_t *hist, uint64_t us);
/* The latency under which a fraction q of the samples fall, in us. */
double load_lat_quantile(const uint64_t *hist, double q);
/* Keeps the first error only: later ones are usually its consequences. */
void load_set_error(char *dst, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* --- selftest.c --------------------------------------------------------- */

/* Checks the parsers, fed whole and one byte at a time; prints TAP.
 * Returns 0 when every case passes. */
int load_selftest(void);

#endif
