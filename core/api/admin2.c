/* admin2.c - the rest of the admin surface: DeleteRecords (v0-2), AlterConfigs (v0-2),
 * IncrementalAlterConfigs (v0-1), ListPartitionReassignments (v0), AlterPartitionReassignments
 * (v0), DescribeLogDirs (v1-4), and DescribeAcls / CreateAcls / DeleteAcls (v1-3).
 *
 * Behaviour and its choices:
 *   - DeleteRecords moves each partition's log start durably (stratus_partition_delete_records;
 *     -1 = the high watermark; beyond it OFFSET_OUT_OF_RANGE). It runs on an I/O worker.
 *   - (Incremental)AlterConfigs change topic configs through the engine (validated there,
 *     all-or-nothing per topic). Broker configs are static (stratus.ini, read at start): a
 *     BROKER or BROKER_LOGGER resource is answered INVALID_REQUEST with a message saying so.
 *     APPEND / SUBTRACT apply to list configs only (INVALID_CONFIG otherwise), from the
 *     effective value (the default when unset), as Kafka does.
 *   - One node holds every partition: ListPartitionReassignments is always empty;
 *     AlterPartitionReassignments accepts a target of exactly this broker (a no-op, as Kafka
 *     completes it at once), answers a cancellation NO_REASSIGNMENT_IN_PROGRESS and any other
 *     target INVALID_REPLICA_ASSIGNMENT with a message.
 *   - DescribeLogDirs reports one log dir, "remote://<storage plugin name>" (the convention
 *     Redpanda Console reads for tiered storage), with each partition's bytes at or after its
 *     log start: object ranges from the offset index plus what is not uploaded yet. Total and
 *     usable bytes are -1 (unknown for an object store). The local WAL is not a log dir: it
 *     only holds a copy of data on its way to objects.
 *   - Authorization is off: the ACL APIs answer SECURITY_DISABLED (54) with Kafka's message,
 *     which MirrorMaker 2 and the UIs expect.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "stream/stream.h"
#include "util/log.h"

#define RES_TOPIC 2
#define RES_BROKER 4
#define RES_BROKER_LOGGER 8

static const char *const no_authorizer = "No Authorizer is configured on the broker";

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

/* ---- AlterConfigs / IncrementalAlterConfigs ---- */

/* Error for a resource that is not a topic; 0 for a topic. */
static int16_t config_resource_check(int8_t type, char *msg, size_t cap)
{
    if (type == RES_TOPIC)
        return KAFKA_ERR_NONE;
    if (type == RES_BROKER || type == RES_BROKER_LOGGER) {
        snprintf(msg, cap, "broker configs are static in Stratus: set them in stratus.ini "
                 "(or with --set) and restart the broker");
        return KAFKA_ERR_INVALID_REQUEST;
    }
    snprintf(msg, cap, "unsupported resource type %d", type);
    return KAFKA_ERR_INVALID_REQUEST;
}

static void alterconfigs_on_worker(struct stratus_req *req)
{
    struct AlterConfigsRequest rq;
    struct AlterConfigsResponse rs;
    struct kread r;

    AlterConfigsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    AlterConfigsRequest_decode(&r, req->api_version, &rq);
    AlterConfigsResponse_init(&rs);
    int32_t n = rq.Resources.count > 0 ? rq.Resources.count : 0;
    rs.Responses.items =
        API_ALLOC(req, struct AlterConfigsResponse_AlterConfigsResourceResponse, n);
    rs.Responses.count = rs.Responses.items ? n : 0;
    for (int32_t i = 0; i < rs.Responses.count; i++) {
        const struct AlterConfigsRequest_AlterConfigsResource *rr = &rq.Resources.items[i];
        struct AlterConfigsResponse_AlterConfigsResourceResponse *o = &rs.Responses.items[i];
        char msg[256] = "";
        int16_t err;

        AlterConfigsResponse_AlterConfigsResourceResponse_init(o);
        o->ResourceType = rr->ResourceType;
        o->ResourceName = rr->ResourceName;
        err = config_resource_check(rr->ResourceType, msg, sizeof msg);
        if (!err) {
            char *name = api_cstr(req, rr->ResourceName);
            int32_t nc = rr->Configs.count > 0 ? rr->Configs.count : 0;
            struct stratus_kv *kv = API_ALLOC(req, struct stratus_kv, nc);
            for (int32_t c = 0; kv && c < nc; c++) {
                kv[c].name = api_cstr(req, rr->Configs.items[c].Name);
                kv[c].value = rr->Configs.items[c].Value.len < 0
                                  ? NULL
                                  : api_cstr(req, rr->Configs.items[c].Value);
            }
            if (!name || (nc && !kv))
                err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            else
                err = stratus_stream_alter_topic_configs(req->ctx->stream, name, kv,
                                                         (size_t)nc, 0, rq.ValidateOnly, msg,
                                                         sizeof msg);
            LOG_INFO("api", "alter configs topic=%s n=%d validate_only=%d err=%s %s",
                     name ? name : "?", nc, rq.ValidateOnly, stratus_kerr_name(err), msg);
        }
        o->ErrorCode = err;
        o->ErrorMessage = err && msg[0] ? api_kstr(req, msg) : KSTR_NULL;
    }
    AlterConfigsResponse_encode(&req->resp, req->api_version, &rs);
}

int api_alterconfigs(struct stratus_req *req)
{
    struct AlterConfigsRequest rq;
    struct kread r;

    AlterConfigsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (AlterConfigsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed AlterConfigs");
    return api_run_on_worker(req, alterconfigs_on_worker);
}

/* 1 when the comma-separated list contains item. */
static int list_has(const char *list, const char *item)
{
    size_t il = strlen(item);
    const char *p = list;

    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == il && strncmp(p, item, l) == 0)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

/* APPEND (op 2) or SUBTRACT (op 3) of the comma-separated items of arg to cur; arena string. */
static char *list_apply(struct stratus_req *req, const char *cur, const char *arg, int op)
{
    size_t cap = strlen(cur) + strlen(arg) + 2, o = 0;
    char *out = arena_alloc(&req->arena, cap), *tmp;

    if (!out)
        return NULL;
    out[0] = 0;
    tmp = arena_alloc(&req->arena, cap);
    if (!tmp)
        return NULL;
    /* the kept items of cur */
    snprintf(tmp, cap, "%s", cur);
    for (char *save = NULL, *it = strtok_r(tmp, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        if (op == 3 && list_has(arg, it))
            continue;
        o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? "," : "", it);
    }
    if (op == 2) { /* the new items of arg */
        snprintf(tmp, cap, "%s", arg);
        for (char *save = NULL, *it = strtok_r(tmp, ",", &save); it;
             it = strtok_r(NULL, ",", &save)) {
            if (list_has(out, it))
                continue;
            o += (size_t)snprintf(out + o, cap - o, "%s%s", o ? "," : "", it);
        }
    }
    return out;
}

static void incrementalalterconfigs_on_worker(struct stratus_req *req)
{
    struct IncrementalAlterConfigsRequest rq;
    struct IncrementalAlterConfigsResponse rs;
    struct kread r;

    IncrementalAlterConfigsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    IncrementalAlterConfigsRequest_decode(&r, req->api_version, &rq);
    IncrementalAlterConfigsResponse_init(&rs);
    int32_t n = rq.Resources.count > 0 ? rq.Resources.count : 0;
    rs.Responses.items =
        API_ALLOC(req, struct IncrementalAlterConfigsResponse_AlterConfigsResourceResponse, n);
    rs.Responses.count = rs.Responses.items ? n : 0;
    for (int32_t i = 0; i < rs.Responses.count; i++) {
        const struct IncrementalAlterConfigsRequest_AlterConfigsResource *rr =
            &rq.Resources.items[i];
        struct IncrementalAlterConfigsResponse_AlterConfigsResourceResponse *o =
            &rs.Responses.items[i];
        struct stratus_config_entry *ce = NULL;
        size_t nce = 0;
        char msg[256] = "";
        char *name = NULL;
        int16_t err;

        IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_init(o);
        o->ResourceType = rr->ResourceType;
        o->ResourceName = rr->ResourceName;
        err = config_resource_check(rr->ResourceType, msg, sizeof msg);
        if (!err) {
            name = api_cstr(req, rr->ResourceName);
            err = name ? stratus_stream_describe_topic_configs(req->ctx->stream, name, &ce, &nce)
                       : KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            if (err == KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION)
                snprintf(msg, sizeof msg, "topic %s does not exist", name);
        }
        int32_t nc = rr->Configs.count > 0 ? rr->Configs.count : 0;
        struct stratus_kv *kv = err ? NULL : API_ALLOC(req, struct stratus_kv, nc);
        if (!err && nc && !kv)
            err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        for (int32_t c = 0; !err && c < nc; c++) {
            const struct IncrementalAlterConfigsRequest_AlterableConfig *ac = &rr->Configs.items[c];
            const struct stratus_config_entry *cur = NULL;
            char *cname = api_cstr(req, ac->Name);
            char *val = ac->Value.len < 0 ? NULL : api_cstr(req, ac->Value);

            for (int32_t d = 0; d < c; d++)
                if (kv[d].name && cname && strcmp(kv[d].name, cname) == 0) {
                    err = KAFKA_ERR_INVALID_REQUEST;
                    snprintf(msg, sizeof msg, "config %s is named more than once", cname);
                }
            for (size_t e = 0; cname && e < nce; e++)
                if (strcmp(ce[e].name, cname) == 0)
                    cur = &ce[e];
            kv[c].name = cname;
            switch (ac->ConfigOperation) {
            case 0: /* SET */
                if (!val) {
                    err = KAFKA_ERR_INVALID_REQUEST;
                    snprintf(msg, sizeof msg, "SET of %s needs a value", cname);
                }
                kv[c].value = val;
                break;
            case 1: /* DELETE */
                kv[c].value = NULL;
                break;
            case 2: /* APPEND */
            case 3: /* SUBTRACT */
                if (!cur || cur->type != STRATUS_CONFIG_T_LIST) {
                    err = KAFKA_ERR_INVALID_CONFIG;
                    snprintf(msg, sizeof msg, "Config value %s is not allowed for config key: %s",
                             ac->ConfigOperation == 2 ? "append" : "subtract", cname);
                    break;
                }
                kv[c].value = list_apply(req, cur->value, val ? val : "", ac->ConfigOperation);
                if (!kv[c].value)
                    err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
                break;
            default:
                err = KAFKA_ERR_INVALID_REQUEST;
                snprintf(msg, sizeof msg, "unknown config operation %d", ac->ConfigOperation);
            }
        }
        free(ce);
        if (!err)
            err = stratus_stream_alter_topic_configs(req->ctx->stream, name, kv, (size_t)nc, 1,
                                                     rq.ValidateOnly, msg, sizeof msg);
        if (rr->ResourceType == RES_TOPIC)
            LOG_INFO("api", "incremental alter configs topic=%s n=%d validate_only=%d err=%s %s",
                     name ? name : "?", nc, rq.ValidateOnly, stratus_kerr_name(err), msg);
        o->ErrorCode = err;
        o->ErrorMessage = err && msg[0] ? api_kstr(req, msg) : KSTR_NULL;
    }
    IncrementalAlterConfigsResponse_encode(&req->resp, req->api_version, &rs);
}

int api_incrementalalterconfigs(struct stratus_req *req)
{
    struct IncrementalAlterConfigsRequest rq;
    struct kread r;

    IncrementalAlterConfigsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (IncrementalAlterConfigsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed IncrementalAlterConfigs");
    return api_run_on_worker(req, incrementalalterconfigs_on_worker);
}

/* ---- partition reassignments ---- */

int api_listpartitionreassignments(struct stratus_req *req)
{
    struct ListPartitionReassignmentsRequest rq;
    struct ListPartitionReassignmentsResponse rs;
    struct kread r;

    ListPartitionReassignmentsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (ListPartitionReassignmentsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed ListPartitionReassignments");
    ListPartitionReassignmentsResponse_init(&rs); /* none: one node holds every partition */
    ListPartitionReassignmentsResponse_encode(&req->resp, req->api_version, &rs);
    return STRATUS_API_DONE;
}

int api_alterpartitionreassignments(struct stratus_req *req)
{
    struct AlterPartitionReassignmentsRequest rq;
    struct AlterPartitionReassignmentsResponse rs;
    struct kread r;
    int32_t self = req->ctx->node_id;

    AlterPartitionReassignmentsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (AlterPartitionReassignmentsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed AlterPartitionReassignments");
    AlterPartitionReassignmentsResponse_init(&rs);
    int32_t nt = rq.Topics.count > 0 ? rq.Topics.count : 0;
    rs.Responses.items =
        API_ALLOC(req, struct AlterPartitionReassignmentsResponse_ReassignableTopicResponse, nt);
    if (nt && !rs.Responses.items)
        return api_protocol_error(req, "out of memory");
    rs.Responses.count = nt;
    for (int32_t i = 0; i < nt; i++) {
        const struct AlterPartitionReassignmentsRequest_ReassignableTopic *tq = &rq.Topics.items[i];
        struct AlterPartitionReassignmentsResponse_ReassignableTopicResponse *tr =
            &rs.Responses.items[i];
        char *topic = api_cstr(req, tq->Name);
        int32_t np = tq->Partitions.count > 0 ? tq->Partitions.count : 0;

        AlterPartitionReassignmentsResponse_ReassignableTopicResponse_init(tr);
        tr->Name = tq->Name;
        tr->Partitions.items = API_ALLOC(
            req, struct AlterPartitionReassignmentsResponse_ReassignablePartitionResponse, np);
        if (np && !tr->Partitions.items)
            return api_protocol_error(req, "out of memory");
        tr->Partitions.count = np;
        for (int32_t j = 0; j < np; j++) {
            const struct AlterPartitionReassignmentsRequest_ReassignablePartition *pq =
                &tq->Partitions.items[j];
            struct AlterPartitionReassignmentsResponse_ReassignablePartitionResponse *pr =
                &tr->Partitions.items[j];
            struct stratus_partition *p;
            char msg[200];

            AlterPartitionReassignmentsResponse_ReassignablePartitionResponse_init(pr);
            pr->PartitionIndex = pq->PartitionIndex;
            p = topic ? stratus_stream_partition(req->ctx->stream, topic, pq->PartitionIndex)
                      : NULL;
            if (!p) {
                pr->ErrorCode = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            stratus_partition_release(p);
            if (pq->Replicas.count < 0) {
                pr->ErrorCode = KAFKA_ERR_NO_REASSIGNMENT_IN_PROGRESS;
            } else if (pq->Replicas.count == 1 && pq->Replicas.items[0] == self) {
                pr->ErrorCode = KAFKA_ERR_NONE; /* already there */
            } else {
                pr->ErrorCode = KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT;
                snprintf(msg, sizeof msg, "single-node broker: every partition has exactly one "
                         "replica, on broker %d (data lives in the object store)", self);
                pr->ErrorMessage = api_kstr(req, msg);
            }
        }
    }
    AlterPartitionReassignmentsResponse_encode(&req->resp, req->api_version, &rs);
    return STRATUS_API_DONE;
}

/* ---- DescribeLogDirs ---- */

static int fill_logdir_topic(struct stratus_req *req,
                             struct DescribeLogDirsResponse_DescribeLogDirsTopic *tr,
                             const char *name, const int32_t *parts, int32_t nparts)
{
    struct stratus_topic_info ti;
    int32_t k = 0;

    DescribeLogDirsResponse_DescribeLogDirsTopic_init(tr);
    tr->Name = api_kstr(req, name);
    if (stratus_stream_find_topic(req->ctx->stream, name, &ti) != 0)
        return 0;
    if (!parts)
        nparts = ti.partitions;
    tr->Partitions.items =
        API_ALLOC(req, struct DescribeLogDirsResponse_DescribeLogDirsPartition, nparts);
    if (nparts && !tr->Partitions.items)
        return -1;
    for (int32_t j = 0; j < nparts; j++) {
        int32_t idx = parts ? parts[j] : j;
        struct stratus_partition *p = stratus_stream_partition(req->ctx->stream, name, idx);
        struct DescribeLogDirsResponse_DescribeLogDirsPartition *pr = &tr->Partitions.items[k];
        struct stratus_errbuf eb = {{0}};
        uint64_t bytes = 0;

        if (!p)
            continue; /* Kafka leaves out partitions this broker does not have */
        if (stratus_partition_size_bytes(p, &bytes, &eb) != 0)
            LOG_WARN("api", "describe log dirs topic=%s partition=%d: %s", name, idx, eb.msg);
        stratus_partition_release(p);
        DescribeLogDirsResponse_DescribeLogDirsPartition_init(pr);
        pr->PartitionIndex = idx;
        pr->PartitionSize = (int64_t)bytes;
        pr->OffsetLag = 0;
        pr->IsFutureKey = 0;
        k++;
    }
    tr->Partitions.count = k;
    return 0;
}

static void describelogdirs_on_worker(struct stratus_req *req)
{
    struct DescribeLogDirsRequest rq;
    struct DescribeLogDirsResponse rs;
    struct DescribeLogDirsResponse_DescribeLogDirsResult *dr;
    struct kread r;
    char dir[300];

    DescribeLogDirsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    DescribeLogDirsRequest_decode(&r, req->api_version, &rq);
    DescribeLogDirsResponse_init(&rs);
    dr = API_ALLOC(req, struct DescribeLogDirsResponse_DescribeLogDirsResult, 1);
    if (!dr) {
        rs.ErrorCode = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        goto out;
    }
    DescribeLogDirsResponse_DescribeLogDirsResult_init(dr);
    snprintf(dir, sizeof dir, "remote://%s", stratus_stream_storage_name(req->ctx->stream));
    dr->LogDir = api_kstr(req, dir);
    dr->TotalBytes = -1;
    dr->UsableBytes = -1;
    rs.Results.items = dr;
    rs.Results.count = 1;
    if (rq.Topics.count < 0) { /* null: every topic */
        struct stratus_topic_info *ts = NULL;
        size_t n = 0;
        if (stratus_stream_list_topics(req->ctx->stream, &ts, &n) != 0) {
            dr->ErrorCode = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            goto out;
        }
        dr->Topics.items = API_ALLOC(req, struct DescribeLogDirsResponse_DescribeLogDirsTopic, n);
        dr->Topics.count = dr->Topics.items ? (int32_t)n : 0;
        for (int32_t i = 0; i < dr->Topics.count; i++)
            fill_logdir_topic(req, &dr->Topics.items[i], ts[i].name, NULL, 0);
        free(ts);
    } else {
        int32_t k = 0;
        dr->Topics.items = API_ALLOC(req, struct DescribeLogDirsResponse_DescribeLogDirsTopic,
                                     rq.Topics.count);
        for (int32_t i = 0; dr->Topics.items && i < rq.Topics.count; i++) {
            const struct DescribeLogDirsRequest_DescribableLogDirTopic *tq = &rq.Topics.items[i];
            char *name = api_cstr(req, tq->Topic);
            struct stratus_topic_info ti;
            if (!name || stratus_stream_find_topic(req->ctx->stream, name, &ti) != 0)
                continue; /* Kafka omits unknown topics */
            fill_logdir_topic(req, &dr->Topics.items[k++], name, tq->Partitions.items,
                              tq->Partitions.count > 0 ? tq->Partitions.count : 0);
        }
        dr->Topics.count = k;
    }
out:
    DescribeLogDirsResponse_encode(&req->resp, req->api_version, &rs);
}

int api_describelogdirs(struct stratus_req *req)
{
    struct DescribeLogDirsRequest rq;
    struct kread r;

    DescribeLogDirsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (DescribeLogDirsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed DescribeLogDirs");
    return api_run_on_worker(req, describelogdirs_on_worker);
}

/* ---- ACLs: authorization is off ---- */

int api_describeacls(struct stratus_req *req)
{
    struct DescribeAclsRequest rq;
    struct DescribeAclsResponse rs;
    struct kread r;

    DescribeAclsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (DescribeAclsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed DescribeAcls");
    DescribeAclsResponse_init(&rs);
    rs.ErrorCode = KAFKA_ERR_SECURITY_DISABLED;
    rs.ErrorMessage = api_kstr(req, no_authorizer);
    DescribeAclsResponse_encode(&req->resp, req->api_version, &rs);
    return STRATUS_API_DONE;
}

int api_createacls(struct stratus_req *req)
{
    struct CreateAclsRequest rq;
    struct CreateAclsResponse rs;
    struct kread r;

    CreateAclsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (CreateAclsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed CreateAcls");
    CreateAclsResponse_init(&rs);
    int32_t n = rq.Creations.count > 0 ? rq.Creations.count : 0;
    rs.Results.items = API_ALLOC(req, struct CreateAclsResponse_AclCreationResult, n);
    if (n && !rs.Results.items)
        return api_protocol_error(req, "out of memory");
    rs.Results.count = n;
    for (int32_t i = 0; i < n; i++) {
        CreateAclsResponse_AclCreationResult_init(&rs.Results.items[i]);
        rs.Results.items[i].ErrorCode = KAFKA_ERR_SECURITY_DISABLED;
        rs.Results.items[i].ErrorMessage = api_kstr(req, no_authorizer);
    }
    CreateAclsResponse_encode(&req->resp, req->api_version, &rs);
    return STRATUS_API_DONE;
}

int api_deleteacls(struct stratus_req *req)
{
    struct DeleteAclsRequest rq;
    struct DeleteAclsResponse rs;
    struct kread r;

    DeleteAclsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (DeleteAclsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed DeleteAcls");
    DeleteAclsResponse_init(&rs);
    int32_t n = rq.Filters.count > 0 ? rq.Filters.count : 0;
    rs.FilterResults.items = API_ALLOC(req, struct DeleteAclsResponse_DeleteAclsFilterResult, n);
    if (n && !rs.FilterResults.items)
        return api_protocol_error(req, "out of memory");
    rs.FilterResults.count = n;
    for (int32_t i = 0; i < n; i++) {
        DeleteAclsResponse_DeleteAclsFilterResult_init(&rs.FilterResults.items[i]);
        rs.FilterResults.items[i].ErrorCode = KAFKA_ERR_SECURITY_DISABLED;
        rs.FilterResults.items[i].ErrorMessage = api_kstr(req, no_authorizer);
    }
    DeleteAclsResponse_encode(&req->resp, req->api_version, &rs);
    return STRATUS_API_DONE;
}
