/* link: stratus_proto stratus_util */
/* test_records.c - record batch v2 validation and rewrites (core/proto/records.c): batches
 * built here with their CRC-32C and the batch librdkafka sent (tests/data/proto), bad CRC,
 * bad and old magic, every truncation, counts and deltas, codecs, and header rewrites that keep
 * (base offset, leader epoch) or recompute (LogAppendTime) the CRC.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>

#include "proto/codec.h"
#include "proto/records.h"
#include "test.h"
#include "util/crc32c.h"

/* Builds a batch of n records "k<i>"/"value-<i>" (one header on record 0) into w. */
static size_t build_batch(struct kwrite *w, int n, int16_t attributes, int32_t last_delta)
{
    size_t start = w->len;
    kw_i64(w, 0);           /* baseOffset */
    size_t lenpos = kw_reserve_i32(w);
    kw_i32(w, -1);          /* partitionLeaderEpoch */
    kw_i8(w, 2);            /* magic */
    size_t crcpos = kw_reserve_i32(w);
    kw_i16(w, attributes);
    kw_i32(w, last_delta);
    kw_i64(w, 1700000000000LL);
    kw_i64(w, 1700000000000LL + n);
    kw_i64(w, -1);
    kw_i16(w, -1);
    kw_i32(w, -1);
    kw_i32(w, n);
    for (int i = 0; i < n; i++) {
        struct kwrite rec;
        char key[16], val[32];
        int kl = snprintf(key, sizeof key, "k%d", i);
        int vl = snprintf(val, sizeof val, "value-%d", i);
        kw_init(&rec, 0);
        kw_i8(&rec, 0);
        kw_varlong(&rec, i);
        kw_varint(&rec, i);
        kw_varint(&rec, kl);
        kw_raw(&rec, key, (size_t)kl);
        kw_varint(&rec, vl);
        kw_raw(&rec, val, (size_t)vl);
        kw_varint(&rec, i == 0 ? 1 : 0);
        if (i == 0) {
            kw_varint(&rec, 1);
            kw_raw(&rec, "h", 1);
            kw_varint(&rec, -1);
        }
        kw_varint(w, (int32_t)rec.len);
        kw_raw(w, rec.buf, rec.len);
        kw_free(&rec);
    }
    size_t size = w->len - start;
    kw_patch_i32(w, lenpos, (int32_t)(size - 12));
    kw_patch_i32(w, crcpos, (int32_t)stratus_crc32c(0, w->buf + start + 21, size - 21));
    return size;
}

static int validate(const uint8_t *p, size_t len, int *nb, int64_t *nr)
{
    struct stratus_errbuf eb = {{0}};
    int rc = stratus_records_validate(p, len, nb, nr, &eb);
    if (rc)
        printf("  validate: %s (%s)\n", stratus_err_name(rc), eb.msg);
    return rc;
}

static void fix_crc(uint8_t *b, size_t size)
{
    uint32_t crc = stratus_crc32c(0, b + 21, size - 21);
    b[17] = (uint8_t)(crc >> 24);
    b[18] = (uint8_t)(crc >> 16);
    b[19] = (uint8_t)(crc >> 8);
    b[20] = (uint8_t)crc;
}

int main(void)
{
    struct kwrite w;
    int nb;
    int64_t nr;
    struct stratus_errbuf eb;

    kw_init(&w, 0);
    size_t size = build_batch(&w, 5, 0, 4);
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), 0);
    CHECK_EQ(nb, 1);
    CHECK_EQ(nr, 5);
    struct stratus_batch_info bi;
    CHECK_EQ(stratus_batch_parse(w.buf, w.len, &bi, &eb), 0);
    CHECK_EQ(bi.size, (int32_t)size);
    CHECK_EQ(bi.magic, 2);
    CHECK_EQ(bi.record_count, 5);
    CHECK_EQ(bi.last_offset_delta, 4);
    CHECK_EQ(bi.producer_id, -1);
    CHECK_EQ(bi.partition_leader_epoch, -1);
    CHECK(bi.base_timestamp == 1700000000000LL);

    /* two batches back to back */
    build_batch(&w, 3, 0, 2);
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), 0);
    CHECK_EQ(nb, 2);
    CHECK_EQ(nr, 8);

    /* every truncation of the two batches fails and stays in bounds */
    for (size_t n = 0; n < w.len; n++) {
        if (n == size)
            continue; /* exactly the first batch: valid */
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, w.buf, n);
        struct stratus_errbuf e;
        CHECK(stratus_records_validate(copy, n, &nb, &nr, &e) != 0);
        free(copy);
    }
    CHECK_EQ(validate(w.buf, size, &nb, &nr), 0);

    /* base offset and leader epoch are outside the CRC */
    stratus_batch_set_base_offset(w.buf, 123456789);
    stratus_batch_set_leader_epoch(w.buf, 7);
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), 0);
    CHECK_EQ(stratus_batch_parse(w.buf, w.len, &bi, &eb), 0);
    CHECK(bi.base_offset == 123456789);
    CHECK_EQ(bi.partition_leader_epoch, 7);

    /* LogAppendTime: attribute bit + max timestamp, CRC recomputed */
    uint32_t old_crc = bi.crc;
    stratus_batch_set_log_append_time(w.buf, size, 1800000000000LL);
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), 0);
    CHECK_EQ(stratus_batch_parse(w.buf, w.len, &bi, &eb), 0);
    CHECK(bi.attributes & STRATUS_BATCH_ATTR_LOG_APPEND_TIME);
    CHECK(bi.max_timestamp == 1800000000000LL);
    CHECK(bi.crc != old_crc);

    /* bad CRC */
    w.buf[size - 1] ^= 0x01;
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), STRATUS_ECORRUPT);
    w.buf[size - 1] ^= 0x01;
    w.buf[17] ^= 0x80;
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), STRATUS_ECORRUPT);
    w.buf[17] ^= 0x80;
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), 0);

    /* magic: 0/1 are old formats, anything else is corrupt */
    w.buf[16] = 1;
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), STRATUS_ENOTSUP);
    w.buf[16] = 0;
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), STRATUS_ENOTSUP);
    w.buf[16] = 9;
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), STRATUS_ECORRUPT);
    w.buf[16] = 2;

    /* batch length: too small, beyond the buffer */
    uint8_t save[4];
    memcpy(save, w.buf + 8, 4);
    memcpy(w.buf + 8, "\x00\x00\x00\x10", 4);
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), STRATUS_ECORRUPT);
    memcpy(w.buf + 8, "\x7f\xff\xff\xff", 4);
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), STRATUS_ECORRUPT);
    memcpy(w.buf + 8, "\xff\xff\xff\xff", 4);
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), STRATUS_ECORRUPT);
    memcpy(w.buf + 8, save, 4);
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), 0);
    CHECK_EQ(validate(w.buf, 0, &nb, &nr), STRATUS_EINVAL);
    kw_free(&w);

    /* counts and deltas (CRC valid, so these are INVALID_RECORD) */
    kw_init(&w, 0);
    size = build_batch(&w, 3, 0, 1); /* last delta 1 for 3 records */
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), STRATUS_EINVAL);
    kw_free(&w);
    kw_init(&w, 0);
    size = build_batch(&w, 0, 0, -1); /* no records */
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), STRATUS_EINVAL);
    kw_free(&w);
    kw_init(&w, 0);
    size = build_batch(&w, 2, 5, 1); /* codec 5 does not exist */
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), STRATUS_EINVAL);
    kw_free(&w);
    /* a record count that disagrees with the records present */
    kw_init(&w, 0);
    size = build_batch(&w, 3, 0, 2);
    w.buf[60] = 4; /* recordsCount 4 */
    w.buf[26] = 3; /* lastOffsetDelta 3 */
    fix_crc(w.buf, size);
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), STRATUS_ECORRUPT);
    w.buf[60] = 2;
    w.buf[26] = 1;
    fix_crc(w.buf, size);
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), STRATUS_ECORRUPT); /* bytes left over */
    /* a compressed batch is not parsed beyond its header: flag gzip, fix the CRC */
    w.buf[60] = 3;
    w.buf[26] = 2;
    w.buf[22] |= 1;
    fix_crc(w.buf, size);
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), 0);
    /* a record whose length runs past the batch */
    w.buf[22] &= ~1;
    w.buf[61] = 0x7e;
    fix_crc(w.buf, size);
    CHECK_EQ(validate(w.buf, w.len, &nb, &nr), STRATUS_ECORRUPT);
    kw_free(&w);

    /* the batch librdkafka 2.0.2 sent with kcat (records "k1:hello", "k2:world") */
    const char *dir = getenv("STRATUS_TEST_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/proto/rdkafka_produce_v7.bin", dir ? dir : "tests/data");
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (f) {
        uint8_t buf[4096];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        CHECK(n > 89);
        uint8_t *batch = buf + n - 89;
        CHECK_EQ(validate(batch, 89, &nb, &nr), 0);
        CHECK_EQ(nr, 2);
        CHECK_EQ(stratus_batch_parse(batch, 89, &bi, &eb), 0);
        CHECK_EQ(bi.crc, 0x83b037ed);
        stratus_batch_set_log_append_time(batch, 89, 1);
        CHECK_EQ(validate(batch, 89, &nb, &nr), 0);
        batch[70] ^= 0xff;
        CHECK_EQ(validate(batch, 89, &nb, &nr), STRATUS_ECORRUPT);
    }
    TEST_REPORT();
}
