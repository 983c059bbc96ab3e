/*
 * error.c - filling the error record declared in error.h.
 */
#include "error.h"

#include <stdio.h>

int
rc_error_set(struct rc_error *err, int status, const char *code,
             const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err->status != 0)
        return -1;

    err->status = status;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -1;
}
