/*
 * log.h - one line per event on stderr, which the web server keeps.
 *
 * Every line reads "program[pid] level module: facts". Callers never pass
 * tokens, conninfo strings, query strings or envelope bodies; text that
 * came from a client goes through log_clean() first.
 */
#ifndef ROOMCAST_LOG_H
#define ROOMCAST_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the program name and the level (from ROOMCAST_LOG_LEVEL: error,
 * warn, info, debug; default info). Call once at start. */
void log_init(const char *program);

/* True when lines of this level are written: check before costly work. */
int log_enabled(enum log_level level);

void log_write(enum log_level level, const char *module, const char *fmt,
               ...) __attribute__((format(printf, 3, 4)));

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
    do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, __VA_ARGS__); } \
    while (0)

/* Copies at most size-1 bytes of client text into buf, turning control
 * characters and non-ASCII bytes into '?', and cutting long text with
 * "...". Returns buf. */
const char *log_clean(const char *text, size_t len, char *buf, size_t size);

#endif
