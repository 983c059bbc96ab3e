/*
 * query.h - reading one parameter of a URL query string.
 *
 * Pure: no I/O. Used by every endpoint that takes ?rooms=, ?cursor= and
 * the like.
 */
#ifndef ROOMCAST_QUERY_H
#define ROOMCAST_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Finds name in query ("a=1&b=2") and writes its value, percent-decoded
 * and '+' as space, NUL-terminated, into out. Returns the decoded length,
 * -1 when absent, -2 when the value does not fit or decodes to a NUL. */
int query_get(const char *query, const char *name, char *out, size_t size);

/* An integer parameter within [min, max]: 1 when present and valid, 0
 * when absent (out untouched), -1 when present but not a valid number. */
int query_get_int(const char *query, const char *name, int64_t min,
                  int64_t max, int64_t *out);

#endif
