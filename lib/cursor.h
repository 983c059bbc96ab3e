/*
 * cursor.h - the resume point of a client: for each room, the last seq it
 * has, as the text "general:42,random:17".
 *
 * The FastCGI worker parses it from Last-Event-ID or ?cursor=, advances
 * it as messages go out, and writes it as each SSE event's id: and as the
 * long-poll "cursor"; the WebSocket daemon does the same for subscribe
 * frames. Clients treat the text as opaque and hand it back.
 *
 * Invariant: every entry of a struct cursor has a valid room name (see
 * room.h), each room at most once, and a seq in 0..CURSOR_SEQ_MAX, so
 * cursor_format() always writes text that cursor_parse() accepts and
 * reads back as the same cursor. The functions below keep it; code that
 * fills the struct by hand must keep it too.
 *
 * Pure functions: no I/O, no allocation, no state. Not for deciding what
 * a seq means (gaps, resets): the worker compares it with the store.
 */
#ifndef ROOMCAST_CURSOR_H
#define ROOMCAST_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "room.h"

#define CURSOR_ROOMS_MAX ROOM_LIST_MAX

/* The largest seq: 2^53-1, the largest integer a JavaScript client reads
 * exactly. */
#define CURSOR_SEQ_MAX INT64_C(9007199254740991)

/* Every cursor's text fits a buffer this size, NUL included: per room 64
 * characters of name, ':', 16 digits and a comma or the NUL. */
#define CURSOR_TEXT_SIZE (CURSOR_ROOMS_MAX * (ROOM_NAME_MAX + 18))

struct cursor_pos {
    char room[ROOM_NAME_MAX + 1];
    int64_t seq;
};

/* Rooms in the order they were first added (or parsed). */
struct cursor {
    size_t n;
    struct cursor_pos pos[CURSOR_ROOMS_MAX];
};

/* Makes c the empty cursor. */
void cursor_init(struct cursor *c);

/*
 * Parses len bytes of text (no NUL needed) into out: "room:seq" items
 * separated by commas, seq in decimal without sign, spaces or leading
 * zeros, 0..CURSOR_SEQ_MAX. The empty text is the empty cursor. Returns
 * 0, or -1 with a 400 in err (when not NULL) for an empty item, a missing
 * colon, an invalid room, a bad seq, a room named twice or more than
 * CURSOR_ROOMS_MAX rooms; the message quotes at most a sanitized piece of
 * the bad item (room_echo()). On error out is the empty cursor.
 */
__attribute__((warn_unused_result))
int cursor_parse(const char *text, size_t len, struct cursor *out,
                 struct rc_error *err);

/* The seq of room, or -1 when c has no entry for it. */
int64_t cursor_get(const struct cursor *c, const char *room);

/*
 * Sets room's seq, adding the room at the end when absent. Returns 0, or
 * -1 with c unchanged when c is full, room is not a valid room name or seq
 * is outside 0..CURSOR_SEQ_MAX.
 */
__attribute__((warn_unused_result))
int cursor_set(struct cursor *c, const char *room, int64_t seq);

/*
 * For each room of src, dst keeps the larger seq; rooms dst lacks are
 * added at its end, in src's order. Returns 0, or -1 with dst unchanged
 * when the rooms added would not fit.
 */
__attribute__((warn_unused_result))
int cursor_merge(struct cursor *dst, const struct cursor *src);

/*
 * Writes "room:seq,..." in c's order into buf and NUL-terminates it,
 * cutting it when size is too small (buf may be NULL when size is 0).
 * Returns the length of the whole text, without the NUL, as snprintf
 * does: a result >= size means buf holds a cut text. A buffer of
 * CURSOR_TEXT_SIZE bytes is always enough.
 */
size_t cursor_format(const struct cursor *c, char *buf, size_t size);

#endif
