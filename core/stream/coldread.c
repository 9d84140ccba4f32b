/* coldread.c - reads of partition data from stream-set objects, on the I/O pool.
 *
 * The offset index gives the first range with last offset >= the wanted offset (one seek);
 * ranges are read through the cache plugin in fixed 1 MiB blocks aligned to the object start,
 * keyed "<object key>#<block offset>", and a miss is one ranged stratus_storage_get of the
 * block, inserted into the cache. Batches are walked by their headers from the range start,
 * and whole batches are returned from the one holding the offset. No partition lock is held
 * during I/O; nothing here touches the WAL.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "objfmt.h"
#include "plugin/plugin.h"
#include "proto/records.h"
#include "stream_int.h"
#include "util/alloc.h"

/* Reads an object through a one-block buffer and the cache plugin. */
struct objreader {
    struct stratus_stream *s;
    char key[64];
    uint8_t *blk;
    uint64_t blk_off;
    size_t blk_len;
    int have;
};

static void objreader_open(struct objreader *r, struct stratus_stream *s)
{
    memset(r, 0, sizeof *r);
    r->s = s;
    r->blk = xmalloc(STRATUS_BLOCK_SIZE);
}

static void objreader_close(struct objreader *r)
{
    free(r->blk);
}

static void objreader_set(struct objreader *r, uint64_t object_id)
{
    char key[64];
    stratus_objfmt_key(object_id, key, sizeof key);
    if (strcmp(key, r->key) != 0) {
        memcpy(r->key, key, sizeof key);
        r->have = 0;
    }
}

static int objreader_load(struct objreader *r, uint64_t boff, struct stratus_errbuf *eb)
{
    char ck[96];
    size_t len = 0, got = 0;
    int rc;

    if (r->have && r->blk_off == boff)
        return 0;
    r->have = 0;
    snprintf(ck, sizeof ck, "%s#%llu", r->key, (unsigned long long)boff);
    if (r->s->cache && stratus_cache_lookup(r->s->cache, ck, r->blk, STRATUS_BLOCK_SIZE, &len) == 0 &&
        len > 0 && len <= STRATUS_BLOCK_SIZE) {
        r->blk_off = boff;
        r->blk_len = len;
        r->have = 1;
        return 0;
    }
    rc = stratus_storage_get(r->s->st, r->key, boff, STRATUS_BLOCK_SIZE, r->blk, &got, eb);
    if (rc)
        return rc;
    if (got == 0)
        return stratus_errf(eb, STRATUS_ECORRUPT, "%s: read past the end at %llu", r->key,
                            (unsigned long long)boff);
    if (r->s->cache)
        stratus_cache_insert(r->s->cache, ck, r->blk, got);
    r->blk_off = boff;
    r->blk_len = got;
    r->have = 1;
    return 0;
}

static int objreader_read(struct objreader *r, uint64_t off, size_t len, uint8_t *dst,
                          struct stratus_errbuf *eb)
{
    while (len) {
        uint64_t boff = off - off % STRATUS_BLOCK_SIZE;
        size_t in, n;
        int rc = objreader_load(r, boff, eb);
        if (rc)
            return rc;
        in = (size_t)(off - boff);
        if (in >= r->blk_len)
            return stratus_errf(eb, STRATUS_ECORRUPT, "%s: short object at %llu", r->key,
                                (unsigned long long)off);
        n = r->blk_len - in;
        if (n > len)
            n = len;
        memcpy(dst, r->blk + in, n);
        dst += n;
        off += n;
        len -= n;
    }
    return 0;
}

struct bhdr {
    int64_t base, last, max_ts;
    uint32_t size;
};

static int read_bhdr(struct objreader *r, uint64_t pos, uint64_t end, struct bhdr *h,
                     struct stratus_errbuf *eb)
{
    uint8_t b[STRATUS_BATCH_HEADER_SIZE];
    int32_t blen;
    int rc;

    if (end - pos < STRATUS_BATCH_HEADER_SIZE)
        return stratus_errf(eb, STRATUS_ECORRUPT, "%s: truncated batch at %llu", r->key,
                            (unsigned long long)pos);
    rc = objreader_read(r, pos, sizeof b, b, eb);
    if (rc)
        return rc;
    h->base = (int64_t)stratus_be64_get(b);
    blen = (int32_t)stratus_be32_get(b + 8);
    h->last = h->base + (int32_t)stratus_be32_get(b + 23);
    h->max_ts = (int64_t)stratus_be64_get(b + 35);
    if (blen < STRATUS_BATCH_HEADER_SIZE - 12 || (uint64_t)blen + 12 > end - pos)
        return stratus_errf(eb, STRATUS_ECORRUPT, "%s: bad batch length %d at %llu", r->key,
                            blen, (unsigned long long)pos);
    h->size = (uint32_t)blen + 12;
    return 0;
}

int stratus_coldread(struct stratus_partition *p, int64_t offset, size_t max_bytes, int min_one,
                     int64_t hw, uint8_t **out, size_t *len, int64_t *next_offset,
                     struct stratus_errbuf *eb)
{
    struct stratus_stream *s = p->s;
    struct stratus_index_iter *it = stratus_index_iter_new(s->idx);
    uint8_t key[STRATUS_IDX_KEY_MAX], *buf = NULL;
    size_t klen = stratus_index_key_range(key, p->stream_id, offset), total = 0, cap = 0;
    struct objreader r;
    int found = 0, rc = 0, full = 0;

    *next_offset = offset;
    objreader_open(&r, s);
    for (stratus_index_iter_seek(it, key, klen); !full && stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        struct stratus_index_range rg;
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        uint64_t pos, end;

        if (stratus_index_range_decode(k, kl, v, vl, &rg) != 0) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "index: corrupt range of stream %llu",
                              (unsigned long long)p->stream_id);
            goto out;
        }
        if (rg.base_offset >= hw)
            break;
        found = 1;
        objreader_set(&r, rg.object_id);
        pos = rg.position;
        end = rg.position + rg.length;
        while (pos < end) {
            struct bhdr h;
            rc = read_bhdr(&r, pos, end, &h, eb);
            if (rc)
                goto out;
            if (h.last < offset) {
                pos += h.size;
                continue;
            }
            if (h.base >= hw || (total + h.size > max_bytes && !(min_one && total == 0))) {
                full = 1;
                break;
            }
            if (total + h.size > cap) {
                size_t ncap = cap ? cap * 2 : 65536;
                uint8_t *nb;
                while (ncap < total + h.size)
                    ncap *= 2;
                nb = realloc(buf, ncap);
                if (!nb) {
                    rc = stratus_errf(eb, STRATUS_ENOMEM, "cold read: out of memory");
                    goto out;
                }
                buf = nb;
                cap = ncap;
            }
            rc = objreader_read(&r, pos, h.size, buf + total, eb);
            if (rc)
                goto out;
            total += h.size;
            pos += h.size;
            *next_offset = h.last + 1;
        }
    }
    rc = stratus_index_iter_status(it, eb);
    if (rc == 0 && !found)
        rc = STRATUS_ENOTFOUND;
out:
    stratus_index_iter_free(it);
    objreader_close(&r);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = total;
    return 0;
}

int stratus_coldread_offset_for_time(struct stratus_partition *p, int64_t ts, int64_t *offset,
                                     int64_t *timestamp, struct stratus_errbuf *eb)
{
    struct stratus_stream *s = p->s;
    struct stratus_index_iter *it = stratus_index_iter_new(s->idx);
    struct stratus_index_range best = {0};
    uint8_t key[STRATUS_IDX_KEY_MAX];
    int64_t log_start, hw;
    size_t klen;
    struct objreader r;
    int have = 0, rc = 0;

    *offset = -1;
    *timestamp = -1;
    stratus_partition_offsets(p, &log_start, &hw, NULL);
    klen = stratus_index_key_range(key, p->stream_id, log_start);
    objreader_open(&r, s);
    for (stratus_index_iter_seek(it, key, klen); stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        struct stratus_index_range rg;
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        if (stratus_index_range_decode(k, kl, v, vl, &rg) != 0) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "index: corrupt range");
            goto out;
        }
        if (ts == -3) {
            if (!have || rg.max_timestamp > best.max_timestamp) {
                best = rg;
                have = 1;
            }
        } else if (rg.max_timestamp >= ts) {
            best = rg;
            have = 1;
            break;
        }
    }
    rc = stratus_index_iter_status(it, eb);
    if (rc || !have)
        goto out;
    /* The batch inside the range. */
    {
        uint64_t pos = best.position, end = best.position + best.length;
        int64_t bts = -1, boff = -1;
        objreader_set(&r, best.object_id);
        while (pos < end) {
            struct bhdr h;
            rc = read_bhdr(&r, pos, end, &h, eb);
            if (rc)
                goto out;
            pos += h.size;
            if (h.last < log_start)
                continue;
            if (ts == -3) {
                if (h.max_ts > bts) {
                    bts = h.max_ts;
                    boff = h.last;
                }
            } else if (h.max_ts >= ts) {
                bts = h.max_ts;
                boff = h.base < log_start ? log_start : h.base;
                break;
            }
        }
        *offset = boff;
        *timestamp = boff >= 0 ? bts : -1;
    }
out:
    objreader_close(&r);
    stratus_index_iter_free(it);
    return rc;
}
