/* recordit.c - the record iterator of one v2 batch (see recordit.h; the layouts are at the top
 * of records.c). Varints are read with struct kread (codec.h), which stops at the buffer end.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "proto/recordit.h"

#include "proto/codec.h"
#include "proto/compress.h"

#include <stdlib.h>
#include <string.h>

int stratus_recordit_init(struct stratus_recordit *it,
                          const uint8_t *batch,
                          size_t len,
                          size_t max_decompressed,
                          struct stratus_errbuf *eb)
{
    int codec, rc;

    memset(it, 0, sizeof *it);
    rc = stratus_batch_parse(batch, len, &it->bi, eb);
    if (rc)
        goto fail;
    if (it->bi.magic != 2) {
        rc = stratus_errf(eb, STRATUS_ENOTSUP, "record batch magic %d", it->bi.magic);
        goto fail;
    }
    if (it->bi.record_count < 0) {
        rc = stratus_errf(eb, STRATUS_ECORRUPT, "record count %d", it->bi.record_count);
        goto fail;
    }
    it->p = batch + STRATUS_BATCH_HEADER_SIZE;
    it->end = batch + it->bi.size;
    codec = it->bi.attributes & STRATUS_BATCH_ATTR_COMPRESSION_MASK;
    if (codec != STRATUS_CODEC_NONE && it->bi.record_count > 0) {
        size_t n = 0;
        rc = stratus_decompress(codec, it->p, (size_t)(it->end - it->p), max_decompressed,
                                &it->owned, &n, eb);
        if (rc)
            goto fail;
        if (n == 0) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "%s batch decompresses to nothing",
                              stratus_codec_name(codec));
            goto fail;
        }
        it->p = it->owned;
        it->end = it->owned + n;
    }
    return 0;
fail:
    free(it->owned);
    it->owned = NULL;
    it->err = rc;
    it->p = it->end = NULL;
    return rc;
}

/* Skips a varint length and that many bytes (-1 allowed when nullable); returns the length. */
static int32_t skip_field(struct kread *r, int nullable, const uint8_t **start)
{
    int32_t n = kr_varint(r);
    *start = NULL;
    if (r->err)
        return 0;
    if (n < -1 || (n == -1 && !nullable)) {
        kr_fail(r, STRATUS_EPROTO);
        return 0;
    }
    if (n > 0)
        *start = kr_raw(r, (size_t)n);
    else if (n == 0)
        *start = r->p;
    return n;
}

int stratus_recordit_next(struct stratus_recordit *it,
                          struct stratus_record *rec,
                          struct stratus_errbuf *eb)
{
    struct kread r, body;
    int32_t rlen, delta, nh, i = it->next;
    int64_t tsdelta;
    const uint8_t *hstart, *dummy;

    if (it->err)
        return stratus_errf(eb, it->err, "record iterator failed before");
    if (i >= it->bi.record_count) {
        if (it->p != it->end) {
            it->err = STRATUS_ECORRUPT;
            return stratus_errf(eb, it->err, "%zu bytes after the last record",
                                (size_t)(it->end - it->p));
        }
        return 0;
    }
    kr_init(&r, it->p, (size_t)(it->end - it->p), NULL);
    rlen = kr_varint(&r);
    if (r.err || rlen < 0 || (size_t)rlen > kr_remaining(&r)) {
        it->err = STRATUS_ECORRUPT;
        return stratus_errf(eb, it->err, "record %d of %d: bad length %d", i, it->bi.record_count,
                            r.err ? -1 : rlen);
    }
    kr_init(&body, r.p, (size_t)rlen, NULL);
    memset(rec, 0, sizeof *rec);
    rec->attributes = kr_i8(&body);
    tsdelta = kr_varlong(&body);
    delta = kr_varint(&body);
    rec->key_len = skip_field(&body, 1, &rec->key);
    rec->value_len = skip_field(&body, 1, &rec->value);
    nh = kr_varint(&body);
    if (!body.err && (nh < 0 || (size_t)nh > kr_remaining(&body) / 2))
        kr_fail(&body, STRATUS_EPROTO);
    hstart = body.p;
    for (int32_t h = 0; h < nh && !body.err; h++) {
        (void)skip_field(&body, 0, &dummy); /* header key: a string, never null */
        (void)skip_field(&body, 1, &dummy);
    }
    if (body.err) {
        it->err = STRATUS_ECORRUPT;
        return stratus_errf(eb, it->err, "record %d: malformed", i);
    }
    if (kr_remaining(&body) != 0) {
        it->err = STRATUS_ECORRUPT;
        return stratus_errf(eb, it->err, "record %d: %zu trailing bytes", i, kr_remaining(&body));
    }
    rec->header_count = nh;
    rec->headers = hstart;
    rec->headers_len = (size_t)(body.p - hstart);
    rec->offset = (int64_t)((uint64_t)it->bi.base_offset + (uint64_t)(int64_t)delta);
    if (it->bi.attributes & STRATUS_BATCH_ATTR_LOG_APPEND_TIME)
        rec->timestamp = it->bi.max_timestamp;
    else
        rec->timestamp = (int64_t)((uint64_t)it->bi.base_timestamp + (uint64_t)tsdelta);
    it->p = r.p + rlen;
    it->next = i + 1;
    return 1;
}

void stratus_recordit_close(struct stratus_recordit *it)
{
    free(it->owned);
    it->owned = NULL;
    it->p = it->end = NULL;
}
