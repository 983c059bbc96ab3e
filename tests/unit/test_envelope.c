/*
 * test_envelope.c - unit tests of lib/envelope.c.
 *
 * Tables of good publish bodies with the type, id and data they must give
 * and of bad ones with the error they must give; the type and id limits;
 * every prefix of valid bodies; escaping of quotes, control characters
 * and Unicode; and the ack, error, gap and reset texts, compared byte for
 * byte and read back with jansson. Prints TAP; run by prove through make
 * test.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "tap.h"

#define T32 "abcdefghijklmnopqrstuvwxyz012345"
#define I64 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ~"

struct valid_case {
    const char *text;
    bool is_valid;
};

static const struct valid_case type_cases[] = {
    { "a", true }, { "text", true }, { "a.b-c_d9", true }, { T32, true },
    { T32 "x", false }, { "", false }, { "Text", false }, { "a b", false },
    { "caf\xc3\xa9", false }, { "a/b", false }, { "a:b", false },
};

static const struct valid_case reserved_cases[] = {
    { "ack", true }, { "error", true }, { "presence", true },
    { "typing", true }, { "system", true }, { "message", false },
    { "acks", false }, { "Ack", false }, { "system2", false }, { "", false },
};

static const struct valid_case id_cases[] = {
    { "m1", true }, { " ", true }, { "~", true }, { "a\"b\\c", true },
    { I64, true }, { I64 "x", false }, { "", false }, { "a\tb", false },
    { "a\x7f", false }, { "caf\xc3\xa9", false }, { "a\nb", false },
};

struct good_case {
    const char *body;
    const char *type;
    const char *id;
    const char *data;
};

static const struct good_case good_cases[] = {
    { "{}", "message", "", "null" },
    { "{\"type\":\"text\",\"id\":\"msg_123\",\"data\":{\"content\":\"Hello\"}}",
      "text", "msg_123", "{\"content\":\"Hello\"}" },
    { "{\"type\":\"message\"}", "message", "", "null" },
    { "{\"data\":null}", "message", "", "null" },
    { "{\"data\":false}", "message", "", "false" },
    { "{\"data\":[]}", "message", "", "[]" },
    { "{\"data\":{}}", "message", "", "{}" },
    { "\r\n{ \"data\" :\n\t{ \"a\" : [ 1 ,\n 2 ] } }\n", "message", "",
      "{\"a\":[1,2]}" },
    { "{\"room\":\"x\",\"extra\":[1],\"type\":\"t\",\"from\":\"eve\"}", "t", "",
      "null" },
    { "{\"data\":{\"z\":1,\"a\":2,\"m\":{\"y\":3,\"b\":4}}}", "message", "",
      "{\"z\":1,\"a\":2,\"m\":{\"y\":3,\"b\":4}}" },
    { "{\"type\":\"" T32 "\",\"id\":\"" I64 "\"}", T32, I64, "null" },
    { "{\"id\":\"a\\\"b\\\\c\\u0041\"}", "message", "a\"b\\cA", "null" },
    /* integers as given, reals in their shortest form */
    { "{\"data\":[0,-1,9223372036854775807,-9223372036854775808]}", "message",
      "", "[0,-1,9223372036854775807,-9223372036854775808]" },
    { "{\"data\":[1.1,0.1,1.10,-2.5,0.30000000000000004]}", "message", "",
      "[1.1,0.1,1.1,-2.5,0.30000000000000004]" },
    { "{\"data\":[100.0,1E5,-0.0,0.0,1e16,1e17,123.456e10]}", "message", "",
      "[100.0,100000.0,-0.0,0.0,10000000000000000.0,1e17,1234560000000.0]" },
    { "{\"data\":[1e300,1.5e-7,0.0001,1e-5,5e-324,1.7976931348623157e308]}",
      "message", "", "[1e300,1.5e-7,0.0001,1e-5,5e-324,"
      "1.7976931348623157e308]" },
    /* strings: JSON's escapes for quote, backslash and control characters,
     * everything else as raw UTF-8 */
    { "{\"data\":\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f\\/\"}", "message",
      "", "\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f/\"" },
    { "{\"data\":\"\\u00e9\\ud83d\\ude00 \xc3\xa9\xf0\x9f\x98\x80\"}",
      "message", "", "\"\xc3\xa9\xf0\x9f\x98\x80 \xc3\xa9\xf0\x9f\x98\x80\"" },
    { "{\"data\":{\"k\\\"ey\\n\":\"\\u2028\x7f\"}}", "message", "",
      "{\"k\\\"ey\\n\":\"\xe2\x80\xa8\x7f\"}" },
};

struct bad_case {
    const char *body;
    const char *in_message;
};

static const struct bad_case bad_cases[] = {
    { "", "empty" },
    { "{", "not valid JSON (line 1" },
    { "nope", "not valid JSON (line 1, column" },
    { "{\"type\":}", "not valid JSON" },
    { "\n\n  {\"a\" 1}", "line 3" },
    { "{\"data\":1} x", "not valid JSON" },
    { "[]", "JSON object" },
    { "\"text\"", "JSON object" },
    { "42", "JSON object" },
    { "null", "JSON object" },
    { "{\"type\":5}", "'type' must be a string" },
    { "{\"type\":null}", "'type' must be a string" },
    { "{\"type\":[\"a\"]}", "'type' must be a string" },
    { "{\"type\":\"\"}", "'type' must be 1-32" },
    { "{\"type\":\"Text\"}", "'type' must be 1-32" },
    { "{\"type\":\"a b\"}", "'type' must be 1-32" },
    { "{\"type\":\"" T32 "x\"}", "'type' must be 1-32" },
    { "{\"type\":\"caf\\u00e9\"}", "'type' must be 1-32" },
    { "{\"type\":\"ack\"}", "'ack' is reserved" },
    { "{\"type\":\"error\"}", "'error' is reserved" },
    { "{\"type\":\"presence\"}", "'presence' is reserved" },
    { "{\"type\":\"typing\"}", "'typing' is reserved" },
    { "{\"type\":\"system\"}", "'system' is reserved" },
    { "{\"id\":5}", "'id' must be a string" },
    { "{\"id\":null}", "'id' must be a string" },
    { "{\"id\":\"\"}", "'id' must be 1-64" },
    { "{\"id\":\"" I64 "x\"}", "'id' must be 1-64" },
    { "{\"id\":\"a\\tb\"}", "'id' must be 1-64" },
    { "{\"id\":\"\\u00e9\"}", "'id' must be 1-64" },
    { "{\"id\":\"\\u007f\"}", "'id' must be 1-64" },
    { "{\"data\":\"\\u0000\"}", "\\u0000" },
    { "{\"a\":1,\"a\":2}", "duplicate" },
    { "{\"data\":{\"x\":1,\"x\":2}}", "duplicate" },
    { "{\"data\":12345678901234567890}", "too big" },
    { "{\"data\":1e400}", "overflow" },
    { "{\"data\":\"\xff\"}", "not valid JSON" },
    { "{\"data\":\"a\nb\"}", "not valid JSON" },
    { "{\"data\":\"\x01\"}", "not valid JSON" },
};

/* A client may see the message: only printable ASCII. */
static bool
is_printable(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s < 0x20 || *s > 0x7e)
            return false;
    }
    return true;
}

static void
test_validity(const char *what, bool (*fn)(const char *),
              const struct valid_case *cases, size_t n)
{
    char shown[160];
    size_t i;

    for (i = 0; i < n; i++) {
        const char *text = cases[i].text;

        tap_is_int(fn(text), cases[i].is_valid, "%s(\"%s\")", what,
                   tap_escape(shown, sizeof(shown), text, strlen(text)));
    }
    tap_ok(!fn(NULL), "%s(NULL)", what);
}

/* Equal when both texts are JSON and jansson finds the values equal. */
static bool
json_text_equal(const char *a, const char *b)
{
    json_t *ja = json_loads(a, JSON_DECODE_ANY, NULL);
    json_t *jb = json_loads(b, JSON_DECODE_ANY, NULL);
    bool is_equal = ja != NULL && jb != NULL && json_equal(ja, jb);

    json_decref(ja);
    json_decref(jb);
    return is_equal;
}

/* True when data is the value of body's data field (null when there is
 * none), as jansson compares values. */
static bool
data_matches_body(const char *data, const char *body)
{
    json_t *root = json_loads(body, 0, NULL);
    json_t *field = json_object_get(root, "data");
    json_t *got = json_loads(data, JSON_DECODE_ANY, NULL);
    bool is_equal = got != NULL && (field != NULL ? json_equal(field, got)
                                                  : json_is_null(got));

    json_decref(root);
    json_decref(got);
    return is_equal;
}

static void
test_good(const struct good_case *c)
{
    struct publish_req req;
    struct rc_error err = { 0 };
    char shown[100];
    char got[512];
    int rc = envelope_parse_publish(c->body, strlen(c->body), &req, &err);

    tap_escape(shown, sizeof(shown), c->body, strlen(c->body));
    if (rc != 0) {
        tap_diag("unexpected error: %s", err.message);
        tap_ok(false, "publish %s", shown);
        return;
    }
    snprintf(got, sizeof(got), "%s|%s|%s", req.type, req.id, req.data);
    {
        char expected[512];

        snprintf(expected, sizeof(expected), "%s|%s|%s", c->type, c->id,
                 c->data);
        tap_is_str(got, expected, "publish %s", shown);
    }
    tap_ok(data_matches_body(req.data, c->body) &&
           strpbrk(req.data, "\r\n") == NULL,
           "data of %s reads back as the same JSON, on one line", shown);
    publish_req_free(&req);
}

static void
test_bad(const struct bad_case *c)
{
    struct publish_req req;
    struct rc_error err = { 0 };
    char shown[100];
    int rc = envelope_parse_publish(c->body, strlen(c->body), &req, &err);

    tap_escape(shown, sizeof(shown), c->body, strlen(c->body));
    if (!tap_ok(rc == -1 && req.data == NULL && err.status == 400 &&
                strcmp(err.code, "bad_request") == 0 &&
                strstr(err.message, c->in_message) != NULL &&
                is_printable(err.message), "publish %s fails", shown)) {
        tap_diag("  expected 400 with message containing \"%s\"",
                 c->in_message);
        tap_diag("  got      rc %d, status %d, message \"%s\"", rc,
                 err.status, err.message);
    }
    publish_req_free(&req);
}

static void
test_tables(void)
{
    size_t i;

    test_validity("envelope_type_is_valid", envelope_type_is_valid,
                  type_cases, sizeof(type_cases) / sizeof(type_cases[0]));
    test_validity("envelope_type_is_reserved", envelope_type_is_reserved,
                  reserved_cases,
                  sizeof(reserved_cases) / sizeof(reserved_cases[0]));
    test_validity("envelope_id_is_valid", envelope_id_is_valid, id_cases,
                  sizeof(id_cases) / sizeof(id_cases[0]));
    for (i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++)
        test_good(&good_cases[i]);
    for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
        test_bad(&bad_cases[i]);
}

/* Bodies with bytes jansson must not read past: a NUL inside, and text
 * that is valid only when cut. */
static void
test_lengths(void)
{
    static const char nul_body[] = "{\"data\":1}\0{}";
    char deep[3000 * 2 + 16];
    struct publish_req req;
    struct rc_error err = { 0 };
    int rc;

    rc = envelope_parse_publish("{}", 2, &req, &err);
    publish_req_free(&req);
    tap_ok(rc == 0 && req.data == NULL, "publish_req_free clears data");

    rc = envelope_parse_publish(nul_body, sizeof(nul_body) - 1, &req, &err);
    tap_ok(rc == -1 && err.status == 400, "a NUL byte in the body fails");
    publish_req_free(&req);

    rc = envelope_parse_publish("{\"data\":7}garbage", 10, &req, NULL);
    tap_is_str(rc == 0 ? req.data : NULL, "7", "only len bytes are parsed");
    publish_req_free(&req);

    memset(&err, 0, sizeof(err));
    strcpy(deep, "{\"data\":");
    memset(deep + 8, '[', 3000);
    memset(deep + 3008, ']', 3000);
    strcpy(deep + 6008, "}");
    rc = envelope_parse_publish(deep, strlen(deep), &req, &err);
    if (!tap_ok(rc == -1 && err.status == 400 &&
                strstr(err.message, "nested too deeply") != NULL,
                "3000 nested arrays fail"))
        tap_diag("  got rc %d, message \"%s\"", rc, err.message);
    publish_req_free(&req);
}

/* Every prefix, copied to a buffer of exactly its length (no NUL) so that
 * a read past it shows under AddressSanitizer, must parse or fail with a
 * 400; a prefix that parses must give JSON data. */
static void
test_prefixes(const char *body)
{
    size_t len = strlen(body);
    size_t cut;
    bool is_clean = true;

    for (cut = 0; cut <= len && is_clean; cut++) {
        char *piece = malloc(cut > 0 ? cut : 1);
        struct publish_req req;
        struct rc_error err = { 0 };
        int rc;

        if (piece == NULL)
            abort();
        memcpy(piece, body, cut);
        rc = envelope_parse_publish(piece, cut, &req, &err);
        if (rc == 0)
            is_clean = err.status == 0 && json_text_equal(req.data, req.data);
        else
            is_clean = rc == -1 && err.status == 400 && req.data == NULL &&
                       is_printable(err.message);
        if (!is_clean)
            tap_diag("prefix of length %zu: rc %d, status %d, \"%s\"", cut,
                     rc, err.status, err.message);
        publish_req_free(&req);
        free(piece);
    }
    tap_ok(is_clean, "every prefix of %s parses or fails cleanly", body);
}

static void
test_ack(void)
{
    char *got;
    json_t *j;

    got = envelope_ack("msg_123", "general", 43, "1764777600.123", false);
    tap_is_str(got, "{\"type\":\"ack\",\"id\":\"msg_123\",\"room\":\"general\","
               "\"seq\":43,\"ts\":1764777600.123}", "ack");
    j = json_loads(got != NULL ? got : "", 0, NULL);
    tap_ok(j != NULL && json_real_value(json_object_get(j, "ts")) ==
           1764777600.123 && json_integer_value(json_object_get(j, "seq"))
           == 43 && json_object_get(j, "duplicate") == NULL,
           "ack reads back with a number ts and integer seq");
    json_decref(j);
    free(got);

    got = envelope_ack("m1", "r", 9007199254740991, "1", true);
    tap_is_str(got, "{\"type\":\"ack\",\"id\":\"m1\",\"room\":\"r\","
               "\"seq\":9007199254740991,\"ts\":1,\"duplicate\":true}",
               "ack of a duplicate at the largest seq");
    free(got);

    got = envelope_ack("", "general", 1, "1764777600.5", false);
    tap_is_str(got, "{\"type\":\"ack\",\"room\":\"general\",\"seq\":1,"
               "\"ts\":1764777600.5}", "ack without id (empty)");
    free(got);
    got = envelope_ack(NULL, "general", 1, "-0.000000001", false);
    tap_is_str(got, "{\"type\":\"ack\",\"room\":\"general\",\"seq\":1,"
               "\"ts\":-0.000000001}", "ack without id (NULL)");
    free(got);

    got = envelope_ack("a\"b\\c d\n\xc3\xa9", "general", 2, "1", false);
    tap_ok(got != NULL && json_text_equal(got, "{\"type\":\"ack\","
           "\"id\":\"a\\\"b\\\\c d\\n\\u00e9\",\"room\":\"general\","
           "\"seq\":2,\"ts\":1}") && strchr(got, '\n') == NULL,
           "ack escapes quote, backslash, newline and keeps UTF-8 in id");
    free(got);
}

static void
test_ack_ts(void)
{
    static const char *const bad_ts[] = {
        "abc", "", "01", "1.", ".5", "1e", "+1", "1 ", "1,5", "NaN", "-",
        "1}", "1e3", "1.5E3", "5155558e0555555555555", "1234567890123456",
        "1.1234567890", "0.", "-.5",
    };
    char shown[32];
    size_t i;
    char *got;

    for (i = 0; i < sizeof(bad_ts) / sizeof(bad_ts[0]); i++) {
        got = envelope_ack("x", "r", 1, bad_ts[i], false);
        tap_is_str(got, "{\"type\":\"ack\",\"id\":\"x\",\"room\":\"r\","
                   "\"seq\":1,\"ts\":null}", "ack with ts \"%s\" writes null",
                   tap_escape(shown, sizeof(shown), bad_ts[i],
                              strlen(bad_ts[i])));
        free(got);
    }
    got = envelope_ack("x", "r", 1, "999999999999999.123456789", false);
    tap_ok(got != NULL &&
           strstr(got, "\"ts\":999999999999999.123456789}") != NULL,
           "ack takes ts of 15 digits and a 9-digit fraction");
    free(got);
    got = envelope_ack("x", "r", 1, "0", false);
    tap_ok(got != NULL && strstr(got, "\"ts\":0}") != NULL,
           "ack takes ts 0");
    free(got);
    got = envelope_ack("x", "r", 1, NULL, false);
    tap_ok(got != NULL && strstr(got, "\"ts\":null") != NULL,
           "ack with ts NULL writes null");
    free(got);
    tap_ok(envelope_ack("x", NULL, 1, "1", false) == NULL,
           "ack without room is NULL");
}

static void
test_error(void)
{
    struct rc_error err = { 0 };
    char *got;

    rc_bad_request(&err, "room 'x' \"quoted\"\n\ttab \xc3\xa9");
    got = envelope_error(&err);
    tap_ok(got != NULL && json_text_equal(got, "{\"type\":\"error\","
           "\"code\":\"bad_request\",\"message\":\"room 'x' \\\"quoted\\\""
           "\\n\\ttab \\u00e9\"}") && strchr(got, '\n') == NULL,
           "error escapes the message and reads back");
    tap_ok(got != NULL && strncmp(got, "{\"type\":\"error\",\"code\":", 23)
           == 0, "error starts with type and code");
    free(got);

    memset(&err, 0, sizeof(err));
    rc_error_set(&err, 403, "forbidden", "token may not write to room '%s'",
                 "ops");
    got = envelope_error(&err);
    tap_is_str(got, "{\"type\":\"error\",\"code\":\"forbidden\","
               "\"message\":\"token may not write to room 'ops'\"}",
               "error 403");
    free(got);

    memset(&err, 0, sizeof(err));
    rc_bad_request(&err, "cut \xc3");
    got = envelope_error(&err);
    tap_is_str(got, "{\"type\":\"error\",\"code\":\"bad_request\","
               "\"message\":\"cut ?\"}", "error with a cut UTF-8 message");
    free(got);

    got = envelope_error(NULL);
    tap_is_str(got, "{\"type\":\"error\",\"code\":\"internal\","
               "\"message\":\"internal error\"}", "error from NULL");
    free(got);
    memset(&err, 0, sizeof(err));
    got = envelope_error(&err);
    tap_is_str(got, "{\"type\":\"error\",\"code\":\"internal\","
               "\"message\":\"internal error\"}", "error from an unset record");
    free(got);
}

static void
test_system(void)
{
    char *got;

    got = envelope_gap("general", 3, 9);
    tap_is_str(got, "{\"type\":\"system\",\"room\":\"general\",\"data\":"
               "{\"event\":\"gap\",\"room\":\"general\",\"from\":3,\"to\":9}}",
               "gap");
    tap_ok(got != NULL && json_text_equal(got, "{\"data\":{\"to\":9,"
           "\"from\":3,\"room\":\"general\",\"event\":\"gap\"},"
           "\"room\":\"general\",\"type\":\"system\"}"), "gap reads back");
    free(got);

    got = envelope_gap("r", 1, 9007199254740991);
    tap_ok(got != NULL && strstr(got, "\"to\":9007199254740991}") != NULL,
           "gap up to the largest seq");
    free(got);

    got = envelope_reset("general");
    tap_is_str(got, "{\"type\":\"system\",\"room\":\"general\",\"data\":"
               "{\"event\":\"reset\",\"room\":\"general\"}}", "reset");
    free(got);

    tap_ok(envelope_gap(NULL, 1, 2) == NULL && envelope_reset(NULL) == NULL,
           "gap and reset without room are NULL");
}

int
main(void)
{
    test_tables();
    test_lengths();
    test_prefixes("{\"type\":\"text\",\"id\":\"m-1\",\"data\":{\"a\":[1,2.5,"
                  "\"x\\\"y\"],\"b\":null}}");
    test_prefixes("{\"data\":\"\\u00e9\\ud83d\\ude00\xc3\xa9\"}");
    test_prefixes("[true]");
    test_ack();
    test_ack_ts();
    test_error();
    test_system();
    return tap_done();
}
