/* uploader.c - the uploader thread: log cache -> stream-set object -> storage -> index -> WAL
 * trim.
 *
 * A round starts when object_target_bytes are pending, when the oldest pending data is
 * upload_interval_ms old, when the log cache is over its budget, or on flush. It takes, under
 * each partition's lock, a reference on each durable batch not yet uploaded (a prefix of each
 * partition's pending batches) and copies them, after the lock, into one object (objfmt.c;
 * the buffer is kept from round to round) - or, in gather mode (conf.upload_in_place, a
 * storage plugin with putv, single node), builds the object as pieces in which batches of
 * 64 KiB or more stay where they were received, referenced until the put is done,
 * allocates the object id from the index counter BEFORE the put, puts it through
 * stratus_storage_put or _putv (which retry; marked bulk when another object's worth waits
 * behind it), then commits every range to the offset index
 * (a partition may have several ranges in a gather-mode object; with its
 * time index entry when it raises the stream's running maximum timestamp, see index.c) and the
 * object to the objects table in ONE synced write batch. Only then are the batches marked
 * uploaded (evictable), and the WAL trimmed up to the lowest LSN still needed by data not yet
 * uploaded. A failed put leaves everything pending for the next round
 * (the allocated id is simply never used).
 * Cluster mode (conf.cluster, docs/cluster-design.md): only partitions served here (OWNER,
 * RESIGNING, RECOVERING; those two first) contribute, at most conf.max_streams_per_object
 * streams per object; object ids come from the metastore (ops->alloc_ids, blocks of 64);
 * ops->prepare_object runs before the PUT and ops->commit_object (ranges, partitions, producer
 * snapshots as of each range's end) after it is the commit. Partitions it reports lost are
 * fenced (stratus_partition_fence, ops->lost) and their ranges not indexed; the others are
 * then indexed locally as above. When the commit's outcome is unknown everything stays
 * pending and the object is left to the controller's prepared-object collection (deleting it
 * could delete committed data). Batches recovered from another broker's WAL
 * (STRATUS_LSN_NONE) never hold back the trim.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "objfmt.h"
#include "plugin/plugin.h"
#include "stream_int.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#define UPLOAD_RETRY_MS 1000 /* the pause after a failed round */

/* Batches of UPLOAD_INPLACE_MIN bytes or more are put from where they are (gather mode) */
#define UPLOAD_INPLACE_MIN (64u * 1024)

struct taken {
    struct stratus_partition *p;
    size_t count;    /* batches taken (follow the uploaded prefix) */
    uint64_t bytes;
    size_t range;    /* index in the builder's ranges of its first, or SIZE_MAX */
    size_t nranges;  /* its ranges: one, or in gather mode several */
    struct stratus_lent *lent; /* gather mode: the batches, referenced until the put is done */
    size_t nlent;
    uint64_t gen;    /* p->own_gen when taken */
    int committed;   /* its range is committed (index, or metastore in cluster mode) */
};

void stratus_uploader_wake(struct stratus_stream *s)
{
    pthread_mutex_lock(&s->up_lock);
    pthread_cond_signal(&s->up_cond);
    pthread_mutex_unlock(&s->up_lock);
}

/* Adds to ib the time index entries of ranges r[0..n) of one stream, in offset order, that
 * raise the stream's running maximum (its last 'X' entry, then each other). The caller holds
 * meta_lock, under which every 'X' writer runs. */
static int time_index_add(struct stratus_stream *s, struct stratus_index_batch *ib,
                          const struct stratus_index_range *r, size_t n,
                          struct stratus_errbuf *eb)
{
    struct stratus_index_time_run run;
    int rc = stratus_index_time_run_load(s->idx, r->stream_id, &run, eb);

    for (size_t i = 0; rc == 0 && i < n; i++)
        stratus_index_time_step(ib, &run, &r[i]);
    return rc;
}

static uint64_t max_object_bytes(struct stratus_stream *s)
{
    uint64_t m = s->conf.object_target_bytes * 2;
    return m < (1u << 20) ? (1u << 20) : m;
}

void stratus_stream_hold_wal(struct stratus_stream *s, uint64_t lsn)
{
    pthread_mutex_lock(&s->hold_lock);
    if (lsn < s->hold_lsn)
        s->hold_lsn = lsn;
    s->hold_until_ms = stratus_mono_ms() + s->conf.fenced_wal_hold_ms;
    pthread_mutex_unlock(&s->hold_lock);
    LOG_INFO("stream", "WAL kept from lsn %llu for %lld ms: a fenced partition's records were "
             "not uploaded (its next owner recovers them from this WAL)",
             (unsigned long long)lsn, (long long)s->conf.fenced_wal_hold_ms);
}

/* Trims the WAL to the lowest LSN any partition still needs (bounded by durable_before) and
 * any hold of stratus_stream_hold_wal. */
static void trim_wal(struct stratus_stream *s, struct stratus_partition **parts, size_t n,
                     uint64_t durable_before)
{
    struct stratus_wal_stats ws;
    struct stratus_errbuf eb = {{0}};
    uint64_t upto = durable_before;

    for (size_t i = 0; i < n; i++) {
        struct stratus_partition *p = parts[i];
        pthread_mutex_lock(&p->lock);
        /* the first pending batch that is in this WAL (recovered ones are not) */
        for (size_t j = p->lc_up; !p->deleted && j < p->lc_n; j++) {
            uint64_t lsn = p->lc[p->lc_head + j]->lsn;
            if (lsn == STRATUS_LSN_NONE)
                continue;
            if (lsn < upto)
                upto = lsn;
            break;
        }
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_lock(&s->hold_lock);
    if (s->hold_lsn != UINT64_MAX && stratus_mono_ms() >= s->hold_until_ms) {
        LOG_INFO("stream", "WAL hold at lsn %llu released after %lld ms",
                 (unsigned long long)s->hold_lsn, (long long)s->conf.fenced_wal_hold_ms);
        s->hold_lsn = UINT64_MAX;
    }
    if (s->hold_lsn < upto)
        upto = s->hold_lsn;
    pthread_mutex_unlock(&s->hold_lock);
    stratus_wal_get_stats(s->wal, &ws);
    if (upto > ws.trim_lsn && stratus_wal_trim(s->wal, upto, &eb) != 0)
        LOG_WARN("stream", "WAL trim to %llu: %s", (unsigned long long)upto, eb.msg);
}

/* One uploaded batch in the log cache, for evict_over_budget. */
struct evict_ent {
    uint64_t lsn;  /* its WAL LSN; 0 for a batch recovered from another WAL (older) */
    uint32_t mem;  /* what it is charged (stratus_lc_batch.mem) */
    uint32_t part; /* index in parts */
};

static int evict_ent_cmp(const void *a, const void *b)
{
    const struct evict_ent *x = a, *y = b;
    if (x->lsn != y->lsn)
        return x->lsn < y->lsn ? -1 : 1;
    return x->part < y->part ? -1 : x->part > y->part;
}

static void evict_over_budget(struct stratus_stream *s, struct stratus_partition **parts, size_t n)
{
    /* Evict down to 90% of the budget, or 64 MiB under it when that is less, so that the next
     * appends do not put the cache over it again at once (hysteresis). First drop what
     * retention made unreadable; then the globally oldest uploaded batches, by WAL LSN (the
     * order they were written in), whatever their partition, so that the data written last
     * stays cached for the consumers reading it. (A share of the excess per partition, in
     * proportion to what it held, also took the share of the partitions written last: in
     * workload 2c, 256 MiB just written to 128 partitions, ~30% of it was then read from
     * objects.) Only the oldest `excess` bytes of each partition can be among the globally
     * oldest `excess` bytes, so only those are gathered and sorted, not every cached batch
     * (at a budget of gigabytes, a scan of each partition's whole cache under its lock). */
    uint64_t slack = s->conf.log_cache_bytes / 10;
    if (slack > (64u << 20))
        slack = 64u << 20;
    uint64_t budget = s->conf.log_cache_bytes - slack;
    struct evict_ent *ents = NULL;
    size_t nents = 0, cap = 0;

    for (size_t i = 0; i < n; i++)
        stratus_partition_evict(parts[i], 0);
    uint64_t used = atomic_load(&s->lc_bytes);
    if (used <= budget)
        return;
    uint64_t excess = used - budget, freed = 0;
    /* The uploaded prefix of every partition (only the uploader raises lc_up; appends add at
     * the tail), then the oldest of them up to the excess. */
    for (size_t i = 0; i < n; i++) {
        struct stratus_partition *p = parts[i];
        pthread_mutex_lock(&p->lock);
        uint64_t took = 0;
        for (size_t j = 0; j < p->lc_up && took < excess; j++) {
            const struct stratus_lc_batch *lb = p->lc[p->lc_head + j];
            if (nents == cap) {
                cap = cap * 2 + 256;
                ents = xrealloc(ents, cap * sizeof *ents);
            }
            ents[nents++] = (struct evict_ent){
                lb->lsn == STRATUS_LSN_NONE ? 0 : lb->lsn, lb->mem, (uint32_t)i};
            took += lb->mem;
        }
        pthread_mutex_unlock(&p->lock);
    }
    if (nents == 0) {
        free(ents);
        return;
    }
    qsort(ents, nents, sizeof *ents, evict_ent_cmp);
    /* per partition, the bytes of its batches to go: a prefix of its cache, in order (LSNs
     * grow along a partition's cache), which stratus_partition_evict() takes from its head */
    uint64_t *want = xcalloc(n, sizeof *want);
    for (size_t k = 0; k < nents && freed < excess; k++) {
        want[ents[k].part] += ents[k].mem;
        freed += ents[k].mem;
    }
    for (size_t i = 0; i < n; i++)
        if (want[i])
            stratus_partition_evict(parts[i], want[i]);
    free(want);
    free(ents);
}

/* The next object id: the index counter, or (cluster mode) the metastore's global counter,
 * allocated STRATUS_OBJECT_ID_BLOCK at a time and handed out here. Uploader thread only. */
static int next_object_id(struct stratus_stream *s, uint64_t *oid, struct stratus_errbuf *eb)
{
    const struct stratus_stream_cluster_ops *ops = s->conf.cluster;

    if (!ops)
        return stratus_index_counter_next(s->idx, "object", 1, oid, eb);
    if (s->oid_next == s->oid_end) {
        uint64_t first = 0;
        int rc = ops->alloc_ids(ops->arg, "object", STRATUS_OBJECT_ID_BLOCK, &first, eb);
        if (rc)
            return rc;
        s->oid_next = first;
        s->oid_end = first + STRATUS_OBJECT_ID_BLOCK;
    }
    *oid = s->oid_next++;
    return 0;
}

/* The order in which a round takes partitions (when their pending data is more than one object
 * holds, the ones at the end wait for the next round). Resigning and recovering ones first (a
 * hand-over or a recovery waits for them), then owned ones, then the rest; within a rank, the
 * one whose oldest pending batch is oldest in the WAL first (recovered batches, which are in
 * no WAL of ours, before all). The WAL is trimmed only up to the oldest batch not uploaded, so
 * a round that takes partitions in a fixed order while it is behind leaves the same ones
 * behind every round: their first batch holds the trim back until the ring is full and every
 * produce waits (seen beside a catch-up reader: 438 MB of the 512 MiB ring in use with 90 MB
 * pending). Oldest first, each round moves the trim point. Each partition's role and oldest
 * LSN are read once; reorders parts in place (stable). */
struct part_order {
    uint64_t lsn; /* oldest pending batch's; 0 recovered; UINT64_MAX nothing pending */
    size_t at;
    int rank;
};

static int part_order_cmp(const void *a, const void *b)
{
    const struct part_order *x = a, *y = b;

    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    if (x->lsn != y->lsn)
        return x->lsn < y->lsn ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

void stratus_uploader_order(struct stratus_partition **parts, size_t n)
{
    struct stratus_partition **tmp = xcalloc(n ? n : 1, sizeof *tmp);
    struct part_order *ord = xcalloc(n ? n : 1, sizeof *ord);

    for (size_t i = 0; i < n; i++) {
        struct stratus_partition *p = parts[i];
        int r = atomic_load(&p->role);
        ord[i].rank = (r == STRATUS_ROLE_RESIGNING || r == STRATUS_ROLE_RECOVERING) ? 0
                      : r == STRATUS_ROLE_OWNER                                     ? 1
                                                                                    : 2;
        ord[i].at = i;
        ord[i].lsn = UINT64_MAX;
        pthread_mutex_lock(&p->lock);
        if (p->lc_up < p->lc_n) {
            uint64_t lsn = p->lc[p->lc_head + p->lc_up]->lsn;
            ord[i].lsn = lsn == STRATUS_LSN_NONE ? 0 : lsn;
        }
        pthread_mutex_unlock(&p->lock);
    }
    qsort(ord, n, sizeof *ord, part_order_cmp);
    for (size_t i = 0; i < n; i++)
        tmp[i] = parts[ord[i].at];
    memcpy(parts, tmp, n * sizeof *parts);
    free(ord);
    free(tmp);
}

/* The index range of range ri of object oid. */
static struct stratus_index_range taken_range(const struct stratus_objfmt_builder *b, size_t ri,
                                              uint64_t oid)
{
    const struct stratus_objfmt_range *r = &b->ranges[ri];
    return (struct stratus_index_range){.stream_id = r->stream_id,
                                        .base_offset = r->base_offset,
                                        .last_offset = r->last_offset,
                                        .max_timestamp = r->max_timestamp,
                                        .object_id = oid, .position = r->position,
                                        .length = r->length, .batches = r->batches};
}

/* Cluster mode: the fenced commit of the object through the hooks. Ranges of partitions that
 * left the ownership they were taken under are not offered; ranges the metastore refuses
 * (lost[i]) fence their partitions. Sets tk[i].committed. Returns 0 when the outcome is known
 * (something or nothing committed), or the hook's error when nothing is known to be
 * committed (everything stays pending). */
static int cluster_commit(struct stratus_stream *s, const struct stratus_objfmt_builder *b,
                          struct taken *tk, size_t n, const struct stratus_index_object *o,
                          size_t *ncommitted, struct stratus_errbuf *eb)
{
    const struct stratus_stream_cluster_ops *ops = s->conf.cluster;
    size_t cap = b->nranges ? b->nranges : 1, m = 0;
    struct stratus_index_range *ranges = xcalloc(cap, sizeof *ranges);
    struct stratus_partition **parts = xcalloc(cap, sizeof *parts);
    uint8_t **pst = xcalloc(cap, sizeof *pst);
    size_t *pstl = xcalloc(cap, sizeof *pstl), *map = xcalloc(cap, sizeof *map);
    int *lost = xcalloc(cap, sizeof *lost);
    int64_t now = stratus_wall_ms();
    int rc = 0;

    *ncommitted = 0;
    for (size_t i = 0; i < n; i++) {
        struct stratus_partition *p = tk[i].p;
        if (!tk[i].count)
            continue;
        ranges[m] = taken_range(b, tk[i].range, o->object_id); /* one: no gather mode */
        pthread_mutex_lock(&p->lock);
        if (p->deleted || p->own_gen != tk[i].gen ||
            atomic_load(&p->role) == STRATUS_ROLE_NONE) {
            pthread_mutex_unlock(&p->lock);
            continue; /* its bytes stay dead in the object */
        }
        /* the producer state as of the range's end: what a new owner may rely on */
        if (p->producers.n || p->producers.expired_pid_end)
            stratus_pstate_encode(&p->producers, ranges[m].last_offset + 1, now, &pst[m],
                                  &pstl[m]);
        pthread_mutex_unlock(&p->lock);
        parts[m] = p;
        map[m] = i;
        m++;
    }
    if (m == 0) {
        LOG_DEBUG("stream", "object %llu: no partition left to commit",
                  (unsigned long long)o->object_id);
        goto out;
    }
    {
        struct stratus_index_object oc = *o;
        oc.live_ranges = (uint32_t)m;
        rc = ops->commit_object(ops->arg, &oc, ranges, parts, (const uint8_t *const *)pst, pstl,
                                m, lost, eb);
    }
    if (rc != 0 && rc != STRATUS_EEXIST)
        goto out;
    for (size_t j = 0; j < m; j++) {
        if (rc == STRATUS_EEXIST && lost[j]) {
            LOG_WARN("stream", "commit of object %llu: topic=%s partition=%d is owned "
                     "elsewhere; fenced", (unsigned long long)o->object_id, parts[j]->topic,
                     parts[j]->index);
            stratus_partition_fence(parts[j]);
            if (ops->lost)
                ops->lost(ops->arg, parts[j]);
            continue;
        }
        tk[map[j]].committed = 1;
        (*ncommitted)++;
    }
    rc = 0;
out:
    for (size_t j = 0; j < cap; j++)
        free(pst[j]);
    free(pst);
    free(pstl);
    free(map);
    free(lost);
    free(parts);
    free(ranges);
    return rc;
}

int stratus_uploader_round(struct stratus_stream *s, struct stratus_errbuf *eb)
{
    struct stratus_wal_stats ws;
    struct stratus_objfmt_builder b;
    struct stratus_partition **parts;
    struct taken *tk = NULL;
    struct stratus_lent *lent = NULL; /* one partition's batches, referenced while copied */
    struct stratus_index_batch *ib = NULL;
    uint8_t *obj = NULL;
    size_t n = 0, objlen = 0, ncommitted = 0;
    uint64_t limit = max_object_bytes(s), total = 0, oid = 0, waiting;
    struct stratus_put_opts po = {.size = sizeof po};
    int64_t started = stratus_mono_ms();
    int cluster = STRATUS_CLUSTER(s);
    /* Gather mode: the object is put as pieces, large batches from where they are, so that
     * storage-local's O_DIRECT write reads them there and nothing copies them (their copy
     * into one buffer was 19% of the broker's CPU in workload 1: cold memory, received long
     * before). Not in cluster mode, whose commit takes one range per partition. */
    int gather = !cluster && s->conf.upload_in_place && stratus_storage_has_putv(s->st);
    const struct stratus_iov *iov = NULL;
    size_t niov = 0;
    size_t max_streams = s->conf.max_streams_per_object > 0
                             ? (size_t)s->conf.max_streams_per_object
                             : SIZE_MAX;
    char okey[64];
    int rc = 0;

    stratus_wal_get_stats(s->wal, &ws); /* before the scan: see trim_wal */
    parts = stratus_topic_all_partitions(s, &n);
    stratus_uploader_order(parts, n);
    tk = xcalloc(n ? n : 1, sizeof *tk);
    /* the previous round's buffer: no fresh 32+ MiB allocation (page faults) per object, and
     * it stays 4 KiB-aligned for O_DIRECT puts */
    stratus_objfmt_init_buf(&b, s->up_buf, s->up_cap);
    if (gather)
        stratus_objfmt_set_gather(&b);
    s->up_buf = NULL;
    s->up_cap = 0;
    /* Room for what is pending (up to the limit, plus one batch past it and the index), grown
     * and faulted in now: the copies below run under partition locks, which the WAL's
     * completions also take, so a reallocation or page fault there stalls every produce. */
    {
        uint64_t want = atomic_load(&s->pending_bytes);
        want = (want < limit ? want : limit) + (1u << 20);
        if (stratus_objfmt_reserve(&b, (size_t)want) != 0) {
            rc = stratus_errf(eb, STRATUS_ENOMEM, "building object: out of memory");
            goto fail;
        }
    }
    for (size_t i = 0; i < n && total < limit && b.nranges < max_streams; i++) {
        struct stratus_partition *p = parts[i];
        size_t nlent = 0, caplent = 0;
        tk[i].p = p;
        tk[i].range = SIZE_MAX;
        /* Under the lock only the choice of batches and a reference on each; the copy into the
         * object runs after it. A partition's copy is ~2 MiB of cold memory per object at
         * workload 5 (about 1 ms), and every append and WAL completion of the partition
         * waits for its lock: held through the copies, each object cut stalled produce
         * responses by a few ms. The batches are immutable and the references keep them. */
        pthread_mutex_lock(&p->lock);
        tk[i].gen = p->own_gen;
        /* NONE: not served here (cluster mode); its replayed data waits for a claim */
        if (!p->deleted && atomic_load(&p->role) != STRATUS_ROLE_NONE) {
            uint64_t sum = total;
            for (size_t j = p->lc_up; j < p->lc_n && sum < limit; j++) {
                struct stratus_lc_batch *lb = p->lc[p->lc_head + j];
                if (lb->last >= p->hw)
                    break; /* not durable yet */
                if (nlent == caplent) {
                    caplent = caplent ? caplent * 2 : 64;
                    lent = xrealloc(lent, caplent * sizeof *lent);
                }
                atomic_fetch_add_explicit(&lb->refs, 1, memory_order_relaxed);
                lent[nlent++] = (struct stratus_lent){lb->data, lb->len, lb, stratus_lc_unref};
                sum += lb->len;
            }
        }
        pthread_mutex_unlock(&p->lock);
        for (size_t k = 0; k < nlent; k++) {
            const struct stratus_lc_batch *lb = lent[k].ref;
            if (tk[i].count == 0) {
                stratus_objfmt_begin_range(&b, p->stream_id);
                tk[i].range = b.nranges - 1;
            }
            if ((gather && lb->len >= UPLOAD_INPLACE_MIN
                     ? stratus_objfmt_add_inplace(&b, lb->data, lb->len, lb->base, lb->last,
                                                  lb->max_ts)
                     : stratus_objfmt_add_batch(&b, lb->data, lb->len, lb->base, lb->last,
                                                lb->max_ts)) != 0)
                break; /* out of memory: the rest waits for the next object */
            tk[i].count++;
            tk[i].bytes += lb->len;
            total += lb->len;
        }
        if (nlent && gather) { /* the object references them until the put is done */
            tk[i].lent = lent;
            tk[i].nlent = nlent;
            lent = NULL;
        } else if (nlent) {
            stratus_lent_release(lent, (int)nlent); /* frees the array too */
            lent = NULL;
        }
        if (tk[i].count) {
            stratus_objfmt_end_range(&b);
            tk[i].nranges = b.nranges - tk[i].range;
        }
    }
    if (total == 0)
        goto trim;

    rc = next_object_id(s, &oid, eb);
    if (rc)
        goto fail;
    if (gather) {
        uint64_t glen = 0;
        rc = stratus_objfmt_finish_pieces(&b, &iov, &niov, &glen);
        objlen = (size_t)glen;
    } else {
        rc = stratus_objfmt_finish(&b, &obj, &objlen);
    }
    if (rc) {
        rc = stratus_errf(eb, rc, "building object: out of memory");
        goto fail;
    }
    stratus_objfmt_key(oid, okey, sizeof okey);
    if (cluster) { /* recorded first, so that it is collected if it is never committed */
        rc = s->conf.cluster->prepare_object(s->conf.cluster->arg, oid, okey, eb);
        if (rc)
            goto fail;
    }
    /* bulk: another object's worth is already waiting behind this one, so the plugin may put
     * throughput first (storage-local's larger writes; docs/benchmarks.md round 24) */
    waiting = atomic_load(&s->pending_bytes);
    po.bulk = waiting >= total && waiting - total >= s->conf.object_target_bytes;
    rc = gather ? stratus_storage_putv(s->st, okey, iov, niov, &po, NULL, eb)
                : stratus_storage_put(s->st, okey, obj, objlen, &po, NULL, eb);
    if (rc)
        goto fail;
    for (size_t i = 0; i < n; i++) { /* put: the batches are no longer referenced by it */
        if (tk[i].nlent)
            stratus_lent_release(tk[i].lent, (int)tk[i].nlent);
        tk[i].lent = NULL;
        tk[i].nlent = 0;
    }

    if (cluster) {
        /* The metastore's transaction is the commit. When its outcome is unknown the object
         * is NOT deleted here: it may be committed; if it is not, the controller deletes it
         * as an expired prepared object. Everything stays pending for the next round. */
        struct stratus_index_object o = {.object_id = oid, .size = objlen,
                                         .live_ranges = (uint32_t)b.nranges,
                                         .created_ms = stratus_wall_ms()};
        snprintf(o.key, sizeof o.key, "%s", okey);
        rc = cluster_commit(s, &b, tk, n, &o, &ncommitted, eb);
        if (rc)
            goto fail;
    } else {
        for (size_t i = 0; i < n; i++)
            tk[i].committed = tk[i].count != 0;
        ncommitted = b.nranges;
    }

    /* One synced batch: every committed range and the object (in cluster mode a local copy
     * of what the metastore now holds, for cold reads and time lookups). */
    ib = stratus_index_batch_new();
    if (ncommitted) {
        uint8_t key[STRATUS_IDX_KEY_MAX], val[512];
        size_t klen, vlen;
        struct stratus_index_object o = {.object_id = oid, .size = objlen,
                                         .live_ranges = (uint32_t)ncommitted,
                                         .created_ms = stratus_wall_ms()};
        snprintf(o.key, sizeof o.key, "%s", okey);
        pthread_mutex_lock(&s->meta_lock);
        for (size_t i = 0; i < n; i++) {
            struct stratus_index_range *ir;
            int deleted;
            if (!tk[i].committed)
                continue;
            ir = xcalloc(tk[i].nranges, sizeof *ir);
            for (size_t j = 0; j < tk[i].nranges; j++) {
                uint8_t rv[STRATUS_IDX_RANGE_VALUE_SIZE];
                ir[j] = taken_range(&b, tk[i].range + j, oid);
                stratus_index_range_encode(&ir[j], rv);
                klen = stratus_index_key_range(key, ir[j].stream_id, ir[j].last_offset);
                stratus_index_batch_put(ib, key, klen, rv, sizeof rv);
            }
            rc = time_index_add(s, ib, ir, tk[i].nranges, eb);
            free(ir);
            if (rc && !cluster) { /* nothing committed: the object is garbage, as below */
                const char *keys[1] = {okey};
                struct stratus_errbuf eb2;
                pthread_mutex_unlock(&s->meta_lock);
                stratus_storage_del(s->st, keys, 1, &eb2);
                goto fail;
            }
            rc = 0; /* cluster mode: committed already; the time index is only slower */
            pthread_mutex_lock(&tk[i].p->lock);
            deleted = tk[i].p->deleted;
            pthread_mutex_unlock(&tk[i].p->lock);
            if (deleted) { /* deleted meanwhile: make sure retention collects the range */
                klen = stratus_index_key_delstream(key, tk[i].p->stream_id);
                stratus_index_batch_put(ib, key, klen, "", 0);
            } else { /* the producer state travels with the data (producer.c) */
                stratus_pstate_snapshot(tk[i].p, ib);
            }
        }
        klen = stratus_index_key_object(key, oid);
        vlen = stratus_index_object_encode(&o, val, sizeof val);
        stratus_index_batch_put(ib, key, klen, val, vlen);
        rc = stratus_index_batch_write(s->idx, ib, 1, eb);
        pthread_mutex_unlock(&s->meta_lock);
        if (rc && cluster) {
            /* committed in the metastore, which the next claim loads from: go on */
            LOG_ERROR("stream", "object %s committed, but the local index write failed: %s",
                      okey, eb->msg);
            rc = 0;
        } else if (rc) {
            /* The object is in storage but unknown to the index: it is garbage. The data stays
             * pending and goes into a new object next round. */
            const char *keys[1] = {okey};
            struct stratus_errbuf eb2;
            stratus_storage_del(s->st, keys, 1, &eb2);
            goto fail;
        }
    }

    /* Mark uploaded, unless the partition changed hands meanwhile (its cache is not the one
     * the batches were taken from any more). */
    for (size_t i = 0; i < n; i++) {
        struct stratus_partition *p = tk[i].p;
        if (!tk[i].committed)
            continue;
        pthread_mutex_lock(&p->lock);
        if (!p->deleted && p->own_gen == tk[i].gen) {
            p->lc_up += tk[i].count;
            if (p->lc_up > p->lc_n)
                p->lc_up = p->lc_n;
            atomic_fetch_sub(&s->pending_bytes, tk[i].bytes);
            atomic_fetch_add(&s->settled_bytes, tk[i].bytes);
        }
        pthread_mutex_unlock(&p->lock);
    }
    atomic_fetch_add(&s->objects_uploaded, 1);
    if (po.bulk)
        atomic_fetch_add(&s->objects_bulk, 1);
    atomic_fetch_add(&s->object_bytes_uploaded, objlen);
    LOG_DEBUG("stream", "uploaded object=%s bytes=%zu ranges=%zu committed=%zu", okey, objlen,
              b.nranges, ncommitted);

trim:
    atomic_store(&s->oldest_pending_ms, atomic_load(&s->pending_bytes) ? started : 0);
    evict_over_budget(s, parts, n);
    trim_wal(s, parts, n, ws.durable_lsn);
    goto out;
fail:
    atomic_fetch_add(&s->upload_failures, 1);
    LOG_WARN("stream", "upload failed: %s", eb->msg);
out:
    stratus_index_batch_free(ib);
    if (!obj && b.buf) { /* nothing finished: keep the builder's buffer */
        obj = b.buf;
        b.out_cap = b.cap;
        b.buf = NULL;
    }
    if (obj && b.out_cap <= 2 * limit + (1u << 20)) {
        s->up_buf = obj;
        s->up_cap = b.out_cap;
    } else {
        free(obj);
    }
    stratus_objfmt_free(&b);
    for (size_t i = 0; i < n; i++) {
        if (tk[i].nlent)
            stratus_lent_release(tk[i].lent, (int)tk[i].nlent);
        stratus_partition_release(parts[i]);
    }
    free(parts);
    free(tk);
    return rc;
}

static int upload_due(struct stratus_stream *s)
{
    uint64_t pending = atomic_load(&s->pending_bytes);
    int64_t oldest = atomic_load(&s->oldest_pending_ms);

    if (s->flush_req > s->flush_done)
        return 1;
    if (!pending)
        return 0;
    /* A full log cache is relieved by evicting uploaded data (idle_upkeep); it calls
     * for an early upload only when data not yet uploaded holds half of it. */
    return pending >= s->conf.object_target_bytes || pending > s->conf.log_cache_bytes / 2 ||
           (oldest && stratus_mono_ms() - oldest >= s->conf.upload_interval_ms);
}

/* Upkeep between uploads, without uploading anything: evicts uploaded data when the log cache
 * is over its budget, and trims the WAL when it still holds records that are all uploaded. (A
 * round trims up to the durable point it saw before its scan, which can lag the records it
 * uploaded; when no upload follows, those records stayed in the WAL and a restart replayed
 * them.) The stats are read before the partitions are scanned, as in a round. */
static void idle_upkeep(struct stratus_stream *s)
{
    struct stratus_partition **parts;
    struct stratus_wal_stats ws;
    size_t n = 0;
    int over = atomic_load(&s->lc_bytes) > s->conf.log_cache_bytes, behind;

    stratus_wal_get_stats(s->wal, &ws);
    behind = ws.trim_lsn < ws.durable_lsn;
    if (!over && !behind)
        return;
    parts = stratus_topic_all_partitions(s, &n);
    if (over)
        evict_over_budget(s, parts, n);
    if (behind)
        trim_wal(s, parts, n, ws.durable_lsn);
    for (size_t i = 0; i < n; i++)
        stratus_partition_release(parts[i]);
    free(parts);
}

static void cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(c, m, &ts);
}

void *stratus_uploader_main(void *arg)
{
    struct stratus_stream *s = arg;
    pthread_setname_np(pthread_self(), "uploader"); /* top -H, perf, gdb */
    int64_t tick = s->conf.upload_interval_ms / 4;
    /* After a failed round the next waits UPLOAD_RETRY_MS, whatever wakes the thread: every
     * produce wakes it, and with the store refusing (a full disk) rounds came every 25 ms,
     * each copying a whole object for nothing. The storage plugin already retried the put. */
    int64_t retry_at = 0;

    if (tick < 5)
        tick = 5;
    if (tick > 250)
        tick = 250;
    pthread_mutex_lock(&s->up_lock);
    while (!s->up_stop) {
        uint64_t req;
        struct stratus_errbuf eb = {{0}};
        int rc;

        int64_t now = stratus_mono_ms();
        if (!upload_due(s) || now < retry_at) {
            int64_t wait = now < retry_at && retry_at - now < tick ? retry_at - now : tick;
            pthread_mutex_unlock(&s->up_lock);
            idle_upkeep(s);
            pthread_mutex_lock(&s->up_lock);
            if ((upload_due(s) && stratus_mono_ms() >= retry_at) || s->up_stop)
                continue;
            cond_wait_ms(&s->up_cond, &s->up_lock, wait);
            continue;
        }
        req = s->flush_req;
        pthread_mutex_unlock(&s->up_lock);
        rc = stratus_uploader_round(s, &eb);
        pthread_mutex_lock(&s->up_lock);
        if (req > s->flush_done) {
            s->flush_done = req;
            s->flush_err = rc;
            if (rc)
                memcpy(s->flush_msg, eb.msg, sizeof s->flush_msg);
        }
        pthread_cond_broadcast(&s->up_done_cond);
        retry_at = rc ? stratus_mono_ms() + UPLOAD_RETRY_MS : 0;
    }
    pthread_mutex_unlock(&s->up_lock);
    return NULL;
}

int stratus_uploader_run_round(struct stratus_stream *s, struct stratus_errbuf *eb)
{
    uint64_t my;
    int err, stop;

    pthread_mutex_lock(&s->up_lock);
    if (!s->up_started || s->up_stop) {
        pthread_mutex_unlock(&s->up_lock);
        return stratus_errf(eb, STRATUS_ECLOSED, "stream: the uploader is not running");
    }
    my = ++s->flush_req;
    pthread_cond_signal(&s->up_cond);
    while (s->flush_done < my && !s->up_stop)
        pthread_cond_wait(&s->up_done_cond, &s->up_lock);
    err = s->flush_done >= my ? s->flush_err : 0;
    stop = s->flush_done < my;
    if (err)
        stratus_errf(eb, err, "upload round failed: %s", s->flush_msg);
    pthread_mutex_unlock(&s->up_lock);
    if (stop)
        return stratus_errf(eb, STRATUS_ECLOSED, "stream: closing");
    return err;
}

/* 0: parts[i] is flushed up to target; 1: it still has pending data, durable (2) or not (1);
 * -1: it left the ownership generation gen. */
static int part_flushed(struct stratus_partition *p, uint64_t gen, int64_t target)
{
    int st;

    pthread_mutex_lock(&p->lock);
    if (p->ack_lost && p->hw < target)
        target = p->hw; /* a tail the WAL did not acknowledge never becomes durable */
    if (p->deleted || p->own_gen != gen || atomic_load(&p->role) == STRATUS_ROLE_NONE)
        st = -1;
    else if (p->lc_up == p->lc_n || p->lc[p->lc_head + p->lc_up]->base >= target)
        st = 0;
    else
        st = p->lc[p->lc_head + p->lc_up]->last < p->hw ? 2 : 1;
    pthread_mutex_unlock(&p->lock);
    return st;
}

int stratus_uploader_flush_parts(struct stratus_stream *s, struct stratus_partition *const *parts,
                                 const uint64_t *gens, const int64_t *targets, size_t n,
                                 int64_t deadline_ms, int fence_is_error,
                                 struct stratus_errbuf *eb)
{
    for (;;) {
        int durable = 0, waiting = 0, rc;

        for (size_t i = 0; i < n; i++) {
            int st = part_flushed(parts[i], gens[i], targets[i]);
            if (st < 0 && fence_is_error)
                return stratus_errf(eb, STRATUS_EEXIST, "topic %s partition %d is not owned "
                                    "here any more (fenced)", parts[i]->topic,
                                    parts[i]->index);
            if (st == 2)
                durable = 1;
            if (st > 0)
                waiting = 1;
        }
        if (!waiting)
            return 0;
        if (stratus_mono_ms() > deadline_ms)
            return stratus_errf(eb, STRATUS_EAGAIN, "flush: data still pending at the deadline");
        if (durable) {
            rc = stratus_uploader_run_round(s, eb);
            if (rc)
                return rc;
        } else { /* waiting for WAL writes */
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
}
