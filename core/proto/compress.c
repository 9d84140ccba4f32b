/* compress.c - decompression of Kafka batch payloads: gzip, snappy (raw and xerial), lz4
 * frames, zstd (see compress.h for the formats).
 *
 * Every decoder writes into one growable output buffer (struct obuf) that doubles up to a
 * ceiling of max_out + 1 bytes: reaching max_out + 1 bytes means the output is too large. The
 * libraries bound their own reads and writes; each loop here checks that every call made
 * progress, so truncated input ends with STRATUS_ECORRUPT instead of spinning.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "proto/compress.h"

#include <limits.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define OBUF_MIN 4096

struct obuf {
    uint8_t *p;
    size_t len, cap;
    size_t max; /* the output may hold at most max bytes */
};

/* Makes sure there is at least one free byte, growing up to max + 1 bytes. */
static int obuf_room(struct obuf *b, size_t hint, struct stratus_errbuf *eb)
{
    size_t ncap, limit = b->max + 1;
    uint8_t *np;

    if (b->len < b->cap)
        return 0;
    if (b->len > b->max)
        return stratus_errf(eb, STRATUS_ENOMEM, "decompressed data exceeds %zu bytes", b->max);
    ncap = b->cap ? b->cap * 2 : (hint > OBUF_MIN ? hint : OBUF_MIN);
    if (ncap < b->cap || ncap > limit)
        ncap = limit;
    np = realloc(b->p, ncap);
    if (!np)
        return stratus_errf(eb, STRATUS_ENOMEM, "decompress: out of memory (%zu bytes)", ncap);
    b->p = np;
    b->cap = ncap;
    return 0;
}

static int obuf_check(const struct obuf *b, struct stratus_errbuf *eb)
{
    if (b->len > b->max)
        return stratus_errf(eb, STRATUS_ENOMEM, "decompressed data exceeds %zu bytes", b->max);
    return 0;
}

static uint32_t rd_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- gzip ---- */

/* One or more gzip members. Bytes after a member that do not start another one are ignored,
 * as Java's GZIPInputStream does. */
static int gunzip(const uint8_t *in, size_t in_len, struct obuf *b, struct stratus_errbuf *eb)
{
    z_stream zs;
    int zrc, rc = 0;

    if (in_len == 0 || in_len > UINT_MAX)
        return stratus_errf(eb, STRATUS_ECORRUPT, "gzip: bad input size %zu", in_len);
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK)
        return stratus_errf(eb, STRATUS_ENOMEM, "gzip: inflateInit2 failed");
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)in_len;
    for (;;) {
        size_t room;
        rc = obuf_room(b, in_len * 4, eb);
        if (rc)
            goto out;
        room = b->cap - b->len;
        if (room > UINT_MAX)
            room = UINT_MAX;
        zs.next_out = b->p + b->len;
        zs.avail_out = (uInt)room;
        zrc = inflate(&zs, Z_NO_FLUSH);
        b->len += room - zs.avail_out;
        if (zrc == Z_STREAM_END) {
            if (zs.avail_in < 2 || zs.next_in[0] != 0x1f || zs.next_in[1] != 0x8b)
                break;
            if (inflateReset(&zs) != Z_OK) {
                rc = stratus_errf(eb, STRATUS_ECORRUPT, "gzip: inflateReset failed");
                goto out;
            }
            continue;
        }
        if (zrc == Z_OK)
            continue;
        if (zrc == Z_BUF_ERROR && zs.avail_out == 0)
            continue; /* needs more room */
        if (zrc == Z_MEM_ERROR) {
            rc = stratus_errf(eb, STRATUS_ENOMEM, "gzip: out of memory");
            goto out;
        }
        rc = stratus_errf(eb, STRATUS_ECORRUPT, "gzip: %s",
                          zrc == Z_BUF_ERROR ? "truncated input"
                          : zs.msg           ? zs.msg
                                             : "bad data");
        goto out;
    }
    rc = obuf_check(b, eb);
out:
    inflateEnd(&zs);
    return rc;
}

/* ---- snappy ---- */

static const uint8_t XERIAL_MAGIC[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16

/* Appends the raw snappy block in[0..len) to b. */
static int snappy_block(const uint8_t *in, size_t len, struct obuf *b, struct stratus_errbuf *eb)
{
    size_t ulen = 0, got;
    uint8_t *np;

    if (snappy_uncompressed_length((const char *)in, len, &ulen) != SNAPPY_OK)
        return stratus_errf(eb, STRATUS_ECORRUPT, "snappy: bad block header");
    if (ulen > b->max - b->len)
        return stratus_errf(eb, STRATUS_ENOMEM, "decompressed data exceeds %zu bytes", b->max);
    if (ulen == 0)
        return snappy_validate_compressed_buffer((const char *)in, len) == SNAPPY_OK
                   ? 0
                   : stratus_errf(eb, STRATUS_ECORRUPT, "snappy: bad block");
    if (b->len + ulen > b->cap) {
        size_t ncap = b->cap ? b->cap : OBUF_MIN;
        while (ncap < b->len + ulen)
            ncap = ncap > b->max / 2 ? b->len + ulen : ncap * 2;
        np = realloc(b->p, ncap);
        if (!np)
            return stratus_errf(eb, STRATUS_ENOMEM, "snappy: out of memory (%zu bytes)", ncap);
        b->p = np;
        b->cap = ncap;
    }
    got = ulen;
    if (snappy_uncompress((const char *)in, len, (char *)b->p + b->len, &got) != SNAPPY_OK ||
        got != ulen)
        return stratus_errf(eb, STRATUS_ECORRUPT, "snappy: bad block");
    b->len += got;
    return 0;
}

static int unsnappy(const uint8_t *in, size_t in_len, struct obuf *b, struct stratus_errbuf *eb)
{
    size_t pos;
    int rc;

    if (in_len < XERIAL_HEADER_SIZE || memcmp(in, XERIAL_MAGIC, sizeof XERIAL_MAGIC) != 0) {
        if (in_len == 0)
            return stratus_errf(eb, STRATUS_ECORRUPT, "snappy: empty input");
        return snappy_block(in, in_len, b, eb);
    }
    /* xerial: magic, version, compatible version, then (int32 length, block)... */
    for (pos = XERIAL_HEADER_SIZE; pos < in_len;) {
        uint32_t blen;
        if (in_len - pos < 4)
            return stratus_errf(eb, STRATUS_ECORRUPT, "snappy (xerial): truncated block length");
        blen = rd_be32(in + pos);
        pos += 4;
        if (blen == 0 || blen > in_len - pos)
            return stratus_errf(eb, STRATUS_ECORRUPT,
                                "snappy (xerial): block of %u bytes with %zu left", blen,
                                in_len - pos);
        rc = snappy_block(in + pos, blen, b, eb);
        if (rc)
            return rc;
        pos += blen;
    }
    return 0;
}

/* ---- lz4 ---- */

static int unlz4(const uint8_t *in, size_t in_len, struct obuf *b, struct stratus_errbuf *eb)
{
    LZ4F_dctx *dctx = NULL;
    size_t pos = 0, r = 1;
    int rc = 0;

    if (in_len == 0)
        return stratus_errf(eb, STRATUS_ECORRUPT, "lz4: empty input");
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        return stratus_errf(eb, STRATUS_ENOMEM, "lz4: cannot create a context");
    while (r != 0 || pos < in_len) {
        size_t dst, src;
        rc = obuf_room(b, in_len * 4, eb);
        if (rc)
            goto out;
        dst = b->cap - b->len;
        src = in_len - pos;
        r = LZ4F_decompress(dctx, b->p + b->len, &dst, in + pos, &src, NULL);
        if (LZ4F_isError(r)) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "lz4: %s", LZ4F_getErrorName(r));
            goto out;
        }
        b->len += dst;
        pos += src;
        if (dst == 0 && src == 0 && r != 0) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "lz4: truncated frame");
            goto out;
        }
    }
    rc = obuf_check(b, eb);
out:
    LZ4F_freeDecompressionContext(dctx);
    return rc;
}

/* ---- zstd ---- */

static int unzstd(const uint8_t *in, size_t in_len, struct obuf *b, struct stratus_errbuf *eb)
{
    ZSTD_DStream *ds;
    ZSTD_inBuffer ib = {in, in_len, 0};
    size_t r = 1;
    int rc = 0;

    if (in_len == 0)
        return stratus_errf(eb, STRATUS_ECORRUPT, "zstd: empty input");
    ds = ZSTD_createDStream();
    if (!ds)
        return stratus_errf(eb, STRATUS_ENOMEM, "zstd: cannot create a stream");
    if (ZSTD_isError(ZSTD_initDStream(ds))) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "zstd: cannot init a stream");
        goto out;
    }
    while (r != 0 || ib.pos < ib.size) {
        size_t before = ib.pos;
        ZSTD_outBuffer ob;
        rc = obuf_room(b, in_len * 4, eb);
        if (rc)
            goto out;
        ob.dst = b->p + b->len;
        ob.size = b->cap - b->len;
        ob.pos = 0;
        r = ZSTD_decompressStream(ds, &ob, &ib);
        if (ZSTD_isError(r)) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "zstd: %s", ZSTD_getErrorName(r));
            goto out;
        }
        b->len += ob.pos;
        if (ob.pos == 0 && ib.pos == before && r != 0) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "zstd: truncated frame");
            goto out;
        }
    }
    rc = obuf_check(b, eb);
out:
    ZSTD_freeDStream(ds);
    return rc;
}

const char *stratus_codec_name(int codec)
{
    switch (codec) {
    case STRATUS_CODEC_NONE:
        return "none";
    case STRATUS_CODEC_GZIP:
        return "gzip";
    case STRATUS_CODEC_SNAPPY:
        return "snappy";
    case STRATUS_CODEC_LZ4:
        return "lz4";
    case STRATUS_CODEC_ZSTD:
        return "zstd";
    default:
        return "unknown";
    }
}

int stratus_decompress(int codec,
                       const uint8_t *in,
                       size_t in_len,
                       size_t max_out,
                       uint8_t **out,
                       size_t *out_len,
                       struct stratus_errbuf *eb)
{
    struct obuf b = {NULL, 0, 0, max_out ? max_out : STRATUS_DECOMPRESS_MAX_DEFAULT};
    int rc;

    *out = NULL;
    *out_len = 0;
    if (b.max >= SIZE_MAX / 2)
        b.max = SIZE_MAX / 2;
    switch (codec) {
    case STRATUS_CODEC_GZIP:
        rc = gunzip(in, in_len, &b, eb);
        break;
    case STRATUS_CODEC_SNAPPY:
        rc = unsnappy(in, in_len, &b, eb);
        break;
    case STRATUS_CODEC_LZ4:
        rc = unlz4(in, in_len, &b, eb);
        break;
    case STRATUS_CODEC_ZSTD:
        rc = unzstd(in, in_len, &b, eb);
        break;
    default:
        return stratus_errf(eb, STRATUS_ENOTSUP, "unknown compression codec %d", codec);
    }
    if (rc) {
        free(b.p);
        return rc;
    }
    if (b.len == 0) {
        free(b.p);
        b.p = NULL;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}
