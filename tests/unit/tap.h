/*
 * tap.h - the few TAP helpers the C unit tests share.
 *
 * Each check prints one "ok N - name" or "not ok N - name" line; a failed
 * comparison also prints what was expected and what came, as "#" lines on
 * stderr so that prove shows them. tap_done() prints the plan "1..N" last
 * and gives the exit status. For tests/unit/test_*.c only: one test
 * program per file, so the counters below are per program. Not a test
 * runner: prove runs the programs.
 */
#ifndef ROOMCAST_TAP_H
#define ROOMCAST_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static struct {
    int run;
    int failed;
} tap_counts;

static inline __attribute__((format(printf, 2, 0))) void
tap_vline(bool is_ok, const char *fmt, va_list ap)
{
    tap_counts.run++;
    if (!is_ok)
        tap_counts.failed++;
    printf("%s %d - ", is_ok ? "ok" : "not ok", tap_counts.run);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
}

/* A "# " line on stderr; the text is written as given. */
static inline __attribute__((format(printf, 1, 2))) void
tap_diag(const char *fmt, ...)
{
    va_list ap;

    fputs("# ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Writes s to stderr in double quotes, with bytes outside 0x20..0x7e and
 * the quote and backslash as C escapes, so a failure shows every byte. */
static inline void
tap_dump(const char *label, const char *s)
{
    fprintf(stderr, "#   %-8s ", label);
    if (s == NULL) {
        fputs("(null)\n", stderr);
        return;
    }
    fputc('"', stderr);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(stderr, "\\%c", c);
        else if (c < 0x20 || c > 0x7e)
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
    fputs("\"\n", stderr);
}

/* Copies len bytes of s into buf as a C string literal's body (quote,
 * backslash and bytes outside 0x20..0x7e escaped), cut to fit size, so a
 * test name can show any input on one TAP line. Returns buf. */
static inline const char *
tap_escape(char *buf, size_t size, const char *s, size_t len)
{
    size_t used = 0;
    size_t i;

    buf[0] = '\0';
    for (i = 0; i < len && used + 5 < size; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\')
            used += (size_t)snprintf(buf + used, size - used, "\\%c", c);
        else if (c < 0x20 || c > 0x7e)
            used += (size_t)snprintf(buf + used, size - used, "\\x%02x", c);
        else
            buf[used++] = (char)c;
    }
    buf[used] = '\0';
    return buf;
}

static inline __attribute__((format(printf, 2, 3))) bool
tap_ok(bool is_ok, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tap_vline(is_ok, fmt, ap);
    va_end(ap);
    return is_ok;
}

/* Passes when both strings are equal (two NULLs are equal). */
static inline __attribute__((format(printf, 3, 4))) bool
tap_is_str(const char *got, const char *expected, const char *fmt, ...)
{
    va_list ap;
    bool is_ok;

    if (got == NULL || expected == NULL)
        is_ok = got == expected;
    else
        is_ok = strcmp(got, expected) == 0;
    va_start(ap, fmt);
    tap_vline(is_ok, fmt, ap);
    va_end(ap);
    if (!is_ok) {
        tap_dump("expected", expected);
        tap_dump("got", got);
    }
    return is_ok;
}

static inline __attribute__((format(printf, 3, 4))) bool
tap_is_int(int64_t got, int64_t expected, const char *fmt, ...)
{
    va_list ap;
    bool is_ok = got == expected;

    va_start(ap, fmt);
    tap_vline(is_ok, fmt, ap);
    va_end(ap);
    if (!is_ok) {
        tap_diag("  expected %" PRId64, expected);
        tap_diag("  got      %" PRId64, got);
    }
    return is_ok;
}

/* Prints the plan; returns the exit status for main(). */
static inline int
tap_done(void)
{
    printf("1..%d\n", tap_counts.run);
    /* Before exit: a leak report at exit must not swallow the lines. */
    fflush(stdout);
    if (tap_counts.failed > 0)
        tap_diag("failed %d of %d", tap_counts.failed, tap_counts.run);
    return tap_counts.failed > 0 ? 1 : 0;
}

#endif
