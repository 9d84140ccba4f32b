/* link: stratus_group stratus_stream */
/* test_group_cluster.c - the group coordinator in cluster mode (stratus_group_set_cluster),
 * driven with decoded request structs as core/api/groups.c does, against a TEST DOUBLE of the
 * node agent's etcd side (struct etcd_double below, no etcd involved): a table of per-group
 * offsets blobs, which broker owns each group's coordinator partition, and a store fenced on
 * that ownership (STRATUS_EEXIST for a broker that does not own the group), as the agent's
 * store is fenced on the partition's `parts` value. Two coordinator instances ("brokers" 1 and
 * 2) share one double and one engine.
 *
 * Shows: commit + fetch round trip with one stored blob per group per commit batch (and
 * nothing in the RocksDB index); a second coordinator loading the offsets after coordination
 * moves; NOT_COORDINATOR on JoinGroup, Heartbeat, OffsetCommit, OffsetFetch (v1 per partition,
 * v5 top level, v8 per group) and DeleteGroups for a group coordinated elsewhere; a fenced
 * store answering the commit NOT_COORDINATOR and dropping the group; a failed store answering
 * COORDINATOR_NOT_AVAILABLE and the offsets reloaded afterwards; coordination_changed dropping
 * a group (a parked JoinGroup and a commit not yet stored answered NOT_COORDINATOR);
 * DeleteGroups and retention deleting the blob; stratus_group_partition_for against Java's
 * String.hashCode.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "group/group.h"
#include "group/group_int.h"
#include "proto/kerr.h"
#include "proto/proto_gen.h"
#include "stream/stream.h"
#include "stream_fixture.h"
#include "group_fixture.h"
#include "test.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- partition_for ---- */

static void test_partition_for(void)
{
    /* Java: h = s[0]*31^(n-1) + ... + s[n-1] over UTF-16 code units, in 32-bit wrapping int
     * arithmetic; Kafka: Utils.abs(h) % n with abs(Integer.MIN_VALUE) = 0.
     *
     * "" -> 0 -> 0.
     * "group" (g=103 r=114 o=111 u=117 p=112):
     *   103; 103*31+114 = 3307; 3307*31+111 = 102628; 102628*31+117 = 3181585;
     *   3181585*31+112 = 98629247 (no wrap). 98629247 % 16 = 15 (16*6164327 = 98629232);
     *   98629247 % 50 = 47.
     * "orders-consumer": the running value wraps; the steps (as signed 32-bit after each
     *   h = h*31 + c) are 111, 3555 (111*31+114), 110305 (3555*31+100), 3419556, 106006350,
     *   -1008770331 (106006350*31+115 = 3286196965, minus 2^32), -1207109144, 1234322299,
     *   -390714284, 772759194, -1814268647, -407753092, 244556145, -1008693996, -1204742690.
     *   abs = 1204742690; % 16 = 2 (16*75296418 = 1204742688).
     * "polygenelubricants" hashes to exactly Integer.MIN_VALUE (-2147483648): abs gives 0 -> 0
     *   (the well-known example; a plain abs() would overflow).
     * "\u00e9" (UTF-8 c3 a9, one UTF-16 unit 0xE9 = 233): 233 % 16 = 9 (bytes would differ).
     * U+1F600 (UTF-8 f0 9f 98 80; UTF-16 d83d de00): 55357*31 + 56832 = 1772899; % 16 = 3. */
    CHECK_EQ(stratus_group_partition_for("", 16), 0);
    CHECK_EQ(stratus_group_partition_for("group", 16), 15);
    CHECK_EQ(stratus_group_partition_for("group", 50), 47);
    CHECK_EQ(stratus_group_partition_for("orders-consumer", 16), 2);
    CHECK_EQ(stratus_group_partition_for("polygenelubricants", 16), 0);
    CHECK_EQ(stratus_group_partition_for("\xc3\xa9", 16), 9);
    CHECK_EQ(stratus_group_partition_for("\xf0\x9f\x98\x80", 16), 3);
    CHECK_EQ(stratus_group_partition_for("group", 0), 0);
}

/* ---- the blob codec ---- */

static void test_blob(void)
{
    struct stratus_offsets o = {0}, back = {0};
    uint8_t *b = NULL;
    size_t len = 0;

    stratus_offsets_set(&o, "t", 1, 11, 3, "m1", 2, 1000);
    stratus_offsets_set(&o, "t", 0, 10, -1, "", 0, 2000);
    stratus_offsets_set(&o, "u", 7, 70, 5, "meta", 4, 3000);
    stratus_offsets_blob_encode(&o, &b, &len);
    CHECK_EQ(stratus_offsets_blob_decode(b, len, &back), 0);
    CHECK_EQ(back.n, 3);
    for (size_t i = 0; i < back.n && i < o.n; i++) {
        CHECK_STR(back.v[i].topic, o.v[i].topic);
        CHECK_EQ(back.v[i].partition, o.v[i].partition);
        CHECK_EQ(back.v[i].offset, o.v[i].offset);
        CHECK_EQ(back.v[i].leader_epoch, o.v[i].leader_epoch);
        CHECK_STR(back.v[i].meta, o.v[i].meta);
        CHECK_EQ(back.v[i].commit_ms, o.v[i].commit_ms);
    }
    stratus_offsets_free(&back);
    /* truncated, trailing garbage, a lying count, a wrong format byte: all refused */
    CHECK_EQ(stratus_offsets_blob_decode(b, len - 1, &back), STRATUS_ECORRUPT);
    CHECK_EQ(back.n, 0);
    uint8_t *big = malloc(len + 1);
    memcpy(big, b, len);
    big[len] = 0;
    CHECK_EQ(stratus_offsets_blob_decode(big, len + 1, &back), STRATUS_ECORRUPT);
    big[4] = 4; /* count 4 */
    CHECK_EQ(stratus_offsets_blob_decode(big, len, &back), STRATUS_ECORRUPT);
    big[4] = 3;
    big[0] = 2;
    CHECK_EQ(stratus_offsets_blob_decode(big, len, &back), STRATUS_ECORRUPT);
    free(big);
    free(b);
    stratus_offsets_free(&o);
    /* an empty table is a 5-byte blob */
    stratus_offsets_blob_encode(&o, &b, &len);
    CHECK_EQ(len, 5);
    CHECK_EQ(stratus_offsets_blob_decode(b, len, &back), 0);
    CHECK_EQ(back.n, 0);
    free(b);
}

/* ---- the etcd test double ---- */

#define D_MAX 32

struct etcd_double {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct {
        char group[64];
        uint8_t *val; /* NULL: deleted */
        size_t len;
        int stores;   /* successful stores (puts and deletes) of this group */
        int attempts; /* store calls, fenced or failed ones included */
    } blobs[D_MAX];
    int nblobs;
    struct {
        char group[64];
        int broker;
    } owners[D_MAX];
    int nowners;
    int default_owner; /* the broker owning groups not in owners[] */
    char gate[64];     /* a store of this group waits while gate_closed */
    int gate_closed, in_gate;
    char flip[64]; /* coordinates(flip) says yes once, then the group moves to broker 2 */
    int fail_next; /* the next store fails with STRATUS_EIO */
    int loads;
};

/* One broker's view through the double. */
struct broker {
    struct etcd_double *d;
    int id;
    int believes_all; /* coordinates() says yes for every group: a local view lagging etcd */
};

static struct etcd_double g_d = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static int d_blob(struct etcd_double *d, const char *group, int add)
{
    for (int i = 0; i < d->nblobs; i++)
        if (strcmp(d->blobs[i].group, group) == 0)
            return i;
    if (!add || d->nblobs == D_MAX)
        return -1;
    snprintf(d->blobs[d->nblobs].group, sizeof d->blobs[0].group, "%s", group);
    return d->nblobs++;
}

static int d_owner(struct etcd_double *d, const char *group)
{
    for (int i = 0; i < d->nowners; i++)
        if (strcmp(d->owners[i].group, group) == 0)
            return d->owners[i].broker;
    return d->default_owner;
}

/* Moves group's coordinator to broker (caller holds mu). */
static void d_set_owner_locked(struct etcd_double *d, const char *group, int broker)
{
    for (int i = 0; i < d->nowners; i++)
        if (strcmp(d->owners[i].group, group) == 0) {
            d->owners[i].broker = broker;
            return;
        }
    if (d->nowners < D_MAX) {
        snprintf(d->owners[d->nowners].group, sizeof d->owners[0].group, "%s", group);
        d->owners[d->nowners++].broker = broker;
    }
}

static void d_set_owner(struct etcd_double *d, const char *group, int broker)
{
    pthread_mutex_lock(&d->mu);
    d_set_owner_locked(d, group, broker);
    pthread_mutex_unlock(&d->mu);
}

static int d_coordinates(void *arg, const char *group)
{
    struct broker *b = arg;
    struct etcd_double *d = b->d;
    pthread_mutex_lock(&d->mu);
    int yes = b->believes_all || d_owner(d, group) == b->id;
    if (yes && d->flip[0] && strcmp(group, d->flip) == 0) {
        d->flip[0] = 0;
        d_set_owner_locked(d, group, 2);
    }
    pthread_mutex_unlock(&d->mu);
    return yes;
}

static int
d_load(void *arg, const char *group, uint8_t **val, size_t *len, struct stratus_errbuf *eb)
{
    struct broker *b = arg;
    struct etcd_double *d = b->d;
    int rc = 0;
    pthread_mutex_lock(&d->mu);
    d->loads++;
    int i = d_blob(d, group, 0);
    if (i < 0 || !d->blobs[i].val) {
        rc = stratus_errf(eb, STRATUS_ENOTFOUND, "groups/%s: none", group);
    } else {
        *val = malloc(d->blobs[i].len);
        memcpy(*val, d->blobs[i].val, d->blobs[i].len);
        *len = d->blobs[i].len;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int
d_store(void *arg, const char *group, const uint8_t *val, size_t len, struct stratus_errbuf *eb)
{
    struct broker *b = arg;
    struct etcd_double *d = b->d;
    int rc = 0;
    pthread_mutex_lock(&d->mu);
    if (d->gate[0] && strcmp(group, d->gate) == 0) {
        d->in_gate = 1;
        pthread_cond_broadcast(&d->cv);
        while (d->gate_closed)
            pthread_cond_wait(&d->cv, &d->mu);
        d->in_gate = 0;
    }
    int a = d_blob(d, group, 1);
    if (a >= 0)
        d->blobs[a].attempts++;
    if (d_owner(d, group) != b->id) {
        rc = stratus_errf(eb, STRATUS_EEXIST, "groups/%s: fenced", group);
    } else if (d->fail_next) {
        d->fail_next = 0;
        rc = stratus_errf(eb, STRATUS_EIO, "groups/%s: injected failure", group);
    } else {
        int i = d_blob(d, group, 1);
        if (i < 0) {
            rc = stratus_errf(eb, STRATUS_ENOMEM, "double full");
        } else {
            free(d->blobs[i].val);
            d->blobs[i].val = NULL;
            d->blobs[i].len = 0;
            if (val) {
                d->blobs[i].val = malloc(len ? len : 1);
                memcpy(d->blobs[i].val, val, len);
                d->blobs[i].len = len;
            }
            d->blobs[i].stores++;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int d_stores(struct etcd_double *d, const char *group)
{
    pthread_mutex_lock(&d->mu);
    int i = d_blob(d, group, 0);
    int n = i < 0 ? 0 : d->blobs[i].stores;
    pthread_mutex_unlock(&d->mu);
    return n;
}

static int d_attempts(struct etcd_double *d, const char *group)
{
    pthread_mutex_lock(&d->mu);
    int i = d_blob(d, group, 0);
    int n = i < 0 ? 0 : d->blobs[i].attempts;
    pthread_mutex_unlock(&d->mu);
    return n;
}

/* The stored table of group (empty when none); 1 when a blob exists and decodes. */
static int d_offsets(struct etcd_double *d, const char *group, struct stratus_offsets *o)
{
    int ok = 0;
    memset(o, 0, sizeof *o);
    pthread_mutex_lock(&d->mu);
    int i = d_blob(d, group, 0);
    if (i >= 0 && d->blobs[i].val)
        ok = stratus_offsets_blob_decode(d->blobs[i].val, d->blobs[i].len, o) == 0;
    pthread_mutex_unlock(&d->mu);
    return ok;
}

static int64_t d_offset_of(struct etcd_double *d, const char *group, const char *topic, int32_t p)
{
    struct stratus_offsets o;
    int64_t v = -100;
    if (d_offsets(d, group, &o)) {
        long i = stratus_offsets_find(&o, topic, p);
        v = i < 0 ? -1 : o.v[i].offset;
    }
    stratus_offsets_free(&o);
    return v;
}

static int d_loads(struct etcd_double *d)
{
    pthread_mutex_lock(&d->mu);
    int n = d->loads;
    pthread_mutex_unlock(&d->mu);
    return n;
}

static void d_gate(struct etcd_double *d, const char *group, int closed)
{
    pthread_mutex_lock(&d->mu);
    snprintf(d->gate, sizeof d->gate, "%s", group);
    d->gate_closed = closed;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/* Waits until a store is held at the gate. */
static int d_wait_in_gate(struct etcd_double *d)
{
    int ok;
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < 500 && !d->in_gate; i++) {
        pthread_mutex_unlock(&d->mu);
        usleep(10000);
        pthread_mutex_lock(&d->mu);
    }
    ok = d->in_gate;
    pthread_mutex_unlock(&d->mu);
    return ok;
}

static void d_free(struct etcd_double *d)
{
    for (int i = 0; i < d->nblobs; i++)
        free(d->blobs[i].val);
}

/* ---- requests (group_fixture.h), as the scenarios below send them ---- */

/* JoinGroup with 10 s session and rebalance timeouts, not waited for. */
static struct gx_call *
join_async(struct stratus_group_coord *gc, const char *group, const char *member)
{
    return gx_join(gc, group, member, 10000, 10000);
}

/* SyncGroup assigning "A" to member alone: its error code. */
static int16_t
sync_group(struct stratus_group_coord *gc, const char *group, const char *member, int32_t gen)
{
    struct SyncGroupRequest_SyncGroupRequestAssignment a = {kstr_from(member),
                                                            {(const uint8_t *)"A", 1}};
    return gx_call_result(gx_sync(gc, group, member, gen, &a, 1));
}

/* A memberless commit (generation -1) of one partition, not waited for. */
static struct gx_call *commit_async(struct stratus_group_coord *gc,
                                    const char *group,
                                    const char *topic,
                                    int32_t partition,
                                    int64_t offset)
{
    return gx_commit_async(gc, group, -1, "", topic, partition, offset);
}

/* commit_async() waited for: its error code. */
static int16_t commit(struct stratus_group_coord *gc,
                      const char *group,
                      const char *topic,
                      int32_t partition,
                      int64_t offset)
{
    return gx_call_result(commit_async(gc, group, topic, partition, offset));
}

/* OffsetFetch v8 of two groups, all their offsets (topics null). */
static struct gx_call *fetch_v8(struct stratus_group_coord *gc, const char *g0, const char *g1)
{
    struct gx_call *c = gx_call_new(KAPI_OffsetFetch, 8);
    OffsetFetchRequest_init(&c->rq.fetch);
    OffsetFetchResponse_init(&c->rs.fetch);
    for (int i = 0; i < 2; i++) {
        OffsetFetchRequest_OffsetFetchRequestGroup_init(&c->fg[i]);
        c->fg[i].GroupId = kstr_from(i ? g1 : g0);
        c->fg[i].Topics.count = -1;
    }
    c->rq.fetch.Groups.items = c->fg;
    c->rq.fetch.Groups.count = 2;
    stratus_group_submit(gc, &c->op);
    gx_call_wait(c, 5000);
    return c;
}

static struct gx_call *delete_groups(struct stratus_group_coord *gc, const char *g0, const char *g1)
{
    struct gx_call *c = gx_call_new(KAPI_DeleteGroups, 2);
    DeleteGroupsRequest_init(&c->rq.del);
    DeleteGroupsResponse_init(&c->rs.del);
    c->names[0] = kstr_from(g0);
    c->names[1] = kstr_from(g1);
    c->rq.del.GroupsNames.items = c->names;
    c->rq.del.GroupsNames.count = 2;
    stratus_group_submit(gc, &c->op);
    gx_call_wait(c, 5000);
    return c;
}

static uint64_t ngroups(struct stratus_group_coord *gc)
{
    struct stratus_group_stats st;
    stratus_group_get_stats(gc, &st);
    return st.groups;
}

/* ---- setup ---- */

/* gx_open_coord(), in cluster mode through broker b's view of the double when b is set. */
static struct stratus_group_coord *
open_coord(struct stratus_stream *s, struct broker *b, int64_t retention_ms)
{
    struct stratus_group_coord *gc = gx_open_coord(s, retention_ms);
    if (gc && b) {
        struct stratus_group_cluster_ops ops = {b, d_coordinates, d_load, d_store};
        stratus_group_set_cluster(gc, &ops); /* the table is copied */
    }
    return gc;
}

/* ---- the scenarios ---- */

static void test_cluster(struct stratus_stream *s)
{
    struct etcd_double *d = &g_d;
    struct broker b1 = {d, 1, 0}, b2 = {d, 2, 0};
    char msg[160];

    CHECK_EQ(stratus_stream_create_topic(s, "t", 2, NULL, 0, 0, NULL, msg, sizeof msg), 0);
    /* A single-node coordinator first: its offsets go to the index, and the cluster-mode
     * coordinators below must not serve them. */
    struct stratus_group_coord *solo = open_coord(s, NULL, 0);
    CHECK(solo != NULL);
    if (solo) {
        CHECK_EQ(commit(solo, "X", "t", 0, 999), 0);
        stratus_group_close(solo);
    }

    d->default_owner = 1;
    struct stratus_group_coord *A = open_coord(s, &b1, 0);
    struct stratus_group_coord *B = open_coord(s, &b2, 0);
    CHECK(A && B);
    if (!A || !B)
        goto out;
    CHECK_EQ(ngroups(A), 0); /* the index's group X was forgotten */

    /* 1. One blob per group per batch. The store of group "gate" is held while the next five
     * commits queue on the coordinator's loop: they run one after another and are flushed
     * together, so X (three commits, one overriding another) and Y are stored once each. */
    CHECK_EQ(gx_fetch(A, 1, "X", "t", 0), -1); /* the store has nothing: index value 999 unseen */
    d_gate(d, "gate", 1);
    struct gx_call *cg = commit_async(A, "gate", "t", 0, 1);
    CHECK(d_wait_in_gate(d));
    struct gx_call *c1 = commit_async(A, "X", "t", 0, 10);
    struct gx_call *c2 = commit_async(A, "X", "t", 1, 11);
    struct gx_call *c3 = commit_async(A, "X", "t", 0, 12);
    struct gx_call *c4 = commit_async(A, "Y", "t", 0, 20);
    struct gx_call *c5 = commit_async(A, "Y", "nope", 0, 1); /* refused: no store for it */
    usleep(50000);
    CHECK(!gx_call_is_done(c1)); /* behind the held store */
    d_gate(d, "gate", 0);
    CHECK(gx_call_wait(cg, 5000) && gx_call_wait(c1, 5000) && gx_call_wait(c2, 5000) &&
          gx_call_wait(c3, 5000) && gx_call_wait(c4, 5000) && gx_call_wait(c5, 5000));
    CHECK_EQ(cg->err, 0);
    CHECK_EQ(c1->err, 0);
    CHECK_EQ(c2->err, 0);
    CHECK_EQ(c3->err, 0);
    CHECK_EQ(c4->err, 0);
    CHECK_EQ(c5->err, KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    gx_call_free(cg);
    gx_call_free(c1);
    gx_call_free(c2);
    gx_call_free(c3);
    gx_call_free(c4);
    gx_call_free(c5);
    CHECK_EQ(d_stores(d, "gate"), 1);
    CHECK_EQ(d_stores(d, "X"), 1);
    CHECK_EQ(d_stores(d, "Y"), 1);
    struct stratus_offsets o;
    CHECK(d_offsets(d, "X", &o));
    CHECK_EQ(o.n, 2);
    CHECK_EQ(d_offset_of(d, "X", "t", 0), 12);
    CHECK_EQ(d_offset_of(d, "X", "t", 1), 11);
    if (o.n == 2)
        CHECK_STR(o.v[0].meta, "meta");
    stratus_offsets_free(&o);
    struct stratus_group_stats st;
    stratus_group_get_stats(A, &st);
    CHECK_EQ(st.commit_batches, 2); /* the gate's batch, then X + Y's */
    CHECK_EQ(st.commits, 5);
    /* fetch: v1, v5 and v8 (two groups at once) */
    CHECK_EQ(gx_fetch(A, 1, "X", "t", 0), 12);
    CHECK_EQ(gx_fetch(A, 5, "X", "t", 1), 11);
    struct gx_call *f8 = fetch_v8(A, "X", "Y");
    CHECK(f8->done && f8->errs[0] == 0 && f8->errs[1] == 0);
    CHECK_EQ(f8->fetched[0], 12);
    CHECK_EQ(f8->fetched[1], 20);
    gx_call_free(f8);

    /* 2. Not ours: group "nc" is coordinated by broker 2. */
    d_set_owner(d, "nc", 2);
    struct gx_call *j = join_async(A, "nc", "");
    CHECK(gx_call_wait(j, 5000));
    CHECK_EQ(j->err, KAFKA_ERR_NOT_COORDINATOR);
    gx_call_free(j);
    CHECK_EQ(gx_heartbeat(A, "nc", "m", 1), KAFKA_ERR_NOT_COORDINATOR);
    CHECK_EQ(commit(A, "nc", "t", 0, 5), KAFKA_ERR_NOT_COORDINATOR);
    CHECK_EQ(gx_fetch(A, 1, "nc", "t", 0), -(1000 + KAFKA_ERR_NOT_COORDINATOR)); /* per partition */
    CHECK_EQ(gx_fetch(A, 5, "nc", "t", 0), -(1000 + KAFKA_ERR_NOT_COORDINATOR)); /* top level */
    f8 = fetch_v8(A, "Y", "nc");                                              /* per group */
    CHECK(f8->done);
    CHECK_EQ(f8->errs[0], 0);
    CHECK_EQ(f8->fetched[0], 20);
    CHECK_EQ(f8->errs[1], KAFKA_ERR_NOT_COORDINATOR);
    gx_call_free(f8);
    CHECK_EQ(d_attempts(d, "nc"), 0);
    /* ... and broker 2 serves it */
    CHECK_EQ(commit(B, "nc", "t", 0, 5), 0);
    CHECK_EQ(gx_fetch(B, 5, "nc", "t", 0), 5);
    struct gx_call *dg = delete_groups(A, "nc", "nc");
    CHECK_EQ(dg->errs[0], KAFKA_ERR_NOT_COORDINATOR);
    gx_call_free(dg);
    CHECK_EQ(d_offset_of(d, "nc", "t", 0), 5);

    /* 3. Coordination of X moves to broker 2: A refuses at once (even before it is told), and
     * drops X when told; B loads X's offsets on X's first request and adds to them. */
    d_set_owner(d, "X", 2);
    CHECK_EQ(gx_fetch(A, 5, "X", "t", 0), -(1000 + KAFKA_ERR_NOT_COORDINATOR));
    uint64_t before = ngroups(A);
    stratus_group_coordination_changed(A);
    stratus_group_coordination_changed(B);
    CHECK_EQ(ngroups(A), before - 1);
    int loads = d_loads(d);
    CHECK_EQ(gx_fetch(B, 1, "X", "t", 0), 12);
    CHECK_EQ(d_loads(d), loads + 1);
    CHECK_EQ(gx_fetch(B, 1, "X", "t", 1), 11);
    CHECK_EQ(d_loads(d), loads + 1); /* loaded once, then served from memory */
    CHECK_EQ(commit(B, "X", "t", 1, 30), 0);
    CHECK_EQ(d_offset_of(d, "X", "t", 0), 12); /* the whole group rewritten */
    CHECK_EQ(d_offset_of(d, "X", "t", 1), 30);
    CHECK_EQ(commit(A, "X", "t", 0, 77), KAFKA_ERR_NOT_COORDINATOR);
    CHECK_EQ(d_offset_of(d, "X", "t", 0), 12);

    /* 4. A fenced store: A's local view lags (it believes it coordinates everything) while
     * etcd says broker 2 owns "fz". The commit is accepted, its store fenced: NOT_COORDINATOR,
     * nothing stored, the group dropped from A's memory. */
    d_set_owner(d, "fz", 2);
    pthread_mutex_lock(&d->mu); /* the coordinator thread reads it under mu */
    b1.believes_all = 1;
    pthread_mutex_unlock(&d->mu);
    before = ngroups(A);
    CHECK_EQ(commit(A, "fz", "t", 0, 3), KAFKA_ERR_NOT_COORDINATOR);
    CHECK_EQ(d_attempts(d, "fz"), 1);             /* tried, fenced */
    CHECK_EQ(d_offset_of(d, "fz", "t", 0), -100); /* no blob */
    CHECK_EQ(ngroups(A), before);                 /* created, then dropped */
    pthread_mutex_lock(&d->mu);
    b1.believes_all = 0;
    pthread_mutex_unlock(&d->mu);

    /* 5. A store that fails otherwise: COORDINATOR_NOT_AVAILABLE (retriable); the group's
     * offsets are read back before their next use. */
    pthread_mutex_lock(&d->mu);
    d->fail_next = 1;
    pthread_mutex_unlock(&d->mu);
    CHECK_EQ(commit(A, "Y", "t", 0, 21), KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
    loads = d_loads(d);
    CHECK_EQ(gx_fetch(A, 1, "Y", "t", 0), 20);
    CHECK_EQ(d_loads(d), loads + 1);
    CHECK_EQ(commit(A, "Y", "t", 0, 22), 0);
    CHECK_EQ(d_offset_of(d, "Y", "t", 0), 22);

    /* 6. coordination_changed drops a group with a parked JoinGroup: m1 leads generation 1,
     * m2's JoinGroup parks until m1 rejoins; the group moves away and m2 hears
     * NOT_COORDINATOR. */
    j = join_async(A, "pj", "");
    CHECK(gx_call_wait(j, 5000));
    CHECK_EQ(j->err, 0);
    CHECK_EQ(j->generation, 1);
    char m1[200];
    snprintf(m1, sizeof m1, "%s", j->member);
    gx_call_free(j);
    CHECK_EQ(sync_group(A, "pj", m1, 1), 0);
    CHECK_EQ(gx_heartbeat(A, "pj", m1, 1), 0);
    struct gx_call *j2 = join_async(A, "pj", "");
    usleep(100000);
    CHECK(!gx_call_is_done(j2));
    CHECK_EQ(gx_heartbeat(A, "pj", m1, 1), KAFKA_ERR_REBALANCE_IN_PROGRESS);
    d_set_owner(d, "pj", 2);
    stratus_group_coordination_changed(A);
    CHECK(gx_call_wait(j2, 5000));
    CHECK_EQ(j2->err, KAFKA_ERR_NOT_COORDINATOR);
    gx_call_free(j2);
    d_set_owner(d, "pj", 1); /* back again: the group starts over, the old member is gone */
    CHECK_EQ(gx_heartbeat(A, "pj", m1, 1), KAFKA_ERR_UNKNOWN_MEMBER_ID);

    /* 7. A commit accepted but not yet stored when coordination moves: answered
     * NOT_COORDINATOR, never stored. The held "gate" store keeps the loop busy while the
     * commit and the notification queue behind it; "pc" says yes once (when the commit runs)
     * and then belongs to broker 2, as if the partition moved between the two. */
    d_gate(d, "gate", 1);
    cg = commit_async(A, "gate", "t", 0, 2);
    CHECK(d_wait_in_gate(d));
    pthread_mutex_lock(&d->mu);
    snprintf(d->flip, sizeof d->flip, "pc");
    pthread_mutex_unlock(&d->mu);
    c1 = commit_async(A, "pc", "t", 0, 8);
    stratus_group_coordination_changed(A);
    usleep(50000);
    d_gate(d, "gate", 0);
    CHECK(gx_call_wait(cg, 5000) && gx_call_wait(c1, 5000));
    CHECK_EQ(cg->err, 0);
    CHECK_EQ(c1->err, KAFKA_ERR_NOT_COORDINATOR);
    CHECK_EQ(d_attempts(d, "pc"), 0); /* dropped before the flush: not even tried */
    gx_call_free(cg);
    gx_call_free(c1);

    /* 8. DeleteGroups goes through the store (a delete); per group errors. */
    dg = delete_groups(A, "Y", "X");
    CHECK_EQ(dg->errs[0], 0);
    CHECK_EQ(dg->errs[1], KAFKA_ERR_NOT_COORDINATOR);
    gx_call_free(dg);
    CHECK_EQ(d_offset_of(d, "Y", "t", 0), -100); /* blob gone */
    CHECK_EQ(gx_fetch(A, 1, "Y", "t", 0), -1);

out:
    if (A)
        stratus_group_close(A);
    if (B)
        stratus_group_close(B);
    /* Nothing of cluster mode reached the index: a single-node coordinator sees only its own
     * commit of X. */
    solo = open_coord(s, NULL, 0);
    if (solo) {
        CHECK_EQ(gx_fetch(solo, 1, "X", "t", 0), 999);
        CHECK_EQ(gx_fetch(solo, 1, "Y", "t", 0), -1);
        stratus_group_close(solo);
    }
}

/* Retention in cluster mode deletes the blob of a memberless group's expired offsets. */
static void test_retention(struct stratus_stream *s)
{
    struct etcd_double *d = &g_d;
    struct broker b1 = {d, 1, 0};

    pthread_mutex_lock(&d->mu);
    d->default_owner = 1;
    d->nowners = 0;
    pthread_mutex_unlock(&d->mu);
    struct stratus_group_coord *C = open_coord(s, &b1, 300);
    CHECK(C != NULL);
    if (!C)
        return;
    CHECK_EQ(commit(C, "old", "t", 0, 4), 0);
    CHECK_EQ(d_offset_of(d, "old", "t", 0), 4);
    int64_t v = 4;
    for (int i = 0; i < 50 && v != -100; i++) {
        usleep(100000);
        v = d_offset_of(d, "old", "t", 0);
    }
    CHECK_EQ(v, -100);
    CHECK_EQ(d_stores(d, "old"), 2); /* the commit, then the delete */
    struct stratus_group_stats st;
    stratus_group_get_stats(C, &st);
    CHECK_EQ(st.expired_offsets, 1);
    stratus_group_close(C);
}

int main(void)
{
    test_partition_for();
    test_blob();
    if (fx_env_open("group_cluster") == 0) {
        struct stratus_stream *s = gx_open_stream();
        CHECK(s != NULL);
        if (s) {
            test_cluster(s);
            test_retention(s);
            stratus_stream_close(s);
        }
    }
    fx_env_close();
    d_free(&g_d);
    TEST_REPORT();
}
