/*
 * fuzz_envelope.c - libFuzzer target for the envelope codec.
 *
 * Feeds arbitrary bytes to envelope_parse_publish() and aborts when a
 * result breaks what envelope.h promises: an accepted body has a valid,
 * unreserved type, a valid or empty id, and data that is JSON on one line
 * and reads back to the same text; an error is a 400 (or a 500 for lack
 * of memory) with a printable message. The same bytes also go, as text,
 * into an ack's id and ts and an error's message, whose output must be
 * JSON. Not part of make: build and run it by hand, from the top of the
 * checkout:
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -Ilib tests/fuzz/fuzz_envelope.c lib/envelope.c lib/buf.c \
 *       lib/error.c $(pkg-config --cflags --libs jansson) \
 *       -o build/fuzz_envelope
 *   build/fuzz_envelope -max_total_time=60
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_error(const struct rc_error *err)
{
    const char *s;

    if ((err->status != 400 && err->status != 500) ||
        err->message[0] == '\0')
        abort();
    for (s = err->message; *s != '\0'; s++) {
        if (*s < 0x20 || *s > 0x7e)
            abort();
    }
}

/* Must be one line of JSON; returns it parsed. */
static json_t *
load_line(const char *text)
{
    json_t *value;

    if (text == NULL || strpbrk(text, "\r\n") != NULL)
        abort();
    value = json_loads(text, JSON_DECODE_ANY, NULL);
    if (value == NULL)
        abort();
    return value;
}

/* Encoding is stable: data wrapped in a new body comes back unchanged. */
static void
check_data(const char *data)
{
    size_t len = strlen(data) + 16;
    char *body = malloc(len);
    struct publish_req again;

    if (body == NULL)
        return;
    snprintf(body, len, "{\"data\":%s}", data);
    if (envelope_parse_publish(body, strlen(body), &again, NULL) != 0 ||
        strcmp(again.data, data) != 0)
        abort();
    publish_req_free(&again);
    free(body);
}

static void
fuzz_publish(const char *body, size_t len)
{
    struct publish_req req;
    struct rc_error err = { 0 };

    if (envelope_parse_publish(body, len, &req, &err) != 0) {
        if (req.data != NULL)
            abort();
        check_error(&err);
        return;
    }
    if (!envelope_type_is_valid(req.type) ||
        envelope_type_is_reserved(req.type) ||
        (req.id[0] != '\0' && !envelope_id_is_valid(req.id)))
        abort();
    json_decref(load_line(req.data));
    check_data(req.data);
    publish_req_free(&req);
}

static void
fuzz_builders(const char *text, size_t len)
{
    struct rc_error err = { 0 };
    char *copy = malloc(len + 1);
    char *out;

    if (copy == NULL)
        return;
    memcpy(copy, text, len);
    copy[len] = '\0';

    /* NULL is allowed only for text that is not UTF-8. */
    out = envelope_ack(copy, "general", 1, copy, len % 2 == 0);
    if (out != NULL)
        json_decref(load_line(out));
    free(out);

    rc_error_set(&err, 400, "bad_request", "%s", copy);
    out = envelope_error(&err);
    json_decref(load_line(out));
    free(out);
    free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_publish((const char *)data, size);
    fuzz_builders((const char *)data, size);
    return 0;
}
