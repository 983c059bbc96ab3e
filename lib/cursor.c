/*
 * cursor.c - parsing, updating and writing cursors (see cursor.h).
 *
 * The text comes from clients (Last-Event-ID, ?cursor=), so the parser
 * reads only the bytes it is given, accepts a single spelling of each
 * cursor and keeps no partial result on error. A cursor holds at most 64
 * rooms, so lookups are linear scans. Not for URL decoding.
 */
#include "cursor.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void
cursor_init(struct cursor *c)
{
    c->n = 0;
}

/* Index of the room given by its len bytes, or -1. */
static int
find_room(const struct cursor *c, const char *room, size_t len)
{
    size_t i;

    for (i = 0; i < c->n; i++) {
        if (strncmp(c->pos[i].room, room, len) == 0 &&
            c->pos[i].room[len] == '\0')
            return (int)i;
    }
    return -1;
}

/* Decimal digits, no sign, no leading zero, at most CURSOR_SEQ_MAX. A
 * single spelling per number keeps parse and format exact inverses. */
static bool
parse_seq(const char *s, size_t len, int64_t *seq)
{
    int64_t v = 0;
    size_t i;

    if (len == 0 || (len > 1 && s[0] == '0'))
        return false;
    for (i = 0; i < len; i++) {
        int digit = s[i] - '0';

        if (digit < 0 || digit > 9 || v > (CURSOR_SEQ_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    *seq = v;
    return true;
}

static void
append_pos(struct cursor *c, const char *room, size_t len, int64_t seq)
{
    struct cursor_pos *p = &c->pos[c->n++];

    memcpy(p->room, room, len);
    p->room[len] = '\0';
    p->seq = seq;
}

/* Adds one "room:seq" item to out, or says why it cannot. */
static int
parse_item(const char *item, size_t len, struct cursor *out,
           struct rc_error *err)
{
    char echo[ROOM_ECHO_SIZE];
    const char *colon = memchr(item, ':', len);
    size_t room_len = colon ? (size_t)(colon - item) : 0;
    int64_t seq;

    if (len == 0)
        return rc_bad_request(err, "cursor has an empty item; separate "
                              "room:seq items with single commas");
    if (colon == NULL)
        return rc_bad_request(err, "cursor item '%s' has no ':'; write "
                              "room:seq", room_echo(echo, item, len));
    if (!room_name_is_valid(item, room_len))
        return rc_bad_request(err, "cursor room '%s' is not a valid room "
                              "name", room_echo(echo, item, room_len));
    if (!parse_seq(colon + 1, len - room_len - 1, &seq))
        return rc_bad_request(err, "cursor seq of room '%s' must be a "
                              "decimal number from 0 to %" PRId64,
                              room_echo(echo, item, room_len),
                              CURSOR_SEQ_MAX);
    if (find_room(out, item, room_len) >= 0)
        return rc_bad_request(err, "cursor names room '%s' twice",
                              room_echo(echo, item, room_len));
    if (out->n == CURSOR_ROOMS_MAX)
        return rc_bad_request(err, "cursor has more than %d rooms",
                              CURSOR_ROOMS_MAX);

    append_pos(out, item, room_len, seq);
    return 0;
}

int
cursor_parse(const char *text, size_t len, struct cursor *out,
             struct rc_error *err)
{
    const char *end = text + len;
    const char *item = text;
    const char *comma;

    cursor_init(out);
    if (len == 0)
        return 0;

    /* Each pass consumes one item and its comma, so the loop ends. */
    for (;;) {
        comma = memchr(item, ',', (size_t)(end - item));
        if (parse_item(item, (size_t)((comma ? comma : end) - item), out,
                       err) < 0) {
            cursor_init(out);
            return -1;
        }
        if (comma == NULL)
            return 0;
        item = comma + 1;
    }
}

int64_t
cursor_get(const struct cursor *c, const char *room)
{
    int i = find_room(c, room, strlen(room));

    return i < 0 ? -1 : c->pos[i].seq;
}

int
cursor_set(struct cursor *c, const char *room, int64_t seq)
{
    size_t len = 0;
    int i;

    /* Stop counting one past the limit: room may be any long string. */
    while (len <= ROOM_NAME_MAX && room[len] != '\0')
        len++;
    if (!room_name_is_valid(room, len) || seq < 0 || seq > CURSOR_SEQ_MAX)
        return -1;
    i = find_room(c, room, len);
    if (i >= 0) {
        c->pos[i].seq = seq;
        return 0;
    }
    if (c->n == CURSOR_ROOMS_MAX)
        return -1;
    append_pos(c, room, len, seq);
    return 0;
}

int
cursor_merge(struct cursor *dst, const struct cursor *src)
{
    size_t missing = 0;
    size_t i;

    /* Count first, so that a merge that cannot fit changes nothing. */
    for (i = 0; i < src->n; i++) {
        if (find_room(dst, src->pos[i].room, strlen(src->pos[i].room)) < 0)
            missing++;
    }
    if (dst->n + missing > CURSOR_ROOMS_MAX)
        return -1;

    for (i = 0; i < src->n; i++) {
        const struct cursor_pos *p = &src->pos[i];
        int at = find_room(dst, p->room, strlen(p->room));

        if (at < 0)
            append_pos(dst, p->room, strlen(p->room), p->seq);
        else if (p->seq > dst->pos[at].seq)
            dst->pos[at].seq = p->seq;
    }
    return 0;
}

size_t
cursor_format(const struct cursor *c, char *buf, size_t size)
{
    size_t need = 0;
    size_t i;

    if (size > 0)
        buf[0] = '\0';
    for (i = 0; i < c->n; i++) {
        /* snprintf stops at the end of buf and still counts the rest. */
        size_t left = need < size ? size - need : 0;
        int n = snprintf(left > 0 ? buf + need : NULL, left,
                         "%s%s:%" PRId64, i > 0 ? "," : "",
                         c->pos[i].room, c->pos[i].seq);

        if (n > 0)
            need += (size_t)n;
    }
    return need;
}
