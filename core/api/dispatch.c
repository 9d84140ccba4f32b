/* dispatch.c - the table of served APIs and their version ranges, ApiVersions, and the
 * routing of each request to its handler.
 *
 * The table here is what Stratus advertises: only APIs and versions that behave as Kafka's do
 * (see shared CLIENTS.md section 6). Produce is advertised from v0 because librdkafka 2.0 looks
 * for v0 to enable compression, but v0-2 requests are refused by closing the connection, as
 * Kafka 4 does. An unsupported API or version closes the connection, except ApiVersions,
 * which answers a too-new version with a v0 body carrying UNSUPPORTED_VERSION.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "handlers.h"
#include "stream/stream.h"
#include "util/log.h"

struct api_entry {
    int16_t key;
    int16_t min;        /* lowest version accepted */
    int16_t adv_min;    /* lowest version advertised (Produce: 0) */
    int16_t max;
    int (*fn)(struct stratus_req *req);
};

static const struct api_entry api_table[] = {
    {KAPI_Produce, 3, 0, 11, api_produce},
    {KAPI_Fetch, 4, 4, 16, api_fetch},
    {KAPI_ListOffsets, 1, 1, 8, api_listoffsets},
    {KAPI_Metadata, 0, 0, 12, api_metadata},
    {KAPI_FindCoordinator, 0, 0, 6, api_findcoordinator},
    {KAPI_ApiVersions, 0, 0, 4, api_apiversions},
    {KAPI_CreateTopics, 2, 2, 7, api_createtopics},
    {KAPI_DeleteTopics, 1, 1, 6, api_deletetopics},
    {KAPI_DescribeConfigs, 1, 1, 4, api_describeconfigs},
    {KAPI_CreatePartitions, 0, 0, 3, api_createpartitions},
    {KAPI_DescribeCluster, 0, 0, 1, api_describecluster},
    {KAPI_OffsetCommit, 2, 2, 9, api_groups},
    {KAPI_OffsetFetch, 1, 1, 9, api_groups},
    {KAPI_JoinGroup, 2, 2, 9, api_groups},
    {KAPI_Heartbeat, 0, 0, 4, api_groups},
    {KAPI_LeaveGroup, 0, 0, 5, api_groups},
    {KAPI_SyncGroup, 0, 0, 5, api_groups},
    {KAPI_DescribeGroups, 0, 0, 5, api_groups},
    {KAPI_ListGroups, 0, 0, 5, api_groups},
    {KAPI_DeleteGroups, 0, 0, 2, api_groups},
    {KAPI_InitProducerId, 0, 0, 5, api_initproducerid},
    {KAPI_DescribeProducers, 0, 0, 0, api_describeproducers},
    {KAPI_DeleteRecords, 0, 0, 2, api_deleterecords},
    {KAPI_AlterConfigs, 0, 0, 2, api_alterconfigs},
    {KAPI_IncrementalAlterConfigs, 0, 0, 1, api_incrementalalterconfigs},
    {KAPI_ListPartitionReassignments, 0, 0, 0, api_listpartitionreassignments},
    {KAPI_AlterPartitionReassignments, 0, 0, 0, api_alterpartitionreassignments},
    {KAPI_DescribeLogDirs, 1, 1, 4, api_describelogdirs},
    {KAPI_DescribeAcls, 1, 1, 3, api_describeacls},
    {KAPI_CreateAcls, 1, 1, 3, api_createacls},
    {KAPI_DeleteAcls, 1, 1, 3, api_deleteacls},
};

#define NAPIS (sizeof api_table / sizeof api_table[0])

static const struct api_entry *find_api(int16_t key)
{
    for (size_t i = 0; i < NAPIS; i++)
        if (api_table[i].key == key)
            return &api_table[i];
    return NULL;
}

int api_protocol_error(struct stratus_req *req, const char *what)
{
    LOG_WARN("api", "closing connection: %s api_key=%d api_version=%d client_id=%s", what,
             req->api_key, req->api_version, req->client_id);
    req->no_response = 1;
    req->close_after = STRATUS_CLOSE_PROTOCOL;
    return STRATUS_API_DONE;
}

char *api_cstr(struct stratus_req *req, struct kstr s)
{
    size_t n = s.len > 0 ? (size_t)s.len : 0;
    char *p = arena_alloc(&req->arena, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s.s, n);
    p[n] = 0;
    return p;
}

struct kstr api_kstr(struct stratus_req *req, const char *s)
{
    size_t n = strlen(s);
    char *p = arena_alloc(&req->arena, n + 1);
    if (!p)
        return KSTR_NULL;
    memcpy(p, s, n + 1);
    return (struct kstr){p, (int32_t)n};
}

static void worker_trampoline(void *arg)
{
    struct stratus_req *req = arg;
    api_worker_fn *fn = (api_worker_fn *)req->api_private_fn;
    fn(req);
    stratus_req_finish(req);
}

int api_run_on_worker(struct stratus_req *req, api_worker_fn *fn)
{
    req->api_private_fn = (void (*)(void))fn;
    if (stratus_stream_submit(req->ctx->stream, worker_trampoline, req) != 0)
        return api_protocol_error(req, "shutting down");
    return STRATUS_API_PENDING;
}

int api_apiversions(struct stratus_req *req)
{
    struct ApiVersionsRequest rq;
    struct ApiVersionsResponse rs;
    struct kread r;
    int16_t version = req->api_version;

    ApiVersionsResponse_init(&rs);
    if (version > 4) {
        /* Too new: a v0 body with UNSUPPORTED_VERSION and our ApiVersions range (KIP-511). */
        static struct ApiVersionsResponse_ApiVersion self = {KAPI_ApiVersions, 0, 4};
        rs.ErrorCode = KAFKA_ERR_UNSUPPORTED_VERSION;
        rs.ApiKeys.items = &self;
        rs.ApiKeys.count = 1;
        ApiVersionsResponse_encode(&req->resp, 0, &rs);
        return STRATUS_API_DONE;
    }
    ApiVersionsRequest_init(&rq);
    kr_init(&r, req->body, req->body_len, &req->arena);
    if (ApiVersionsRequest_decode(&r, version, &rq) != 0 || r.err) {
        /* Kafka answers INVALID_REQUEST here rather than closing. */
        rs.ErrorCode = KAFKA_ERR_INVALID_REQUEST;
    }
    rs.ApiKeys.items = API_ALLOC(req, struct ApiVersionsResponse_ApiVersion, NAPIS);
    if (!rs.ApiKeys.items)
        return api_protocol_error(req, "out of memory");
    rs.ApiKeys.count = (int32_t)NAPIS;
    for (size_t i = 0; i < NAPIS; i++) {
        rs.ApiKeys.items[i].ApiKey = api_table[i].key;
        rs.ApiKeys.items[i].MinVersion = api_table[i].adv_min;
        rs.ApiKeys.items[i].MaxVersion = api_table[i].max;
    }
    ApiVersionsResponse_encode(&req->resp, version, &rs);
    return STRATUS_API_DONE;
}

int stratus_api_handle(struct stratus_req *req)
{
    const struct api_entry *e = find_api(req->api_key);

    if (req->api_key == KAPI_ApiVersions)
        return api_apiversions(req);
    if (!e)
        return api_protocol_error(req, "unsupported API");
    if (req->api_version < e->min || req->api_version > e->max)
        return api_protocol_error(req, "unsupported API version");
    int rc = e->fn(req);
    if (rc == STRATUS_API_DONE && req->resp.err)
        return api_protocol_error(req, "response too large");
    return rc;
}

void stratus_api_init(struct stratus_api_ctx *ctx)
{
    api_fetch_init(ctx);
}

void stratus_api_thread_start(struct stratus_loop *loop)
{
    api_fetch_thread_start(loop);
}

void stratus_api_thread_stop(struct stratus_loop *loop)
{
    api_fetch_thread_stop(loop);
}
