/* groups.c - the consumer-group and committed-offset APIs: JoinGroup (2-9), SyncGroup (0-5),
 * Heartbeat (0-4), LeaveGroup (0-5), DescribeGroups (0-5), ListGroups (0-5), DeleteGroups
 * (0-2), OffsetCommit (2-9) and OffsetFetch (1-9).
 *
 * Each request is decoded here on its network thread with the generated codec, handed to the
 * group coordinator (core/group/group.h) and parked; the coordinator thread fills the response
 * struct and calls group_done(), which encodes the body on that thread (the response may point
 * at coordinator-owned bytes valid only then) and finishes the request. The request's arena and
 * response buffer are touched by one thread at a time: the network thread until submit, the
 * coordinator thread afterwards.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "group/group.h"
#include "handlers.h"
#include "util/log.h"

#include <string.h>

struct group_call {
    struct stratus_group_op op;
    struct stratus_req *req;
    const struct kmsg_desc *rs_desc;
};

static void group_done(struct stratus_group_op *op)
{
    struct group_call *gc = op->arg;
    struct stratus_req *req = gc->req;

    if (kmsg_encode(gc->rs_desc, &req->resp, req->api_version, op->rs) != 0 || req->resp.err)
        LOG_WARN("api", "group response not encodable api_key=%d api_version=%d", req->api_key,
                 req->api_version);
    stratus_req_finish(req);
}

/* OffsetCommit's response has the request's shape: one entry per topic and partition. */
static int shape_commit_response(struct stratus_req *req,
                                 const struct OffsetCommitRequest *rq,
                                 struct OffsetCommitResponse *rs)
{
    int32_t nt = rq->Topics.count > 0 ? rq->Topics.count : 0;

    rs->Topics.items = API_ALLOC(req, struct OffsetCommitResponse_OffsetCommitResponseTopic, nt);
    if (nt && !rs->Topics.items)
        return -1;
    rs->Topics.count = nt;
    for (int32_t i = 0; i < nt; i++) {
        const struct OffsetCommitRequest_OffsetCommitRequestTopic *t = &rq->Topics.items[i];
        struct OffsetCommitResponse_OffsetCommitResponseTopic *tr = &rs->Topics.items[i];
        int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
        tr->Name = t->Name;
        tr->Partitions.items =
            API_ALLOC(req, struct OffsetCommitResponse_OffsetCommitResponsePartition, np);
        if (np && !tr->Partitions.items)
            return -1;
        tr->Partitions.count = np;
        for (int32_t j = 0; j < np; j++)
            tr->Partitions.items[j].PartitionIndex = t->Partitions.items[j].PartitionIndex;
    }
    return 0;
}

int api_groups(struct stratus_req *req)
{
    const struct kmsg_desc *qd = kapi_request_desc(req->api_key);
    const struct kmsg_desc *sd = kapi_response_desc(req->api_key);
    struct group_call *gc;
    struct kread r;
    void *rq, *rs;

    if (!qd || !sd || !req->ctx->groups)
        return api_protocol_error(req, "group API without a coordinator");
    gc = API_ALLOC(req, struct group_call, 1);
    rq = arena_alloc(&req->arena, qd->body->size);
    rs = arena_alloc(&req->arena, sd->body->size);
    if (!gc || !rq || !rs)
        return api_protocol_error(req, "out of memory");
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (kmsg_decode(qd, &r, req->api_version, rq) != 0 || r.err)
        return api_protocol_error(req, "malformed group request");
    kstruct_init(sd->body, rs);
    if (req->api_key == KAPI_OffsetCommit && shape_commit_response(req, rq, rs) != 0)
        return api_protocol_error(req, "out of memory");
    gc->req = req;
    gc->rs_desc = sd;
    gc->op.api_key = req->api_key;
    gc->op.api_version = req->api_version;
    gc->op.rq = rq;
    gc->op.rs = rs;
    gc->op.arena = &req->arena;
    gc->op.client_id = req->client_id;
    gc->op.client_host = "";
    gc->op.done = group_done;
    gc->op.arg = gc;
    stratus_group_submit(req->ctx->groups, &gc->op);
    return STRATUS_API_PENDING;
}
