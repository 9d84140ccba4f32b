/* cluster.h - what the API layer and the broker ask of the cluster: the node agent's public face.
 *
 * In cluster mode ([cluster] metastore = etcd) the broker starts one node agent (node.c). It
 * registers this broker, claims and resigns partitions in the engine as the controller assigns
 * them, and answers the questions below from a watched in-memory copy of the metastore
 * (docs/cluster-design.md). In single-node mode there is no agent: callers hold a NULL
 * struct stratus_cluster * and keep their single-node behaviour.
 *
 * Threads: the lookups (@locality any) read the in-memory copy under a short lock; the admin
 * calls (@locality worker) write etcd and block for a round trip or a few.
 * Ownership: arrays returned are malloc'd and owned by the caller (free()).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_CLUSTER_CLUSTER_H
#define STRATUS_CLUSTER_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "stratus/stratus_err.h"

struct stratus_cluster;
struct stratus_kv;

/* A live broker (registered under a lease). */
struct stratus_cluster_broker {
    int32_t id;
    char host[256];
    int32_t port;
    char rack[64]; /* "" = none */
};

/* @locality any. The live brokers sorted by id (*out malloc'd). */
int stratus_cluster_brokers(struct stratus_cluster *c, struct stratus_cluster_broker **out,
                            size_t *n);

/* @locality any. The controller's node id, or -1 when there is none right now. */
int32_t stratus_cluster_controller(struct stratus_cluster *c);

/* @locality any. This broker's node id. */
int32_t stratus_cluster_self(struct stratus_cluster *c);

/* @locality any. The partition's owner (the Kafka leader; -1 = none: LEADER_NOT_AVAILABLE) and
 * leader epoch as the metastore says. STRATUS_ENOTFOUND for an unknown topic or partition. */
int stratus_cluster_owner(struct stratus_cluster *c, const char *topic, int32_t partition,
                          int32_t *owner, int32_t *epoch);

/* ---- topic admin (@locality worker; each returns a Kafka error code and a message) ------ */
/* They write the metastore and wait (a few seconds at most) until this broker's catalog shows
 * the change, so that the client's next Metadata request sees it. */
int16_t stratus_cluster_create_topic(struct stratus_cluster *c, const char *name,
                                     int32_t partitions, const struct stratus_kv *configs,
                                     size_t nconfigs, int validate_only, uint8_t id_out[16],
                                     char *msg, size_t msgcap);
int16_t stratus_cluster_delete_topic(struct stratus_cluster *c, const char *name, char *msg,
                                     size_t msgcap);
int16_t stratus_cluster_create_partitions(struct stratus_cluster *c, const char *name,
                                          int32_t new_total, int validate_only, char *msg,
                                          size_t msgcap);
int16_t stratus_cluster_alter_topic_configs(struct stratus_cluster *c, const char *name,
                                            const struct stratus_kv *configs, size_t n,
                                            int incremental, int validate_only, char *msg,
                                            size_t msgcap);

/* ---- reassignments (AlterPartitionReassignments / ListPartitionReassignments) ----------- */
/* @locality worker. Asks the controller to move the partition to target (a live broker id),
 * or cancels a pending move (target -1: NO_REASSIGNMENT_IN_PROGRESS when there is none).
 * Returns a Kafka error (UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT for a target
 * that is not a live broker). */
int16_t stratus_cluster_reassign(struct stratus_cluster *c, const char *topic, int32_t partition,
                                 int32_t target, char *msg, size_t msgcap);

struct stratus_cluster_move {
    char topic[250];
    int32_t partition;
    int32_t owner;  /* current owner */
    int32_t target; /* where it is going */
};
/* @locality any. Moves requested or in progress (*out malloc'd). */
int stratus_cluster_moves(struct stratus_cluster *c, struct stratus_cluster_move **out,
                          size_t *n);

/* @locality worker. Drains this broker (every partition moved away; new ones not assigned
 * here), waiting at most timeout_ms for it to finish (0 = do not wait). undo = 1 ends a drain. */
int stratus_cluster_drain(struct stratus_cluster *c, int undo, int64_t timeout_ms,
                          struct stratus_errbuf *eb);

/* ---- groups ------------------------------------------------------------------------------ */
#define STRATUS_CLUSTER_OFFSETS_TOPIC "__consumer_offsets"
#define STRATUS_CLUSTER_OFFSETS_PARTITIONS 16
/* @locality any. The broker coordinating group (the owner of its coordinator partition), or -1
 * when that partition has no owner right now (COORDINATOR_NOT_AVAILABLE). */
int32_t stratus_cluster_group_coordinator(struct stratus_cluster *c, const char *group);

#endif
