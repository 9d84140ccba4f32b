/* election.c - leader election and fenced commits on etcd (see election.h). Owns nothing
 * between calls; a campaign owns a watch (and its waiter state) while it blocks.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cluster/election.h"

#include "util/alloc.h"
#include "util/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void kv_copy(struct stratus_etcd_kv *dst, const struct stratus_etcd_kv *src)
{
    *dst = *src;
    dst->key = xmalloc(src->key_len + 1);
    memcpy(dst->key, src->key, src->key_len + 1);
    dst->value = xmalloc(src->value_len + 1);
    memcpy(dst->value, src->value, src->value_len + 1);
}

int stratus_election_try(struct stratus_etcd *c,
                         const char *key,
                         const void *value,
                         size_t value_len,
                         int64_t lease,
                         struct stratus_etcd_kv *leader,
                         struct stratus_errbuf *eb)
{
    size_t klen = strlen(key);
    struct stratus_etcd_cmp cmp = {.key = key,
                                   .key_len = klen,
                                   .target = STRATUS_ETCD_CMP_CREATE,
                                   .result = STRATUS_ETCD_EQUAL,
                                   .number = 0};
    struct stratus_etcd_op put = {.type = STRATUS_ETCD_OP_PUT,
                                  .key = key,
                                  .key_len = klen,
                                  .value = value,
                                  .value_len = value_len,
                                  .lease = lease};
    struct stratus_etcd_op get = {.type = STRATUS_ETCD_OP_RANGE, .key = key, .key_len = klen};
    struct stratus_etcd_txn_result t;
    int rc;

    if (leader)
        memset(leader, 0, sizeof *leader);
    if (lease == 0)
        return stratus_errf(eb, STRATUS_EINVAL, "election: a campaign needs a lease");
    if ((rc = stratus_etcd_txn(c, &cmp, 1, &put, 1, &get, 1, &t, eb)) < 0)
        return rc;
    if (t.succeeded) {
        if (leader) {
            leader->key = xstrdup(key);
            leader->key_len = klen;
            leader->value = xmalloc(value_len + 1);
            if (value_len)
                memcpy(leader->value, value, value_len);
            leader->value[value_len] = 0;
            leader->value_len = value_len;
            leader->create_revision = leader->mod_revision = t.revision;
            leader->version = 1;
            leader->lease = lease;
        }
        stratus_etcd_txn_result_free(&t);
        return 0;
    }
    if (t.n_responses != 1 || t.responses[0].n_kvs != 1) {
        /* The leader key vanished between the compare and the range of the same txn: cannot
         * happen (one revision); a malformed reply. */
        stratus_etcd_txn_result_free(&t);
        return stratus_errf(eb, STRATUS_EPROTO, "election %s: failed txn without the leader", key);
    }
    rc = t.responses[0].kvs[0].lease == lease ? 0 : STRATUS_EEXIST;
    if (leader)
        kv_copy(leader, &t.responses[0].kvs[0]);
    stratus_etcd_txn_result_free(&t);
    if (rc == STRATUS_EEXIST)
        stratus_errf(eb, rc, "election %s: another leader", key);
    return rc;
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int deleted; /* the leader key was deleted (or the watch ended) */
};

static void waiter_cb(void *arg, const struct stratus_etcd_event *ev)
{
    struct waiter *w = arg;
    if (ev->type == STRATUS_ETCD_EVENT_PUT)
        return;
    pthread_mutex_lock(&w->mu);
    w->deleted = 1; /* DELETE, or the watch ended (compacted/canceled): try again */
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

int stratus_election_campaign(struct stratus_etcd *c,
                              const char *key,
                              const void *value,
                              size_t value_len,
                              int64_t lease,
                              int timeout_ms,
                              const volatile int *cancel,
                              struct stratus_etcd_kv *leader,
                              struct stratus_errbuf *eb)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : stratus_mono_ms() + timeout_ms;
    struct stratus_etcd_kv cur;
    int rc;

    for (;;) {
        struct stratus_etcd_watch *wt = NULL;
        struct stratus_etcd_watch_opts o = {.key = key, .key_len = strlen(key)};
        struct waiter w = {.deleted = 0};
        pthread_condattr_t ca;

        if (cancel && *cancel)
            return stratus_errf(eb, STRATUS_ECLOSED, "election %s: canceled", key);
        rc = stratus_election_try(c, key, value, value_len, lease, &cur, eb);
        if (rc != STRATUS_EEXIST && rc != STRATUS_EAGAIN) {
            if (rc == 0 && leader)
                *leader = cur;
            else
                stratus_etcd_kv_free(&cur);
            return rc;
        }
        if (stratus_mono_ms() >= deadline) {
            stratus_etcd_kv_free(&cur);
            return stratus_errf(eb, STRATUS_EAGAIN, "election %s: not leader before timeout", key);
        }
        if (rc == STRATUS_EAGAIN) { /* etcd unreachable: retry shortly */
            struct timespec ts = {0, 200 * 1000000L};
            stratus_etcd_kv_free(&cur);
            nanosleep(&ts, NULL);
            continue;
        }
        /* Wait for the leader key to go: watch from the revision the leader was seen at. */
        o.start_revision = cur.mod_revision + 1;
        stratus_etcd_kv_free(&cur);
        pthread_mutex_init(&w.mu, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&w.cond, &ca);
        pthread_condattr_destroy(&ca);
        rc = stratus_etcd_watch_start(c, &o, waiter_cb, &w, &wt, eb);
        if (rc == 0) {
            pthread_mutex_lock(&w.mu);
            while (!w.deleted && !(cancel && *cancel) && stratus_mono_ms() < deadline) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_nsec += 100 * 1000000L; /* poll cancel and deadline every 100 ms */
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&w.cond, &w.mu, &ts);
            }
            pthread_mutex_unlock(&w.mu);
            stratus_etcd_watch_stop(wt);
        }
        pthread_cond_destroy(&w.cond);
        pthread_mutex_destroy(&w.mu);
        if (rc < 0)
            return rc;
    }
}

int stratus_election_leader(struct stratus_etcd *c,
                            const char *key,
                            struct stratus_etcd_kv *leader,
                            struct stratus_errbuf *eb)
{
    struct stratus_etcd_resp r;
    int rc;

    memset(leader, 0, sizeof *leader);
    if ((rc = stratus_etcd_get(c, key, strlen(key), &r, eb)) < 0)
        return rc;
    if (r.n_kvs != 1) {
        stratus_etcd_resp_free(&r);
        return stratus_errf(eb, STRATUS_ENOTFOUND, "election %s: no leader", key);
    }
    *leader = r.kvs[0];
    memset(&r.kvs[0], 0, sizeof r.kvs[0]);
    stratus_etcd_resp_free(&r);
    return 0;
}

int stratus_election_resign(struct stratus_etcd *c,
                            const char *key,
                            int64_t term,
                            struct stratus_errbuf *eb)
{
    struct stratus_etcd_cmp fence = stratus_election_fence(key, term);
    struct stratus_etcd_op del = {
        .type = STRATUS_ETCD_OP_DELETE, .key = key, .key_len = strlen(key)};
    return stratus_election_commit(c, &fence, 1, &del, 1, NULL, eb);
}

struct stratus_etcd_cmp stratus_election_fence(const char *key, int64_t term)
{
    struct stratus_etcd_cmp cmp = {.key = key,
                                   .key_len = strlen(key),
                                   .target = STRATUS_ETCD_CMP_CREATE,
                                   .result = STRATUS_ETCD_EQUAL,
                                   .number = term};
    return cmp;
}

int stratus_election_commit(struct stratus_etcd *c,
                            const struct stratus_etcd_cmp *fence,
                            size_t n_fence,
                            const struct stratus_etcd_op *ops,
                            size_t n_ops,
                            struct stratus_etcd_txn_result *res,
                            struct stratus_errbuf *eb)
{
    struct stratus_etcd_op *reads;
    struct stratus_etcd_txn_result tmp;
    int rc;

    if (n_fence == 0)
        return stratus_errf(eb, STRATUS_EINVAL, "election: a fenced commit needs a fence");
    reads = xcalloc(n_fence, sizeof *reads);
    for (size_t i = 0; i < n_fence; i++) {
        reads[i].type = STRATUS_ETCD_OP_RANGE;
        reads[i].key = fence[i].key;
        reads[i].key_len = fence[i].key_len;
    }
    rc = stratus_etcd_txn(c, fence, n_fence, ops, n_ops, reads, n_fence, res ? res : &tmp, eb);
    free(reads);
    if (rc < 0)
        return rc;
    if (!(res ? res : &tmp)->succeeded)
        rc = stratus_errf(eb, STRATUS_EEXIST, "fenced commit: the fence no longer holds (stale)");
    if (!res)
        stratus_etcd_txn_result_free(&tmp);
    return rc;
}
