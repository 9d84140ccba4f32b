/* handlers.h - the request handlers of core/api, one per API, and the helpers they share.
 * Every handler runs on the request's network thread unless it says otherwise, never blocks,
 * and returns STRATUS_API_DONE or STRATUS_API_PENDING (see api.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_API_HANDLERS_H
#define STRATUS_API_HANDLERS_H

#include "api.h"
#include "proto/kerr.h"

int api_apiversions(struct stratus_req *req);
int api_metadata(struct stratus_req *req);
int api_produce(struct stratus_req *req);
int api_fetch(struct stratus_req *req);
int api_listoffsets(struct stratus_req *req);
int api_createtopics(struct stratus_req *req);
int api_deletetopics(struct stratus_req *req);
int api_createpartitions(struct stratus_req *req);
int api_describeconfigs(struct stratus_req *req);
int api_describecluster(struct stratus_req *req);
int api_findcoordinator(struct stratus_req *req);
/* Every group and committed-offset API (groups.c): JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
 * DescribeGroups, ListGroups, DeleteGroups, OffsetCommit, OffsetFetch. */
int api_groups(struct stratus_req *req);
/* Idempotent producers (producer.c), topic admin (topics.c), configs (configs.c), partition
 * placement and log dirs (replicas.c), ACLs (acl.c). */
int api_initproducerid(struct stratus_req *req);
int api_describeproducers(struct stratus_req *req);
int api_deleterecords(struct stratus_req *req);
int api_alterconfigs(struct stratus_req *req);
int api_incrementalalterconfigs(struct stratus_req *req);
int api_listpartitionreassignments(struct stratus_req *req);
int api_alterpartitionreassignments(struct stratus_req *req);
int api_describelogdirs(struct stratus_req *req);
int api_describeacls(struct stratus_req *req);
int api_createacls(struct stratus_req *req);
int api_deleteacls(struct stratus_req *req);

/* Marks req as malformed: no response, and the connection closes (as Kafka does). */
int api_protocol_error(struct stratus_req *req, const char *what);

/* Runs fn(req) on an I/O worker (for handlers that must block: RocksDB writes, timestamp
 * lookups); fn writes the response body and the request is finished when it returns. */
typedef void api_worker_fn(struct stratus_req *req);
int api_run_on_worker(struct stratus_req *req, api_worker_fn *fn);

/* A kstr copied into a NUL-terminated arena string ("" for null). */
char *api_cstr(struct stratus_req *req, struct kstr s);
/* A kstr over an arena copy of a C string. */
struct kstr api_kstr(struct stratus_req *req, const char *s);

/* Fetch long-poll wakeups (fetch.c). */
void api_fetch_init(struct stratus_api_ctx *ctx);
void api_fetch_thread_start(struct stratus_loop *loop);
void api_fetch_thread_stop(struct stratus_loop *loop);

/* ---- the cluster view (clusterview.c); only when req->ctx->cluster is set ---- */
struct stratus_cluster_broker;
/* The live brokers, sorted by id, copied into the request's arena; 0 or -1. */
int api_cluster_brokers(struct stratus_req *req, struct stratus_cluster_broker **out,
                        int32_t *n);
/* The broker with this id among bs[0..n), or NULL. */
const struct stratus_cluster_broker *api_cluster_find(const struct stratus_cluster_broker *bs,
                                                      int32_t n, int32_t id);
/* The partition's leader (owner) and epoch as the view says: leader -1 when it has none right
 * now (epoch still the view's), -1 / -1 when the view does not know the partition. */
void api_cluster_leader(struct stratus_req *req, const char *topic, int32_t partition,
                        int32_t *leader, int32_t *epoch);
/* The broker's rack as Kafka reports it (null when none). */
struct kstr api_cluster_rack(struct stratus_req *req, const struct stratus_cluster_broker *b);

/* Leader hints of one response (KIP-951): api_hints_add() fills a partition's CurrentLeader and
 * remembers the leader; api_hints_endpoints() gives the remembered leaders' endpoints once. */
struct api_hints {
    struct stratus_req *req;
    int32_t *ids; /* arena */
    int32_t n, cap;
};
void api_hints_init(struct api_hints *h, struct stratus_req *req, int32_t cap);
void api_hints_add(struct api_hints *h, const char *topic, int32_t partition,
                   int32_t *leader_id, int32_t *leader_epoch);
int32_t api_hints_endpoints(struct api_hints *h, struct stratus_cluster_broker **out);

#define API_ALLOC(req, T, n) ((T *)arena_calloc(&(req)->arena, (size_t)(n), sizeof(T)))

#endif
