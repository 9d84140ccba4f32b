/* api.h - the request handlers' side of the broker: one decoded request in, one response out.
 *
 * The network layer (core/net) frames a request, decodes its header, and hands a struct
 * stratus_req to stratus_api_handle() on its network thread. A handler either answers at once
 * (writes the response body into req->resp and returns STRATUS_API_DONE) or parks the request
 * (returns STRATUS_API_PENDING) and later, from any thread, calls stratus_req_finish(req) once
 * the body is written. The network layer adds the size prefix and the response header and sends
 * responses of one connection in request order. Handlers never block.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_API_API_H
#define STRATUS_API_API_H

#include <stdint.h>

#include "proto/kafka.h"

struct stratus_stream;
struct stratus_conf;
struct stratus_loop;
struct stratus_group_coord;
struct stratus_cluster;

/* Broker-wide state the handlers read; built by broker.c, read-only while serving. */
struct stratus_api_ctx {
    struct stratus_stream *stream;
    const struct stratus_conf *conf;
    int32_t node_id;
    char advertised_host[256];
    int32_t advertised_port;
    char cluster_id[32];        /* 22-char base64 UUID, as Kafka's */
    int auto_create_topics;     /* auto.create.topics.enable */
    int32_t default_partitions; /* num.partitions */
    int64_t max_request_bytes;
    int64_t fetch_max_bytes; /* cap on a Fetch response's records, under the request's; 0 = none */
    struct stratus_group_coord *groups; /* the group coordinator (core/group) */
    /* Cluster mode: the node agent's view (core/cluster/cluster.h); NULL = single node. Metadata,
     * DescribeCluster, FindCoordinator and reassignments answer from it, and topic admin goes
     * to the metastore through it. */
    struct stratus_cluster *cluster;
};

enum { STRATUS_API_DONE = 0, STRATUS_API_PENDING = 1 };
/* req->close_after: the connection closes once the responses before this one are written, and
 * no later request of it is handled. PROTOCOL counts as a protocol error; REFUSED is an acks=0
 * Produce with a partition refused, Kafka's only way to tell such a client (produce.c). */
enum { STRATUS_CLOSE_PROTOCOL = 1, STRATUS_CLOSE_REFUSED = 2 };

struct stratus_req {
    /* Set by the network layer before stratus_api_handle(); read-only for handlers. */
    struct stratus_api_ctx *ctx;
    struct stratus_loop *loop;    /* the owning network thread's loop */
    int16_t api_key, api_version;
    int32_t correlation_id;
    char client_id[128];          /* NUL-terminated, truncated */
    const uint8_t *body;          /* request body after the header; valid until finished */
    size_t body_len;
    /* The whole request frame holding body: a stratus_rcbuf (util/alloc.h) that a handler may
     * keep beyond the request with stratus_rcbuf_ref (produce: the log cache keeps batches). */
    uint8_t *frame;
    size_t frame_len;
    struct stratus_arena arena;   /* per-request allocations, freed with the request */
    /* Written by the handler. */
    struct kwrite resp;           /* response body (no size prefix, no header) */
    int no_response;              /* send nothing (acks=0 produce) */
    int close_after;              /* close the connection after this: STRATUS_CLOSE_* */
    /* Optional: called once when the request is freed (its response written out or dropped):
     * a response that splices bytes (resp.splice_min, codec.h) releases them here. */
    void (*resp_release)(void *arg);
    void *resp_release_arg;
    /* Private to the network layer. */
    void (*finish_fn)(struct stratus_req *req);
    /* Private to the API layer (the worker function of api_run_on_worker). */
    void (*api_private_fn)(void);
};

/* @locality network thread. Runs the handler for req. */
int stratus_api_handle(struct stratus_req *req);

/* @locality any. Tells the network layer that a parked request's response is ready. */
static inline void stratus_req_finish(struct stratus_req *req)
{
    req->finish_fn(req);
}

/* Called once at startup (wires the engine's commit hook to wake long-poll fetches). */
void stratus_api_init(struct stratus_api_ctx *ctx);

/* @locality network thread. Called by the network layer for each loop at start and stop, so
 * handlers can keep per-thread state (parked fetches). */
void stratus_api_thread_start(struct stratus_loop *loop);
void stratus_api_thread_stop(struct stratus_loop *loop);

#endif
