/*
 * auth.c - identities, room patterns, hashes and JWT checks (auth.h).
 */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"

/* A JWT's three parts together; anything longer is refused unread. */
#define JWT_MAX 8192

struct auth_identity *
auth_identity_new(const char *user, const char *can_read,
                  const char *can_write, const char *hash,
                  int64_t expires_at)
{
    struct auth_identity *id;
    size_t len = strlen(user);

    if (len == 0 || len > AUTH_USER_MAX)
        return NULL;
    id = calloc(1, sizeof(*id));
    if (id == NULL)
        return NULL;
    id->refs = 1;
    id->expires_at = expires_at;
    memcpy(id->user, user, len + 1);
    snprintf(id->hash, sizeof(id->hash), "%s", hash ? hash : "");
    id->can_read = strdup(can_read ? can_read : "");
    id->can_write = strdup(can_write ? can_write : "");
    if (id->can_read == NULL || id->can_write == NULL) {
        auth_identity_unref(id);
        return NULL;
    }
    return id;
}

void
auth_identity_ref(struct auth_identity *id)
{
    id->refs++;
}

void
auth_identity_unref(struct auth_identity *id)
{
    if (id == NULL || --id->refs > 0)
        return;
    free(id->can_read);
    free(id->can_write);
    free(id);
}

bool
auth_patterns_allow(const char *patterns, const char *room)
{
    size_t room_len = strlen(room);
    const char *p = patterns;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (len > 0 && p[len - 1] == '*') {
            if (room_len >= len - 1 && strncmp(room, p, len - 1) == 0)
                return true;
        } else if (len == room_len && strncmp(room, p, len) == 0) {
            return true;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}

void
auth_sha256_hex(const char *text, char out[AUTH_HASH_HEX + 1])
{
    unsigned char md[32];
    unsigned int md_len = 0;

    EVP_Digest(text, strlen(text), md, &md_len, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[AUTH_HASH_HEX] = '\0';
}

int
auth_pg_array_to_list(const char *text, char *out, size_t size)
{
    size_t len = strlen(text);

    /* Patterns hold only name characters and '*', so PostgreSQL never
     * quotes them: the array text is the list between braces. */
    if (len >= 2 && text[0] == '{' && text[len - 1] == '}') {
        text++;
        len -= 2;
    }
    if (len >= size)
        return -1;
    memcpy(out, text, len);
    out[len] = '\0';
    return 0;
}

bool
auth_is_jwt(const char *text)
{
    const char *dot = strchr(text, '.');

    return dot != NULL && strchr(dot + 1, '.') != NULL;
}

static int
b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url; returns the length or -1. */
static int
b64url_decode(const char *in, size_t len, unsigned char *out, size_t size)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        int v = b64url_value(in[i]);

        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= size)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return (int)n;
}

/* A JSON array of pattern strings into "a,b"; -1 when malformed. */
static int
claim_patterns(json_t *claim, struct buf *out)
{
    size_t i;
    json_t *v;

    if (claim == NULL)
        return 0;
    if (!json_is_array(claim))
        return -1;
    json_array_foreach(claim, i, v) {
        const char *s = json_string_value(v);

        if (s == NULL || s[0] == '\0' || strlen(s) > 65 ||
            strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789_.-*") != strlen(s) ||
            (strchr(s, '*') != NULL && strchr(s, '*') != s + strlen(s) - 1))
            return -1;
        if (i > 0)
            buf_puts(out, ",");
        buf_puts(out, s);
    }
    return buf_failed(out) ? -1 : 0;
}

static json_t *
jwt_part_json(const char *part, size_t len)
{
    unsigned char raw[JWT_MAX];
    int n = b64url_decode(part, len, raw, sizeof(raw));

    if (n < 0)
        return NULL;
    return json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES,
                      NULL);
}

static bool
jwt_signature_ok(const char *token, size_t signed_len, const char *sig,
                 size_t sig_len, const char *secret)
{
    unsigned char want[EVP_MAX_MD_SIZE], got[64];
    unsigned int want_len = 0;
    int got_len;

    if (HMAC(EVP_sha256(), secret, (int)strlen(secret),
             (const unsigned char *)token, signed_len, want,
             &want_len) == NULL)
        return false;
    got_len = b64url_decode(sig, sig_len, got, sizeof(got));
    return got_len == (int)want_len &&
           CRYPTO_memcmp(got, want, want_len) == 0;
}

static struct auth_identity *
jwt_identity(json_t *claims, int64_t now, struct rc_error *err)
{
    struct buf read = BUF_INIT, write = BUF_INIT;
    json_t *exp = json_object_get(claims, "exp");
    json_t *nbf = json_object_get(claims, "nbf");
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    struct auth_identity *id = NULL;

    if (!json_is_number(exp) || json_number_value(exp) <= (double)now) {
        rc_error_set(err, 401, "unauthorized", "the token has expired");
    } else if (nbf != NULL && (!json_is_number(nbf) ||
                               json_number_value(nbf) > (double)now)) {
        rc_error_set(err, 401, "unauthorized", "the token is not valid yet");
    } else if (sub == NULL || sub[0] == '\0' ||
               strlen(sub) > AUTH_USER_MAX) {
        rc_error_set(err, 401, "unauthorized", "the token names no user "
                     "(sub)");
    } else if (claim_patterns(json_object_get(claims, "can_read"), &read) ||
               claim_patterns(json_object_get(claims, "can_write"),
                              &write)) {
        rc_error_set(err, 401, "unauthorized", "can_read and can_write "
                     "must be arrays of room patterns");
    } else {
        id = auth_identity_new(sub, read.data ? read.data : "",
                               write.data ? write.data : "", "",
                               (int64_t)json_number_value(exp));
        if (id == NULL)
            rc_internal(err, "out of memory");
    }
    buf_free(&read);
    buf_free(&write);
    return id;
}

struct auth_identity *
auth_jwt_verify(const char *token, const char *secret, int64_t now,
                struct rc_error *err)
{
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    json_t *header = NULL, *claims = NULL;
    struct auth_identity *id = NULL;
    const char *alg;

    if (secret == NULL || secret[0] == '\0') {
        rc_error_set(err, 401, "unauthorized", "this server accepts no "
                     "JSON Web Tokens (jwt_secret is not set)");
        return NULL;
    }
    if (dot2 == NULL || strlen(token) > JWT_MAX) {
        rc_error_set(err, 401, "unauthorized", "the token is malformed");
        return NULL;
    }

    header = jwt_part_json(token, (size_t)(dot1 - token));
    alg = json_string_value(json_object_get(header, "alg"));
    if (alg == NULL || strcmp(alg, "HS256") != 0) {
        rc_error_set(err, 401, "unauthorized", "only HS256 tokens are "
                     "accepted");
    } else if (!jwt_signature_ok(token, (size_t)(dot2 - token), dot2 + 1,
                                 strlen(dot2 + 1), secret)) {
        rc_error_set(err, 401, "unauthorized", "the token's signature is "
                     "wrong");
    } else if ((claims = jwt_part_json(dot1 + 1,
                                       (size_t)(dot2 - dot1 - 1))) == NULL ||
               !json_is_object(claims)) {
        rc_error_set(err, 401, "unauthorized", "the token's claims are not "
                     "a JSON object");
    } else {
        id = jwt_identity(claims, now, err);
    }
    json_decref(header);
    json_decref(claims);
    return id;
}
