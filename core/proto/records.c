/* records.c - record batch v2 parsing, validation and header rewrites (see records.h).
 *
 * Batch layout (big-endian):
 *   0 baseOffset i64 | 8 batchLength i32 (= size - 12) | 12 partitionLeaderEpoch i32 |
 *   16 magic i8 (= 2) | 17 crc u32 (CRC-32C of bytes 21..end) | 21 attributes i16 |
 *   23 lastOffsetDelta i32 | 27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64 |
 *   51 producerEpoch i16 | 53 baseSequence i32 | 57 recordsCount i32 | 61 records...
 * Record (zigzag varints): length | attributes i8 | timestampDelta varlong | offsetDelta varint |
 *   keyLength varint (-1 null) | key | valueLength varint | value | headersCount varint |
 *   headers (keyLength varint, key, valueLength varint (-1 null), value).
 * The magic byte sits at offset 16 in the v0/v1 message format too, which is how old formats
 * are recognised and refused.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "proto/records.h"

#include <string.h>

#include "proto/codec.h"
#include "util/crc32c.h"

#define OFF_BASE_OFFSET 0
#define OFF_LENGTH 8
#define OFF_LEADER_EPOCH 12
#define OFF_MAGIC 16
#define OFF_CRC 17
#define OFF_ATTRIBUTES 21
#define OFF_LAST_OFFSET_DELTA 23
#define OFF_BASE_TIMESTAMP 27
#define OFF_MAX_TIMESTAMP 35
#define OFF_PRODUCER_ID 43
#define OFF_PRODUCER_EPOCH 51
#define OFF_BASE_SEQUENCE 53
#define OFF_RECORDS_COUNT 57

#define MAX_CODEC 4 /* zstd */

static uint64_t rd_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static void wr_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

int stratus_batch_parse(const uint8_t *p, size_t len, struct stratus_batch_info *out,
                        struct stratus_errbuf *eb)
{
    if (len < STRATUS_BATCH_HEADER_SIZE)
        return stratus_errf(eb, STRATUS_ECORRUPT, "record batch header truncated: %zu bytes", len);
    int32_t blen = (int32_t)rd_be(p + OFF_LENGTH, 4);
    if (blen < STRATUS_BATCH_HEADER_SIZE - 12 || blen > INT32_MAX - 12)
        return stratus_errf(eb, STRATUS_ECORRUPT, "record batch length %d out of range", blen);
    if ((size_t)blen + 12 > len)
        return stratus_errf(eb, STRATUS_ECORRUPT, "record batch truncated: %d of %zu bytes",
                            blen + 12, len);
    out->base_offset = (int64_t)rd_be(p + OFF_BASE_OFFSET, 8);
    out->size = blen + 12;
    out->partition_leader_epoch = (int32_t)rd_be(p + OFF_LEADER_EPOCH, 4);
    out->magic = (int8_t)p[OFF_MAGIC];
    out->crc = (uint32_t)rd_be(p + OFF_CRC, 4);
    out->attributes = (int16_t)rd_be(p + OFF_ATTRIBUTES, 2);
    out->last_offset_delta = (int32_t)rd_be(p + OFF_LAST_OFFSET_DELTA, 4);
    out->base_timestamp = (int64_t)rd_be(p + OFF_BASE_TIMESTAMP, 8);
    out->max_timestamp = (int64_t)rd_be(p + OFF_MAX_TIMESTAMP, 8);
    out->producer_id = (int64_t)rd_be(p + OFF_PRODUCER_ID, 8);
    out->producer_epoch = (int16_t)rd_be(p + OFF_PRODUCER_EPOCH, 2);
    out->base_sequence = (int32_t)rd_be(p + OFF_BASE_SEQUENCE, 4);
    out->record_count = (int32_t)rd_be(p + OFF_RECORDS_COUNT, 4);
    return 0;
}

/* Walks the records of an uncompressed batch; each must parse within its length. */
static int records_check(const uint8_t *p, size_t len, int32_t count, struct stratus_errbuf *eb)
{
    struct kread r;
    kr_init(&r, p, len, NULL);
    for (int32_t i = 0; i < count; i++) {
        int32_t rlen = kr_varint(&r);
        if (r.err || rlen < 0 || (size_t)rlen > kr_remaining(&r))
            return stratus_errf(eb, STRATUS_ECORRUPT, "record %d: bad length %d", i, rlen);
        struct kread rec;
        kr_init(&rec, r.p, (size_t)rlen, NULL);
        kr_skip(&r, (size_t)rlen);
        (void)kr_i8(&rec);      /* attributes */
        (void)kr_varlong(&rec); /* timestampDelta */
        int32_t delta = kr_varint(&rec);
        if (!rec.err && delta != i)
            return stratus_errf(eb, STRATUS_EINVAL, "record %d: offset delta %d", i, delta);
        int32_t klen = kr_varint(&rec);
        if (klen < -1)
            kr_fail(&rec, STRATUS_EPROTO);
        else if (klen > 0)
            kr_skip(&rec, (size_t)klen);
        int32_t vlen = kr_varint(&rec);
        if (vlen < -1)
            kr_fail(&rec, STRATUS_EPROTO);
        else if (vlen > 0)
            kr_skip(&rec, (size_t)vlen);
        int32_t nh = kr_varint(&rec);
        if (nh < 0 || (size_t)nh > kr_remaining(&rec) / 2)
            kr_fail(&rec, STRATUS_EPROTO);
        for (int32_t h = 0; h < nh && !rec.err; h++) {
            int32_t hk = kr_varint(&rec);
            if (hk < 0)
                kr_fail(&rec, STRATUS_EPROTO);
            else
                kr_skip(&rec, (size_t)hk);
            int32_t hv = kr_varint(&rec);
            if (hv < -1)
                kr_fail(&rec, STRATUS_EPROTO);
            else if (hv > 0)
                kr_skip(&rec, (size_t)hv);
        }
        if (rec.err)
            return stratus_errf(eb, STRATUS_ECORRUPT, "record %d: malformed", i);
        if (kr_remaining(&rec) != 0)
            return stratus_errf(eb, STRATUS_ECORRUPT, "record %d: %zu trailing bytes", i,
                                kr_remaining(&rec));
    }
    if (kr_remaining(&r) != 0)
        return stratus_errf(eb, STRATUS_ECORRUPT, "%zu bytes after the last record",
                            kr_remaining(&r));
    return 0;
}

int stratus_records_validate(const uint8_t *p, size_t len, int *nbatches, int64_t *nrecords,
                             struct stratus_errbuf *eb)
{
    int nb = 0;
    int64_t nr = 0;
    size_t off = 0;
    int rc;
    *nbatches = 0;
    *nrecords = 0;
    if (len == 0)
        return stratus_errf(eb, STRATUS_EINVAL, "no record batch");
    while (off < len) {
        const uint8_t *b = p + off;
        size_t left = len - off;
        if (left > OFF_MAGIC && b[OFF_MAGIC] != 2) {
            if (b[OFF_MAGIC] == 0 || b[OFF_MAGIC] == 1)
                return stratus_errf(eb, STRATUS_ENOTSUP, "batch %d: message format v%d", nb,
                                    b[OFF_MAGIC]);
            return stratus_errf(eb, STRATUS_ECORRUPT, "batch %d: unknown magic %d", nb,
                                (int8_t)b[OFF_MAGIC]);
        }
        struct stratus_batch_info bi;
        rc = stratus_batch_parse(b, left, &bi, eb);
        if (rc)
            return rc;
        uint32_t crc = stratus_crc32c(0, b + OFF_ATTRIBUTES, (size_t)bi.size - OFF_ATTRIBUTES);
        if (crc != bi.crc)
            return stratus_errf(eb, STRATUS_ECORRUPT, "batch %d: crc %08x, computed %08x", nb,
                                bi.crc, crc);
        int codec = bi.attributes & STRATUS_BATCH_ATTR_COMPRESSION_MASK;
        if (codec > MAX_CODEC)
            return stratus_errf(eb, STRATUS_EINVAL, "batch %d: unknown compression codec %d", nb,
                                codec);
        if (bi.record_count < 1)
            return stratus_errf(eb, STRATUS_EINVAL, "batch %d: record count %d", nb,
                                bi.record_count);
        if (bi.last_offset_delta != bi.record_count - 1)
            return stratus_errf(eb, STRATUS_EINVAL,
                                "batch %d: last offset delta %d for %d records", nb,
                                bi.last_offset_delta, bi.record_count);
        if (codec == 0) {
            size_t body = (size_t)bi.size - STRATUS_BATCH_HEADER_SIZE;
            if ((size_t)bi.record_count > body / 7) /* a record takes at least 7 bytes */
                return stratus_errf(eb, STRATUS_ECORRUPT, "batch %d: %d records in %zu bytes",
                                    nb, bi.record_count, body);
            struct stratus_errbuf reb;
            rc = records_check(b + STRATUS_BATCH_HEADER_SIZE, body, bi.record_count, &reb);
            if (rc)
                return stratus_errf(eb, rc, "batch %d: %.200s", nb, reb.msg);
        }
        nb++;
        nr += bi.record_count;
        off += (size_t)bi.size;
    }
    *nbatches = nb;
    *nrecords = nr;
    return 0;
}

void stratus_batch_set_base_offset(uint8_t *batch, int64_t base_offset)
{
    wr_be(batch + OFF_BASE_OFFSET, (uint64_t)base_offset, 8);
}

void stratus_batch_set_leader_epoch(uint8_t *batch, int32_t epoch)
{
    wr_be(batch + OFF_LEADER_EPOCH, (uint32_t)epoch, 4);
}

void stratus_batch_set_log_append_time(uint8_t *batch, size_t batch_len, int64_t ts)
{
    if (batch_len < STRATUS_BATCH_HEADER_SIZE)
        return;
    uint16_t attr = (uint16_t)rd_be(batch + OFF_ATTRIBUTES, 2);
    attr |= STRATUS_BATCH_ATTR_LOG_APPEND_TIME;
    wr_be(batch + OFF_ATTRIBUTES, attr, 2);
    wr_be(batch + OFF_MAX_TIMESTAMP, (uint64_t)ts, 8);
    uint32_t crc = stratus_crc32c(0, batch + OFF_ATTRIBUTES, batch_len - OFF_ATTRIBUTES);
    wr_be(batch + OFF_CRC, crc, 4);
}
