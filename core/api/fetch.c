/* fetch.c - Fetch (v4-16): reads from the log cache, cold reads on the I/O pool, and long
 * polls that wake on new durable data.
 *
 * A fetch is evaluated on its network thread: each partition is read from the log cache
 * (stratus_partition_read, non-blocking). A partition whose offset is older than the cache is
 * read from objects by stratus_partition_read_cold on the I/O pool; the fetch then answers when
 * the last cold read is back. Otherwise, when fewer than MinBytes are available and MaxWaitMs
 * has not passed, the fetch parks on its thread's list with a timer; the engine's commit hook
 * posts one coalesced "wake" to each thread with parked fetches, which re-evaluates them.
 * Fetch sessions (KIP-227) are declined by answering SessionId 0, so every fetch is full.
 * From v13 topics are named by their UUID (KIP-516): an unknown id gets UNKNOWN_TOPIC_ID.
 * In cluster mode a partition this broker does not serve answers NOT_LEADER_OR_FOLLOWER (the
 * engine's read says so); from v12 with its owner as CurrentLeader and, from v16, the owner's
 * endpoint in NodeEndpoints (KIP-951).
 *
 * Zero copy: log-cache reads borrow the batches (stratus_partition_read_lent), cold reads the
 * pieces of the blocks they read (stratus_partition_read_cold_lent), and the response splices
 * Records of FETCH_SPLICE_MIN bytes or more (codec.h kw_splice): the network thread writes
 * them to the socket from the batches or blocks with sendmsg.
 * Ownership: struct fetch_ctx is heap-allocated per parked fetch and owned by its thread's
 * parked list (or, during cold reads, by the count of reads in flight); once answered, by the
 * request (resp_release frees it when the response has been written or dropped). It holds a
 * reference to each partition and owns every result buffer and lent batch until then.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "handlers.h"
#include "metrics/metrics.h"
#include "stream/stream.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/loop.h"

enum { FP_EMPTY = 0, FP_DATA, FP_COLD, FP_ERROR };

struct fetch_part {
    struct stratus_partition *p; /* counted reference, NULL when unknown */
    int32_t topic_idx, partition;
    int64_t offset;
    int32_t max_bytes;
    int state;
    int16_t error;
    struct stratus_fetch_result res;
    struct stratus_lent *segs; /* log-cache batches lent (res.data NULL), nsegs of them */
    int nsegs;
    struct fetch_ctx *fc;
};

/* Records of at least this many bytes are not copied into the response: the network thread
 * writes them from the log cache's batches (or the cold read's buffer) with sendmsg. */
#define FETCH_SPLICE_MIN 4096

struct fetch_thread;

struct fetch_ctx {
    struct stratus_req *req;
    struct FetchRequest rq;
    int nparts;
    struct fetch_part *parts;
    int64_t deadline_ms;
    uint64_t timer;
    atomic_int cold_pending;
    struct fetch_thread *ft;
    struct fetch_ctx *prev, *next; /* parked list */
    int parked;
};

struct fetch_thread {
    struct stratus_loop *loop;
    struct fetch_ctx *parked;
    atomic_int nparked;
    atomic_int wake_pending;
};

#define MAX_THREADS 256
static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fetch_thread *threads[MAX_THREADS];
static int nthreads;
static _Thread_local struct fetch_thread *this_thread;

static void fetch_evaluate(struct fetch_ctx *fc, int expired);

/* Drops what a part read (a cold read's buffer, lent batches). */
static void part_clear(struct fetch_part *fp)
{
    free(fp->res.data);
    fp->res.data = NULL;
    if (fp->segs)
        stratus_lent_release(fp->segs, fp->nsegs);
    fp->segs = NULL;
    fp->nsegs = 0;
}

static void fetch_free(struct fetch_ctx *fc)
{
    for (int i = 0; i < fc->nparts; i++) {
        part_clear(&fc->parts[i]);
        if (fc->parts[i].p)
            stratus_partition_release(fc->parts[i].p);
    }
    free(fc->parts);
    free(fc);
}

static void unpark(struct fetch_ctx *fc)
{
    struct fetch_thread *ft = fc->ft;

    if (!fc->parked)
        return;
    if (fc->prev)
        fc->prev->next = fc->next;
    else
        ft->parked = fc->next;
    if (fc->next)
        fc->next->prev = fc->prev;
    fc->parked = 0;
    atomic_fetch_sub(&ft->nparked, 1);
    stratus_loop_timer_cancel(ft->loop, fc->timer);
}

static void fetch_release(void *arg)
{
    fetch_free(arg);
}

/* Replaces each splice of a part's marker (fetch_respond) by the part's lent batches. */
static void expand_splices(struct fetch_ctx *fc, struct kwrite *w)
{
    size_t extra = 0, n = 0, markers = 0;
    uintptr_t lo = (uintptr_t)fc->parts, hi = (uintptr_t)(fc->parts + fc->nparts);

    for (size_t i = 0; i < w->nsplices; i++) {
        uintptr_t a = (uintptr_t)w->splices[i].p;
        if (a >= lo && a < hi) {
            markers++;
            extra += (size_t)((const struct fetch_part *)w->splices[i].p)->nsegs - 1;
        }
    }
    if (!markers)
        return;
    struct kw_splice *v = malloc((w->nsplices + extra) * sizeof *v);
    if (!v) {
        w->err = STRATUS_ENOMEM;
        return;
    }
    for (size_t i = 0; i < w->nsplices; i++) {
        uintptr_t a = (uintptr_t)w->splices[i].p;
        if (a >= lo && a < hi) {
            const struct fetch_part *fp = (const struct fetch_part *)w->splices[i].p;
            for (int j = 0; j < fp->nsegs; j++)
                v[n++] = (struct kw_splice){w->splices[i].off, fp->segs[j].data,
                                            fp->segs[j].len};
        } else {
            v[n++] = w->splices[i];
        }
    }
    free(w->splices);
    w->splices = v;
    w->nsplices = w->splices_cap = n;
}

/* Encodes the response from the parts, frees the context, and finishes the request (unless
 * the handler is still on the stack: then it returns DONE itself). */
static void fetch_respond(struct fetch_ctx *fc, int from_handler)
{
    struct stratus_req *req = fc->req;
    struct FetchResponse rs;
    int32_t ntopics = fc->rq.Topics.count > 0 ? fc->rq.Topics.count : 0;

    struct api_hints hints;
    int hinting = req->ctx->cluster && req->api_version >= 12;

    /* Small reads: one contiguous copy; larger ones are spliced (see FETCH_SPLICE_MIN). */
    for (int i = 0; i < fc->nparts; i++) {
        struct fetch_part *fp = &fc->parts[i];
        if (fp->segs && fp->res.len < FETCH_SPLICE_MIN) {
            uint8_t *d = malloc(fp->res.len);
            size_t o = 0;
            if (d)
                for (int j = 0; j < fp->nsegs; j++) {
                    memcpy(d + o, fp->segs[j].data, fp->segs[j].len);
                    o += fp->segs[j].len;
                }
            stratus_lent_release(fp->segs, fp->nsegs);
            fp->segs = NULL;
            fp->nsegs = 0;
            fp->res.data = d;
            if (!d) {
                fp->res.len = 0;
                fp->error = KAFKA_ERR_KAFKA_STORAGE_ERROR;
            }
        }
    }
    req->resp.splice_min = FETCH_SPLICE_MIN;
    FetchResponse_init(&rs);
    rs.SessionId = 0;
    if (hinting)
        api_hints_init(&hints, req, fc->nparts);
    rs.Responses.items = API_ALLOC(req, struct FetchResponse_FetchableTopicResponse, ntopics);
    rs.Responses.count = rs.Responses.items ? ntopics : 0;
    int k = 0;
    for (int32_t i = 0; i < rs.Responses.count; i++) {
        const struct FetchRequest_FetchTopic *ft = &fc->rq.Topics.items[i];
        struct FetchResponse_FetchableTopicResponse *tr = &rs.Responses.items[i];
        int32_t np = ft->Partitions.count > 0 ? ft->Partitions.count : 0;
        FetchResponse_FetchableTopicResponse_init(tr);
        tr->Topic = ft->Topic;
        memcpy(tr->TopicId, ft->TopicId, 16);
        tr->Partitions.items = API_ALLOC(req, struct FetchResponse_PartitionData, np);
        tr->Partitions.count = tr->Partitions.items ? np : 0;
        for (int32_t j = 0; j < np; j++, k++) {
            struct fetch_part *fp = &fc->parts[k];
            if (!tr->Partitions.items)
                continue;
            struct FetchResponse_PartitionData *pd = &tr->Partitions.items[j];
            FetchResponse_PartitionData_init(pd);
            pd->PartitionIndex = fp->partition;
            pd->ErrorCode = fp->error;
            pd->HighWatermark = fp->p ? fp->res.high_watermark : -1;
            pd->LastStableOffset = fp->p ? fp->res.last_stable_offset : -1;
            pd->LogStartOffset = fp->p ? fp->res.log_start_offset : -1;
            pd->AbortedTransactions.count = fc->rq.IsolationLevel ? 0 : -1;
            pd->PreferredReadReplica = -1;
            /* lent batches: a marker the codec splices (len >= FETCH_SPLICE_MIN), replaced
             * by the batches themselves below */
            pd->Records.p = fp->segs ? (const uint8_t *)fp : fp->res.data;
            pd->Records.len = (int32_t)fp->res.len;
            if (hinting && fp->error == KAFKA_ERR_NOT_LEADER_OR_FOLLOWER && fp->p)
                api_hints_add(&hints, stratus_partition_topic(fp->p), fp->partition,
                              &pd->CurrentLeader.LeaderId, &pd->CurrentLeader.LeaderEpoch);
            if (fp->p && fp->segs)
                for (int s = 0; s < fp->nsegs; s++)
                    stratus_metrics_topic_io(STRATUS_METRICS_TOPIC_OUT,
                                             stratus_partition_topic(fp->p), fp->segs[s].data,
                                             fp->segs[s].len);
            else if (fp->p)
                stratus_metrics_topic_io(STRATUS_METRICS_TOPIC_OUT, stratus_partition_topic(fp->p),
                                         fp->res.data, fp->res.len);
        }
    }
    if (hinting && req->api_version >= 16) {
        struct stratus_cluster_broker *eps;
        int32_t n = api_hints_endpoints(&hints, &eps);
        rs.NodeEndpoints.items = API_ALLOC(req, struct FetchResponse_NodeEndpoint, n);
        rs.NodeEndpoints.count = rs.NodeEndpoints.items ? n : 0;
        for (int32_t i = 0; i < rs.NodeEndpoints.count; i++) {
            struct FetchResponse_NodeEndpoint *e = &rs.NodeEndpoints.items[i];
            FetchResponse_NodeEndpoint_init(e);
            e->NodeId = eps[i].id;
            e->Host = api_kstr(req, eps[i].host);
            e->Port = eps[i].port;
            e->Rack = api_cluster_rack(req, &eps[i]);
        }
    }
    FetchResponse_encode(&req->resp, req->api_version, &rs);
    req->resp.splice_min = 0;
    if (!req->resp.err)
        expand_splices(fc, &req->resp);
    if (req->resp.err)
        api_protocol_error(req, "fetch response too large");
    /* The spliced bytes are written out after this: fc (and what its parts hold) lives until
     * the request is freed. */
    req->resp_release = fetch_release;
    req->resp_release_arg = fc;
    if (!from_handler)
        stratus_req_finish(req);
}

static void fetch_timeout(void *arg)
{
    struct fetch_ctx *fc = arg;
    fc->timer = 0;
    unpark(fc);
    fetch_evaluate(fc, 1);
}

static void fetch_cold_all_done(void *arg)
{
    struct fetch_ctx *fc = arg;
    fetch_respond(fc, 0);
}

static void fetch_cold_done(void *arg, struct stratus_fetch_result *res)
{
    struct fetch_part *fp = arg;
    struct fetch_ctx *fc = fp->fc;

    fp->res = *res;
    fp->segs = res->segs; /* pieces of the blocks read, lent like log-cache batches */
    fp->nsegs = res->nsegs;
    fp->res.segs = NULL;
    fp->res.nsegs = 0;
    fp->error = res->error;
    fp->state = res->error ? FP_ERROR : FP_DATA;
    if (atomic_fetch_sub(&fc->cold_pending, 1) == 1)
        stratus_loop_post(fc->req->loop, fetch_cold_all_done, fc);
}

/* Reads every partition not yet served; answers, starts cold reads, or parks. */
static void fetch_evaluate(struct fetch_ctx *fc, int expired)
{
    int64_t total = 0, budget = fc->rq.MaxBytes > 0 ? fc->rq.MaxBytes : INT32_MAX;
    int64_t cap = fc->req->ctx->fetch_max_bytes;
    if (cap > 0 && cap < budget)
        budget = cap;
    int errors = 0, ncold = 0;

    for (int i = 0; i < fc->nparts; i++) {
        struct fetch_part *fp = &fc->parts[i];
        if (fp->state == FP_DATA) {
            total += (int64_t)fp->res.len;
            continue;
        }
        if (fp->state == FP_ERROR) {
            errors++;
            continue;
        }
    }
    for (int i = 0; i < fc->nparts; i++) {
        struct fetch_part *fp = &fc->parts[i];
        if (fp->state != FP_EMPTY)
            continue;
        int64_t room = budget - total;
        if (room <= 0 && total > 0)
            continue;
        size_t max = (size_t)(fp->max_bytes < room ? fp->max_bytes : room);
        if (max == 0)
            max = 1;
        part_clear(fp);
        memset(&fp->res, 0, sizeof fp->res);
        int rc = stratus_partition_read_lent(fp->p, fp->offset, max, total == 0, &fp->res,
                                             &fp->segs, &fp->nsegs);
        if (rc == STRATUS_EAGAIN) {
            fp->state = FP_COLD;
            ncold++;
            continue;
        }
        if (rc != 0 || fp->res.error) {
            fp->error = rc != 0 ? KAFKA_ERR_UNKNOWN_SERVER_ERROR : fp->res.error;
            fp->state = FP_ERROR;
            errors++;
            continue;
        }
        if (fp->res.len > 0) {
            fp->state = FP_DATA;
            total += (int64_t)fp->res.len;
        }
    }
    if (ncold) {
        atomic_store(&fc->cold_pending, ncold);
        for (int i = 0; i < fc->nparts; i++) {
            struct fetch_part *fp = &fc->parts[i];
            if (fp->state != FP_COLD)
                continue;
            int64_t room = budget - total;
            size_t max = (size_t)(fp->max_bytes < room ? fp->max_bytes : room);
            if (max == 0)
                max = (size_t)fp->max_bytes;
            stratus_partition_read_cold_lent(fp->p, fp->offset, max, total == 0,
                                             fetch_cold_done, fp);
        }
        return;
    }
    if (expired || errors || total >= fc->rq.MinBytes || fc->rq.MaxWaitMs <= 0 ||
        stratus_mono_ms() >= fc->deadline_ms) {
        fetch_respond(fc, 0);
        return;
    }
    /* Park until new data or the deadline. */
    struct fetch_thread *ft = fc->ft;
    fc->parked = 1;
    fc->prev = NULL;
    fc->next = ft->parked;
    if (ft->parked)
        ft->parked->prev = fc;
    ft->parked = fc;
    atomic_fetch_add(&ft->nparked, 1);
    fc->timer = stratus_loop_timer_at(ft->loop, fc->deadline_ms, fetch_timeout, fc);
}

static void fetch_wake(void *arg)
{
    struct fetch_thread *ft = arg;
    struct fetch_ctx *fc, *next, *list;

    atomic_store(&ft->wake_pending, 0);
    /* Detach the list first: evaluating may park a fetch again. */
    list = ft->parked;
    ft->parked = NULL;
    for (fc = list; fc; fc = fc->next)
        stratus_loop_timer_cancel(ft->loop, fc->timer);
    for (fc = list; fc; fc = next) {
        next = fc->next;
        fc->parked = 0;
        atomic_fetch_sub(&ft->nparked, 1);
        fetch_evaluate(fc, 0);
    }
}

static void commit_hook(void *arg, struct stratus_partition *p)
{
    (void)arg;
    (void)p;
    pthread_mutex_lock(&threads_lock);
    for (int i = 0; i < nthreads; i++) {
        struct fetch_thread *ft = threads[i];
        if (atomic_load(&ft->nparked) > 0 && atomic_exchange(&ft->wake_pending, 1) == 0)
            stratus_loop_post(ft->loop, fetch_wake, ft);
    }
    pthread_mutex_unlock(&threads_lock);
}

void api_fetch_init(struct stratus_api_ctx *ctx)
{
    stratus_stream_set_commit_hook(ctx->stream, commit_hook, NULL);
}

void api_fetch_thread_start(struct stratus_loop *loop)
{
    struct fetch_thread *ft = xcalloc(1, sizeof *ft);
    ft->loop = loop;
    this_thread = ft;
    pthread_mutex_lock(&threads_lock);
    if (nthreads < MAX_THREADS)
        threads[nthreads++] = ft;
    pthread_mutex_unlock(&threads_lock);
}

void api_fetch_thread_stop(struct stratus_loop *loop)
{
    struct fetch_thread *ft = this_thread;
    (void)loop;
    if (!ft)
        return;
    pthread_mutex_lock(&threads_lock);
    for (int i = 0; i < nthreads; i++) {
        if (threads[i] == ft) {
            threads[i] = threads[--nthreads];
            break;
        }
    }
    pthread_mutex_unlock(&threads_lock);
    /* Parked fetches are answered as expired; their responses may not leave anymore. */
    while (ft->parked) {
        struct fetch_ctx *fc = ft->parked;
        unpark(fc);
        fetch_respond(fc, 0);
    }
    this_thread = NULL;
    free(ft);
}


int api_fetch(struct stratus_req *req)
{
    struct fetch_ctx *fc = xcalloc(1, sizeof *fc);
    struct kread r;
    int n = 0;

    fc->req = req;
    fc->ft = this_thread;
    FetchRequest_init(&fc->rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (FetchRequest_decode(&r, req->api_version, &fc->rq) != 0 || r.err || !fc->ft) {
        free(fc);
        return api_protocol_error(req, "malformed Fetch");
    }
    for (int32_t i = 0; i < fc->rq.Topics.count; i++)
        n += fc->rq.Topics.items[i].Partitions.count > 0 ? fc->rq.Topics.items[i].Partitions.count
                                                         : 0;
    fc->parts = xcalloc((size_t)(n ? n : 1), sizeof *fc->parts);
    fc->nparts = n;
    int k = 0;
    for (int32_t i = 0; i < fc->rq.Topics.count; i++) {
        const struct FetchRequest_FetchTopic *ft = &fc->rq.Topics.items[i];
        struct stratus_topic_info ti;
        char *topic = NULL;
        int16_t unknown = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        if (req->api_version >= 13) {
            /* v13+: the topic is named by its id only. */
            unknown = KAFKA_ERR_UNKNOWN_TOPIC_ID;
            if (stratus_stream_find_topic_id(req->ctx->stream, ft->TopicId, &ti) == 0)
                topic = api_cstr(req, kstr_from(ti.name));
        } else {
            topic = api_cstr(req, ft->Topic);
        }
        for (int32_t j = 0; j < ft->Partitions.count; j++, k++) {
            struct fetch_part *fp = &fc->parts[k];
            const struct FetchRequest_FetchPartition *rp = &ft->Partitions.items[j];
            fp->fc = fc;
            fp->topic_idx = i;
            fp->partition = rp->Partition;
            fp->offset = rp->FetchOffset;
            fp->max_bytes = rp->PartitionMaxBytes > 0 ? rp->PartitionMaxBytes : 1;
            fp->p = topic ? stratus_stream_partition(req->ctx->stream, topic, rp->Partition)
                          : NULL;
            if (!fp->p) {
                fp->state = FP_ERROR;
                fp->error = topic ? KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION : unknown;
            }
        }
    }
    fc->deadline_ms = stratus_mono_ms() + (fc->rq.MaxWaitMs > 0 ? fc->rq.MaxWaitMs : 0);
    /* An answer given at once calls stratus_req_finish() while this handler is on the stack;
     * the network layer treats that as DONE (see net.c). */
    fetch_evaluate(fc, 0);
    return STRATUS_API_PENDING;
}
