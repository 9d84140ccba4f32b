/* link: stratus_stream */
/* test_ownership.c - the engine's cluster mode (stream.h "partition ownership", "topic catalog
 * from the metastore"), against the storage-local plugin, with several engines sharing one
 * storage directory as brokers share a bucket:
 *   - a partition not claimed here (NONE) answers NOT_LEADER_OR_FOLLOWER to append (done not
 *     called), read, cold read, offset-for-time (STRATUS_EEXIST) and DeleteRecords; the local
 *     catalog writers refuse in cluster mode;
 *   - hand-over: engine A uploads (object ids from the hooks, prepared before commit, at most
 *     max_streams_per_object streams per object), resigns a partition (pending data uploaded,
 *     role NONE); engine B installs the topic, claims with the ranges A committed and reads
 *     every byte back through cold reads, the producer state came along (a retried batch is a
 *     duplicate), and appends continue at the committed end;
 *   - recovery: records of a dead engine's local WAL (read back with stratus_wal_replay) are
 *     applied with recover_record (a gap is refused), uploaded by a flush while RECOVERING and
 *     readable after serve;
 *   - a commit that reports lost[i] fences that partition (NONE, its data dropped, ops->lost
 *     called) while the other partition's range is committed and indexed; a commit that fails
 *     leaves the data pending for the next round;
 *   - an object WAL write finishing after the ack deadline answers NOT_LEADER_OR_FOLLOWER, the
 *     data stays invisible, and the partition works again after a fence and a claim;
 *   - a fence dropping acknowledged, unuploaded records holds the object WAL's trim below them
 *     for fenced_wal_hold_ms, then the next round trims them;
 *   - retention and DeleteRecords call the trim hook with the dropped ranges and the new log
 *     start before changing the local index; a hook answering EEXIST fences the partition;
 *   - single-node mode: every partition is OWNER and the cluster entry points refuse;
 *   - upload rounds stay sound while another thread resigns and claims partitions nonstop.
 * The metastore is a TEST DOUBLE here (struct meta): an in-memory stratus_stream_cluster_ops
 * with an id counter, a set of prepared objects, the committed ranges and producer snapshots,
 * and an "owned" flag per stream standing for this broker's parts/<stream> value still being
 * the current one (clearing it simulates another broker's claim, i.e. fencing).
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "index/index.h"
#include "plugin/plugin.h"
#include "proto/kerr.h"
#include "stream/stream.h"
#include "stream/stream_int.h"
#include "stream_fixture.h"
#include "test.h"

/* ---- the metastore double ---- */

#define MAX_STREAM 64
#define MAX_RANGES 256
#define MAX_OBJECTS 256
#define ID_BASE 5000 /* the double's object ids start here: an id below it is not ours */

static struct meta {
    pthread_mutex_t mu;
    uint64_t next_id;
    int owned[MAX_STREAM];
    struct stratus_index_range ranges[MAX_RANGES]; /* committed, in commit order */
    size_t nranges;
    uint8_t *pstate[MAX_STREAM];
    size_t pstate_len[MAX_STREAM];
    uint64_t prepared[MAX_OBJECTS];
    size_t nprepared;
    int commits, unprepared_commits, max_streams_seen, fail_next;
    int lost_calls;
    struct stratus_partition *last_lost;
    /* trim: calls, the last call's arguments, and a one-shot EEXIST (fenced) answer */
    int trims, trim_fence_next;
    uint64_t trim_sid;
    int64_t trim_log_start;
    struct stratus_index_range trim_dropped[MAX_RANGES];
    size_t trim_n;
} g_meta = {.mu = PTHREAD_MUTEX_INITIALIZER, .next_id = ID_BASE};

static int meta_alloc_ids(void *arg, const char *name, uint64_t n, uint64_t *first,
                          struct stratus_errbuf *eb)
{
    (void)arg;
    if (strcmp(name, "object") != 0)
        return stratus_errf(eb, STRATUS_EINVAL, "unknown counter %s", name);
    pthread_mutex_lock(&g_meta.mu);
    *first = g_meta.next_id;
    g_meta.next_id += n;
    pthread_mutex_unlock(&g_meta.mu);
    return 0;
}

static int meta_prepare(void *arg, uint64_t oid, const char *key, struct stratus_errbuf *eb)
{
    (void)arg;
    (void)key;
    pthread_mutex_lock(&g_meta.mu);
    if (g_meta.nprepared == MAX_OBJECTS) {
        pthread_mutex_unlock(&g_meta.mu);
        return stratus_errf(eb, STRATUS_ENOMEM, "too many objects");
    }
    g_meta.prepared[g_meta.nprepared++] = oid;
    pthread_mutex_unlock(&g_meta.mu);
    return 0;
}

/* As the design's fenced commit: every stream still owned, or lost[i] for those that are not
 * and the others committed. */
static int meta_commit(void *arg, const struct stratus_index_object *obj,
                       const struct stratus_index_range *ranges,
                       struct stratus_partition *const *parts, const uint8_t *const *pstate,
                       const size_t *pstate_len, size_t n, int *lost, struct stratus_errbuf *eb)
{
    int anylost = 0, prepared = 0;

    (void)arg;
    pthread_mutex_lock(&g_meta.mu);
    if (g_meta.fail_next) {
        g_meta.fail_next = 0;
        pthread_mutex_unlock(&g_meta.mu);
        return stratus_errf(eb, STRATUS_EIO, "etcd unreachable (test double)");
    }
    for (size_t i = 0; i < g_meta.nprepared; i++)
        prepared |= g_meta.prepared[i] == obj->object_id;
    g_meta.unprepared_commits += !prepared;
    g_meta.commits++;
    if ((int)n > g_meta.max_streams_seen)
        g_meta.max_streams_seen = (int)n;
    for (size_t i = 0; i < n; i++) {
        uint64_t sid = ranges[i].stream_id;
        if (sid >= MAX_STREAM || sid != stratus_partition_stream_id(parts[i]) ||
            !g_meta.owned[sid] || g_meta.nranges == MAX_RANGES) {
            lost[i] = 1;
            anylost = 1;
            continue;
        }
        g_meta.ranges[g_meta.nranges++] = ranges[i];
        free(g_meta.pstate[sid]);
        g_meta.pstate[sid] = NULL;
        g_meta.pstate_len[sid] = 0;
        if (pstate[i] && pstate_len[i]) {
            g_meta.pstate[sid] = malloc(pstate_len[i]);
            memcpy(g_meta.pstate[sid], pstate[i], pstate_len[i]);
            g_meta.pstate_len[sid] = pstate_len[i];
        }
    }
    pthread_mutex_unlock(&g_meta.mu);
    return anylost ? stratus_errf(eb, STRATUS_EEXIST, "fenced (test double)") : 0;
}

static void meta_lost(void *arg, struct stratus_partition *p)
{
    (void)arg;
    pthread_mutex_lock(&g_meta.mu);
    g_meta.lost_calls++;
    g_meta.last_lost = p;
    pthread_mutex_unlock(&g_meta.mu);
}

/* As the design's trim: fenced on ownership (and the one-shot trim_fence_next); records the
 * call and drops the trimmed ranges from the committed ones. */
static int meta_trim(void *arg, struct stratus_partition *p, int64_t new_log_start,
                     const struct stratus_index_range *dropped, size_t n,
                     struct stratus_errbuf *eb)
{
    uint64_t sid = stratus_partition_stream_id(p);
    size_t k = 0;

    (void)arg;
    pthread_mutex_lock(&g_meta.mu);
    g_meta.trims++;
    if (g_meta.trim_fence_next || sid >= MAX_STREAM || !g_meta.owned[sid] || n > MAX_RANGES) {
        g_meta.trim_fence_next = 0;
        pthread_mutex_unlock(&g_meta.mu);
        return stratus_errf(eb, STRATUS_EEXIST, "fenced (test double)");
    }
    g_meta.trim_sid = sid;
    g_meta.trim_log_start = new_log_start;
    memcpy(g_meta.trim_dropped, dropped, n * sizeof *dropped);
    g_meta.trim_n = n;
    for (size_t i = 0; i < g_meta.nranges; i++) {
        int gone = 0;
        for (size_t j = 0; j < n; j++)
            gone |= g_meta.ranges[i].stream_id == sid &&
                    g_meta.ranges[i].last_offset == dropped[j].last_offset;
        if (!gone)
            g_meta.ranges[k++] = g_meta.ranges[i];
    }
    g_meta.nranges = k;
    pthread_mutex_unlock(&g_meta.mu);
    return 0;
}

static const struct stratus_stream_cluster_ops g_ops = {
    .arg = NULL,
    .alloc_ids = meta_alloc_ids,
    .prepare_object = meta_prepare,
    .commit_object = meta_commit,
    .lost = meta_lost,
    .trim = meta_trim,
};

static void meta_set_owned(uint64_t sid, int owned)
{
    pthread_mutex_lock(&g_meta.mu);
    g_meta.owned[sid] = owned;
    pthread_mutex_unlock(&g_meta.mu);
}

/* The committed ranges of stream sid, in offset order (malloc'd; *n may be 0). */
static struct stratus_index_range *meta_ranges(uint64_t sid, size_t *n)
{
    struct stratus_index_range *v = calloc(MAX_RANGES, sizeof *v);

    *n = 0;
    pthread_mutex_lock(&g_meta.mu);
    for (size_t i = 0; i < g_meta.nranges; i++)
        if (g_meta.ranges[i].stream_id == sid)
            v[(*n)++] = g_meta.ranges[i];
    pthread_mutex_unlock(&g_meta.mu);
    return v;
}

static int meta_int(const int *field)
{
    pthread_mutex_lock(&g_meta.mu);
    int v = *field;
    pthread_mutex_unlock(&g_meta.mu);
    return v;
}

/* ---- helpers ---- */

/* A batch of nrec records of vlen-byte values from seed; producer pid (-1: none) at seq. */
static size_t build_batch(uint8_t *out, int nrec, size_t vlen, uint32_t seed, int64_t pid,
                          int32_t seq)
{
    size_t pos = FX_BATCH_HEADER;
    struct fx_batch h;

    for (int i = 0; i < nrec; i++) {
        uint8_t value[2048];
        for (size_t k = 0; k < vlen; k++)
            value[k] = (uint8_t)(seed * 17 + (uint32_t)i * 5 + (uint32_t)k);
        pos += fx_record_put(out + pos, i, i, value, vlen);
    }
    h = fx_batch_plain(nrec, 1700000000000 + seed, 1700000000000 + seed + nrec - 1);
    if (pid >= 0) {
        h.producer_id = pid;
        h.producer_epoch = 0;
        h.base_seq = seq;
    }
    return fx_batch_seal(out, pos, &h);
}

/* Appends nb acked batches; returns how many were acked without error. */
static int append_n(struct stratus_partition *p, int nb, uint32_t seed)
{
    static uint8_t buf[80000];
    int ok = 0;

    for (int i = 0; i < nb; i++) {
        struct stratus_append_result r;
        int errs = fx_acks_errors();
        size_t len = build_batch(buf, 1 + i % 4, 100 + (size_t)((seed + (uint32_t)i) % 700),
                                 seed + (uint32_t)i, -1, -1);
        if (fx_append_acked(p, buf, len, &r, FX_ACK_MS) && fx_acks_errors() == errs)
            ok++;
    }
    return ok;
}

/* Everything readable from the log cache, offset 0 to the high watermark (malloc'd). */
static uint8_t *read_all_hot(struct stratus_partition *p, size_t *len)
{
    struct stratus_fetch_result r;
    int rc = stratus_partition_read(p, 0, 64u << 20, 1, &r);

    *len = 0;
    if (rc != 0 || r.error != KAFKA_ERR_NONE) {
        free(r.data);
        return NULL;
    }
    *len = r.len;
    return r.data;
}

/* Everything from objects, through cold reads from offset 0 to hw, in small steps. */
static uint8_t *read_all_cold(struct stratus_partition *p, int64_t hw, size_t *len)
{
    uint8_t *all = NULL;
    size_t n = 0;
    int64_t off = 0;

    while (off < hw) {
        struct stratus_fetch_result r;
        fx_read_cold(p, off, 4096, 1, &r);
        if (r.error != KAFKA_ERR_NONE || r.len == 0) {
            free(r.data);
            break;
        }
        all = realloc(all, n + r.len);
        memcpy(all + n, r.data, r.len);
        n += r.len;
        { /* the next offset: after the last batch returned */
            size_t pos = 0;
            while (pos + 61 <= r.len) {
                uint64_t base = fx_be_get(r.data + pos, 8);
                uint32_t blen = (uint32_t)fx_be_get(r.data + pos + 8, 4);
                uint32_t delta = (uint32_t)fx_be_get(r.data + pos + 23, 4);
                off = (int64_t)(base + delta + 1);
                pos += blen + 12;
            }
        }
        free(r.data);
    }
    *len = n;
    return all;
}

static struct stratus_stream *open_cluster(const char *sub, int max_streams)
{
    static char dirs[8][400];
    static int ndirs;
    struct stratus_stream_conf c;
    char *d = dirs[ndirs++ % 8];

    snprintf(d, sizeof dirs[0], "%s/%s", fx_env.dir, sub);
    fx_stream_conf(&c);
    c.data_dir = d;
    c.cluster = &g_ops;
    c.max_streams_per_object = max_streams;
    return fx_stream_open(&c, NULL);
}

static const uint8_t TOPIC_ID[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* Installs topic name with partitions streams sid0, sid0 + 1, ... */
static int install(struct stratus_stream *s, const char *name, int32_t np, uint64_t sid0)
{
    uint64_t sids[8];
    struct stratus_kv kv = {"retention.ms", "-1"};
    struct stratus_errbuf eb = {{0}};
    int rc;

    for (int32_t i = 0; i < np; i++)
        sids[i] = sid0 + (uint64_t)i;
    rc = stratus_stream_install_topic(s, name, TOPIC_ID, np, sids, &kv, 1, &eb);
    if (rc)
        fprintf(stderr, "install: %s\n", eb.msg);
    return rc;
}

/* Claims p at epoch from the double's committed state and serves it. */
static int claim_serve(struct stratus_partition *p, int32_t epoch, int keep_cache)
{
    struct stratus_errbuf eb = {{0}};
    uint64_t sid = stratus_partition_stream_id(p);
    size_t n;
    struct stratus_index_range *rs = meta_ranges(sid, &n);
    uint8_t *ps;
    size_t pslen;
    int rc;

    pthread_mutex_lock(&g_meta.mu);
    g_meta.owned[sid] = 1;
    pslen = g_meta.pstate_len[sid];
    ps = pslen ? malloc(pslen) : NULL;
    if (ps)
        memcpy(ps, g_meta.pstate[sid], pslen);
    pthread_mutex_unlock(&g_meta.mu);
    rc = stratus_partition_claim(p, epoch, rs, n, 0, ps, pslen, keep_cache, &eb);
    if (rc)
        fprintf(stderr, "claim: %s\n", eb.msg);
    else
        stratus_partition_serve(p);
    free(rs);
    free(ps);
    return rc;
}

/* ---- the tests ---- */

static void test_single_node(void)
{
    struct stratus_stream *s = fx_stream_open_defaults();
    struct stratus_partition *p;
    struct stratus_errbuf eb = {{0}};
    char msg[256];
    uint64_t sid = 1;

    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(stratus_stream_create_topic(s, "single", 1, NULL, 0, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_NONE);
    p = stratus_stream_partition(s, "single", 0);
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ(stratus_partition_role(p), STRATUS_ROLE_OWNER);
        CHECK_EQ(append_n(p, 3, 1), 3);
        CHECK_EQ(stratus_partition_claim(p, 1, NULL, 0, 0, NULL, 0, 0, &eb), STRATUS_EINVAL);
        CHECK_EQ(stratus_partition_role(p), STRATUS_ROLE_OWNER);
        CHECK_EQ(stratus_stream_flush(s, &eb), 0);
        CHECK_EQ(fx_count_objects(), 1); /* ids from the local counter, no hooks */
        CHECK_EQ(meta_int(&g_meta.commits), 0);
        stratus_partition_release(p);
    }
    CHECK_EQ(stratus_stream_install_topic(s, "x", TOPIC_ID, 1, &sid, NULL, 0, &eb),
             STRATUS_EINVAL);
    CHECK_EQ(stratus_stream_uninstall_topic(s, "single", &eb), STRATUS_EINVAL);
    stratus_stream_close(s);
}

static void test_not_leader(void)
{
    struct stratus_stream *s = open_cluster("nl", 40);
    struct stratus_partition *p;
    struct stratus_append_result r;
    struct stratus_fetch_result fr;
    struct stratus_errbuf eb = {{0}};
    uint8_t buf[4096];
    char msg[256];
    int64_t off, ts, low;
    int before;
    size_t len;

    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(stratus_stream_create_topic(s, "local", 1, NULL, 0, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_INVALID_REQUEST);
    CHECK(strstr(msg, "cluster mode") != NULL);
    CHECK_EQ(stratus_stream_delete_topic(s, "local", msg, sizeof msg), KAFKA_ERR_INVALID_REQUEST);
    CHECK_EQ(install(s, "nl", 1, 1), 0);
    p = stratus_stream_partition(s, "nl", 0);
    CHECK(p != NULL);
    if (!p) {
        stratus_stream_close(s);
        return;
    }
    CHECK_EQ(stratus_partition_role(p), STRATUS_ROLE_NONE);
    CHECK_EQ(stratus_partition_stream_id(p), 1);
    before = fx_acks_done();
    len = build_batch(buf, 2, 50, 7, -1, -1);
    stratus_partition_append(p, buf, len, &r, fx_on_done, NULL);
    CHECK_EQ(r.error, KAFKA_ERR_NOT_LEADER_OR_FOLLOWER);
    CHECK_EQ(stratus_partition_read(p, 0, 1 << 20, 1, &fr), 0);
    CHECK_EQ(fr.error, KAFKA_ERR_NOT_LEADER_OR_FOLLOWER);
    free(fr.data);
    fx_read_cold(p, 0, 1 << 20, 1, &fr);
    CHECK_EQ(fr.error, KAFKA_ERR_NOT_LEADER_OR_FOLLOWER);
    free(fr.data);
    CHECK_EQ(stratus_partition_offset_for_time(p, -1, &off, &ts, &eb), STRATUS_EEXIST);
    CHECK_EQ(stratus_partition_delete_records(p, 0, &low, msg, sizeof msg),
             KAFKA_ERR_NOT_LEADER_OR_FOLLOWER);
    CHECK_EQ(fx_acks_done(), before); /* done was never called */
    /* claimed but still recovering: not served either */
    CHECK_EQ(stratus_partition_claim(p, 1, NULL, 0, 0, NULL, 0, 0, &eb), 0);
    CHECK_EQ(stratus_partition_role(p), STRATUS_ROLE_RECOVERING);
    stratus_partition_append(p, buf, len, &r, fx_on_done, NULL);
    CHECK_EQ(r.error, KAFKA_ERR_NOT_LEADER_OR_FOLLOWER);
    stratus_partition_serve(p);
    CHECK_EQ(stratus_partition_role(p), STRATUS_ROLE_OWNER);
    CHECK_EQ(stratus_partition_leader_epoch(p), 1);
    CHECK_EQ(append_n(p, 1, 3), 1);
    stratus_partition_release(p);
    /* an update: partitions grow, configs are replaced, stream ids must match */
    {
        uint64_t sids[3] = {1, 2, 3}, bad[2] = {9, 2};
        struct stratus_kv kv = {"retention.ms", "1000"}, unknown = {"no.such.config", "1"};
        struct stratus_topic_info ti;
        struct stratus_partition *p1;
        uint8_t other_id[16] = {9};
        CHECK_EQ(stratus_stream_install_topic(s, "nl", TOPIC_ID, 2, sids, &kv, 1, &eb), 0);
        CHECK_EQ(stratus_stream_find_topic(s, "nl", &ti), 0);
        CHECK_EQ(ti.partitions, 2);
        p1 = stratus_stream_partition(s, "nl", 1);
        CHECK(p1 != NULL);
        if (p1) {
            CHECK_EQ(stratus_partition_role(p1), STRATUS_ROLE_NONE);
            CHECK_EQ(stratus_partition_stream_id(p1), 2);
            stratus_partition_release(p1);
        }
        CHECK_EQ(stratus_partition_role(p), STRATUS_ROLE_OWNER); /* untouched */
        CHECK_EQ(stratus_stream_install_topic(s, "nl", TOPIC_ID, 1, sids, NULL, 0, &eb),
                 STRATUS_EINVAL); /* shrink */
        CHECK_EQ(stratus_stream_install_topic(s, "nl", TOPIC_ID, 2, bad, NULL, 0, &eb),
                 STRATUS_EINVAL); /* another stream */
        CHECK_EQ(stratus_stream_install_topic(s, "nl", TOPIC_ID, 3, sids, &unknown, 1, &eb),
                 STRATUS_EINVAL);
        {
            struct stratus_config_entry *ce = NULL;
            size_t nce = 0;
            int found = 0;
            CHECK_EQ(stratus_stream_describe_topic_configs(s, "nl", &ce, &nce), KAFKA_ERR_NONE);
            for (size_t i = 0; i < nce; i++)
                if (strcmp(ce[i].name, "retention.ms") == 0)
                    found = strcmp(ce[i].value, "1000") == 0;
            CHECK(found);
            free(ce);
        }
        /* the same name with another id: the old topic is replaced */
        CHECK_EQ(stratus_stream_install_topic(s, "nl2", TOPIC_ID, 1, &sids[2], NULL, 0, &eb), 0);
        CHECK_EQ(stratus_stream_install_topic(s, "nl2", other_id, 1, &sids[2], NULL, 0, &eb),
                 0);
        CHECK_EQ(stratus_stream_find_topic(s, "nl2", &ti), 0);
        CHECK(memcmp(ti.id, other_id, 16) == 0);
        CHECK_EQ(stratus_stream_uninstall_topic(s, "nl2", &eb), 0);
    }
    CHECK_EQ(stratus_stream_validate_topic("ok", 3, NULL, 0, msg, sizeof msg), KAFKA_ERR_NONE);
    CHECK_EQ(stratus_stream_validate_topic("bad name", 3, NULL, 0, msg, sizeof msg),
             KAFKA_ERR_INVALID_TOPIC_EXCEPTION);
    CHECK_EQ(stratus_stream_validate_topic("ok", 0, NULL, 0, msg, sizeof msg),
             KAFKA_ERR_INVALID_PARTITIONS);
    {
        struct stratus_kv bad = {"retention.ms", "soon"};
        CHECK_EQ(stratus_stream_validate_topic("ok", -1, &bad, 1, msg, sizeof msg),
                 KAFKA_ERR_INVALID_CONFIG);
    }
    CHECK_EQ(stratus_stream_uninstall_topic(s, "nl", &eb), 0);
    CHECK(stratus_stream_partition(s, "nl", 0) == NULL);
    CHECK_EQ(stratus_stream_uninstall_topic(s, "nl", &eb), STRATUS_ENOTFOUND);
    stratus_stream_close(s);
}

/* Engine A uploads and resigns; engine B claims from what A committed. */
static void test_handover(void)
{
    struct stratus_stream *a = open_cluster("a", 1), *b = NULL;
    struct stratus_partition *pa0 = NULL, *pa1 = NULL, *pb0 = NULL;
    struct stratus_errbuf eb = {{0}};
    struct stratus_append_result r;
    uint8_t *golden = NULL, *cold = NULL, idem[4096];
    size_t glen = 0, clen = 0, n, idem_len;
    int64_t end = -1, idem_off, hw, le;
    struct stratus_index_range *rs;
    int objs_before = fx_count_objects(), commits_before = meta_int(&g_meta.commits);

    CHECK(a != NULL);
    if (!a)
        return;
    CHECK_EQ(install(a, "ho", 2, 11), 0);
    pa0 = stratus_stream_partition(a, "ho", 0);
    pa1 = stratus_stream_partition(a, "ho", 1);
    CHECK(pa0 && pa1);
    if (!pa0 || !pa1)
        goto out;
    CHECK_EQ(claim_serve(pa0, 1, 0), 0);
    CHECK_EQ(claim_serve(pa1, 1, 0), 0);
    CHECK_EQ(append_n(pa0, 20, 100), 20);
    CHECK_EQ(append_n(pa1, 5, 200), 5);
    /* an idempotent producer's batch: its state must reach B through the commit */
    idem_len = build_batch(idem, 3, 64, 999, 4242, 0);
    CHECK(fx_append_acked(pa0, idem, idem_len, &r, FX_ACK_MS));
    CHECK_EQ(r.error, KAFKA_ERR_NONE);
    idem_off = r.base_offset;
    CHECK_EQ(stratus_stream_flush(a, &eb), 0);
    /* max_streams_per_object = 1: one object per partition, ids from the double */
    CHECK_EQ(meta_int(&g_meta.commits) - commits_before, 2);
    CHECK_EQ(meta_int(&g_meta.max_streams_seen), 1);
    CHECK_EQ(meta_int(&g_meta.unprepared_commits), 0);
    CHECK_EQ(fx_count_objects() - objs_before, 2);
    rs = meta_ranges(11, &n);
    CHECK_EQ(n, 1);
    if (n)
        CHECK(rs[0].object_id >= ID_BASE && rs[0].object_id < ID_BASE + 64);
    free(rs);
    /* more data, pending, then the hand-over of partition 0 */
    CHECK_EQ(append_n(pa0, 7, 300), 7);
    golden = read_all_hot(pa0, &glen);
    CHECK(golden != NULL && glen > 0);
    stratus_partition_offsets(pa0, NULL, &hw, &le);
    CHECK_EQ(stratus_partition_resign(pa0, 10000, &end, &eb), 0);
    CHECK_EQ(end, le);
    CHECK_EQ(stratus_partition_role(pa0), STRATUS_ROLE_NONE);
    CHECK(fx_append_acked(pa0, idem, idem_len, &r, 100) == 0);
    CHECK_EQ(r.error, KAFKA_ERR_NOT_LEADER_OR_FOLLOWER);
    CHECK_EQ(stratus_partition_role(pa1), STRATUS_ROLE_OWNER); /* the other stays */
    rs = meta_ranges(11, &n);
    CHECK_EQ(n, 2);
    if (n == 2)
        CHECK_EQ(rs[1].last_offset + 1, end);
    free(rs);
    CHECK_EQ(stratus_partition_resign(pa0, 1000, &end, &eb), STRATUS_EEXIST); /* not owned */

    /* engine B: another data dir, the same storage */
    b = open_cluster("b", 40);
    CHECK(b != NULL);
    if (!b)
        goto out;
    CHECK_EQ(install(b, "ho", 2, 11), 0);
    pb0 = stratus_stream_partition(b, "ho", 0);
    CHECK(pb0 != NULL);
    if (!pb0)
        goto out;
    CHECK_EQ(claim_serve(pb0, 2, 0), 0);
    CHECK_EQ(stratus_partition_leader_epoch(pb0), 2);
    stratus_partition_offsets(pb0, NULL, &hw, &le);
    CHECK_EQ(hw, end);
    CHECK_EQ(le, end);
    cold = read_all_cold(pb0, hw, &clen);
    CHECK_EQ(clen, glen);
    CHECK(cold && golden && clen == glen && memcmp(cold, golden, glen) == 0);
    /* the producer state came along: the retried batch is a duplicate */
    CHECK(fx_append_acked(pb0, idem, idem_len, &r, FX_ACK_MS));
    CHECK_EQ(r.error, KAFKA_ERR_NONE);
    CHECK_EQ(r.base_offset, idem_off);
    stratus_partition_offsets(pb0, NULL, NULL, &le);
    CHECK_EQ(le, end);
    /* appends continue at the committed end */
    {
        uint8_t buf[4096];
        size_t len = build_batch(buf, 2, 30, 77, -1, -1);
        CHECK(fx_append_acked(pb0, buf, len, &r, FX_ACK_MS));
        CHECK_EQ(r.error, KAFKA_ERR_NONE);
        CHECK_EQ(r.base_offset, end);
    }
out:
    free(golden);
    free(cold);
    stratus_partition_release(pa0);
    stratus_partition_release(pa1);
    stratus_partition_release(pb0);
    stratus_stream_close(b);
    stratus_stream_close(a);
}

struct recs {
    uint64_t sid;
    uint8_t *rec[64];
    size_t len[64];
    int n;
};

static int collect_rec(void *arg, uint64_t lsn, const void *rec, size_t len)
{
    struct recs *c = arg;
    uint64_t sid;
    int32_t epoch;
    int64_t base, last;

    (void)lsn;
    if (stratus_walrec_info(rec, len, &sid, &epoch, &base, &last) != 0 || sid != c->sid ||
        c->n == 64)
        return 0;
    c->rec[c->n] = malloc(len);
    memcpy(c->rec[c->n], rec, len);
    c->len[c->n] = len;
    c->n++;
    return 0;
}

/* Engine A2 dies with acked data in its WAL; B2 recovers it from there. */
static void test_recover(void)
{
    struct stratus_stream *a = open_cluster("a2", 40), *b = NULL;
    struct stratus_partition *p = NULL;
    struct stratus_errbuf eb = {{0}};
    struct recs rc = {.sid = 31};
    uint8_t *golden = NULL, *got = NULL;
    size_t glen = 0, len = 0, n;
    int64_t hw = -1, le = -1;
    struct stratus_index_range *rs;

    CHECK(a != NULL);
    if (!a)
        return;
    CHECK_EQ(install(a, "rec", 1, 31), 0);
    p = stratus_stream_partition(a, "rec", 0);
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ(claim_serve(p, 1, 0), 0);
        CHECK_EQ(append_n(p, 6, 500), 6);
        golden = read_all_hot(p, &glen);
        stratus_partition_release(p);
        p = NULL;
    }
    stratus_stream_close(a); /* nothing uploaded: the data is only in A2's WAL */
    {
        struct stratus_wal_conf wc;
        struct stratus_wal *w = NULL;
        char path[600];
        struct stratus_stream_conf c;
        fx_stream_conf(&c);
        wc = c.wal;
        snprintf(path, sizeof path, "%s/a2/wal/stratus.wal", fx_env.dir);
        wc.path = path;
        CHECK_EQ(stratus_wal_open(&wc, &w, &eb), 0);
        if (w) {
            CHECK_EQ(stratus_wal_replay(w, collect_rec, &rc, &eb), 0);
            stratus_wal_close(w);
        }
    }
    CHECK_EQ(rc.n, 6);
    if (rc.n < 2)
        goto out;
    {
        int32_t epoch = 0;
        int64_t base = -1, last = -1;
        uint64_t sid = 0;
        CHECK_EQ(stratus_walrec_info(rc.rec[0], rc.len[0], &sid, &epoch, &base, &last), 0);
        CHECK_EQ(sid, 31);
        CHECK_EQ(epoch, 1);
        CHECK_EQ(base, 0);
        CHECK_EQ(stratus_walrec_info(rc.rec[0], 10, &sid, &epoch, &base, &last),
                 STRATUS_ECORRUPT);
    }

    b = open_cluster("b2", 40);
    CHECK(b != NULL);
    if (!b)
        goto out;
    CHECK_EQ(install(b, "rec", 1, 31), 0);
    p = stratus_stream_partition(b, "rec", 0);
    CHECK(p != NULL);
    if (!p)
        goto out;
    CHECK_EQ(stratus_partition_recover_record(p, rc.rec[0], rc.len[0], &eb), STRATUS_EINVAL);
    CHECK_EQ(stratus_partition_claim(p, 2, NULL, 0, 0, NULL, 0, 0, &eb), 0);
    /* the second record first: a gap */
    CHECK_EQ(stratus_partition_recover_record(p, rc.rec[1], rc.len[1], &eb), STRATUS_ECORRUPT);
    for (int i = 0; i < rc.n; i++)
        CHECK_EQ(stratus_partition_recover_record(p, rc.rec[i], rc.len[i], &eb), 0);
    CHECK_EQ(stratus_partition_recover_record(p, rc.rec[0], rc.len[0], &eb), 0); /* older */
    stratus_partition_offsets(p, NULL, &hw, &le);
    CHECK_EQ(hw, le);
    CHECK(hw > 0);
    {
        struct stratus_fetch_result fr;
        CHECK_EQ(stratus_partition_read(p, 0, 1 << 20, 1, &fr), 0);
        CHECK_EQ(fr.error, KAFKA_ERR_NOT_LEADER_OR_FOLLOWER); /* recovering */
        free(fr.data);
    }
    /* flushed while recovering, as the node agent does before serving */
    CHECK_EQ(stratus_stream_flush(b, &eb), 0);
    rs = meta_ranges(31, &n);
    CHECK_EQ(n, 1);
    if (n)
        CHECK_EQ(rs[0].last_offset + 1, hw);
    free(rs);
    stratus_partition_serve(p);
    got = read_all_hot(p, &len);
    CHECK(got && golden && len == glen && memcmp(got, golden, glen) == 0);
    free(got);
    got = read_all_cold(p, hw, &len);
    CHECK(got && golden && len == glen && memcmp(got, golden, glen) == 0);
    /* recovered batches are not in B2's WAL: after more appends and a flush it is trimmed
     * to its durable end */
    CHECK_EQ(append_n(p, 3, 600), 3);
    CHECK_EQ(stratus_stream_flush(b, &eb), 0);
    {
        struct stratus_stream_stats st;
        stratus_stream_get_stats(b, &st);
        CHECK_EQ(st.pending_upload_bytes, 0);
        CHECK_EQ(st.wal.trim_lsn, st.wal.durable_lsn);
    }
out:
    for (int i = 0; i < rc.n; i++)
        free(rc.rec[i]);
    free(golden);
    free(got);
    stratus_partition_release(p);
    stratus_stream_close(b);
}

/* A commit where the metastore says one partition is not ours any more. */
static void test_lost(void)
{
    struct stratus_stream *s = open_cluster("lost", 40);
    struct stratus_partition *p0 = NULL, *p1 = NULL;
    struct stratus_errbuf eb = {{0}};
    struct stratus_stream_stats st;
    struct stratus_fetch_result fr;
    struct stratus_index_range *rs;
    size_t n;
    int commits, objs;

    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(install(s, "lost", 2, 41), 0);
    p0 = stratus_stream_partition(s, "lost", 0);
    p1 = stratus_stream_partition(s, "lost", 1);
    CHECK(p0 && p1);
    if (!p0 || !p1)
        goto out;
    CHECK_EQ(claim_serve(p0, 1, 0), 0);
    CHECK_EQ(claim_serve(p1, 1, 0), 0);

    /* a failed commit: nothing committed, everything stays pending; the object is left to
     * the prepared-object collection */
    CHECK_EQ(append_n(p1, 3, 700), 3);
    pthread_mutex_lock(&g_meta.mu);
    g_meta.fail_next = 1;
    pthread_mutex_unlock(&g_meta.mu);
    commits = meta_int(&g_meta.commits);
    objs = fx_count_objects();
    CHECK(stratus_stream_flush(s, &eb) != 0);
    CHECK_EQ(meta_int(&g_meta.commits), commits);
    CHECK_EQ(fx_count_objects(), objs + 1);
    stratus_stream_get_stats(s, &st);
    CHECK(st.pending_upload_bytes > 0);
    rs = meta_ranges(42, &n);
    CHECK_EQ(n, 0);
    free(rs);

    /* another broker claimed stream 41 meanwhile */
    CHECK_EQ(append_n(p0, 4, 800), 4);
    meta_set_owned(41, 0);
    CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    CHECK_EQ(meta_int(&g_meta.commits), commits + 1); /* both streams in one object */
    CHECK_EQ(meta_int(&g_meta.lost_calls), 1);
    pthread_mutex_lock(&g_meta.mu);
    CHECK(g_meta.last_lost == p0);
    pthread_mutex_unlock(&g_meta.mu);
    CHECK_EQ(stratus_partition_role(p0), STRATUS_ROLE_NONE);
    CHECK_EQ(stratus_partition_role(p1), STRATUS_ROLE_OWNER);
    rs = meta_ranges(41, &n);
    CHECK_EQ(n, 0);
    free(rs);
    rs = meta_ranges(42, &n);
    CHECK_EQ(n, 1);
    if (n) {
        CHECK_EQ(rs[0].base_offset, 0);
        CHECK(rs[0].last_offset >= 0);
    }
    free(rs);
    stratus_stream_get_stats(s, &st);
    CHECK_EQ(st.pending_upload_bytes, 0); /* p0's data dropped, p1's uploaded */
    CHECK_EQ(stratus_partition_read(p0, 0, 1 << 20, 1, &fr), 0);
    CHECK_EQ(fr.error, KAFKA_ERR_NOT_LEADER_OR_FOLLOWER);
    free(fr.data);
    /* p1's range is in the local index: a cold read finds it in the object */
    {
        int64_t hw;
        size_t hlen = 0, clen = 0;
        uint8_t *hot, *cold;
        stratus_partition_offsets(p1, NULL, &hw, NULL);
        hot = read_all_hot(p1, &hlen);
        cold = read_all_cold(p1, hw, &clen);
        CHECK(hot && cold && hlen == clen && memcmp(hot, cold, hlen) == 0);
        stratus_stream_get_stats(s, &st);
        CHECK(st.cold_reads > 0);
        free(hot);
        free(cold);
    }
    /* p0 can be claimed again (the other broker handed it back) */
    CHECK_EQ(claim_serve(p0, 3, 0), 0);
    CHECK_EQ(append_n(p0, 1, 900), 1);
out:
    stratus_partition_release(p0);
    stratus_partition_release(p1);
    stratus_stream_close(s);
}

/* A restart with a local WAL: the installed topic is known again (stream ids persisted), its
 * partitions are NONE with the replayed tail cached; claim(keep_cache = 1) keeps that tail
 * after the committed end, claim(keep_cache = 0) drops it. */
static void test_restart_keep_cache(void)
{
    struct stratus_stream *s = open_cluster("rk", 40);
    struct stratus_partition *p0 = NULL, *p1 = NULL;
    struct stratus_errbuf eb = {{0}};
    struct stratus_topic_info ti;
    uint8_t *golden = NULL, *got = NULL;
    size_t glen = 0, len = 0, n;
    int64_t end0 = -1, end1 = -1, hw = -1, le = -1;
    struct stratus_index_range *rs;

    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(install(s, "rk", 2, 61), 0);
    p0 = stratus_stream_partition(s, "rk", 0);
    p1 = stratus_stream_partition(s, "rk", 1);
    CHECK(p0 && p1);
    if (!p0 || !p1)
        goto out;
    CHECK_EQ(claim_serve(p0, 1, 0), 0);
    CHECK_EQ(claim_serve(p1, 1, 0), 0);
    CHECK_EQ(append_n(p0, 4, 1000), 4);
    CHECK_EQ(append_n(p1, 4, 1100), 4);
    CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    stratus_partition_offsets(p0, NULL, &end0, NULL);
    stratus_partition_offsets(p1, NULL, &end1, NULL);
    CHECK_EQ(append_n(p0, 3, 1200), 3); /* only in the WAL */
    CHECK_EQ(append_n(p1, 3, 1300), 3);
    golden = read_all_hot(p0, &glen);
    stratus_partition_release(p0);
    stratus_partition_release(p1);
    p0 = p1 = NULL;
    stratus_stream_close(s);

    s = open_cluster("rk", 40);
    CHECK(s != NULL);
    if (!s)
        goto out;
    CHECK_EQ(stratus_stream_find_topic(s, "rk", &ti), 0);
    CHECK_EQ(ti.partitions, 2);
    CHECK(memcmp(ti.id, TOPIC_ID, 16) == 0);
    p0 = stratus_stream_partition(s, "rk", 0);
    p1 = stratus_stream_partition(s, "rk", 1);
    CHECK(p0 && p1);
    if (!p0 || !p1)
        goto out;
    CHECK_EQ(stratus_partition_stream_id(p0), 61);
    CHECK_EQ(stratus_partition_stream_id(p1), 62);
    CHECK_EQ(stratus_partition_role(p0), STRATUS_ROLE_NONE);
    CHECK_EQ(stratus_partition_role(p1), STRATUS_ROLE_NONE);
    CHECK_EQ(claim_serve(p0, 2, 1), 0);
    CHECK_EQ(claim_serve(p1, 2, 0), 0);
    stratus_partition_offsets(p0, NULL, &hw, &le);
    CHECK(hw > end0);
    CHECK_EQ(hw, le);
    got = read_all_cold(p0, hw, &len); /* objects, then the kept tail from the log cache */
    CHECK(got && golden && len == glen && memcmp(got, golden, glen) == 0);
    stratus_partition_offsets(p1, NULL, &hw, &le);
    CHECK_EQ(hw, end1);
    CHECK_EQ(le, end1);
    CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    {
        struct stratus_stream_stats st;
        stratus_stream_get_stats(s, &st);
        CHECK_EQ(st.pending_upload_bytes, 0);
    }
    rs = meta_ranges(61, &n);
    CHECK_EQ(n, 2);
    stratus_partition_offsets(p0, NULL, &hw, NULL);
    if (n == 2)
        CHECK_EQ(rs[1].last_offset + 1, hw);
    free(rs);
    rs = meta_ranges(62, &n);
    CHECK_EQ(n, 1); /* p1's dropped tail was never committed */
    free(rs);
out:
    free(golden);
    free(got);
    stratus_partition_release(p0);
    stratus_partition_release(p1);
    stratus_stream_close(s);
}

/* The object WAL's ack deadline: 0 = passed (every PUT completes with STRATUS_EAGAIN). */
static atomic_llong g_deadline;

static int64_t ack_deadline(void *arg)
{
    (void)arg;
    return (int64_t)atomic_load(&g_deadline);
}

/* Appends whose object WAL PUT finished after the ack deadline are not acknowledged
 * (NOT_LEADER_OR_FOLLOWER), stay invisible, and the partition is usable again once the node
 * agent fenced and re-claimed it. */
/* A cluster-mode engine conf with an object WAL under prefix in the shared storage; its data
 * directory (written to dir) is fx_env.dir/name. */
static void objwal_conf(struct stratus_stream_conf *c, char *dir, size_t cap, const char *name,
                        const char *prefix)
{
    snprintf(dir, cap, "%s/%s", fx_env.dir, name);
    fx_stream_conf(c);
    c->data_dir = dir;
    c->cluster = &g_ops;
    c->max_streams_per_object = 40;
    c->wal.object_storage = fx_env.st;
    c->wal.object_prefix = prefix;
    c->wal.object_interval_ms = 10;
}

static void test_ack_deadline(void)
{
    struct stratus_stream_conf c;
    struct stratus_stream *s;
    struct stratus_partition *p = NULL;
    struct stratus_append_result r;
    uint8_t buf[4096];
    char dir[400];
    int64_t hw = -1, le = -1;
    int errs;
    size_t len = build_batch(buf, 2, 40, 55, -1, -1);

    objwal_conf(&c, dir, sizeof dir, "objwal", "wal/7/1/");
    c.wal.ack_deadline = ack_deadline;
    atomic_store(&g_deadline, INT64_MAX);
    s = fx_stream_open(&c, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(install(s, "ack", 1, 51), 0);
    p = stratus_stream_partition(s, "ack", 0);
    CHECK(p != NULL);
    if (!p)
        goto out;
    CHECK_EQ(claim_serve(p, 1, 0), 0);
    CHECK_EQ(append_n(p, 2, 10), 2);
    stratus_partition_offsets(p, NULL, &hw, NULL);
    atomic_store(&g_deadline, 0);
    errs = fx_acks_errors();
    CHECK(fx_append_acked(p, buf, len, &r, FX_ACK_MS));
    CHECK_EQ(r.error, KAFKA_ERR_NONE);    /* accepted ... */
    CHECK_EQ(fx_acks_errors(), errs + 1); /* ... but not acknowledged */
    stratus_partition_offsets(p, NULL, &le, NULL);
    CHECK_EQ(le, hw); /* not visible */
    atomic_store(&g_deadline, INT64_MAX);
    stratus_partition_append(p, buf, len, &r, fx_on_done, NULL);
    CHECK_EQ(r.error, KAFKA_ERR_NOT_LEADER_OR_FOLLOWER); /* until the agent fences it */
    stratus_partition_fence(p);
    CHECK_EQ(stratus_partition_role(p), STRATUS_ROLE_NONE);
    CHECK_EQ(claim_serve(p, 2, 0), 0);
    errs = fx_acks_errors();
    CHECK_EQ(append_n(p, 1, 20), 1); /* not marked failed forever */
    CHECK_EQ(fx_acks_errors(), errs);
out:
    stratus_partition_release(p);
    stratus_stream_close(s);
}

/* Sets topic name's (one partition, stream sid) retention.bytes (-1 = none); retention.ms off. */
static int install_retention(struct stratus_stream *s, const char *name, uint64_t sid,
                             int64_t bytes)
{
    char b[32];
    struct stratus_kv kv[2] = {{"retention.ms", "-1"}, {"retention.bytes", b}};
    struct stratus_errbuf eb = {{0}};
    int rc;

    snprintf(b, sizeof b, "%lld", (long long)bytes);
    rc = stratus_stream_install_topic(s, name, TOPIC_ID, 1, &sid, kv, 2, &eb);
    if (rc)
        fprintf(stderr, "install: %s\n", eb.msg);
    return rc;
}

/* Retention and DeleteRecords in cluster mode call the trim hook with the dropped committed
 * ranges and the new log start before changing anything locally; a hook answering EEXIST
 * (owned elsewhere) leaves the log start alone and fences the partition (ops->lost called). */
static void test_trim(void)
{
    struct stratus_stream *s = open_cluster("trim", 40);
    struct stratus_partition *p = NULL;
    struct stratus_errbuf eb = {{0}};
    struct stratus_index_range *rs = NULL;
    size_t n = 0;
    int64_t ls = -1, hw = -1, low = -1;
    int trims, lost_calls;
    char msg[256];

    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(install_retention(s, "trim", 21, -1), 0);
    p = stratus_stream_partition(s, "trim", 0);
    CHECK(p != NULL);
    if (!p)
        goto out;
    CHECK_EQ(claim_serve(p, 1, 0), 0);
    for (int i = 0; i < 5; i++) { /* five objects: five committed ranges */
        CHECK_EQ(append_n(p, 2, 1400 + 10 * (uint32_t)i), 2);
        CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    }
    rs = meta_ranges(21, &n);
    CHECK_EQ(n, 5);
    if (n != 5)
        goto out;

    /* retention.bytes keeps the last three ranges: the first two go */
    trims = meta_int(&g_meta.trims);
    CHECK_EQ(install_retention(s, "trim", 21, rs[2].length + rs[3].length + rs[4].length), 0);
    CHECK_EQ(stratus_stream_run_retention(s, &eb), 0);
    CHECK_EQ(meta_int(&g_meta.trims), trims + 1);
    pthread_mutex_lock(&g_meta.mu);
    CHECK_EQ(g_meta.trim_sid, 21);
    CHECK_EQ(g_meta.trim_n, 2);
    CHECK_EQ(g_meta.trim_log_start, rs[1].last_offset + 1);
    for (size_t i = 0; i < 2 && g_meta.trim_n == 2; i++) {
        CHECK_EQ(g_meta.trim_dropped[i].object_id, rs[i].object_id);
        CHECK_EQ(g_meta.trim_dropped[i].base_offset, rs[i].base_offset);
        CHECK_EQ(g_meta.trim_dropped[i].last_offset, rs[i].last_offset);
        CHECK_EQ(g_meta.trim_dropped[i].length, rs[i].length);
    }
    pthread_mutex_unlock(&g_meta.mu);
    stratus_partition_offsets(p, &ls, &hw, NULL);
    CHECK_EQ(ls, rs[1].last_offset + 1);
    CHECK_EQ(stratus_partition_role(p), STRATUS_ROLE_OWNER);
    /* nothing more to drop: no call */
    CHECK_EQ(stratus_stream_run_retention(s, &eb), 0);
    CHECK_EQ(meta_int(&g_meta.trims), trims + 1);

    /* fenced: the hook answers EEXIST; the log start stays, p is fenced, lost is called */
    lost_calls = meta_int(&g_meta.lost_calls);
    pthread_mutex_lock(&g_meta.mu);
    g_meta.trim_fence_next = 1;
    pthread_mutex_unlock(&g_meta.mu);
    CHECK_EQ(install_retention(s, "trim", 21, rs[4].length), 0);
    CHECK_EQ(stratus_stream_run_retention(s, &eb), 0);
    CHECK_EQ(meta_int(&g_meta.trims), trims + 2);
    CHECK_EQ(stratus_partition_role(p), STRATUS_ROLE_NONE);
    CHECK_EQ(meta_int(&g_meta.lost_calls), lost_calls + 1);
    pthread_mutex_lock(&g_meta.mu);
    CHECK(g_meta.last_lost == p);
    pthread_mutex_unlock(&g_meta.mu);
    stratus_partition_offsets(p, &ls, NULL, NULL);
    CHECK_EQ(ls, rs[1].last_offset + 1);
    /* a partition not served here is not retained (no hook call) */
    CHECK_EQ(stratus_stream_run_retention(s, &eb), 0);
    CHECK_EQ(meta_int(&g_meta.trims), trims + 2);

    /* DeleteRecords after a new claim (ranges 2..4 committed; claim_serve starts at 0) */
    CHECK_EQ(install_retention(s, "trim", 21, -1), 0);
    CHECK_EQ(claim_serve(p, 2, 0), 0);
    CHECK_EQ(stratus_partition_delete_records(p, rs[3].last_offset + 1, &low, msg, sizeof msg),
             KAFKA_ERR_NONE);
    CHECK_EQ(low, rs[3].last_offset + 1);
    CHECK_EQ(meta_int(&g_meta.trims), trims + 3);
    pthread_mutex_lock(&g_meta.mu);
    CHECK_EQ(g_meta.trim_log_start, rs[3].last_offset + 1);
    CHECK_EQ(g_meta.trim_n, 2); /* ranges 2 and 3 */
    CHECK(g_meta.trim_n == 2 && g_meta.trim_dropped[0].last_offset == rs[2].last_offset &&
          g_meta.trim_dropped[1].last_offset == rs[3].last_offset);
    pthread_mutex_unlock(&g_meta.mu);
    /* ... and fenced: NOT_LEADER_OR_FOLLOWER, nothing moved, p fenced */
    pthread_mutex_lock(&g_meta.mu);
    g_meta.trim_fence_next = 1;
    pthread_mutex_unlock(&g_meta.mu);
    lost_calls = meta_int(&g_meta.lost_calls);
    CHECK_EQ(stratus_partition_delete_records(p, rs[4].last_offset, &low, msg, sizeof msg),
             KAFKA_ERR_NOT_LEADER_OR_FOLLOWER);
    CHECK_EQ(stratus_partition_role(p), STRATUS_ROLE_NONE);
    CHECK_EQ(meta_int(&g_meta.lost_calls), lost_calls + 1);
    stratus_partition_offsets(p, &ls, NULL, NULL);
    CHECK_EQ(ls, rs[3].last_offset + 1);
out:
    free(rs);
    stratus_partition_release(p);
    stratus_stream_close(s);
}

/* Counts the records of stream `arg` in WAL objects. */
static int count_stream_rec(void *arg, uint64_t lsn, const void *rec, size_t len)
{
    uint64_t *a = arg, sid = 0; /* a[0] = stream, a[1] = count */
    (void)lsn;
    if (stratus_walrec_info(rec, len, &sid, NULL, NULL, NULL) == 0 && sid == a[0])
        a[1]++;
    return 0;
}

static uint64_t wal_records_of(const char *prefix, uint64_t stream)
{
    uint64_t a[2] = {stream, 0};
    struct stratus_errbuf eb = {{0}};
    CHECK_EQ(stratus_wal_read_objects(fx_env.st, prefix, count_stream_rec, a, &eb), 0);
    return a[1];
}

/* A fence that drops acknowledged records not uploaded yet holds the object WAL's trim below
 * them for fenced_wal_hold_ms (the next owner recovers them from there), then lets it go. */
static void test_fenced_hold(void)
{
    struct stratus_stream_conf c;
    struct stratus_stream *s;
    struct stratus_partition *p = NULL, *q = NULL;
    struct stratus_stream_stats st;
    struct stratus_errbuf eb = {{0}};
    char dir[400];

    objwal_conf(&c, dir, sizeof dir, "fhold", "wal/7/2/");
    c.fenced_wal_hold_ms = 400;
    s = fx_stream_open(&c, NULL);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(install(s, "hold", 2, 56), 0);
    p = stratus_stream_partition(s, "hold", 0);
    q = stratus_stream_partition(s, "hold", 1);
    CHECK(p != NULL && q != NULL);
    if (!p || !q)
        goto out;
    CHECK_EQ(claim_serve(p, 1, 0), 0);
    CHECK_EQ(claim_serve(q, 1, 0), 0);
    CHECK_EQ(append_n(p, 2, 30), 2); /* acknowledged, in the WAL, not uploaded */
    CHECK_EQ(wal_records_of("wal/7/2/", 56), 2);
    stratus_partition_fence(p);
    /* the other partition goes on, is uploaded; the WAL keeps p's records */
    CHECK_EQ(append_n(q, 3, 31), 3);
    CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    stratus_stream_get_stats(s, &st);
    CHECK_EQ(st.pending_upload_bytes, 0);
    CHECK(st.wal.trim_lsn < st.wal.durable_lsn);
    CHECK_EQ(wal_records_of("wal/7/2/", 56), 2);
    /* after the hold, the next round trims them */
    {
        struct timespec ts = {0, 500 * 1000000L};
        nanosleep(&ts, NULL);
    }
    CHECK_EQ(append_n(q, 1, 32), 1);
    CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    stratus_stream_get_stats(s, &st);
    CHECK_EQ(st.wal.trim_lsn, st.wal.durable_lsn);
    CHECK_EQ(wal_records_of("wal/7/2/", 56), 0);
out:
    stratus_partition_release(p);
    stratus_partition_release(q);
    stratus_stream_close(s);
}

/* Upload rounds while another thread resigns and claims partitions over and over: every round
 * orders the partitions by role, and a role changing in the middle of that (a hand-over or a
 * claim finishing) once placed a partition twice, writing past the array (ASan caught it in
 * CI's burst test), or not at all. The flips here need no upload, so they are fast enough to
 * land inside the ordering often; the ASan build turns a repeat of the bug into a failure. */
struct churn {
    struct stratus_partition *p[8];
    atomic_int stop;
    int flips, errors;
};

static void *churn_main(void *arg)
{
    struct churn *c = arg;
    int32_t epoch = 1;

    while (!atomic_load(&c->stop)) {
        epoch++;
        for (int i = 0; i < 8; i++) {
            struct stratus_errbuf eb = {{0}};
            int64_t end = -1;
            if (stratus_partition_resign(c->p[i], 10000, &end, &eb) != 0 ||
                stratus_partition_role(c->p[i]) != STRATUS_ROLE_NONE ||
                claim_serve(c->p[i], epoch, 0) != 0)
                c->errors++;
            c->flips++;
        }
    }
    return NULL;
}

static void test_role_churn(void)
{
    struct stratus_stream *s = open_cluster("churn", 40);
    struct churn c = {{0}};
    pthread_t th;
    int rounds = 0, failed = 0;
    int64_t until;

    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(install(s, "churn", 8, 30), 0);
    for (int i = 0; i < 8; i++) {
        c.p[i] = stratus_stream_partition(s, "churn", i);
        CHECK(c.p[i] != NULL);
        if (!c.p[i] || claim_serve(c.p[i], 1, 0) != 0)
            goto out;
    }
    CHECK_EQ(pthread_create(&th, NULL, churn_main, &c), 0);
    until = stratus_mono_ms() + 2500;
    while (stratus_mono_ms() < until) {
        struct stratus_errbuf eb = {{0}};
        if (stratus_uploader_run_round(s, &eb) != 0)
            failed++;
        rounds++;
    }
    atomic_store(&c.stop, 1);
    pthread_join(th, NULL);
    fprintf(stderr, "  role churn: %d upload rounds, %d resign + claim flips\n", rounds, c.flips);
    CHECK_EQ(failed, 0);
    CHECK_EQ(c.errors, 0);
    CHECK(rounds > 100 && c.flips > 100);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(stratus_partition_role(c.p[i]), STRATUS_ROLE_OWNER);
out:
    for (int i = 0; i < 8; i++)
        stratus_partition_release(c.p[i]);
    stratus_stream_close(s);
}

int main(void)
{
    if (fx_env_open("ownership") != 0)
        TEST_REPORT();
    test_single_node();
    test_not_leader();
    test_handover();
    test_recover();
    test_lost();
    test_restart_keep_cache();
    test_ack_deadline();
    test_fenced_hold();
    test_trim();
    test_role_churn();
    fx_env_close();
    pthread_mutex_lock(&g_meta.mu);
    for (int i = 0; i < MAX_STREAM; i++)
        free(g_meta.pstate[i]);
    pthread_mutex_unlock(&g_meta.mu);
    TEST_REPORT();
}
