/* recordit.h - an iterator over the records of one v2 record batch, compressed or not.
 *
 * The batch header and the record layout are described at the top of records.c. A record's
 * offset is baseOffset + offsetDelta; its timestamp is baseTimestamp + timestampDelta, or the
 * batch's maxTimestamp when the batch has the LogAppendTime attribute (as Kafka reports it).
 * A compressed batch is decompressed once, at init, into a buffer the iterator owns (bounded by
 * a caller-given ceiling); key, value and headers then point into that buffer, otherwise into
 * the caller's batch, and stay valid until stratus_recordit_close().
 * Every length is bounds-checked: hostile batches give STRATUS_ECORRUPT, never a crash. The CRC
 * is not checked here (stratus_records_validate does that). One iterator belongs to one thread.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_PROTO_RECORDIT_H
#define STRATUS_PROTO_RECORDIT_H

#include "proto/records.h"
#include "stratus/stratus_err.h"

#include <stddef.h>
#include <stdint.h>

/* One record. Pointers are borrowed from the iterator (see above). */
struct stratus_record {
    int64_t offset;
    int64_t timestamp;
    int8_t attributes;
    const uint8_t *key; /* NULL when key_len is -1 (null key) */
    int32_t key_len;
    const uint8_t *value; /* NULL when value_len is -1 (null value) */
    int32_t value_len;
    int32_t header_count;
    const uint8_t *headers; /* the raw headers section (header_count headers, each checked) */
    size_t headers_len;
};

struct stratus_recordit {
    struct stratus_batch_info bi; /* the parsed batch header */
    const uint8_t *p, *end;       /* the records not yet read */
    uint8_t *owned;               /* decompressed records, or NULL */
    int32_t next;                 /* index of the next record */
    int err;                      /* sticky error */
};

/* Starts iterating over the batch at batch (len bytes available; the batch may be shorter,
 * its own length counts). The batch must have magic 2. A compressed batch is decompressed now,
 * into at most max_decompressed bytes (0 = STRATUS_DECOMPRESS_MAX_DEFAULT). Returns 0, or
 * STRATUS_ECORRUPT / STRATUS_ENOTSUP (magic or codec) / STRATUS_ENOMEM; on failure there is
 * nothing to close (closing is harmless). */
int stratus_recordit_init(struct stratus_recordit *it,
                          const uint8_t *batch,
                          size_t len,
                          size_t max_decompressed,
                          struct stratus_errbuf *eb);

/* The next record: returns 1 and fills *rec, 0 at the end (after recordsCount records, with no
 * bytes left over), or a negative STRATUS_ECORRUPT for a record that does not parse, too few
 * records, or bytes after the last one. Errors are sticky. */
int stratus_recordit_next(struct stratus_recordit *it,
                          struct stratus_record *rec,
                          struct stratus_errbuf *eb);

/* Frees what the iterator owns. */
void stratus_recordit_close(struct stratus_recordit *it);

#endif
