/* node.h - the node agent: this broker's part in a cluster (docs/cluster-design.md).
 *
 * It registers the broker in etcd, keeps the watched copy of the metastore (meta.h), runs the
 * controller candidate (controller.h), mirrors etcd's topics into the engine's catalog, claims
 * the partitions assigned here (recovering a dead owner's tail from its object WAL), resigns
 * the ones being moved away, fences the ones lost, and implements the engine's cluster hooks
 * (object ids, fenced commits), the group coordinator's hooks and the API's view (cluster.h).
 *
 * Start order (broker.c): stratus_node_open (registers: the incarnation names the WAL) ->
 * engine (with stratus_node_stream_ops and the WAL's ack deadline) -> group coordinator ->
 * stratus_node_attach (watch, catalog, claims, controller) -> network. Stop:
 * stratus_node_drain (SIGTERM: move partitions away first) -> network stops ->
 * stratus_node_stop -> group coordinator and engine close -> stratus_node_close.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_CLUSTER_NODE_H
#define STRATUS_CLUSTER_NODE_H

#include "cluster/cluster.h"
#include "cluster/meta.h"

struct stratus_stream;
struct stratus_stream_cluster_ops;
struct stratus_storage;
struct stratus_group_coord;

struct stratus_node_conf {
    struct stratus_meta_conf meta;
    int64_t prepared_ttl_ms; /* prepared objects older than this are collected (controller) */
    int object_wal;          /* [wal] type = object: recover dead owners' tails from it */
};

/* Connects to etcd and registers this broker. st is borrowed (object WAL reads, GC). */
int stratus_node_open(const struct stratus_node_conf *conf, struct stratus_storage *st,
                      struct stratus_cluster **out, struct stratus_errbuf *eb);

/* The cluster id: the one stored in etcd (key cluster_id), or id (this broker's proposal) when
 * this broker is the first; written back into id. */
int stratus_node_cluster_id(struct stratus_cluster *c, char *id, size_t cap,
                            struct stratus_errbuf *eb);

/* The engine's hooks (valid for the life of the agent). */
const struct stratus_stream_cluster_ops *stratus_node_stream_ops(struct stratus_cluster *c);
/* For the object WAL: "wal/<node>/<incarnation>/" (borrowed) and the ack deadline. */
const char *stratus_node_wal_prefix(struct stratus_cluster *c);
int64_t stratus_node_ack_deadline(void *cluster);

/* Starts following the metastore with the engine and the group coordinator (may be NULL). */
int stratus_node_attach(struct stratus_cluster *c, struct stratus_stream *s,
                        struct stratus_group_coord *groups, struct stratus_errbuf *eb);

/* Planned stop: asks for every partition to move away and waits up to timeout_ms, then keeps
 * the connections open until the new owners have claimed them (plus a short linger), so
 * clients learn the new leaders from this broker's answers. */
void stratus_node_drain(struct stratus_cluster *c, int64_t timeout_ms);

/* Stops the agent thread and the controller (the hooks keep working: the group coordinator
 * and the engine may still call them while they close). */
void stratus_node_stop(struct stratus_cluster *c);

/* After the engine and the group coordinator closed: stops what stop did not, resigns nothing,
 * unregisters (the lease is revoked, so what is still owned here fails over at once) and
 * frees it. */
void stratus_node_close(struct stratus_cluster *c);

#endif
