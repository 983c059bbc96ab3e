/*
 * error.h - the error record that lib/ functions fill for their callers.
 *
 * A lib/ function that can fail for a reason the client must hear returns
 * a negative number and, when the caller passed a record, says what went
 * wrong in it: the HTTP status and code the contract names, and one short
 * sentence the client can act on. The first error set wins, so the root
 * cause survives a chain of callers. Each program turns the record into
 * the contract's JSON error in one place.
 */
#ifndef ROOMCAST_ERROR_H
#define ROOMCAST_ERROR_H

#include <stdarg.h>

struct rc_error {
    int status;             /* HTTP status, 0 while no error is set */
    const char *code;       /* "bad_request", "too_large", ... (static) */
    char message[200];      /* for the client: no SQL, no secrets */
};

/* Sets err (when not NULL and not already set) and returns -1. */
int rc_error_set(struct rc_error *err, int status, const char *code,
                 const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Shorthands for the statuses the codecs use. */
#define rc_bad_request(err, ...) \
    rc_error_set((err), 400, "bad_request", __VA_ARGS__)
#define rc_too_large(err, ...) \
    rc_error_set((err), 413, "too_large", __VA_ARGS__)
#define rc_unavailable(err, ...) \
    rc_error_set((err), 503, "unavailable", __VA_ARGS__)
#define rc_internal(err, ...) \
    rc_error_set((err), 500, "internal", __VA_ARGS__)

#endif
