/* link: stratus_proto stratus_util */
/* test_recordit.c - decompression (core/proto/compress.c) and the record iterator
 * (core/proto/recordit.c): batches built here with records of known offsets, timestamps, keys,
 * values and headers, compressed with zlib/snappy/lz4/zstd themselves (raw and xerial snappy,
 * zstd with and without a content size, several gzip members / lz4 and zstd frames);
 * LogAppendTime; the golden gzip/snappy/zstd Produce frames librdkafka 2.0.2 sent; corrupt,
 * truncated and oversized input (the ceiling), random bytes for every codec.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "proto/codec.h"
#include "proto/compress.h"
#include "proto/recordit.h"
#include "proto/records.h"
#include "test.h"
#include "util/crc32c.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define NREC 10
#define T0   1700000000000LL

static size_t put_varint(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (uint8_t)z;
    return n;
}

static void be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* The records section of a batch: record i has timestamp delta 10 * i, key "key-i" (null for
 * i == 3), value of 100 + i bytes ('a' + i), header "h" = "i" on odd records. */
static size_t build_records(uint8_t *out)
{
    size_t pos = 0;
    for (int i = 0; i < NREC; i++) {
        uint8_t body[512];
        size_t b = 0;
        char key[16];
        int klen = snprintf(key, sizeof key, "key-%d", i);
        body[b++] = 0;
        b += put_varint(body + b, 10 * i);
        b += put_varint(body + b, i);
        if (i == 3) {
            b += put_varint(body + b, -1);
        } else {
            b += put_varint(body + b, klen);
            memcpy(body + b, key, (size_t)klen);
            b += (size_t)klen;
        }
        b += put_varint(body + b, 100 + i);
        memset(body + b, 'a' + i, (size_t)(100 + i));
        b += (size_t)(100 + i);
        if (i % 2) {
            b += put_varint(body + b, 1);
            b += put_varint(body + b, 1);
            body[b++] = 'h';
            b += put_varint(body + b, 1);
            body[b++] = (uint8_t)('0' + i);
        } else {
            b += put_varint(body + b, 0);
        }
        pos += put_varint(out + pos, (int64_t)b);
        memcpy(out + pos, body, b);
        pos += b;
    }
    return pos;
}

/* A batch of base offset base around the given (already compressed) records section. */
static size_t build_batch(
    uint8_t *out, int64_t base, int16_t attr, const uint8_t *recs, size_t rlen, int64_t max_ts)
{
    size_t size = STRATUS_BATCH_HEADER_SIZE + rlen;
    be(out, (uint64_t)base, 8);
    be(out + 8, size - 12, 4);
    be(out + 12, 0, 4);
    out[16] = 2;
    be(out + 21, (uint64_t)attr, 2);
    be(out + 23, NREC - 1, 4);
    be(out + 27, (uint64_t)T0, 8);
    be(out + 35, (uint64_t)max_ts, 8);
    be(out + 43, (uint64_t)-1, 8);
    be(out + 51, (uint64_t)-1, 2);
    be(out + 53, (uint64_t)-1, 4);
    be(out + 57, NREC, 4);
    memcpy(out + STRATUS_BATCH_HEADER_SIZE, recs, rlen);
    be(out + 17, stratus_crc32c(0, out + 21, size - 21), 4);
    return size;
}

/* ---- compressors (the libraries themselves) ---- */

static size_t gzip_members(const uint8_t *in, size_t len, uint8_t *out, size_t cap, int members)
{
    size_t total = 0, at = 0;
    for (int m = 0; m < members; m++) {
        size_t part = m == members - 1 ? len - at : len / (size_t)members;
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return 0;
        zs.next_in = (Bytef *)(uintptr_t)(in + at);
        zs.avail_in = (uInt)part;
        zs.next_out = out + total;
        zs.avail_out = (uInt)(cap - total);
        if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
            deflateEnd(&zs);
            return 0;
        }
        total += zs.total_out;
        deflateEnd(&zs);
        at += part;
    }
    return total;
}

static size_t snappy_raw(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t n = cap;
    return snappy_compress((const char *)in, len, (char *)out, &n) == SNAPPY_OK ? n : 0;
}

/* xerial framing with blocks of at most blk input bytes. */
static size_t snappy_xerial(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t blk)
{
    static const uint8_t magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
    size_t pos = 16;
    memcpy(out, magic, 8);
    be(out + 8, 1, 4);
    be(out + 12, 1, 4);
    for (size_t at = 0; at < len; at += blk) {
        size_t part = len - at < blk ? len - at : blk, n = cap - pos - 4;
        if (snappy_compress((const char *)in + at, part, (char *)out + pos + 4, &n) != SNAPPY_OK)
            return 0;
        be(out + pos, n, 4);
        pos += 4 + n;
    }
    return pos;
}

static size_t lz4_frames(const uint8_t *in, size_t len, uint8_t *out, size_t cap, int frames)
{
    size_t total = 0, at = 0;
    for (int f = 0; f < frames; f++) {
        size_t part = f == frames - 1 ? len - at : len / (size_t)frames;
        LZ4F_preferences_t pref;
        memset(&pref, 0, sizeof pref);
        pref.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
        size_t n = LZ4F_compressFrame(out + total, cap - total, in + at, part, &pref);
        if (LZ4F_isError(n))
            return 0;
        total += n;
        at += part;
    }
    return total;
}

static size_t zstd_plain(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t n = ZSTD_compress(out, cap, in, len, 3);
    return ZSTD_isError(n) ? 0 : n;
}

/* Streaming, without a content size in the frame header, as the Java client writes it;
 * frames frames back to back. */
static size_t zstd_stream(const uint8_t *in, size_t len, uint8_t *out, size_t cap, int frames)
{
    size_t total = 0, at = 0;
    ZSTD_CStream *cs = ZSTD_createCStream();
    for (int f = 0; f < frames; f++) {
        size_t part = f == frames - 1 ? len - at : len / (size_t)frames;
        ZSTD_inBuffer ib = {in + at, part, 0};
        ZSTD_outBuffer ob = {out + total, cap - total, 0};
        ZSTD_initCStream(cs, 3);
        size_t r = ZSTD_compressStream(cs, &ob, &ib);
        if (ZSTD_isError(r))
            break;
        do {
            r = ZSTD_endStream(cs, &ob);
        } while (r > 0 && !ZSTD_isError(r));
        total += ob.pos;
        at += part;
    }
    ZSTD_freeCStream(cs);
    return total;
}

/* ---- checks ---- */

/* Iterates a batch built above and checks every field of every record. */
static void check_batch(const uint8_t *batch,
                        size_t len,
                        int64_t base,
                        int log_append,
                        int64_t max_ts,
                        const char *what)
{
    struct stratus_recordit it;
    struct stratus_record rec;
    struct stratus_errbuf eb;
    int n = 0, rc;

    rc = stratus_recordit_init(&it, batch, len, 0, &eb);
    CHECK_EQ(rc, 0);
    if (rc) {
        fprintf(stderr, "%s: %s\n", what, eb.msg);
        return;
    }
    while ((rc = stratus_recordit_next(&it, &rec, &eb)) == 1) {
        char key[16];
        int klen = snprintf(key, sizeof key, "key-%d", n);
        CHECK_EQ(rec.offset, base + n);
        CHECK_EQ(rec.timestamp, log_append ? max_ts : T0 + 10 * n);
        if (n == 3) {
            CHECK(rec.key == NULL);
            CHECK_EQ(rec.key_len, -1);
        } else {
            CHECK_EQ(rec.key_len, klen);
            CHECK(rec.key && memcmp(rec.key, key, (size_t)klen) == 0);
        }
        CHECK_EQ(rec.value_len, 100 + n);
        int same = rec.value != NULL;
        for (int k = 0; same && k < rec.value_len; k++)
            same = rec.value[k] == 'a' + n;
        CHECK(same);
        CHECK_EQ(rec.header_count, n % 2);
        if (n % 2) {
            CHECK_EQ(rec.headers_len, 4);
            CHECK(rec.headers && rec.headers[1] == 'h' && rec.headers[3] == '0' + n);
        }
        n++;
    }
    CHECK_EQ(rc, 0);
    if (rc)
        fprintf(stderr, "%s: %s\n", what, eb.msg);
    CHECK_EQ(n, NREC);
    CHECK_EQ(stratus_recordit_next(&it, &rec, &eb), 0); /* stays at the end */
    stratus_recordit_close(&it);
}

static uint8_t g_recs[8192], g_comp[16384], g_batch[16384 + 64];

static void test_codecs(void)
{
    size_t rlen = build_records(g_recs), clen, blen;
    int nb;
    int64_t nr;
    struct stratus_errbuf eb;

    /* uncompressed, CreateTime and LogAppendTime */
    blen = build_batch(g_batch, 100, 0, g_recs, rlen, T0 + 90);
    CHECK_EQ(stratus_records_validate(g_batch, blen, &nb, &nr, &eb), 0);
    check_batch(g_batch, blen, 100, 0, 0, "none");
    blen = build_batch(g_batch, 100, STRATUS_BATCH_ATTR_LOG_APPEND_TIME, g_recs, rlen, T0 + 5000);
    check_batch(g_batch, blen, 100, 1, T0 + 5000, "none/logappend");

    static const struct {
        const char *name;
        int codec;
    } cases[] = {
        {"gzip", 1}, {"gzip 3 members", 1}, {"snappy raw", 2}, {"snappy xerial", 2},
        {"lz4", 3},  {"lz4 2 frames", 3},   {"zstd", 4},       {"zstd stream, 2 frames", 4},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        switch (c) {
        case 0:
            clen = gzip_members(g_recs, rlen, g_comp, sizeof g_comp, 1);
            break;
        case 1:
            clen = gzip_members(g_recs, rlen, g_comp, sizeof g_comp, 3);
            break;
        case 2:
            clen = snappy_raw(g_recs, rlen, g_comp, sizeof g_comp);
            break;
        case 3:
            clen = snappy_xerial(g_recs, rlen, g_comp, sizeof g_comp, 300);
            break;
        case 4:
            clen = lz4_frames(g_recs, rlen, g_comp, sizeof g_comp, 1);
            break;
        case 5:
            clen = lz4_frames(g_recs, rlen, g_comp, sizeof g_comp, 2);
            break;
        case 6:
            clen = zstd_plain(g_recs, rlen, g_comp, sizeof g_comp);
            break;
        default:
            clen = zstd_stream(g_recs, rlen, g_comp, sizeof g_comp, 2);
            break;
        }
        CHECK(clen > 0 && clen < rlen);
        if (c == 7)
            CHECK_EQ(ZSTD_getFrameContentSize(g_comp, clen), ZSTD_CONTENTSIZE_UNKNOWN);

        /* the raw decompressor gives back the records byte for byte */
        uint8_t *out = NULL;
        size_t olen = 0;
        CHECK_EQ(stratus_decompress(cases[c].codec, g_comp, clen, 0, &out, &olen, &eb), 0);
        CHECK_EQ(olen, rlen);
        CHECK(out && memcmp(out, g_recs, rlen) == 0);
        free(out);
        /* a ceiling below the size refuses it; exactly the size is enough */
        CHECK_EQ(stratus_decompress(cases[c].codec, g_comp, clen, rlen - 1, &out, &olen, &eb),
                 STRATUS_ENOMEM);
        CHECK(out == NULL && olen == 0);
        CHECK_EQ(stratus_decompress(cases[c].codec, g_comp, clen, rlen, &out, &olen, &eb), 0);
        CHECK_EQ(olen, rlen);
        free(out);
        /* truncated input */
        CHECK_EQ(stratus_decompress(cases[c].codec, g_comp, clen - 3, 0, &out, &olen, &eb),
                 STRATUS_ECORRUPT);
        CHECK(out == NULL);

        /* the iterator over the compressed batch, CreateTime and LogAppendTime */
        blen = build_batch(g_batch, 5000, (int16_t)cases[c].codec, g_comp, clen, T0 + 90);
        CHECK_EQ(stratus_records_validate(g_batch, blen, &nb, &nr, &eb), 0);
        check_batch(g_batch, blen, 5000, 0, 0, cases[c].name);
        blen =
            build_batch(g_batch, 7, (int16_t)(cases[c].codec | STRATUS_BATCH_ATTR_LOG_APPEND_TIME),
                        g_comp, clen, T0 + 77);
        check_batch(g_batch, blen, 7, 1, T0 + 77, cases[c].name);

        /* a byte flipped in the middle of the compressed data: an error or different records,
         * never a crash (ASan run) */
        g_batch[STRATUS_BATCH_HEADER_SIZE + clen / 2] ^= 0x5a;
        struct stratus_recordit it;
        struct stratus_record rec;
        if (stratus_recordit_init(&it, g_batch, blen, 0, &eb) == 0) {
            while (stratus_recordit_next(&it, &rec, &eb) == 1)
                ;
        }
        stratus_recordit_close(&it);
    }
    /* codec 0 and 5..7 are not decompressions */
    uint8_t *out = NULL;
    size_t olen = 0;
    CHECK_EQ(stratus_decompress(0, g_recs, rlen, 0, &out, &olen, &eb), STRATUS_ENOTSUP);
    CHECK_EQ(stratus_decompress(5, g_recs, rlen, 0, &out, &olen, &eb), STRATUS_ENOTSUP);
    blen = build_batch(g_batch, 0, 6, g_recs, rlen, T0);
    struct stratus_recordit it;
    CHECK_EQ(stratus_recordit_init(&it, g_batch, blen, 0, &eb), STRATUS_ENOTSUP);
    stratus_recordit_close(&it);
    CHECK_STR(stratus_codec_name(2), "snappy");
}

/* 32 MiB of zeros compress to a few KiB: a ceiling of 1 MiB must stop each codec early. */
static void test_bomb(void)
{
    size_t big = 32u << 20, cap = snappy_max_compressed_length(32u << 20), clen;
    uint8_t *zeros = calloc(1, big), *comp = malloc(cap), *out = NULL;
    size_t olen = 0;
    struct stratus_errbuf eb;

    for (int codec = 1; codec <= 4; codec++) {
        switch (codec) {
        case 1:
            clen = gzip_members(zeros, big, comp, cap, 1);
            break;
        case 2:
            clen = snappy_xerial(zeros, big, comp, cap, 64u << 10);
            break;
        case 3:
            clen = lz4_frames(zeros, big, comp, cap, 1);
            break;
        default:
            clen = zstd_stream(zeros, big, comp, cap, 1);
            break;
        }
        CHECK(clen > 0 && clen < big / 8);
        CHECK_EQ(stratus_decompress(codec, comp, clen, 1u << 20, &out, &olen, &eb), STRATUS_ENOMEM);
        CHECK(out == NULL);
        CHECK_EQ(stratus_decompress(codec, comp, clen, 0, &out, &olen, &eb), 0);
        CHECK_EQ(olen, big);
        free(out);
    }
    /* raw snappy declares its size up front */
    clen = snappy_raw(zeros, big, comp, cap);
    CHECK(clen > 0);
    CHECK_EQ(stratus_decompress(2, comp, clen, 1u << 20, &out, &olen, &eb), STRATUS_ENOMEM);
    free(zeros);
    free(comp);
}

/* Random bytes and hostile framing for every codec: an error, never a crash. */
static void test_hostile(void)
{
    uint8_t buf[2048], *out = NULL;
    size_t olen;
    struct stratus_errbuf eb;
    uint32_t x = 12345;
    int errs = 0, calls = 0;

    for (int round = 0; round < 200; round++) {
        size_t n = 1 + (size_t)(round * 37 % (int)sizeof buf);
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
        }
        for (int codec = 1; codec <= 4; codec++) {
            int rc = stratus_decompress(codec, buf, n, 1u << 20, &out, &olen, &eb);
            calls++;
            errs += rc != 0;
            free(out);
        }
    }
    CHECK(errs >= calls - 10);
    /* empty input */
    for (int codec = 1; codec <= 4; codec++)
        CHECK_EQ(stratus_decompress(codec, buf, 0, 0, &out, &olen, &eb), STRATUS_ECORRUPT);
    /* xerial with a block length past the end, and a truncated length */
    static const uint8_t xer[] = {0x82, 'S', 'N', 'A', 'P',  'P',  'Y',  0,    0, 0, 0, 1,
                                  0,    0,   0,   1,   0x7f, 0xff, 0xff, 0xff, 1, 2, 3};
    CHECK_EQ(stratus_decompress(2, xer, sizeof xer, 0, &out, &olen, &eb), STRATUS_ECORRUPT);
    CHECK_EQ(stratus_decompress(2, xer, 18, 0, &out, &olen, &eb), STRATUS_ECORRUPT);
    /* xerial header alone: no blocks, nothing */
    CHECK_EQ(stratus_decompress(2, xer, 16, 0, &out, &olen, &eb), 0);
    CHECK_EQ(olen, 0);
    /* raw snappy claiming 4 GiB */
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00};
    CHECK(stratus_decompress(2, huge, sizeof huge, 0, &out, &olen, &eb) < 0);
}

/* Corrupt record framing inside an uncompressed batch. */
static void test_corrupt_records(void)
{
    size_t rlen = build_records(g_recs), blen;
    struct stratus_recordit it;
    struct stratus_record rec;
    struct stratus_errbuf eb;
    int rc, n;

    /* record count larger than the records */
    blen = build_batch(g_batch, 0, 0, g_recs, rlen, T0);
    be(g_batch + 57, NREC + 1, 4);
    CHECK_EQ(stratus_recordit_init(&it, g_batch, blen, 0, &eb), 0);
    for (n = 0; (rc = stratus_recordit_next(&it, &rec, &eb)) == 1; n++)
        ;
    CHECK_EQ(n, NREC);
    CHECK_EQ(rc, STRATUS_ECORRUPT);
    CHECK_EQ(stratus_recordit_next(&it, &rec, &eb), STRATUS_ECORRUPT); /* sticky */
    stratus_recordit_close(&it);
    /* record count smaller: bytes left over at the end */
    be(g_batch + 57, NREC - 1, 4);
    CHECK_EQ(stratus_recordit_init(&it, g_batch, blen, 0, &eb), 0);
    for (n = 0; (rc = stratus_recordit_next(&it, &rec, &eb)) == 1; n++)
        ;
    CHECK_EQ(n, NREC - 1);
    CHECK_EQ(rc, STRATUS_ECORRUPT);
    stratus_recordit_close(&it);
    /* the first record's length runs past the batch */
    blen = build_batch(g_batch, 0, 0, g_recs, rlen, T0);
    g_batch[STRATUS_BATCH_HEADER_SIZE] = 0xfe;
    g_batch[STRATUS_BATCH_HEADER_SIZE + 1] = 0x7f;
    CHECK_EQ(stratus_recordit_init(&it, g_batch, blen, 0, &eb), 0);
    CHECK_EQ(stratus_recordit_next(&it, &rec, &eb), STRATUS_ECORRUPT);
    stratus_recordit_close(&it);
    /* a key length past the record */
    blen = build_batch(g_batch, 0, 0, g_recs, rlen, T0);
    /* record 0: len varint (1-2 bytes), attr, tsdelta 0, offdelta 0, keylen */
    size_t at = STRATUS_BATCH_HEADER_SIZE + (g_batch[STRATUS_BATCH_HEADER_SIZE] & 0x80 ? 2 : 1);
    g_batch[at + 3] = 0x7e;
    CHECK_EQ(stratus_recordit_init(&it, g_batch, blen, 0, &eb), 0);
    CHECK_EQ(stratus_recordit_next(&it, &rec, &eb), STRATUS_ECORRUPT);
    stratus_recordit_close(&it);
    /* a batch shorter than its header, or than its length */
    CHECK_EQ(stratus_recordit_init(&it, g_batch, 40, 0, &eb), STRATUS_ECORRUPT);
    stratus_recordit_close(&it);
    CHECK_EQ(stratus_recordit_init(&it, g_batch, blen - 1, 0, &eb), STRATUS_ECORRUPT);
    stratus_recordit_close(&it);
    /* magic 1 */
    blen = build_batch(g_batch, 0, 0, g_recs, rlen, T0);
    g_batch[16] = 1;
    CHECK_EQ(stratus_recordit_init(&it, g_batch, blen, 0, &eb), STRATUS_ENOTSUP);
    stratus_recordit_close(&it);
    /* a compressed batch whose payload is garbage */
    blen = build_batch(g_batch, 0, STRATUS_CODEC_ZSTD, g_recs, rlen, T0);
    CHECK_EQ(stratus_recordit_init(&it, g_batch, blen, 0, &eb), STRATUS_ECORRUPT);
    stratus_recordit_close(&it);
    /* a compressed batch with too small a ceiling */
    size_t clen = zstd_plain(g_recs, rlen, g_comp, sizeof g_comp);
    blen = build_batch(g_batch, 0, STRATUS_CODEC_ZSTD, g_comp, clen, T0);
    CHECK_EQ(stratus_recordit_init(&it, g_batch, blen, 100, &eb), STRATUS_ENOMEM);
    stratus_recordit_close(&it);
    /* every truncation and every single-byte flip of an uncompressed batch: no crash */
    blen = build_batch(g_batch, 0, 0, g_recs, rlen, T0);
    for (size_t i = 0; i < blen; i += 7) {
        uint8_t save = g_batch[i];
        g_batch[i] ^= 0xa5;
        if (stratus_recordit_init(&it, g_batch, blen, 0, &eb) == 0)
            while (stratus_recordit_next(&it, &rec, &eb) == 1)
                CHECK(rec.value_len <= (int32_t)blen);
        stratus_recordit_close(&it);
        g_batch[i] = save;
    }
}

/* ---- golden frames from librdkafka 2.0.2 ---- */

/* Produce v7 request: header v1 then transactional id, acks, timeout, one topic, one
 * partition; returns the records bytes. */
static int produce_records(const uint8_t *frame, size_t len, const uint8_t **recs, size_t *rlen)
{
    struct kread r;
    kr_init(&r, frame, len, NULL);
    (void)kr_i16(&r);    /* api key */
    (void)kr_i16(&r);    /* api version */
    (void)kr_i32(&r);    /* correlation id */
    (void)kr_string(&r); /* client id */
    (void)kr_string(&r); /* transactional id */
    (void)kr_i16(&r);    /* acks */
    (void)kr_i32(&r);    /* timeout */
    int32_t nt = kr_i32(&r);
    (void)kr_string(&r); /* topic */
    int32_t np = kr_i32(&r);
    (void)kr_i32(&r); /* partition */
    struct kbytes b = kr_bytes(&r);
    if (r.err || nt != 1 || np != 1 || !b.p)
        return -1;
    *recs = b.p;
    *rlen = (size_t)b.len;
    return 0;
}

static void test_golden(void)
{
    static const struct {
        const char *file;
        int codec;
        int nrec;
    } g[] = {
        {"rdkafka_produce_v7.bin", 0, 2},        {"rdkafka_produce_v7_gzip.bin", 1, 3},
        {"rdkafka_produce_v7_snappy.bin", 2, 3}, {"rdkafka_produce_v7_zstd.bin", 4, 3},
        {"rdkafka_produce_v7_big.bin", 0, 3},
    };
    const char *dir = getenv("STRATUS_TEST_DATA");
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        char path[1024];
        uint8_t frame[8192];
        const uint8_t *recs = NULL;
        size_t rlen = 0, n;
        struct stratus_batch_info bi;
        struct stratus_recordit it;
        struct stratus_record rec;
        struct stratus_errbuf eb;
        int nb, count = 0, rc;
        int64_t nr;

        snprintf(path, sizeof path, "%s/proto/%s", dir ? dir : "tests/data", g[i].file);
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL);
        if (!f)
            continue;
        n = fread(frame, 1, sizeof frame, f);
        fclose(f);
        CHECK_EQ(produce_records(frame, n, &recs, &rlen), 0);
        if (!recs)
            continue;
        CHECK_EQ(stratus_records_validate(recs, rlen, &nb, &nr, &eb), 0);
        CHECK_EQ(stratus_batch_parse(recs, rlen, &bi, &eb), 0);
        CHECK_EQ(bi.attributes & STRATUS_BATCH_ATTR_COMPRESSION_MASK, g[i].codec);
        CHECK_EQ(stratus_recordit_init(&it, recs, rlen, 0, &eb), 0);
        while ((rc = stratus_recordit_next(&it, &rec, &eb)) == 1) {
            CHECK_EQ(rec.offset, count);
            CHECK(rec.timestamp >= bi.base_timestamp && rec.timestamp <= bi.max_timestamp);
            CHECK(rec.value_len > 0);
            if (g[i].nrec == 2) { /* k1:hello, k2:world */
                CHECK(rec.key_len == 2 && memcmp(rec.key, count ? "k2" : "k1", 2) == 0);
                CHECK(rec.value_len == 5 && memcmp(rec.value, count ? "world" : "hello", 5) == 0);
            } else {
                CHECK(rec.value_len > 500); /* ~600-byte records */
            }
            count++;
        }
        if (rc)
            fprintf(stderr, "%s: %s\n", g[i].file, eb.msg);
        CHECK_EQ(rc, 0);
        CHECK_EQ(count, g[i].nrec);
        stratus_recordit_close(&it);
    }
}

int main(void)
{
    test_codecs();
    test_bomb();
    test_hostile();
    test_corrupt_records();
    test_golden();
    TEST_REPORT();
}
