/* metadata.c - Metadata (v0-12), DescribeCluster (v0-1) and FindCoordinator (v0-6).
 *
 * Single node (ctx->cluster NULL): one broker leads every partition: leader = replicas = isr =
 * this node, leader epoch from the partition. Cluster mode: the brokers are the live ones of the
 * cluster view (with their racks), each partition's leader is its owner in the metastore with
 * the owner's epoch (replicas = isr = [owner]; no owner: LEADER_NOT_AVAILABLE with leader -1 and
 * empty lists), the controller is the elected one. Topics come from the local catalog in both
 * modes (the node agent installs every metastore topic); in cluster mode the internal
 * __consumer_offsets is marked is_internal and listed only when asked for by name.
 * Metadata v0 with an empty topic list means all topics; from v1 null means all and
 * empty means none. Unknown topics are created when auto-creation is on (broker setting and,
 * from v4, the request's AllowAutoTopicCreation); creating writes RocksDB (or the metastore in
 * cluster mode), so such a request runs on an I/O worker. FindCoordinator names this broker
 * for group keys (cluster mode: the owner of the group's coordinator partition, or
 * COORDINATOR_NOT_AVAILABLE when it has none); transaction keys get COORDINATOR_NOT_AVAILABLE
 * until transactions exist.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "handlers.h"
#include "stream/stream.h"
#include "util/log.h"

static int topic_name_valid(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > STRATUS_TOPIC_NAME_MAX || !strcmp(n, ".") || !strcmp(n, ".."))
        return 0;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

/* Cluster mode: each partition's leader is its owner in the metastore. */
static void fill_topic_cluster(struct stratus_req *req,
                               struct MetadataResponse_MetadataResponseTopic *t,
                               const struct stratus_topic_info *ti)
{
    t->IsInternal = strcmp(ti->name, STRATUS_CLUSTER_OFFSETS_TOPIC) == 0;
    for (int32_t i = 0; i < ti->partitions; i++) {
        struct MetadataResponse_MetadataResponsePartition *p = &t->Partitions.items[i];
        int32_t owner, epoch;

        MetadataResponse_MetadataResponsePartition_init(p);
        p->PartitionIndex = i;
        api_cluster_leader(req, ti->name, i, &owner, &epoch);
        p->LeaderId = owner;
        p->LeaderEpoch = epoch;
        p->OfflineReplicas.count = 0;
        if (owner < 0) {
            p->ErrorCode = KAFKA_ERR_LEADER_NOT_AVAILABLE;
            p->LeaderId = -1;
            p->ReplicaNodes.count = 0;
            p->IsrNodes.count = 0;
            continue;
        }
        int32_t *one = API_ALLOC(req, int32_t, 1);
        if (!one) {
            p->ErrorCode = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            continue;
        }
        *one = owner;
        p->ReplicaNodes.items = one;
        p->ReplicaNodes.count = 1;
        p->IsrNodes.items = one;
        p->IsrNodes.count = 1;
    }
}

static void fill_topic(struct stratus_req *req, struct MetadataResponse_MetadataResponseTopic *t,
                       const struct stratus_topic_info *ti)
{
    struct stratus_api_ctx *ctx = req->ctx;

    MetadataResponse_MetadataResponseTopic_init(t);
    t->Name = api_kstr(req, ti->name);
    memcpy(t->TopicId, ti->id, 16);
    t->Partitions.items =
        API_ALLOC(req, struct MetadataResponse_MetadataResponsePartition, ti->partitions);
    if (!t->Partitions.items) {
        t->ErrorCode = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    t->Partitions.count = ti->partitions;
    if (ctx->cluster) {
        fill_topic_cluster(req, t, ti);
        return;
    }
    int32_t *self = API_ALLOC(req, int32_t, 1);
    if (self)
        *self = ctx->node_id;
    for (int32_t i = 0; i < ti->partitions; i++) {
        struct MetadataResponse_MetadataResponsePartition *p = &t->Partitions.items[i];
        MetadataResponse_MetadataResponsePartition_init(p);
        p->PartitionIndex = i;
        p->LeaderId = ctx->node_id;
        p->LeaderEpoch = 0;
        struct stratus_partition *sp = stratus_stream_partition(ctx->stream, ti->name, i);
        if (sp) {
            p->LeaderEpoch = stratus_partition_leader_epoch(sp);
            stratus_partition_release(sp);
        }
        p->ReplicaNodes.items = self;
        p->ReplicaNodes.count = 1;
        p->IsrNodes.items = self;
        p->IsrNodes.count = 1;
        p->OfflineReplicas.count = 0;
    }
}

static void fill_broker(struct stratus_req *req, struct MetadataResponse *rs)
{
    struct stratus_api_ctx *ctx = req->ctx;
    struct MetadataResponse_MetadataResponseBroker *b =
        ctx->cluster ? NULL : API_ALLOC(req, struct MetadataResponse_MetadataResponseBroker, 1);

    rs->ClusterId = api_kstr(req, ctx->cluster_id);
    if (ctx->cluster) {
        struct stratus_cluster_broker *bs;
        int32_t n;
        rs->ControllerId = stratus_cluster_controller(ctx->cluster);
        if (api_cluster_brokers(req, &bs, &n) != 0)
            return;
        rs->Brokers.items = API_ALLOC(req, struct MetadataResponse_MetadataResponseBroker, n);
        rs->Brokers.count = rs->Brokers.items ? n : 0;
        for (int32_t i = 0; i < rs->Brokers.count; i++) {
            struct MetadataResponse_MetadataResponseBroker *o = &rs->Brokers.items[i];
            MetadataResponse_MetadataResponseBroker_init(o);
            o->NodeId = bs[i].id;
            o->Host = api_kstr(req, bs[i].host);
            o->Port = bs[i].port;
            o->Rack = api_cluster_rack(req, &bs[i]);
        }
        return;
    }
    if (!b)
        return;
    MetadataResponse_MetadataResponseBroker_init(b);
    b->NodeId = ctx->node_id;
    b->Host = api_kstr(req, ctx->advertised_host);
    b->Port = ctx->advertised_port;
    b->Rack = KSTR_NULL;
    rs->Brokers.items = b;
    rs->Brokers.count = 1;
    rs->ControllerId = ctx->node_id;
}

/* A topic a Metadata request may create: a valid name, and in cluster mode not the internal
 * offsets topic (the controller creates that one with its fixed partition count). */
static int auto_creatable(struct stratus_req *req, const char *name)
{
    return name && topic_name_valid(name) &&
           !(req->ctx->cluster && strcmp(name, STRATUS_CLUSTER_OFFSETS_TOPIC) == 0);
}

static int metadata_wants_create(struct stratus_req *req, const struct MetadataRequest *rq)
{
    struct stratus_topic_info ti;

    if (!req->ctx->auto_create_topics || (req->api_version >= 4 && !rq->AllowAutoTopicCreation))
        return 0;
    if (rq->Topics.count <= 0)
        return 0;
    for (int32_t i = 0; i < rq->Topics.count; i++) {
        char *name = api_cstr(req, rq->Topics.items[i].Name);
        if (rq->Topics.items[i].Name.len > 0 && auto_creatable(req, name) &&
            stratus_stream_find_topic(req->ctx->stream, name, &ti) != 0)
            return 1;
    }
    return 0;
}

/* Builds and encodes the response; may create topics when allowed (only on a worker). */
static void metadata_build(struct stratus_req *req, const struct MetadataRequest *rq,
                           int may_create)
{
    struct stratus_api_ctx *ctx = req->ctx;
    struct MetadataResponse rs;
    int all = rq->Topics.count < 0 || (req->api_version == 0 && rq->Topics.count == 0);

    MetadataResponse_init(&rs);
    fill_broker(req, &rs);
    if (all) {
        struct stratus_topic_info *tis = NULL;
        size_t n = 0;
        stratus_stream_list_topics(ctx->stream, &tis, &n);
        rs.Topics.items = API_ALLOC(req, struct MetadataResponse_MetadataResponseTopic, n);
        if (rs.Topics.items) {
            int32_t k = 0;
            for (size_t i = 0; i < n; i++) {
                /* Cluster mode: the internal offsets topic only when named. */
                if (ctx->cluster && strcmp(tis[i].name, STRATUS_CLUSTER_OFFSETS_TOPIC) == 0)
                    continue;
                fill_topic(req, &rs.Topics.items[k++], &tis[i]);
            }
            rs.Topics.count = k;
        }
        free(tis);
    } else {
        rs.Topics.items =
            API_ALLOC(req, struct MetadataResponse_MetadataResponseTopic, rq->Topics.count);
        rs.Topics.count = rs.Topics.items ? rq->Topics.count : 0;
        for (int32_t i = 0; i < rs.Topics.count; i++) {
            const struct MetadataRequest_MetadataRequestTopic *want = &rq->Topics.items[i];
            struct MetadataResponse_MetadataResponseTopic *t = &rs.Topics.items[i];
            struct stratus_topic_info ti;
            static const uint8_t zero[16];
            char *name = api_cstr(req, want->Name);
            int rc;

            if (want->Name.len < 0 && memcmp(want->TopicId, zero, 16) != 0) {
                rc = stratus_stream_find_topic_id(ctx->stream, want->TopicId, &ti);
                if (rc != 0) {
                    MetadataResponse_MetadataResponseTopic_init(t);
                    t->Name = KSTR_NULL;
                    memcpy(t->TopicId, want->TopicId, 16);
                    t->ErrorCode = KAFKA_ERR_UNKNOWN_TOPIC_ID;
                    continue;
                }
            } else {
                rc = name ? stratus_stream_find_topic(ctx->stream, name, &ti) : STRATUS_ENOMEM;
                if (rc != 0 && auto_creatable(req, name) && may_create) {
                    char msg[160];
                    int16_t err =
                        ctx->cluster
                            ? stratus_cluster_create_topic(
                                  ctx->cluster, name,
                                  ctx->default_partitions > 0 ? ctx->default_partitions : 1, NULL,
                                  0, 0, NULL, msg, sizeof msg)
                            : stratus_stream_create_topic(ctx->stream, name, -1, NULL, 0, 0, NULL,
                                                          msg, sizeof msg);
                    if (err == KAFKA_ERR_NONE || err == KAFKA_ERR_TOPIC_ALREADY_EXISTS) {
                        LOG_INFO("api", "auto-created topic=%s client_id=%s", name,
                                 req->client_id);
                        rc = stratus_stream_find_topic(ctx->stream, name, &ti);
                    }
                }
                if (rc != 0) {
                    MetadataResponse_MetadataResponseTopic_init(t);
                    t->Name = want->Name;
                    t->ErrorCode = name && topic_name_valid(name)
                                       ? KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION
                                       : KAFKA_ERR_INVALID_TOPIC_EXCEPTION;
                    continue;
                }
            }
            fill_topic(req, t, &ti);
        }
    }
    MetadataResponse_encode(&req->resp, req->api_version, &rs);
}

static void metadata_on_worker(struct stratus_req *req)
{
    struct MetadataRequest rq;
    struct kread r;

    MetadataRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    MetadataRequest_decode(&r, req->api_version, &rq);
    metadata_build(req, &rq, 1);
}

int api_metadata(struct stratus_req *req)
{
    struct MetadataRequest rq;
    struct kread r;

    MetadataRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (MetadataRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed Metadata");
    if (metadata_wants_create(req, &rq)) {
        /* Decoded again on the worker: arena-allocated arrays are fine to reuse, but keeping
         * the worker self-contained is simpler. */
        return api_run_on_worker(req, metadata_on_worker);
    }
    metadata_build(req, &rq, 0);
    return STRATUS_API_DONE;
}

int api_describecluster(struct stratus_req *req)
{
    struct DescribeClusterRequest rq;
    struct DescribeClusterResponse rs;
    struct kread r;
    struct stratus_api_ctx *ctx = req->ctx;

    DescribeClusterRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (DescribeClusterRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed DescribeCluster");
    DescribeClusterResponse_init(&rs);
    rs.EndpointType = rq.EndpointType;
    if (req->api_version >= 1 && rq.EndpointType != 1) {
        rs.ErrorCode = KAFKA_ERR_UNSUPPORTED_ENDPOINT_TYPE;
        rs.ErrorMessage = api_kstr(req, "only broker endpoints (type 1) are served");
    } else {
        struct DescribeClusterResponse_DescribeClusterBroker *b =
            ctx->cluster ? NULL
                         : API_ALLOC(req, struct DescribeClusterResponse_DescribeClusterBroker, 1);
        struct stratus_cluster_broker *bs;
        int32_t n;
        if (ctx->cluster && api_cluster_brokers(req, &bs, &n) == 0) {
            rs.Brokers.items =
                API_ALLOC(req, struct DescribeClusterResponse_DescribeClusterBroker, n);
            rs.Brokers.count = rs.Brokers.items ? n : 0;
            for (int32_t i = 0; i < rs.Brokers.count; i++) {
                struct DescribeClusterResponse_DescribeClusterBroker *o = &rs.Brokers.items[i];
                DescribeClusterResponse_DescribeClusterBroker_init(o);
                o->BrokerId = bs[i].id;
                o->Host = api_kstr(req, bs[i].host);
                o->Port = bs[i].port;
                o->Rack = api_cluster_rack(req, &bs[i]);
            }
        }
        if (b) {
            DescribeClusterResponse_DescribeClusterBroker_init(b);
            b->BrokerId = ctx->node_id;
            b->Host = api_kstr(req, ctx->advertised_host);
            b->Port = ctx->advertised_port;
            b->Rack = KSTR_NULL;
            rs.Brokers.items = b;
            rs.Brokers.count = 1;
        }
    }
    rs.ClusterId = api_kstr(req, ctx->cluster_id);
    rs.ControllerId = ctx->cluster ? stratus_cluster_controller(ctx->cluster) : ctx->node_id;
    DescribeClusterResponse_encode(&req->resp, req->api_version, &rs);
    return STRATUS_API_DONE;
}

/* The coordinator of one key: this broker (single node) or, in cluster mode, the owner of the
 * group's coordinator partition; err and msg set when there is none. */
struct coord {
    int32_t node_id;
    struct kstr host;
    int32_t port;
    int16_t err;
    const char *msg;
};

static struct coord find_coord(struct stratus_req *req, int8_t key_type, struct kstr key,
                               const struct stratus_cluster_broker *bs, int32_t nb)
{
    struct stratus_api_ctx *ctx = req->ctx;
    struct coord c = {-1, KSTR_NULL, -1, KAFKA_ERR_NONE, NULL};

    if (key_type == 1) {
        c.err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        c.msg = "transactions are not supported yet";
    } else if (key_type != 0) {
        c.err = KAFKA_ERR_INVALID_REQUEST;
        c.msg = "unknown coordinator key type";
    } else if (!ctx->cluster) {
        c.node_id = ctx->node_id;
        c.host = api_kstr(req, ctx->advertised_host);
        c.port = ctx->advertised_port;
        return c;
    } else {
        char *group = api_cstr(req, key);
        int32_t id = group ? stratus_cluster_group_coordinator(ctx->cluster, group) : -1;
        const struct stratus_cluster_broker *b = api_cluster_find(bs, nb, id);
        if (b) {
            c.node_id = b->id;
            c.host = api_kstr(req, b->host);
            c.port = b->port;
            return c;
        }
        c.err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        c.msg = id < 0 ? "the group's coordinator partition has no owner right now"
                       : "the group's coordinator is not a live broker";
    }
    c.host = api_kstr(req, "");
    return c;
}

int api_findcoordinator(struct stratus_req *req)
{
    struct FindCoordinatorRequest rq;
    struct FindCoordinatorResponse rs;
    struct kread r;
    struct stratus_cluster_broker *bs = NULL;
    int32_t nb = 0;

    FindCoordinatorRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (FindCoordinatorRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed FindCoordinator");
    FindCoordinatorResponse_init(&rs);
    if (req->ctx->cluster)
        api_cluster_brokers(req, &bs, &nb);
    if (req->api_version < 4) {
        struct coord c = find_coord(req, rq.KeyType, rq.Key, bs, nb);
        rs.ErrorCode = c.err;
        rs.ErrorMessage = c.msg ? api_kstr(req, c.msg) : KSTR_NULL;
        rs.NodeId = c.node_id;
        rs.Host = c.host;
        rs.Port = c.port;
    } else {
        int32_t n = rq.CoordinatorKeys.count > 0 ? rq.CoordinatorKeys.count : 0;
        rs.Coordinators.items = API_ALLOC(req, struct FindCoordinatorResponse_Coordinator, n);
        rs.Coordinators.count = rs.Coordinators.items ? n : 0;
        for (int32_t i = 0; i < rs.Coordinators.count; i++) {
            struct FindCoordinatorResponse_Coordinator *o = &rs.Coordinators.items[i];
            struct coord c = find_coord(req, rq.KeyType, rq.CoordinatorKeys.items[i], bs, nb);
            FindCoordinatorResponse_Coordinator_init(o);
            o->Key = rq.CoordinatorKeys.items[i];
            o->ErrorCode = c.err;
            o->ErrorMessage = c.msg ? api_kstr(req, c.msg) : KSTR_NULL;
            o->NodeId = c.node_id;
            o->Host = c.host;
            o->Port = c.port;
        }
    }
    FindCoordinatorResponse_encode(&req->resp, req->api_version, &rs);
    return STRATUS_API_DONE;
}
