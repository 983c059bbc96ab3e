/*
 * buf.h - a growable byte buffer for building responses and queues.
 *
 * Appends never fail silently: after an allocation failure the buffer is
 * marked and every later append is a no-op, so a caller checks once, at
 * the end, with buf_failed().
 */
#ifndef ROOMCAST_BUF_H
#define ROOMCAST_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
};

#define BUF_INIT {NULL, 0, 0, false}

void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
bool buf_failed(const struct buf *b);
void buf_free(struct buf *b);

#endif
