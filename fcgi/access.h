/*
 * access.h - who may do what: tokens, tickets, public rooms, rate limits
 * and CORS, for every endpoint of roomcast-fcgi.
 *
 * Tokens are checked once per request (or per stream), with a short
 * per-process cache; a revocation notification empties the cache entry
 * at once, so the cache never outlives a revocation that reached this
 * process. Room flags (public_read, public_write) are cached for a few
 * seconds too. Nothing here logs a token or a ticket.
 */
#ifndef ROOMCAST_ACCESS_H
#define ROOMCAST_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "error.h"
#include "request.h"
#include "store.h"

struct access;

struct access *access_new(struct store *store, const struct config *cfg);
void access_free(struct access *ac);

/* Finds the request's credentials (?ticket=, Authorization: Bearer, the
 * roomcast_token cookie, ?token=, in that order) and checks them. 0 with
 * *id set (a new reference) or NULL when none was given; -1 with 401 (or
 * 503) in err when one was given and is not valid. */
int access_identify(struct access *ac, struct request *req, int64_t now_ms,
                    struct auth_identity **id, struct rc_error *err);

/* 0 when id (NULL: anonymous) may read / write room; else -1 with 401
 * (anonymous) or 403 in err, or 503 when the database is needed and
 * down. */
int access_may_read(struct access *ac, const struct auth_identity *id,
                    const char *room, int64_t now_ms, struct rc_error *err);
int access_may_write(struct access *ac, const struct auth_identity *id,
                     const char *room, int64_t now_ms, struct rc_error *err);

/* Takes one publish from the bucket of id (or of the client address when
 * anonymous). 0, or -1 with 429 in err and *retry_after_s set. */
int access_take_publish(struct access *ac, const struct auth_identity *id,
                        const char *client_addr, int64_t now_ms,
                        int64_t *retry_after_s, struct rc_error *err);

/* A revocation or kick reached this process: forget cached identities. */
void access_forget_token(struct access *ac, const char *hash);
void access_forget_user(struct access *ac, const char *user);
/* The LISTEN connection was lost: any revocation may have been missed. */
void access_forget_all(struct access *ac);

/* Drops expired cache entries and full buckets (called every few s). */
void access_sweep(struct access *ac, int64_t now_ms);

/* CORS response headers for the request's Origin, "" when none apply.
 * For a preflight, also the allowed methods and headers. */
void access_cors_headers(const struct config *cfg, struct request *req,
                         bool is_preflight, char *out, size_t size);

#endif
