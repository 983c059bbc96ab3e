/*
 * test_auth.c - room patterns, hashes, array literals and HS256 JSON Web
 * Tokens (auth.c). The tokens below were signed by a separate HMAC
 * implementation (Python's hmac module) with SECRET, so a mistake in
 * auth.c's signing cannot hide behind the same mistake in the test.
 */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "tap.h"

#define SECRET "unit-test-secret-unit-test-secret-0123"
#define NOW 1800000000

/* sub carol, exp 2000000000, can_read [general, team-*], can_write
 * [general] */
static const char jwt_good[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjYXJvbCIsImV4cCI6MjAw"
    "MDAwMDAwMCwiY2FuX3JlYWQiOlsiZ2VuZXJhbCIsInRlYW0tKiJdLCJjYW5fd3JpdGUi"
    "OlsiZ2VuZXJhbCJdfQ.Bu-gBGpX_BvUzuFgMcNmj4jlQtkkkVNLSCsjjM34dvg";
/* exp 1000 */
static const char jwt_expired[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjYXJvbCIsImV4cCI6MTAw"
    "MH0.2UPXFRworjPlo7OhZnsoKSAYmblCfKCAZdTQ1S-H960";
/* signed with another key */
static const char jwt_other_key[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjYXJvbCIsImV4cCI6MjAw"
    "MDAwMDAwMH0.SNkg-1okR1hlf7NMFMy4I2YEPe102CPZJIU-Tohr2Jw";
/* can_read ["bad pattern"] */
static const char jwt_bad_pattern[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjYXJvbCIsImV4cCI6MjAw"
    "MDAwMDAwMCwiY2FuX3JlYWQiOlsiYmFkIHBhdHRlcm4iXX0.O4DfB_JqXJR_ZVpDBUX4b"
    "zOnOVE2np9vAmJaUGR9G_I";
/* no sub */
static const char jwt_no_sub[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjIwMDAwMDAwMDB9.JyeMOIk"
    "3pPg8ibbNDAi5zrdf7FdBvBPLc_4JbDEvRNc";
/* header alg none */
static const char jwt_alg_none[] =
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJjYXJvbCIsImV4cCI6MjAw"
    "MDAwMDAwMH0.7B0XZGfkffpiQuCkHCkmn_HUuckg55LqYW3i27s-M9Y";

static void
test_patterns(void)
{
    static const struct {
        const char *patterns, *room;
        bool allow;
    } cases[] = {
        {"general", "general", true},
        {"general", "general2", false},
        {"general", "genera", false},
        {"team-*", "team-a", true},
        {"team-*", "team-", true},
        {"team-*", "team", false},
        {"team-*", "teamx", false},
        {"team-*", "xteam-a", false},
        {"a,team-*,b", "team-z", true},
        {"a,b", "b", true},
        {"*", "anything", true},
        {"", "general", false},
        {"gen*,x", "general", true},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        tap_ok(auth_patterns_allow(cases[i].patterns, cases[i].room) ==
               cases[i].allow, "'%s' %s '%s'", cases[i].patterns,
               cases[i].allow ? "grants" : "does not grant", cases[i].room);
}

static void
test_hash_and_arrays(void)
{
    char hex[AUTH_HASH_HEX + 1], list[32];

    auth_sha256_hex("rct_abc", hex);
    tap_is_str(hex, "c3fc937d8e9fcfe31196479c7bcede2f"
                    "f13a3aedcb4b9f0e7d591702d9f312f5", "SHA-256 in hex");
    tap_is_int(auth_pg_array_to_list("{general,team-*}", list, sizeof(list)),
               0, "array literal fits");
    tap_is_str(list, "general,team-*", "array literal to list");
    tap_is_int(auth_pg_array_to_list("{}", list, sizeof(list)), 0,
               "empty array");
    tap_is_str(list, "", "empty array is an empty list");
    tap_is_int(auth_pg_array_to_list("{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}",
                                     list, sizeof(list)), -1,
               "an array too long for the buffer is refused");
    tap_ok(auth_is_jwt(jwt_good), "a JWT looks like one");
    tap_ok(!auth_is_jwt("rct_0123abcd"), "a plain token does not");
}

static void
expect_refused(const char *token, const char *secret, const char *what)
{
    struct rc_error err = {0};
    struct auth_identity *id = auth_jwt_verify(token, secret, NOW, &err);

    tap_ok(id == NULL && err.status == 401, "%s: refused with 401", what);
    auth_identity_unref(id);
}

static void
test_jwt(void)
{
    struct rc_error err = {0};
    struct auth_identity *id = auth_jwt_verify(jwt_good, SECRET, NOW, &err);

    if (!tap_ok(id != NULL, "a well-signed JWT is accepted")) {
        tap_diag("error: %s", err.message);
        return;
    }
    tap_is_str(id->user, "carol", "user from sub");
    tap_is_str(id->can_read, "general,team-*", "can_read claim");
    tap_is_str(id->can_write, "general", "can_write claim");
    tap_is_int(id->expires_at, 2000000000, "expiry from exp");
    tap_is_str(id->hash, "", "a JWT has no token hash");
    auth_identity_unref(id);

    expect_refused(jwt_expired, SECRET, "expired");
    expect_refused(jwt_other_key, SECRET, "signed with another key");
    expect_refused(jwt_good, "another-secret-another-secret-0123",
                   "checked with another key");
    expect_refused(jwt_bad_pattern, SECRET, "a room pattern with a space");
    expect_refused(jwt_no_sub, SECRET, "no sub");
    expect_refused(jwt_alg_none, SECRET, "alg none");
    expect_refused(jwt_good, "", "no secret configured");
    expect_refused("a.b", SECRET, "two parts");
    expect_refused("!!.??.**", SECRET, "not base64url");

    /* Every prefix of a good token is either refused or, for the whole
     * token only, accepted: never a crash. */
    for (size_t n = 0; n < sizeof(jwt_good) - 1; n++) {
        char cut[sizeof(jwt_good)];
        struct rc_error e = {0};

        memcpy(cut, jwt_good, n);
        cut[n] = '\0';
        id = auth_jwt_verify(cut, SECRET, NOW, &e);
        if (id != NULL) {
            tap_ok(false, "prefix of %zu bytes accepted", n);
            auth_identity_unref(id);
            return;
        }
    }
    tap_ok(true, "no strict prefix of a good JWT is accepted");
}

int
main(void)
{
    test_patterns();
    test_hash_and_arrays();
    test_jwt();
    return tap_done();
}
