/* topics.c - topic and partition administration: CreateTopics (v2-7), DeleteTopics (v1-6),
 * CreatePartitions (v0-3) and DeleteRecords (v0-2).
 *
 * Creating, deleting and moving a log start write the RocksDB catalog, so these handlers run
 * on an I/O worker. Stratus keeps one copy of each partition (durability comes from the object
 * store), so a replication factor other than -1 or 1, or a manual assignment naming another
 * broker, is refused as Kafka refuses it on a single broker. DeleteRecords moves each
 * partition's log start durably (stratus_partition_delete_records; -1 = the high watermark;
 * beyond it OFFSET_OUT_OF_RANGE; a partition this broker does not own: NOT_LEADER_OR_FOLLOWER,
 * from the engine). In cluster mode topics live in the metastore: create, delete and grow go
 * through the node agent (stratus_cluster_*, which waits until the local catalog shows the
 * change), the controller places partitions, so manual assignments are refused.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "handlers.h"
#include "stream/stream.h"
#include "util/log.h"

/* ---- CreateTopics ---- */

static void fill_created_configs(struct stratus_req *req,
                                 struct CreateTopicsResponse_CreatableTopicResult *tr,
                                 const char *name)
{
    struct stratus_config_entry *ce = NULL;
    size_t n = 0;

    if (stratus_stream_describe_topic_configs(req->ctx->stream, name, &ce, &n) != 0)
        return;
    tr->Configs.items = API_ALLOC(req, struct CreateTopicsResponse_CreatableTopicConfigs, n);
    tr->Configs.count = tr->Configs.items ? (int32_t)n : 0;
    for (int32_t i = 0; i < tr->Configs.count; i++) {
        struct CreateTopicsResponse_CreatableTopicConfigs *c = &tr->Configs.items[i];
        CreateTopicsResponse_CreatableTopicConfigs_init(c);
        c->Name = api_kstr(req, ce[i].name);
        c->Value = api_kstr(req, ce[i].value);
        c->ReadOnly = (int8_t)ce[i].read_only;
        c->ConfigSource = (int8_t)ce[i].source;
        c->IsSensitive = (int8_t)ce[i].sensitive;
    }
    free(ce);
}

static void createtopics_on_worker(struct stratus_req *req)
{
    struct CreateTopicsRequest rq;
    struct CreateTopicsResponse rs;
    struct kread r;

    CreateTopicsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    CreateTopicsRequest_decode(&r, req->api_version, &rq);
    CreateTopicsResponse_init(&rs);
    int32_t n = rq.Topics.count > 0 ? rq.Topics.count : 0;
    rs.Topics.items = API_ALLOC(req, struct CreateTopicsResponse_CreatableTopicResult, n);
    rs.Topics.count = rs.Topics.items ? n : 0;
    for (int32_t i = 0; i < rs.Topics.count; i++) {
        const struct CreateTopicsRequest_CreatableTopic *t = &rq.Topics.items[i];
        struct CreateTopicsResponse_CreatableTopicResult *tr = &rs.Topics.items[i];
        char *name = api_cstr(req, t->Name);
        char msg[256] = "";
        int16_t err = KAFKA_ERR_NONE;
        int32_t partitions = t->NumPartitions;

        CreateTopicsResponse_CreatableTopicResult_init(tr);
        tr->Name = t->Name;
        tr->NumPartitions = -1;
        tr->ReplicationFactor = -1;
        if (!name) {
            err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        } else if (t->ReplicationFactor != -1 && t->ReplicationFactor != 1 &&
                   t->Assignments.count <= 0) {
            err = KAFKA_ERR_INVALID_REPLICATION_FACTOR;
            if (req->ctx->cluster)
                snprintf(msg, sizeof msg,
                         "Replication factor %d refused: Stratus keeps one copy per partition "
                         "in the object store (one owner broker), use -1 or 1",
                         t->ReplicationFactor);
            else
                snprintf(msg, sizeof msg,
                         "Replication factor %d is larger than the 1 available broker; Stratus "
                         "keeps one copy per partition in the object store, use -1 or 1",
                         t->ReplicationFactor);
        } else if (t->Assignments.count > 0 && req->ctx->cluster) {
            err = KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT;
            snprintf(msg, sizeof msg,
                     "manual assignments are not supported in cluster mode: the controller "
                     "places partitions; create the topic, then move partitions with "
                     "AlterPartitionReassignments");
        } else if (t->Assignments.count > 0) {
            if (t->NumPartitions != -1 || t->ReplicationFactor != -1) {
                err = KAFKA_ERR_INVALID_REQUEST;
                snprintf(msg, sizeof msg,
                         "Both numPartitions or replicationFactor and replicasAssignments "
                         "were set");
            }
            for (int32_t a = 0; !err && a < t->Assignments.count; a++) {
                const struct CreateTopicsRequest_CreatableReplicaAssignment *as =
                    &t->Assignments.items[a];
                if (as->PartitionIndex != a || as->BrokerIds.count != 1 ||
                    as->BrokerIds.items[0] != req->ctx->node_id) {
                    err = KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(msg, sizeof msg,
                             "Assignments must name partitions 0..n-1, each on broker %d only",
                             req->ctx->node_id);
                }
            }
            partitions = t->Assignments.count;
        }
        if (!err) {
            int32_t nc = t->Configs.count > 0 ? t->Configs.count : 0;
            struct stratus_kv *kv = API_ALLOC(req, struct stratus_kv, nc);
            for (int32_t c = 0; kv && c < nc; c++) {
                kv[c].name = api_cstr(req, t->Configs.items[c].Name);
                kv[c].value =
                    t->Configs.items[c].Value.len < 0 ? NULL : api_cstr(req, t->Configs.items[c].Value);
            }
            if (nc && !kv)
                err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            else if (req->ctx->cluster)
                err = stratus_cluster_create_topic(
                    req->ctx->cluster, name,
                    partitions != -1
                        ? partitions
                        : (req->ctx->default_partitions > 0 ? req->ctx->default_partitions : 1),
                    kv, (size_t)nc, rq.validateOnly, tr->TopicId, msg, sizeof msg);
            else
                err = stratus_stream_create_topic(req->ctx->stream, name, partitions, kv,
                                                  (size_t)nc, rq.validateOnly, tr->TopicId, msg,
                                                  sizeof msg);
        }
        tr->ErrorCode = err;
        tr->ErrorMessage = KSTR_NULL;
        if (err) {
            tr->ErrorMessage = msg[0] ? api_kstr(req, msg) : KSTR_NULL;
            LOG_INFO("api", "create topic refused topic=%s err=%s msg=%s", name ? name : "?",
                     stratus_kerr_name(err), msg);
            continue;
        }
        struct stratus_topic_info ti;
        tr->ReplicationFactor = 1;
        if (rq.validateOnly) {
            tr->NumPartitions = partitions > 0 ? partitions : req->ctx->default_partitions;
        } else if (stratus_stream_find_topic(req->ctx->stream, name, &ti) == 0) {
            tr->NumPartitions = ti.partitions;
            memcpy(tr->TopicId, ti.id, 16);
            LOG_INFO("api", "created topic=%s partitions=%d client_id=%s", name, ti.partitions,
                     req->client_id);
        }
        if (req->api_version >= 5 && !rq.validateOnly)
            fill_created_configs(req, tr, name);
    }
    CreateTopicsResponse_encode(&req->resp, req->api_version, &rs);
}

int api_createtopics(struct stratus_req *req)
{
    struct CreateTopicsRequest rq;
    struct kread r;

    CreateTopicsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (CreateTopicsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed CreateTopics");
    return api_run_on_worker(req, createtopics_on_worker);
}

/* ---- DeleteTopics ---- */

static void deletetopics_on_worker(struct stratus_req *req)
{
    struct DeleteTopicsRequest rq;
    struct DeleteTopicsResponse rs;
    struct kread r;

    DeleteTopicsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    DeleteTopicsRequest_decode(&r, req->api_version, &rq);
    DeleteTopicsResponse_init(&rs);
    /* v6 names topics in Topics (by name or id); earlier versions in TopicNames. */
    int32_t n = req->api_version >= 6 ? rq.Topics.count : rq.TopicNames.count;
    if (n < 0)
        n = 0;
    rs.Responses.items = API_ALLOC(req, struct DeleteTopicsResponse_DeletableTopicResult, n);
    rs.Responses.count = rs.Responses.items ? n : 0;
    for (int32_t i = 0; i < rs.Responses.count; i++) {
        struct DeleteTopicsResponse_DeletableTopicResult *tr = &rs.Responses.items[i];
        struct stratus_topic_info ti;
        char msg[256] = "";
        char *name = NULL;
        int16_t err = KAFKA_ERR_NONE;

        DeleteTopicsResponse_DeletableTopicResult_init(tr);
        if (req->api_version >= 6) {
            const struct DeleteTopicsRequest_DeleteTopicState *ts = &rq.Topics.items[i];
            if (ts->Name.len >= 0) {
                name = api_cstr(req, ts->Name);
                tr->Name = ts->Name;
            } else if (stratus_stream_find_topic_id(req->ctx->stream, ts->TopicId, &ti) == 0) {
                name = api_cstr(req, kstr_from(ti.name));
                tr->Name = api_kstr(req, ti.name);
            } else {
                tr->Name = KSTR_NULL;
                memcpy(tr->TopicId, ts->TopicId, 16);
                err = KAFKA_ERR_UNKNOWN_TOPIC_ID;
            }
        } else {
            name = api_cstr(req, rq.TopicNames.items[i]);
            tr->Name = rq.TopicNames.items[i];
        }
        if (!err && name) {
            if (stratus_stream_find_topic(req->ctx->stream, name, &ti) == 0)
                memcpy(tr->TopicId, ti.id, 16);
            err = req->ctx->cluster
                      ? stratus_cluster_delete_topic(req->ctx->cluster, name, msg, sizeof msg)
                      : stratus_stream_delete_topic(req->ctx->stream, name, msg, sizeof msg);
            if (!err)
                LOG_INFO("api", "deleted topic=%s client_id=%s", name, req->client_id);
        }
        tr->ErrorCode = err;
        tr->ErrorMessage = err && msg[0] ? api_kstr(req, msg) : KSTR_NULL;
    }
    DeleteTopicsResponse_encode(&req->resp, req->api_version, &rs);
}

int api_deletetopics(struct stratus_req *req)
{
    struct DeleteTopicsRequest rq;
    struct kread r;

    DeleteTopicsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (DeleteTopicsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed DeleteTopics");
    return api_run_on_worker(req, deletetopics_on_worker);
}

/* ---- CreatePartitions ---- */

static void createpartitions_on_worker(struct stratus_req *req)
{
    struct CreatePartitionsRequest rq;
    struct CreatePartitionsResponse rs;
    struct kread r;

    CreatePartitionsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    CreatePartitionsRequest_decode(&r, req->api_version, &rq);
    CreatePartitionsResponse_init(&rs);
    int32_t n = rq.Topics.count > 0 ? rq.Topics.count : 0;
    rs.Results.items = API_ALLOC(req, struct CreatePartitionsResponse_CreatePartitionsTopicResult, n);
    rs.Results.count = rs.Results.items ? n : 0;
    for (int32_t i = 0; i < rs.Results.count; i++) {
        const struct CreatePartitionsRequest_CreatePartitionsTopic *t = &rq.Topics.items[i];
        struct CreatePartitionsResponse_CreatePartitionsTopicResult *tr = &rs.Results.items[i];
        char msg[256] = "";
        char *name = api_cstr(req, t->Name);
        int16_t err;

        CreatePartitionsResponse_CreatePartitionsTopicResult_init(tr);
        tr->Name = t->Name;
        if (!name)
            err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        else if (req->ctx->cluster)
            err = stratus_cluster_create_partitions(req->ctx->cluster, name, t->Count,
                                                    rq.ValidateOnly, msg, sizeof msg);
        else
            err = stratus_stream_create_partitions(req->ctx->stream, name, t->Count,
                                                   rq.ValidateOnly, msg, sizeof msg);
        tr->ErrorCode = err;
        tr->ErrorMessage = err && msg[0] ? api_kstr(req, msg) : KSTR_NULL;
    }
    CreatePartitionsResponse_encode(&req->resp, req->api_version, &rs);
}

int api_createpartitions(struct stratus_req *req)
{
    struct CreatePartitionsRequest rq;
    struct kread r;

    CreatePartitionsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (CreatePartitionsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed CreatePartitions");
    return api_run_on_worker(req, createpartitions_on_worker);
}

/* ---- DeleteRecords ---- */

static void deleterecords_on_worker(struct stratus_req *req)
{
    struct DeleteRecordsRequest rq;
    struct DeleteRecordsResponse rs;
    struct kread r;

    DeleteRecordsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    DeleteRecordsRequest_decode(&r, req->api_version, &rq);
    DeleteRecordsResponse_init(&rs);
    int32_t nt = rq.Topics.count > 0 ? rq.Topics.count : 0;
    rs.Topics.items = API_ALLOC(req, struct DeleteRecordsResponse_DeleteRecordsTopicResult, nt);
    rs.Topics.count = rs.Topics.items ? nt : 0;
    for (int32_t i = 0; i < rs.Topics.count; i++) {
        const struct DeleteRecordsRequest_DeleteRecordsTopic *tq = &rq.Topics.items[i];
        struct DeleteRecordsResponse_DeleteRecordsTopicResult *tr = &rs.Topics.items[i];
        char *topic = api_cstr(req, tq->Name);
        int32_t np = tq->Partitions.count > 0 ? tq->Partitions.count : 0;

        DeleteRecordsResponse_DeleteRecordsTopicResult_init(tr);
        tr->Name = tq->Name;
        tr->Partitions.items =
            API_ALLOC(req, struct DeleteRecordsResponse_DeleteRecordsPartitionResult, np);
        tr->Partitions.count = tr->Partitions.items ? np : 0;
        for (int32_t j = 0; j < tr->Partitions.count; j++) {
            const struct DeleteRecordsRequest_DeleteRecordsPartition *pq =
                &tq->Partitions.items[j];
            struct DeleteRecordsResponse_DeleteRecordsPartitionResult *pr =
                &tr->Partitions.items[j];
            struct stratus_partition *p;
            char msg[256];

            DeleteRecordsResponse_DeleteRecordsPartitionResult_init(pr);
            pr->PartitionIndex = pq->PartitionIndex;
            pr->LowWatermark = -1;
            p = topic ? stratus_stream_partition(req->ctx->stream, topic, pq->PartitionIndex)
                      : NULL;
            if (!p) {
                pr->ErrorCode = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (req->ctx->cluster) {
                /* not owned here (as the view says): the engine would refuse it too */
                int32_t owner, epoch;
                api_cluster_leader(req, topic, pq->PartitionIndex, &owner, &epoch);
                if (owner != stratus_cluster_self(req->ctx->cluster)) {
                    pr->ErrorCode = owner < 0 ? KAFKA_ERR_LEADER_NOT_AVAILABLE
                                              : KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
                    stratus_partition_release(p);
                    continue;
                }
            }
            pr->ErrorCode = stratus_partition_delete_records(p, pq->Offset, &pr->LowWatermark,
                                                             msg, sizeof msg);
            stratus_partition_release(p);
            if (pr->ErrorCode)
                LOG_INFO("api", "delete records topic=%s partition=%d offset=%lld err=%s: %s",
                         topic, pq->PartitionIndex, (long long)pq->Offset,
                         stratus_kerr_name(pr->ErrorCode), msg);
            else
                LOG_INFO("api", "delete records topic=%s partition=%d low_watermark=%lld "
                         "client_id=%s", topic, pq->PartitionIndex,
                         (long long)pr->LowWatermark, req->client_id);
        }
    }
    DeleteRecordsResponse_encode(&req->resp, req->api_version, &rs);
}

int api_deleterecords(struct stratus_req *req)
{
    struct DeleteRecordsRequest rq;
    struct kread r;

    DeleteRecordsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (DeleteRecordsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed DeleteRecords");
    return api_run_on_worker(req, deleterecords_on_worker);
}
