/*
 * log.c - the stderr logger declared in log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *log_program = "roomcast";
static enum log_level log_level = LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
log_init(const char *program)
{
    const char *env = getenv("ROOMCAST_LOG_LEVEL");

    log_program = program;
    if (env == NULL)
        return;
    for (int i = LOG_ERROR; i <= LOG_DEBUG; i++) {
        if (strcmp(env, level_names[i]) == 0)
            log_level = (enum log_level)i;
    }
}

int
log_enabled(enum log_level level)
{
    return level <= log_level;
}

void
log_write(enum log_level level, const char *module, const char *fmt, ...)
{
    char line[1024];
    int len;
    va_list ap;

    if (!log_enabled(level))
        return;

    /* One write per line, so lines of several processes sharing the
     * web server's error log do not interleave. */
    len = snprintf(line, sizeof(line), "%s[%d] %s %s: ", log_program,
                   (int)getpid(), level_names[level], module);
    va_start(ap, fmt);
    len += vsnprintf(line + len, sizeof(line) - (size_t)len, fmt, ap);
    va_end(ap);
    if (len > (int)sizeof(line) - 2)
        len = (int)sizeof(line) - 2;
    line[len++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)len) < 0)
        return;         /* nowhere left to report it */
}

const char *
log_clean(const char *text, size_t len, char *buf, size_t size)
{
    size_t n = 0;

    if (size == 0)
        return buf;
    for (size_t i = 0; i < len && n + 1 < size; i++) {
        unsigned char c = (unsigned char)text[i];

        if (n + 4 >= size && i + 1 < len) {
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }
        buf[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    buf[n] = '\0';
    return buf;
}
