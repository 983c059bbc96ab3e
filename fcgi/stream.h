/*
 * stream.h - requests that wait: SSE streams and held long-polls.
 *
 * After its headers and backlog are known, a waiting request leaves
 * libfcgi and becomes a stream: its socket to the web server, its FastCGI
 * request id, one hub subscription per room, and output that could not
 * be written yet. Streams live in the event loop; they are written with
 * non-blocking writev, never block the loop, and are closed when the web
 * server hangs up, when their unsent output passes the configured bound
 * (the client resumes from its cursor), or when their time is up.
 *
 * Events that arrive in one batch are gathered per stream and written
 * with one writev at the end of the batch: the encoded bytes of an event
 * are shared by all streams, only the record header and, on multi-room
 * SSE streams, the id line are per stream.
 */
#ifndef ROOMCAST_STREAM_H
#define ROOMCAST_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "cursor.h"
#include "hub.h"
#include "store.h"

enum stream_kind { STREAM_SSE, STREAM_POLL };

struct stream;

/* The loop that streams live in. */
struct stream_loop {
    int epoll_fd;
    struct hub *hub;
    const struct config *cfg;
    int64_t now_ms;                 /* monotonic, refreshed by the loop */
    int64_t count;                  /* open streams */
    int64_t delivered;              /* events written, for the worker row */
    struct strmap *user_streams;    /* user -> open streams (intptr_t) */
    struct store *store;            /* presence rows of the streams */
    uint32_t next_stream_id;
};

void stream_loop_init(struct stream_loop *loop, int epoll_fd,
                      struct hub *hub, struct store *store,
                      const struct config *cfg);

/* Makes a stream for a detached request, held by who (NULL: anonymous;
 * the stream takes its own reference). It ends after lifetime_ms, or when
 * who's token expires if that is sooner. Returns NULL when out of memory,
 * after closing the request. */
struct stream *stream_open(struct stream_loop *loop, enum stream_kind kind,
                           int fd, unsigned request_id, bool is_raw,
                           size_t nrooms, int64_t lifetime_ms,
                           struct auth_identity *who);

/* Header lines (CORS) a held long-poll adds to its answer; copied. */
void stream_set_answer_headers(struct stream *st, const char *headers);

/* Makes the SSE stream of an authenticated user present in its rooms
 * (roomcast.presence), until it closes. rooms is an array literal. */
void stream_join_presence(struct stream_loop *loop, struct stream *st,
                          const char *rooms);

/* Refreshes the presence rows of every present stream in one statement. */
void stream_touch_presence(struct stream_loop *loop);

/* Calls fn once for each distinct token hash held by an open stream
 * (streams of JSON Web Tokens have none). */
void stream_each_token(struct stream_loop *loop,
                       void (*fn)(void *arg, const char *hash), void *arg);

/* Open streams of user in this process. */
int64_t stream_user_count(const struct stream_loop *loop, const char *user);

/* Ends every stream whose holder matches: the token with hash, or user
 * (any token), optionally only streams that listen to room. NULL fields
 * match anything. Returns how many were ended. */
int64_t stream_end_matching(struct stream_loop *loop, const char *hash,
                            const char *user, const char *room);

/* Subscribes the stream's room i at the seq the client has now. */
int stream_subscribe(struct stream_loop *loop, struct stream *st, size_t i,
                     const char *room, int64_t seq, int64_t room_last_seq);

/* Writes raw content (already encoded: headers, backlog, events). */
void stream_write(struct stream_loop *loop, struct stream *st,
                  const char *data, size_t len);

/* The epoll callback for the stream's socket. */
void stream_on_io(struct stream_loop *loop, struct stream *st,
                  uint32_t events);

/* The hub's delivery callback (ctx is the loop). */
void stream_deliver(void *ctx, struct hub_sub *sub, struct hub_event *ev);

/* Writes what the batch gathered and closes what must close (the hub's
 * batch callback; the loop also calls it after every round). */
void stream_flush(void *ctx);

/* Every tick (a quarter second): heartbeats, ends of streams and of
 * held polls. */
void stream_tick(struct stream_loop *loop);

/* Frees what the loop holds once every stream is gone (at exit). */
void stream_loop_free(struct stream_loop *loop);

/* Frees the streams closed since the last call. The loop calls it when
 * no event of the current epoll round is left to handle. */
void stream_reap(struct stream_loop *loop);

/* Ends every stream (shutdown). */
void stream_close_all(struct stream_loop *loop);

/* Long-poll answer body for the events given, and the cursor after them. */
char *stream_poll_body(struct hub_event *const *events, size_t n,
                       const struct cursor *cursor);

#endif
