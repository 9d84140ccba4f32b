/* link: stratus_stream */
/* test_offset_time.c - ListOffsets by timestamp at record granularity
 * (stratus_partition_offset_for_time), against the storage-local plugin: batches of 10
 * records whose timestamps step inside the batch (uncompressed, lz4, snappy, zstd, gzip), exact
 * answers for targets at, between, before and after records, timestamps that go backwards
 * inside a batch, -3 (the first record with the largest timestamp), LogAppendTime topics; the
 * same answers after flush + reopen (read from objects), and with data split between objects
 * and the log cache.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "proto/compress.h"
#include "proto/kerr.h"
#include "stream/stream.h"
#include "stream_fixture.h"
#include "test.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define T 1700000000000LL

/* ---- record batches ---- */

static size_t compress_with(int codec, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    switch (codec) {
    case STRATUS_CODEC_GZIP: {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return 0;
        zs.next_in = (Bytef *)(uintptr_t)in;
        zs.avail_in = (uInt)len;
        zs.next_out = out;
        zs.avail_out = (uInt)cap;
        int ok = deflate(&zs, Z_FINISH) == Z_STREAM_END;
        size_t n = zs.total_out;
        deflateEnd(&zs);
        return ok ? n : 0;
    }
    case STRATUS_CODEC_SNAPPY: {
        size_t n = cap;
        return snappy_compress((const char *)in, len, (char *)out, &n) == SNAPPY_OK ? n : 0;
    }
    case STRATUS_CODEC_LZ4: {
        size_t n = LZ4F_compressFrame(out, cap, in, len, NULL);
        return LZ4F_isError(n) ? 0 : n;
    }
    case STRATUS_CODEC_ZSTD: {
        size_t n = ZSTD_compress(out, cap, in, len, 3);
        return ZSTD_isError(n) ? 0 : n;
    }
    default:
        memcpy(out, in, len);
        return len;
    }
}

/* A v2 batch of n records; record i has timestamp base_ts + deltas[i] and value "v<i>".
 * maxTimestamp is the largest record timestamp, as producers write it. */
static size_t build_batch(uint8_t *out, int n, int64_t base_ts, const int64_t *deltas, int codec)
{
    uint8_t recs[4096], comp[8192];
    size_t pos = 0, clen;
    int64_t maxd = deltas[0];

    for (int i = 0; i < n; i++) {
        char value[16];
        int vlen = snprintf(value, sizeof value, "v%d", i);
        pos += fx_record_put(recs + pos, deltas[i], i, value, (size_t)vlen);
        if (deltas[i] > maxd)
            maxd = deltas[i];
    }
    clen = compress_with(codec, recs, pos, comp, sizeof comp);
    CHECK(clen > 0);
    memcpy(out + FX_BATCH_HEADER, comp, clen);
    struct fx_batch h = fx_batch_plain(n, base_ts, base_ts + maxd);
    h.attributes = (int16_t)codec;
    return fx_batch_seal(out, FX_BATCH_HEADER + clen, &h);
}

/* ---- appends, waiting for durability ---- */

/* Appends one batch and waits until it is durable; returns its base offset (-1 on error) and
 * the LogAppendTime the engine gave it. */
static int64_t append_wait(struct stratus_partition *p, const uint8_t *b, size_t len, int64_t *lat)
{
    struct stratus_append_result r;
    int acked = fx_append_acked(p, b, len, &r, FX_ACK_MS);

    CHECK_EQ(r.error, KAFKA_ERR_NONE);
    if (r.error != KAFKA_ERR_NONE) {
        fprintf(stderr, "append: %s\n", r.msg);
        return -1;
    }
    CHECK(acked);
    CHECK_EQ(fx_acks_errors(), 0);
    if (lat)
        *lat = r.log_append_time;
    return r.base_offset;
}

/* ---- the queries ---- */

static void expect_time(struct stratus_partition *p,
                        int64_t target,
                        int64_t want_off,
                        int64_t want_ts,
                        const char *what)
{
    struct stratus_errbuf eb = {{0}};
    int64_t off = -7, ts = -7;
    int rc = stratus_partition_offset_for_time(p, target, &off, &ts, &eb);
    CHECK_EQ(rc, 0);
    if (rc || off != want_off || ts != want_ts)
        fprintf(stderr, "%s: target %lld: got (%lld, %lld), want (%lld, %lld) %s\n", what,
                (long long)target, (long long)off, (long long)ts, (long long)want_off,
                (long long)want_ts, rc ? eb.msg : "");
    CHECK_EQ(off, want_off);
    CHECK_EQ(ts, want_ts);
}

/* Batches 0..2 (offsets 0..29): offset o has timestamp T + 10 o, codecs none, lz4, snappy.
 * Batch 3 (offsets 30..39, zstd): timestamps go backwards and forwards:
 *   T+500 T+400 T+700 T+700 T+300 T+650 T+600 T+310 T+320 T+330.
 * Batch 4 (offsets 40..49, gzip): T+700 at offset 45, everything else T+350. */
static const int64_t B3[10] = {500, 400, 700, 700, 300, 650, 600, 310, 320, 330};
static const int64_t B4[10] = {350, 350, 350, 350, 350, 700, 350, 350, 350, 350};

static void append_layout(struct stratus_partition *p)
{
    static const int codecs[3] = {STRATUS_CODEC_NONE, STRATUS_CODEC_LZ4, STRATUS_CODEC_SNAPPY};
    uint8_t b[16384];
    int64_t d[10];
    size_t len;

    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 10; i++)
            d[i] = 10 * i;
        len = build_batch(b, 10, T + 100 * k, d, codecs[k]);
        CHECK_EQ(append_wait(p, b, len, NULL), 10 * k);
    }
    len = build_batch(b, 10, T, B3, STRATUS_CODEC_ZSTD);
    CHECK_EQ(append_wait(p, b, len, NULL), 30);
    len = build_batch(b, 10, T, B4, STRATUS_CODEC_GZIP);
    CHECK_EQ(append_wait(p, b, len, NULL), 40);
}

static void check_layout(struct stratus_partition *p, const char *what)
{
    /* at, between and before records of the in-order batches */
    expect_time(p, T, 0, T, what);
    expect_time(p, T - 5, 0, T, what);
    expect_time(p, 0, 0, T, what);
    expect_time(p, T + 10, 1, T + 10, what);
    expect_time(p, T + 55, 6, T + 60, what);
    expect_time(p, T + 90, 9, T + 90, what);
    expect_time(p, T + 91, 10, T + 100, what); /* the next batch's first record */
    expect_time(p, T + 100, 10, T + 100, what);
    expect_time(p, T + 150, 15, T + 150, what);
    expect_time(p, T + 201, 21, T + 210, what);
    expect_time(p, T + 290, 29, T + 290, what);
    /* past batch 2: batch 3 is the first whose max (T+700) qualifies; inside it the first
     * record at or after the target, not the max one */
    expect_time(p, T + 291, 30, T + 500, what);
    expect_time(p, T + 500, 30, T + 500, what);
    expect_time(p, T + 501, 32, T + 700, what);
    expect_time(p, T + 640, 32, T + 700, what);
    expect_time(p, T + 700, 32, T + 700, what);
    /* after everything */
    expect_time(p, T + 701, -1, -1, what);
    expect_time(p, T + 100000, -1, -1, what);
    /* -3: the largest timestamp is T+700, first at offset 32 (batch 4 ties it later) */
    expect_time(p, -3, 32, T + 700, what);
    /* -2 / -1 */
    expect_time(p, -2, 0, -1, what);
    expect_time(p, -1, 50, -1, what);
}

static void test_layout(void)
{
    struct stratus_stream *s = fx_stream_open_defaults();
    struct stratus_partition *p;
    struct stratus_errbuf eb = {{0}};
    struct stratus_stream_stats st;
    char msg[256];
    uint8_t b[16384];
    int64_t d[10];
    size_t len;

    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(stratus_stream_create_topic(s, "lo", 1, NULL, 0, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_NONE);
    p = stratus_stream_partition(s, "lo", 0);
    CHECK(p != NULL);
    if (!p)
        return;
    /* an empty partition */
    expect_time(p, T, -1, -1, "empty");
    expect_time(p, -3, -1, -1, "empty");
    append_layout(p);
    check_layout(p, "log cache");

    /* into objects, then reopened: the answers come from the objects */
    CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    check_layout(p, "flushed (cache + objects)");
    stratus_partition_release(p);
    stratus_stream_close(s);
    s = fx_stream_open_defaults();
    CHECK(s != NULL);
    if (!s)
        return;
    p = stratus_stream_partition(s, "lo", 0);
    CHECK(p != NULL);
    if (!p)
        return;
    stratus_stream_get_stats(s, &st);
    CHECK_EQ(st.log_cache_bytes, 0);
    check_layout(p, "objects after reopen");

    /* more batches in the log cache only: offsets 50..59 with T+1000 + 10 i (lz4), then
     * 60..69 with a new maximum T+2000 at offset 63 */
    for (int i = 0; i < 10; i++)
        d[i] = 10 * i;
    len = build_batch(b, 10, T + 1000, d, STRATUS_CODEC_LZ4);
    CHECK_EQ(append_wait(p, b, len, NULL), 50);
    for (int i = 0; i < 10; i++)
        d[i] = i == 3 ? 1000 : 5 * i;
    len = build_batch(b, 10, T + 1000, d, STRATUS_CODEC_NONE);
    CHECK_EQ(append_wait(p, b, len, NULL), 60);
    expect_time(p, T + 640, 32, T + 700, "objects + cache");  /* still from the objects */
    expect_time(p, T + 701, 50, T + 1000, "objects + cache"); /* from the cache */
    expect_time(p, T + 1033, 54, T + 1040, "objects + cache");
    expect_time(p, T + 1091, 63, T + 2000, "objects + cache");
    expect_time(p, T + 2001, -1, -1, "objects + cache");
    expect_time(p, -3, 63, T + 2000, "objects + cache");
    stratus_partition_release(p);
    stratus_stream_close(s);

    /* a maximum that sits in the objects and ties one in the cache: the objects' (earlier) */
    s = fx_stream_open_defaults();
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    p = stratus_stream_partition(s, "lo", 0);
    for (int i = 0; i < 10; i++)
        d[i] = i == 7 ? 1000 : i;
    len = build_batch(b, 10, T + 1000, d, STRATUS_CODEC_SNAPPY);
    CHECK_EQ(append_wait(p, b, len, NULL), 70);
    expect_time(p, -3, 63, T + 2000, "tie objects / cache");
    expect_time(p, T + 1500, 63, T + 2000, "tie objects / cache");
    stratus_partition_release(p);
    CHECK_EQ(stratus_stream_delete_topic(s, "lo", msg, sizeof msg), KAFKA_ERR_NONE);
    stratus_stream_close(s);
}

/* LogAppendTime: every record has its batch's append time. */
static void test_log_append_time(void)
{
    struct stratus_stream *s = fx_stream_open_defaults();
    struct stratus_kv cfg[] = {{"message.timestamp.type", "LogAppendTime"}};
    struct stratus_partition *p;
    struct stratus_errbuf eb = {{0}};
    char msg[256];
    uint8_t b[16384];
    int64_t d[10], lat0 = -1, lat1 = -1;
    size_t len;

    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(stratus_stream_create_topic(s, "lat", 1, cfg, 1, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_NONE);
    p = stratus_stream_partition(s, "lat", 0);
    CHECK(p != NULL);
    if (!p)
        return;
    for (int i = 0; i < 10; i++)
        d[i] = 10 * i;
    len = build_batch(b, 10, T, d, STRATUS_CODEC_NONE);
    CHECK_EQ(append_wait(p, b, len, &lat0), 0);
    usleep(20000);
    len = build_batch(b, 10, T, d, STRATUS_CODEC_ZSTD);
    CHECK_EQ(append_wait(p, b, len, &lat1), 10);
    CHECK(lat0 > T && lat1 > lat0);
    for (int round = 0; round < 2; round++) {
        const char *what = round ? "LogAppendTime, objects" : "LogAppendTime, cache";
        expect_time(p, T + 50, 0, lat0, what); /* the producer's timestamps do not count */
        expect_time(p, lat0, 0, lat0, what);
        expect_time(p, lat0 + 1, 10, lat1, what);
        expect_time(p, lat1, 10, lat1, what);
        expect_time(p, lat1 + 1, -1, -1, what);
        expect_time(p, -3, 10, lat1, what);
        if (round == 0) {
            stratus_partition_release(p);
            CHECK_EQ(stratus_stream_flush(s, &eb), 0);
            stratus_stream_close(s);
            s = fx_stream_open_defaults();
            CHECK(s != NULL);
            if (!s)
                return;
            p = stratus_stream_partition(s, "lat", 0);
            CHECK(p != NULL);
            if (!p)
                return;
        }
    }
    stratus_partition_release(p);
    CHECK_EQ(stratus_stream_delete_topic(s, "lat", msg, sizeof msg), KAFKA_ERR_NONE);
    stratus_stream_close(s);
}

int main(void)
{
    if (fx_env_open("oft") != 0)
        TEST_REPORT();
    test_layout();
    test_log_append_time();
    fx_env_close();
    TEST_REPORT();
}
