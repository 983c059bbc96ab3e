/*
 * store.h - the queries a process runs against PostgreSQL.
 *
 * One store is one libpq connection used synchronously from the event
 * loop: publish, history, catch-up reads, settings and the worker row.
 * It reconnects by itself before a query when the connection was lost.
 * Failures fill an rc_error with the contract's status: 503 when the
 * database cannot be reached, 400 or 413 for input the database refused,
 * 500 otherwise; the technical cause goes to the log, never to the client.
 * Not for LISTEN: the hub keeps its own connection.
 */
#ifndef ROOMCAST_STORE_H
#define ROOMCAST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "buf.h"
#include "config.h"
#include "error.h"

struct store;

struct store_ack {
    int64_t seq;
    char ts[32];            /* epoch seconds as PostgreSQL printed them */
    bool is_duplicate;
};

/* A room's bounds: the newest seq and the oldest seq still kept
 * (last_seq + 1 when nothing is kept). A room never used has 0 and 1. */
struct store_bounds {
    int64_t last_seq;
    int64_t first_kept;
};

/* Called once per message row, oldest first. Return 0 to go on, -1 to
 * stop (the read then fails with the rc_error the callback set). */
typedef int (*store_row_fn)(void *arg, int64_t seq, const char *envelope,
                            size_t envelope_len);

/* Returns a store that connects on first use; NULL only when out of
 * memory. The conninfo string is copied. */
struct store *store_new(const char *conninfo, const char *application);
void store_free(struct store *st);

/* True after a query found the database unreachable and no later query
 * has reached it. */
bool store_is_down(const struct store *st);

__attribute__((warn_unused_result))
int store_publish(struct store *st, const char *room, const char *type,
                  const char *data_json, const char *from_user,
                  const char *client_id, struct store_ack *ack,
                  struct rc_error *err);

__attribute__((warn_unused_result))
int store_bounds(struct store *st, const char *room,
                 struct store_bounds *out, struct rc_error *err);

/* Messages of room with seq > after_seq, at most limit, oldest first. */
__attribute__((warn_unused_result))
int store_fetch_after(struct store *st, const char *room, int64_t after_seq,
                      int64_t limit, store_row_fn fn, void *arg,
                      struct rc_error *err);

/* The limit newest messages with seq < before_seq, oldest first. */
__attribute__((warn_unused_result))
int store_fetch_before(struct store *st, const char *room,
                       int64_t before_seq, int64_t limit, store_row_fn fn,
                       void *arg, struct rc_error *err);

/* Reads roomcast.settings into cfg (config_apply per row). */
__attribute__((warn_unused_result))
int store_load_settings(struct store *st, struct config *cfg,
                        struct rc_error *err);

/* Upserts this process's row in roomcast.workers. */
__attribute__((warn_unused_result))
int store_worker_heartbeat(struct store *st, const char *kind,
                           int64_t connections, int64_t delivered,
                           struct rc_error *err);

/* Removes this process's row, at a clean exit. */
void store_worker_gone(struct store *st, const char *kind);

/* The identity of a token by its SHA-256 (hex): 0 and *out set, 1 when
 * the token is unknown, revoked or expired, -1 with err on failure. */
__attribute__((warn_unused_result))
int store_token_identity(struct store *st, const char *hash,
                         struct auth_identity **out, struct rc_error *err);

/* Uses up a ticket by its SHA-256 (hex); same returns as above. */
__attribute__((warn_unused_result))
int store_redeem_ticket(struct store *st, const char *hash,
                        struct auth_identity **out, struct rc_error *err);

/* A new single-use ticket with id's rights, written NUL-terminated into
 * ticket (at least 80 bytes). */
__attribute__((warn_unused_result))
int store_issue_ticket(struct store *st, const struct auth_identity *id,
                       char *ticket, size_t size, struct rc_error *err);

/* A room's public_read and public_write (false for a room without a row). */
__attribute__((warn_unused_result))
int store_room_access(struct store *st, const char *room, bool *public_read,
                      bool *public_write, struct rc_error *err);

/* Presence (roomcast.presence_*). rooms and conns are PostgreSQL array
 * literals ("{a,b}"); state is JSON text or NULL. */
__attribute__((warn_unused_result))
int store_presence_join(struct store *st, const char *conn,
                        const char *rooms, const char *user,
                        const char *state, struct rc_error *err);
/* rooms NULL: every room of conn. */
__attribute__((warn_unused_result))
int store_presence_leave(struct store *st, const char *conn,
                         const char *rooms, struct rc_error *err);
/* One statement for every connection this process holds. */
__attribute__((warn_unused_result))
int store_presence_touch(struct store *st, const char *conns,
                         struct rc_error *err);
/* Removes expired rows, when no other process is doing it right now. */
__attribute__((warn_unused_result))
int store_presence_sweep(struct store *st, struct rc_error *err);
/* Appends the room's online list as a JSON array to out. */
__attribute__((warn_unused_result))
int store_presence_list(struct store *st, const char *room, struct buf *out,
                        struct rc_error *err);
__attribute__((warn_unused_result))
int store_typing(struct store *st, const char *room, const char *user,
                 struct rc_error *err);

/* The host name this process reports (roomcast.workers, presence). */
const char *store_host(const struct store *st);

/* SELECT 1: 0 when the database answers. */
__attribute__((warn_unused_result))
int store_ping(struct store *st, struct rc_error *err);

#endif
