/* offsets.c - committed offsets: the per-group sorted table the coordinator keeps in memory,
 * the RocksDB record of one offset and the cluster-mode blob of a whole group.
 *
 * On disk (the 'G' prefix of the index, see core/index/index.c):
 *   key   'G' u16be group len, group, u16be topic len, topic, u32be partition ^ 0x80000000
 *   value u8 version=1, i64be offset, i32be leader epoch, i64be commit time (wall ms),
 *         u16be metadata len, metadata (at most offset.metadata.max.bytes = 4096)
 * All offsets of one group share the key prefix 'G' u16be len group, so a group is one range.
 *
 * In cluster mode (etcd key groups/<g>, docs/cluster-design.md "Groups") a group's offsets are
 * one value, rewritten whole per commit batch:
 *   u8 format=1, u32be count, then count entries sorted by (topic, partition), each
 *   u16be topic len (1..249), topic, i32be partition (>= 0), then the 'G' value above
 *   (23 + metadata len bytes; its own metadata-length field gives its end).
 * There is no expire timestamp: retention is computed from the commit time and the time the
 * group became empty (group.c). A blob that does not parse exactly is refused whole.
 * The table is owned by the coordinator thread (group.c); nothing here locks.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "group.h"
#include "group_int.h"
#include "index/index.h"
#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

size_t stratus_offsets_key(
    uint8_t *buf, const char *group, size_t glen, const char *topic, size_t tlen, int32_t partition)
{
    size_t n = 0;

    if (glen > STRATUS_GROUP_ID_MAX || tlen > 249)
        return 0;
    buf[n++] = STRATUS_IDX_GROUP;
    stratus_be16_put(buf + n, (uint16_t)glen);
    n += 2;
    memcpy(buf + n, group, glen);
    n += glen;
    stratus_be16_put(buf + n, (uint16_t)tlen);
    n += 2;
    memcpy(buf + n, topic, tlen);
    n += tlen;
    stratus_be32_put(buf + n, (uint32_t)partition ^ 0x80000000u);
    return n + 4;
}

int stratus_offsets_key_parse(const uint8_t *k,
                              size_t klen,
                              const char **group,
                              size_t *glen,
                              const char **topic,
                              size_t *tlen,
                              int32_t *partition)
{
    size_t n = 1;

    if (klen < 1 + 2 + 2 + 4 || k[0] != STRATUS_IDX_GROUP)
        return STRATUS_ECORRUPT;
    *glen = stratus_be16_get(k + n);
    n += 2;
    if (*glen > STRATUS_GROUP_ID_MAX || klen < n + *glen + 2 + 4)
        return STRATUS_ECORRUPT;
    *group = (const char *)k + n;
    n += *glen;
    *tlen = stratus_be16_get(k + n);
    n += 2;
    if (*tlen > 249 || klen != n + *tlen + 4)
        return STRATUS_ECORRUPT;
    *topic = (const char *)k + n;
    n += *tlen;
    *partition = (int32_t)(stratus_be32_get(k + n) ^ 0x80000000u);
    return 0;
}

size_t stratus_offsets_value_encode(uint8_t *out,
                                    int64_t offset,
                                    int32_t leader_epoch,
                                    int64_t commit_ms,
                                    const char *meta,
                                    size_t metalen)
{
    out[0] = 1;
    stratus_be64_put(out + 1, (uint64_t)offset);
    stratus_be32_put(out + 9, (uint32_t)leader_epoch);
    stratus_be64_put(out + 13, (uint64_t)commit_ms);
    stratus_be16_put(out + 21, (uint16_t)metalen);
    if (metalen)
        memcpy(out + STRATUS_OFFSETS_VALUE_FIXED, meta, metalen);
    return STRATUS_OFFSETS_VALUE_FIXED + metalen;
}

int stratus_offsets_value_decode(const uint8_t *v,
                                 size_t vlen,
                                 int64_t *offset,
                                 int32_t *leader_epoch,
                                 int64_t *commit_ms,
                                 const char **meta,
                                 size_t *metalen)
{
    if (vlen < STRATUS_OFFSETS_VALUE_FIXED || v[0] != 1)
        return STRATUS_ECORRUPT;
    *offset = (int64_t)stratus_be64_get(v + 1);
    *leader_epoch = (int32_t)stratus_be32_get(v + 9);
    *commit_ms = (int64_t)stratus_be64_get(v + 13);
    *metalen = stratus_be16_get(v + 21);
    if (vlen != STRATUS_OFFSETS_VALUE_FIXED + *metalen)
        return STRATUS_ECORRUPT;
    *meta = (const char *)v + STRATUS_OFFSETS_VALUE_FIXED;
    return 0;
}

static int offsets_cmp(const struct stratus_offset *e, const char *topic, int32_t partition)
{
    int c = strcmp(e->topic, topic);
    if (c)
        return c;
    return e->partition < partition ? -1 : e->partition > partition;
}

/* The first index whose entry is >= (topic, partition). */
static size_t
offsets_lower_bound(const struct stratus_offsets *o, const char *topic, int32_t partition)
{
    size_t lo = 0, hi = o->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (offsets_cmp(&o->v[mid], topic, partition) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

long stratus_offsets_find(const struct stratus_offsets *o, const char *topic, int32_t partition)
{
    size_t i = offsets_lower_bound(o, topic, partition);
    if (i < o->n && offsets_cmp(&o->v[i], topic, partition) == 0)
        return (long)i;
    return -1;
}

void stratus_offsets_set(struct stratus_offsets *o,
                         const char *topic,
                         int32_t partition,
                         int64_t offset,
                         int32_t leader_epoch,
                         const char *meta,
                         size_t metalen,
                         int64_t commit_ms)
{
    size_t i = offsets_lower_bound(o, topic, partition);
    struct stratus_offset *e;

    if (i < o->n && offsets_cmp(&o->v[i], topic, partition) == 0) {
        e = &o->v[i];
        free(e->meta);
    } else {
        if (o->n == o->cap) {
            o->cap = o->cap ? o->cap * 2 : 8;
            o->v = xrealloc(o->v, o->cap * sizeof *o->v);
        }
        memmove(&o->v[i + 1], &o->v[i], (o->n - i) * sizeof *o->v);
        o->n++;
        e = &o->v[i];
        e->topic = xstrdup(topic);
        e->partition = partition;
    }
    e->offset = offset;
    e->leader_epoch = leader_epoch;
    e->meta = xstrndup(meta ? meta : "", meta ? metalen : 0);
    e->commit_ms = commit_ms;
}

void stratus_offsets_remove_at(struct stratus_offsets *o, size_t i)
{
    if (i >= o->n)
        return;
    free(o->v[i].topic);
    free(o->v[i].meta);
    memmove(&o->v[i], &o->v[i + 1], (o->n - i - 1) * sizeof *o->v);
    o->n--;
}

void stratus_offsets_free(struct stratus_offsets *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->v[i].topic);
        free(o->v[i].meta);
    }
    free(o->v);
    memset(o, 0, sizeof *o);
}

void stratus_offsets_copy(struct stratus_offsets *dst, const struct stratus_offsets *src)
{
    memset(dst, 0, sizeof *dst);
    if (!src->n)
        return;
    dst->v = xcalloc(src->n, sizeof *dst->v);
    dst->cap = dst->n = src->n;
    for (size_t i = 0; i < src->n; i++) {
        dst->v[i] = src->v[i];
        dst->v[i].topic = xstrdup(src->v[i].topic);
        dst->v[i].meta = xstrdup(src->v[i].meta);
    }
}

#define BLOB_FORMAT 1
#define BLOB_HEADER 5 /* u8 format, u32be count */

void stratus_offsets_blob_encode(const struct stratus_offsets *o, uint8_t **out, size_t *len)
{
    size_t n = BLOB_HEADER;

    for (size_t i = 0; i < o->n; i++)
        n += 2 + strlen(o->v[i].topic) + 4 + STRATUS_OFFSETS_VALUE_FIXED + strlen(o->v[i].meta);
    uint8_t *b = xmalloc(n);
    size_t k = 0;
    b[k++] = BLOB_FORMAT;
    stratus_be32_put(b + k, (uint32_t)o->n);
    k += 4;
    for (size_t i = 0; i < o->n; i++) {
        const struct stratus_offset *e = &o->v[i];
        size_t tl = strlen(e->topic);
        stratus_be16_put(b + k, (uint16_t)tl);
        k += 2;
        memcpy(b + k, e->topic, tl);
        k += tl;
        stratus_be32_put(b + k, (uint32_t)e->partition);
        k += 4;
        k += stratus_offsets_value_encode(b + k, e->offset, e->leader_epoch, e->commit_ms, e->meta,
                                          strlen(e->meta));
    }
    *out = b;
    *len = k;
}

int stratus_offsets_blob_decode(const uint8_t *v, size_t len, struct stratus_offsets *out)
{
    size_t k = BLOB_HEADER;
    uint32_t count;

    memset(out, 0, sizeof *out);
    if (len < BLOB_HEADER || v[0] != BLOB_FORMAT)
        return STRATUS_ECORRUPT;
    count = stratus_be32_get(v + 1);
    /* each entry takes at least 2 + 1 + 4 + 23 bytes: a count beyond that is a lie */
    if (count > (len - BLOB_HEADER) / (2 + 1 + 4 + STRATUS_OFFSETS_VALUE_FIXED))
        return STRATUS_ECORRUPT;
    for (uint32_t i = 0; i < count; i++) {
        char topic[250];
        size_t tl, vl, ml;
        int32_t part, epoch;
        int64_t off, ts;
        const char *meta;

        if (len - k < 2)
            goto corrupt;
        tl = stratus_be16_get(v + k);
        k += 2;
        if (tl == 0 || tl > 249 || len - k < tl + 4 + STRATUS_OFFSETS_VALUE_FIXED)
            goto corrupt;
        memcpy(topic, v + k, tl);
        topic[tl] = 0;
        if (memchr(topic, 0, tl))
            goto corrupt;
        k += tl;
        part = (int32_t)stratus_be32_get(v + k);
        k += 4;
        vl = STRATUS_OFFSETS_VALUE_FIXED + stratus_be16_get(v + k + 21);
        if (part < 0 || len - k < vl ||
            stratus_offsets_value_decode(v + k, vl, &off, &epoch, &ts, &meta, &ml) != 0 ||
            ml > STRATUS_OFFSET_METADATA_MAX || memchr(meta, 0, ml))
            goto corrupt;
        k += vl;
        stratus_offsets_set(out, topic, part, off, epoch, meta, ml, ts);
    }
    if (k != len)
        goto corrupt;
    return 0;

corrupt:
    stratus_offsets_free(out);
    return STRATUS_ECORRUPT;
}
