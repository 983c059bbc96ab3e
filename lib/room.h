/*
 * room.h - room names and the comma-separated room lists of a request.
 *
 * A room name is 1 to 64 characters of A-Z a-z 0-9 _ - . (the contract's
 * rule). The FastCGI worker and the WebSocket daemon check every name a
 * client sends here before it reaches SQL, and parse ?rooms=general,random
 * with room_list_parse(). The cursor codec builds on the same rule.
 * Pure functions: no I/O, no allocation, no state; callable from any
 * thread. Not for permissions: whether a token may use a room is auth's
 * business.
 */
#ifndef ROOMCAST_ROOM_H
#define ROOMCAST_ROOM_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define ROOM_NAME_MAX 64
#define ROOM_LIST_MAX 64        /* rooms per request */

/* Buffer size for room_echo(): 16 characters, "..." and the NUL. */
#define ROOM_ECHO_SIZE 20

/* The rooms of one request, in the order first named, each once. */
struct room_list {
    size_t n;
    char name[ROOM_LIST_MAX][ROOM_NAME_MAX + 1];
};

/* True when the len bytes at name are 1..64 chars of A-Z a-z 0-9 _ - .
 * name need not be NUL-terminated; NULL is never valid. */
bool room_name_is_valid(const char *name, size_t len);

/*
 * Parses "general,random" into out. A name given twice is kept once, at
 * its first place. Returns 0, or -1 with a 400 in err (when err is not
 * NULL) for an empty text, an empty item, an invalid name or more than
 * ROOM_LIST_MAX distinct rooms; the message quotes the bad item through
 * room_echo(). On error out->n is 0. text must be NUL-terminated; NULL
 * counts as empty.
 */
__attribute__((warn_unused_result))
int room_list_parse(const char *text, struct room_list *out,
                    struct rc_error *err);

/*
 * Writes into buf a short copy of untrusted text that is safe to put in
 * an error message or a log line: at most 16 characters, any character
 * other than A-Z a-z 0-9 _ - . : turned into '?', and "..." when the text
 * was longer. buf must hold ROOM_ECHO_SIZE bytes. Returns buf.
 */
const char *room_echo(char *buf, const char *text, size_t len);

#endif
