/*
 * store.c - synchronous libpq queries for the event loop (see store.h).
 *
 * Every query is a single short statement against an index, so running
 * it synchronously from the loop costs a local round trip. The connection
 * uses a short connect_timeout so that a database that is down makes a
 * request fail fast (503) instead of stalling every stream of the process.
 */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "log.h"
#include "strmap.h"

/* Seconds a connection attempt may take before the request gets 503. */
#define STORE_CONNECT_TIMEOUT "3"

struct store {
    PGconn *conn;
    char *conninfo;
    char *application;
    bool is_down;
    struct strmap *bad_settings;    /* key -> the bad value reported */
    char host[256];
};

struct store *
store_new(const char *conninfo, const char *application)
{
    struct store *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return NULL;
    st->conninfo = strdup(conninfo);
    st->application = strdup(application);
    st->bad_settings = strmap_new();
    if (st->conninfo == NULL || st->application == NULL ||
        st->bad_settings == NULL) {
        store_free(st);
        return NULL;
    }
    if (gethostname(st->host, sizeof(st->host) - 1) != 0)
        strcpy(st->host, "localhost");
    return st;
}

void
store_free(struct store *st)
{
    if (st == NULL)
        return;
    if (st->conn != NULL)
        PQfinish(st->conn);
    free(st->conninfo);
    free(st->application);
    strmap_free(st->bad_settings, free);
    free(st);
}

bool
store_is_down(const struct store *st)
{
    return st->is_down;
}

/* The SQLSTATE and the primary message only: a detail can quote rows. */
static const char *
pg_brief(const PGresult *res, char *buf, size_t size)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

    snprintf(buf, size, "%s %s", state ? state : "-", msg ? msg : "-");
    return buf;
}

static void
mark_down(struct store *st, const char *why)
{
    if (!st->is_down)
        log_warn("store", "database unreachable: %s", why);
    st->is_down = true;
}

/* Returns the open connection, connecting first when needed; NULL with a
 * 503 in err when the database cannot be reached. */
static PGconn *
store_conn(struct store *st, struct rc_error *err)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name",
                          NULL};
    const char *values[] = {st->conninfo, STORE_CONNECT_TIMEOUT,
                            st->application, NULL};

    if (st->conn != NULL && PQstatus(st->conn) == CONNECTION_OK)
        return st->conn;
    if (st->conn != NULL)
        PQfinish(st->conn);

    st->conn = PQconnectdbParams(keys, values, 1);
    if (st->conn == NULL || PQstatus(st->conn) != CONNECTION_OK) {
        char why[200];

        snprintf(why, sizeof(why), "%s",
                 st->conn ? PQerrorMessage(st->conn) : "out of memory");
        why[strcspn(why, "\n")] = '\0';
        mark_down(st, why);
        if (st->conn != NULL)
            PQfinish(st->conn);
        st->conn = NULL;
        rc_unavailable(err, "the database is unavailable; retry shortly");
        return NULL;
    }
    if (st->is_down)
        log_info("store", "database reachable again");
    st->is_down = false;
    return st->conn;
}

/* Turns a failed result into the contract's error and logs the cause. */
static int
store_fail(struct store *st, PGresult *res, const char *what,
           struct rc_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                            : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                          : NULL;
    char brief[300];

    if (PQstatus(st->conn) != CONNECTION_OK || state == NULL ||
        strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
        if (state != NULL)
            pg_brief(res, brief, sizeof(brief));
        else
            snprintf(brief, sizeof(brief), "%s", PQerrorMessage(st->conn));
        brief[strcspn(brief, "\n")] = '\0';
        mark_down(st, brief);
        return rc_unavailable(err, "the database is unavailable; retry "
                                   "shortly");
    }
    if (strcmp(state, "22023") == 0)
        return rc_bad_request(err, "%s", msg ? msg : "invalid value");
    if (strcmp(state, "54000") == 0)
        return rc_too_large(err, "%s", msg ? msg : "message too large");

    log_error("store", "%s failed: %s", what,
              pg_brief(res, brief, sizeof(brief)));
    return rc_internal(err, "the server could not %s; see its log", what);
}

/* Runs one statement with text parameters; returns the result or NULL
 * with err set. The caller clears a non-NULL result. */
static PGresult *
store_exec(struct store *st, bool is_read, const char *what, const char *sql,
           int nparams, const char *const *params, struct rc_error *err)
{
    bool was_open = st->conn != NULL && PQstatus(st->conn) == CONNECTION_OK;
    PGconn *conn = store_conn(st, err);
    PGresult *res;
    ExecStatusType status;

    if (conn == NULL)
        return NULL;

    res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    status = PQresultStatus(res);
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
        return res;

    /* A connection that was open can have been closed by a database
     * restart since its last use; only a read is tried once more on a
     * fresh one, since a write may have committed before the loss. */
    if (was_open && is_read && PQstatus(conn) != CONNECTION_OK) {
        PQclear(res);
        conn = store_conn(st, err);
        if (conn == NULL)
            return NULL;
        res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
        status = PQresultStatus(res);
        if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
            return res;
    }

    store_fail(st, res, what, err);
    PQclear(res);
    return NULL;
}

/* Runs a statement whose result does not matter beyond success. */
static int
store_call(struct store *st, const char *what, const char *sql, int n,
           const char *const *params, struct rc_error *err)
{
    PGresult *res = store_exec(st, false, what, sql, n, params, err);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

int
store_publish(struct store *st, const char *room, const char *type,
              const char *data_json, const char *from_user,
              const char *client_id, struct store_ack *ack,
              struct rc_error *err)
{
    const char *params[] = {room, type, data_json, from_user, client_id};
    PGresult *res;

    res = store_exec(st, false, "publish",
                     "SELECT seq, ts, duplicate FROM roomcast.publish("
                     "$1, $2, $3::jsonb, $4, $5)",
                     5, params, err);
    if (res == NULL)
        return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        log_error("store", "publish to %s returned no row", room);
        return rc_internal(err, "the server could not publish");
    }

    ack->seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(ack->ts, sizeof(ack->ts), "%s", PQgetvalue(res, 0, 1));
    ack->is_duplicate = PQgetvalue(res, 0, 2)[0] == 't';
    PQclear(res);
    return 0;
}

int
store_bounds(struct store *st, const char *room, struct store_bounds *out,
             struct rc_error *err)
{
    const char *params[] = {room};
    PGresult *res;

    /* The oldest kept seq comes from the primary key, so this is two
     * index probes, never a scan. */
    res = store_exec(st, true, "read the room",
                     "SELECT r.last_seq, coalesce((SELECT min(m.seq) FROM "
                     "roomcast.messages m WHERE m.room = r.name), "
                     "r.last_seq + 1) FROM roomcast.rooms r "
                     "WHERE r.name = $1",
                     1, params, err);
    if (res == NULL)
        return -1;

    out->last_seq = 0;
    out->first_kept = 1;
    if (PQntuples(res) == 1) {
        out->last_seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        out->first_kept = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    return 0;
}

static int
store_rows(PGresult *res, store_row_fn fn, void *arg)
{
    int n = PQntuples(res);

    for (int i = 0; i < n; i++) {
        int64_t seq = strtoll(PQgetvalue(res, i, 0), NULL, 10);

        if (fn(arg, seq, PQgetvalue(res, i, 1), (size_t)PQgetlength(res, i, 1))
            != 0)
            return -1;
    }
    return 0;
}

/* One page of a room's messages: sql takes (room, seq, limit). */
static int
store_fetch(struct store *st, const char *sql, const char *room, int64_t seq,
            int64_t limit, store_row_fn fn, void *arg, struct rc_error *err)
{
    char seq_text[24], limit_text[24];
    const char *params[] = {room, seq_text, limit_text};
    PGresult *res;
    int rc;

    snprintf(seq_text, sizeof(seq_text), "%" PRId64, seq);
    snprintf(limit_text, sizeof(limit_text), "%" PRId64, limit);
    res = store_exec(st, true, "read messages", sql, 3, params, err);
    if (res == NULL)
        return -1;
    rc = store_rows(res, fn, arg);
    PQclear(res);
    return rc;
}

int
store_fetch_after(struct store *st, const char *room, int64_t after_seq,
                  int64_t limit, store_row_fn fn, void *arg,
                  struct rc_error *err)
{
    return store_fetch(st, "SELECT m.seq, roomcast.envelope(m) FROM "
                       "roomcast.messages m WHERE m.room = $1 AND "
                       "m.seq > $2 ORDER BY m.seq LIMIT $3",
                       room, after_seq, limit, fn, arg, err);
}

int
store_fetch_before(struct store *st, const char *room, int64_t before_seq,
                   int64_t limit, store_row_fn fn, void *arg,
                   struct rc_error *err)
{
    /* The newest page below before_seq, handed out oldest first. */
    return store_fetch(st, "SELECT seq, env FROM (SELECT m.seq, "
                       "roomcast.envelope(m) AS env FROM roomcast.messages m "
                       "WHERE m.room = $1 AND m.seq < $2 ORDER BY m.seq DESC "
                       "LIMIT $3) page ORDER BY seq",
                       room, before_seq, limit, fn, arg, err);
}

/* Settings are read every few seconds; a bad value is reported once per
 * value, not on every read. */
static bool
is_new_bad_setting(struct store *st, const char *key, const char *value)
{
    char *seen = strmap_get(st->bad_settings, key);
    char *copy;

    if (seen != NULL && strcmp(seen, value) == 0)
        return false;
    copy = strdup(value);
    if (copy != NULL) {
        /* put hands back the value it replaced, or copy when it could
         * not store it: either way that one is ours to free. */
        free(strmap_put(st->bad_settings, key, copy));
    }
    return true;
}

static void
forget_bad_setting(struct store *st, const char *key)
{
    free(strmap_remove(st->bad_settings, key));
}

int
store_load_settings(struct store *st, struct config *cfg,
                    struct rc_error *err)
{
    PGresult *res = store_exec(st, true, "read settings",
                               "SELECT key, value FROM roomcast.settings",
                               0, NULL, err);

    if (res == NULL)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *key = PQgetvalue(res, i, 0);
        const char *value = PQgetvalue(res, i, 1);

        if (config_apply(cfg, key, value) == 0)
            forget_bad_setting(st, key);
        else if (is_new_bad_setting(st, key, value))
            log_warn("config", "setting %s has a value out of range; "
                     "keeping the previous one until it is fixed", key);
    }
    PQclear(res);
    return 0;
}

int
store_worker_heartbeat(struct store *st, const char *kind,
                       int64_t connections, int64_t delivered,
                       struct rc_error *err)
{
    char pid[16], conns[24], deliv[24];
    const char *params[] = {kind, st->host, pid, conns, deliv};

    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    snprintf(conns, sizeof(conns), "%" PRId64, connections);
    snprintf(deliv, sizeof(deliv), "%" PRId64, delivered);
    return store_call(st, "refresh the worker row",
                      "SELECT roomcast.worker_heartbeat($1, $2, $3::int, "
                      "$4::int, $5::bigint)",
                      5, params, err);
}

void
store_worker_gone(struct store *st, const char *kind)
{
    char pid[16];
    const char *params[] = {kind, st->host, pid};
    PGresult *res;

    if (st->conn == NULL || PQstatus(st->conn) != CONNECTION_OK)
        return;
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    res = store_exec(st, false, "remove the worker row",
                     "DELETE FROM roomcast.workers WHERE kind = $1 AND "
                     "host = $2 AND pid = $3::int",
                     3, params, NULL);
    if (res != NULL)
        PQclear(res);
}

int
store_ping(struct store *st, struct rc_error *err)
{
    PGresult *res = store_exec(st, true, "reach the database", "SELECT 1",
                               0, NULL, err);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

/* Runs a query with the hash as its one parameter that returns no row or
 * one row (user_id, can_read, can_write, token_hash, expires_at_epoch),
 * and makes the identity. 0 with *out, 1 for no row, -1 with err. */
static int
store_identity(struct store *st, bool is_read, const char *what,
               const char *sql, const char *hash, struct auth_identity **out,
               struct rc_error *err)
{
    const char *params[] = {hash};
    char read[4096], write[4096];
    PGresult *res = store_exec(st, is_read, what, sql, 1, params, err);
    int rc = 0;

    if (res == NULL)
        return -1;
    if (PQntuples(res) != 1) {
        rc = 1;
    } else if (auth_pg_array_to_list(PQgetvalue(res, 0, 1), read,
                                     sizeof(read)) != 0 ||
               auth_pg_array_to_list(PQgetvalue(res, 0, 2), write,
                                     sizeof(write)) != 0) {
        log_warn("store", "a token has too many room patterns to use");
        rc = rc_error_set(err, 401, "unauthorized", "the token has too "
                          "many room patterns");
    } else {
        *out = auth_identity_new(PQgetvalue(res, 0, 0), read, write,
                                 PQgetvalue(res, 0, 3),
                                 PQgetisnull(res, 0, 4) ? 0
                                 : strtoll(PQgetvalue(res, 0, 4), NULL, 10));
        if (*out == NULL)
            rc = rc_internal(err, "out of memory");
    }
    PQclear(res);
    return rc;
}

int
store_token_identity(struct store *st, const char *hash,
                     struct auth_identity **out, struct rc_error *err)
{
    return store_identity(st, true, "check a token",
                          "SELECT user_id, can_read, can_write, $1, "
                          "expires_at_epoch FROM roomcast.token_identity($1)",
                          hash, out, err);
}

int
store_redeem_ticket(struct store *st, const char *hash,
                    struct auth_identity **out, struct rc_error *err)
{
    /* Not a read: a retry after a lost connection could spend the
     * ticket twice over, so it is not retried. */
    return store_identity(st, false, "redeem a ticket",
                          "SELECT user_id, can_read, can_write, "
                          "coalesce(token_hash, ''), expires_at_epoch "
                          "FROM roomcast.redeem_ticket($1)",
                          hash, out, err);
}

int
store_issue_ticket(struct store *st, const struct auth_identity *id,
                   char *ticket, size_t size, struct rc_error *err)
{
    char read[4200], write[4200], expires[24];
    const char *params[] = {id->user, read, write,
                            id->hash[0] ? id->hash : NULL,
                            id->expires_at ? expires : NULL};
    PGresult *res;

    snprintf(read, sizeof(read), "{%s}", id->can_read);
    snprintf(write, sizeof(write), "{%s}", id->can_write);
    snprintf(expires, sizeof(expires), "%" PRId64, id->expires_at);
    res = store_exec(st, false, "issue a ticket",
                     "SELECT roomcast.issue_ticket($1, $2::text[], "
                     "$3::text[], $4, $5::bigint)",
                     5, params, err);
    if (res == NULL)
        return -1;
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        PQclear(res);
        return rc_internal(err, "the server could not issue a ticket");
    }
    snprintf(ticket, size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

int
store_room_access(struct store *st, const char *room, bool *public_read,
                  bool *public_write, struct rc_error *err)
{
    const char *params[] = {room};
    PGresult *res;

    res = store_exec(st, true, "read a room's access",
                     "SELECT public_read, public_write FROM "
                     "roomcast.rooms WHERE name = $1",
                     1, params, err);
    if (res == NULL)
        return -1;
    *public_read = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    *public_write = PQntuples(res) == 1 && PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    return 0;
}

const char *
store_host(const struct store *st)
{
    return st->host;
}

int
store_presence_join(struct store *st, const char *conn, const char *rooms,
                    const char *user, const char *state,
                    struct rc_error *err)
{
    const char *params[] = {conn, rooms, user, state};

    return store_call(st, "record presence",
                      "SELECT roomcast.presence_join($1, $2::text[], $3, "
                      "$4::jsonb)", 4, params, err);
}

int
store_presence_leave(struct store *st, const char *conn, const char *rooms,
                     struct rc_error *err)
{
    const char *params[] = {conn, rooms};

    return store_call(st, "end presence",
                      "SELECT roomcast.presence_leave($1, $2::text[])",
                      2, params, err);
}

int
store_presence_touch(struct store *st, const char *conns,
                     struct rc_error *err)
{
    const char *params[] = {conns};

    return store_call(st, "refresh presence",
                      "SELECT roomcast.presence_touch($1::text[])",
                      1, params, err);
}

int
store_presence_sweep(struct store *st, struct rc_error *err)
{
    return store_call(st, "sweep presence",
                      "SELECT roomcast.presence_sweep()", 0, NULL, err);
}

int
store_presence_list(struct store *st, const char *room, struct buf *out,
                    struct rc_error *err)
{
    const char *params[] = {room};
    PGresult *res;

    /* The database writes the JSON: states are jsonb already, and the
     * order and the epochs come out as the contract shows them. */
    res = store_exec(st, true, "list presence",
                     "SELECT coalesce(json_agg(json_build_object("
                     "'user', user_id, 'state', state, 'since', since, "
                     "'last_seen', last_seen) ORDER BY user_id), '[]')::text "
                     "FROM roomcast.presence_list($1)",
                     1, params, err);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1)
        buf_puts(out, PQgetvalue(res, 0, 0));
    else
        buf_puts(out, "[]");
    PQclear(res);
    return 0;
}

int
store_typing(struct store *st, const char *room, const char *user,
             struct rc_error *err)
{
    const char *params[] = {room, user};

    return store_call(st, "send typing",
                      "SELECT roomcast.typing($1, $2)", 2, params, err);
}
