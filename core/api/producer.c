/* producer.c - idempotent producers: InitProducerId (v0-5) and DescribeProducers (v0).
 *
 * InitProducerId without a transactional id allocates a new producer id from the persisted
 * index counter ("producer", synced before the answer, so ids are never reused across
 * restarts), with epoch 0. Given an existing id and epoch (v3+, KIP-360, sent after a sequence
 * error or a timeout), Kafka's coordinator also answers a NEW producer id with epoch 0 for a
 * non-transactional producer (TransactionCoordinator.handleInitProducerId: transactionalId
 * null -> generateProducerId), and so does Stratus: a fresh id has a clean sequence space in
 * every partition and fences nothing it should not. A non-null transactional id is answered
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53): transactions are not supported, and unlike
 * COORDINATOR_NOT_AVAILABLE it is fatal in librdkafka, kafkajs and Java, so a transactional
 * producer fails at once with a clear error instead of retrying forever. (An empty string is
 * treated as null, as librdkafka never sends one.)
 * DescribeProducers reports the producers the partition's state holds (producer.c in the
 * stream engine); coordinator epoch and transaction start offset are -1 (no transactions).
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "stream/stream.h"
#include "util/log.h"

/* ---- InitProducerId ---- */

static void initproducerid_on_worker(struct stratus_req *req)
{
    struct InitProducerIdResponse rs;
    struct stratus_errbuf eb = {{0}};
    int64_t pid = -1;

    InitProducerIdResponse_init(&rs);
    rs.ProducerId = -1;
    rs.ProducerEpoch = -1;
    if (stratus_stream_new_producer_id(req->ctx->stream, &pid, &eb) != 0) {
        LOG_WARN("api", "InitProducerId: %s", eb.msg);
        rs.ErrorCode = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE; /* retriable */
    } else {
        rs.ProducerId = pid;
        rs.ProducerEpoch = 0;
        LOG_DEBUG("api", "InitProducerId producer_id=%lld client_id=%s", (long long)pid,
                  req->client_id);
    }
    InitProducerIdResponse_encode(&req->resp, req->api_version, &rs);
}

int api_initproducerid(struct stratus_req *req)
{
    struct InitProducerIdRequest rq;
    struct kread r;

    InitProducerIdRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (InitProducerIdRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed InitProducerId");
    if (rq.TransactionalId.len > 0) {
        struct InitProducerIdResponse rs;
        InitProducerIdResponse_init(&rs);
        rs.ErrorCode = KAFKA_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        rs.ProducerId = -1;
        rs.ProducerEpoch = -1;
        LOG_INFO("api", "InitProducerId with a transactional id refused (transactions are not "
                 "supported) client_id=%s", req->client_id);
        InitProducerIdResponse_encode(&req->resp, req->api_version, &rs);
        return STRATUS_API_DONE;
    }
    return api_run_on_worker(req, initproducerid_on_worker);
}

/* ---- DescribeProducers ---- */

int api_describeproducers(struct stratus_req *req)
{
    struct DescribeProducersRequest rq;
    struct DescribeProducersResponse rs;
    struct kread r;

    DescribeProducersRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (DescribeProducersRequest_decode(&r, req->api_version, &rq) != 0 || r.err)
        return api_protocol_error(req, "malformed DescribeProducers");
    DescribeProducersResponse_init(&rs);
    int32_t nt = rq.Topics.count > 0 ? rq.Topics.count : 0;
    rs.Topics.items = API_ALLOC(req, struct DescribeProducersResponse_TopicResponse, nt);
    if (nt && !rs.Topics.items)
        return api_protocol_error(req, "out of memory");
    rs.Topics.count = nt;
    for (int32_t i = 0; i < nt; i++) {
        const struct DescribeProducersRequest_TopicRequest *tq = &rq.Topics.items[i];
        struct DescribeProducersResponse_TopicResponse *tr = &rs.Topics.items[i];
        char *topic = api_cstr(req, tq->Name);
        int32_t np = tq->PartitionIndexes.count > 0 ? tq->PartitionIndexes.count : 0;

        DescribeProducersResponse_TopicResponse_init(tr);
        tr->Name = tq->Name;
        tr->Partitions.items =
            API_ALLOC(req, struct DescribeProducersResponse_PartitionResponse, np);
        if (np && !tr->Partitions.items)
            return api_protocol_error(req, "out of memory");
        tr->Partitions.count = np;
        for (int32_t j = 0; j < np; j++) {
            struct DescribeProducersResponse_PartitionResponse *pr = &tr->Partitions.items[j];
            struct stratus_partition *p;
            struct stratus_producer_info *pi = NULL;
            size_t n = 0;

            DescribeProducersResponse_PartitionResponse_init(pr);
            pr->PartitionIndex = tq->PartitionIndexes.items[j];
            p = topic ? stratus_stream_partition(req->ctx->stream, topic, pr->PartitionIndex)
                      : NULL;
            if (!p) {
                pr->ErrorCode = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            if (stratus_partition_producers(p, &pi, &n) != 0) {
                stratus_partition_release(p);
                pr->ErrorCode = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
                continue;
            }
            stratus_partition_release(p);
            pr->ActiveProducers.items =
                API_ALLOC(req, struct DescribeProducersResponse_ProducerState, n);
            pr->ActiveProducers.count = pr->ActiveProducers.items ? (int32_t)n : 0;
            for (int32_t k = 0; k < pr->ActiveProducers.count; k++) {
                struct DescribeProducersResponse_ProducerState *ps = &pr->ActiveProducers.items[k];
                DescribeProducersResponse_ProducerState_init(ps);
                ps->ProducerId = pi[k].producer_id;
                ps->ProducerEpoch = pi[k].epoch;
                ps->LastSequence = pi[k].last_sequence;
                ps->LastTimestamp = pi[k].last_timestamp;
                ps->CoordinatorEpoch = -1;
                ps->CurrentTxnStartOffset = -1;
            }
            free(pi);
        }
    }
    DescribeProducersResponse_encode(&req->resp, req->api_version, &rs);
    return STRATUS_API_DONE;
}
