/*
 * envelope.h - the JSON a client sends to publish, and the JSON objects
 * the server itself writes: ack, error, and the gap and reset events.
 *
 * The FastCGI worker parses every publish body here before it calls the
 * store, and builds its acks, error bodies and system events here; the
 * WebSocket daemon does the same for its frames. Stored messages are not
 * built here: PostgreSQL writes their envelope (roomcast.envelope()), so
 * every transport sends the same bytes.
 *
 * Every text returned is compact JSON on one line (no raw CR or LF), is
 * allocated with malloc and belongs to the caller, who releases it with
 * free(). Pure functions otherwise: no I/O, no state; any thread.
 */
#ifndef ROOMCAST_ENVELOPE_H
#define ROOMCAST_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define ENVELOPE_TYPE_MAX 32
#define ENVELOPE_ID_MAX 64

/* True for 1-32 characters of a-z 0-9 _ - . (NULL is never valid). */
bool envelope_type_is_valid(const char *type);

/* True for the types only the server sends: ack, error, presence, typing
 * and system. Clients may not publish them. */
bool envelope_type_is_reserved(const char *type);

/* True for 1-64 characters of printable ASCII, 0x20..0x7e. */
bool envelope_id_is_valid(const char *id);

/* A parsed publish body. */
struct publish_req {
    char type[ENVELOPE_TYPE_MAX + 1];   /* "message" when absent */
    char id[ENVELOPE_ID_MAX + 1];       /* "" when absent */
    char *data;     /* compact JSON text of data ("null" when absent) */
};

/*
 * Parses len bytes of an HTTP publish body, {"type":..,"id":..,"data":..}
 * (no NUL needed). Other top-level fields are ignored.
 *
 * data is written again compact: the same JSON value without whitespace
 * between tokens (so without raw newlines), object members in their
 * order, strings as UTF-8 with JSON's own escapes for quote, backslash and
 * control characters, integers as given, and each real number in the
 * fewest digits that read back as the same double (1.10 becomes 1.1; a
 * real keeps a ".0" or an exponent so that it stays a real).
 *
 * Returns 0, or -1 with err set (when not NULL): 400 when the body is
 * empty, is not JSON (the message gives line and column), repeats a key,
 * holds \u0000 or an integer outside 64 bits, nests deeper than 2048, is
 * not an object, or when type or id is not a string, not valid (see
 * above) or, for type, reserved; 500 when memory runs out. Every 400
 * names the field or place at fault. On error out->data is NULL, so
 * publish_req_free() is safe either way; on success the caller must call
 * it.
 */
__attribute__((warn_unused_result))
int envelope_parse_publish(const char *body, size_t len,
                           struct publish_req *out, struct rc_error *err);

/* Frees req->data and sets it to NULL. */
void publish_req_free(struct publish_req *req);

/*
 * {"type":"ack","id":..,"room":..,"seq":..,"ts":..}, then
 * "duplicate":true when is_duplicate. id is left out when NULL or empty.
 * ts_text is the time as PostgreSQL printed it ("1764777600.123") and is
 * written as a JSON number, digit for digit. It must be a plain decimal:
 * an optional '-', 1-15 digits without a leading zero, optionally '.'
 * and 1-9 digits; other text (or NULL) is written as null instead. room
 * must not be NULL.
 * Returns NULL when memory runs out or a string is not UTF-8.
 */
__attribute__((warn_unused_result))
char *envelope_ack(const char *id, const char *room, int64_t seq,
                   const char *ts_text, bool is_duplicate);

/*
 * {"type":"error","code":..,"message":..} from err. An err that is NULL
 * or not set gives code "internal", message "internal error". A message
 * that is not valid UTF-8 (a cut multibyte character) goes out with its
 * bytes outside ASCII turned into '?'. NULL when memory runs out.
 */
__attribute__((warn_unused_result))
char *envelope_error(const struct rc_error *err);

/*
 * The ephemeral system events (no seq, never stored):
 * {"type":"system","room":R,"data":{"event":"gap","room":R,"from":F,"to":T}}
 * says that seqs F..T of room R are gone, and
 * {"type":"system","room":R,"data":{"event":"reset","room":R}} that the
 * stream of R goes on from now. NULL when memory runs out or room is NULL
 * or not UTF-8.
 */
__attribute__((warn_unused_result))
char *envelope_gap(const char *room, int64_t from_seq, int64_t to_seq);

__attribute__((warn_unused_result))
char *envelope_reset(const char *room);

#endif
