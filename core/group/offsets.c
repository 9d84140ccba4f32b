/* offsets.c - committed offsets: the per-group sorted table the coordinator keeps in memory and
 * the RocksDB record of one offset.
 *
 * On disk (the 'G' prefix of the index, see core/index/index.c):
 *   key   'G' u16be group len, group, u16be topic len, topic, u32be partition ^ 0x80000000
 *   value u8 version=1, i64be offset, i32be leader epoch, i64be commit time (wall ms),
 *         u16be metadata len, metadata (at most offset.metadata.max.bytes = 4096)
 * All offsets of one group share the key prefix 'G' u16be len group, so a group is one range.
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
