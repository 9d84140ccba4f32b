/* retention.c - the retention thread: time and size retention of partitions, garbage of
 * deleted topics, and deletion of objects no range refers to any more.
 *
 * Per live partition, whole ranges are dropped from the oldest while retention.ms (by the
 * range's max timestamp) or retention.bytes (Kafka's rule: drop while size - range >= limit)
 * says so; the log start moves past them. One synced index batch drops the ranges, persists the
 * new log start ('S'), keeps the time index ('X') right for the remaining ranges (see
 * time_index_drop) and decrements the objects' live range counts; an object reaching 0 is
 * kept in the objects table with live 0 until its storage delete succeeds, so a crash between
 * the two leaks nothing (the next pass finishes it). Streams of deleted topics ('D') lose every
 * range and time index entry, then their 'D' and 'S' records. Index commits hold s->meta_lock (shared with the
 * uploader and topic deletion). Only this thread (or stratus_stream_run_retention) runs it.
 * Cluster mode: only partitions served here (OWNER) are retained. Retention and DeleteRecords
 * first call the `trim` hook (docs/cluster-design.md, "Retention and object GC"): one fenced
 * metastore write moves the committed log start and turns the dropped ranges into dead ranges;
 * only when it succeeded is the local index changed as above. When the hook finds the
 * partition owned elsewhere (STRATUS_EEXIST) nothing changes here and the partition is fenced
 * (stratus_partition_fence, ops->lost), as the uploader does. Objects are never deleted here
 * (other brokers' ranges share them; the controller collects them once every range of an
 * object is dead), so object live counts are not kept either. Deleted streams drop their
 * LOCAL index entries only (topic deletion collects the metastore side).
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "plugin/plugin.h"
#include "stream_int.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

struct objdec {
    uint64_t oid;
    uint32_t n;
};

struct dropset {
    struct objdec *v;
    size_t n, cap;
};

static void dropset_add(struct dropset *d, uint64_t oid)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].oid == oid) {
            d->v[i].n++;
            return;
        }
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->v = xrealloc(d->v, d->cap * sizeof *d->v);
    }
    d->v[d->n].oid = oid;
    d->v[d->n].n = 1;
    d->n++;
}

/* Adds to ib the object records updated by d; caller holds meta_lock. */
static int objects_decrement(struct stratus_stream *s, struct stratus_index_batch *ib,
                             const struct dropset *d, struct stratus_errbuf *eb)
{
    for (size_t i = 0; i < d->n; i++) {
        uint8_t key[STRATUS_IDX_KEY_MAX], *v = NULL, nv[512];
        size_t klen = stratus_index_key_object(key, d->v[i].oid), vlen = 0;
        struct stratus_index_object o;
        int rc = stratus_index_get(s->idx, key, klen, &v, &vlen, eb);
        if (rc == STRATUS_ENOTFOUND)
            continue;
        if (rc)
            return rc;
        rc = stratus_index_object_decode(v, vlen, &o);
        free(v);
        if (rc) {
            LOG_WARN("stream", "retention: object %llu record is corrupt",
                     (unsigned long long)d->v[i].oid);
            continue;
        }
        o.live_ranges = o.live_ranges > d->v[i].n ? o.live_ranges - d->v[i].n : 0;
        vlen = stratus_index_object_encode(&o, nv, sizeof nv);
        stratus_index_batch_put(ib, key, klen, nv, vlen);
    }
    return 0;
}

/* Deletes from storage every object whose live count is 0, then its record. */
static void delete_dead_objects(struct stratus_stream *s)
{
    struct stratus_index_iter *it = stratus_index_iter_new(s->idx);
    uint8_t prefix = STRATUS_IDX_OBJECT;
    struct stratus_index_object *dead = NULL;
    size_t n = 0, cap = 0;

    for (stratus_index_iter_seek(it, &prefix, 1); stratus_index_iter_has_prefix(it, &prefix, 1);
         stratus_index_iter_next(it)) {
        size_t vl;
        const uint8_t *v = stratus_index_iter_value(it, &vl);
        struct stratus_index_object o;
        if (stratus_index_object_decode(v, vl, &o) != 0 || o.live_ranges != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            dead = xrealloc(dead, cap * sizeof *dead);
        }
        {
            size_t kl;
            const uint8_t *k = stratus_index_iter_key(it, &kl);
            if (stratus_index_parse_id_key(k, kl, STRATUS_IDX_OBJECT, &o.object_id) != 0)
                continue;
        }
        dead[n++] = o;
    }
    stratus_index_iter_free(it);
    for (size_t i = 0; i < n; i++) {
        struct stratus_errbuf eb = {{0}};
        const char *keys[1] = {dead[i].key};
        uint8_t key[STRATUS_IDX_KEY_MAX];
        size_t klen;
        char prefix2[300];

        if (stratus_storage_del(s->st, keys, 1, &eb) != 0) {
            LOG_WARN("stream", "retention: delete %s: %s", dead[i].key, eb.msg);
            continue;
        }
        if (s->cache) {
            snprintf(prefix2, sizeof prefix2, "%s#", dead[i].key);
            stratus_cache_invalidate(s->cache, prefix2);
        }
        klen = stratus_index_key_object(key, dead[i].object_id);
        pthread_mutex_lock(&s->meta_lock);
        stratus_index_delete(s->idx, key, klen, 1, &eb);
        pthread_mutex_unlock(&s->meta_lock);
        atomic_fetch_add(&s->retention_deleted_objects, 1);
        LOG_DEBUG("stream", "retention: deleted object %s", dead[i].key);
    }
    free(dead);
}

/* Keeps a stream's time index right as its ranges wholly below new_start go (the invariant is
 * in index.c, 'X'): deletes the entries of the dropped ranges (a prefix of the entries, which
 * rise in offset as in timestamp) and, when there were any, rebuilds from a fresh running
 * maximum the entries of the remaining ranges before the first surviving entry. The surviving
 * entries stay right: each one's timestamp exceeds every earlier range's. The rebuilt ones are
 * all below the first survivor's timestamp; the deletes are added to ib before the puts, so a
 * rebuilt entry with a deleted one's timestamp wins. The scan ends at the first survivor, which
 * for timestamps that mostly rise is the first remaining range. Caller holds meta_lock, so no
 * range or entry lands meanwhile. */
static int time_index_drop(struct stratus_stream *s, struct stratus_index_batch *ib,
                           uint64_t sid, int64_t new_start, struct stratus_errbuf *eb)
{
    struct stratus_index_iter *it = stratus_index_iter_new(s->idx);
    struct stratus_index_time_run run = {0};
    uint8_t key[STRATUS_IDX_KEY_MAX];
    size_t klen = stratus_index_key_time(key, sid, INT64_MIN), dropped = 0;
    int64_t until = INT64_MAX;
    int rc = 0;

    for (stratus_index_iter_seek(it, key, klen); stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        struct stratus_index_time te;
        if (stratus_index_time_decode(k, kl, v, vl, &te) != 0) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "index: corrupt time entry of stream %llu",
                              (unsigned long long)sid);
            goto out;
        }
        if (te.last_offset >= new_start) {
            until = te.base_offset;
            break;
        }
        stratus_index_batch_delete(ib, k, kl);
        dropped++;
    }
    rc = stratus_index_iter_status(it, eb);
    if (rc || dropped == 0)
        goto out;
    klen = stratus_index_key_range(key, sid, new_start);
    for (stratus_index_iter_seek(it, key, klen); stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        struct stratus_index_range r;
        if (stratus_index_range_decode(k, kl, v, vl, &r) != 0) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "index: corrupt range of stream %llu",
                              (unsigned long long)sid);
            goto out;
        }
        if (r.base_offset >= until)
            break;
        stratus_index_time_step(ib, &run, &r);
    }
    rc = stratus_index_iter_status(it, eb);
out:
    stratus_index_iter_free(it);
    return rc;
}

/* Adds to ib the deletion of every time index entry of stream sid; caller holds meta_lock. */
static int time_index_delete_all(struct stratus_stream *s, struct stratus_index_batch *ib,
                                 uint64_t sid, struct stratus_errbuf *eb)
{
    struct stratus_index_iter *it = stratus_index_iter_new(s->idx);
    uint8_t key[STRATUS_IDX_KEY_MAX];
    size_t klen = stratus_index_key_time(key, sid, INT64_MIN);
    int rc;

    for (stratus_index_iter_seek(it, key, klen); stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        size_t kl;
        const uint8_t *k = stratus_index_iter_key(it, &kl);
        stratus_index_batch_delete(ib, k, kl);
    }
    rc = stratus_index_iter_status(it, eb);
    stratus_index_iter_free(it);
    return rc;
}

/* Cluster mode: the trim hook for p (see the top). STRATUS_EEXIST: p was fenced here. */
static int cluster_trim(struct stratus_stream *s, struct stratus_partition *p, int64_t new_start,
                        const struct stratus_index_range *dropped, size_t n,
                        struct stratus_errbuf *eb)
{
    const struct stratus_stream_cluster_ops *ops = s->conf.cluster;
    int rc;

    if (!ops || !ops->trim)
        return 0;
    rc = ops->trim(ops->arg, p, new_start, dropped, n, eb);
    if (rc == STRATUS_EEXIST) {
        LOG_WARN("stream", "trim topic=%s partition=%d log_start=%lld: owned elsewhere; fenced",
                 p->topic, p->index, (long long)new_start);
        stratus_partition_fence(p);
        if (ops->lost)
            ops->lost(ops->arg, p);
    }
    return rc;
}

static int retain_partition(struct stratus_stream *s, struct stratus_partition *p, int64_t now,
                            struct stratus_errbuf *eb)
{
    struct stratus_index_iter *it;
    struct stratus_index_batch *ib = NULL;
    struct stratus_index_range *rs = NULL;
    struct dropset ds = {0};
    size_t n = 0, cap = 0, drop = 0;
    uint8_t key[STRATUS_IDX_KEY_MAX];
    size_t klen;
    int64_t rms, rbytes, log_start, new_start;
    uint64_t size = 0;
    int rc = 0;

    pthread_mutex_lock(&p->lock);
    rms = p->retention_ms;
    rbytes = p->retention_bytes;
    log_start = p->log_start;
    pthread_mutex_unlock(&p->lock);
    if (rms < 0 && rbytes < 0)
        return 0;
    if (atomic_load(&p->role) != STRATUS_ROLE_OWNER)
        return 0; /* cluster mode: the owner retains it */

    it = stratus_index_iter_new(s->idx);
    klen = stratus_index_key_range(key, p->stream_id, log_start);
    for (stratus_index_iter_seek(it, key, klen); stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            rs = xrealloc(rs, cap * sizeof *rs);
        }
        if (stratus_index_range_decode(k, kl, v, vl, &rs[n]) != 0)
            continue;
        size += rs[n].length;
        n++;
    }
    rc = stratus_index_iter_status(it, eb);
    stratus_index_iter_free(it);
    if (rc)
        goto out;
    for (drop = 0; drop < n; drop++) {
        const struct stratus_index_range *r = &rs[drop];
        int by_time = rms >= 0 && now - r->max_timestamp > rms;
        int by_size = rbytes >= 0 && size >= (uint64_t)rbytes + r->length;
        if (!by_time && !by_size)
            break;
        size -= r->length;
    }
    if (drop == 0)
        goto out;
    new_start = rs[drop - 1].last_offset + 1;
    if (STRATUS_CLUSTER(s)) {
        rc = cluster_trim(s, p, new_start, rs, drop, eb);
        if (rc == STRATUS_EEXIST)
            rc = 0; /* fenced: not a retention failure */
        if (rc)
            goto out;
        if (atomic_load(&p->role) != STRATUS_ROLE_OWNER)
            goto out; /* fenced meanwhile */
    }
    ib = stratus_index_batch_new();
    for (size_t i = 0; i < drop; i++) {
        klen = stratus_index_key_range(key, p->stream_id, rs[i].last_offset);
        stratus_index_batch_delete(ib, key, klen);
        dropset_add(&ds, rs[i].object_id);
    }
    {
        struct stratus_index_stream st = {.log_start_offset = new_start};
        uint8_t v[STRATUS_IDX_STREAM_VALUE_SIZE];
        stratus_index_stream_encode(&st, v);
        klen = stratus_index_key_stream(key, p->stream_id);
        stratus_index_batch_put(ib, key, klen, v, sizeof v);
    }
    pthread_mutex_lock(&s->meta_lock);
    rc = time_index_drop(s, ib, p->stream_id, new_start, eb);
    if (rc == 0 && !STRATUS_CLUSTER(s))
        rc = objects_decrement(s, ib, &ds, eb);
    if (rc == 0)
        rc = stratus_index_batch_write(s->idx, ib, 1, eb);
    pthread_mutex_unlock(&s->meta_lock);
    if (rc)
        goto out;
    pthread_mutex_lock(&p->lock);
    if (new_start > p->log_start)
        p->log_start = new_start;
    pthread_mutex_unlock(&p->lock);
    stratus_partition_evict(p, 0);
    LOG_INFO("stream", "retention topic=%s partition=%d log_start=%lld ranges_dropped=%zu",
             p->topic, p->index, (long long)new_start, drop);
    stratus_partition_notify(p);
out:
    stratus_index_batch_free(ib);
    free(rs);
    free(ds.v);
    return rc;
}

/* Drops every range of the deleted streams ('D' records). */
static int collect_deleted_streams(struct stratus_stream *s, struct stratus_errbuf *eb)
{
    struct stratus_index_iter *it = stratus_index_iter_new(s->idx);
    uint8_t prefix = STRATUS_IDX_DELSTR;
    uint64_t *sids = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    for (stratus_index_iter_seek(it, &prefix, 1); stratus_index_iter_has_prefix(it, &prefix, 1);
         stratus_index_iter_next(it)) {
        size_t kl;
        const uint8_t *k = stratus_index_iter_key(it, &kl);
        uint64_t sid;
        if (stratus_index_parse_id_key(k, kl, STRATUS_IDX_DELSTR, &sid) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            sids = xrealloc(sids, cap * sizeof *sids);
        }
        sids[n++] = sid;
    }
    stratus_index_iter_free(it);

    for (size_t i = 0; i < n && rc == 0; i++) {
        struct stratus_index_batch *ib = stratus_index_batch_new();
        struct dropset ds = {0};
        uint8_t key[STRATUS_IDX_KEY_MAX];
        size_t klen = stratus_index_key_range(key, sids[i], INT64_MIN);

        pthread_mutex_lock(&s->meta_lock); /* no range of this stream may land meanwhile */
        it = stratus_index_iter_new(s->idx);
        for (stratus_index_iter_seek(it, key, klen); stratus_index_iter_has_prefix(it, key, 9);
             stratus_index_iter_next(it)) {
            size_t kl, vl;
            const uint8_t *k = stratus_index_iter_key(it, &kl),
                          *v = stratus_index_iter_value(it, &vl);
            struct stratus_index_range r;
            stratus_index_batch_delete(ib, k, kl);
            if (stratus_index_range_decode(k, kl, v, vl, &r) == 0)
                dropset_add(&ds, r.object_id);
        }
        rc = stratus_index_iter_status(it, eb);
        stratus_index_iter_free(it);
        klen = stratus_index_key_stream(key, sids[i]);
        stratus_index_batch_delete(ib, key, klen);
        klen = stratus_index_key_delstream(key, sids[i]);
        stratus_index_batch_delete(ib, key, klen);
        klen = stratus_index_key_producer(key, sids[i]);
        stratus_index_batch_delete(ib, key, klen);
        if (rc == 0)
            rc = time_index_delete_all(s, ib, sids[i], eb);
        if (rc == 0 && !STRATUS_CLUSTER(s))
            rc = objects_decrement(s, ib, &ds, eb);
        if (rc == 0)
            rc = stratus_index_batch_write(s->idx, ib, 1, eb);
        pthread_mutex_unlock(&s->meta_lock);
        stratus_index_batch_free(ib);
        free(ds.v);
    }
    free(sids);
    return rc;
}

int stratus_retention_run(struct stratus_stream *s, struct stratus_errbuf *eb)
{
    struct stratus_partition **parts;
    size_t n = 0;
    int64_t now = stratus_wall_ms();
    int rc, first_err = 0;

    pthread_mutex_lock(&s->ret_run);
    parts = stratus_topic_all_partitions(s, &n);
    for (size_t i = 0; i < n; i++) {
        rc = retain_partition(s, parts[i], now, eb);
        if (rc && !first_err)
            first_err = rc;
        stratus_partition_release(parts[i]);
    }
    free(parts);
    rc = collect_deleted_streams(s, eb);
    if (rc && !first_err)
        first_err = rc;
    if (!STRATUS_CLUSTER(s)) /* cluster mode: objects are shared, collected elsewhere */
        delete_dead_objects(s);
    pthread_mutex_unlock(&s->ret_run);
    return first_err;
}

void stratus_retention_wake(struct stratus_stream *s)
{
    pthread_mutex_lock(&s->ret_lock);
    pthread_cond_signal(&s->ret_cond);
    pthread_mutex_unlock(&s->ret_lock);
}

void *stratus_retention_main(void *arg)
{
    struct stratus_stream *s = arg;
    pthread_setname_np(pthread_self(), "retention"); /* top -H, perf, gdb */

    pthread_mutex_lock(&s->ret_lock);
    while (!s->ret_stop) {
        struct timespec ts;
        struct stratus_errbuf eb = {{0}};
        int64_t ms = s->conf.retention_check_ms;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&s->ret_cond, &s->ret_lock, &ts);
        if (s->ret_stop)
            break;
        pthread_mutex_unlock(&s->ret_lock);
        if (stratus_retention_run(s, &eb) != 0)
            LOG_WARN("stream", "retention: %s", eb.msg);
        pthread_mutex_lock(&s->ret_lock);
    }
    pthread_mutex_unlock(&s->ret_lock);
    return NULL;
}

/* DeleteRecords (logadmin.c): the ranges wholly below new_start go, the log start moves. In
 * cluster mode the trim hook runs between collecting them and writing the index, without
 * meta_lock (it is an etcd round trip); no range below new_start can land meanwhile, as the
 * caller flushed everything up to it and ret_run keeps retention out. STRATUS_EEXIST: p was
 * owned elsewhere and is fenced now. */
int stratus_retention_set_log_start(struct stratus_stream *s, struct stratus_partition *p,
                                    int64_t new_start, struct stratus_errbuf *eb)
{
    struct stratus_index_iter *it;
    struct stratus_index_batch *ib = stratus_index_batch_new();
    struct dropset ds = {0};
    struct stratus_index_range *rs = NULL;
    uint8_t key[STRATUS_IDX_KEY_MAX];
    size_t klen, dropped = 0, cap = 0;
    int rc;

    pthread_mutex_lock(&s->ret_run);
    pthread_mutex_lock(&s->meta_lock); /* no range of this stream lands meanwhile */
    it = stratus_index_iter_new(s->idx);
    klen = stratus_index_key_range(key, p->stream_id, INT64_MIN);
    for (stratus_index_iter_seek(it, key, klen); stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        struct stratus_index_range r;
        if (stratus_index_range_decode(k, kl, v, vl, &r) != 0)
            continue;
        if (r.last_offset >= new_start)
            break;
        stratus_index_batch_delete(ib, k, kl);
        dropset_add(&ds, r.object_id);
        if (dropped == cap) {
            cap = cap ? cap * 2 : 64;
            rs = xrealloc(rs, cap * sizeof *rs);
        }
        rs[dropped++] = r;
    }
    rc = stratus_index_iter_status(it, eb);
    stratus_index_iter_free(it);
    if (rc == 0 && STRATUS_CLUSTER(s)) {
        pthread_mutex_unlock(&s->meta_lock);
        rc = cluster_trim(s, p, new_start, rs, dropped, eb);
        pthread_mutex_lock(&s->meta_lock);
        if (rc == 0 && atomic_load(&p->role) != STRATUS_ROLE_OWNER)
            rc = stratus_errf(eb, STRATUS_EEXIST, "topic %s partition %d is not served here",
                              p->topic, p->index);
    }
    if (rc == 0)
        rc = time_index_drop(s, ib, p->stream_id, new_start, eb);
    if (rc == 0) {
        struct stratus_index_stream st = {.log_start_offset = new_start};
        uint8_t v[STRATUS_IDX_STREAM_VALUE_SIZE];
        stratus_index_stream_encode(&st, v);
        klen = stratus_index_key_stream(key, p->stream_id);
        stratus_index_batch_put(ib, key, klen, v, sizeof v);
        if (!STRATUS_CLUSTER(s))
            rc = objects_decrement(s, ib, &ds, eb);
    }
    if (rc == 0)
        rc = stratus_index_batch_write(s->idx, ib, 1, eb);
    pthread_mutex_unlock(&s->meta_lock);
    if (rc == 0) {
        pthread_mutex_lock(&p->lock);
        if (new_start > p->log_start)
            p->log_start = new_start;
        pthread_mutex_unlock(&p->lock);
        stratus_partition_evict(p, 0);
        LOG_INFO("stream", "delete records topic=%s partition=%d log_start=%lld "
                 "ranges_dropped=%zu", p->topic, p->index, (long long)new_start, dropped);
        stratus_partition_notify(p);
    }
    pthread_mutex_unlock(&s->ret_run);
    stratus_index_batch_free(ib);
    free(ds.v);
    free(rs);
    return rc;
}
