/*
 * fuzz_cursor.c - libFuzzer target for the cursor and room list parsers.
 *
 * Feeds arbitrary bytes to cursor_parse() and, as a NUL-terminated copy,
 * to room_list_parse(), and aborts when a result breaks what cursor.h and
 * room.h promise: an accepted cursor writes back as exactly its input,
 * every room accepted is valid and listed once, every error is a 400 with
 * a printable message. Not part of make: build and run it by hand, from
 * the top of the checkout:
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -Ilib tests/fuzz/fuzz_cursor.c lib/cursor.c lib/room.c lib/error.c \
 *       -o build/fuzz_cursor
 *   build/fuzz_cursor -max_total_time=60
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "room.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_error(const struct rc_error *err)
{
    const char *s;

    if (err->status != 400 || err->message[0] == '\0')
        abort();
    for (s = err->message; *s != '\0'; s++) {
        if (*s < 0x20 || *s > 0x7e)
            abort();
    }
}

static void
fuzz_cursor(const char *text, size_t len)
{
    static const char other_text[] = "general:5,random:0";
    struct cursor c;
    struct cursor other;
    struct rc_error err = { 0 };
    char out[CURSOR_TEXT_SIZE];
    size_t out_len;

    if (cursor_parse(text, len, &c, &err) != 0) {
        if (c.n != 0)
            abort();
        check_error(&err);
        return;
    }

    /* One spelling per cursor: writing it back gives the input. */
    out_len = cursor_format(&c, out, sizeof(out));
    if (out_len != len || memcmp(out, text, len) != 0)
        abort();

    if (cursor_parse(other_text, strlen(other_text), &other, NULL) != 0)
        abort();
    if (cursor_merge(&other, &c) == 0) {
        out_len = cursor_format(&other, out, sizeof(out));
        if (out_len >= sizeof(out) ||
            cursor_parse(out, out_len, &c, NULL) != 0)
            abort();
    }
}

static void
fuzz_room_list(const char *text, size_t len)
{
    struct room_list list;
    struct rc_error err = { 0 };
    char *copy = malloc(len + 1);
    size_t i;
    size_t j;

    if (copy == NULL)
        return;
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (room_list_parse(copy, &list, &err) != 0) {
        if (list.n != 0)
            abort();
        check_error(&err);
    } else {
        if (list.n == 0 || list.n > ROOM_LIST_MAX)
            abort();
        for (i = 0; i < list.n; i++) {
            if (!room_name_is_valid(list.name[i], strlen(list.name[i])))
                abort();
            for (j = 0; j < i; j++) {
                if (strcmp(list.name[i], list.name[j]) == 0)
                    abort();
            }
        }
    }
    free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_cursor((const char *)data, size);
    fuzz_room_list((const char *)data, size);
    return 0;
}
