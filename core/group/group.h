/* group.h - the group coordinator: classic consumer-group membership (JoinGroup, SyncGroup,
 * Heartbeat, LeaveGroup, DescribeGroups, ListGroups, DeleteGroups) and committed offsets
 * (OffsetCommit, OffsetFetch), with the offsets kept durably in the RocksDB index ('G' keys)
 * in single-node mode, in the cluster store in cluster mode (below).
 *
 * Threads. One coordinator thread owns every group, member and committed offset; it runs its
 * own event loop (util/loop.h) with the session, rebalance and retention timers. Handlers
 * (core/api/groups.c) decode a request on their network thread, describe it in a struct
 * stratus_group_op and submit it; the coordinator runs it on its thread, fills the response
 * struct and calls op->done() on its thread once the answer is final: at once, when a parked
 * JoinGroup/SyncGroup completes, or when a batch of offset commits is durable. Nothing here
 * knows about connections.
 *
 * Requests and responses are the generated structs of proto/proto_gen.h (JoinGroupRequest ->
 * JoinGroupResponse...). The response may point at coordinator-owned memory (member ids,
 * metadata and assignment bytes) that stays valid only during done(): encode it there.
 *
 * Cluster mode (stratus_group_set_cluster, docs/cluster-design.md "Groups"): this broker serves
 * only the groups it coordinates (the others answer NOT_COORDINATOR), and a group's committed
 * offsets live in an external store (etcd, through the node agent's ops) as one value per
 * group, loaded on the group's first request and rewritten, fenced, once per commit batch.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_GROUP_GROUP_H
#define STRATUS_GROUP_GROUP_H

#include "proto/arena.h"
#include "stratus/stratus_err.h"

#include <stdint.h>

struct stratus_stream;
struct stratus_group_coord;

struct stratus_group_conf {
    int64_t initial_rebalance_delay_ms;  /* group.initial.rebalance.delay.ms (3000) */
    int64_t min_session_timeout_ms;      /* group.min.session.timeout.ms (6000) */
    int64_t max_session_timeout_ms;      /* group.max.session.timeout.ms (1800000) */
    int64_t offsets_retention_ms;        /* offsets.retention.minutes for empty groups (7 d) */
    int64_t retention_check_interval_ms; /* offsets.retention.check.interval.ms (600000) */
    int64_t max_metadata_bytes;          /* cap of one member's metadata / assignment (1 MiB) */
    int32_t max_group_size;              /* group.max.size (0 = unlimited) */
};

/* Fills c with the defaults above. */
void stratus_group_conf_defaults(struct stratus_group_conf *c);

struct stratus_group_op {
    /* Set by the submitter; read-only for the coordinator. */
    int16_t api_key; /* KAPI_JoinGroup ... KAPI_OffsetFetch, KAPI_DeleteGroups */
    int16_t api_version;
    const void *rq;              /* the decoded request, e.g. const struct JoinGroupRequest * */
    void *rs;                    /* the response, after M_init(); OffsetCommit: pre-shaped like the
                                  * request (one entry per topic and partition, in request order) */
    struct stratus_arena *arena; /* for response arrays; used by one thread at a time */
    const char *client_id;       /* borrowed until done */
    const char *client_host;     /* borrowed until done ("" when unknown) */
    void (*done)(struct stratus_group_op *op);
    void *arg;
    /* Private to the coordinator. */
    struct stratus_group_op *next;
    void *priv;
};

/* @locality startup. Loads the committed offsets from the engine's index and starts the
 * coordinator thread. The stream is borrowed and must outlive the coordinator. */
int stratus_group_open(const struct stratus_group_conf *conf,
                       struct stratus_stream *stream,
                       struct stratus_group_coord **out,
                       struct stratus_errbuf *eb);

/* @locality any. Runs op on the coordinator thread; op->done() is called exactly once, on the
 * coordinator thread, or on the caller's thread before this returns when the coordinator is
 * shutting down (the response then carries COORDINATOR_NOT_AVAILABLE). */
void stratus_group_submit(struct stratus_group_coord *c, struct stratus_group_op *op);

/* @locality main thread, at shutdown before the network drains. Answers every parked
 * JoinGroup/SyncGroup (COORDINATOR_NOT_AVAILABLE), makes pending commits durable, and refuses
 * what arrives afterwards. Waits for that to be done. */
void stratus_group_drain(struct stratus_group_coord *c);

/* @locality main thread, after the network stopped. Stops the thread and frees everything. */
void stratus_group_close(struct stratus_group_coord *c);

/* ---- cluster mode ---- */

/* What the coordinator needs from the node agent. The table is copied; arg is borrowed and must
 * outlive the coordinator. */
struct stratus_group_cluster_ops {
    void *arg;
    /* 1 when this broker coordinates `group` now. Cheap, any thread. */
    int (*coordinates)(void *arg, const char *group);
    /* The group's stored offsets blob; STRATUS_ENOTFOUND when none. *val malloc'd. Blocks
     * (one etcd round trip); called on the coordinator thread. */
    int (*load)(
        void *arg, const char *group, uint8_t **val, size_t *len, struct stratus_errbuf *eb);
    /* Stores (val != NULL) or deletes (val == NULL) the blob, fenced: STRATUS_EEXIST when
     * this broker no longer coordinates the group. Blocks; coordinator thread. */
    int (*store)(
        void *arg, const char *group, const uint8_t *val, size_t len, struct stratus_errbuf *eb);
};

/* @locality main thread, before traffic. Switches the coordinator to cluster mode (offsets in
 * the store, not the index; NOT_COORDINATOR for groups this broker does not coordinate). The
 * groups read from the index at open are forgotten (the index is not written in cluster mode).
 * Waits until the coordinator thread applied it. */
void stratus_group_set_cluster(struct stratus_group_coord *c,
                               const struct stratus_group_cluster_ops *ops);

/* @locality any, until stratus_group_close(). Coordination changed (a coordinator partition moved
 * here or away). Groups no longer coordinated are dropped from memory (parked requests answered
 * NOT_COORDINATOR, pending commits not yet stored are answered NOT_COORDINATOR); groups newly
 * coordinated are loaded lazily on their first request; groups still coordinated keep their members
 * and reload their offsets from the store before their next commit or fetch (coordination may have
 * moved away and back in between). Does not wait. */
void stratus_group_coordination_changed(struct stratus_group_coord *c);

/* @locality any. The partition of __consumer_offsets that coordinates `group` (a NUL-terminated
 * UTF-8 string): Java's String.hashCode over its UTF-16 code units, as Kafka's partitionFor
 * uses (Utils.abs(hash) % n, where abs(Integer.MIN_VALUE) is 0). 0 when npartitions <= 0. */
int32_t stratus_group_partition_for(const char *group, int32_t npartitions);

/* Numbers for tests and metrics (read on the coordinator thread, returned by copy). */
struct stratus_group_stats {
    uint64_t groups, members, offsets;
    uint64_t commits, commit_batches; /* committed partitions, synced RocksDB batches (cluster
                                       * mode: commit batches that stored at least one group) */
    uint64_t rebalances, expired_members, expired_offsets;
};
void stratus_group_get_stats(struct stratus_group_coord *c, struct stratus_group_stats *out);

/* ---- the RocksDB record of one committed offset (offsets.c) ---- */

/* Key: 'G' u16be group len, group, u16be topic len, topic, i32be partition (sign-flipped).
 * Returns the length, 0 when a name is too long (group <= 255 bytes, topic <= 249). */
#define STRATUS_GROUP_ID_MAX  255
#define STRATUS_GROUP_KEY_MAX (1 + 2 + STRATUS_GROUP_ID_MAX + 2 + 249 + 4)
size_t stratus_offsets_key(uint8_t *buf,
                           const char *group,
                           size_t glen,
                           const char *topic,
                           size_t tlen,
                           int32_t partition);
/* Parses a key; the name pointers point into k. 0 or STRATUS_ECORRUPT. */
int stratus_offsets_key_parse(const uint8_t *k,
                              size_t klen,
                              const char **group,
                              size_t *glen,
                              const char **topic,
                              size_t *tlen,
                              int32_t *partition);

#endif
