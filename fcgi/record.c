/*
 * record.c - FastCGI record framing (see record.h).
 */
#include "record.h"

#include <string.h>

#define FCGI_VERSION_1 1

void
record_header(unsigned char out[RECORD_HEADER_LEN], int type,
              unsigned request_id, size_t content_len)
{
    out[0] = FCGI_VERSION_1;
    out[1] = (unsigned char)type;
    out[2] = (unsigned char)(request_id >> 8);
    out[3] = (unsigned char)request_id;
    out[4] = (unsigned char)(content_len >> 8);
    out[5] = (unsigned char)content_len;
    out[6] = 0;                     /* padding length */
    out[7] = 0;
}

void
record_end(unsigned char out[RECORD_END_LEN], unsigned request_id)
{
    record_header(out, RECORD_STDOUT, request_id, 0);
    record_header(out + 8, RECORD_END_REQUEST, request_id, 8);
    memset(out + 16, 0, 8);         /* app status 0, REQUEST_COMPLETE */
}

int
record_read(struct record_reader *rd, const unsigned char *data, size_t len)
{
    while (len > 0) {
        size_t n;

        if (rd->skip > 0) {
            n = len < rd->skip ? len : rd->skip;
            rd->skip -= (uint32_t)n;
            data += n;
            len -= n;
            continue;
        }

        n = RECORD_HEADER_LEN - rd->header_len;
        if (n > len)
            n = len;
        memcpy(rd->header + rd->header_len, data, n);
        rd->header_len += (uint8_t)n;
        data += n;
        len -= n;
        if (rd->header_len < RECORD_HEADER_LEN)
            break;

        rd->header_len = 0;
        if (rd->header[0] != FCGI_VERSION_1)
            return -1;
        if (rd->header[1] == RECORD_ABORT_REQUEST)
            return 1;
        rd->skip = ((uint32_t)rd->header[4] << 8 | rd->header[5]) +
                   rd->header[6];
    }
    return 0;
}
