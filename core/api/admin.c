/* admin.c - topic administration: CreateTopics (v2-7), DeleteTopics (v1-6), CreatePartitions
 * (v0-3) and DescribeConfigs (v1-4) for topics and this broker.
 *
 * Creating and deleting write the RocksDB catalog, so those handlers run on an I/O worker.
 * Stratus keeps one copy of each partition (durability comes from the object store), so a
 * replication factor other than -1 or 1, or a manual assignment naming another broker, is
 * refused as Kafka refuses it on a single broker. Topic configs are validated by the engine;
 * DescribeConfigs reports them exactly as set, with their sources.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
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
            snprintf(msg, sizeof msg,
                     "Replication factor %d is larger than the 1 available broker; Stratus "
                     "keeps one copy per partition in the object store, use -1 or 1",
                     t->ReplicationFactor);
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
            err = stratus_stream_delete_topic(req->ctx->stream, name, msg, sizeof msg);
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
        err = name ? stratus_stream_create_partitions(req->ctx->stream, name, t->Count,
                                                      rq.ValidateOnly, msg, sizeof msg)
                   : KAFKA_ERR_UNKNOWN_SERVER_ERROR;
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

/* ---- DescribeConfigs ---- */

enum { RES_TOPIC = 2, RES_BROKER = 4, RES_BROKER_LOGGER = 8 };

/* The broker configs reported, as Kafka names them, from the Stratus config. */
struct broker_cfg {
    const char *kafka_name;
    const char *section, *key; /* Stratus key it comes from, or NULL for a constant */
    const char *def;
    int type;
    const char *doc;
};

static const struct broker_cfg broker_cfgs[] = {
    {"node.id", "broker", "node_id", "1", STRATUS_CONFIG_T_INT, "This broker's id"},
    {"broker.id", "broker", "node_id", "1", STRATUS_CONFIG_T_INT, "This broker's id"},
    {"listeners", "broker", "listeners", "PLAINTEXT://127.0.0.1:9092", STRATUS_CONFIG_T_STRING,
     "Listeners"},
    {"advertised.listeners", "broker", "advertised_listeners", NULL, STRATUS_CONFIG_T_STRING,
     "Advertised listeners"},
    {"auto.create.topics.enable", "broker", "auto_create_topics", "true",
     STRATUS_CONFIG_T_BOOLEAN, "Create topics on first use"},
    {"num.partitions", "broker", "num_partitions", "1", STRATUS_CONFIG_T_INT,
     "Partitions of auto-created topics"},
    {"socket.request.max.bytes", "broker", "max_request_size", "104857600",
     STRATUS_CONFIG_T_INT, "Largest request accepted"},
    {"connections.max.idle.ms", "broker", "idle_timeout", "600000", STRATUS_CONFIG_T_LONG,
     "Idle connections are closed after this"},
    {"default.replication.factor", NULL, NULL, "1", STRATUS_CONFIG_T_INT,
     "Stratus keeps one copy per partition in the object store"},
    {"min.insync.replicas", NULL, NULL, "1", STRATUS_CONFIG_T_INT,
     "Stratus keeps one copy per partition in the object store"},
    {"offsets.topic.replication.factor", NULL, NULL, "1", STRATUS_CONFIG_T_SHORT,
     "Stratus keeps one copy per partition in the object store"},
    {"message.max.bytes", NULL, NULL, "16777216", STRATUS_CONFIG_T_INT,
     "Default max.message.bytes of topics"},
    {"log.retention.ms", NULL, NULL, "604800000", STRATUS_CONFIG_T_LONG,
     "Default retention.ms of topics"},
    {"log.retention.bytes", NULL, NULL, "-1", STRATUS_CONFIG_T_LONG,
     "Default retention.bytes of topics"},
    {"delete.topic.enable", NULL, NULL, "true", STRATUS_CONFIG_T_BOOLEAN,
     "Topics can be deleted"},
};

static int key_wanted(const struct DescribeConfigsRequest_DescribeConfigsResource *res,
                      const char *name)
{
    if (res->ConfigurationKeys.count < 0)
        return 1;
    for (int32_t i = 0; i < res->ConfigurationKeys.count; i++)
        if (kstr_eq_cstr(res->ConfigurationKeys.items[i], name))
            return 1;
    return 0;
}

static void add_entry(struct stratus_req *req, int include_synonyms,
                      struct DescribeConfigsResponse_DescribeConfigsResourceResult *c,
                      const char *name, const char *value, int source, int read_only,
                      int sensitive, int type, const char *doc, int include_doc)
{
    DescribeConfigsResponse_DescribeConfigsResourceResult_init(c);
    c->Name = api_kstr(req, name);
    c->Value = sensitive || !value ? KSTR_NULL : api_kstr(req, value);
    c->ReadOnly = (int8_t)read_only;
    c->ConfigSource = (int8_t)source;
    c->IsSensitive = (int8_t)sensitive;
    c->ConfigType = (int8_t)type;
    c->Documentation = include_doc && doc ? api_kstr(req, doc) : KSTR_NULL;
    c->Synonyms.count = 0;
    if (include_synonyms) {
        struct DescribeConfigsResponse_DescribeConfigsSynonym *s =
            API_ALLOC(req, struct DescribeConfigsResponse_DescribeConfigsSynonym, 1);
        if (s) {
            DescribeConfigsResponse_DescribeConfigsSynonym_init(s);
            s->Name = c->Name;
            s->Value = c->Value;
            s->Source = (int8_t)source;
            c->Synonyms.items = s;
            c->Synonyms.count = 1;
        }
    }
}

int api_describeconfigs(struct stratus_req *req)
{
    struct DescribeConfigsRequest rq;
    struct DescribeConfigsResponse rs;
    struct kread r;
    char node[16];

    DescribeConfigsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (DescribeConfigsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed DescribeConfigs");
    snprintf(node, sizeof node, "%d", req->ctx->node_id);
    DescribeConfigsResponse_init(&rs);
    int32_t n = rq.Resources.count > 0 ? rq.Resources.count : 0;
    rs.Results.items = API_ALLOC(req, struct DescribeConfigsResponse_DescribeConfigsResult, n);
    rs.Results.count = rs.Results.items ? n : 0;
    for (int32_t i = 0; i < rs.Results.count; i++) {
        const struct DescribeConfigsRequest_DescribeConfigsResource *res = &rq.Resources.items[i];
        struct DescribeConfigsResponse_DescribeConfigsResult *out = &rs.Results.items[i];
        char *name = api_cstr(req, res->ResourceName);

        DescribeConfigsResponse_DescribeConfigsResult_init(out);
        out->ResourceType = res->ResourceType;
        out->ResourceName = res->ResourceName;
        out->ErrorMessage = KSTR_NULL;
        if (res->ResourceType == RES_TOPIC) {
            struct stratus_config_entry *ce = NULL;
            size_t nc = 0;
            int16_t err =
                name ? stratus_stream_describe_topic_configs(req->ctx->stream, name, &ce, &nc)
                     : KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            if (err) {
                out->ErrorCode = err;
                out->ErrorMessage = api_kstr(req, "Topic does not exist");
                continue;
            }
            out->Configs.items =
                API_ALLOC(req, struct DescribeConfigsResponse_DescribeConfigsResourceResult, nc);
            int32_t k = 0;
            for (size_t j = 0; out->Configs.items && j < nc; j++) {
                if (!key_wanted(res, ce[j].name))
                    continue;
                add_entry(req, rq.IncludeSynonyms, &out->Configs.items[k++], ce[j].name,
                          ce[j].value, ce[j].source, ce[j].read_only, ce[j].sensitive,
                          ce[j].type, ce[j].doc, rq.IncludeDocumentation);
            }
            out->Configs.count = k;
            free(ce);
        } else if (res->ResourceType == RES_BROKER) {
            if (name && name[0] && strcmp(name, node) != 0) {
                out->ErrorCode = KAFKA_ERR_INVALID_REQUEST;
                out->ErrorMessage = api_kstr(req, "Unknown broker id");
                continue;
            }
            size_t nb = sizeof broker_cfgs / sizeof broker_cfgs[0];
            out->Configs.items =
                API_ALLOC(req, struct DescribeConfigsResponse_DescribeConfigsResourceResult, nb);
            int32_t k = 0;
            for (size_t j = 0; out->Configs.items && j < nb; j++) {
                const struct broker_cfg *bc = &broker_cfgs[j];
                const char *v = bc->section
                                    ? stratus_conf_get(req->ctx->conf, bc->section, bc->key)
                                    : NULL;
                int src = v ? STRATUS_CONFIG_SRC_STATIC_BROKER : STRATUS_CONFIG_SRC_DEFAULT;
                if (!key_wanted(res, bc->kafka_name))
                    continue;
                if (!v && bc->section && !strcmp(bc->key, "node_id"))
                    v = node;
                add_entry(req, rq.IncludeSynonyms, &out->Configs.items[k++], bc->kafka_name,
                          v ? v : bc->def, src, 1, 0, bc->type, bc->doc,
                          rq.IncludeDocumentation);
            }
            out->Configs.count = k;
        } else if (res->ResourceType == RES_BROKER_LOGGER) {
            out->Configs.count = 0;
        } else {
            out->ErrorCode = KAFKA_ERR_INVALID_REQUEST;
            out->ErrorMessage = api_kstr(req, "Unsupported resource type");
        }
    }
    DescribeConfigsResponse_encode(&req->resp, req->api_version, &rs);
    return STRATUS_API_DONE;
}
