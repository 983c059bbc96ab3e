/*
 * test_record.c - FastCGI record framing and the abort reader (record.c),
 * and query-string parameters (query.c).
 */
#include <stdlib.h>
#include <string.h>

#include "../../fcgi/record.h"
#include "query.h"
#include "tap.h"

static void
test_header(void)
{
    unsigned char h[RECORD_HEADER_LEN];
    static const unsigned char want[] = {1, 6, 0x12, 0x34, 0xff, 0xff, 0, 0};

    record_header(h, RECORD_STDOUT, 0x1234, 65535);
    tap_ok(memcmp(h, want, sizeof(want)) == 0,
           "STDOUT header: version, type, id and length big-endian");
}

static void
test_end(void)
{
    unsigned char e[RECORD_END_LEN];

    record_end(e, 7);
    tap_ok(e[1] == RECORD_STDOUT && e[4] == 0 && e[5] == 0 && e[3] == 7,
           "end: an empty STDOUT record first");
    tap_ok(e[9] == RECORD_END_REQUEST && e[13] == 8 && e[11] == 7 &&
           e[16 + 4] == 0, "end: END_REQUEST, 8 bytes, REQUEST_COMPLETE");
}

/* A STDIN record with content and padding, an empty STDIN, then ABORT. */
static size_t
abort_stream(unsigned char *buf)
{
    size_t n = 0;

    record_header(buf, RECORD_STDIN, 1, 3);
    buf[6] = 5;                     /* padding */
    n = 8;
    memcpy(buf + n, "abc\0\0\0\0\0", 8);
    n += 8;
    record_header(buf + n, RECORD_STDIN, 1, 0);
    n += 8;
    record_header(buf + n, RECORD_ABORT_REQUEST, 1, 0);
    return n + 8;
}

static void
test_reader_whole_and_bytewise(void)
{
    unsigned char buf[64];
    size_t len = abort_stream(buf);
    struct record_reader rd = {0};
    int got = 0;

    tap_is_int(record_read(&rd, buf, len), 1, "abort seen when fed whole");

    memset(&rd, 0, sizeof(rd));
    for (size_t i = 0; i < len && got == 0; i++)
        got = record_read(&rd, buf + i, 1);
    tap_is_int(got, 1, "abort seen when fed one byte at a time");

    memset(&rd, 0, sizeof(rd));
    tap_is_int(record_read(&rd, buf, len - 8), 0,
               "records without an abort are skipped quietly");
    tap_is_int(record_read(&rd, (const unsigned char *)"GET / HTTP/1.1", 14),
               -1, "bytes that are not records are refused");
}

static void
test_query(void)
{
    char v[32];
    int64_t n = 0;

    tap_is_int(query_get("rooms=a%2Cb&cursor=a:1", "rooms", v, sizeof(v)),
               3, "percent-decoded length");
    tap_is_str(v, "a,b", "percent-decoded value");
    tap_is_int(query_get("xrooms=1&rooms=2", "rooms", v, sizeof(v)), 1,
               "a name that only ends like the wanted one is skipped");
    tap_is_str(v, "2", "the exact name is found");
    tap_is_int(query_get("a=1", "rooms", v, sizeof(v)), -1, "absent: -1");
    tap_is_int(query_get("a=%00", "a", v, sizeof(v)), -2,
               "an encoded NUL is refused");
    tap_is_int(query_get("a=%zz+%4", "a", v, sizeof(v)), 6,
               "bad escapes stay as they are");
    tap_is_str(v, "%zz %4", "'+' is a space");
    tap_is_int(query_get("a=0123456789", "a", v, 8), -2,
               "a value that does not fit is refused");
    tap_is_int(query_get_int("limit=10", "limit", 1, 1000, &n), 1,
               "integer in range");
    tap_is_int(n, 10, "integer value");
    tap_is_int(query_get_int("limit=-1", "limit", 0, 1000, &n), -1,
               "negative refused");
    tap_is_int(query_get_int("limit=10x", "limit", 0, 1000, &n), -1,
               "trailing garbage refused");
    tap_is_int(query_get_int("limit=1001", "limit", 0, 1000, &n), -1,
               "over the maximum refused");
    tap_is_int(query_get_int("x=1", "limit", 0, 1000, &n), 0,
               "absent integer: 0");
}

int
main(void)
{
    test_header();
    test_end();
    test_reader_whole_and_bytewise();
    test_query();
    return tap_done();
}
