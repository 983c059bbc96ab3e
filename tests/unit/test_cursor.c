/*
 * test_cursor.c - unit tests of lib/cursor.c.
 *
 * Tables of good cursors (each must read back to the same text) and bad
 * ones (each must fail with a 400 that says why), the seq and room-count
 * limits, every prefix of a valid cursor, get/set/merge and formatting
 * into short buffers. Prints TAP; run by prove through make test.
 */
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "tap.h"

static const char *const good_cursors[] = {
    "",
    "general:42",
    "general:42,random:17",
    "a:0",
    "a:9007199254740991",
    "Team-7_ops.eu:1,x:2,y:3",
    "r:10,q:9,p:8",
};

struct bad_case {
    const char *text;
    const char *in_message; /* what the error message must contain */
};

static const struct bad_case bad_cursors[] = {
    { "general", "no ':'" },
    { "general:", "decimal" },
    { ":42", "not a valid room" },
    { "general:-1", "decimal" },
    { "general:+1", "decimal" },
    { "general: 1", "decimal" },
    { "general:1 ", "decimal" },
    { " general:1", "not a valid room" },
    { "general:01", "decimal" },
    { "general:00", "decimal" },
    { "general:1x", "decimal" },
    { "general:0x10", "decimal" },
    { "general:1e3", "decimal" },
    { "general:1.5", "decimal" },
    { "general:9007199254740992", "decimal" },
    { "general:99999999999999999999999999", "decimal" },
    { "general:1:2", "decimal" },
    { "general:1,", "empty item" },
    { ",general:1", "empty item" },
    { "a:1,,b:2", "empty item" },
    { ",", "empty item" },
    { "general:1,general:2", "twice" },
    { "a:1,b:2,a:1", "'a' twice" },
    { "gen eral:1", "'gen?eral'" },
    { "gen\"eral:1", "'gen?eral'" },
    { "caf\xc3\xa9:1", "'caf?\?'" },
    { "a\nb", "'a?b'" },
};

static void
test_good(const char *text)
{
    struct cursor c;
    struct rc_error err = { 0 };
    char shown[128];
    char got[CURSOR_TEXT_SIZE];
    int rc = cursor_parse(text, strlen(text), &c, &err);

    if (rc != 0)
        tap_diag("unexpected error: %s", err.message);
    else
        cursor_format(&c, got, sizeof(got));
    tap_is_str(rc == 0 ? got : NULL, text, "cursor \"%s\" reads back",
               tap_escape(shown, sizeof(shown), text, strlen(text)));
}

static void
test_bad(const struct bad_case *b)
{
    struct cursor c;
    struct rc_error err = { 0 };
    char shown[128];
    int rc;

    c.n = 5;
    rc = cursor_parse(b->text, strlen(b->text), &c, &err);
    if (!tap_ok(rc == -1 && c.n == 0 && err.status == 400 &&
                strcmp(err.code, "bad_request") == 0 &&
                strstr(err.message, b->in_message) != NULL,
                "cursor \"%s\" fails",
                tap_escape(shown, sizeof(shown), b->text,
                           strlen(b->text)))) {
        tap_diag("  expected 400 with message containing \"%s\"",
                 b->in_message);
        tap_diag("  got      rc %d, n %zu, status %d, message \"%s\"", rc,
                 c.n, err.status, err.message);
    }
}

static void
test_tables(void)
{
    size_t i;

    for (i = 0; i < sizeof(good_cursors) / sizeof(good_cursors[0]); i++)
        test_good(good_cursors[i]);
    for (i = 0; i < sizeof(bad_cursors) / sizeof(bad_cursors[0]); i++)
        test_bad(&bad_cursors[i]);
}

/* Writes n items "r0:0,r1:1,...", with room names padded to name_len. */
static size_t
make_cursor(char *buf, size_t size, int n, int name_len)
{
    size_t used = 0;
    int i;

    buf[0] = '\0';
    for (i = 0; i < n; i++)
        used += (size_t)snprintf(buf + used, size - used, "%sr%0*d:%d",
                                 i > 0 ? "," : "", name_len - 1, i, i);
    return used;
}

static void
test_limits(void)
{
    static char text[2 * CURSOR_TEXT_SIZE];
    char got[CURSOR_TEXT_SIZE];
    struct cursor c;
    struct rc_error err = { 0 };
    size_t len;
    int rc;

    len = make_cursor(text, sizeof(text), CURSOR_ROOMS_MAX, 3);
    rc = cursor_parse(text, len, &c, &err);
    tap_is_int(rc == 0 ? (int64_t)c.n : -1, CURSOR_ROOMS_MAX,
               "64 rooms are accepted");

    len = make_cursor(text, sizeof(text), CURSOR_ROOMS_MAX + 1, 3);
    rc = cursor_parse(text, len, &c, &err);
    tap_ok(rc == -1 && err.status == 400 &&
           strstr(err.message, "more than 64") != NULL,
           "65 rooms are refused");

    /* The longest cursor there is: 64 rooms of 64 characters, each at the
     * largest seq. It must fit CURSOR_TEXT_SIZE exactly. */
    cursor_init(&c);
    for (rc = 0; rc < CURSOR_ROOMS_MAX; rc++) {
        snprintf(text, sizeof(text), "%064d", rc);
        if (cursor_set(&c, text, CURSOR_SEQ_MAX) != 0)
            break;
    }
    len = cursor_format(&c, got, sizeof(got));
    tap_is_int((int64_t)len, CURSOR_TEXT_SIZE - 1,
               "the longest cursor fills CURSOR_TEXT_SIZE");
    rc = cursor_parse(got, len, &c, &err);
    tap_is_int(rc == 0 ? (int64_t)c.n : -1, CURSOR_ROOMS_MAX,
               "the longest cursor reads back");

    memset(text, 'n', ROOM_NAME_MAX);
    memcpy(text + ROOM_NAME_MAX, ":1", 3);
    rc = cursor_parse(text, ROOM_NAME_MAX + 2, &c, &(struct rc_error){ 0 });
    tap_ok(rc == 0 && c.n == 1 && strlen(c.pos[0].room) == ROOM_NAME_MAX,
           "a 64-char room is accepted");
    memset(text, 'n', ROOM_NAME_MAX + 1);
    memcpy(text + ROOM_NAME_MAX + 1, ":1", 3);
    rc = cursor_parse(text, ROOM_NAME_MAX + 3, &c, &(struct rc_error){ 0 });
    tap_ok(rc == -1, "a 65-char room is refused");
}

/* Only len bytes are read: the text need not end with a NUL. */
static void
test_not_terminated(void)
{
    char text[] = { 'g', 'e', 'n', ':', '4', '2', '9', '9' };
    struct cursor c;
    int rc = cursor_parse(text, 6, &c, NULL);

    tap_is_int(rc == 0 ? cursor_get(&c, "gen") : -2, 42,
               "only len bytes are parsed");
    rc = cursor_parse(NULL, 0, &c, NULL);
    tap_ok(rc == 0 && c.n == 0, "NULL with length 0 is the empty cursor");
}

/* Every prefix, copied to a buffer of exactly its length so that a read
 * past it shows under AddressSanitizer, must parse or fail with a 400. */
static void
test_prefixes(const char *text)
{
    size_t len = strlen(text);
    size_t cut;
    bool is_clean = true;

    for (cut = 0; cut <= len && is_clean; cut++) {
        char *piece = malloc(cut > 0 ? cut : 1);
        struct cursor c;
        struct rc_error err = { 0 };
        int rc;

        if (piece == NULL)
            abort();
        memcpy(piece, text, cut);
        rc = cursor_parse(piece, cut, &c, &err);
        if (!(rc == 0 && err.status == 0) &&
            !(rc == -1 && err.status == 400 && err.message[0] != '\0')) {
            tap_diag("prefix of length %zu: rc %d, status %d", cut, rc,
                     err.status);
            is_clean = false;
        }
        free(piece);
    }
    tap_ok(is_clean, "every prefix of \"%s\" parses or fails cleanly", text);
}

static void
test_get_set(void)
{
    struct cursor c;
    char got[CURSOR_TEXT_SIZE];
    char name[16];
    int i;

    cursor_init(&c);
    tap_is_int(cursor_get(&c, "general"), -1, "get of an absent room");
    tap_ok(cursor_set(&c, "general", 5) == 0 &&
           cursor_set(&c, "random", 0) == 0 &&
           cursor_set(&c, "general", 7) == 0, "set adds and updates");
    cursor_format(&c, got, sizeof(got));
    tap_is_str(got, "general:7,random:0", "set keeps the order of addition");
    tap_is_int(cursor_get(&c, "gen"), -1, "get does not match a prefix");
    tap_is_int(cursor_get(&c, "random"), 0, "get of a room at seq 0");

    tap_ok(cursor_set(&c, "bad room", 1) == -1, "set refuses a bad room");
    tap_ok(cursor_set(&c, "x", -1) == -1, "set refuses seq -1");
    tap_ok(cursor_set(&c, "x", CURSOR_SEQ_MAX + 1) == -1,
           "set refuses seq 2^53");
    tap_ok(cursor_set(&c, "x", CURSOR_SEQ_MAX) == 0, "set takes 2^53-1");
    tap_ok(cursor_set(&c, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                      "aaaaaaaaaaaaaa", 1) == -1,
           "set refuses a 65-char room");

    for (i = 0; (size_t)i < CURSOR_ROOMS_MAX; i++) {
        snprintf(name, sizeof(name), "room%d", i);
        if (cursor_set(&c, name, (int64_t)i) != 0)
            break;
    }
    tap_is_int(i, CURSOR_ROOMS_MAX - 3, "set fills up to 64 rooms");
    tap_ok(cursor_set(&c, "one-more", 1) == -1 && c.n == CURSOR_ROOMS_MAX,
           "set on a full cursor fails and changes nothing");
    tap_ok(cursor_set(&c, "general", 9) == 0 &&
           cursor_get(&c, "general") == 9,
           "set of a known room works on a full cursor");
}

static void
test_merge(void)
{
    struct cursor dst;
    struct cursor src;
    char got[CURSOR_TEXT_SIZE];
    char name[16];
    int i;

    if (cursor_parse("a:5,b:3", 7, &dst, NULL) != 0 ||
        cursor_parse("b:7,c:1,a:2", 11, &src, NULL) != 0)
        abort();
    tap_is_int(cursor_merge(&dst, &src), 0, "merge succeeds");
    cursor_format(&dst, got, sizeof(got));
    tap_is_str(got, "a:5,b:7,c:1", "merge keeps the larger seq per room");

    tap_ok(cursor_merge(&dst, &dst) == 0 && dst.n == 3,
           "merge with itself changes nothing");

    cursor_init(&dst);
    cursor_init(&src);
    for (i = 0; i < CURSOR_ROOMS_MAX - 1; i++) {
        snprintf(name, sizeof(name), "d%d", i);
        if (cursor_set(&dst, name, 1) != 0)
            abort();
    }
    if (cursor_set(&src, "d0", 9) != 0 || cursor_set(&src, "s1", 1) != 0 ||
        cursor_set(&src, "s2", 1) != 0)
        abort();
    tap_ok(cursor_merge(&dst, &src) == -1 && dst.n == CURSOR_ROOMS_MAX - 1 &&
           cursor_get(&dst, "d0") == 1,
           "merge that cannot fit fails and changes nothing");
    if (cursor_parse("d0:9,s1:4", 9, &src, NULL) != 0)
        abort();
    tap_ok(cursor_merge(&dst, &src) == 0 && dst.n == CURSOR_ROOMS_MAX &&
           cursor_get(&dst, "d0") == 9 && cursor_get(&dst, "s1") == 4,
           "merge that exactly fills dst succeeds");
}

static void
test_format_short(void)
{
    struct cursor c;
    char buf[32];
    size_t len;

    if (cursor_parse("general:42,random:17", 20, &c, NULL) != 0)
        abort();
    tap_is_int((int64_t)cursor_format(&c, NULL, 0), 20,
               "format with no buffer returns the length");
    memset(buf, 'x', sizeof(buf));
    len = cursor_format(&c, buf, 5);
    tap_ok(len == 20 && strcmp(buf, "gene") == 0,
           "format cuts at the buffer size and terminates");
    len = cursor_format(&c, buf, 20);
    tap_is_str(buf, "general:42,random:1", "format one byte short");
    tap_is_int((int64_t)len, 20, "and still returns the whole length");
    len = cursor_format(&c, buf, 21);
    tap_is_str(buf, "general:42,random:17", "format into an exact buffer");
    len = cursor_format(&c, buf, 12);
    tap_is_str(buf, "general:42,", "format cut just after a comma");
    cursor_init(&c);
    buf[0] = 'x';
    tap_ok(cursor_format(&c, buf, sizeof(buf)) == 0 && buf[0] == '\0',
           "format of the empty cursor");
}

int
main(void)
{
    test_tables();
    test_limits();
    test_not_terminated();
    test_prefixes("general:42,random:17");
    test_prefixes("a:0,b:9007199254740991");
    test_get_set();
    test_merge();
    test_format_short();
    return tap_done();
}
