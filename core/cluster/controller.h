/* controller.h - the cluster controller (docs/cluster-design.md, "Controller").
 *
 * Every broker runs one candidate. Its thread campaigns for the `controller` key under the
 * broker's lease (stratus_meta_try_controller); while another broker leads it waits for a change
 * of the controller key (or retries every second). The leader reconciles the watched copy on
 * every notify and every second:
 *   - partitions without an assign key get the live, non-draining broker with the fewest
 *     partitions of that topic, then the fewest partitions overall, then the lowest id;
 *   - partitions of dead owners get a new owner directly (failover);
 *   - reassign requests become {owner, target} (owner live) or {owner: target} (owner dead);
 *   - partitions of draining brokers get targets (all at once);
 *   - a pending move whose target died or drains is re-targeted (or cancelled when no broker is
 *     left);
 *   - the internal topic __consumer_offsets (16 partitions) is created when absent;
 *   - every prepared_ttl/10 (at least 1 s), prepared objects older than prepared_ttl without
 *     objects/<id> are deleted from storage (when a storage is given), then their key;
 *   - in the same rounds, the streams of deleted topics (deltopic/) are dropped, and objects all
 *     of whose committed ranges were trimmed (deadrange/<id>/ count == objects/<id>.ranges) are
 *     deleted from storage (when a storage is given), then their keys;
 *   - in the same rounds (when a storage is given), the object WAL (wal/<node>/<inc>/) of an
 *     incarnation that is not registered and that no open parts/<stream> names is deleted once
 *     it stayed so for prepared_ttl (a grace for owners recovering from it right after a claim).
 * Every write is fenced on the controller term (stratus_meta_assign_cas): a leader that lost its
 * lease or key stops at its next write at the latest, and at once when it notices. (Storage
 * deletes cannot be fenced: they run only after a check that the term still holds.)
 *
 * Threads: start/stop from the owner's thread; notify and is_leader from any thread (notify only
 * signals a condvar, so the meta change callback may call it). The controller borrows m and st:
 * both must outlive it.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_CLUSTER_CONTROLLER_H
#define STRATUS_CLUSTER_CONTROLLER_H

#include "stratus/stratus_err.h"

#include <stdint.h>

struct stratus_meta;
struct stratus_storage;
struct stratus_controller;

#define STRATUS_CONTROLLER_OFFSETS_TOPIC      "__consumer_offsets"
#define STRATUS_CONTROLLER_OFFSETS_PARTITIONS 16

/* Starts the candidate thread. st may be NULL (tests): the GC then drops the keys of expired
 * prepared objects without deleting the objects. prepared_ttl_ms <= 0 means 10 minutes. */
int stratus_controller_start(struct stratus_meta *m,
                             struct stratus_storage *st,
                             int64_t prepared_ttl_ms,
                             struct stratus_controller **out,
                             struct stratus_errbuf *eb);
/* Something in the watched copy changed: wake the thread (cheap). */
void stratus_controller_notify(struct stratus_controller *c);
/* 1 while this broker is the controller: 0 from the moment its broker lease is dropped. */
int stratus_controller_is_leader(struct stratus_controller *c);
/* Completed reconcile passes as leader (for tests and metrics). */
uint64_t stratus_controller_passes(struct stratus_controller *c);
/* Stops the thread; a leader gives the key up so another broker takes over at once. */
void stratus_controller_stop(struct stratus_controller *c);

#endif
