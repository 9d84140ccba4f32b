/* etcd.h - a client for etcd v3 through its JSON gateway (HTTP POST /v3/..., libcurl, jansson).
 *
 * What it is for: the cluster metastore (broker registry, controller election, partition
 * ownership with epochs, fenced object commits) talks to etcd through this file only.
 *
 * On the wire: JSON bodies where keys and values are base64, int64 are JSON strings, and
 * default-valued fields (0, false, "", empty lists) are omitted from replies; every reply field
 * is therefore optional here. Errors come back as {"error","message","code"} with a gRPC code
 * and the matching HTTP status; /v3/watch is one long POST whose reply is newline-delimited
 * JSON messages {"result":{...}} (or {"error":{...}} when the stream fails).
 *
 * Keys: the client's key prefix (config.prefix) is prepended to every key, range end, compare
 * and watch key sent, and stripped from every key returned, so callers see their own key space.
 *
 * Endpoints and failover: the client keeps a list of endpoints and remembers the last one that
 * answered. A request that fails to connect, times out, or gets a 5xx / 429 reply is tried on
 * the next endpoint, each once, until one answers. Requests that change state and are not safe
 * to repeat (txn) are retried elsewhere only when the failure proves the request was not applied
 * (connection refused, "no leader"); otherwise they fail with STRATUS_EAGAIN and the message
 * says the outcome is unknown. put / delete / lease calls are repeated (their effect is the same).
 *
 * Threads: one client may be used from any number of threads at once (requests use a pool of
 * curl handles guarded by a mutex). The client owns up to one keepalive thread (started by the
 * first stratus_etcd_lease_keep) and each watch owns one thread. Callbacks (lease loss, watch
 * events) run on those threads: they must not call stratus_etcd_watch_stop on their own watch
 * or stratus_etcd_close; they may issue ordinary requests.
 *
 * Ownership: everything passed in is borrowed for the call only (config strings are copied by
 * stratus_etcd_open). Results (struct stratus_etcd_resp, stratus_etcd_txn_result) are owned by
 * the caller after a successful call and released with their _free function; on failure they are
 * left empty (safe to free). Events passed to a watch callback are valid during the callback.
 *
 * Every function returns 0 or a negative STRATUS_E*, with the detail in eb:
 *   STRATUS_EAGAIN    no endpoint answered in time, no leader, or outcome unknown (retry)
 *   STRATUS_ENOTFOUND the lease does not exist (expired or revoked)
 *   STRATUS_EAUTH     authentication or permission failure
 *   STRATUS_ERANGE    requested revision compacted or in the future
 *   STRATUS_EINVAL    bad argument (locally or per etcd), STRATUS_EPROTO a malformed reply.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_CLUSTER_ETCD_H
#define STRATUS_CLUSTER_ETCD_H

#include "stratus/stratus_err.h"

#include <stddef.h>
#include <stdint.h>

struct stratus_etcd;
struct stratus_etcd_watch;

struct stratus_etcd_config {
    const char *endpoints;  /* "http://127.0.0.1:2379,https://h2:2379" (comma separated) */
    const char *prefix;     /* prepended to every key; NULL or "" for none */
    int connect_timeout_ms; /* per endpoint; 0 = 1000 */
    int request_timeout_ms; /* per endpoint and request; 0 = 5000 */
    const char *ca_file;    /* TLS: CA bundle to verify the server; NULL = system default */
    const char *cert_file;  /* TLS client certificate (PEM), optional */
    const char *key_file;   /* TLS client key (PEM), optional */
    const char *username;   /* auth: when set, /v3/auth/authenticate gives a token */
    const char *password;
};

/* One key-value. key/value are malloc'd, NUL-terminated after their length (binary safe). */
struct stratus_etcd_kv {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
};

/* The reply of one range, put or delete. */
struct stratus_etcd_resp {
    int64_t revision;            /* header.revision: the store revision after the request */
    int64_t count;               /* range: keys in range; delete: keys deleted */
    int more;                    /* range: more keys than the limit */
    struct stratus_etcd_kv *kvs; /* range: the keys; put/delete with prev_kv: previous kvs */
    size_t n_kvs;
};
void stratus_etcd_resp_free(struct stratus_etcd_resp *r);
void stratus_etcd_kv_free(struct stratus_etcd_kv *kv); /* frees the contents, not kv */

int stratus_etcd_open(const struct stratus_etcd_config *cfg,
                      struct stratus_etcd **out,
                      struct stratus_errbuf *eb);
/* Stops the keepalive thread (registered leases are not revoked) and frees the client. Every
 * watch of this client must have been stopped first. */
void stratus_etcd_close(struct stratus_etcd *c);
/* The endpoint that answered last (borrowed; stable until close). */
const char *stratus_etcd_current_endpoint(struct stratus_etcd *c);

int stratus_etcd_endpoint_count(struct stratus_etcd *c);

/* One member's view (GET-like, no failover: asks exactly endpoint number `endpoint`). */
struct stratus_etcd_member_status {
    uint64_t member_id;
    uint64_t leader_id; /* 0 = no leader known */
    int64_t raft_term;
    int64_t revision;
    int64_t db_size;
    char version[32];
};
int stratus_etcd_status(struct stratus_etcd *c,
                        int endpoint,
                        struct stratus_etcd_member_status *st,
                        struct stratus_errbuf *eb);

/* ---- KV ------------------------------------------------------------------------------ */
#define STRATUS_ETCD_PREV_KV 0x1 /* put/delete: return the previous kv(s) in resp->kvs */
#define STRATUS_ETCD_PREFIX  0x2 /* delete/range/watch: every key starting with key */

int stratus_etcd_put(struct stratus_etcd *c,
                     const void *key,
                     size_t key_len,
                     const void *value,
                     size_t value_len,
                     int64_t lease,
                     int flags,
                     struct stratus_etcd_resp *resp,
                     struct stratus_errbuf *eb);
/* One key: resp->n_kvs is 0 (absent) or 1. */
int stratus_etcd_get(struct stratus_etcd *c,
                     const void *key,
                     size_t key_len,
                     struct stratus_etcd_resp *resp,
                     struct stratus_errbuf *eb);
int stratus_etcd_delete(struct stratus_etcd *c,
                        const void *key,
                        size_t key_len,
                        int flags,
                        struct stratus_etcd_resp *resp,
                        struct stratus_errbuf *eb);

enum stratus_etcd_op_type { STRATUS_ETCD_OP_RANGE, STRATUS_ETCD_OP_PUT, STRATUS_ETCD_OP_DELETE };

/* One operation: a range, put or delete (also the element of a txn's op lists). Zero-init and
 * fill what matters: range_end (exclusive) overrides STRATUS_ETCD_PREFIX when set. */
struct stratus_etcd_op {
    enum stratus_etcd_op_type type;
    const void *key;
    size_t key_len;
    const void *range_end;
    size_t range_end_len;
    int flags;         /* STRATUS_ETCD_PREFIX, STRATUS_ETCD_PREV_KV */
    const void *value; /* put */
    size_t value_len;
    int64_t lease;    /* put */
    int64_t limit;    /* range: 0 = no limit */
    int64_t revision; /* range: read at this revision; 0 = latest */
    int keys_only;    /* range */
    int count_only;   /* range */
};
/* A range (op->type must be RANGE): keys in [key, range_end) or under the prefix. */
int stratus_etcd_range(struct stratus_etcd *c,
                       const struct stratus_etcd_op *op,
                       struct stratus_etcd_resp *resp,
                       struct stratus_errbuf *eb);

enum stratus_etcd_cmp_target {
    STRATUS_ETCD_CMP_VALUE,
    STRATUS_ETCD_CMP_VERSION,
    STRATUS_ETCD_CMP_CREATE, /* create_revision (0 = the key does not exist) */
    STRATUS_ETCD_CMP_MOD,    /* mod_revision */
    STRATUS_ETCD_CMP_LEASE
};
enum stratus_etcd_cmp_result {
    STRATUS_ETCD_EQUAL,
    STRATUS_ETCD_NOT_EQUAL,
    STRATUS_ETCD_LESS,
    STRATUS_ETCD_GREATER
};
/* "target(key) result operand", e.g. MOD(key) EQUAL 42 or VALUE(key) EQUAL "x". */
struct stratus_etcd_cmp {
    const void *key;
    size_t key_len;
    enum stratus_etcd_cmp_target target;
    enum stratus_etcd_cmp_result result;
    int64_t number;    /* version, create/mod revision or lease */
    const void *value; /* CMP_VALUE */
    size_t value_len;
};

struct stratus_etcd_txn_result {
    int succeeded;      /* every compare held: the success ops ran */
    int64_t revision;   /* header.revision */
    size_t n_responses; /* one per op of the branch that ran */
    enum stratus_etcd_op_type *types;
    struct stratus_etcd_resp *responses;
};
void stratus_etcd_txn_result_free(struct stratus_etcd_txn_result *r);

/* An atomic If(cmps) Then(success) Else(failure). A failed compare is not an error: the call
 * returns 0 with succeeded = 0. */
int stratus_etcd_txn(struct stratus_etcd *c,
                     const struct stratus_etcd_cmp *cmps,
                     size_t n_cmps,
                     const struct stratus_etcd_op *success,
                     size_t n_success,
                     const struct stratus_etcd_op *failure,
                     size_t n_failure,
                     struct stratus_etcd_txn_result *res,
                     struct stratus_errbuf *eb);

/* Compacts the history up to revision (older revisions can no longer be read or watched;
 * STRATUS_ERANGE if already compacted past it). */
int stratus_etcd_compact(struct stratus_etcd *c, int64_t revision, struct stratus_errbuf *eb);

/* ---- leases -------------------------------------------------------------------------- */
/* Grants a lease of ttl_s seconds (id 0 = etcd chooses). etcd may raise a small TTL to its
 * minimum (about 2 s); *ttl_out gets the granted TTL. */
int stratus_etcd_lease_grant(struct stratus_etcd *c,
                             int64_t ttl_s,
                             int64_t id,
                             int64_t *id_out,
                             int64_t *ttl_out,
                             struct stratus_errbuf *eb);
/* Revokes the lease: its keys are deleted. Also stops keeping it alive. */
int stratus_etcd_lease_revoke(struct stratus_etcd *c, int64_t id, struct stratus_errbuf *eb);
/* Remaining and granted TTL; STRATUS_ENOTFOUND when the lease is gone. */
int stratus_etcd_lease_timetolive(struct stratus_etcd *c,
                                  int64_t id,
                                  int64_t *ttl_out,
                                  int64_t *granted_out,
                                  struct stratus_errbuf *eb);
/* One keepalive now; STRATUS_ENOTFOUND when the lease is gone. */
int stratus_etcd_lease_keepalive_once(struct stratus_etcd *c,
                                      int64_t id,
                                      int64_t *ttl_out,
                                      struct stratus_errbuf *eb);

/* Called on the keepalive thread when a kept lease is lost: code STRATUS_ENOTFOUND (etcd said it
 * is gone) or STRATUS_EAGAIN (no keepalive succeeded for a whole TTL: assume it expired). The
 * lease is no longer kept when this runs. */
typedef void (*stratus_etcd_lease_lost_cb)(void *arg, int64_t lease, int code);

/* Keeps the lease alive from the client's keepalive thread, every TTL/3, until unkeep, revoke,
 * loss or close. ttl_s is the granted TTL (as from grant). */
int stratus_etcd_lease_keep(struct stratus_etcd *c,
                            int64_t id,
                            int64_t ttl_s,
                            stratus_etcd_lease_lost_cb cb,
                            void *arg,
                            struct stratus_errbuf *eb);
/* Stops keeping it alive (no callback). Returns STRATUS_ENOTFOUND if it was not kept. After it
 * returns the callback for this lease will not run. */
int stratus_etcd_lease_unkeep(struct stratus_etcd *c, int64_t id);

/* ---- watch --------------------------------------------------------------------------- */
enum stratus_etcd_event_type {
    STRATUS_ETCD_EVENT_PUT,
    STRATUS_ETCD_EVENT_DELETE,
    /* The resume revision was compacted away: events were lost. revision = the compact
     * revision. The watch has ended; resync with a range and start a new watch. */
    STRATUS_ETCD_EVENT_COMPACTED,
    /* etcd canceled the watch for another reason (message in error). The watch has ended. */
    STRATUS_ETCD_EVENT_CANCELED
};

struct stratus_etcd_event {
    enum stratus_etcd_event_type type;
    struct stratus_etcd_kv kv; /* PUT/DELETE (DELETE: key and mod_revision only) */
    int has_prev_kv;
    struct stratus_etcd_kv prev_kv; /* when the watch asked for prev_kv and it existed */
    int64_t revision;               /* PUT/DELETE: kv.mod_revision; COMPACTED: compact rev */
    const char *error;              /* CANCELED: etcd's reason */
};

/* Runs on the watch's thread, in revision order, never concurrently for one watch. */
typedef void (*stratus_etcd_watch_cb)(void *arg, const struct stratus_etcd_event *ev);

struct stratus_etcd_watch_opts {
    const void *key;
    size_t key_len;
    int flags;              /* STRATUS_ETCD_PREFIX, STRATUS_ETCD_PREV_KV */
    int64_t start_revision; /* first revision to deliver; 0 = changes after now */
};

/* Starts a watch on its own thread. It reconnects (failing over between endpoints) from the
 * last delivered revision + 1 until stopped, so events are delivered once and in order across
 * disconnects. Returns once the thread runs (not necessarily once etcd accepted the watch;
 * pass start_revision to get a gap-free start). */
int stratus_etcd_watch_start(struct stratus_etcd *c,
                             const struct stratus_etcd_watch_opts *o,
                             stratus_etcd_watch_cb cb,
                             void *arg,
                             struct stratus_etcd_watch **out,
                             struct stratus_errbuf *eb);
/* Stops the watch, joins its thread and frees it. Not from its own callback. */
void stratus_etcd_watch_stop(struct stratus_etcd_watch *w);
/* The last revision delivered (or the revision the watch started after). Any thread. */
int64_t stratus_etcd_watch_revision(struct stratus_etcd_watch *w);
/* How many times the stream was re-established; whether it is connected and accepted now. */
int stratus_etcd_watch_reconnects(struct stratus_etcd_watch *w);
int stratus_etcd_watch_connected(struct stratus_etcd_watch *w);

#endif
