/* produce.c - Produce (v3-11; v0-2 are refused by closing the connection, as Kafka 4 does).
 *
 * Each partition's records go to stratus_partition_append(), which validates them, assigns
 * offsets and queues them to the WAL without blocking. With acks=0 nothing is sent back; with
 * acks=1 or -1 the request parks until every partition's append is durable: the WAL thread's
 * completions count down, and the last one posts the encoding of the response to the
 * request's network thread. Errors are per partition, as Kafka reports them. In cluster mode a
 * partition this broker does not own is refused by the engine with NOT_LEADER_OR_FOLLOWER;
 * from v10 such answers carry the owner as CurrentLeader and its endpoint in NodeEndpoints
 * (KIP-951), so the client goes there without a Metadata round trip. An acks=0 request with a
 * partition refused at once (not the leader, unknown partition, bad batch...) closes the
 * connection after it, as Kafka does: the client has no other way to learn of it, and
 * librdkafka refreshes its metadata on the disconnect instead of producing into the void
 * (after a partition move, until its periodic refresh: 5 minutes by default).
 * A request still waiting when its TimeoutMs passes (the WAL ring full because uploads fail,
 * a stalled disk) is answered then: REQUEST_TIMED_OUT for each partition not yet durable, as
 * Kafka answers acks it could not gather in time. Those appends stay queued and complete later
 * (an idempotent producer's retry waits for the original: partition.c); the completion slots
 * are the context's own, so late completions never touch the finished request.
 * TimeoutMs <= 0 sets no deadline (Kafka would time out at once; with replication factor 1 it
 * never waits, and a local WAL write is the broker's own work).
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "handlers.h"
#include "metrics/metrics.h"
#include "stream/stream.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/loop.h"

struct part_cb;

#define PART_WAITING (-1000) /* part_cb.kerr until the append completes */

struct produce_ctx {
    struct stratus_req *req;   /* NULL once answered; read and written on its loop only */
    struct stratus_loop *loop; /* the request's loop, for completions on other threads */
    struct ProduceResponse rs;
    struct part_cb **cbs; /* per topic: its partitions' completion slots, in slots */
    struct part_cb *slots; /* owned: outlives the request when it timed out */
    atomic_int pending; /* appends not yet durable, + 1 while the handler runs */
    uint64_t timer;     /* TimeoutMs timer on the request's loop; 0 = none */
};

/* One per partition: the WAL thread stores kerr, the network thread applies it to the
 * response after the last completion or at the timeout (atomic: the two may overlap). */
struct part_cb {
    struct produce_ctx *pc;
    struct ProduceResponse_PartitionProduceResponse *pr;
    _Atomic int kerr; /* PART_WAITING, or the completion's error */
};

/* Applies what completed to the response; partitions still waiting get REQUEST_TIMED_OUT.
 * Returns how many were still waiting. */
static int apply_completions(struct produce_ctx *pc)
{
    int waiting = 0;
    for (int32_t i = 0; i < pc->rs.Responses.count; i++) {
        struct ProduceResponse_TopicProduceResponse *tr = &pc->rs.Responses.items[i];
        struct part_cb *cbs = tr->PartitionResponses.count > 0 ? pc->cbs[i] : NULL;
        for (int32_t j = 0; cbs && j < tr->PartitionResponses.count; j++) {
            int kerr = atomic_load(&cbs[j].kerr);
            if (kerr == PART_WAITING) {
                waiting++;
                kerr = KAFKA_ERR_REQUEST_TIMED_OUT;
            }
            if (kerr != KAFKA_ERR_NONE) {
                cbs[j].pr->ErrorCode = (int16_t)kerr;
                cbs[j].pr->BaseOffset = -1;
            }
        }
    }
    return waiting;
}

static void produce_ctx_free(struct produce_ctx *pc)
{
    free(pc->slots);
    free(pc);
}

/* Cluster mode, v10+: CurrentLeader of each NOT_LEADER_OR_FOLLOWER partition, and the
 * endpoints of those leaders. */
static void add_leader_hints(struct produce_ctx *pc)
{
    struct stratus_req *req = pc->req;
    struct api_hints h;
    struct stratus_cluster_broker *eps;
    int32_t total = 0, n;

    if (!req->ctx->cluster || req->api_version < 10)
        return;
    for (int32_t i = 0; i < pc->rs.Responses.count; i++)
        total += pc->rs.Responses.items[i].PartitionResponses.count;
    api_hints_init(&h, req, total);
    for (int32_t i = 0; i < pc->rs.Responses.count; i++) {
        struct ProduceResponse_TopicProduceResponse *tr = &pc->rs.Responses.items[i];
        char *topic = NULL;
        for (int32_t j = 0; j < tr->PartitionResponses.count; j++) {
            struct ProduceResponse_PartitionProduceResponse *pr = &tr->PartitionResponses.items[j];
            if (pr->ErrorCode != KAFKA_ERR_NOT_LEADER_OR_FOLLOWER)
                continue;
            if (!topic && !(topic = api_cstr(req, tr->Name)))
                return;
            api_hints_add(&h, topic, pr->Index, &pr->CurrentLeader.LeaderId,
                          &pr->CurrentLeader.LeaderEpoch);
        }
    }
    n = api_hints_endpoints(&h, &eps);
    pc->rs.NodeEndpoints.items = API_ALLOC(req, struct ProduceResponse_NodeEndpoint, n);
    pc->rs.NodeEndpoints.count = pc->rs.NodeEndpoints.items ? n : 0;
    for (int32_t i = 0; i < pc->rs.NodeEndpoints.count; i++) {
        struct ProduceResponse_NodeEndpoint *e = &pc->rs.NodeEndpoints.items[i];
        ProduceResponse_NodeEndpoint_init(e);
        e->NodeId = eps[i].id;
        e->Host = api_kstr(req, eps[i].host);
        e->Port = eps[i].port;
        e->Rack = api_cluster_rack(req, &eps[i]);
    }
}

/* Encodes the response and finishes the request (on its loop). */
static void produce_answer(struct produce_ctx *pc)
{
    struct stratus_req *req = pc->req;

    if (apply_completions(pc)) /* rare: the registry's lookup is cheap enough */
        stratus_metric_add(stratus_metrics_counter("stratus_produce_timeouts_total",
                                                   "Produce requests answered REQUEST_TIMED_OUT "
                                                   "at their TimeoutMs, appends still waiting"),
                           1);
    add_leader_hints(pc);
    ProduceResponse_encode(&req->resp, req->api_version, &pc->rs);
    if (req->resp.err)
        api_protocol_error(req, "response too large");
    pc->req = NULL;
    stratus_req_finish(req);
}

/* Posted by the last completion: answers, unless the timeout did; frees the context. */
static void produce_respond(void *arg)
{
    struct produce_ctx *pc = arg;

    if (pc->req) {
        if (pc->timer)
            stratus_loop_timer_cancel(pc->req->loop, pc->timer);
        produce_answer(pc);
    }
    produce_ctx_free(pc);
}

/* TimeoutMs passed with appends still waiting: answer now; the last completion frees. */
static void produce_timeout(void *arg)
{
    struct produce_ctx *pc = arg;

    pc->timer = 0;
    if (!pc->req)
        return;
    LOG_DEBUG("api", "produce timed out waiting for the WAL client_id=%s", pc->req->client_id);
    produce_answer(pc);
}

static void produce_part_done(void *arg, int16_t kerr)
{
    struct part_cb *cb = arg;
    struct produce_ctx *pc = cb->pc;

    atomic_store(&cb->kerr, kerr);
    /* A refused post means the loop has stopped (shutdown; the WAL gives up on what it
     * holds after the network threads are joined): nothing answers, fires or frees there. */
    if (atomic_fetch_sub(&pc->pending, 1) == 1 &&
        stratus_loop_post(pc->loop, produce_respond, pc) != 0)
        produce_ctx_free(pc);
}

/* acks=0: the request is gone by the time the append is durable; nothing to do. */
static void produce_noop_done(void *arg, int16_t kerr)
{
    (void)arg;
    if (kerr != KAFKA_ERR_NONE)
        LOG_WARN("api", "acks=0 append failed err=%s", stratus_kerr_name(kerr));
}

int api_produce(struct stratus_req *req)
{
    struct ProduceRequest rq;
    struct kread r;
    struct produce_ctx *pc;
    struct stratus_api_ctx *ctx = req->ctx;

    ProduceRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (ProduceRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed Produce");
    int32_t nt = rq.TopicData.count > 0 ? rq.TopicData.count : 0;
    size_t nslots = 0;
    for (int32_t i = 0; i < nt; i++)
        nslots += rq.TopicData.items[i].PartitionData.count > 0
                      ? (size_t)rq.TopicData.items[i].PartitionData.count
                      : 0;
    pc = calloc(1, sizeof *pc);
    if (pc && nslots)
        pc->slots = calloc(nslots, sizeof *pc->slots);
    if (!pc || (nslots && !pc->slots)) {
        free(pc);
        return api_protocol_error(req, "out of memory");
    }
    pc->req = req;
    pc->loop = req->loop;
    atomic_init(&pc->pending, 1);
    ProduceResponse_init(&pc->rs);
    pc->rs.Responses.items = API_ALLOC(req, struct ProduceResponse_TopicProduceResponse, nt);
    if (nt && !pc->rs.Responses.items) {
        produce_ctx_free(pc);
        return api_protocol_error(req, "out of memory");
    }
    pc->rs.Responses.count = nt;
    pc->cbs = API_ALLOC(req, struct part_cb *, nt);
    if (nt && !pc->cbs) {
        produce_ctx_free(pc);
        return api_protocol_error(req, "out of memory");
    }
    size_t slot = 0;
    /* Every partition response is allocated before the first append: once an append is
     * queued its completion may come, so no way out may free the context after that. */
    for (int32_t i = 0; i < nt; i++) {
        int32_t np = rq.TopicData.items[i].PartitionData.count > 0
                         ? rq.TopicData.items[i].PartitionData.count
                         : 0;
        struct ProduceResponse_TopicProduceResponse *tr = &pc->rs.Responses.items[i];
        ProduceResponse_TopicProduceResponse_init(tr);
        tr->PartitionResponses.items =
            API_ALLOC(req, struct ProduceResponse_PartitionProduceResponse, np);
        if (np && !tr->PartitionResponses.items) {
            produce_ctx_free(pc);
            return api_protocol_error(req, "out of memory");
        }
        tr->PartitionResponses.count = np;
    }
    int bad_acks = rq.Acks != 0 && rq.Acks != 1 && rq.Acks != -1;

    /* a request's appends to several partitions share one WAL write (ended on every way out
     * of the loop) */
    int hold = nslots > 1 && rq.Acks != 0;
    if (hold)
        stratus_stream_append_begin(ctx->stream);
    for (int32_t i = 0; i < nt; i++) {
        const struct ProduceRequest_TopicProduceData *td = &rq.TopicData.items[i];
        struct ProduceResponse_TopicProduceResponse *tr = &pc->rs.Responses.items[i];
        char *topic = api_cstr(req, td->Name);
        int32_t np = td->PartitionData.count > 0 ? td->PartitionData.count : 0;

        tr->Name = td->Name;
        struct ProduceResponse_PartitionProduceResponse *prs = tr->PartitionResponses.items;
        struct part_cb *cbs = pc->slots + slot;
        slot += (size_t)np;
        pc->cbs[i] = cbs;
        for (int32_t j = 0; j < np; j++) {
            const struct ProduceRequest_PartitionProduceData *pd = &td->PartitionData.items[j];
            struct ProduceResponse_PartitionProduceResponse *pr = &prs[j];
            ProduceResponse_PartitionProduceResponse_init(pr);
            cbs[j].pc = pc;
            cbs[j].pr = pr;
            atomic_init(&cbs[j].kerr, KAFKA_ERR_NONE); /* answered here, or waits below */
            pr->Index = pd->Index;
            pr->BaseOffset = -1;
            pr->LogAppendTimeMs = -1;
            pr->LogStartOffset = -1;
            if (bad_acks) {
                pr->ErrorCode = KAFKA_ERR_INVALID_REQUIRED_ACKS;
                continue;
            }
            struct stratus_partition *p =
                topic ? stratus_stream_partition(ctx->stream, topic, pd->Index) : NULL;
            if (!p) {
                pr->ErrorCode = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (pd->Records.len <= 0) {
                pr->ErrorCode = KAFKA_ERR_CORRUPT_MESSAGE;
                stratus_partition_release(p);
                continue;
            }
            struct stratus_append_result res;
            memset(&res, 0, sizeof res);
            if (rq.Acks != 0) {
                atomic_store(&cbs[j].kerr, PART_WAITING);
                atomic_fetch_add(&pc->pending, 1);
            }
            /* The records are decoded in place: the log cache keeps them inside the request
             * frame (a reference) instead of a copy. */
            uint8_t *rp = (uint8_t *)(uintptr_t)pd->Records.p;
            int in_frame = req->frame && rp >= req->frame &&
                           (size_t)pd->Records.len <= req->frame_len &&
                           (size_t)(rp - req->frame) <= req->frame_len - (size_t)pd->Records.len;
            stratus_partition_append_owned(p, rp, (size_t)pd->Records.len,
                                           in_frame ? req->frame : NULL, &res,
                                           rq.Acks != 0 ? produce_part_done : produce_noop_done,
                                           rq.Acks != 0 ? (void *)&cbs[j] : NULL);
            stratus_partition_release(p);
            if (res.error != KAFKA_ERR_NONE) { /* refused: no completion comes */
                pr->ErrorCode = res.error;
                if (rq.Acks != 0) {
                    atomic_store(&cbs[j].kerr, KAFKA_ERR_NONE);
                    atomic_fetch_sub(&pc->pending, 1);
                }
                if (res.msg[0])
                    pr->ErrorMessage = api_kstr(req, res.msg);
                LOG_DEBUG("api", "produce refused topic=%s partition=%d err=%s msg=%s", topic,
                          pd->Index, stratus_kerr_name(res.error), res.msg);
                continue;
            }
            pr->BaseOffset = res.base_offset;
            stratus_metrics_topic_io(STRATUS_METRICS_TOPIC_IN, topic, pd->Records.p,
                                     (size_t)pd->Records.len);
            pr->LogAppendTimeMs = res.log_append_time;
            pr->LogStartOffset = res.log_start_offset;
        }
    }
    if (hold)
        stratus_stream_append_end(ctx->stream);
    if (rq.Acks == 0) {
        /* acks=0: no response at all; appends complete in the background. */
        req->no_response = 1;
        for (int32_t i = 0; i < nt && !req->close_after; i++)
            for (int32_t j = 0; j < pc->rs.Responses.items[i].PartitionResponses.count; j++) {
                const struct ProduceResponse_PartitionProduceResponse *pr =
                    &pc->rs.Responses.items[i].PartitionResponses.items[j];
                if (pr->ErrorCode == KAFKA_ERR_NONE)
                    continue;
                char *topic = api_cstr(req, rq.TopicData.items[i].Name);
                LOG_INFO("api", "acks=0 produce refused topic=%s partition=%d err=%s: closing "
                         "the connection so that the client refreshes its metadata client_id=%s",
                         topic ? topic : "?", pr->Index, stratus_kerr_name(pr->ErrorCode),
                         req->client_id);
                req->close_after = STRATUS_CLOSE_REFUSED;
                break;
            }
        produce_ctx_free(pc);
        return STRATUS_API_DONE;
    }
    if (atomic_fetch_sub(&pc->pending, 1) == 1) {
        apply_completions(pc);
        add_leader_hints(pc);
        ProduceResponse_encode(&req->resp, req->api_version, &pc->rs);
        produce_ctx_free(pc);
        return STRATUS_API_DONE;
    }
    /* The last completion posts produce_respond to this loop, which runs after this returns:
     * the timer is set by then. */
    if (rq.TimeoutMs > 0)
        pc->timer = stratus_loop_timer_at(req->loop, stratus_mono_ms() + rq.TimeoutMs,
                                          produce_timeout, pc);
    return STRATUS_API_PENDING;
}
