/*
 * record.h - FastCGI records that the worker writes itself.
 *
 * Requests that wait (SSE, long-poll) leave libfcgi after their headers
 * are known: the worker keeps only the socket and the request id, and
 * frames its output as FastCGI STDOUT records here. Pure functions, no
 * I/O, so they can be tested byte by byte.
 */
#ifndef ROOMCAST_RECORD_H
#define ROOMCAST_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define RECORD_HEADER_LEN 8
#define RECORD_CONTENT_MAX 65535
#define RECORD_END_LEN 24           /* empty STDOUT + END_REQUEST */

#define RECORD_BEGIN_REQUEST 1
#define RECORD_ABORT_REQUEST 2
#define RECORD_END_REQUEST 3
#define RECORD_STDIN 5
#define RECORD_STDOUT 6

/* Writes the header of a record of type with content_len bytes (at most
 * RECORD_CONTENT_MAX) and no padding. */
void record_header(unsigned char out[RECORD_HEADER_LEN], int type,
                   unsigned request_id, size_t content_len);

/* Writes the end of a request: an empty STDOUT record (end of stream)
 * and END_REQUEST with application status 0, REQUEST_COMPLETE. */
void record_end(unsigned char out[RECORD_END_LEN], unsigned request_id);

/* Incremental reader of the records a web server sends on a parked
 * request: only whether it asked to abort matters. */
struct record_reader {
    unsigned char header[RECORD_HEADER_LEN];
    uint8_t header_len;             /* header bytes seen so far */
    uint32_t skip;                  /* content + padding still to skip */
};

/* Feeds bytes; returns 1 when an ABORT_REQUEST record was seen, -1 when
 * the bytes are not FastCGI records, else 0. */
int record_read(struct record_reader *rd, const unsigned char *data,
                size_t len);

#endif
