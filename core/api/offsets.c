/* offsets.c - ListOffsets (v1-8).
 *
 * Timestamps: -1 latest (high watermark), -2 earliest (log start), -3 the record with the
 * largest timestamp (v7+), -4 earliest local (v8+; Stratus keeps no separate local log, so the
 * log start), >= 0 the first offset whose timestamp is at or after it (a RocksDB time lookup:
 * such requests run on an I/O worker). read_committed sees the same high watermark, since
 * Stratus has no transactions yet. In cluster mode a partition this broker does not own (as the
 * cluster view says) answers NOT_LEADER_OR_FOLLOWER (LEADER_NOT_AVAILABLE when it has no owner).
 * SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "cluster/cluster.h"
#include "handlers.h"
#include "stream/stream.h"

static void listoffsets_build(struct stratus_req *req, const struct ListOffsetsRequest *rq,
                              int may_block)
{
    struct ListOffsetsResponse rs;
    int32_t nt = rq->Topics.count > 0 ? rq->Topics.count : 0;

    ListOffsetsResponse_init(&rs);
    rs.Topics.items = API_ALLOC(req, struct ListOffsetsResponse_ListOffsetsTopicResponse, nt);
    rs.Topics.count = rs.Topics.items ? nt : 0;
    for (int32_t i = 0; i < rs.Topics.count; i++) {
        const struct ListOffsetsRequest_ListOffsetsTopic *t = &rq->Topics.items[i];
        struct ListOffsetsResponse_ListOffsetsTopicResponse *tr = &rs.Topics.items[i];
        char *topic = api_cstr(req, t->Name);
        int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;

        ListOffsetsResponse_ListOffsetsTopicResponse_init(tr);
        tr->Name = t->Name;
        tr->Partitions.items =
            API_ALLOC(req, struct ListOffsetsResponse_ListOffsetsPartitionResponse, np);
        tr->Partitions.count = tr->Partitions.items ? np : 0;
        for (int32_t j = 0; j < tr->Partitions.count; j++) {
            const struct ListOffsetsRequest_ListOffsetsPartition *rp = &t->Partitions.items[j];
            struct ListOffsetsResponse_ListOffsetsPartitionResponse *pr = &tr->Partitions.items[j];
            struct stratus_partition *p;
            int64_t log_start, hwm, log_end;

            ListOffsetsResponse_ListOffsetsPartitionResponse_init(pr);
            pr->PartitionIndex = rp->PartitionIndex;
            pr->Timestamp = -1;
            pr->Offset = -1;
            pr->LeaderEpoch = -1;
            p = topic ? stratus_stream_partition(req->ctx->stream, topic, rp->PartitionIndex)
                      : NULL;
            if (!p) {
                pr->ErrorCode = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (req->ctx->cluster) {
                int32_t owner, epoch;
                api_cluster_leader(req, topic, rp->PartitionIndex, &owner, &epoch);
                (void)epoch;
                if (owner != stratus_cluster_self(req->ctx->cluster)) {
                    pr->ErrorCode = owner < 0 ? KAFKA_ERR_LEADER_NOT_AVAILABLE
                                              : KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
                    stratus_partition_release(p);
                    continue;
                }
            }
            stratus_partition_offsets(p, &log_start, &hwm, &log_end);
            pr->LeaderEpoch = stratus_partition_leader_epoch(p);
            if (rp->Timestamp == -1) {
                pr->Offset = hwm;
            } else if (rp->Timestamp == -2 || rp->Timestamp == -4) {
                pr->Offset = log_start;
            } else if ((rp->Timestamp == -3 || rp->Timestamp >= 0) && may_block) {
                struct stratus_errbuf eb;
                int64_t off = -1, ts = -1;
                if (stratus_partition_offset_for_time(p, rp->Timestamp, &off, &ts, &eb) != 0) {
                    pr->ErrorCode = KAFKA_ERR_KAFKA_STORAGE_ERROR;
                } else {
                    pr->Offset = off;
                    pr->Timestamp = ts;
                }
            } else {
                pr->ErrorCode = KAFKA_ERR_INVALID_REQUEST;
            }
            stratus_partition_release(p);
        }
    }
    ListOffsetsResponse_encode(&req->resp, req->api_version, &rs);
}

static int decode(struct stratus_req *req, struct ListOffsetsRequest *rq)
{
    struct kread r;

    ListOffsetsRequest_init(rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    return ListOffsetsRequest_decode(&r, req->api_version, rq) != 0 || r.err ? -1 : 0;
}

static void listoffsets_on_worker(struct stratus_req *req)
{
    struct ListOffsetsRequest rq;

    if (decode(req, &rq) == 0)
        listoffsets_build(req, &rq, 1);
}

int api_listoffsets(struct stratus_req *req)
{
    struct ListOffsetsRequest rq;

    if (decode(req, &rq) != 0)
        return api_protocol_error(req, "malformed ListOffsets");
    for (int32_t i = 0; i < rq.Topics.count; i++)
        for (int32_t j = 0; j < rq.Topics.items[i].Partitions.count; j++) {
            int64_t ts = rq.Topics.items[i].Partitions.items[j].Timestamp;
            if (ts >= 0 || ts == -3)
                return api_run_on_worker(req, listoffsets_on_worker);
        }
    listoffsets_build(req, &rq, 0);
    return STRATUS_API_DONE;
}
