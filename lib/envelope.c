/*
 * envelope.c - publish bodies in, server envelopes out (see envelope.h).
 *
 * jansson reads the body and builds the server's objects. The data of a
 * publish is written back by our own small encoder rather than by
 * json_dumps(): jansson prints every real with 17 digits, so a client's
 * 0.1 would be stored and sent as 0.10000000000000001. Not for stored
 * messages, whose envelope PostgreSQL writes.
 */
#include "envelope.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

static const char *const reserved_types[] = {
    "ack", "error", "presence", "typing", "system",
};

bool
envelope_type_is_valid(const char *type)
{
    size_t i;

    if (type == NULL)
        return false;
    for (i = 0; type[i] != '\0'; i++) {
        char c = type[i];

        if (i == ENVELOPE_TYPE_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return i > 0;
}

bool
envelope_type_is_reserved(const char *type)
{
    size_t i;

    if (type == NULL)
        return false;
    for (i = 0; i < sizeof(reserved_types) / sizeof(reserved_types[0]); i++) {
        if (strcmp(type, reserved_types[i]) == 0)
            return true;
    }
    return false;
}

bool
envelope_id_is_valid(const char *id)
{
    size_t i;

    if (id == NULL)
        return false;
    for (i = 0; id[i] != '\0'; i++) {
        if (i == ENVELOPE_ID_MAX || id[i] < 0x20 || id[i] > 0x7e)
            return false;
    }
    return i > 0;
}

/* ---- writing data back compact ---- */

static void
encode_string(struct buf *b, const char *s, size_t len)
{
    size_t i;
    size_t run = 0;         /* start of the bytes not yet copied */

    buf_append(b, "\"", 1);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':  buf_append(b, "\\\"", 2); break;
        case '\\': buf_append(b, "\\\\", 2); break;
        case '\b': buf_append(b, "\\b", 2); break;
        case '\f': buf_append(b, "\\f", 2); break;
        case '\n': buf_append(b, "\\n", 2); break;
        case '\r': buf_append(b, "\\r", 2); break;
        case '\t': buf_append(b, "\\t", 2); break;
        default:   buf_printf(b, "\\u%04x", c); break;
        }
    }
    buf_append(b, s + run, len - run);
    buf_append(b, "\"", 1);
}

/* Drops the '+' and leading zeros of an exponent: 1e+07 -> 1e7. */
static void
tidy_exponent(char *text)
{
    char *e = strchr(text, 'e');
    char *from;
    char *to;

    if (e == NULL)
        return;
    to = e + 1;
    from = e + 1;
    if (*from == '-')
        to = ++from;
    else if (*from == '+')
        from++;
    while (*from == '0' && from[1] != '\0')
        from++;
    memmove(to, from, strlen(from) + 1);
}

/*
 * The fewest significant digits that strtod reads back as the same
 * double, written as %g writes them, but in plain decimals for exponents
 * -4..16 (100.0, not 1e2), as JavaScript and PostgreSQL write them. Both
 * calls run in the process's locale; a ',' decimal point becomes '.'.
 */
static void
encode_real(struct buf *b, double value)
{
    char text[40];
    char *comma;
    int digits;
    int exponent;

    if (!isfinite(value)) {
        buf_append(b, "null", 4);
        return;
    }
    for (digits = 1; digits < 17; digits++) {
        snprintf(text, sizeof(text), "%.*e", digits - 1, value);
        if (strtod(text, NULL) == value)
            break;
    }
    exponent = atoi(strchr(text, 'e') + 1);
    if (exponent >= -4 && exponent < 17 && exponent + 1 > digits)
        digits = exponent + 1;

    snprintf(text, sizeof(text), "%.*g", digits, value);
    comma = strchr(text, ',');
    if (comma != NULL)
        *comma = '.';
    tidy_exponent(text);
    if (strpbrk(text, ".e") == NULL)
        strcat(text, ".0");
    buf_puts(b, text);
}

/* Recursion is bounded: jansson refuses input nested deeper than 2048. */
static void
encode_value(struct buf *b, json_t *value)
{
    const char *key;
    json_t *item;
    size_t i;

    switch (json_typeof(value)) {
    case JSON_OBJECT:
        buf_append(b, "{", 1);
        i = 0;
        json_object_foreach(value, key, item) {
            if (i++ > 0)
                buf_append(b, ",", 1);
            encode_string(b, key, strlen(key));
            buf_append(b, ":", 1);
            encode_value(b, item);
        }
        buf_append(b, "}", 1);
        break;
    case JSON_ARRAY:
        buf_append(b, "[", 1);
        json_array_foreach(value, i, item) {
            if (i > 0)
                buf_append(b, ",", 1);
            encode_value(b, item);
        }
        buf_append(b, "]", 1);
        break;
    case JSON_STRING:
        encode_string(b, json_string_value(value), json_string_length(value));
        break;
    case JSON_INTEGER:
        buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        break;
    case JSON_REAL:
        encode_real(b, json_real_value(value));
        break;
    case JSON_TRUE:
        buf_append(b, "true", 4);
        break;
    case JSON_FALSE:
        buf_append(b, "false", 5);
        break;
    case JSON_NULL:
        buf_append(b, "null", 4);
        break;
    }
}

/* ---- parsing a publish body ---- */

/* Copies jansson's message for a client: it may quote up to 20 bytes of
 * the body, so anything outside printable ASCII becomes '?'. */
static void
clean_text(char *dst, size_t size, const char *src)
{
    size_t i;

    for (i = 0; i + 1 < size && src[i] != '\0'; i++)
        dst[i] = src[i] >= 0x20 && src[i] <= 0x7e ? src[i] : '?';
    dst[i] = '\0';
}

static int
json_error_to_rc(const json_error_t *jerr, struct rc_error *err)
{
    char text[JSON_ERROR_TEXT_LENGTH];

    switch (json_error_code(jerr)) {
    case json_error_out_of_memory:
        return rc_internal(err, "out of memory while reading the body");
    case json_error_stack_overflow:
        return rc_bad_request(err, "body is nested too deeply (line %d, "
                              "column %d)", jerr->line, jerr->column);
    case json_error_null_character:
        return rc_bad_request(err, "body holds \\u0000 (line %d, column "
                              "%d), which messages may not contain",
                              jerr->line, jerr->column);
    default:
        clean_text(text, sizeof(text), jerr->text);
        return rc_bad_request(err, "body is not valid JSON (line %d, column "
                              "%d): %s", jerr->line, jerr->column, text);
    }
}

static int
read_type(json_t *root, struct publish_req *out, struct rc_error *err)
{
    json_t *field = json_object_get(root, "type");
    const char *type;

    if (field == NULL)
        return 0;
    if (!json_is_string(field))
        return rc_bad_request(err, "field 'type' must be a string");
    type = json_string_value(field);
    if (!envelope_type_is_valid(type))
        return rc_bad_request(err, "field 'type' must be 1-%d characters "
                              "of a-z 0-9 _ - .", ENVELOPE_TYPE_MAX);
    if (envelope_type_is_reserved(type))
        return rc_bad_request(err, "field 'type': '%s' is reserved for the "
                              "server; choose another type", type);
    strcpy(out->type, type);
    return 0;
}

static int
read_id(json_t *root, struct publish_req *out, struct rc_error *err)
{
    json_t *field = json_object_get(root, "id");

    if (field == NULL)
        return 0;
    if (!json_is_string(field))
        return rc_bad_request(err, "field 'id' must be a string");
    if (!envelope_id_is_valid(json_string_value(field)))
        return rc_bad_request(err, "field 'id' must be 1-%d printable "
                              "ASCII characters", ENVELOPE_ID_MAX);
    strcpy(out->id, json_string_value(field));
    return 0;
}

static int
read_data(json_t *root, struct publish_req *out, struct rc_error *err)
{
    json_t *field = json_object_get(root, "data");
    struct buf b = BUF_INIT;

    if (field == NULL)
        buf_append(&b, "null", 4);
    else
        encode_value(&b, field);
    if (buf_failed(&b)) {
        buf_free(&b);
        return rc_internal(err, "out of memory while reading field 'data'");
    }
    out->data = b.data;
    return 0;
}

int
envelope_parse_publish(const char *body, size_t len, struct publish_req *out,
                       struct rc_error *err)
{
    json_error_t jerr;
    json_t *root;
    int rc = -1;

    strcpy(out->type, "message");
    out->id[0] = '\0';
    out->data = NULL;
    if (len == 0)
        return rc_bad_request(err, "body is empty; send a JSON object like "
                              "{\"type\":\"text\",\"data\":{}}");

    /* Any value is decoded, so that "not an object" can be said plainly;
     * a repeated key is refused because readers disagree on which wins. */
    root = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                      &jerr);
    if (root == NULL)
        return json_error_to_rc(&jerr, err);
    if (!json_is_object(root)) {
        rc_bad_request(err, "body must be a JSON object with the fields "
                       "type, id and data");
        goto out;
    }
    if (read_type(root, out, err) < 0 || read_id(root, out, err) < 0 ||
        read_data(root, out, err) < 0)
        goto out;
    rc = 0;

out:
    json_decref(root);
    return rc;
}

void
publish_req_free(struct publish_req *req)
{
    free(req->data);
    req->data = NULL;
}

/* ---- the server's own envelopes ---- */

/* Compact text of obj, which is consumed; NULL when obj is NULL. */
static char *
dump_new(json_t *obj)
{
    char *text;

    if (obj == NULL)
        return NULL;
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return text;
}

/* Counts the decimal digits at s. */
static size_t
digits_at(const char *s)
{
    size_t n = 0;

    while (s[n] >= '0' && s[n] <= '9')
        n++;
    return n;
}

/*
 * A time as PostgreSQL prints epoch seconds: -?D{1,15}(.D{1,9})? with no
 * leading zero. Narrower than JSON's number grammar on purpose: no
 * exponent and few digits, so that every JSON reader can take it (jansson
 * refuses 1e999 and integers past 64 bits).
 */
static bool
is_plain_time(const char *s)
{
    size_t n;

    if (s == NULL)
        return false;
    if (*s == '-')
        s++;
    n = digits_at(s);
    if (n == 0 || n > 15 || (n > 1 && s[0] == '0'))
        return false;
    s += n;
    if (*s == '.') {
        n = digits_at(++s);
        if (n == 0 || n > 9)
            return false;
        s += n;
    }
    return *s == '\0';
}

/* {"type":"ack","id":..,"room":..,"seq":..} as compact text, or NULL. */
static char *
ack_head(const char *id, const char *room, int64_t seq)
{
    json_t *obj = json_object();
    bool is_ok = obj != NULL && room != NULL;

    is_ok = is_ok &&
            json_object_set_new(obj, "type", json_string("ack")) == 0;
    if (is_ok && id != NULL && id[0] != '\0')
        is_ok = json_object_set_new(obj, "id", json_string(id)) == 0;
    is_ok = is_ok &&
            json_object_set_new(obj, "room", json_string(room)) == 0 &&
            json_object_set_new(obj, "seq", json_integer(seq)) == 0;
    if (!is_ok) {
        json_decref(obj);
        return NULL;
    }
    return dump_new(obj);
}

char *
envelope_ack(const char *id, const char *room, int64_t seq,
             const char *ts_text, bool is_duplicate)
{
    struct buf b = BUF_INIT;
    char *head = ack_head(id, room, seq);

    if (head == NULL)
        return NULL;

    /* ts goes in as text, since a double would print 1764777600.1229999:
     * the head loses its '}' and gets ts and the rest. */
    buf_append(&b, head, strlen(head) - 1);
    free(head);
    buf_puts(&b, ",\"ts\":");
    buf_puts(&b, is_plain_time(ts_text) ? ts_text : "null");
    if (is_duplicate)
        buf_puts(&b, ",\"duplicate\":true");
    buf_append(&b, "}", 1);
    if (buf_failed(&b)) {
        buf_free(&b);
        return NULL;
    }
    return b.data;
}

char *
envelope_error(const struct rc_error *err)
{
    const char *code = "internal";
    const char *message = "internal error";
    char ascii[sizeof(err->message)];
    json_t *text;

    if (err != NULL && err->status != 0) {
        code = err->code != NULL ? err->code : code;
        message = err->message;
    }
    text = json_string(message);
    if (text == NULL) {
        clean_text(ascii, sizeof(ascii), message);
        text = json_string(ascii);
    }
    return dump_new(json_pack("{s:s,s:s,s:o}", "type", "error", "code", code,
                              "message", text));
}

char *
envelope_gap(const char *room, int64_t from_seq, int64_t to_seq)
{
    return dump_new(json_pack("{s:s,s:s,s:{s:s,s:s,s:I,s:I}}",
                              "type", "system", "room", room, "data",
                              "event", "gap", "room", room,
                              "from", (json_int_t)from_seq,
                              "to", (json_int_t)to_seq));
}

char *
envelope_reset(const char *room)
{
    return dump_new(json_pack("{s:s,s:s,s:{s:s,s:s}}",
                              "type", "system", "room", room, "data",
                              "event", "reset", "room", room));
}
