/* records.h - Kafka record batches, magic v2: header parsing, validation, and the few header
 * rewrites a broker makes (base offset, partition leader epoch, LogAppendTime).
 *
 * The batch layout (61-byte header, CRC-32C over bytes 21..end) is in
 * shared/kafka-protocol/README.md and at the top of records.c. Compressed batches are never
 * decompressed here: the broker stores and serves them unchanged.
 * Pure functions over caller buffers; thread-safe.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_PROTO_RECORDS_H
#define STRATUS_PROTO_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "stratus/stratus_err.h"

#define STRATUS_BATCH_HEADER_SIZE 61

#define STRATUS_BATCH_ATTR_COMPRESSION_MASK 0x07
#define STRATUS_BATCH_ATTR_LOG_APPEND_TIME  0x08
#define STRATUS_BATCH_ATTR_TRANSACTIONAL    0x10
#define STRATUS_BATCH_ATTR_CONTROL          0x20

struct stratus_batch_info {
    int64_t base_offset;
    int32_t size; /* whole batch in bytes: batchLength + 12 */
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
};

/* Reads the header of the batch at p (len bytes available). Checks only that the header and
 * the whole batch fit in len and that the length is sane. */
int stratus_batch_parse(const uint8_t *p, size_t len, struct stratus_batch_info *out,
                        struct stratus_errbuf *eb);

/* Validates a records blob of a Produce request: one or more whole batches with magic 2, sane
 * sizes and counts (record_count >= 1, last_offset_delta == record_count - 1 for uncompressed and
 * compressed alike), a correct CRC-32C, a known compression codec, and (uncompressed only)
 * records that parse within the batch. Returns 0 and the number of batches and records, or
 * STRATUS_ECORRUPT (bad CRC or framing -> Kafka CORRUPT_MESSAGE), or STRATUS_ENOTSUP (magic
 * 0/1 -> UNSUPPORTED_FOR_MESSAGE_FORMAT), or STRATUS_EINVAL (INVALID_RECORD), with a message. */
int stratus_records_validate(const uint8_t *p, size_t len, int *nbatches, int64_t *nrecords,
                             struct stratus_errbuf *eb);

/* Rewrites fields that the CRC does not cover. */
void stratus_batch_set_base_offset(uint8_t *batch, int64_t base_offset);
void stratus_batch_set_leader_epoch(uint8_t *batch, int32_t epoch);

/* Sets the LogAppendTime attribute bit and maxTimestamp = ts, and recomputes the CRC (Kafka
 * does the same for message.timestamp.type=LogAppendTime). batch_len is the batch's size. */
void stratus_batch_set_log_append_time(uint8_t *batch, size_t batch_len, int64_t ts);

#endif
