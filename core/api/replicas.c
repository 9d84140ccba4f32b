/* replicas.c - where partitions live: ListPartitionReassignments (v0),
 * AlterPartitionReassignments (v0) and DescribeLogDirs (v1-4).
 *
 * Single node: one node holds every partition: ListPartitionReassignments is always empty;
 * AlterPartitionReassignments accepts a target of exactly this broker (a no-op, as Kafka
 * completes it at once), answers a cancellation NO_REASSIGNMENT_IN_PROGRESS and any other target
 * INVALID_REPLICA_ASSIGNMENT with a message.
 * Cluster mode: a partition has one owner, so a reassignment names exactly one replica, the
 * broker to move the partition to (stratus_cluster_reassign, on an I/O worker: it writes the
 * metastore); an empty or null list cancels a pending move; more than one replica is
 * INVALID_REPLICA_ASSIGNMENT. ListPartitionReassignments reports the view's moves as Kafka
 * shows a reassignment in flight: replicas [owner, target], adding [target], removing [owner].
 * DescribeLogDirs reports one log dir,
 * "remote://<storage plugin name>" (the convention Redpanda Console reads for tiered storage),
 * with each partition's bytes at or after its log start: object ranges from the offset index
 * plus what is not uploaded yet. Total and usable bytes are -1 (unknown for an object store).
 * The local WAL is not a log dir: it only holds a copy of data on its way to objects.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "handlers.h"
#include "stream/stream.h"
#include "util/log.h"

/* ---- partition reassignments ---- */

/* 1 when the request asks about (topic, partition): a null topic list asks about all. */
static int move_wanted(const struct ListPartitionReassignmentsRequest *rq,
                       const struct stratus_cluster_move *m)
{
    if (rq->Topics.count < 0)
        return 1;
    for (int32_t i = 0; i < rq->Topics.count; i++) {
        const struct ListPartitionReassignmentsRequest_ListPartitionReassignmentsTopics *t =
            &rq->Topics.items[i];
        if (!kstr_eq_cstr(t->Name, m->topic))
            continue;
        for (int32_t j = 0; j < t->PartitionIndexes.count; j++)
            if (t->PartitionIndexes.items[j] == m->partition)
                return 1;
    }
    return 0;
}

/* An arena array of the one or two ids given (b < 0: only a; a < 0: only b). */
static int32_t ids_of(struct stratus_req *req, int32_t a, int32_t b, int32_t **out)
{
    int32_t *v = API_ALLOC(req, int32_t, 2), n = 0;

    *out = v;
    if (!v)
        return 0;
    if (a >= 0)
        v[n++] = a;
    if (b >= 0 && b != a)
        v[n++] = b;
    return n;
}

/* Cluster mode: the view's moves, grouped by topic (the view lists them in any order), one
 * per partition. An owner of -1 (none right now) leaves replicas [target] and removing []. */
static int list_moves(struct stratus_req *req, const struct ListPartitionReassignmentsRequest *rq,
                      struct ListPartitionReassignmentsResponse *rs)
{
    struct stratus_cluster_move *ms = NULL;
    size_t n = 0;

    if (stratus_cluster_moves(req->ctx->cluster, &ms, &n) != 0) {
        rs->ErrorCode = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        rs->ErrorMessage = api_kstr(req, "the cluster view could not list reassignments");
        return 0;
    }
    /* at most one topic entry per move */
    rs->Topics.items =
        API_ALLOC(req, struct ListPartitionReassignmentsResponse_OngoingTopicReassignment, n);
    if (n && !rs->Topics.items)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        const struct stratus_cluster_move *m = &ms[i];
        struct ListPartitionReassignmentsResponse_OngoingTopicReassignment *t = NULL;
        if (!move_wanted(rq, m))
            continue;
        for (int32_t k = 0; k < rs->Topics.count && !t; k++)
            if (kstr_eq_cstr(rs->Topics.items[k].Name, m->topic))
                t = &rs->Topics.items[k];
        if (!t) {
            t = &rs->Topics.items[rs->Topics.count++];
            ListPartitionReassignmentsResponse_OngoingTopicReassignment_init(t);
            t->Name = api_kstr(req, m->topic);
            /* room for every move of this topic */
            t->Partitions.items = API_ALLOC(
                req, struct ListPartitionReassignmentsResponse_OngoingPartitionReassignment, n);
            if (!t->Partitions.items)
                goto oom;
            t->Partitions.count = 0;
        }
        int dup = 0; /* a move in flight and a newer request for it: the first is shown */
        for (int32_t k = 0; k < t->Partitions.count; k++)
            dup |= t->Partitions.items[k].PartitionIndex == m->partition;
        if (dup)
            continue;
        struct ListPartitionReassignmentsResponse_OngoingPartitionReassignment *p =
            &t->Partitions.items[t->Partitions.count++];
        ListPartitionReassignmentsResponse_OngoingPartitionReassignment_init(p);
        p->PartitionIndex = m->partition;
        p->Replicas.count = ids_of(req, m->owner, m->target, &p->Replicas.items);
        p->AddingReplicas.count = ids_of(req, m->target, -1, &p->AddingReplicas.items);
        p->RemovingReplicas.count = ids_of(req, m->owner, -1, &p->RemovingReplicas.items);
        if (!p->Replicas.items || !p->AddingReplicas.items || !p->RemovingReplicas.items)
            goto oom;
    }
    free(ms);
    return 0;
oom:
    free(ms);
    return -1;
}

int api_listpartitionreassignments(struct stratus_req *req)
{
    struct ListPartitionReassignmentsRequest rq;
    struct ListPartitionReassignmentsResponse rs;
    struct kread r;

    ListPartitionReassignmentsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (ListPartitionReassignmentsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed ListPartitionReassignments");
    ListPartitionReassignmentsResponse_init(&rs); /* single node: none */
    if (req->ctx->cluster && list_moves(req, &rq, &rs) != 0)
        return api_protocol_error(req, "out of memory");
    ListPartitionReassignmentsResponse_encode(&req->resp, req->api_version, &rs);
    return STRATUS_API_DONE;
}

/* How one partition of an AlterPartitionReassignments request is answered: its error code, with
 * a message in msg (cap msgcap) when there is one to give. topic is NULL when out of memory. */
typedef int16_t
reassign_fn(struct stratus_req *req,
            const char *topic,
            const struct AlterPartitionReassignmentsRequest_ReassignablePartition *pq,
            char *msg,
            size_t msgcap);

/* Cluster mode (on an I/O worker): null or [] cancels a pending move, [b] asks the controller
 * to move the partition to broker b, more than one replica is refused. */
static int16_t
reassign_in_cluster(struct stratus_req *req,
                    const char *topic,
                    const struct AlterPartitionReassignmentsRequest_ReassignablePartition *pq,
                    char *msg,
                    size_t msgcap)
{
    if (!topic)
        return KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    if (pq->Replicas.count > 1) {
        snprintf(msg, msgcap, "Stratus keeps one owner per partition; give exactly one replica");
        return KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT;
    }
    int32_t target = pq->Replicas.count == 1 ? pq->Replicas.items[0] : -1;
    int16_t err =
        stratus_cluster_reassign(req->ctx->cluster, topic, pq->PartitionIndex, target, msg, msgcap);
    if (err == KAFKA_ERR_NONE)
        LOG_INFO("api", "reassign topic=%s partition=%d target=%d client_id=%s", topic,
                 pq->PartitionIndex, target, req->client_id);
    return err;
}

/* Single node: this broker is already the one replica; nothing else is possible. */
static int16_t
reassign_single_node(struct stratus_req *req,
                     const char *topic,
                     const struct AlterPartitionReassignmentsRequest_ReassignablePartition *pq,
                     char *msg,
                     size_t msgcap)
{
    int32_t self = req->ctx->node_id;
    struct stratus_partition *p =
        topic ? stratus_stream_partition(req->ctx->stream, topic, pq->PartitionIndex) : NULL;

    if (!p)
        return KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    stratus_partition_release(p);
    if (pq->Replicas.count < 0)
        return KAFKA_ERR_NO_REASSIGNMENT_IN_PROGRESS;
    if (pq->Replicas.count == 1 && pq->Replicas.items[0] == self)
        return KAFKA_ERR_NONE; /* already there */
    snprintf(msg, msgcap,
             "single-node broker: every partition has exactly one replica, on "
             "broker %d (data lives in the object store)",
             self);
    return KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT;
}

/* Answers each partition of rq with answer() into rs; the response arrays come from the
 * request's arena. 0, or -1 when out of memory. */
static int reassign_each(struct stratus_req *req,
                         const struct AlterPartitionReassignmentsRequest *rq,
                         reassign_fn *answer,
                         struct AlterPartitionReassignmentsResponse *rs)
{
    AlterPartitionReassignmentsResponse_init(rs);
    int32_t nt = rq->Topics.count > 0 ? rq->Topics.count : 0;
    rs->Responses.items =
        API_ALLOC(req, struct AlterPartitionReassignmentsResponse_ReassignableTopicResponse, nt);
    if (nt && !rs->Responses.items)
        return -1;
    rs->Responses.count = nt;
    for (int32_t i = 0; i < nt; i++) {
        const struct AlterPartitionReassignmentsRequest_ReassignableTopic *tq =
            &rq->Topics.items[i];
        struct AlterPartitionReassignmentsResponse_ReassignableTopicResponse *tr =
            &rs->Responses.items[i];
        char *topic = api_cstr(req, tq->Name);
        int32_t np = tq->Partitions.count > 0 ? tq->Partitions.count : 0;

        AlterPartitionReassignmentsResponse_ReassignableTopicResponse_init(tr);
        tr->Name = tq->Name;
        tr->Partitions.items = API_ALLOC(
            req, struct AlterPartitionReassignmentsResponse_ReassignablePartitionResponse, np);
        if (np && !tr->Partitions.items)
            return -1;
        tr->Partitions.count = np;
        for (int32_t j = 0; j < np; j++) {
            const struct AlterPartitionReassignmentsRequest_ReassignablePartition *pq =
                &tq->Partitions.items[j];
            struct AlterPartitionReassignmentsResponse_ReassignablePartitionResponse *pr =
                &tr->Partitions.items[j];
            char msg[256] = "";

            AlterPartitionReassignmentsResponse_ReassignablePartitionResponse_init(pr);
            pr->PartitionIndex = pq->PartitionIndex;
            pr->ErrorCode = answer(req, topic, pq, msg, sizeof msg);
            pr->ErrorMessage = pr->ErrorCode && msg[0] ? api_kstr(req, msg) : KSTR_NULL;
        }
    }
    return 0;
}

/* Cluster mode, on an I/O worker: each partition's move asked of the controller. */
static void alterpartitionreassignments_on_worker(struct stratus_req *req)
{
    struct AlterPartitionReassignmentsRequest rq;
    struct AlterPartitionReassignmentsResponse rs;
    struct kread r;

    AlterPartitionReassignmentsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    AlterPartitionReassignmentsRequest_decode(&r, req->api_version, &rq); /* checked before */
    if (reassign_each(req, &rq, reassign_in_cluster, &rs) != 0)
        rs.ErrorCode = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    AlterPartitionReassignmentsResponse_encode(&req->resp, req->api_version, &rs);
}

int api_alterpartitionreassignments(struct stratus_req *req)
{
    struct AlterPartitionReassignmentsRequest rq;
    struct AlterPartitionReassignmentsResponse rs;
    struct kread r;

    AlterPartitionReassignmentsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (AlterPartitionReassignmentsRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed AlterPartitionReassignments");
    if (req->ctx->cluster)
        return api_run_on_worker(req, alterpartitionreassignments_on_worker);
    if (reassign_each(req, &rq, reassign_single_node, &rs) != 0)
        return api_protocol_error(req, "out of memory");
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
