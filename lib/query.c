/*
 * query.c - query-string parameters (see query.h).
 */
#include "query.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int
decode(const char *s, size_t len, char *out, size_t size)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < len && hex_value(s[i + 1]) >= 0 &&
                   hex_value(s[i + 2]) >= 0) {
            c = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        }
        if (c == '\0' || n + 1 >= size)
            return -2;
        out[n++] = c;
    }
    out[n] = '\0';
    return (int)n;
}

int
query_get(const char *query, const char *name, char *out, size_t size)
{
    size_t name_len = strlen(name);
    const char *p = query;

    if (query == NULL || size == 0)
        return -1;
    while (*p != '\0') {
        const char *end = strchr(p, '&');
        size_t item_len = end ? (size_t)(end - p) : strlen(p);

        if (item_len > name_len && strncmp(p, name, name_len) == 0 &&
            p[name_len] == '=')
            return decode(p + name_len + 1, item_len - name_len - 1, out,
                          size);
        if (item_len == name_len && strncmp(p, name, name_len) == 0) {
            out[0] = '\0';
            return 0;
        }
        p += item_len;
        if (*p == '&')
            p++;
    }
    return -1;
}

int
query_get_int(const char *query, const char *name, int64_t min, int64_t max,
              int64_t *out)
{
    char text[32];
    char *end;
    long long v;
    int n = query_get(query, name, text, sizeof(text));

    if (n == -1)
        return 0;
    if (n <= 0 || text[0] == '-' || text[0] == '+' || text[0] == ' ')
        return -1;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 1;
}
