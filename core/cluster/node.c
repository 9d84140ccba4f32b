/* node.c - the node agent (node.h): registration, catalog mirroring, claims, resigns, fences,
 * the engine's and the group coordinator's cluster hooks, and the API's view (cluster.h).
 *
 * One agent thread does all catalog and ownership work, in passes: the metastore watch (and
 * the engine's `lost` hook, and a lease loss) only set a flag and signal it. A pass
 *   1. mirrors topics/ into the engine (install new or grown topics, uninstall deleted ones);
 *   2. for every assignment: claims what is assigned here and not held, resigns what is held
 *      and being moved away, fences what is held but assigned or claimed elsewhere;
 *   3. tells the group coordinator when coordinator partitions came or went.
 * Claims and resigns of one pass run on up to NODE_WORKERS threads at once, so a burst of
 * moves shares upload rounds instead of paying one each.
 *
 * `held` is the set of partitions this broker claimed: stream id -> claim (the parts value the
 * fenced writes compare). It is read by the uploader's commit hook and the group hooks under
 * `mu`; only the agent thread (and its workers, under `mu`) changes it.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cluster/node.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cluster/controller.h"
#include "group/group.h"
#include "index/index.h"
#include "metrics/metrics.h"
#include "proto/kerr.h"
#include "stream/objfmt.h"
#include "stream/stream.h"
#include "stream/wal.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#define NODE_WORKERS 8
#define NODE_WAIT_MS 5000 /* admin calls wait this long for the local catalog to follow */
/* After a planned stop's drain, the connections stay open this long once the new owners serve,
 * so clients still sending here get NOT_LEADER_OR_FOLLOWER and refresh their metadata (one
 * librdkafka retry backoff is 100 ms). */
#define NODE_STOP_LINGER_MS 300

enum held_state { HELD_RECOVERING, HELD_SERVING };

struct held {
    uint64_t stream;
    char topic[250];
    int32_t partition;
    int state;
    struct stratus_meta_claim claim;
};

/* Metrics (global registry: one agent per process). Names in README.md. */
static struct {
    struct stratus_metric *commits, *commit_lost, *commit_errors, *commit_s;
    struct stratus_metric *claims, *claim_s, *handovers, *handover_s, *fences, *lease_losses;
    struct stratus_metric *recovered;
} node_metrics;

static void metrics_init(void)
{
    node_metrics.commits = stratus_metrics_counter("stratus_cluster_object_commits_total",
                                         "Objects committed to etcd (fenced transactions)");
    node_metrics.commit_lost = stratus_metrics_counter(
        "stratus_cluster_commit_fenced_total",
        "Object commits that found partitions owned elsewhere (their ranges dropped)");
    node_metrics.commit_errors = stratus_metrics_counter("stratus_cluster_commit_errors_total",
                                               "Object commits that failed (retried)");
    node_metrics.commit_s = stratus_metrics_histogram("stratus_cluster_commit_seconds",
                                            "Latency of one object commit to etcd");
    node_metrics.claims = stratus_metrics_counter("stratus_cluster_claims_total",
                                        "Partitions claimed (opened at a new epoch) here");
    node_metrics.claim_s = stratus_metrics_histogram(
        "stratus_cluster_claim_seconds", "From the assignment seen to the partition served");
    node_metrics.handovers = stratus_metrics_counter("stratus_cluster_handovers_total",
                                           "Partitions handed over to another broker");
    node_metrics.handover_s = stratus_metrics_histogram(
        "stratus_cluster_handover_seconds", "From the move seen to the partition released");
    node_metrics.fences = stratus_metrics_counter("stratus_cluster_fences_total",
                                        "Partitions lost without a hand-over (fenced)");
    node_metrics.lease_losses = stratus_metrics_counter("stratus_cluster_lease_losses_total",
                                              "Times this broker lost its etcd lease");
    node_metrics.recovered = stratus_metrics_counter(
        "stratus_cluster_recovered_records_total",
        "WAL records of dead owners replayed into partitions claimed here");
}

struct stratus_cluster {
    struct stratus_node_conf conf;
    char *rack;
    struct stratus_meta *meta;
    struct stratus_storage *st; /* borrowed */
    struct stratus_stream *s;   /* borrowed, set by attach */
    struct stratus_group_coord *groups;
    struct stratus_controller *ctl; /* guarded by mu: the watch thread notifies it */
    struct stratus_stream_cluster_ops ops;
    struct stratus_group_cluster_ops gops;
    char wal_prefix[96];
    int32_t self;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    int dirty, lease_lost, stop; /* [mu] */
    struct held *held;           /* [mu] sorted by stream */
    size_t nheld, heldcap;
    uint64_t coord_sig;          /* [agent] signature of the coordinator partitions held */
    pthread_t thread;
    int started, stopped;
};

/* ---- held set ---- */

static long held_find(struct stratus_cluster *c, uint64_t stream)
{
    size_t lo = 0, hi = c->nheld;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->held[mid].stream < stream)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->nheld && c->held[lo].stream == stream ? (long)lo : -1;
}

/* Takes ownership of *cl. Caller holds mu. */
static void held_add(struct stratus_cluster *c, uint64_t stream, const char *topic,
                     int32_t partition, struct stratus_meta_claim *cl)
{
    size_t i = 0;
    long at = held_find(c, stream);
    if (at >= 0) {
        stratus_meta_claim_free(&c->held[at].claim);
        c->held[at].claim = *cl;
        c->held[at].state = HELD_RECOVERING;
        return;
    }
    if (c->nheld == c->heldcap) {
        c->heldcap = c->heldcap ? 2 * c->heldcap : 64;
        c->held = xrealloc(c->held, c->heldcap * sizeof *c->held);
    }
    while (i < c->nheld && c->held[i].stream < stream)
        i++;
    memmove(c->held + i + 1, c->held + i, (c->nheld - i) * sizeof *c->held);
    memset(&c->held[i], 0, sizeof c->held[i]);
    c->held[i].stream = stream;
    snprintf(c->held[i].topic, sizeof c->held[i].topic, "%s", topic);
    c->held[i].partition = partition;
    c->held[i].state = HELD_RECOVERING;
    c->held[i].claim = *cl;
    c->nheld++;
}

/* Caller holds mu. */
static void held_remove(struct stratus_cluster *c, uint64_t stream)
{
    long at = held_find(c, stream);
    if (at < 0)
        return;
    stratus_meta_claim_free(&c->held[at].claim);
    memmove(c->held + at, c->held + at + 1, (c->nheld - (size_t)at - 1) * sizeof *c->held);
    c->nheld--;
}

static void wake(struct stratus_cluster *c)
{
    pthread_mutex_lock(&c->mu);
    c->dirty = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

/* ---- hooks: engine ---- */

static int op_alloc_ids(void *arg, const char *name, uint64_t n, uint64_t *first,
                        struct stratus_errbuf *eb)
{
    struct stratus_cluster *c = arg;
    return stratus_meta_alloc_ids(c->meta, name, n, first, eb);
}

static int op_prepare(void *arg, uint64_t oid, const char *key, struct stratus_errbuf *eb)
{
    struct stratus_cluster *c = arg;
    return stratus_meta_prepare_object(c->meta, oid, key, eb);
}

static int op_commit(void *arg, const struct stratus_index_object *obj,
                     const struct stratus_index_range *ranges,
                     struct stratus_partition *const *parts, const uint8_t *const *pstate,
                     const size_t *pstate_len, size_t n, int *lost, struct stratus_errbuf *eb)
{
    struct stratus_cluster *c = arg;
    struct stratus_meta_commit_item *items = xcalloc(n ? n : 1, sizeof *items);
    struct stratus_meta_claim *claims = xcalloc(n ? n : 1, sizeof *claims);
    size_t *map = xcalloc(n ? n : 1, sizeof *map), m = 0, committed = 0;
    int *mlost = xcalloc(n ? n : 1, sizeof *mlost), rc, any_lost = 0;

    /* Copy the claims (the agent may replace them meanwhile; a stale copy just fails its
     * compare, which is the point). */
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        long at = held_find(c, stratus_partition_stream_id(parts[i]));
        lost[i] = 0;
        if (at < 0) {
            lost[i] = 1;
            any_lost = 1;
            continue;
        }
        claims[m] = c->held[at].claim;
        claims[m].value = xmalloc(claims[m].value_len + 1);
        memcpy(claims[m].value, c->held[at].claim.value, claims[m].value_len);
        items[m].claim = &claims[m];
        items[m].range = &ranges[i];
        items[m].pstate = pstate ? pstate[i] : NULL;
        items[m].pstate_len = pstate_len ? pstate_len[i] : 0;
        map[m++] = i;
    }
    pthread_mutex_unlock(&c->mu);
    if (m == 0) {
        rc = stratus_errf(eb, STRATUS_EEXIST, "no partition of the object is owned here");
        goto out;
    }
    int64_t t0 = stratus_mono_us();
    rc = stratus_meta_commit_object(c->meta, obj, items, m, mlost, &committed, eb);
    stratus_metric_observe_us(node_metrics.commit_s, stratus_mono_us() - t0);
    stratus_metric_add(rc == 0 ? node_metrics.commits : rc == STRATUS_EEXIST ? node_metrics.commit_lost
                                                                    : node_metrics.commit_errors, 1);
    if (rc == 0 || rc == STRATUS_EEXIST) {
        for (size_t j = 0; j < m; j++)
            if (mlost[j]) {
                lost[map[j]] = 1;
                any_lost = 1;
            }
        rc = any_lost ? STRATUS_EEXIST : 0;
        if (rc)
            stratus_errf(eb, rc, "some partitions of object %" PRIu64 " are owned elsewhere",
                         obj->object_id);
    }
out:
    for (size_t j = 0; j < m; j++)
        free(claims[j].value);
    free(items);
    free(claims);
    free(map);
    free(mlost);
    return rc;
}

/* Retention / DeleteRecords: the fenced metastore trim, on a copy of the held claim. */
static int op_trim(void *arg, struct stratus_partition *p, int64_t new_log_start,
                   const struct stratus_index_range *dropped, size_t n, struct stratus_errbuf *eb)
{
    struct stratus_cluster *c = arg;
    struct stratus_meta_claim cl;
    long at;
    int rc;

    pthread_mutex_lock(&c->mu);
    at = held_find(c, stratus_partition_stream_id(p));
    if (at >= 0) {
        cl = c->held[at].claim;
        cl.value = xmalloc(cl.value_len + 1);
        memcpy(cl.value, c->held[at].claim.value, cl.value_len);
    }
    pthread_mutex_unlock(&c->mu);
    if (at < 0)
        return stratus_errf(eb, STRATUS_EEXIST, "topic %s partition %d is not held here",
                            stratus_partition_topic(p), stratus_partition_index(p));
    rc = stratus_meta_trim(c->meta, &cl, new_log_start, dropped, n, eb);
    stratus_meta_claim_free(&cl);
    return rc;
}

static void op_lost(void *arg, struct stratus_partition *p)
{
    struct stratus_cluster *c = arg;
    uint64_t sid = stratus_partition_stream_id(p);

    stratus_metric_add(node_metrics.fences, 1);
    LOG_WARN("cluster", "fenced: topic=%s partition=%d is owned elsewhere now",
             stratus_partition_topic(p), stratus_partition_index(p));
    pthread_mutex_lock(&c->mu);
    held_remove(c, sid);
    c->dirty = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

/* ---- hooks: groups ---- */

static int coordinator_stream(struct stratus_cluster *c, const char *group, uint64_t *sid)
{
    struct stratus_meta_topic t;
    int32_t p = stratus_group_partition_for(group, STRATUS_CLUSTER_OFFSETS_PARTITIONS);
    int rc = stratus_meta_topic(c->meta, STRATUS_CLUSTER_OFFSETS_TOPIC, &t);

    if (rc)
        return rc;
    if (p >= t.partitions) {
        stratus_meta_topic_free(&t);
        return STRATUS_ENOTFOUND;
    }
    *sid = t.streams[p];
    stratus_meta_topic_free(&t);
    return 0;
}

static int g_coordinates(void *arg, const char *group)
{
    struct stratus_cluster *c = arg;
    uint64_t sid;
    int yes = 0;

    if (coordinator_stream(c, group, &sid) != 0)
        return 0;
    pthread_mutex_lock(&c->mu);
    long at = held_find(c, sid);
    yes = at >= 0 && c->held[at].state == HELD_SERVING;
    pthread_mutex_unlock(&c->mu);
    return yes;
}

static int g_load(void *arg, const char *group, uint8_t **val, size_t *len,
                  struct stratus_errbuf *eb)
{
    struct stratus_cluster *c = arg;
    return stratus_meta_group_load(c->meta, group, val, len, eb);
}

static int g_store(void *arg, const char *group, const uint8_t *val, size_t len,
                   struct stratus_errbuf *eb)
{
    struct stratus_cluster *c = arg;
    struct stratus_meta_claim cl;
    uint64_t sid;
    int rc;

    if (coordinator_stream(c, group, &sid) != 0)
        return stratus_errf(eb, STRATUS_EEXIST, "group %s: no coordinator partition", group);
    pthread_mutex_lock(&c->mu);
    long at = held_find(c, sid);
    if (at < 0) {
        pthread_mutex_unlock(&c->mu);
        return stratus_errf(eb, STRATUS_EEXIST, "group %s is not coordinated here", group);
    }
    cl = c->held[at].claim;
    cl.value = xmalloc(cl.value_len + 1);
    memcpy(cl.value, c->held[at].claim.value, cl.value_len);
    pthread_mutex_unlock(&c->mu);
    rc = stratus_meta_group_store(c->meta, &cl, group, val, len, eb);
    free(cl.value);
    return rc;
}

/* ---- lease and watch ---- */

static void on_lease_lost(void *arg)
{
    struct stratus_cluster *c = arg;
    stratus_metric_add(node_metrics.lease_losses, 1);
    LOG_ERROR("cluster", "node %d lost its etcd lease: fencing every partition and rejoining",
              c->self);
    pthread_mutex_lock(&c->mu);
    c->lease_lost = 1;
    c->dirty = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

static void on_change(void *arg, enum stratus_meta_kind kind, const char *key)
{
    struct stratus_cluster *c = arg;
    (void)kind;
    (void)key;
    pthread_mutex_lock(&c->mu); /* stop() detaches the controller under it before freeing it */
    if (c->ctl)
        stratus_controller_notify(c->ctl);
    c->dirty = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

int64_t stratus_node_ack_deadline(void *arg)
{
    struct stratus_cluster *c = arg;
    int64_t d = stratus_meta_ack_deadline(c->meta);
    int lost;

    pthread_mutex_lock(&c->mu);
    lost = c->lease_lost;
    pthread_mutex_unlock(&c->mu);
    return lost ? 0 : d;
}

/* ---- catalog ---- */

static int same_configs(const struct stratus_meta_topic *t, const struct stratus_config_entry *e,
                        size_t ne)
{
    size_t set = 0;
    for (size_t i = 0; i < ne; i++)
        if (e[i].source == STRATUS_CONFIG_SRC_DYNAMIC_TOPIC)
            set++;
    if (set != t->ncfg)
        return 0;
    for (size_t j = 0; j < t->ncfg; j++) {
        int found = 0;
        for (size_t i = 0; i < ne && !found; i++)
            found = e[i].source == STRATUS_CONFIG_SRC_DYNAMIC_TOPIC &&
                    strcmp(e[i].name, t->cfg_names[j]) == 0 &&
                    strcmp(e[i].value, t->cfg_values[j]) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

static void sync_catalog(struct stratus_cluster *c)
{
    struct stratus_meta_topic *mt = NULL;
    struct stratus_topic_info *lt = NULL;
    size_t nm = 0, nl = 0;
    struct stratus_errbuf eb = {{0}};

    if (stratus_meta_topics(c->meta, &mt, &nm) != 0)
        return;
    for (size_t i = 0; i < nm; i++) {
        struct stratus_topic_info info;
        struct stratus_config_entry *ce = NULL;
        size_t nce = 0;
        int need = 1;
        if (stratus_stream_find_topic(c->s, mt[i].name, &info) == 0 &&
            memcmp(info.id, mt[i].id, 16) == 0 && info.partitions == mt[i].partitions &&
            stratus_stream_describe_topic_configs(c->s, mt[i].name, &ce, &nce) == 0)
            need = !same_configs(&mt[i], ce, nce);
        free(ce);
        if (!need)
            continue;
        if (stratus_stream_find_topic(c->s, mt[i].name, &info) == 0 &&
            memcmp(info.id, mt[i].id, 16) != 0) /* recreated under the same name */
            stratus_stream_uninstall_topic(c->s, mt[i].name, &eb);
        struct stratus_kv *kv = xcalloc(mt[i].ncfg ? mt[i].ncfg : 1, sizeof *kv);
        for (size_t j = 0; j < mt[i].ncfg; j++) {
            kv[j].name = mt[i].cfg_names[j];
            kv[j].value = mt[i].cfg_values[j];
        }
        if (stratus_stream_install_topic(c->s, mt[i].name, mt[i].id, mt[i].partitions,
                                         mt[i].streams, kv, mt[i].ncfg, &eb) != 0)
            LOG_WARN("cluster", "installing topic %s: %s", mt[i].name, eb.msg);
        free(kv);
    }
    if (stratus_stream_list_topics(c->s, &lt, &nl) == 0) {
        for (size_t i = 0; i < nl; i++) {
            int found = 0;
            for (size_t j = 0; j < nm && !found; j++)
                found = strcmp(mt[j].name, lt[i].name) == 0;
            if (!found && stratus_stream_uninstall_topic(c->s, lt[i].name, &eb) != 0)
                LOG_WARN("cluster", "removing topic %s: %s", lt[i].name, eb.msg);
        }
        free(lt);
    }
    stratus_meta_topics_free(mt, nm);
}

/* ---- claims, resigns, fences ---- */

struct recover_ctx {
    struct stratus_partition *p;
    uint64_t stream;
    int32_t epoch;
    size_t applied;
    int err;
    struct stratus_errbuf *eb;
};

static int recover_one(void *arg, uint64_t lsn, const void *rec, size_t len)
{
    struct recover_ctx *r = arg;
    uint64_t sid;
    int32_t epoch;
    int64_t base, last, ls, hw, le;

    (void)lsn;
    if (stratus_walrec_info(rec, len, &sid, &epoch, &base, &last) != 0)
        return 0; /* not an engine record */
    if (sid != r->stream || epoch != r->epoch)
        return 0;
    stratus_partition_offsets(r->p, &ls, &hw, &le);
    if (last < le)
        return 0; /* committed already */
    if (stratus_partition_recover_record(r->p, rec, len, r->eb) != 0) {
        r->err = 1;
        return 1;
    }
    r->applied++;
    return 0;
}

enum job_kind { JOB_CLAIM, JOB_RESIGN };

struct job {
    struct stratus_cluster *c;
    int kind;
    struct stratus_meta_assign a;
    int rc;
};

static void do_claim(struct stratus_cluster *c, const struct stratus_meta_assign *a)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_meta_claim cl = {0};
    struct stratus_index_range *ranges = NULL;
    uint8_t *ps = NULL;
    size_t n = 0, pl = 0;
    int64_t log_start = 0, t0 = stratus_mono_ms();
    int keep, rc;
    struct stratus_partition *p = stratus_stream_partition(c->s, a->topic, a->partition);

    if (!p)
        return; /* not installed yet: the next pass */
    rc = stratus_meta_claim_assigned(c->meta, a, &cl, &eb);
    if (rc) {
        LOG_WARN("cluster", "claim topic=%s partition=%d: %s", a->topic, a->partition, eb.msg);
        goto out;
    }
    rc = stratus_meta_load_stream(c->meta, a->stream, &ranges, &n, &log_start, &ps, &pl, &eb);
    if (rc)
        goto fail;
    keep = !c->conf.object_wal && cl.had_prev && !cl.prev.released && cl.prev.owner == c->self;
    rc = stratus_partition_claim(p, cl.epoch, ranges, n, log_start, ps, pl, keep, &eb);
    if (rc)
        goto fail;
    pthread_mutex_lock(&c->mu);
    held_add(c, a->stream, a->topic, a->partition, &cl); /* owns cl from here */
    pthread_mutex_unlock(&c->mu);
    memset(&cl, 0, sizeof cl);
    {
        struct stratus_meta_part prev;
        long at;
        pthread_mutex_lock(&c->mu);
        at = held_find(c, a->stream);
        prev = c->held[at].claim.prev;
        int had_prev = c->held[at].claim.had_prev;
        pthread_mutex_unlock(&c->mu);
        if (had_prev && !prev.released && c->conf.object_wal && prev.inc != 0) {
            char prefix[96];
            struct recover_ctx r = {.p = p, .stream = a->stream, .epoch = prev.epoch, .eb = &eb};
            snprintf(prefix, sizeof prefix, "wal/%d/%016" PRIx64 "/", prev.owner, prev.inc);
            rc = stratus_wal_read_objects(c->st, prefix, recover_one, &r, &eb);
            if (rc || r.err) {
                if (!rc)
                    rc = STRATUS_ECORRUPT;
                goto fail_held;
            }
            if (r.applied) {
                rc = stratus_stream_flush(c->s, &eb);
                if (rc)
                    goto fail_held;
            }
            stratus_metric_add(node_metrics.recovered, (int64_t)r.applied);
            LOG_INFO("cluster", "recovered topic=%s partition=%d: %zu WAL records of node %d",
                     a->topic, a->partition, r.applied, prev.owner);
        }
    }
    stratus_partition_serve(p);
    pthread_mutex_lock(&c->mu);
    {
        long at = held_find(c, a->stream);
        if (at >= 0)
            c->held[at].state = HELD_SERVING;
    }
    pthread_mutex_unlock(&c->mu);
    stratus_metric_add(node_metrics.claims, 1);
    stratus_metric_observe_us(node_metrics.claim_s, (stratus_mono_ms() - t0) * 1000);
    LOG_INFO("cluster", "serving topic=%s partition=%d epoch=%d (%lld ms)", a->topic,
             a->partition, stratus_partition_leader_epoch(p),
             (long long)(stratus_mono_ms() - t0));
    goto out;
fail_held:
    pthread_mutex_lock(&c->mu);
    held_remove(c, a->stream);
    pthread_mutex_unlock(&c->mu);
    stratus_partition_fence(p);
    LOG_WARN("cluster", "claim topic=%s partition=%d failed: %s", a->topic, a->partition,
             eb.msg);
    goto out;
fail:
    stratus_partition_fence(p);
    LOG_WARN("cluster", "claim topic=%s partition=%d failed: %s", a->topic, a->partition,
             eb.msg);
out:
    stratus_meta_claim_free(&cl);
    free(ranges);
    free(ps);
    stratus_partition_release(p);
}

static void do_resign(struct stratus_cluster *c, const struct stratus_meta_assign *a)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_meta_claim cl = {0};
    int64_t end = -1, t0 = stratus_mono_ms();
    int rc;
    struct stratus_partition *p = stratus_stream_partition(c->s, a->topic, a->partition);

    if (!p)
        return;
    rc = stratus_partition_resign(p, 5000, &end, &eb);
    if (rc == STRATUS_EEXIST) {
        pthread_mutex_lock(&c->mu);
        held_remove(c, a->stream);
        pthread_mutex_unlock(&c->mu);
        goto out;
    }
    if (rc) {
        LOG_WARN("cluster", "resign topic=%s partition=%d: %s (retrying)", a->topic,
                 a->partition, eb.msg);
        goto out;
    }
    pthread_mutex_lock(&c->mu);
    long at = held_find(c, a->stream);
    if (at >= 0) {
        cl = c->held[at].claim;
        cl.value = xmalloc(cl.value_len + 1);
        memcpy(cl.value, c->held[at].claim.value, cl.value_len);
    }
    held_remove(c, a->stream);
    pthread_mutex_unlock(&c->mu);
    if (at >= 0) {
        rc = stratus_meta_release(c->meta, &cl, a->topic, a->partition, a->target, &eb);
        if (rc)
            LOG_WARN("cluster", "release topic=%s partition=%d: %s", a->topic, a->partition,
                     eb.msg);
        free(cl.value);
    }
    stratus_metric_add(node_metrics.handovers, 1);
    stratus_metric_observe_us(node_metrics.handover_s, (stratus_mono_ms() - t0) * 1000);
    LOG_INFO("cluster", "handed topic=%s partition=%d to node %d at offset %lld (%lld ms)",
             a->topic, a->partition, a->target, (long long)end,
             (long long)(stratus_mono_ms() - t0));
out:
    stratus_partition_release(p);
}

static void *job_main(void *arg)
{
    struct job *j = arg;
    if (j->kind == JOB_CLAIM)
        do_claim(j->c, &j->a);
    else
        do_resign(j->c, &j->a);
    return NULL;
}

/* Runs the jobs, NODE_WORKERS at a time. */
static void run_jobs(struct job *jobs, size_t n)
{
    pthread_t th[NODE_WORKERS];
    for (size_t i = 0; i < n; i += NODE_WORKERS) {
        size_t k = n - i < NODE_WORKERS ? n - i : NODE_WORKERS, started = 0;
        for (size_t j = 0; j < k; j++) {
            if (pthread_create(&th[j], NULL, job_main, &jobs[i + j]) != 0)
                break;
            started++;
        }
        for (size_t j = started; j < k; j++)
            job_main(&jobs[i + j]);
        for (size_t j = 0; j < started; j++)
            pthread_join(th[j], NULL);
    }
}

static void fence_stream(struct stratus_cluster *c, const char *topic, int32_t partition,
                         uint64_t stream)
{
    struct stratus_partition *p = stratus_stream_partition(c->s, topic, partition);
    stratus_metric_add(node_metrics.fences, 1);
    if (p) {
        stratus_partition_fence(p);
        stratus_partition_release(p);
    }
    pthread_mutex_lock(&c->mu);
    held_remove(c, stream);
    pthread_mutex_unlock(&c->mu);
}

static void fence_all(struct stratus_cluster *c)
{
    for (;;) {
        char topic[250];
        int32_t partition;
        uint64_t stream;
        pthread_mutex_lock(&c->mu);
        if (c->nheld == 0) {
            pthread_mutex_unlock(&c->mu);
            return;
        }
        snprintf(topic, sizeof topic, "%s", c->held[0].topic);
        partition = c->held[0].partition;
        stream = c->held[0].stream;
        pthread_mutex_unlock(&c->mu);
        fence_stream(c, topic, partition, stream);
    }
}

static int is_stuck(struct stratus_cluster *c, const struct stratus_meta_assign *a)
{
    struct stratus_partition *p = stratus_stream_partition(c->s, a->topic, a->partition);
    int stuck = 0;
    if (p) {
        stuck = stratus_partition_stuck(p);
        stratus_partition_release(p);
    }
    return stuck;
}

static void reconcile_ownership(struct stratus_cluster *c)
{
    struct stratus_meta_assign *as = NULL;
    size_t n = 0, nj = 0;
    struct job *jobs;

    if (stratus_meta_assignments(c->meta, &as, &n) != 0)
        return;
    jobs = xcalloc(n ? n : 1, sizeof *jobs);
    for (size_t i = 0; i < n; i++) {
        const struct stratus_meta_assign *a = &as[i];
        struct stratus_meta_part part;
        int held_here, my_epoch = -1;
        pthread_mutex_lock(&c->mu);
        long at = held_find(c, a->stream);
        held_here = at >= 0;
        if (held_here)
            my_epoch = c->held[at].claim.epoch;
        pthread_mutex_unlock(&c->mu);
        if (held_here) {
            /* claimed by somebody else since (a newer epoch): fenced */
            if (stratus_meta_part(c->meta, a->stream, &part) == 0 && part.epoch > my_epoch) {
                LOG_WARN("cluster", "topic=%s partition=%d was claimed by node %d (epoch %d)",
                         a->topic, a->partition, part.owner, part.epoch);
                fence_stream(c, a->topic, a->partition, a->stream);
                continue;
            }
            if (a->owner != c->self) {
                fence_stream(c, a->topic, a->partition, a->stream);
                continue;
            }
            if (is_stuck(c, a)) { /* fence, and claim again in the next pass */
                LOG_WARN("cluster", "topic=%s partition=%d: a WAL write was not acknowledged; "
                         "claiming it again", a->topic, a->partition);
                fence_stream(c, a->topic, a->partition, a->stream);
                wake(c);
                continue;
            }
            if (a->target >= 0 && a->target != c->self)
                jobs[nj++] = (struct job){.c = c, .kind = JOB_RESIGN, .a = *a};
        } else if (a->owner == c->self && (a->target < 0 || a->target == c->self)) {
            jobs[nj++] = (struct job){.c = c, .kind = JOB_CLAIM, .a = *a};
        }
    }
    run_jobs(jobs, nj);
    free(jobs);
    free(as);
}

/* Tells the group coordinator when the set of coordinator partitions served here changed. */
static void check_coordination(struct stratus_cluster *c)
{
    struct stratus_meta_topic t;
    uint64_t sig = 1469598103934665603ull;

    if (!c->groups || stratus_meta_topic(c->meta, STRATUS_CLUSTER_OFFSETS_TOPIC, &t) != 0)
        return;
    pthread_mutex_lock(&c->mu);
    for (int32_t i = 0; i < t.partitions; i++) {
        long at = held_find(c, t.streams[i]);
        uint64_t v = at >= 0 && c->held[at].state == HELD_SERVING
                         ? (uint64_t)c->held[at].claim.epoch + 1
                         : 0;
        sig = (sig ^ (v + (uint64_t)i * 0x9e3779b97f4a7c15ull)) * 1099511628211ull;
    }
    pthread_mutex_unlock(&c->mu);
    stratus_meta_topic_free(&t);
    if (sig != c->coord_sig) {
        c->coord_sig = sig;
        stratus_group_coordination_changed(c->groups);
    }
}

static void rejoin(struct stratus_cluster *c)
{
    struct stratus_errbuf eb = {{0}};
    fence_all(c);
    check_coordination(c);
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            return;
        if (stratus_meta_register(c->meta, on_lease_lost, c, &eb) == 0)
            break;
        LOG_WARN("cluster", "re-registering node %d: %s", c->self, eb.msg);
        struct timespec ts = {0, 500 * 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&c->mu);
    c->lease_lost = 0;
    pthread_mutex_unlock(&c->mu);
    LOG_INFO("cluster", "node %d rejoined the cluster", c->self);
}

static void *agent_main(void *arg)
{
    struct stratus_cluster *c = arg;
    pthread_setname_np(pthread_self(), "cluster-agent"); /* top -H, perf, gdb */

    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        int lost;
        if (!c->dirty) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1; /* a periodic pass catches anything a notification missed */
            pthread_cond_timedwait(&c->cond, &c->mu, &ts);
            if (c->stop)
                break;
        }
        c->dirty = 0;
        lost = c->lease_lost;
        pthread_mutex_unlock(&c->mu);
        if (lost)
            rejoin(c);
        sync_catalog(c);
        reconcile_ownership(c);
        check_coordination(c);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- lifecycle ---- */

int stratus_node_open(const struct stratus_node_conf *conf, struct stratus_storage *st,
                      struct stratus_cluster **out, struct stratus_errbuf *eb)
{
    struct stratus_cluster *c = xcalloc(1, sizeof *c);
    int rc;

    metrics_init();
    c->conf = *conf;
    c->st = st;
    c->self = conf->meta.node_id;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);
    rc = stratus_meta_open(&conf->meta, &c->meta, eb);
    if (rc)
        goto fail;
    /* After a crash the previous process's lease lives until its TTL runs out: wait for it
     * (a restart under a supervisor should simply work), but not for ever. */
    for (int64_t until = stratus_mono_ms() + 2 * 1000 * conf->meta.session_ttl_s + 3000;;) {
        rc = stratus_meta_register(c->meta, on_lease_lost, c, eb);
        if (rc != STRATUS_EEXIST || stratus_mono_ms() > until)
            break;
        LOG_INFO("cluster", "node %d: %s; waiting for that lease to expire", c->self, eb->msg);
        struct timespec ts = {0, 500 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (rc)
        goto fail;
    /* a drain is a request about a running process: a restarted broker takes work again */
    {
        struct stratus_errbuf eb2 = {{0}};
        if (stratus_meta_set_drain(c->meta, c->self, 0, &eb2) != 0)
            LOG_WARN("cluster", "clearing drain/%d: %s", c->self, eb2.msg);
    }
    snprintf(c->wal_prefix, sizeof c->wal_prefix, "wal/%d/%016" PRIx64 "/", c->self,
             stratus_meta_incarnation(c->meta));
    c->ops = (struct stratus_stream_cluster_ops){.arg = c, .alloc_ids = op_alloc_ids,
                                                 .prepare_object = op_prepare,
                                                 .commit_object = op_commit, .lost = op_lost,
                                                 .trim = op_trim};
    c->gops = (struct stratus_group_cluster_ops){.arg = c, .coordinates = g_coordinates,
                                                 .load = g_load, .store = g_store};
    LOG_INFO("cluster", "node %d registered (incarnation %016" PRIx64 ", etcd %s)", c->self,
             stratus_meta_incarnation(c->meta), conf->meta.etcd.endpoints);
    *out = c;
    return 0;
fail:
    if (c->meta)
        stratus_meta_close(c->meta);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    free(c);
    return rc;
}

int stratus_node_cluster_id(struct stratus_cluster *c, char *id, size_t cap,
                            struct stratus_errbuf *eb)
{
    static const char key[] = "cluster_id";
    struct stratus_etcd_cmp cmp = {.key = key, .key_len = sizeof key - 1,
                                   .target = STRATUS_ETCD_CMP_CREATE,
                                   .result = STRATUS_ETCD_EQUAL, .number = 0};
    struct stratus_etcd_op put = {.type = STRATUS_ETCD_OP_PUT, .key = key,
                                  .key_len = sizeof key - 1, .value = id,
                                  .value_len = strlen(id)};
    struct stratus_etcd_op get = {.type = STRATUS_ETCD_OP_RANGE, .key = key,
                                  .key_len = sizeof key - 1};
    struct stratus_etcd_txn_result res = {0};
    int rc = stratus_etcd_txn(stratus_meta_etcd(c->meta), &cmp, 1, &put, 1, &get, 1, &res, eb);

    if (rc == 0 && !res.succeeded && res.n_responses == 1 && res.responses[0].n_kvs == 1) {
        const struct stratus_etcd_kv *kv = &res.responses[0].kvs[0];
        if (kv->value_len == 0 || kv->value_len >= cap)
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "etcd cluster_id is not a cluster id");
        else
            snprintf(id, cap, "%.*s", (int)kv->value_len, kv->value);
    }
    stratus_etcd_txn_result_free(&res);
    return rc;
}

const struct stratus_stream_cluster_ops *stratus_node_stream_ops(struct stratus_cluster *c)
{
    return &c->ops;
}

const char *stratus_node_wal_prefix(struct stratus_cluster *c)
{
    return c->wal_prefix;
}

/* Scrape-time gauges: partitions served here, controller, live brokers. */
static void collect(void *arg, struct stratus_metrics_sink *sink)
{
    struct stratus_cluster *c = arg;
    struct stratus_meta_broker *b = NULL;
    size_t nb = 0, nheld;
    int leader;

    pthread_mutex_lock(&c->mu);
    nheld = c->nheld;
    leader = c->ctl && stratus_controller_is_leader(c->ctl);
    pthread_mutex_unlock(&c->mu);
    if (stratus_meta_brokers(c->meta, &b, &nb) != 0)
        nb = 0;
    free(b);
    stratus_metrics_emit(sink, STRATUS_METRIC_GAUGE, "stratus_cluster_partitions_owned",
                         "stratus_cluster_partitions_owned",
                         "Partitions this broker has claimed", (double)nheld);
    stratus_metrics_emit(sink, STRATUS_METRIC_GAUGE, "stratus_cluster_is_controller",
                         "stratus_cluster_is_controller", "1 while this broker is the controller",
                         leader ? 1 : 0);
    stratus_metrics_emit(sink, STRATUS_METRIC_GAUGE, "stratus_cluster_live_brokers",
                         "stratus_cluster_live_brokers", "Brokers registered in etcd",
                         (double)nb);
}

/* A local WAL replayed at start fills the caches of every partition it held; the ones this
 * broker is not going to claim (assigned elsewhere meanwhile) are dropped, so that their data
 * does not hold WAL trims back forever. Their new owners have what was committed. */
static void drop_foreign_tails(struct stratus_cluster *c)
{
    struct stratus_meta_assign *as = NULL;
    size_t n = 0;

    if (c->conf.object_wal || stratus_meta_assignments(c->meta, &as, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (as[i].owner == c->self)
            continue;
        struct stratus_partition *p = stratus_stream_partition(c->s, as[i].topic, as[i].partition);
        if (p) {
            if (stratus_partition_role(p) == STRATUS_ROLE_NONE)
                stratus_partition_fence(p);
            stratus_partition_release(p);
        }
    }
    free(as);
}

int stratus_node_attach(struct stratus_cluster *c, struct stratus_stream *s,
                        struct stratus_group_coord *groups, struct stratus_errbuf *eb)
{
    struct stratus_controller *ctl = NULL;
    int rc;

    c->s = s;
    c->groups = groups;
    if (groups)
        stratus_group_set_cluster(groups, &c->gops);
    rc = stratus_meta_start_watch(c->meta, on_change, c, eb);
    if (rc)
        return rc;
    sync_catalog(c); /* before the network starts: Metadata knows every topic at once */
    drop_foreign_tails(c);
    rc = stratus_controller_start(c->meta, c->st, c->conf.prepared_ttl_ms, &ctl, eb);
    if (rc)
        return rc;
    pthread_mutex_lock(&c->mu);
    c->ctl = ctl;
    pthread_mutex_unlock(&c->mu);
    if (pthread_create(&c->thread, NULL, agent_main, c) != 0)
        return stratus_errf(eb, STRATUS_ENOMEM, "cannot start the cluster agent thread");
    c->started = 1;
    stratus_metrics_add_collector(collect, c);
    wake(c);
    return 0;
}

/* Partitions whose ownership record still names this broker (owned, or released and not yet
 * claimed by the broker they were handed to). */
static size_t named_here(struct stratus_cluster *c)
{
    struct stratus_meta_assign *as = NULL;
    size_t n = 0, here = 0;

    if (stratus_meta_assignments(c->meta, &as, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        struct stratus_meta_part part;
        if (stratus_meta_part(c->meta, as[i].stream, &part) == 0 && part.owner == c->self)
            here++;
    }
    free(as);
    return here;
}

void stratus_node_drain(struct stratus_cluster *c, int64_t timeout_ms)
{
    struct stratus_errbuf eb = {{0}};
    int64_t t0 = stratus_mono_ms(), until = t0 + timeout_ms, left;
    size_t here, held;

    if (!c->started)
        return;
    pthread_mutex_lock(&c->mu);
    held = c->nheld;
    pthread_mutex_unlock(&c->mu);
    if (stratus_cluster_drain(c, 0, timeout_ms, &eb) != 0) {
        LOG_WARN("cluster", "drain before stop: %s", eb.msg);
        return;
    }
    if (held == 0 && named_here(c) == 0)
        return;
    /* As Kafka's controlled shutdown: the connections stay open until the new owners serve.
     * The drain returns once the engine let go of every partition, before the hand-over txns
     * (assign/ -> target) commit; a client whose Metadata refresh was answered meanwhile still
     * names this broker, and when the socket closes librdkafka refreshes once (on the first
     * disconnect) and then only reconnects here, for minutes. So: wait until every ownership
     * record naming this broker names its new owner, then linger, answering
     * NOT_LEADER_OR_FOLLOWER and Metadata from the updated copy. */
    while ((here = named_here(c)) > 0 && stratus_mono_ms() < until) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    left = until - stratus_mono_ms();
    if (left > 0) {
        int64_t linger = left < NODE_STOP_LINGER_MS ? left : NODE_STOP_LINGER_MS;
        struct timespec ts = {linger / 1000, (linger % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    LOG_INFO("cluster", "drained before stop in %lld ms%s", (long long)(stratus_mono_ms() - t0),
             here ? " (some new owners had not claimed yet)" : "");
}

void stratus_node_stop(struct stratus_cluster *c)
{
    if (!c || c->stopped)
        return;
    c->stopped = 1;
    if (c->started)
        stratus_metrics_remove_collector(collect, c);
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
    if (c->started)
        pthread_join(c->thread, NULL);
    pthread_mutex_lock(&c->mu); /* detached first: the watch thread may be notifying it */
    struct stratus_controller *ctl = c->ctl;
    c->ctl = NULL;
    pthread_mutex_unlock(&c->mu);
    stratus_controller_stop(ctl);
}

void stratus_node_close(struct stratus_cluster *c)
{
    struct stratus_errbuf eb = {{0}};

    if (!c)
        return;
    stratus_node_stop(c);
    if (stratus_meta_unregister(c->meta, &eb) != 0)
        LOG_WARN("cluster", "unregister: %s", eb.msg);
    stratus_meta_close(c->meta);
    pthread_mutex_lock(&c->mu);
    while (c->nheld)
        held_remove(c, c->held[0].stream);
    pthread_mutex_unlock(&c->mu);
    free(c->held);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cond);
    free(c);
}

/* ---- cluster.h: the view ---- */

int stratus_cluster_brokers(struct stratus_cluster *c, struct stratus_cluster_broker **out,
                            size_t *n)
{
    struct stratus_meta_broker *b = NULL;
    size_t nb = 0;
    int rc = stratus_meta_brokers(c->meta, &b, &nb);

    *out = NULL;
    *n = 0;
    if (rc)
        return rc;
    *out = xcalloc(nb ? nb : 1, sizeof **out);
    for (size_t i = 0; i < nb; i++) {
        (*out)[i].id = b[i].id;
        snprintf((*out)[i].host, sizeof (*out)[i].host, "%s", b[i].host);
        (*out)[i].port = b[i].port;
        snprintf((*out)[i].rack, sizeof (*out)[i].rack, "%s", b[i].rack);
    }
    *n = nb;
    free(b);
    return 0;
}

int32_t stratus_cluster_controller(struct stratus_cluster *c)
{
    return stratus_meta_controller(c->meta);
}

int32_t stratus_cluster_self(struct stratus_cluster *c)
{
    return c->self;
}

int stratus_cluster_owner(struct stratus_cluster *c, const char *topic, int32_t partition,
                          int32_t *owner, int32_t *epoch)
{
    struct stratus_meta_assign a;
    struct stratus_meta_part part;
    int rc = stratus_meta_assignment(c->meta, topic, partition, &a);

    if (rc)
        return rc;
    *owner = a.owner >= 0 && stratus_meta_broker_live(c->meta, a.owner, NULL) ? a.owner : -1;
    /* Not while this broker's own session is unconfirmed (paused past its lease, etcd out of
     * reach): its copy of the metastore may be stale and another broker may have taken the
     * partition over. Naming itself then sends clients back to a broker that answers
     * NOT_LEADER_OR_FOLLOWER, and librdkafka 2.0 kept a partition there after such a
     * Metadata answer (the fence test: records that never got a delivery report). */
    if (*owner >= 0 && *owner == c->self &&
        (stratus_node_ack_deadline(c) <= stratus_mono_ms() || !stratus_meta_copy_current(c->meta)))
        *owner = -1;
    *epoch = 0;
    if (stratus_meta_part(c->meta, a.stream, &part) == 0) {
        /* the epoch the owner serves at: its claim's, or the next one while it claims */
        *epoch = part.owner == a.owner && !part.released ? part.epoch : part.epoch + 1;
    }
    return 0;
}

/* Waits until the local catalog satisfies done(c, name, arg), at most NODE_WAIT_MS. */
static int wait_catalog(struct stratus_cluster *c, const char *name,
                        int (*done)(struct stratus_cluster *, const char *, int32_t),
                        int32_t arg)
{
    int64_t until = stratus_mono_ms() + NODE_WAIT_MS;
    while (!done(c, name, arg)) {
        if (stratus_mono_ms() > until)
            return 0;
        wake(c);
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 1;
}

static int has_topic(struct stratus_cluster *c, const char *name, int32_t parts)
{
    struct stratus_topic_info t;
    return stratus_stream_find_topic(c->s, name, &t) == 0 && t.partitions >= parts;
}

static int no_topic(struct stratus_cluster *c, const char *name, int32_t unused)
{
    struct stratus_topic_info t;
    (void)unused;
    return stratus_stream_find_topic(c->s, name, &t) != 0;
}

static void random_uuid(uint8_t id[16])
{
    if (getrandom(id, 16, 0) != 16) {
        uint64_t a = (uint64_t)stratus_mono_us() * 0x9e3779b97f4a7c15ull;
        uint64_t b = (uint64_t)stratus_wall_ms() * 0xbf58476d1ce4e5b9ull;
        memcpy(id, &a, 8);
        memcpy(id + 8, &b, 8);
    }
    id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
    id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

int16_t stratus_cluster_create_topic(struct stratus_cluster *c, const char *name,
                                     int32_t partitions, const struct stratus_kv *configs,
                                     size_t nconfigs, int validate_only, uint8_t id_out[16],
                                     char *msg, size_t msgcap)
{
    struct stratus_meta_topic t;
    struct stratus_errbuf eb = {{0}};
    int16_t kerr;
    uint64_t first;
    int rc;

    kerr = stratus_stream_validate_topic(name, partitions, configs, nconfigs, msg, msgcap);
    if (kerr != KAFKA_ERR_NONE)
        return kerr;
    if (stratus_meta_topic(c->meta, name, &t) == 0) {
        stratus_meta_topic_free(&t);
        snprintf(msg, msgcap, "Topic '%s' already exists.", name);
        return KAFKA_ERR_TOPIC_ALREADY_EXISTS;
    }
    if (validate_only)
        return KAFKA_ERR_NONE;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    random_uuid(t.id);
    t.partitions = partitions;
    rc = stratus_meta_alloc_ids(c->meta, "stream", (uint64_t)partitions, &first, &eb);
    if (rc) {
        snprintf(msg, msgcap, "allocating stream ids: %s", eb.msg);
        return KAFKA_ERR_REQUEST_TIMED_OUT;
    }
    t.streams = xcalloc((size_t)partitions, sizeof *t.streams);
    for (int32_t i = 0; i < partitions; i++)
        t.streams[i] = first + (uint64_t)i;
    t.ncfg = nconfigs;
    t.cfg_names = xcalloc(nconfigs ? nconfigs : 1, sizeof *t.cfg_names);
    t.cfg_values = xcalloc(nconfigs ? nconfigs : 1, sizeof *t.cfg_values);
    for (size_t i = 0; i < nconfigs; i++) {
        t.cfg_names[i] = xstrdup(configs[i].name);
        t.cfg_values[i] = xstrdup(configs[i].value ? configs[i].value : "");
    }
    rc = stratus_meta_create_topic(c->meta, &t, &eb);
    if (id_out)
        memcpy(id_out, t.id, 16);
    stratus_meta_topic_free(&t);
    if (rc == STRATUS_EEXIST) {
        snprintf(msg, msgcap, "Topic '%s' already exists.", name);
        return KAFKA_ERR_TOPIC_ALREADY_EXISTS;
    }
    if (rc) {
        snprintf(msg, msgcap, "metastore: %s", eb.msg);
        return KAFKA_ERR_REQUEST_TIMED_OUT;
    }
    wait_catalog(c, name, has_topic, partitions);
    return KAFKA_ERR_NONE;
}

int16_t stratus_cluster_delete_topic(struct stratus_cluster *c, const char *name, char *msg,
                                     size_t msgcap)
{
    struct stratus_errbuf eb = {{0}};
    int rc;

    if (strcmp(name, STRATUS_CLUSTER_OFFSETS_TOPIC) == 0) {
        snprintf(msg, msgcap, "%s is internal", name);
        return KAFKA_ERR_INVALID_REQUEST;
    }
    rc = stratus_meta_delete_topic(c->meta, name, &eb);
    if (rc == STRATUS_ENOTFOUND) {
        snprintf(msg, msgcap, "This server does not host this topic-partition.");
        return KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (rc) {
        snprintf(msg, msgcap, "metastore: %s", eb.msg);
        return KAFKA_ERR_REQUEST_TIMED_OUT;
    }
    wait_catalog(c, name, no_topic, 0);
    return KAFKA_ERR_NONE;
}

int16_t stratus_cluster_create_partitions(struct stratus_cluster *c, const char *name,
                                          int32_t new_total, int validate_only, char *msg,
                                          size_t msgcap)
{
    struct stratus_errbuf eb = {{0}};

    for (int attempt = 0; attempt < 5; attempt++) {
        struct stratus_meta_topic t;
        uint64_t first;
        int rc;
        if (stratus_meta_topic(c->meta, name, &t) != 0) {
            snprintf(msg, msgcap, "Topic '%s' does not exist.", name);
            return KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        }
        if (new_total <= t.partitions) {
            snprintf(msg, msgcap, "Topic currently has %d partitions, which is higher than the "
                     "requested %d.", t.partitions, new_total);
            stratus_meta_topic_free(&t);
            return KAFKA_ERR_INVALID_PARTITIONS;
        }
        if (validate_only) {
            stratus_meta_topic_free(&t);
            return KAFKA_ERR_NONE;
        }
        rc = stratus_meta_alloc_ids(c->meta, "stream", (uint64_t)(new_total - t.partitions),
                                    &first, &eb);
        if (rc) {
            stratus_meta_topic_free(&t);
            snprintf(msg, msgcap, "allocating stream ids: %s", eb.msg);
            return KAFKA_ERR_REQUEST_TIMED_OUT;
        }
        t.streams = xrealloc(t.streams, (size_t)new_total * sizeof *t.streams);
        for (int32_t i = t.partitions; i < new_total; i++)
            t.streams[i] = first + (uint64_t)(i - t.partitions);
        t.partitions = new_total;
        rc = stratus_meta_update_topic(c->meta, &t, &eb);
        stratus_meta_topic_free(&t);
        if (rc == STRATUS_EEXIST)
            continue; /* changed meanwhile: read again */
        if (rc) {
            snprintf(msg, msgcap, "metastore: %s", eb.msg);
            return KAFKA_ERR_REQUEST_TIMED_OUT;
        }
        wait_catalog(c, name, has_topic, new_total);
        return KAFKA_ERR_NONE;
    }
    snprintf(msg, msgcap, "topic %s kept changing; try again", name);
    return KAFKA_ERR_REQUEST_TIMED_OUT;
}

int16_t stratus_cluster_alter_topic_configs(struct stratus_cluster *c, const char *name,
                                            const struct stratus_kv *configs, size_t n,
                                            int incremental, int validate_only, char *msg,
                                            size_t msgcap)
{
    struct stratus_errbuf eb = {{0}};

    for (int attempt = 0; attempt < 5; attempt++) {
        struct stratus_meta_topic t;
        char **names, **values;
        size_t nn = 0, cap;
        int16_t kerr;
        int rc;
        if (stratus_meta_topic(c->meta, name, &t) != 0) {
            snprintf(msg, msgcap, "Topic '%s' does not exist.", name);
            return KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        }
        cap = t.ncfg + n + 1;
        names = xcalloc(cap, sizeof *names);
        values = xcalloc(cap, sizeof *values);
        if (incremental)
            for (size_t i = 0; i < t.ncfg; i++) {
                names[nn] = xstrdup(t.cfg_names[i]);
                values[nn++] = xstrdup(t.cfg_values[i]);
            }
        for (size_t i = 0; i < n; i++) {
            size_t j;
            for (j = 0; j < nn && strcmp(names[j], configs[i].name) != 0; j++)
                ;
            if (j < nn) { /* replace or remove */
                free(names[j]);
                free(values[j]);
                names[j] = names[nn - 1];
                values[j] = values[nn - 1];
                nn--;
            }
            if (configs[i].value) {
                names[nn] = xstrdup(configs[i].name);
                values[nn++] = xstrdup(configs[i].value);
            }
        }
        {
            struct stratus_kv *kv = xcalloc(nn ? nn : 1, sizeof *kv);
            for (size_t i = 0; i < nn; i++)
                kv[i] = (struct stratus_kv){names[i], values[i]};
            kerr = stratus_stream_validate_topic(name, t.partitions, kv, nn, msg, msgcap);
            free(kv);
        }
        for (size_t i = 0; i < t.ncfg; i++) {
            free(t.cfg_names[i]);
            free(t.cfg_values[i]);
        }
        free(t.cfg_names);
        free(t.cfg_values);
        t.cfg_names = names;
        t.cfg_values = values;
        t.ncfg = nn;
        if (kerr != KAFKA_ERR_NONE || validate_only) {
            stratus_meta_topic_free(&t);
            return kerr;
        }
        rc = stratus_meta_update_topic(c->meta, &t, &eb);
        stratus_meta_topic_free(&t);
        if (rc == STRATUS_EEXIST)
            continue;
        if (rc) {
            snprintf(msg, msgcap, "metastore: %s", eb.msg);
            return KAFKA_ERR_REQUEST_TIMED_OUT;
        }
        wake(c);
        return KAFKA_ERR_NONE;
    }
    snprintf(msg, msgcap, "topic %s kept changing; try again", name);
    return KAFKA_ERR_REQUEST_TIMED_OUT;
}

int16_t stratus_cluster_reassign(struct stratus_cluster *c, const char *topic, int32_t partition,
                                 int32_t target, char *msg, size_t msgcap)
{
    struct stratus_meta_assign a;
    struct stratus_errbuf eb = {{0}};
    int rc;

    if (stratus_meta_assignment(c->meta, topic, partition, &a) != 0) {
        snprintf(msg, msgcap, "unknown topic-partition %s-%d", topic, partition);
        return KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (target >= 0 && !stratus_meta_broker_live(c->meta, target, NULL)) {
        snprintf(msg, msgcap, "broker %d is not a live broker", target);
        return KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT;
    }
    if (target < 0) {
        rc = stratus_meta_delete_request(c->meta, topic, partition, &eb);
        if (rc == STRATUS_ENOTFOUND) {
            snprintf(msg, msgcap, "no reassignment in progress for %s-%d", topic, partition);
            return KAFKA_ERR_NO_REASSIGNMENT_IN_PROGRESS;
        }
    } else {
        rc = stratus_meta_request_move(c->meta, topic, partition, target, &eb);
    }
    if (rc) {
        snprintf(msg, msgcap, "metastore: %s", eb.msg);
        return KAFKA_ERR_REQUEST_TIMED_OUT;
    }
    return KAFKA_ERR_NONE;
}

int stratus_cluster_moves(struct stratus_cluster *c, struct stratus_cluster_move **out,
                          size_t *n)
{
    struct stratus_meta_assign *as = NULL, *rq = NULL;
    size_t na = 0, nr = 0, k = 0;
    int rc;

    *out = NULL;
    *n = 0;
    rc = stratus_meta_assignments(c->meta, &as, &na);
    if (rc)
        return rc;
    if (stratus_meta_reassign_requests(c->meta, &rq, &nr) != 0)
        nr = 0;
    *out = xcalloc(na + nr + 1, sizeof **out);
    for (size_t i = 0; i < na; i++)
        if (as[i].target >= 0 && as[i].target != as[i].owner) {
            snprintf((*out)[k].topic, sizeof (*out)[k].topic, "%s", as[i].topic);
            (*out)[k].partition = as[i].partition;
            (*out)[k].owner = as[i].owner;
            (*out)[k++].target = as[i].target;
        }
    for (size_t i = 0; i < nr; i++) {
        struct stratus_meta_assign a;
        int32_t owner = -1;
        if (stratus_meta_assignment(c->meta, rq[i].topic, rq[i].partition, &a) == 0)
            owner = a.owner;
        snprintf((*out)[k].topic, sizeof (*out)[k].topic, "%s", rq[i].topic);
        (*out)[k].partition = rq[i].partition;
        (*out)[k].owner = owner;
        (*out)[k++].target = rq[i].target;
    }
    *n = k;
    free(as);
    free(rq);
    return 0;
}

int stratus_cluster_drain(struct stratus_cluster *c, int undo, int64_t timeout_ms,
                          struct stratus_errbuf *eb)
{
    int64_t until = stratus_mono_ms() + timeout_ms;
    int rc = stratus_meta_set_drain(c->meta, c->self, !undo, eb);

    if (rc || undo || timeout_ms <= 0)
        return rc;
    for (;;) {
        size_t nheld;
        struct stratus_cluster_broker *b = NULL;
        size_t nb = 0;
        pthread_mutex_lock(&c->mu);
        nheld = c->nheld;
        pthread_mutex_unlock(&c->mu);
        if (nheld == 0)
            return 0;
        /* nobody to move to (alone, or every other broker drains too, as when a whole cluster
         * stops): stop with the data in the WAL rather than wait for the timeout */
        if (stratus_cluster_brokers(c, &b, &nb) == 0) {
            size_t takers = 0;
            for (size_t i = 0; i < nb; i++)
                takers += b[i].id != c->self && !stratus_meta_draining(c->meta, b[i].id);
            free(b);
            if (takers == 0)
                return stratus_errf(eb, STRATUS_EAGAIN, "no other live broker to drain to");
        }
        if (stratus_mono_ms() > until)
            return stratus_errf(eb, STRATUS_EAGAIN, "%zu partitions still here after %lld ms",
                                nheld, (long long)timeout_ms);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int32_t stratus_cluster_group_coordinator(struct stratus_cluster *c, const char *group)
{
    int32_t owner, epoch;
    int32_t p = stratus_group_partition_for(group, STRATUS_CLUSTER_OFFSETS_PARTITIONS);

    if (stratus_cluster_owner(c, STRATUS_CLUSTER_OFFSETS_TOPIC, p, &owner, &epoch) != 0)
        return -1;
    return owner;
}
