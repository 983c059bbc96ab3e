/*
 * auth.h - who a request is and what it may do.
 *
 * An identity comes from a token (looked up by its SHA-256 in
 * roomcast.tokens), a ticket (redeemed once), or an HS256 JSON Web Token
 * (verified here, no database). It carries the user and two lists of room
 * patterns: exact names, or a prefix ending in '*'. Pure code: the
 * lookups themselves are in store.c, the caches in the programs.
 *
 * Token text is never logged; only its hash leaves this module.
 */
#ifndef ROOMCAST_AUTH_H
#define ROOMCAST_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define AUTH_USER_MAX 64
#define AUTH_HASH_HEX 64

/* Shared by every stream that uses the same token: reference counted. */
struct auth_identity {
    int refs;
    int64_t expires_at;                 /* epoch seconds; 0: never */
    char *can_read;                     /* "general,team-*" */
    char *can_write;
    char hash[AUTH_HASH_HEX + 1];       /* token's SHA-256, "" for a JWT */
    char user[AUTH_USER_MAX + 1];
};

/* Makes an identity; the pattern lists are copied. NULL when out of
 * memory or when the user is empty or too long. */
struct auth_identity *auth_identity_new(const char *user,
                                        const char *can_read,
                                        const char *can_write,
                                        const char *hash,
                                        int64_t expires_at);
void auth_identity_ref(struct auth_identity *id);
void auth_identity_unref(struct auth_identity *id);

/* True when a pattern of the comma-separated list grants room. */
bool auth_patterns_allow(const char *patterns, const char *room);

/* Lowercase hex SHA-256 of text into out. */
void auth_sha256_hex(const char *text, char out[AUTH_HASH_HEX + 1]);

/* "{general,team-*}" (a PostgreSQL text[] of patterns) into
 * "general,team-*" in out. Returns -1 when it does not fit. */
int auth_pg_array_to_list(const char *text, char *out, size_t size);

/* Verifies an HS256 JSON Web Token with secret at time now (epoch
 * seconds): signature, "exp" (required), "nbf" (optional), "sub" (the
 * user), and the claims "can_read" and "can_write" (arrays of room
 * patterns). Returns a new identity, or NULL with a 401 in err. */
struct auth_identity *auth_jwt_verify(const char *token, const char *secret,
                                      int64_t now, struct rc_error *err);

/* True when text has the shape of a JWT (three dot-separated parts). */
bool auth_is_jwt(const char *text);

#endif
