/*
 * config.c - defaults, the environment, and rows of roomcast.settings.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct config_key {
    const char *key;
    size_t offset;
    int64_t min;
    int64_t max;
};

/* The integer settings this program reads, with the range that keeps a
 * typo in the table from taking a worker down. */
static const struct config_key config_keys[] = {
    {"max_message_bytes", offsetof(struct config, max_message_bytes),
     256, 16 * 1024 * 1024},
    {"max_body_bytes", offsetof(struct config, max_body_bytes),
     256, 32 * 1024 * 1024},
    {"sse_max_seconds", offsetof(struct config, sse_max_seconds),
     5, 86400},
    {"sse_heartbeat_seconds", offsetof(struct config, sse_heartbeat_seconds),
     1, 3600},
    {"poll_default_seconds", offsetof(struct config, poll_default_seconds),
     0, 3600},
    {"poll_max_seconds", offsetof(struct config, poll_max_seconds),
     1, 3600},
    {"poll_max_messages", offsetof(struct config, poll_max_messages),
     1, 100000},
    {"history_max_limit", offsetof(struct config, history_max_limit),
     1, 100000},
    {"out_queue_max_bytes", offsetof(struct config, out_queue_max_bytes),
     64 * 1024, 1024 * 1024 * 1024},
    {"max_rooms_per_stream", offsetof(struct config, max_rooms_per_stream),
     1, 64},
    {"max_streams_per_user", offsetof(struct config, max_streams_per_user),
     1, 1000000},
    {"publish_rate_per_second",
     offsetof(struct config, publish_rate_per_second), 1, 1000000},
    {"publish_burst", offsetof(struct config, publish_burst), 1, 1000000},
    {"presence_timeout_seconds",
     offsetof(struct config, presence_timeout_seconds), 2, 86400},
    {"token_cache_seconds", offsetof(struct config, token_cache_seconds),
     0, 3600},
};

struct config_text {
    const char *key;
    size_t offset;
    size_t size;
};

static const struct config_text config_texts[] = {
    {"jwt_secret", offsetof(struct config, jwt_secret),
     sizeof(((struct config *)0)->jwt_secret)},
    {"allowed_origins", offsetof(struct config, allowed_origins),
     sizeof(((struct config *)0)->allowed_origins)},
};

void
config_init(struct config *cfg)
{
    const char *db = getenv("ROOMCAST_DB");

    cfg->db_conninfo = db != NULL ? db : "";
    cfg->max_message_bytes = 65536;
    cfg->max_body_bytes = 131072;
    cfg->sse_max_seconds = 240;
    cfg->sse_heartbeat_seconds = 15;
    cfg->poll_default_seconds = 25;
    cfg->poll_max_seconds = 60;
    cfg->poll_max_messages = 500;
    cfg->history_max_limit = 1000;
    cfg->out_queue_max_bytes = 1024 * 1024;
    cfg->max_rooms_per_stream = 64;
    cfg->max_streams_per_user = 50;
    cfg->publish_rate_per_second = 1000;
    cfg->publish_burst = 2000;
    cfg->token_cache_seconds = 10;
    cfg->presence_timeout_seconds = 30;
    cfg->jwt_secret[0] = '\0';
    cfg->allowed_origins[0] = '\0';
}

static int
config_apply_text(struct config *cfg, const struct config_text *t,
                  const char *value)
{
    if (strlen(value) >= t->size)
        return -1;
    strcpy((char *)cfg + t->offset, value);
    return 0;
}

int
config_apply(struct config *cfg, const char *key, const char *value)
{
    for (size_t i = 0; i < sizeof(config_texts) / sizeof(config_texts[0]);
         i++) {
        if (strcmp(key, config_texts[i].key) == 0)
            return config_apply_text(cfg, &config_texts[i], value);
    }
    for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]);
         i++) {
        const struct config_key *k = &config_keys[i];
        char *end;
        long long v;

        if (strcmp(key, k->key) != 0)
            continue;
        errno = 0;
        v = strtoll(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || v < k->min ||
            v > k->max)
            return -1;
        *(int64_t *)((char *)cfg + k->offset) = v;
        return 0;
    }
    return 0;
}
