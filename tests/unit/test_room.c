/*
 * test_room.c - unit tests of lib/room.c: room names and room lists.
 *
 * Tables of good and bad input with the expected result or error, the
 * 64/65-character boundary, and every prefix of a valid list. Prints TAP;
 * run by prove through make test. Not for the cursor codec, which has
 * test_cursor.c.
 */
#include <stdlib.h>
#include <string.h>

#include "room.h"
#include "tap.h"

struct name_case {
    const char *name;
    size_t len;             /* bytes to check */
    bool is_valid;
};

static const struct name_case name_cases[] = {
    { "a", 1, true },
    { "general", 7, true },
    { "Team-7_ops.eu", 13, true },
    { "...", 3, true },
    { "", 0, false },
    { "a b", 3, false },
    { "a/b", 3, false },
    { "a,b", 3, false },
    { "a:b", 3, false },
    { "caf\xc3\xa9", 5, false },
    { "a\0b", 3, false },
    { "tab\t", 4, false },
    { "general", 3, true },  /* only the first len bytes count */
};

struct list_case {
    const char *text;
    const char *expected;   /* names joined by '|', NULL for an error */
    const char *in_message; /* what the error message must contain */
};

static const struct list_case list_cases[] = {
    { "general", "general", NULL },
    { "general,random", "general|random", NULL },
    { "a,b,a", "a|b", NULL },
    { "b,a,b,a,b", "b|a", NULL },
    { "x.y,X.Y", "x.y|X.Y", NULL },
    { "", NULL, "empty" },
    { ",", NULL, "empty item" },
    { "a,", NULL, "empty item" },
    { ",a", NULL, "empty item" },
    { "a,,b", NULL, "empty item" },
    { "a b", NULL, "'a?b'" },
    { "general,ra\"ndom", NULL, "'ra?ndom'" },
    { "ok,bad\nline", NULL, "'bad?line'" },
    { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      NULL, "'aaaaaaaaaaaaaaaa...'" },
};

static void
join_list(const struct room_list *list, char *buf, size_t size)
{
    size_t i;
    size_t used = 0;

    buf[0] = '\0';
    for (i = 0; i < list->n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s",
                                 i > 0 ? "|" : "", list->name[i]);
}

static void
test_names(void)
{
    char shown[64];
    size_t i;

    for (i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
        const struct name_case *c = &name_cases[i];

        tap_is_int(room_name_is_valid(c->name, c->len), c->is_valid,
                   "room_name_is_valid(\"%s\", %zu)",
                   tap_escape(shown, sizeof(shown), c->name, c->len),
                   c->len);
    }
    tap_ok(!room_name_is_valid(NULL, 3), "room_name_is_valid(NULL)");
}

static void
test_name_limits(void)
{
    char name[ROOM_NAME_MAX + 2];

    memset(name, 'r', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    tap_ok(room_name_is_valid(name, ROOM_NAME_MAX), "64-char name is valid");
    tap_ok(!room_name_is_valid(name, ROOM_NAME_MAX + 1),
           "65-char name is not valid");
}

static void
test_list_case(const struct list_case *c)
{
    char shown[64];
    struct room_list list;
    struct rc_error err = { 0 };
    char got[512];
    int rc = room_list_parse(c->text, &list, &err);

    tap_escape(shown, sizeof(shown), c->text, strlen(c->text));
    if (c->expected != NULL) {
        join_list(&list, got, sizeof(got));
        if (rc != 0)
            tap_diag("unexpected error: %s", err.message);
        tap_is_str(rc == 0 ? got : NULL, c->expected,
                   "room_list_parse(\"%s\")", shown);
        return;
    }
    if (!tap_ok(rc == -1 && list.n == 0 && err.status == 400 &&
                strcmp(err.code, "bad_request") == 0 &&
                strstr(err.message, c->in_message) != NULL,
                "room_list_parse(\"%s\") fails", shown)) {
        tap_diag("  expected 400 with message containing \"%s\"",
                 c->in_message);
        tap_diag("  got      rc %d, status %d, message \"%s\"", rc,
                 err.status, err.message);
    }
}

static void
test_list_cases(void)
{
    size_t i;

    for (i = 0; i < sizeof(list_cases) / sizeof(list_cases[0]); i++)
        test_list_case(&list_cases[i]);
}

/* Writes "r0,r1,...": n distinct names, then the first again dup times. */
static void
make_list(char *buf, size_t size, int n, int dup)
{
    size_t used = 0;
    int i;

    buf[0] = '\0';
    for (i = 0; i < n + dup; i++)
        used += (size_t)snprintf(buf + used, size - used, "%sr%d",
                                 i > 0 ? "," : "", i < n ? i : 0);
}

static void
test_list_limits(void)
{
    char text[2048];
    struct room_list list;
    struct rc_error err = { 0 };
    int rc;

    make_list(text, sizeof(text), ROOM_LIST_MAX, 10);
    rc = room_list_parse(text, &list, &err);
    tap_is_int(rc == 0 ? (int64_t)list.n : -1, ROOM_LIST_MAX,
               "64 distinct rooms and repeats are accepted");
    tap_is_str(rc == 0 ? list.name[63] : NULL, "r63",
               "the 64th room is kept in order");

    make_list(text, sizeof(text), ROOM_LIST_MAX + 1, 0);
    rc = room_list_parse(text, &list, &err);
    tap_ok(rc == -1 && err.status == 400 &&
           strstr(err.message, "too many") != NULL,
           "65 distinct rooms are refused");

    memset(text, 'q', ROOM_NAME_MAX);
    text[ROOM_NAME_MAX] = '\0';
    rc = room_list_parse(text, &list, &(struct rc_error){ 0 });
    tap_ok(rc == 0 && list.n == 1 && strcmp(list.name[0], text) == 0,
           "a list of one 64-char name is accepted");
}

/* Every prefix, copied to a buffer of its own size so that a read past
 * the NUL shows under AddressSanitizer, must parse or fail with a 400. */
static void
test_list_prefixes(const char *text)
{
    size_t len = strlen(text);
    size_t cut;
    bool is_clean = true;

    for (cut = 0; cut <= len && is_clean; cut++) {
        char *piece = malloc(cut + 1);
        struct room_list list;
        struct rc_error err = { 0 };
        int rc;

        if (piece == NULL)
            abort();
        memcpy(piece, text, cut);
        piece[cut] = '\0';
        rc = room_list_parse(piece, &list, &err);
        if (!(rc == 0 && err.status == 0 && list.n > 0) &&
            !(rc == -1 && err.status == 400 && err.message[0] != '\0')) {
            tap_diag("prefix \"%s\": rc %d, status %d", piece, rc,
                     err.status);
            is_clean = false;
        }
        free(piece);
    }
    tap_ok(is_clean, "every prefix of \"%s\" parses or fails cleanly", text);
}

int
main(void)
{
    test_names();
    test_name_limits();
    test_list_cases();
    test_list_limits();
    test_list_prefixes("general,random-1,x.y_z");
    test_list_prefixes("a,b,a");
    return tap_done();
}
