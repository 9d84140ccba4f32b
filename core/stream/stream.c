/* stream.c - the storage engine's lifecycle: open (index, catalog, WAL replay, threads), close,
 * the I/O worker pool (stratus_stream_submit), the commit hook, stats and flush.
 *
 * Startup order: index -> catalog (partitions get log start / log end from the index) -> WAL
 * replay into the log cache (records of deleted topics and records already covered by uploaded
 * objects are skipped; replayed data is durable, so log end = high watermark) -> WAL writer ->
 * I/O pool, uploader, retention. Close stops them in reverse; data still in the WAL stays for
 * the next start.
 * Cluster mode (conf.cluster): the replay fills the caches the same way, but every partition
 * stays NONE until the node agent claims it (keep_cache = 1 keeps the replayed tail) or fences
 * it; until then its replayed data holds back the WAL trim. Flush then waits only for the
 * partitions served here.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "stream_int.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

static int mkdir_p(const char *path, struct stratus_errbuf *eb)
{
    char buf[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof buf)
        return stratus_errf(eb, STRATUS_EINVAL, "bad directory path");
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return stratus_errf(eb, STRATUS_EIO, "mkdir %s: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    return 0;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* ---- I/O pool ---- */

_Thread_local const struct stratus_stream *stratus_pool_of_thread;

static void *pool_main(void *arg)
{
    struct stratus_stream *s = arg;
    pthread_setname_np(pthread_self(), "io-pool"); /* top -H, perf, gdb */
    stratus_pool_of_thread = s;

    pthread_mutex_lock(&s->pool_lock);
    for (;;) {
        struct stratus_job *j;
        while (!s->jobs_head && !s->pool_stop)
            pthread_cond_wait(&s->pool_cond, &s->pool_lock);
        j = s->jobs_head;
        if (!j)
            break; /* stopping and drained */
        s->jobs_head = j->next;
        if (!s->jobs_head)
            s->jobs_tail = NULL;
        pthread_mutex_unlock(&s->pool_lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&s->pool_lock);
    }
    pthread_mutex_unlock(&s->pool_lock);
    return NULL;
}

int stratus_stream_submit(struct stratus_stream *s, stratus_work_fn *fn, void *arg)
{
    struct stratus_job *j = xcalloc(1, sizeof *j);

    j->fn = fn;
    j->arg = arg;
    pthread_mutex_lock(&s->pool_lock);
    if (s->pool_stop || s->npool == 0) {
        pthread_mutex_unlock(&s->pool_lock);
        free(j);
        return STRATUS_ECLOSED;
    }
    if (s->jobs_tail)
        s->jobs_tail->next = j;
    else
        s->jobs_head = j;
    s->jobs_tail = j;
    pthread_cond_signal(&s->pool_cond);
    pthread_mutex_unlock(&s->pool_lock);
    return 0;
}

/* ---- replay ---- */

struct sidmap {
    uint64_t sid;
    struct stratus_partition *p;
};

struct replay_ctx {
    struct stratus_stream *s;
    struct sidmap *map;
    size_t n;
    uint64_t records, skipped;
};

static int sidmap_cmp(const void *a, const void *b)
{
    const struct sidmap *x = a, *y = b;
    return x->sid < y->sid ? -1 : x->sid > y->sid;
}

static int replay_one(void *arg, uint64_t lsn, const void *rec, size_t len)
{
    struct replay_ctx *c = arg;
    uint64_t sid = stratus_partition_walrec_stream(rec, len);
    struct sidmap key = {.sid = sid}, *m;

    c->records++;
    if (!sid) {
        LOG_WARN("stream", "WAL replay: skipping an unknown record at lsn=%llu",
                 (unsigned long long)lsn);
        c->skipped++;
        return 0;
    }
    m = bsearch(&key, c->map, c->n, sizeof *c->map, sidmap_cmp);
    if (!m) { /* a deleted topic */
        c->skipped++;
        return 0;
    }
    if (stratus_partition_replay_record(c->s, m->p, lsn, rec, len) != 0) {
        LOG_WARN("stream", "WAL replay: malformed record at lsn=%llu", (unsigned long long)lsn);
        c->skipped++;
    }
    return 0;
}

static int replay_wal(struct stratus_stream *s, struct stratus_errbuf *eb)
{
    struct replay_ctx c = {.s = s};
    struct stratus_partition **parts;
    size_t n;
    int rc;

    parts = stratus_topic_all_partitions(s, &n);
    c.map = xcalloc(n ? n : 1, sizeof *c.map);
    for (size_t i = 0; i < n; i++) {
        c.map[i].sid = parts[i]->stream_id;
        c.map[i].p = parts[i];
    }
    c.n = n;
    qsort(c.map, n, sizeof *c.map, sidmap_cmp);
    rc = stratus_wal_replay(s->wal, replay_one, &c, eb);
    LOG_INFO("stream", "WAL replay records=%llu skipped=%llu pending_bytes=%llu",
             (unsigned long long)c.records, (unsigned long long)c.skipped,
             (unsigned long long)atomic_load(&s->pending_bytes));
    for (size_t i = 0; i < n; i++)
        stratus_partition_release(parts[i]);
    free(parts);
    free(c.map);
    return rc;
}

/* ---- open / close ---- */

int stratus_stream_open(const struct stratus_stream_conf *conf, struct stratus_storage *st,
                        struct stratus_cache *cache, struct stratus_stream **out,
                        struct stratus_errbuf *eb)
{
    struct stratus_stream *s;
    struct stratus_index_conf ic = {0};
    char *wal_dir = NULL;
    int rc;

    if (!conf->data_dir || !*conf->data_dir)
        return stratus_errf(eb, STRATUS_EINVAL, "stream: data_dir is required");
    if (!st)
        return stratus_errf(eb, STRATUS_EINVAL, "stream: a storage is required");
    if (conf->cluster && (!conf->cluster->alloc_ids || !conf->cluster->prepare_object ||
                          !conf->cluster->commit_object))
        return stratus_errf(eb, STRATUS_EINVAL, "stream: cluster hooks are incomplete");
    s = xcalloc(1, sizeof *s);
    {
        static atomic_uint_fast64_t next_uid = 1;
        s->uid = atomic_fetch_add(&next_uid, 1);
    }
    s->conf = *conf;
    s->st = st;
    s->cache = cache;
    s->data_dir = xstrdup(conf->data_dir);
    s->index_path = conf->index_path ? xstrdup(conf->index_path) : path_join(s->data_dir, "index");
    if (conf->wal.path) {
        s->wal_path = xstrdup(conf->wal.path);
    } else {
        wal_dir = path_join(s->data_dir, "wal");
        s->wal_path = path_join(wal_dir, "stratus.wal");
    }
    s->conf.data_dir = s->data_dir;
    s->conf.index_path = s->index_path;
    s->conf.wal.path = s->wal_path;
    if (!s->conf.log_cache_bytes)
        s->conf.log_cache_bytes = 512ull << 20;
    if (!s->conf.object_target_bytes)
        s->conf.object_target_bytes = 16ull << 20;
    if (s->conf.upload_interval_ms <= 0)
        s->conf.upload_interval_ms = 2000;
    if (s->conf.io_threads <= 0)
        s->conf.io_threads = 4;
    if (s->conf.retention_check_ms <= 0)
        s->conf.retention_check_ms = 30000;
    if (s->conf.default_partitions <= 0)
        s->conf.default_partitions = 1;
    if (s->conf.fenced_wal_hold_ms <= 0)
        s->conf.fenced_wal_hold_ms = 600000;
    if (s->conf.cluster && s->conf.max_streams_per_object <= 0)
        s->conf.max_streams_per_object = 40; /* a commit txn stays under etcd's 128 ops */

    pthread_mutex_init(&s->cat_write, NULL);
    pthread_rwlock_init(&s->cat_lock, NULL);
    pthread_mutex_init(&s->meta_lock, NULL);
    pthread_mutex_init(&s->up_lock, NULL);
    pthread_mutex_init(&s->hold_lock, NULL);
    s->hold_lsn = UINT64_MAX;
    pthread_mutex_init(&s->ret_lock, NULL);
    pthread_mutex_init(&s->ret_run, NULL);
    pthread_mutex_init(&s->pool_lock, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->up_cond, &ca);
        pthread_cond_init(&s->up_done_cond, &ca);
        pthread_cond_init(&s->ret_cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    pthread_cond_init(&s->pool_cond, NULL);
    stratus_coldread_ra_init(s);
    stratus_coldgate_init(&s->gate, s->conf.io_threads, s->conf.cold_read_yield);
    if (!s->conf.wal.object_storage) { /* the file WAL reports its writes to the gate */
        s->conf.wal.write_observer = stratus_coldgate_wal_write;
        s->conf.wal.write_observer_arg = &s->gate;
    }

    rc = mkdir_p(s->data_dir, eb);
    if (rc == 0 && wal_dir)
        rc = mkdir_p(wal_dir, eb);
    if (rc)
        goto fail;
    ic.path = s->index_path;
    rc = stratus_index_open(&ic, &s->idx, eb);
    if (rc)
        goto fail;
    rc = stratus_topic_load_all(s, eb);
    if (rc)
        goto fail;
    rc = stratus_wal_open(&s->conf.wal, &s->wal, eb);
    if (rc)
        goto fail;
    rc = replay_wal(s, eb);
    if (rc)
        goto fail;
    rc = stratus_wal_start(s->wal, eb);
    if (rc)
        goto fail;

    s->pool = xcalloc((size_t)s->conf.io_threads, sizeof *s->pool);
    for (int i = 0; i < s->conf.io_threads; i++) {
        if (pthread_create(&s->pool[i], NULL, pool_main, s) != 0) {
            rc = stratus_errf(eb, STRATUS_ENOMEM, "stream: cannot start I/O threads");
            goto fail;
        }
        s->npool++;
    }
    if (pthread_create(&s->up_thread, NULL, stratus_uploader_main, s) != 0) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "stream: cannot start the uploader");
        goto fail;
    }
    s->up_started = 1;
    if (pthread_create(&s->ret_thread, NULL, stratus_retention_main, s) != 0) {
        rc = stratus_errf(eb, STRATUS_ENOMEM, "stream: cannot start retention");
        goto fail;
    }
    s->ret_started = 1;
    free(wal_dir);
    LOG_INFO("stream", "opened data_dir=%s topics=%zu", s->data_dir, s->ntopics);
    *out = s;
    return 0;
fail:
    free(wal_dir);
    stratus_stream_close(s);
    return rc;
}

void stratus_stream_close(struct stratus_stream *s)
{
    if (!s)
        return;
    if (s->ret_started) {
        pthread_mutex_lock(&s->ret_lock);
        s->ret_stop = 1;
        pthread_cond_broadcast(&s->ret_cond);
        pthread_mutex_unlock(&s->ret_lock);
        pthread_join(s->ret_thread, NULL);
    }
    if (s->up_started) {
        pthread_mutex_lock(&s->up_lock);
        s->up_stop = 1;
        pthread_cond_broadcast(&s->up_cond);
        pthread_cond_broadcast(&s->up_done_cond);
        pthread_mutex_unlock(&s->up_lock);
        pthread_join(s->up_thread, NULL);
    }
    pthread_mutex_lock(&s->pool_lock);
    s->pool_stop = 1;
    pthread_cond_broadcast(&s->pool_cond);
    pthread_mutex_unlock(&s->pool_lock);
    for (int i = 0; i < s->npool; i++)
        pthread_join(s->pool[i], NULL);
    free(s->pool);
    stratus_coldread_ra_free(s); /* no I/O thread left to use the slots */
    if (s->wal)
        stratus_wal_close(s->wal); /* runs the last completions: partitions are still alive */
    stratus_coldgate_destroy(&s->gate); /* the WAL's writes no longer report to it */
    stratus_topic_free_all(s);
    stratus_index_close(s->idx);
    pthread_cond_destroy(&s->pool_cond);
    pthread_cond_destroy(&s->ret_cond);
    pthread_cond_destroy(&s->up_done_cond);
    pthread_cond_destroy(&s->up_cond);
    pthread_mutex_destroy(&s->pool_lock);
    pthread_mutex_destroy(&s->ret_run);
    pthread_mutex_destroy(&s->ret_lock);
    pthread_mutex_destroy(&s->up_lock);
    pthread_mutex_destroy(&s->hold_lock);
    pthread_mutex_destroy(&s->meta_lock);
    pthread_rwlock_destroy(&s->cat_lock);
    pthread_mutex_destroy(&s->cat_write);
    free(s->up_buf);
    free(s->wal_path);
    free(s->index_path);
    free(s->data_dir);
    free(s);
}

void stratus_stream_set_commit_hook(struct stratus_stream *s, stratus_commit_hook_fn *fn,
                                    void *arg)
{
    s->hook_arg = arg;
    atomic_store_explicit(&s->hook, fn, memory_order_release);
}

/* ---- stats, flush, retention ---- */

void stratus_stream_get_stats(struct stratus_stream *s, struct stratus_stream_stats *out)
{
    memset(out, 0, sizeof *out);
    out->log_cache_bytes = atomic_load(&s->lc_bytes);
    out->log_cache_evictions = atomic_load(&s->lc_evictions);
    out->objects_uploaded = atomic_load(&s->objects_uploaded);
    out->objects_bulk = atomic_load(&s->objects_bulk);
    out->object_bytes_uploaded = atomic_load(&s->object_bytes_uploaded);
    out->upload_failures = atomic_load(&s->upload_failures);
    out->pending_upload_bytes = atomic_load(&s->pending_bytes);
    out->cold_reads = atomic_load(&s->cold_reads);
    out->cold_read_bytes = atomic_load(&s->cold_read_bytes);
    out->readahead_blocks = atomic_load(&s->ra_blocks);
    out->readahead_used = atomic_load(&s->ra_used);
    stratus_coldgate_stats(&s->gate, &out->cold_read_limit, &out->cold_read_waits);
    out->retention_deleted_objects = atomic_load(&s->retention_deleted_objects);
    if (s->wal)
        stratus_wal_get_stats(s->wal, &out->wal);
}

/* Cluster mode: every partition served here, up to its log end now. Partitions that are not
 * served (NONE: replayed data waiting for a claim) or leave meanwhile do not count. */
static int flush_cluster(struct stratus_stream *s, int64_t deadline, struct stratus_errbuf *eb)
{
    size_t n = 0;
    struct stratus_partition **parts = stratus_topic_all_partitions(s, &n);
    uint64_t *gens = xcalloc(n ? n : 1, sizeof *gens);
    int64_t *targets = xcalloc(n ? n : 1, sizeof *targets);
    int rc;

    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&parts[i]->lock);
        gens[i] = parts[i]->own_gen;
        targets[i] = parts[i]->log_end;
        pthread_mutex_unlock(&parts[i]->lock);
    }
    rc = stratus_uploader_flush_parts(s, parts, gens, targets, n, deadline, 0, eb);
    for (size_t i = 0; i < n; i++)
        stratus_partition_release(parts[i]);
    free(parts);
    free(gens);
    free(targets);
    return rc;
}

int stratus_stream_flush(struct stratus_stream *s, struct stratus_errbuf *eb)
{
    uint64_t target = atomic_load(&s->appended_bytes);
    int64_t deadline = stratus_mono_ms() + 120000;

    if (!s->up_started)
        return stratus_errf(eb, STRATUS_ECLOSED, "stream: the uploader is not running");
    if (STRATUS_CLUSTER(s))
        return flush_cluster(s, deadline, eb);
    for (;;) {
        uint64_t my;
        int err, stop;

        if (atomic_load(&s->settled_bytes) >= target)
            return 0;
        pthread_mutex_lock(&s->up_lock);
        my = ++s->flush_req;
        pthread_cond_signal(&s->up_cond);
        while (s->flush_done < my && !s->up_stop)
            pthread_cond_wait(&s->up_done_cond, &s->up_lock);
        err = s->flush_err;
        stop = s->up_stop;
        pthread_mutex_unlock(&s->up_lock);
        if (stop)
            return stratus_errf(eb, STRATUS_ECLOSED, "stream: closing");
        if (err)
            return stratus_errf(eb, STRATUS_EIO, "stream flush: upload failed (%s)",
                                stratus_strerror(err));
        if (atomic_load(&s->settled_bytes) >= target)
            return 0;
        if (stratus_mono_ms() > deadline)
            return stratus_errf(eb, STRATUS_EAGAIN, "stream flush: data did not become durable");
        {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL); /* the rest is waiting for its WAL write */
        }
    }
}

int stratus_stream_run_retention(struct stratus_stream *s, struct stratus_errbuf *eb)
{
    return stratus_retention_run(s, eb);
}

struct stratus_index *stratus_stream_index(struct stratus_stream *s)
{
    return s->idx;
}

void stratus_stream_append_begin(struct stratus_stream *s)
{
    if (s->wal)
        stratus_wal_hold(s->wal);
}

void stratus_stream_append_end(struct stratus_stream *s)
{
    if (s->wal)
        stratus_wal_release(s->wal);
}
