/* meta.h - the cluster metastore: the etcd key schema of docs/cluster-design.md, a watched
 * in-memory copy of the cluster's state, and every read and write the node agent (node.c) and
 * the controller (controller.c) make. Nothing else knows key names or value encodings.
 *
 * The copy: stratus_meta_start_watch() loads brokers/, controller, topics/, assign/, parts/,
 * reassign/ and drain/ with one range each, then watches the whole prefix from the next
 * revision (resyncing with fresh ranges after a compaction). Lookups below (@locality any) read
 * that copy under a short lock; they may lag etcd by a watch delivery. The change callback runs
 * on the watch thread after the copy was updated: it must be quick (post work elsewhere).
 *
 * Writes (@locality worker) block for one etcd round trip (a few when they retry a CAS).
 * Every function returns 0 or a negative STRATUS_E* with the detail in eb; STRATUS_EEXIST
 * always means "a compare failed" (somebody else changed it first, or this broker is fenced).
 * Ownership: structs filled here own their arrays (free with the matching _free); inputs are
 * borrowed for the call.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_CLUSTER_META_H
#define STRATUS_CLUSTER_META_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"

struct stratus_meta;
struct stratus_index_range;
struct stratus_index_object;

struct stratus_meta_conf {
    struct stratus_etcd_config etcd; /* endpoints, prefix ("/stratus/" when NULL), TLS, auth */
    int32_t node_id;
    const char *host; /* advertised listener */
    int32_t port;
    const char *rack;     /* NULL or "" = none */
    int64_t session_ttl_s; /* broker lease TTL (default 6) */
};

int stratus_meta_open(const struct stratus_meta_conf *conf, struct stratus_meta **out,
                      struct stratus_errbuf *eb);
/* Stops the watch and the keepalive (the lease is not revoked: use unregister first for a clean
 * stop) and frees everything. */
void stratus_meta_close(struct stratus_meta *m);
struct stratus_etcd *stratus_meta_etcd(struct stratus_meta *m);
int32_t stratus_meta_node_id(const struct stratus_meta *m);

/* ---- registration and liveness ---------------------------------------------------------- */

/* Called (keepalive thread) when this broker's lease is lost; the broker must fence every
 * partition and call stratus_meta_register again. */
typedef void stratus_meta_lost_fn(void *arg);

/* Grants a lease, keeps it alive, and creates brokers/<id> under it (txn: only if absent or
 * written by an expired incarnation of this node: STRATUS_EEXIST when another live broker holds
 * the id). The incarnation number (random, non-zero) is chosen at the first call and kept for
 * the life of m: it names this process's WAL objects (wal/<node>/<inc>/), so a broker that
 * re-registers after losing its lease keeps it. */
int stratus_meta_register(struct stratus_meta *m, stratus_meta_lost_fn *lost, void *arg,
                          struct stratus_errbuf *eb);
/* Revokes the lease (brokers/<id> and a held controller key vanish at once). */
int stratus_meta_unregister(struct stratus_meta *m, struct stratus_errbuf *eb);
uint64_t stratus_meta_incarnation(struct stratus_meta *m); /* 0 before register */
int64_t stratus_meta_lease(struct stratus_meta *m);        /* 0 before register */
/* Monotonic ms (stratus_mono_ms) until which acknowledging appends is safe: send time of the
 * last successful keepalive (or of the grant) + TTL - 500 ms. 0 when not registered. */
int64_t stratus_meta_ack_deadline(struct stratus_meta *m);
/* 1 when the copy has applied every change up to this broker's current registration, so
 * nothing it says predates the session; 0 when not registered or not caught up yet (after a
 * pause or a lost lease, until the watch delivers what happened meanwhile). */
int stratus_meta_copy_current(struct stratus_meta *m);

/* ---- the watched copy ------------------------------------------------------------------- */

enum stratus_meta_kind {
    STRATUS_META_BROKERS,
    STRATUS_META_CONTROLLER,
    STRATUS_META_TOPICS,
    STRATUS_META_ASSIGN,
    STRATUS_META_PARTS,
    STRATUS_META_REASSIGN,
    STRATUS_META_DRAIN,
    STRATUS_META_RESYNC /* the copy was reloaded after a compaction or a watch restart */
};
/* key: the changed key without the prefix ("assign/t/3"); NULL for RESYNC. */
typedef void stratus_meta_change_fn(void *arg, enum stratus_meta_kind kind, const char *key);
int stratus_meta_start_watch(struct stratus_meta *m, stratus_meta_change_fn *fn, void *arg,
                             struct stratus_errbuf *eb);

struct stratus_meta_broker {
    int32_t id;
    char host[256];
    int32_t port;
    char rack[64];
    uint64_t inc;
};
int stratus_meta_brokers(struct stratus_meta *m, struct stratus_meta_broker **out, size_t *n);
int stratus_meta_broker_live(struct stratus_meta *m, int32_t id, uint64_t *inc); /* 1 / 0 */
int32_t stratus_meta_controller(struct stratus_meta *m); /* -1 = none */

struct stratus_meta_topic {
    char name[250];
    uint8_t id[16];
    int32_t partitions;
    uint64_t *streams;        /* partitions entries */
    char **cfg_names, **cfg_values;
    size_t ncfg;
    int64_t mod_revision;     /* of topics/<name>, for update's compare */
};
void stratus_meta_topic_free(struct stratus_meta_topic *t); /* frees contents */
int stratus_meta_topics(struct stratus_meta *m, struct stratus_meta_topic **out, size_t *n);
void stratus_meta_topics_free(struct stratus_meta_topic *v, size_t n);
int stratus_meta_topic(struct stratus_meta *m, const char *name, struct stratus_meta_topic *out);

struct stratus_meta_assign {
    char topic[250];
    int32_t partition;
    uint64_t stream;  /* from the topic */
    int32_t owner;    /* -1 = none */
    int32_t target;   /* -1 = no move */
    int64_t mod_revision; /* of assign/<t>/<p> as the copy saw it; 0 = no key (for _assign_cas) */
};
/* Every partition of every topic, with its assignment (owner -1 when there is no assign key). */
int stratus_meta_assignments(struct stratus_meta *m, struct stratus_meta_assign **out, size_t *n);
int stratus_meta_assignment(struct stratus_meta *m, const char *topic, int32_t partition,
                            struct stratus_meta_assign *out);

/* parts/<stream>: the ownership record (the fence). */
struct stratus_meta_part {
    int32_t epoch;
    int32_t owner;
    uint64_t inc;
    int released;
};
int stratus_meta_part(struct stratus_meta *m, uint64_t stream, struct stratus_meta_part *out);

/* reassign/<t>/<p> requests not yet consumed by the controller. */
int stratus_meta_reassign_requests(struct stratus_meta *m, struct stratus_meta_assign **out,
                                   size_t *n); /* owner = -1, target = requested */
/* drain/<id> keys. */
int stratus_meta_draining(struct stratus_meta *m, int32_t id); /* 1 / 0 */

/* ---- ids and topics --------------------------------------------------------------------- */

/* n consecutive ids of ids/<name> (CAS on its mod_revision, retried). */
int stratus_meta_alloc_ids(struct stratus_meta *m, const char *name, uint64_t n, uint64_t *first,
                           struct stratus_errbuf *eb);
/* Creates topics/<name> (EEXIST when it exists). t->streams must be allocated already. */
int stratus_meta_create_topic(struct stratus_meta *m, const struct stratus_meta_topic *t,
                              struct stratus_errbuf *eb);
/* Rewrites topics/<name> if its mod_revision is still t->mod_revision (EEXIST otherwise). */
int stratus_meta_update_topic(struct stratus_meta *m, const struct stratus_meta_topic *t,
                              struct stratus_errbuf *eb);
/* Deletes topics/<name>, assign/<name>/ and reassign/<name>/ (ENOTFOUND when absent) and, in
 * the same txn, puts deltopic/<create revision of topics/<name>> = the topic's value, so the
 * controller collects its streams (stratus_meta_drop_stream). */
int stratus_meta_delete_topic(struct stratus_meta *m, const char *name, struct stratus_errbuf *eb);
/* The deltopic/ entries: each topic's name is its deltopic key suffix (for _forget). */
int stratus_meta_list_deleted_topics(struct stratus_meta *m, struct stratus_meta_topic **out,
                                     size_t *n, struct stratus_errbuf *eb);
int stratus_meta_forget_deleted_topic(struct stratus_meta *m, const char *name,
                                      struct stratus_errbuf *eb);
/* A deleted topic's stream: parts/<stream> becomes a tombstone (state "deleted": every owner's
 * fenced writes fail, stratus_meta_claim answers ENOTFOUND; the key stays), then under it every
 * ranges/<stream>/ key becomes a deadrange key (txns of at most ~120 ops), then logstart and
 * pstate go. Idempotent: repeat after a failure. */
int stratus_meta_drop_stream(struct stratus_meta *m, uint64_t stream, struct stratus_errbuf *eb);

/* ---- ownership -------------------------------------------------------------------------- */

/* A claim: the parts/<stream> value this broker wrote, compared by every fenced write. */
struct stratus_meta_claim {
    uint64_t stream;
    int32_t epoch;
    char *value; /* the exact bytes written (malloc'd) */
    size_t value_len;
    int had_prev;                /* parts/<stream> existed before */
    struct stratus_meta_part prev; /* ... and held this (previous owner, epoch, inc, released) */
};
void stratus_meta_claim_free(struct stratus_meta_claim *c);

/* Reads parts/<stream> and replaces it with {epoch+1, me, my inc, open} in one txn comparing
 * what was read (retried on a race at most a few times; EEXIST when it keeps losing; ENOTFOUND
 * when the stream was deleted). */
int stratus_meta_claim(struct stratus_meta *m, uint64_t stream, struct stratus_meta_claim *out,
                       struct stratus_errbuf *eb);
/* The node agent's claim of a partition assigned to it: as stratus_meta_claim, and the same txn
 * also compares assign/<topic>/<p>'s mod revision with a->mod_revision (the copy it decided
 * on) and brokers/<me>'s lease with this broker's. A broker that was paused past its session
 * and still sees its old assignment can thus never take a partition back: STRATUS_EEXIST. */
int stratus_meta_claim_assigned(struct stratus_meta *m, const struct stratus_meta_assign *a,
                                struct stratus_meta_claim *out, struct stratus_errbuf *eb);

/* The committed state of a stream: ranges/<stream>/ in offset order (*ranges malloc'd; object
 * ids and positions as committed), logstart/<stream> (0 when absent), pstate/<stream> (*pstate
 * malloc'd or NULL). */
int stratus_meta_load_stream(struct stratus_meta *m, uint64_t stream,
                             struct stratus_index_range **ranges, size_t *n, int64_t *log_start,
                             uint8_t **pstate, size_t *pstate_len, struct stratus_errbuf *eb);

/* Hand-over: If(parts == claim) Then parts = {..., released}, assign/<topic>/<p> = {owner:
 * new_owner, target: -1}. EEXIST when fenced. */
int stratus_meta_release(struct stratus_meta *m, const struct stratus_meta_claim *claim,
                         const char *topic, int32_t partition, int32_t new_owner,
                         struct stratus_errbuf *eb);

/* logstart/<stream> = log_start, fenced on the claim. */
int stratus_meta_set_log_start(struct stratus_meta *m, const struct stratus_meta_claim *claim,
                               int64_t log_start, struct stratus_errbuf *eb);

/* Retention / DeleteRecords (the engine's trim hook): fenced on the claim, deletes
 * ranges/<stream>/<last> of every dropped range (in offset order, as committed), puts
 * deadrange/<object>/<stream>/<last> = "" for each, and puts logstart/<stream> = log_start.
 * Split into txns of at most ~120 ops, each fenced; each txn's logstart is just past its last
 * dropped range (the last txn's is log_start), so the committed state stays consistent if a
 * later txn is fenced or never sent. n may be 0 (only the log start moves). EEXIST when
 * fenced (the txns before it are done). */
int stratus_meta_trim(struct stratus_meta *m, const struct stratus_meta_claim *claim,
                      int64_t log_start, const struct stratus_index_range *dropped, size_t n,
                      struct stratus_errbuf *eb);

/* ---- objects ---------------------------------------------------------------------------- */

int stratus_meta_prepare_object(struct stratus_meta *m, uint64_t object_id, const char *key,
                                struct stratus_errbuf *eb);

struct stratus_meta_commit_item {
    const struct stratus_meta_claim *claim;
    const struct stratus_index_range *range;
    const uint8_t *pstate; /* may be NULL */
    size_t pstate_len;
};
/* The fenced commit of docs/cluster-design.md: one txn comparing every item's claim, putting
 * every range, pstate and objects/<id>, deleting prepared/<id>. When compares fail, re-reads
 * the parts keys, sets lost[i] = 1 for the items whose claim no longer holds, and commits the
 * others (objects/<id> then counts only those ranges); returns STRATUS_EEXIST if any was lost
 * (*committed = number of items committed). */
int stratus_meta_commit_object(struct stratus_meta *m, const struct stratus_index_object *obj,
                               const struct stratus_meta_commit_item *items, size_t n, int *lost,
                               size_t *committed, struct stratus_errbuf *eb);

/* ---- assignment writes (controller; reassign/drain requests from any broker) ------------- */

int stratus_meta_set_assign(struct stratus_meta *m, const char *topic, int32_t partition,
                            int32_t owner, int32_t target, struct stratus_errbuf *eb);
/* reassign/<t>/<p> = {target} (target -1: deletes the request; ENOTFOUND if none). */
int stratus_meta_request_move(struct stratus_meta *m, const char *topic, int32_t partition,
                              int32_t target, struct stratus_errbuf *eb);
int stratus_meta_delete_request(struct stratus_meta *m, const char *topic, int32_t partition,
                                struct stratus_errbuf *eb);
int stratus_meta_set_drain(struct stratus_meta *m, int32_t id, int on, struct stratus_errbuf *eb);
/* The controller's assignment write: assign/<t>/<p> = {owner, target} only while `term` leads
 * (controller key create_revision) and the assign key is still the one the controller decided
 * on (seen->mod_revision, 0 = absent); consume_request also deletes reassign/<t>/<p> in the same
 * txn. On success seen->owner/target/mod_revision are updated to what was written.
 * EEXIST: the assign key changed (wait for the watch); ECLOSED: term no longer leads. */
int stratus_meta_assign_cas(struct stratus_meta *m, int64_t term, struct stratus_meta_assign *seen,
                            int32_t owner, int32_t target, int consume_request,
                            struct stratus_errbuf *eb);

/* ---- controller election ---------------------------------------------------------------- */
/* One attempt to become controller under this broker's lease: 0 = leader (*term = the key's
 * create_revision), EEXIST = somebody else is. */
int stratus_meta_try_controller(struct stratus_meta *m, int64_t *term, struct stratus_errbuf *eb);
/* Gives the controller key up if term still holds it (EEXIST otherwise). */
int stratus_meta_resign_controller(struct stratus_meta *m, int64_t term, struct stratus_errbuf *eb);

/* ---- garbage collection (controller) ----------------------------------------------------- */
struct stratus_meta_prepared {
    uint64_t object_id;
    char key[256];
    int32_t node;
    int64_t ms; /* wall clock when prepared */
};
int stratus_meta_list_prepared(struct stratus_meta *m, struct stratus_meta_prepared **out,
                               size_t *n, struct stratus_errbuf *eb);
/* 1 when objects/<id> exists. */
int stratus_meta_object_committed(struct stratus_meta *m, uint64_t object_id,
                                  struct stratus_errbuf *eb);
int stratus_meta_delete_prepared(struct stratus_meta *m, uint64_t object_id,
                                 struct stratus_errbuf *eb);
/* Object GC: the ids of objects with deadrange/<id>/ keys (ascending, *ids malloc'd). */
int stratus_meta_list_dead_objects(struct stratus_meta *m, uint64_t **ids, size_t *n,
                                   struct stratus_errbuf *eb);
struct stratus_meta_dead_object {
    uint64_t object_id;
    int exists;     /* objects/<id> is there (key and ranges valid) */
    char key[256];  /* storage key */
    int64_t ranges; /* committed ranges (objects/<id>.ranges) */
    int64_t dead;   /* deadrange/<id>/ keys */
};
int stratus_meta_dead_object(struct stratus_meta *m, uint64_t object_id,
                             struct stratus_meta_dead_object *out, struct stratus_errbuf *eb);
/* One txn: deletes objects/<id> and every deadrange/<id>/ key (after the storage delete). */
int stratus_meta_forget_object(struct stratus_meta *m, uint64_t object_id,
                               struct stratus_errbuf *eb);
/* 1 when some parts/<stream> with state open names (node, inc): its WAL is still needed. */
int stratus_meta_wal_needed(struct stratus_meta *m, int32_t node, uint64_t inc);

/* ---- group offsets ---------------------------------------------------------------------- */
/* groups/<group>: ENOTFOUND when absent (*val malloc'd). */
int stratus_meta_group_load(struct stratus_meta *m, const char *group, uint8_t **val, size_t *len,
                            struct stratus_errbuf *eb);
/* Writes (val != NULL) or deletes (val == NULL) groups/<group>, fenced on claim (the
 * coordinator partition's). EEXIST when fenced. */
int stratus_meta_group_store(struct stratus_meta *m, const struct stratus_meta_claim *claim,
                             const char *group, const uint8_t *val, size_t len,
                             struct stratus_errbuf *eb);

#endif
