/*
 * config.h - the settings a process runs with.
 *
 * Two sources: the environment, for what must be known before the database
 * can be reached (ROOMCAST_DB), and the table roomcast.settings for
 * everything else. The table is read again every few seconds, so a change
 * takes effect without a restart. Values that cannot be parsed keep the
 * previous value and are logged once per change.
 */
#ifndef ROOMCAST_CONFIG_H
#define ROOMCAST_CONFIG_H

#include <stdint.h>

struct config {
    const char *db_conninfo;        /* ROOMCAST_DB; "" = libpq defaults */

    int64_t max_message_bytes;      /* whole envelope */
    int64_t max_body_bytes;         /* HTTP request body */
    int64_t sse_max_seconds;        /* a stream ends after this long */
    int64_t sse_heartbeat_seconds;  /* ":" comment at least this often */
    int64_t poll_default_seconds;
    int64_t poll_max_seconds;
    int64_t poll_max_messages;      /* per long-poll response */
    int64_t history_max_limit;      /* per history page */
    int64_t out_queue_max_bytes;    /* unsent output per stream */
    int64_t max_rooms_per_stream;
    int64_t max_streams_per_user;   /* per process */
    int64_t publish_rate_per_second;    /* per user, per process */
    int64_t publish_burst;
    int64_t presence_timeout_seconds;
    int64_t token_cache_seconds;    /* a looked-up token is trusted this
                                     * long; revocation still acts at once */
    char jwt_secret[256];           /* HS256 key; "" refuses every JWT */
    char allowed_origins[1024];     /* CORS: "a,b", "*", or "" for none */
};

/* Fills cfg with the built-in defaults and the environment. */
void config_init(struct config *cfg);

/* Applies one (key, value) row of roomcast.settings. Unknown keys are
 * ignored: they belong to other programs or newer versions. Returns 0, or
 * -1 when the value is not valid for the key (cfg keeps the old value). */
int config_apply(struct config *cfg, const char *key, const char *value);

#endif
