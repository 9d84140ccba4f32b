/* election.h - leader election and fenced commits on etcd (built on etcd.h).
 *
 * Election: one key per office ("controller"). Campaigning is one txn:
 *   If(create_revision(key) == 0) Then(put(key, value, lease)) Else(range(key)).
 * The winner holds the key as long as its lease lives; the key's create_revision is the
 * winner's term, strictly increasing across successive leaders, and serves as its fencing token.
 * A leader whose lease is revoked or expires (paused process, partition) loses the key; the
 * next campaigner's txn then succeeds.
 *
 * Fenced commit: a txn that first compares a fence and only then writes. The fence is either
 * the leader key (create_revision == my term: "I am still the leader") or an owner's epoch key
 * (value == my epoch, or mod_revision == the revision I read it at). A stale owner's fence
 * compare fails, so it can never commit: that is the whole point of it.
 *
 * Threads: every function may be called from any thread; stratus_election_campaign blocks the
 * caller (it runs a watch thread internally while it waits). Ownership as in etcd.h: inputs are
 * borrowed; a leader kv returned is owned by the caller (stratus_etcd_kv_free).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_CLUSTER_ELECTION_H
#define STRATUS_CLUSTER_ELECTION_H

#include "cluster/etcd.h"

/* One attempt. Returns 0 when this caller is the leader (a new win, or the key already held
 * under the same lease), STRATUS_EEXIST when somebody else is; *leader (may be NULL) gets the
 * current leader's kv either way (create_revision = the term). */
int stratus_election_try(struct stratus_etcd *c,
                         const char *key,
                         const void *value,
                         size_t value_len,
                         int64_t lease,
                         struct stratus_etcd_kv *leader,
                         struct stratus_errbuf *eb);

/* Campaigns until leader or timeout_ms (< 0 = no timeout): tries, and while somebody else leads
 * waits for the leader key to be deleted (watch) before trying again. STRATUS_EAGAIN on timeout.
 * cancel (may be NULL) is polled: when it becomes non-zero the call returns STRATUS_ECLOSED. */
int stratus_election_campaign(struct stratus_etcd *c,
                              const char *key,
                              const void *value,
                              size_t value_len,
                              int64_t lease,
                              int timeout_ms,
                              const volatile int *cancel,
                              struct stratus_etcd_kv *leader,
                              struct stratus_errbuf *eb);

/* The current leader; STRATUS_ENOTFOUND when there is none. */
int stratus_election_leader(struct stratus_etcd *c,
                            const char *key,
                            struct stratus_etcd_kv *leader,
                            struct stratus_errbuf *eb);

/* Gives up leadership of term (the create_revision this caller won with); STRATUS_EEXIST when
 * the key is no longer this term's (somebody else leads already). */
int stratus_election_resign(struct stratus_etcd *c,
                            const char *key,
                            int64_t term,
                            struct stratus_errbuf *eb);

/* The compare that holds while term still leads under key (for stratus_election_commit). */
struct stratus_etcd_cmp stratus_election_fence(const char *key, int64_t term);

/* Runs ops only if every fence compare holds. Returns 0 when committed, STRATUS_EEXIST when a
 * fence failed (the caller is stale and must not retry as owner); res (may be NULL) gets the txn
 * result; on a failed fence its responses are ranges of the fence keys (the current values). */
int stratus_election_commit(struct stratus_etcd *c,
                            const struct stratus_etcd_cmp *fence,
                            size_t n_fence,
                            const struct stratus_etcd_op *ops,
                            size_t n_ops,
                            struct stratus_etcd_txn_result *res,
                            struct stratus_errbuf *eb);

#endif
