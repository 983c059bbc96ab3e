/*
 * room.c - checking room names and parsing room lists (see room.h).
 *
 * Every byte is checked against a fixed set, so a name that passes can go
 * into SQL parameters, log lines, cursors and JSON without escaping. Not
 * for URL decoding: callers hand over text that is already decoded.
 */
#include "room.h"

#include <string.h>

/* How much of a bad item an error message may quote. */
#define ECHO_CHARS 16

static bool
is_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

bool
room_name_is_valid(const char *name, size_t len)
{
    size_t i;

    if (name == NULL || len == 0 || len > ROOM_NAME_MAX)
        return false;
    for (i = 0; i < len; i++) {
        if (!is_name_char((unsigned char)name[i]))
            return false;
    }
    return true;
}

const char *
room_echo(char *buf, const char *text, size_t len)
{
    size_t i;
    size_t n = len < ECHO_CHARS ? len : ECHO_CHARS;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];

        buf[i] = is_name_char(c) || c == ':' ? (char)c : '?';
    }
    if (len > ECHO_CHARS) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static bool
list_contains(const struct room_list *list, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < list->n; i++) {
        if (strlen(list->name[i]) == len &&
            memcmp(list->name[i], name, len) == 0)
            return true;
    }
    return false;
}

/* Adds one item of the list to out, or says why it cannot be added. */
static int
list_add(struct room_list *out, const char *item, size_t len,
         struct rc_error *err)
{
    char echo[ROOM_ECHO_SIZE];

    if (len == 0)
        return rc_bad_request(err, "room list has an empty item; "
                              "separate room names with single commas");
    if (!room_name_is_valid(item, len))
        return rc_bad_request(err, "room name '%s' is not valid: use 1-64 "
                              "characters of A-Z a-z 0-9 _ - .",
                              room_echo(echo, item, len));
    if (list_contains(out, item, len))
        return 0;
    if (out->n == ROOM_LIST_MAX)
        return rc_bad_request(err, "too many rooms: at most %d per request",
                              ROOM_LIST_MAX);

    memcpy(out->name[out->n], item, len);
    out->name[out->n][len] = '\0';
    out->n++;
    return 0;
}

int
room_list_parse(const char *text, struct room_list *out,
                struct rc_error *err)
{
    const char *item = text;
    const char *comma;

    out->n = 0;
    if (text == NULL || text[0] == '\0')
        return rc_bad_request(err, "room list is empty; name at least one "
                              "room");

    /* Each pass consumes one item and its comma, so the loop ends. */
    for (;;) {
        comma = strchr(item, ',');
        if (list_add(out, item, comma ? (size_t)(comma - item)
                                      : strlen(item), err) < 0) {
            out->n = 0;
            return -1;
        }
        if (comma == NULL)
            return 0;
        item = comma + 1;
    }
}
