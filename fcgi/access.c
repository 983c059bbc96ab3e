/*
 * access.c - credentials, rights, rate limits and CORS (see access.h).
 */
#include "access.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "query.h"
#include "strmap.h"

/* Room flags are trusted this long: a room made public or private takes
 * effect within it. */
#define ROOM_CACHE_MS 5000
#define CREDENTIAL_MAX 8192

struct cached_token {
    struct auth_identity *id;
    int64_t fetched_ms;
};

struct cached_room {
    bool public_read;
    bool public_write;
    int64_t fetched_ms;
};

struct bucket {
    double tokens;
    int64_t refilled_ms;
};

struct access {
    struct store *store;
    const struct config *cfg;
    struct strmap *tokens;      /* hash -> cached_token */
    struct strmap *rooms;       /* name -> cached_room */
    struct strmap *buckets;     /* user or "@addr" -> bucket */
};

static void
cached_token_free(void *v)
{
    struct cached_token *ct = v;

    auth_identity_unref(ct->id);
    free(ct);
}

struct access *
access_new(struct store *store, const struct config *cfg)
{
    struct access *ac = calloc(1, sizeof(*ac));

    if (ac == NULL)
        return NULL;
    ac->store = store;
    ac->cfg = cfg;
    ac->tokens = strmap_new();
    ac->rooms = strmap_new();
    ac->buckets = strmap_new();
    if (ac->tokens == NULL || ac->rooms == NULL || ac->buckets == NULL) {
        access_free(ac);
        return NULL;
    }
    return ac;
}

void
access_free(struct access *ac)
{
    if (ac == NULL)
        return;
    strmap_free(ac->tokens, cached_token_free);
    strmap_free(ac->rooms, free);
    strmap_free(ac->buckets, free);
    free(ac);
}

/* ---- credentials ---- */

/* The value of cookie name in a Cookie header, into out. */
static bool
cookie_value(const char *header, const char *name, char *out, size_t size)
{
    size_t name_len = strlen(name);
    const char *p = header;

    while (p != NULL && *p != '\0') {
        p += strspn(p, " ;");
        if (strncmp(p, name, name_len) == 0 && p[name_len] == '=') {
            const char *v = p + name_len + 1;
            size_t len = strcspn(v, ";");

            if (len == 0 || len >= size)
                return false;
            memcpy(out, v, len);
            out[len] = '\0';
            return true;
        }
        p = strchr(p, ';');
    }
    return false;
}

/* Writes the credential into out; returns 't' for a token, 'k' for a
 * ticket, 0 when the request carries none. */
static int
find_credential(struct request *req, char *out, size_t size)
{
    const char *auth = request_param(req, "HTTP_AUTHORIZATION");
    const char *cookie = request_param(req, "HTTP_COOKIE");

    if (query_get(req->query, "ticket", out, size) > 0)
        return 'k';
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *t = auth + 7 + strspn(auth + 7, " ");

        if (strlen(t) > 0 && strlen(t) < size) {
            strcpy(out, t);
            return 't';
        }
    }
    if (cookie != NULL && cookie_value(cookie, "roomcast_token", out, size))
        return 't';
    if (query_get(req->query, "token", out, size) > 0)
        return 't';
    return 0;
}

static int
unauthorized(struct rc_error *err, const char *why)
{
    return rc_error_set(err, 401, "unauthorized", "%s", why);
}

static int
identify_token(struct access *ac, const char *token, int64_t now_ms,
               struct auth_identity **id, struct rc_error *err)
{
    char hash[AUTH_HASH_HEX + 1];
    struct cached_token *ct;
    int rc;

    if (auth_is_jwt(token)) {
        *id = auth_jwt_verify(token, ac->cfg->jwt_secret,
                              (int64_t)time(NULL), err);
        return *id != NULL ? 0 : -1;
    }

    auth_sha256_hex(token, hash);
    ct = strmap_get(ac->tokens, hash);
    if (ct != NULL &&
        now_ms - ct->fetched_ms < ac->cfg->token_cache_seconds * 1000 &&
        (ct->id->expires_at == 0 || ct->id->expires_at > time(NULL))) {
        auth_identity_ref(ct->id);
        *id = ct->id;
        return 0;
    }

    rc = store_token_identity(ac->store, hash, id, err);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return unauthorized(err, "the token is unknown, expired or revoked");

    ct = malloc(sizeof(*ct));
    if (ct != NULL) {
        auth_identity_ref(*id);
        ct->id = *id;
        ct->fetched_ms = now_ms;
        ct = strmap_put(ac->tokens, hash, ct);
        if (ct != NULL)
            cached_token_free(ct);      /* replaced, or not stored */
    }
    return 0;
}

int
access_identify(struct access *ac, struct request *req, int64_t now_ms,
                struct auth_identity **id, struct rc_error *err)
{
    char *credential = malloc(CREDENTIAL_MAX);
    char hash[AUTH_HASH_HEX + 1];
    int kind, rc = 0;

    *id = NULL;
    if (credential == NULL)
        return rc_internal(err, "out of memory");
    kind = find_credential(req, credential, CREDENTIAL_MAX);
    if (kind == 't') {
        rc = identify_token(ac, credential, now_ms, id, err);
    } else if (kind == 'k') {
        auth_sha256_hex(credential, hash);
        rc = store_redeem_ticket(ac->store, hash, id, err);
        if (rc > 0)
            rc = unauthorized(err, "the ticket is unknown, used or "
                              "expired; ask for a new one");
    }
    /* The credential must not linger in freed memory either. */
    memset(credential, 0, CREDENTIAL_MAX);
    free(credential);
    return rc < 0 ? -1 : 0;
}

/* ---- rights ---- */

static int
room_flags(struct access *ac, const char *room, int64_t now_ms,
           struct cached_room *out, struct rc_error *err)
{
    struct cached_room *cr = strmap_get(ac->rooms, room);

    if (cr != NULL && now_ms - cr->fetched_ms < ROOM_CACHE_MS) {
        *out = *cr;
        return 0;
    }
    if (store_room_access(ac->store, room, &out->public_read,
                          &out->public_write, err) != 0)
        return -1;
    out->fetched_ms = now_ms;
    if (cr == NULL) {
        cr = malloc(sizeof(*cr));
        if (cr == NULL)
            return 0;               /* uncached, still answered */
        if (strmap_put(ac->rooms, room, cr) == cr) {
            free(cr);
            return 0;
        }
    }
    *cr = *out;
    return 0;
}

static int
may(struct access *ac, const struct auth_identity *id, const char *room,
    bool is_write, int64_t now_ms, struct rc_error *err)
{
    struct cached_room flags;

    if (id != NULL &&
        auth_patterns_allow(is_write ? id->can_write : id->can_read, room))
        return 0;
    if (room_flags(ac, room, now_ms, &flags, err) != 0)
        return -1;
    if (is_write ? flags.public_write : flags.public_read)
        return 0;
    if (id == NULL)
        return rc_error_set(err, 401, "unauthorized", "room '%s' needs a "
                            "token; send Authorization: Bearer <token>",
                            room);
    return rc_error_set(err, 403, "forbidden", "token may not %s room '%s'",
                        is_write ? "write to" : "read", room);
}

int
access_may_read(struct access *ac, const struct auth_identity *id,
                const char *room, int64_t now_ms, struct rc_error *err)
{
    return may(ac, id, room, false, now_ms, err);
}

int
access_may_write(struct access *ac, const struct auth_identity *id,
                 const char *room, int64_t now_ms, struct rc_error *err)
{
    return may(ac, id, room, true, now_ms, err);
}

/* ---- publish rate: a token bucket per user (or address) ---- */

int
access_take_publish(struct access *ac, const struct auth_identity *id,
                    const char *client_addr, int64_t now_ms,
                    int64_t *retry_after_s, struct rc_error *err)
{
    char key[AUTH_USER_MAX + 64];
    double rate = (double)ac->cfg->publish_rate_per_second;
    double burst = (double)ac->cfg->publish_burst;
    struct bucket *b;

    snprintf(key, sizeof(key), "%s%s", id ? "" : "@",
             id ? id->user : (client_addr ? client_addr : "-"));
    b = strmap_get(ac->buckets, key);
    if (b == NULL) {
        b = malloc(sizeof(*b));
        if (b == NULL || strmap_put(ac->buckets, key, b) == b) {
            free(b);
            return 0;               /* no memory to count: let it pass */
        }
        b->tokens = burst;
        b->refilled_ms = now_ms;
    }

    b->tokens += (double)(now_ms - b->refilled_ms) * rate / 1000.0;
    if (b->tokens > burst)
        b->tokens = burst;
    b->refilled_ms = now_ms;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    *retry_after_s = (int64_t)((1.0 - b->tokens) / rate) + 1;
    return rc_error_set(err, 429, "rate_limited", "too many messages; at "
                        "most %" PRId64 " per second, retry after %" PRId64
                        " s", ac->cfg->publish_rate_per_second,
                        *retry_after_s);
}

/* ---- revocation and upkeep ---- */

void
access_forget_token(struct access *ac, const char *hash)
{
    struct cached_token *ct = strmap_remove(ac->tokens, hash);

    if (ct != NULL)
        cached_token_free(ct);
}

static int
forget_if_user(void *arg, const char *key, void *value)
{
    struct cached_token *ct = value;

    (void)key;
    if (strcmp(ct->id->user, arg) != 0)
        return 0;
    cached_token_free(ct);
    return 1;
}

void
access_forget_user(struct access *ac, const char *user)
{
    strmap_sweep(ac->tokens, forget_if_user, (void *)user);
}

static int
forget_any(void *arg, const char *key, void *value)
{
    (void)arg;
    (void)key;
    cached_token_free(value);
    return 1;
}

void
access_forget_all(struct access *ac)
{
    strmap_sweep(ac->tokens, forget_any, NULL);
}

struct sweep_ctx {
    struct access *ac;
    int64_t now_ms;
};

static int
sweep_token(void *arg, const char *key, void *value)
{
    struct sweep_ctx *sc = arg;
    struct cached_token *ct = value;

    (void)key;
    if (sc->now_ms - ct->fetched_ms < sc->ac->cfg->token_cache_seconds *
        1000)
        return 0;
    cached_token_free(ct);
    return 1;
}

static int
sweep_room(void *arg, const char *key, void *value)
{
    struct sweep_ctx *sc = arg;
    struct cached_room *cr = value;

    (void)key;
    if (sc->now_ms - cr->fetched_ms < ROOM_CACHE_MS)
        return 0;
    free(cr);
    return 1;
}

/* A bucket that has refilled completely holds no information. */
static int
sweep_bucket(void *arg, const char *key, void *value)
{
    struct sweep_ctx *sc = arg;
    struct bucket *b = value;
    double full_ms = (double)sc->ac->cfg->publish_burst * 1000.0 /
                     (double)sc->ac->cfg->publish_rate_per_second;

    (void)key;
    if ((double)(sc->now_ms - b->refilled_ms) < full_ms)
        return 0;
    free(b);
    return 1;
}

void
access_sweep(struct access *ac, int64_t now_ms)
{
    struct sweep_ctx sc = {ac, now_ms};

    strmap_sweep(ac->tokens, sweep_token, &sc);
    strmap_sweep(ac->rooms, sweep_room, &sc);
    strmap_sweep(ac->buckets, sweep_bucket, &sc);
}

/* ---- CORS ---- */

static bool
origin_allowed(const char *allowed, const char *origin)
{
    size_t len = strlen(origin);
    const char *p = allowed;

    if (strcmp(allowed, "*") == 0)
        return true;
    while (p != NULL && *p != '\0') {
        const char *end;
        size_t n;

        p += strspn(p, " ,");
        end = strchr(p, ',');
        n = end ? (size_t)(end - p) : strlen(p);
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n == len && n > 0 && strncmp(p, origin, n) == 0)
            return true;
        p = end;
    }
    return false;
}

void
access_cors_headers(const struct config *cfg, struct request *req,
                    bool is_preflight, char *out, size_t size)
{
    const char *origin = request_param(req, "HTTP_ORIGIN");

    out[0] = '\0';
    if (origin == NULL || origin[0] == '\0' || strlen(origin) > 200 ||
        strpbrk(origin, "\r\n") != NULL ||
        !origin_allowed(cfg->allowed_origins, origin))
        return;
    snprintf(out, size,
             "Access-Control-Allow-Origin: %s\r\n"
             "Access-Control-Allow-Credentials: true\r\n"
             "Vary: Origin\r\n%s", origin,
             is_preflight
             ? "Access-Control-Allow-Methods: GET, POST, DELETE, OPTIONS\r\n"
               "Access-Control-Allow-Headers: Authorization, Content-Type, "
               "Last-Event-ID\r\n"
               "Access-Control-Max-Age: 600\r\n"
             : "");
}
