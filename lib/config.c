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
}

int
config_apply(struct config *cfg, const char *key, const char *value)
{
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
