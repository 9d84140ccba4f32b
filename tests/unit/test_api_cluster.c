/* link: stratus_api */
/* test_api_cluster.c - the API layer in cluster mode, driven through stratus_api_handle() with
 * raw request bodies (generated encoders) and the responses decoded back.
 *
 * The cluster view is a TEST DOUBLE: this file defines the stratus_cluster_* functions of
 * core/cluster/cluster.h itself (link-time substitution). It links stratus_api (and what it
 * pulls in) but not stratus_core; since every cluster.h function the API calls is defined here,
 * the linker never pulls the real node agent (core/cluster/node.c) out of stratus_cluster.
 * The double: brokers 1 (rack r1), 2 (rack r2), 3 (no rack); controller 2; this broker is 1;
 * owners: orders/0 = 1 @5, orders/1 = 2 @7, orders/2 = none @3, other/0 = 3 @9,
 * __consumer_offsets/0 = 3 @1, /1 = 2 @2; group "g-ok" on 3, "g-none" nowhere; moves
 * orders/1 2->3 (and a later request 2->1), other/0 3->1, orders/0 1->2, orders/2 none->3.
 * Admin calls are recorded; create_topic also installs the topic in the real engine (what the
 * node agent does when the metastore changes), except for names starting with "noinstall-".
 *
 * The engine is real (single-node, storage-local in a temp dir) and holds the local catalog.
 * Checks: Metadata v1/v9/v12 (brokers, racks, controller, leaders, epochs, replicas/isr,
 * LEADER_NOT_AVAILABLE, __consumer_offsets hidden unless named and marked internal, auto-create
 * through the view), FindCoordinator v3/v4, DescribeCluster, AlterPartitionReassignments
 * (targets, cancels, two replicas refused), ListPartitionReassignments (all, filtered),
 * CreateTopics / DeleteTopics / CreatePartitions / AlterConfigs / IncrementalAlterConfigs routed
 * to the view, ListOffsets and DeleteRecords NOT_LEADER / LEADER_NOT_AVAILABLE, and
 * single-node answers unchanged with ctx->cluster NULL. The leader hints of Produce and Fetch
 * are checked through api_hints_* directly: driving them needs a network loop and a partition
 * the engine refuses (cluster-mode engine), left to the 3-broker tests.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "api/api.h"
#include "api/handlers.h"
#include "cluster/cluster.h"
#include "proto/kerr.h"
#include "stream/stream.h"
#include "stream_fixture.h"
#include "test.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- the cluster double ------------------------------------------------------------------ */

struct stratus_cluster {
    int unused;
};
static struct stratus_cluster the_cluster;
static struct stratus_stream *engine; /* for create_topic's install */

struct call_rec {
    char what[32];
    char name[250];
    int32_t a, b; /* partition / partitions / target / incremental */
    int32_t nconfigs;
    char first_config[64];
};
static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static struct call_rec recs[64];
static int nrecs;

static void record(const char *what,
                   const char *name,
                   int32_t a,
                   int32_t b,
                   const struct stratus_kv *kv,
                   size_t nkv)
{
    pthread_mutex_lock(&rec_mu);
    if (nrecs < 64) {
        struct call_rec *r = &recs[nrecs++];
        memset(r, 0, sizeof *r);
        snprintf(r->what, sizeof r->what, "%s", what);
        snprintf(r->name, sizeof r->name, "%s", name);
        r->a = a;
        r->b = b;
        r->nconfigs = (int32_t)nkv;
        if (nkv && kv[0].name)
            snprintf(r->first_config, sizeof r->first_config, "%s=%s", kv[0].name,
                     kv[0].value ? kv[0].value : "(null)");
    }
    pthread_mutex_unlock(&rec_mu);
}

static void records_clear(void)
{
    pthread_mutex_lock(&rec_mu);
    nrecs = 0;
    pthread_mutex_unlock(&rec_mu);
}

/* What every admin call of the double gets from the API: this view and a message buffer. */
static void check_admin_args(const struct stratus_cluster *c, const char *msg, size_t msgcap)
{
    CHECK(c == &the_cluster);
    CHECK(msg != NULL && msgcap > 0);
}

int stratus_cluster_brokers(struct stratus_cluster *c,
                            struct stratus_cluster_broker **out,
                            size_t *n)
{
    if (c != &the_cluster)
        return STRATUS_EINVAL;
    struct stratus_cluster_broker *b = calloc(3, sizeof *b);
    if (!b)
        return STRATUS_ENOMEM;
    for (int i = 0; i < 3; i++) {
        b[i].id = i + 1;
        snprintf(b[i].host, sizeof b[i].host, "b%d.test", i + 1);
        b[i].port = 9101 + i;
    }
    snprintf(b[0].rack, sizeof b[0].rack, "r1");
    snprintf(b[1].rack, sizeof b[1].rack, "r2");
    *out = b;
    *n = 3;
    return 0;
}

int32_t stratus_cluster_controller(struct stratus_cluster *c)
{
    (void)c;
    return 2;
}

int32_t stratus_cluster_self(struct stratus_cluster *c)
{
    (void)c;
    return 1;
}

int stratus_cluster_owner(
    struct stratus_cluster *c, const char *topic, int32_t partition, int32_t *owner, int32_t *epoch)
{
    static const struct {
        const char *t;
        int32_t p, owner, epoch;
    } tab[] = {
        {"orders", 0, 1, 5},
        {"orders", 1, 2, 7},
        {"orders", 2, -1, 3},
        {"other", 0, 3, 9},
        {"__consumer_offsets", 0, 3, 1},
        {"__consumer_offsets", 1, 2, 2},
    };
    (void)c;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(tab[i].t, topic) == 0 && tab[i].p == partition) {
            *owner = tab[i].owner;
            *epoch = tab[i].epoch;
            return 0;
        }
    return STRATUS_ENOTFOUND;
}

int16_t stratus_cluster_create_topic(struct stratus_cluster *c,
                                     const char *name,
                                     int32_t partitions,
                                     const struct stratus_kv *configs,
                                     size_t nconfigs,
                                     int validate_only,
                                     uint8_t id_out[16],
                                     char *msg,
                                     size_t msgcap)
{
    check_admin_args(c, msg, msgcap);
    record("create_topic", name, partitions, validate_only, configs, nconfigs);
    if (strncmp(name, "noinstall-", 10) == 0 || validate_only)
        return KAFKA_ERR_NONE;
    return stratus_stream_create_topic(engine, name, partitions, configs, nconfigs, 0, id_out, msg,
                                       msgcap);
}

int16_t
stratus_cluster_delete_topic(struct stratus_cluster *c, const char *name, char *msg, size_t msgcap)
{
    check_admin_args(c, msg, msgcap);
    record("delete_topic", name, 0, 0, NULL, 0);
    return KAFKA_ERR_NONE;
}

int16_t stratus_cluster_create_partitions(struct stratus_cluster *c,
                                          const char *name,
                                          int32_t new_total,
                                          int validate_only,
                                          char *msg,
                                          size_t msgcap)
{
    check_admin_args(c, msg, msgcap);
    record("create_partitions", name, new_total, validate_only, NULL, 0);
    return KAFKA_ERR_NONE;
}

int16_t stratus_cluster_alter_topic_configs(struct stratus_cluster *c,
                                            const char *name,
                                            const struct stratus_kv *configs,
                                            size_t n,
                                            int incremental,
                                            int validate_only,
                                            char *msg,
                                            size_t msgcap)
{
    check_admin_args(c, msg, msgcap);
    record("alter_configs", name, incremental, validate_only, configs, n);
    return KAFKA_ERR_NONE;
}

int16_t stratus_cluster_reassign(struct stratus_cluster *c,
                                 const char *topic,
                                 int32_t partition,
                                 int32_t target,
                                 char *msg,
                                 size_t msgcap)
{
    check_admin_args(c, msg, msgcap);
    record("reassign", topic, partition, target, NULL, 0);
    if (target == 99) {
        snprintf(msg, msgcap, "broker 99 is not live");
        return KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT;
    }
    return KAFKA_ERR_NONE;
}

int stratus_cluster_moves(struct stratus_cluster *c, struct stratus_cluster_move **out, size_t *n)
{
    (void)c;
    struct stratus_cluster_move *m = calloc(5, sizeof *m);
    if (!m)
        return STRATUS_ENOMEM;
    snprintf(m[0].topic, sizeof m[0].topic, "orders");
    m[0].partition = 1, m[0].owner = 2, m[0].target = 3;
    snprintf(m[1].topic, sizeof m[1].topic, "other");
    m[1].partition = 0, m[1].owner = 3, m[1].target = 1;
    snprintf(m[2].topic, sizeof m[2].topic, "orders");
    m[2].partition = 0, m[2].owner = 1, m[2].target = 2;
    snprintf(m[3].topic, sizeof m[3].topic, "orders"); /* a newer request for orders/1 */
    m[3].partition = 1, m[3].owner = 2, m[3].target = 1;
    snprintf(m[4].topic, sizeof m[4].topic, "orders"); /* no owner right now */
    m[4].partition = 2, m[4].owner = -1, m[4].target = 3;
    *out = m;
    *n = 5;
    return 0;
}

int32_t stratus_cluster_group_coordinator(struct stratus_cluster *c, const char *group)
{
    (void)c;
    return strcmp(group, "g-ok") == 0 ? 3 : -1;
}

/* ---- driving a request ------------------------------------------------------------------- */

struct call {
    struct stratus_req req;
    struct kwrite qw;
    struct stratus_arena arena; /* the decoded response's arrays */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int finished;
};

static void on_finish(struct stratus_req *req)
{
    struct call *c = (struct call *)req; /* req is the first member */
    pthread_mutex_lock(&c->mu);
    c->finished = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Encodes rq at version v, runs it through stratus_api_handle (waiting when it parks), and
 * decodes the response into rs. NULL when any step fails (a failed check). */
static struct call *
run(struct stratus_api_ctx *ctx, int16_t key, int16_t v, const void *rq, void *rs)
{
    struct call *c = calloc(1, sizeof *c);
    struct kread r;

    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    kw_init(&c->qw, 0);
    arena_init(&c->req.arena, 0);
    arena_init(&c->arena, 0);
    kw_init(&c->req.resp, 0);
    CHECK_EQ(kmsg_encode(kapi_request_desc(key), &c->qw, v, rq), 0);
    c->req.ctx = ctx;
    c->req.api_key = key;
    c->req.api_version = v;
    c->req.correlation_id = 7;
    snprintf(c->req.client_id, sizeof c->req.client_id, "test");
    c->req.body = c->qw.buf;
    c->req.body_len = c->qw.len;
    c->req.finish_fn = on_finish;
    int rc = stratus_api_handle(&c->req);
    if (rc == STRATUS_API_PENDING) {
        pthread_mutex_lock(&c->mu);
        while (!c->finished)
            pthread_cond_wait(&c->cv, &c->mu);
        pthread_mutex_unlock(&c->mu);
    }
    CHECK(!c->req.close_after);
    CHECK(!c->req.resp.err);
    kstruct_init(kapi_response_desc(key)->body, rs);
    kr_init(&r, c->req.resp.buf, c->req.resp.len, &c->arena);
    int drc = kmsg_decode(kapi_response_desc(key), &r, v, rs);
    CHECK_EQ(drc, 0);
    CHECK_EQ(r.err, 0);
    CHECK_EQ(kr_remaining(&r), 0);
    return c;
}

static void call_free(struct call *c)
{
    kw_free(&c->qw);
    kw_free(&c->req.resp);
    arena_free_all(&c->req.arena);
    arena_free_all(&c->arena);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

static int kstr_is(struct kstr s, const char *want)
{
    if (!want)
        return s.len < 0;
    return s.len >= 0 && kstr_eq_cstr(s, want);
}

static const struct MetadataResponse_MetadataResponseTopic *
md_topic(const struct MetadataResponse *rs, const char *name)
{
    for (int32_t i = 0; i < rs->Topics.count; i++)
        if (kstr_is(rs->Topics.items[i].Name, name))
            return &rs->Topics.items[i];
    return NULL;
}

/* run() of a request the API routes to the view: checks that it made exactly one call of the
 * double, what on name; that call's record is recs[0]. */
static struct call *run_routed(struct stratus_api_ctx *ctx,
                               int16_t key,
                               int16_t v,
                               const void *rq,
                               void *rs,
                               const char *what,
                               const char *name)
{
    records_clear();
    struct call *c = run(ctx, key, v, rq, rs);
    CHECK_EQ(nrecs, 1);
    CHECK_STR(recs[0].what, what);
    CHECK_STR(recs[0].name, name);
    return c;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void check_brokers(const struct MetadataResponse *rs, int with_rack)
{
    CHECK_EQ(rs->Brokers.count, 3);
    if (rs->Brokers.count != 3)
        return;
    for (int i = 0; i < 3; i++) {
        char host[32];
        snprintf(host, sizeof host, "b%d.test", i + 1);
        CHECK_EQ(rs->Brokers.items[i].NodeId, i + 1);
        CHECK(kstr_is(rs->Brokers.items[i].Host, host));
        CHECK_EQ(rs->Brokers.items[i].Port, 9101 + i);
    }
    if (with_rack) {
        CHECK(kstr_is(rs->Brokers.items[0].Rack, "r1"));
        CHECK(kstr_is(rs->Brokers.items[1].Rack, "r2"));
        CHECK(kstr_is(rs->Brokers.items[2].Rack, NULL));
    }
}

/* orders: p0 on 1, p1 on 2, p2 without a leader. */
static void check_orders(const struct MetadataResponse_MetadataResponseTopic *t, int epochs)
{
    CHECK(t != NULL);
    if (!t)
        return;
    CHECK_EQ(t->ErrorCode, 0);
    CHECK_EQ(t->IsInternal, 0);
    CHECK_EQ(t->Partitions.count, 3);
    if (t->Partitions.count != 3)
        return;
    const struct MetadataResponse_MetadataResponsePartition *p = t->Partitions.items;
    CHECK_EQ(p[0].ErrorCode, 0);
    CHECK_EQ(p[0].LeaderId, 1);
    CHECK_EQ(p[0].ReplicaNodes.count, 1);
    CHECK_EQ(p[0].IsrNodes.count, 1);
    if (p[0].ReplicaNodes.count == 1 && p[0].IsrNodes.count == 1) {
        CHECK_EQ(p[0].ReplicaNodes.items[0], 1);
        CHECK_EQ(p[0].IsrNodes.items[0], 1);
    }
    CHECK_EQ(p[1].ErrorCode, 0);
    CHECK_EQ(p[1].LeaderId, 2);
    CHECK_EQ(p[1].ReplicaNodes.count, 1);
    if (p[1].ReplicaNodes.count == 1)
        CHECK_EQ(p[1].ReplicaNodes.items[0], 2);
    CHECK_EQ(p[2].ErrorCode, KAFKA_ERR_LEADER_NOT_AVAILABLE);
    CHECK_EQ(p[2].LeaderId, -1);
    CHECK_EQ(p[2].ReplicaNodes.count, 0);
    CHECK_EQ(p[2].IsrNodes.count, 0);
    if (epochs) {
        CHECK_EQ(p[0].LeaderEpoch, 5);
        CHECK_EQ(p[1].LeaderEpoch, 7);
        CHECK_EQ(p[2].LeaderEpoch, 3);
    }
}

static struct MetadataRequest md_request(const char **names, int n)
{
    struct MetadataRequest rq;
    MetadataRequest_init(&rq);
    if (n < 0) {
        rq.Topics.count = -1;
        return rq;
    }
    static struct MetadataRequest_MetadataRequestTopic ts[8];
    for (int i = 0; i < n; i++) {
        MetadataRequest_MetadataRequestTopic_init(&ts[i]);
        ts[i].Name = kstr_from(names[i]);
    }
    rq.Topics.items = ts;
    rq.Topics.count = n;
    rq.AllowAutoTopicCreation = 0;
    return rq;
}

static void test_metadata(struct stratus_api_ctx *ctx)
{
    struct MetadataResponse rs;
    struct MetadataRequest rq;
    struct call *c;

    /* v1, every topic: brokers with racks, controller 2, no __consumer_offsets */
    rq = md_request(NULL, -1);
    c = run(ctx, KAPI_Metadata, 1, &rq, &rs);
    check_brokers(&rs, 1);
    CHECK_EQ(rs.ControllerId, 2);
    CHECK_EQ(rs.Topics.count, 2);
    check_orders(md_topic(&rs, "orders"), 0);
    CHECK(md_topic(&rs, "__consumer_offsets") == NULL);
    const struct MetadataResponse_MetadataResponseTopic *t = md_topic(&rs, "other");
    CHECK(t && t->Partitions.count == 1 && t->Partitions.items[0].LeaderId == 3);
    call_free(c);

    /* v9, by name: epochs, and the offsets topic listed (named) and internal */
    const char *names9[] = {"orders", "__consumer_offsets", "missing"};
    rq = md_request(names9, 3);
    c = run(ctx, KAPI_Metadata, 9, &rq, &rs);
    check_brokers(&rs, 1);
    CHECK_EQ(rs.ControllerId, 2);
    CHECK(kstr_is(rs.ClusterId, "test-cluster-id"));
    CHECK_EQ(rs.Topics.count, 3);
    check_orders(md_topic(&rs, "orders"), 1);
    t = md_topic(&rs, "__consumer_offsets");
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ(t->IsInternal, 1);
        CHECK_EQ(t->Partitions.count, 2);
        if (t->Partitions.count == 2) {
            CHECK_EQ(t->Partitions.items[0].LeaderId, 3);
            CHECK_EQ(t->Partitions.items[0].LeaderEpoch, 1);
            CHECK_EQ(t->Partitions.items[1].LeaderId, 2);
            CHECK_EQ(t->Partitions.items[1].LeaderEpoch, 2);
        }
    }
    t = md_topic(&rs, "missing");
    CHECK(t && t->ErrorCode == KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    call_free(c);

    /* v12, every topic (null) and then one by name */
    rq = md_request(NULL, -1);
    c = run(ctx, KAPI_Metadata, 12, &rq, &rs);
    check_brokers(&rs, 1);
    CHECK_EQ(rs.Topics.count, 2);
    check_orders(md_topic(&rs, "orders"), 1);
    call_free(c);
    const char *names12[] = {"other"};
    rq = md_request(names12, 1);
    c = run(ctx, KAPI_Metadata, 12, &rq, &rs);
    CHECK_EQ(rs.ControllerId, 2);
    t = md_topic(&rs, "other");
    CHECK(t != NULL);
    if (t && t->Partitions.count == 1) {
        CHECK_EQ(t->Partitions.items[0].LeaderId, 3);
        CHECK_EQ(t->Partitions.items[0].LeaderEpoch, 9);
        CHECK_EQ(t->Partitions.items[0].ErrorCode, 0);
    } else {
        CHECK(0);
    }
    call_free(c);

    /* v12 auto-create: goes through stratus_cluster_create_topic with num.partitions; the
     * offsets topic is never auto-created */
    const char *names_new[] = {"fresh", "__consumer_offsets"};
    rq = md_request(names_new, 2);
    rq.AllowAutoTopicCreation = 1;
    c = run_routed(ctx, KAPI_Metadata, 12, &rq, &rs, "create_topic", "fresh");
    CHECK_EQ(recs[0].a, 2);
    t = md_topic(&rs, "fresh");
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ(t->ErrorCode, 0);
        CHECK_EQ(t->Partitions.count, 2);
        /* the view does not know its owners yet */
        for (int32_t i = 0; i < t->Partitions.count; i++) {
            CHECK_EQ(t->Partitions.items[i].ErrorCode, KAFKA_ERR_LEADER_NOT_AVAILABLE);
            CHECK_EQ(t->Partitions.items[i].LeaderId, -1);
        }
    }
    call_free(c);
}

static void test_metadata_single_node(struct stratus_api_ctx *ctx)
{
    struct MetadataResponse rs;
    struct MetadataRequest rq = md_request(NULL, -1);
    struct call *c = run(ctx, KAPI_Metadata, 9, &rq, &rs);

    CHECK_EQ(rs.Brokers.count, 1);
    if (rs.Brokers.count == 1) {
        CHECK_EQ(rs.Brokers.items[0].NodeId, 1);
        CHECK(kstr_is(rs.Brokers.items[0].Host, "self.test"));
        CHECK_EQ(rs.Brokers.items[0].Port, 9092);
    }
    CHECK_EQ(rs.ControllerId, 1);
    const struct MetadataResponse_MetadataResponseTopic *t = md_topic(&rs, "__consumer_offsets");
    CHECK(t && t->IsInternal == 0); /* listed as any topic, as before cluster mode */
    t = md_topic(&rs, "orders");
    CHECK(t && t->Partitions.count == 3);
    for (int32_t i = 0; t && i < t->Partitions.count; i++) {
        CHECK_EQ(t->Partitions.items[i].ErrorCode, 0);
        CHECK_EQ(t->Partitions.items[i].LeaderId, 1);
    }
    call_free(c);
}

static void test_findcoordinator(struct stratus_api_ctx *ctx)
{
    struct FindCoordinatorRequest rq;
    struct FindCoordinatorResponse rs;
    struct call *c;

    FindCoordinatorRequest_init(&rq);
    rq.Key = kstr_from("g-ok");
    rq.KeyType = 0;
    c = run(ctx, KAPI_FindCoordinator, 3, &rq, &rs);
    CHECK_EQ(rs.ErrorCode, 0);
    CHECK_EQ(rs.NodeId, 3);
    CHECK(kstr_is(rs.Host, "b3.test"));
    CHECK_EQ(rs.Port, 9103);
    call_free(c);

    rq.Key = kstr_from("g-none");
    c = run(ctx, KAPI_FindCoordinator, 0, &rq, &rs);
    CHECK_EQ(rs.ErrorCode, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
    CHECK_EQ(rs.NodeId, -1);
    call_free(c);

    struct kstr keys[2] = {kstr_from("g-ok"), kstr_from("g-none")};
    FindCoordinatorRequest_init(&rq);
    rq.KeyType = 0;
    rq.CoordinatorKeys.items = keys;
    rq.CoordinatorKeys.count = 2;
    c = run(ctx, KAPI_FindCoordinator, 4, &rq, &rs);
    CHECK_EQ(rs.Coordinators.count, 2);
    if (rs.Coordinators.count == 2) {
        CHECK(kstr_is(rs.Coordinators.items[0].Key, "g-ok"));
        CHECK_EQ(rs.Coordinators.items[0].ErrorCode, 0);
        CHECK_EQ(rs.Coordinators.items[0].NodeId, 3);
        CHECK(kstr_is(rs.Coordinators.items[0].Host, "b3.test"));
        CHECK_EQ(rs.Coordinators.items[0].Port, 9103);
        CHECK(kstr_is(rs.Coordinators.items[1].Key, "g-none"));
        CHECK_EQ(rs.Coordinators.items[1].ErrorCode, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
        CHECK_EQ(rs.Coordinators.items[1].NodeId, -1);
    }
    call_free(c);

    /* transactions: unchanged */
    FindCoordinatorRequest_init(&rq);
    rq.Key = kstr_from("tx");
    rq.KeyType = 1;
    c = run(ctx, KAPI_FindCoordinator, 3, &rq, &rs);
    CHECK_EQ(rs.ErrorCode, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
    call_free(c);
}

static void test_describecluster(struct stratus_api_ctx *ctx)
{
    struct DescribeClusterRequest rq;
    struct DescribeClusterResponse rs;
    struct call *c;

    DescribeClusterRequest_init(&rq);
    rq.EndpointType = 1;
    c = run(ctx, KAPI_DescribeCluster, 1, &rq, &rs);
    CHECK_EQ(rs.ErrorCode, 0);
    CHECK_EQ(rs.ControllerId, 2);
    CHECK_EQ(rs.Brokers.count, 3);
    if (rs.Brokers.count == 3) {
        CHECK_EQ(rs.Brokers.items[1].BrokerId, 2);
        CHECK(kstr_is(rs.Brokers.items[1].Host, "b2.test"));
        CHECK_EQ(rs.Brokers.items[1].Port, 9102);
        CHECK(kstr_is(rs.Brokers.items[1].Rack, "r2"));
        CHECK(kstr_is(rs.Brokers.items[2].Rack, NULL));
    }
    call_free(c);
}

static void test_alter_reassignments(struct stratus_api_ctx *ctx)
{
    struct AlterPartitionReassignmentsRequest rq;
    struct AlterPartitionReassignmentsResponse rs;
    struct AlterPartitionReassignmentsRequest_ReassignableTopic ts[2];
    struct AlterPartitionReassignmentsRequest_ReassignablePartition ps[4], qs[1];
    int32_t to3[] = {3}, to99[] = {99}, two[] = {1, 2};

    AlterPartitionReassignmentsRequest_init(&rq);
    for (int i = 0; i < 4; i++)
        AlterPartitionReassignmentsRequest_ReassignablePartition_init(&ps[i]);
    ps[0].PartitionIndex = 0; /* move to 3 */
    ps[0].Replicas.items = to3;
    ps[0].Replicas.count = 1;
    ps[1].PartitionIndex = 1; /* [] cancels */
    ps[1].Replicas.count = 0;
    ps[2].PartitionIndex = 2; /* null cancels */
    ps[2].Replicas.count = -1;
    ps[3].PartitionIndex = 0; /* the view refuses broker 99 */
    ps[3].Replicas.items = to99;
    ps[3].Replicas.count = 1;
    AlterPartitionReassignmentsRequest_ReassignablePartition_init(&qs[0]);
    qs[0].PartitionIndex = 0; /* two replicas: refused here */
    qs[0].Replicas.items = two;
    qs[0].Replicas.count = 2;
    AlterPartitionReassignmentsRequest_ReassignableTopic_init(&ts[0]);
    ts[0].Name = kstr_from("orders");
    ts[0].Partitions.items = ps;
    ts[0].Partitions.count = 4;
    AlterPartitionReassignmentsRequest_ReassignableTopic_init(&ts[1]);
    ts[1].Name = kstr_from("other");
    ts[1].Partitions.items = qs;
    ts[1].Partitions.count = 1;
    rq.Topics.items = ts;
    rq.Topics.count = 2;
    rq.TimeoutMs = 30000;

    records_clear();
    struct call *c = run(ctx, KAPI_AlterPartitionReassignments, 0, &rq, &rs);
    CHECK_EQ(rs.ErrorCode, 0);
    CHECK_EQ(nrecs, 4);
    if (nrecs == 4) {
        CHECK_STR(recs[0].what, "reassign");
        CHECK_STR(recs[0].name, "orders");
        CHECK_EQ(recs[0].a, 0);
        CHECK_EQ(recs[0].b, 3);
        CHECK_EQ(recs[1].a, 1);
        CHECK_EQ(recs[1].b, -1);
        CHECK_EQ(recs[2].a, 2);
        CHECK_EQ(recs[2].b, -1);
        CHECK_EQ(recs[3].b, 99);
    }
    CHECK_EQ(rs.Responses.count, 2);
    if (rs.Responses.count == 2 && rs.Responses.items[0].Partitions.count == 4 &&
        rs.Responses.items[1].Partitions.count == 1) {
        const struct AlterPartitionReassignmentsResponse_ReassignablePartitionResponse *p =
            rs.Responses.items[0].Partitions.items;
        CHECK(kstr_is(rs.Responses.items[0].Name, "orders"));
        CHECK_EQ(p[0].ErrorCode, 0);
        CHECK_EQ(p[1].ErrorCode, 0);
        CHECK_EQ(p[2].ErrorCode, 0);
        CHECK_EQ(p[3].ErrorCode, KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT);
        CHECK(kstr_is(p[3].ErrorMessage, "broker 99 is not live"));
        p = rs.Responses.items[1].Partitions.items;
        CHECK_EQ(p[0].ErrorCode, KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT);
        CHECK(kstr_is(p[0].ErrorMessage,
                      "Stratus keeps one owner per partition; give exactly one replica"));
    } else {
        CHECK(0);
    }
    call_free(c);
}

static const struct ListPartitionReassignmentsResponse_OngoingTopicReassignment *
lr_topic(const struct ListPartitionReassignmentsResponse *rs, const char *name)
{
    for (int32_t i = 0; i < rs->Topics.count; i++)
        if (kstr_is(rs->Topics.items[i].Name, name))
            return &rs->Topics.items[i];
    return NULL;
}

static void
check_move(const struct ListPartitionReassignmentsResponse_OngoingPartitionReassignment *p,
           int32_t part,
           int32_t owner,
           int32_t target)
{
    CHECK_EQ(p->PartitionIndex, part);
    CHECK_EQ(p->Replicas.count, 2);
    CHECK_EQ(p->AddingReplicas.count, 1);
    CHECK_EQ(p->RemovingReplicas.count, 1);
    if (p->Replicas.count == 2 && p->AddingReplicas.count == 1 && p->RemovingReplicas.count == 1) {
        CHECK_EQ(p->Replicas.items[0], owner);
        CHECK_EQ(p->Replicas.items[1], target);
        CHECK_EQ(p->AddingReplicas.items[0], target);
        CHECK_EQ(p->RemovingReplicas.items[0], owner);
    }
}

static void test_list_reassignments(struct stratus_api_ctx *ctx)
{
    struct ListPartitionReassignmentsRequest rq;
    struct ListPartitionReassignmentsResponse rs;
    struct call *c;

    ListPartitionReassignmentsRequest_init(&rq);
    rq.Topics.count = -1; /* all */
    c = run(ctx, KAPI_ListPartitionReassignments, 0, &rq, &rs);
    CHECK_EQ(rs.ErrorCode, 0);
    CHECK_EQ(rs.Topics.count, 2);
    const struct ListPartitionReassignmentsResponse_OngoingTopicReassignment *t =
        lr_topic(&rs, "orders");
    CHECK(t && t->Partitions.count == 3); /* orders/1 once */
    if (t && t->Partitions.count == 3) {
        check_move(&t->Partitions.items[0], 1, 2, 3);
        check_move(&t->Partitions.items[1], 0, 1, 2);
        const struct ListPartitionReassignmentsResponse_OngoingPartitionReassignment *p =
            &t->Partitions.items[2];
        CHECK_EQ(p->PartitionIndex, 2);
        CHECK(p->Replicas.count == 1 && p->Replicas.items[0] == 3);
        CHECK(p->AddingReplicas.count == 1 && p->AddingReplicas.items[0] == 3);
        CHECK_EQ(p->RemovingReplicas.count, 0);
    }
    t = lr_topic(&rs, "other");
    CHECK(t && t->Partitions.count == 1);
    if (t && t->Partitions.count == 1)
        check_move(&t->Partitions.items[0], 0, 3, 1);
    call_free(c);

    /* only orders/0 */
    struct ListPartitionReassignmentsRequest_ListPartitionReassignmentsTopics want;
    int32_t idx[] = {0};
    ListPartitionReassignmentsRequest_ListPartitionReassignmentsTopics_init(&want);
    want.Name = kstr_from("orders");
    want.PartitionIndexes.items = idx;
    want.PartitionIndexes.count = 1;
    rq.Topics.items = &want;
    rq.Topics.count = 1;
    c = run(ctx, KAPI_ListPartitionReassignments, 0, &rq, &rs);
    CHECK_EQ(rs.Topics.count, 1);
    t = lr_topic(&rs, "orders");
    CHECK(t && t->Partitions.count == 1);
    if (t && t->Partitions.count == 1)
        check_move(&t->Partitions.items[0], 0, 1, 2);
    call_free(c);
}

static void test_admin_routed(struct stratus_api_ctx *ctx)
{
    struct stratus_topic_info ti;
    struct call *c;

    /* CreateTopics v5: the view is asked; the local catalog is not written by the API */
    struct CreateTopicsRequest crq;
    struct CreateTopicsResponse crs;
    struct CreateTopicsRequest_CreatableTopic ct;
    struct CreateTopicsRequest_CreatableTopicConfig cc;
    CreateTopicsRequest_init(&crq);
    CreateTopicsRequest_CreatableTopic_init(&ct);
    CreateTopicsRequest_CreatableTopicConfig_init(&cc);
    cc.Name = kstr_from("retention.ms");
    cc.Value = kstr_from("1000");
    ct.Name = kstr_from("noinstall-made");
    ct.NumPartitions = 4;
    ct.ReplicationFactor = -1;
    ct.Assignments.count = 0;
    ct.Configs.items = &cc;
    ct.Configs.count = 1;
    crq.Topics.items = &ct;
    crq.Topics.count = 1;
    crq.timeoutMs = 1000;
    c = run_routed(ctx, KAPI_CreateTopics, 5, &crq, &crs, "create_topic", "noinstall-made");
    CHECK_EQ(crs.Topics.count, 1);
    if (crs.Topics.count == 1)
        CHECK_EQ(crs.Topics.items[0].ErrorCode, 0);
    CHECK_EQ(recs[0].a, 4);
    CHECK_EQ(recs[0].nconfigs, 1);
    CHECK_STR(recs[0].first_config, "retention.ms=1000");
    CHECK(stratus_stream_find_topic(engine, "noinstall-made", &ti) != 0);
    call_free(c);

    /* DeleteTopics v4: the view is asked; the topic stays in the local catalog until the
     * agent uninstalls it */
    struct DeleteTopicsRequest drq;
    struct DeleteTopicsResponse drs;
    struct kstr dn = kstr_from("other");
    DeleteTopicsRequest_init(&drq);
    drq.TopicNames.items = &dn;
    drq.TopicNames.count = 1;
    drq.TimeoutMs = 1000;
    c = run_routed(ctx, KAPI_DeleteTopics, 4, &drq, &drs, "delete_topic", "other");
    CHECK_EQ(drs.Responses.count, 1);
    if (drs.Responses.count == 1)
        CHECK_EQ(drs.Responses.items[0].ErrorCode, 0);
    CHECK(stratus_stream_find_topic(engine, "other", &ti) == 0);
    call_free(c);

    /* CreatePartitions v1 */
    struct CreatePartitionsRequest prq;
    struct CreatePartitionsResponse prs;
    struct CreatePartitionsRequest_CreatePartitionsTopic pt;
    CreatePartitionsRequest_init(&prq);
    CreatePartitionsRequest_CreatePartitionsTopic_init(&pt);
    pt.Name = kstr_from("orders");
    pt.Count = 6;
    pt.Assignments.count = -1;
    prq.Topics.items = &pt;
    prq.Topics.count = 1;
    prq.TimeoutMs = 1000;
    c = run_routed(ctx, KAPI_CreatePartitions, 1, &prq, &prs, "create_partitions", "orders");
    CHECK_EQ(prs.Results.count, 1);
    CHECK_EQ(recs[0].a, 6);
    CHECK(stratus_stream_find_topic(engine, "orders", &ti) == 0 && ti.partitions == 3);
    call_free(c);

    /* AlterConfigs v1 (not incremental) */
    struct AlterConfigsRequest arq;
    struct AlterConfigsResponse ars;
    struct AlterConfigsRequest_AlterConfigsResource ar;
    struct AlterConfigsRequest_AlterableConfig ac;
    AlterConfigsRequest_init(&arq);
    AlterConfigsRequest_AlterConfigsResource_init(&ar);
    AlterConfigsRequest_AlterableConfig_init(&ac);
    ac.Name = kstr_from("retention.ms");
    ac.Value = kstr_from("5000");
    ar.ResourceType = 2;
    ar.ResourceName = kstr_from("orders");
    ar.Configs.items = &ac;
    ar.Configs.count = 1;
    arq.Resources.items = &ar;
    arq.Resources.count = 1;
    c = run_routed(ctx, KAPI_AlterConfigs, 1, &arq, &ars, "alter_configs", "orders");
    CHECK_EQ(ars.Responses.count, 1);
    if (ars.Responses.count == 1)
        CHECK_EQ(ars.Responses.items[0].ErrorCode, 0);
    CHECK_EQ(recs[0].a, 0);
    CHECK_STR(recs[0].first_config, "retention.ms=5000");
    call_free(c);

    /* IncrementalAlterConfigs v0: SET goes through with incremental = 1 */
    struct IncrementalAlterConfigsRequest irq;
    struct IncrementalAlterConfigsResponse irs;
    struct IncrementalAlterConfigsRequest_AlterConfigsResource ir;
    struct IncrementalAlterConfigsRequest_AlterableConfig ic;
    IncrementalAlterConfigsRequest_init(&irq);
    IncrementalAlterConfigsRequest_AlterConfigsResource_init(&ir);
    IncrementalAlterConfigsRequest_AlterableConfig_init(&ic);
    ic.Name = kstr_from("retention.ms");
    ic.ConfigOperation = 0;
    ic.Value = kstr_from("7000");
    ir.ResourceType = 2;
    ir.ResourceName = kstr_from("orders");
    ir.Configs.items = &ic;
    ir.Configs.count = 1;
    irq.Resources.items = &ir;
    irq.Resources.count = 1;
    c = run_routed(ctx, KAPI_IncrementalAlterConfigs, 0, &irq, &irs, "alter_configs", "orders");
    CHECK_EQ(irs.Responses.count, 1);
    if (irs.Responses.count == 1)
        CHECK_EQ(irs.Responses.items[0].ErrorCode, 0);
    CHECK_EQ(recs[0].a, 1);
    CHECK_STR(recs[0].first_config, "retention.ms=7000");
    call_free(c);
}

/* The answers for orders/0..2 of a request served only by a partition's owner: orders/0 is
 * owned here (e0 0, v0 its offset or low watermark: 0), orders/1 by broker 2 (NOT_LEADER, -1),
 * orders/2 by nobody (LEADER_NOT_AVAILABLE). */
static void check_owner_answers(int16_t e0, int64_t v0, int16_t e1, int64_t v1, int16_t e2)
{
    CHECK_EQ(e0, 0);
    CHECK_EQ(v0, 0);
    CHECK_EQ(e1, KAFKA_ERR_NOT_LEADER_OR_FOLLOWER);
    CHECK_EQ(v1, -1);
    CHECK_EQ(e2, KAFKA_ERR_LEADER_NOT_AVAILABLE);
}

static void test_listoffsets(struct stratus_api_ctx *ctx)
{
    struct ListOffsetsRequest rq;
    struct ListOffsetsResponse rs;
    struct ListOffsetsRequest_ListOffsetsTopic t;
    struct ListOffsetsRequest_ListOffsetsPartition ps[3];

    ListOffsetsRequest_init(&rq);
    ListOffsetsRequest_ListOffsetsTopic_init(&t);
    for (int i = 0; i < 3; i++) {
        ListOffsetsRequest_ListOffsetsPartition_init(&ps[i]);
        ps[i].PartitionIndex = i;
        ps[i].Timestamp = -1;
    }
    t.Name = kstr_from("orders");
    t.Partitions.items = ps;
    t.Partitions.count = 3;
    rq.ReplicaId = -1;
    rq.Topics.items = &t;
    rq.Topics.count = 1;
    struct call *c = run(ctx, KAPI_ListOffsets, 4, &rq, &rs);
    CHECK_EQ(rs.Topics.count, 1);
    if (rs.Topics.count == 1 && rs.Topics.items[0].Partitions.count == 3) {
        const struct ListOffsetsResponse_ListOffsetsPartitionResponse *p =
            rs.Topics.items[0].Partitions.items;
        check_owner_answers(p[0].ErrorCode, p[0].Offset, p[1].ErrorCode, p[1].Offset,
                            p[2].ErrorCode);
    } else {
        CHECK(0);
    }
    call_free(c);
}

static void test_deleterecords(struct stratus_api_ctx *ctx)
{
    struct DeleteRecordsRequest rq;
    struct DeleteRecordsResponse rs;
    struct DeleteRecordsRequest_DeleteRecordsTopic t;
    struct DeleteRecordsRequest_DeleteRecordsPartition ps[3];

    DeleteRecordsRequest_init(&rq);
    DeleteRecordsRequest_DeleteRecordsTopic_init(&t);
    for (int i = 0; i < 3; i++) {
        DeleteRecordsRequest_DeleteRecordsPartition_init(&ps[i]);
        ps[i].PartitionIndex = i;
        ps[i].Offset = -1;
    }
    t.Name = kstr_from("orders");
    t.Partitions.items = ps;
    t.Partitions.count = 3;
    rq.Topics.items = &t;
    rq.Topics.count = 1;
    rq.TimeoutMs = 1000;
    struct call *c = run(ctx, KAPI_DeleteRecords, 1, &rq, &rs);
    if (rs.Topics.count == 1 && rs.Topics.items[0].Partitions.count == 3) {
        const struct DeleteRecordsResponse_DeleteRecordsPartitionResult *p =
            rs.Topics.items[0].Partitions.items;
        check_owner_answers(p[0].ErrorCode, p[0].LowWatermark, p[1].ErrorCode, p[1].LowWatermark,
                            p[2].ErrorCode);
    } else {
        CHECK(0);
    }
    call_free(c);
}

/* The KIP-951 hints Produce (v10+) and Fetch (v12+) add to NOT_LEADER_OR_FOLLOWER answers:
 * each partition's leader and epoch, and each leader's endpoint once. */
static void test_leader_hints(struct stratus_api_ctx *ctx)
{
    struct stratus_req req;
    struct api_hints h;
    struct stratus_cluster_broker *eps = NULL;
    int32_t id[5], ep[5];

    memset(&req, 0, sizeof req);
    req.ctx = ctx;
    arena_init(&req.arena, 0);
    api_hints_init(&h, &req, 5);
    api_hints_add(&h, "orders", 1, &id[0], &ep[0]);
    api_hints_add(&h, "orders", 0, &id[1], &ep[1]);
    api_hints_add(&h, "orders", 1, &id[2], &ep[2]);
    api_hints_add(&h, "orders", 2, &id[3], &ep[3]);  /* no owner */
    api_hints_add(&h, "missing", 0, &id[4], &ep[4]); /* unknown to the view */
    CHECK(id[0] == 2 && ep[0] == 7);
    CHECK(id[1] == 1 && ep[1] == 5);
    CHECK(id[2] == 2 && ep[2] == 7);
    CHECK(id[3] == -1 && ep[3] == 3);
    CHECK(id[4] == -1 && ep[4] == -1);
    int32_t n = api_hints_endpoints(&h, &eps);
    CHECK_EQ(n, 2);
    if (n == 2) {
        CHECK_EQ(eps[0].id, 2);
        CHECK_STR(eps[0].host, "b2.test");
        CHECK_EQ(eps[0].port, 9102);
        CHECK_STR(eps[0].rack, "r2");
        CHECK_EQ(eps[1].id, 1);
        CHECK_EQ(eps[1].port, 9101);
    }
    arena_free_all(&req.arena);
}

int main(void)
{
    struct stratus_api_ctx ctx;
    char msg[256];

    if (fx_env_open("api_cluster") != 0)
        TEST_REPORT();
    engine = fx_stream_open_defaults();
    CHECK(engine != NULL);
    if (!engine) {
        fx_env_close();
        TEST_REPORT();
    }
    CHECK_EQ(stratus_stream_create_topic(engine, "orders", 3, NULL, 0, 0, NULL, msg, sizeof msg),
             0);
    CHECK_EQ(stratus_stream_create_topic(engine, "other", 1, NULL, 0, 0, NULL, msg, sizeof msg), 0);
    CHECK_EQ(stratus_stream_create_topic(engine, "__consumer_offsets", 2, NULL, 0, 0, NULL, msg,
                                         sizeof msg),
             0);

    memset(&ctx, 0, sizeof ctx);
    ctx.stream = engine;
    ctx.node_id = 1;
    snprintf(ctx.advertised_host, sizeof ctx.advertised_host, "self.test");
    ctx.advertised_port = 9092;
    snprintf(ctx.cluster_id, sizeof ctx.cluster_id, "test-cluster-id");
    ctx.auto_create_topics = 1;
    ctx.default_partitions = 2;
    ctx.max_request_bytes = 1 << 20;

    test_metadata_single_node(&ctx); /* cluster NULL: as before */

    ctx.cluster = &the_cluster;
    test_metadata(&ctx);
    test_findcoordinator(&ctx);
    test_describecluster(&ctx);
    test_alter_reassignments(&ctx);
    test_list_reassignments(&ctx);
    test_admin_routed(&ctx);
    test_listoffsets(&ctx);
    test_deleterecords(&ctx);
    test_leader_hints(&ctx);

    stratus_stream_close(engine);
    fx_env_close();
    TEST_REPORT();
}
