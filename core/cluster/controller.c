/* controller.c - the controller candidate and, when elected, the reconciler of partition
 * assignments and the collector of expired prepared objects (see controller.h).
 *
 * Owns one thread. Every field below `thread-only` is touched by that thread alone; stop,
 * dirty are guarded by mu; leader and passes are atomics read by any thread. All state it acts
 * on is the meta copy (stratus_meta_assignments and friends) plus the etcd writes it makes;
 * nothing is cached between passes, so a pass always starts from the latest watched state.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cluster/controller.h"

#include "cluster/meta.h"
#include "plugin/plugin.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define CTL_PERIOD_MS     1000
#define CTL_OFFSETS_RETRY 5000

/* An object WAL incarnation (wal/<node>/<inc>/) that no live broker and no open partition
 * needs, first seen so at `since` (mono ms); deleted once that lasted the grace period. */
struct ctl_walinc {
    int32_t node;
    uint64_t inc;
    int64_t since;
    int seen; /* in the current listing */
};

struct stratus_controller {
    struct stratus_meta *m;
    struct stratus_storage *st;
    int64_t ttl_ms;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stop, dirty; /* mu */
    atomic_int leader;
    atomic_int_fast64_t won_lease; /* the broker lease the win was made under */
    atomic_uint_fast64_t passes;

    /* thread-only */
    int64_t term;
    int seen_self;           /* the copy showed this broker as controller since the win */
    int64_t next_gc;         /* mono ms */
    int64_t offsets_try;     /* mono ms of the last attempt to create __consumer_offsets */
    int64_t last_try;        /* mono ms of the last campaign attempt */
    struct ctl_walinc *dead; /* WAL incarnations seen unneeded, and since when */
    size_t ndead;
};

/* ---- leadership --------------------------------------------------------------------------- */

static void ctl_lose(struct stratus_controller *c, const char *why)
{
    if (!atomic_load(&c->leader))
        return;
    atomic_store(&c->leader, 0);
    LOG_WARN("controller", "node %d is no longer the controller (term %" PRId64 "): %s",
             stratus_meta_node_id(c->m), c->term, why);
    c->term = 0;
    atomic_store(&c->won_lease, 0);
}

static void ctl_campaign(struct stratus_controller *c)
{
    int64_t lease = stratus_meta_lease(c->m), now = stratus_mono_ms(), term;
    int32_t cur = stratus_meta_controller(c->m), me = stratus_meta_node_id(c->m);
    struct stratus_errbuf eb;
    int rc;

    if (!lease)
        return;
    /* Another broker leads: try only when its key goes (notify) or once a second. */
    if (cur >= 0 && cur != me && now - c->last_try < CTL_PERIOD_MS)
        return;
    c->last_try = now;
    rc = stratus_meta_try_controller(c->m, &term, &eb);
    if (rc == 0) {
        c->term = term;
        atomic_store(&c->won_lease, lease);
        c->seen_self = 0;
        c->next_gc = now;
        c->offsets_try = 0;
        c->ndead = 0; /* WAL grace periods start over with the term */
        atomic_store(&c->leader, 1);
        LOG_INFO("controller", "node %d is the controller (term %" PRId64 ")", me, term);
    } else if (rc != STRATUS_EEXIST) {
        LOG_WARN("controller", "campaign: %s", eb.msg);
    }
}

/* Whether the win still holds as far as this broker can tell without a round trip. */
static int ctl_still_leader(struct stratus_controller *c)
{
    int32_t cur;
    if (stratus_meta_lease(c->m) != atomic_load(&c->won_lease)) {
        ctl_lose(c, "the broker lease changed");
        return 0;
    }
    cur = stratus_meta_controller(c->m);
    if (cur == stratus_meta_node_id(c->m)) {
        c->seen_self = 1;
        return 1;
    }
    if (cur < 0 && !c->seen_self)
        return 1; /* the watch has not delivered our own win yet */
    ctl_lose(c, cur < 0 ? "the controller key is gone" : "another broker holds the key");
    return 0;
}

/* ---- reconcile ---------------------------------------------------------------------------- */

struct ctl_broker {
    int32_t id;
    int draining;
    int64_t total; /* partitions whose eventual owner (target, else owner) is this broker */
    int64_t topic; /* ... of the topic being reconciled */
};

struct ctl_view {
    struct ctl_broker *b;
    size_t nb;
};

static struct ctl_broker *view_find(struct ctl_view *v, int32_t id)
{
    for (size_t i = 0; id >= 0 && i < v->nb; i++)
        if (v->b[i].id == id)
            return &v->b[i];
    return NULL;
}

static int32_t eventual(const struct stratus_meta_assign *a)
{
    return a->target >= 0 ? a->target : a->owner;
}

/* The live, non-draining broker with the fewest partitions of this topic, then overall, then the
 * lowest id; -1 when there is none. */
static int32_t view_pick(struct ctl_view *v, int32_t exclude)
{
    struct ctl_broker *best = NULL;
    for (size_t i = 0; i < v->nb; i++) {
        struct ctl_broker *b = &v->b[i];
        if (b->draining || b->id == exclude)
            continue;
        if (!best || b->topic < best->topic ||
            (b->topic == best->topic &&
             (b->total < best->total || (b->total == best->total && b->id < best->id))))
            best = b;
    }
    return best ? best->id : -1;
}

static void view_move(struct ctl_view *v, int32_t from, int32_t to)
{
    struct ctl_broker *b;
    if ((b = view_find(v, from))) {
        b->total--;
        b->topic--;
    }
    if ((b = view_find(v, to))) {
        b->total++;
        b->topic++;
    }
}

/* One fenced assignment write; updates a and the view on success. Returns -1 when leadership
 * is lost (stop the pass), 0 otherwise. */
static int ctl_write(struct stratus_controller *c,
                     struct ctl_view *v,
                     struct stratus_meta_assign *a,
                     int32_t owner,
                     int32_t target,
                     int consume,
                     const char *why)
{
    struct stratus_errbuf eb;
    int32_t old_owner = a->owner, old_target = a->target, was = eventual(a);
    int rc = stratus_meta_assign_cas(c->m, c->term, a, owner, target, consume, &eb);
    if (rc == STRATUS_ECLOSED) {
        ctl_lose(c, eb.msg);
        return -1;
    }
    if (rc < 0) {
        /* EEXIST: the copy is behind etcd; the watch delivers and the next pass retries. */
        LOG_DEBUG("controller", "assign %s/%d: %s", a->topic, a->partition, eb.msg);
        return 0;
    }
    LOG_INFO("controller", "assign %s/%d: owner %d -> %d, target %d -> %d (%s)", a->topic,
             a->partition, old_owner, owner, old_target, target, why);
    view_move(v, was, eventual(a)); /* a now holds what was written */
    return 0;
}

static int assign_key_cmp(const void *k, const void *e)
{
    const struct stratus_meta_assign *x = k, *y = e;
    int r = strcmp(x->topic, y->topic);
    return r ? r : (x->partition > y->partition) - (x->partition < y->partition);
}

/* Reassign requests: {owner, target} when the owner lives, {owner: target} when it does not. */
static int ctl_requests(struct stratus_controller *c,
                        struct ctl_view *v,
                        struct stratus_meta_assign *as,
                        size_t na)
{
    struct stratus_meta_assign *reqs;
    size_t nr;
    int ret = 0;

    stratus_meta_reassign_requests(c->m, &reqs, &nr);
    for (size_t i = 0; i < nr && ret == 0; i++) {
        struct stratus_meta_assign *r = &reqs[i], *a;
        struct ctl_broker *tb = view_find(v, r->target);
        struct stratus_errbuf eb;
        a = bsearch(r, as, na, sizeof *as, assign_key_cmp);
        if (!a || !tb) {
            LOG_WARN("controller", "dropping reassignment of %s/%d to %d: %s", r->topic,
                     r->partition, r->target, !a ? "no such partition" : "target not live");
            if (stratus_meta_delete_request(c->m, r->topic, r->partition, &eb) < 0)
                LOG_DEBUG("controller", "delete request: %s", eb.msg);
            continue;
        }
        if (a->owner >= 0 && view_find(v, a->owner))
            ret = ctl_write(c, v, a, a->owner, a->owner == r->target ? -1 : r->target, 1,
                            "reassignment");
        else
            ret = ctl_write(c, v, a, r->target, -1, 1, "reassignment of a dead owner's partition");
    }
    free(reqs);
    return ret;
}

static int
ctl_reconcile_one(struct stratus_controller *c, struct ctl_view *v, struct stratus_meta_assign *a)
{
    struct ctl_broker *ob = view_find(v, a->owner), *tb = view_find(v, a->target);
    int32_t want;

    if (!ob) {
        /* No assignment yet, or the owner is dead: assign directly. */
        want = tb && !tb->draining ? a->target : view_pick(v, -1);
        if (want < 0)
            return 0; /* no live broker */
        return ctl_write(c, v, a, want, -1, 0, a->owner < 0 ? "new partition" : "failover");
    }
    want = a->target;
    if (a->target == a->owner)
        want = -1;
    else if (a->target >= 0 && (!tb || tb->draining))
        want = view_pick(v, a->owner); /* the move's target died or drains: re-target/cancel */
    if (ob->draining && want < 0)
        want = view_pick(v, a->owner);
    if (want == a->target)
        return 0;
    return ctl_write(c, v, a, a->owner, want, 0,
                     ob->draining ? "drain"
                     : want < 0   ? "move cancelled"
                                  : "move re-targeted");
}

static void ctl_offsets_topic(struct stratus_controller *c)
{
    struct stratus_meta_topic t;
    struct stratus_errbuf eb;
    uint64_t first, streams[STRATUS_CONTROLLER_OFFSETS_PARTITIONS];
    int64_t now = stratus_mono_ms();
    int rc;

    if (stratus_meta_topic(c->m, STRATUS_CONTROLLER_OFFSETS_TOPIC, &t) == 0) {
        stratus_meta_topic_free(&t);
        return;
    }
    if (c->offsets_try && now - c->offsets_try < CTL_OFFSETS_RETRY)
        return;
    c->offsets_try = now;
    if ((rc = stratus_meta_alloc_ids(c->m, "stream", STRATUS_CONTROLLER_OFFSETS_PARTITIONS, &first,
                                     &eb)) < 0) {
        LOG_WARN("controller", "ids for %s: %s", STRATUS_CONTROLLER_OFFSETS_TOPIC, eb.msg);
        return;
    }
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", STRATUS_CONTROLLER_OFFSETS_TOPIC);
    if (getrandom(t.id, sizeof t.id, 0) != (ssize_t)sizeof t.id) {
        int64_t x = stratus_wall_ms();
        memcpy(t.id, &x, sizeof x);
        memcpy(t.id + 8, &first, sizeof first);
    }
    t.partitions = STRATUS_CONTROLLER_OFFSETS_PARTITIONS;
    for (int i = 0; i < STRATUS_CONTROLLER_OFFSETS_PARTITIONS; i++)
        streams[i] = first + (uint64_t)i;
    t.streams = streams;
    t.ncfg = 0; /* its data is not a Kafka log here: offsets live in groups/<g> */
    rc = stratus_meta_create_topic(c->m, &t, &eb);
    if (rc == 0)
        LOG_INFO("controller", "created %s", STRATUS_CONTROLLER_OFFSETS_TOPIC);
    else if (rc != STRATUS_EEXIST)
        LOG_WARN("controller", "create %s: %s", STRATUS_CONTROLLER_OFFSETS_TOPIC, eb.msg);
}

static void ctl_reconcile(struct stratus_controller *c)
{
    struct stratus_meta_broker *brokers;
    struct stratus_meta_assign *as;
    struct ctl_view v;
    size_t nb, na;

    ctl_offsets_topic(c);
    stratus_meta_brokers(c->m, &brokers, &nb);
    stratus_meta_assignments(c->m, &as, &na); /* sorted by topic, partition */
    v.nb = nb;
    v.b = xcalloc(nb ? nb : 1, sizeof *v.b);
    for (size_t i = 0; i < nb; i++) {
        v.b[i].id = brokers[i].id;
        v.b[i].draining = stratus_meta_draining(c->m, brokers[i].id);
    }
    for (size_t i = 0; i < na; i++) {
        struct ctl_broker *b = view_find(&v, eventual(&as[i]));
        if (b)
            b->total++;
    }
    if (ctl_requests(c, &v, as, na) < 0)
        goto out;
    for (size_t gs = 0; gs < na;) {
        size_t ge = gs;
        while (ge < na && strcmp(as[ge].topic, as[gs].topic) == 0)
            ge++;
        for (size_t i = 0; i < v.nb; i++)
            v.b[i].topic = 0;
        for (size_t i = gs; i < ge; i++) {
            struct ctl_broker *b = view_find(&v, eventual(&as[i]));
            if (b)
                b->topic++;
        }
        for (size_t i = gs; i < ge; i++)
            if (ctl_reconcile_one(c, &v, &as[i]) < 0)
                goto out;
        gs = ge;
    }
out:
    free(v.b);
    free(as);
    free(brokers);
}

/* ---- GC of prepared objects --------------------------------------------------------------- */

static void ctl_gc(struct stratus_controller *c)
{
    struct stratus_meta_prepared *ps;
    size_t n;
    struct stratus_errbuf eb;
    int64_t now = stratus_wall_ms();

    if (stratus_meta_list_prepared(c->m, &ps, &n, &eb) < 0) {
        LOG_WARN("controller", "gc: %s", eb.msg);
        return;
    }
    for (size_t i = 0; i < n && atomic_load(&c->leader); i++) {
        struct stratus_meta_prepared *p = &ps[i];
        int rc;
        if (p->ms + c->ttl_ms > now)
            continue;
        if (!ctl_still_leader(c))
            break;
        rc = stratus_meta_object_committed(c->m, p->object_id, &eb);
        if (rc < 0) {
            LOG_WARN("controller", "gc: %s", eb.msg);
            break;
        }
        if (rc == 0 && c->st && p->key[0]) {
            const char *keys[1] = {p->key};
            rc = stratus_storage_del(c->st, keys, 1, &eb);
            if (rc < 0 && rc != STRATUS_ENOTFOUND) {
                LOG_WARN("controller", "gc: delete %s: %s", p->key, eb.msg);
                continue; /* keep the key: the next round tries again */
            }
        }
        if (stratus_meta_delete_prepared(c->m, p->object_id, &eb) < 0)
            LOG_WARN("controller", "gc: prepared/%" PRIu64 ": %s", p->object_id, eb.msg);
        else
            LOG_INFO("controller", "gc: collected uncommitted object %" PRIu64 " (%s, node %d)",
                     p->object_id, p->key, p->node);
    }
    free(ps);
}

/* ---- GC of deleted topics' streams ------------------------------------------------------- */

/* deltopic/<rev> (left by stratus_meta_delete_topic): every stream of the topic is dropped
 * (tombstone, ranges -> dead ranges), then the entry goes; a failure leaves it for next round. */
static void ctl_deleted_topics_gc(struct stratus_controller *c)
{
    struct stratus_meta_topic *ts;
    size_t n;
    struct stratus_errbuf eb;

    if (stratus_meta_list_deleted_topics(c->m, &ts, &n, &eb) < 0) {
        LOG_WARN("controller", "topic gc: %s", eb.msg);
        return;
    }
    for (size_t i = 0; i < n && atomic_load(&c->leader); i++) {
        int32_t p;
        if (!ctl_still_leader(c))
            break;
        for (p = 0; p < ts[i].partitions; p++)
            if (stratus_meta_drop_stream(c->m, ts[i].streams[p], &eb) < 0) {
                LOG_WARN("controller", "topic gc: stream %" PRIu64 ": %s", ts[i].streams[p],
                         eb.msg);
                break;
            }
        if (p < ts[i].partitions)
            continue;
        if (stratus_meta_forget_deleted_topic(c->m, ts[i].name, &eb) < 0)
            LOG_WARN("controller", "topic gc: deltopic/%s: %s", ts[i].name, eb.msg);
        else
            LOG_INFO("controller", "topic gc: dropped the %d streams of a deleted topic",
                     ts[i].partitions);
    }
    stratus_meta_topics_free(ts, n);
}

/* ---- GC of objects every range of which was trimmed ------------------------------------- */

/* deadrange/<id>/ counts the trimmed ranges of object id; objects/<id>.ranges the committed
 * ones (ranges fenced at commit never count). Equal: no committed range refers to the object
 * any more, so it is deleted from storage, then its keys in one txn (a crash between the two
 * leaves keys whose storage delete is repeated: ENOTFOUND is fine). deadrange keys without
 * objects/<id> (a range trimmed again after its object was collected) are just dropped. */
static void ctl_object_gc(struct stratus_controller *c)
{
    uint64_t *ids;
    size_t n, collected = 0;
    struct stratus_errbuf eb;

    if (stratus_meta_list_dead_objects(c->m, &ids, &n, &eb) < 0) {
        LOG_WARN("controller", "object gc: %s", eb.msg);
        return;
    }
    for (size_t i = 0; i < n && atomic_load(&c->leader); i++) {
        struct stratus_meta_dead_object d;
        if (stratus_meta_dead_object(c->m, ids[i], &d, &eb) < 0) {
            LOG_WARN("controller", "object gc: %s", eb.msg);
            continue;
        }
        if (d.exists && d.dead < d.ranges)
            continue; /* some range still live */
        if (!ctl_still_leader(c))
            break;
        if (d.exists && d.dead > d.ranges)
            LOG_WARN("controller",
                     "object gc: object %" PRIu64 " has %" PRId64 " dead ranges of %" PRId64,
                     d.object_id, d.dead, d.ranges);
        if (d.exists && c->st) {
            const char *keys[1] = {d.key};
            int rc = stratus_storage_del(c->st, keys, 1, &eb);
            if (rc < 0 && rc != STRATUS_ENOTFOUND) {
                LOG_WARN("controller", "object gc: delete %s: %s", d.key, eb.msg);
                continue; /* keep the keys: the next round tries again */
            }
        }
        if (stratus_meta_forget_object(c->m, d.object_id, &eb) < 0) {
            LOG_WARN("controller", "object gc: objects/%" PRIu64 ": %s", d.object_id, eb.msg);
            continue;
        }
        if (d.exists) {
            collected++;
            LOG_DEBUG("controller", "object gc: deleted object %" PRIu64 " (%s)", d.object_id,
                      d.key);
        }
    }
    if (collected)
        LOG_INFO("controller", "object gc: deleted %zu objects whose ranges were all trimmed",
                 collected);
    free(ids);
}

/* ---- GC of dead incarnations' object WAL ------------------------------------------------- */

/* One listed WAL object: wal/<node decimal>/<incarnation, 16 hex digits>/<first lsn>.wal, the
 * prefix node.c gives the object WAL (stratus_node_wal_prefix). */
struct ctl_walobj {
    int32_t node;
    uint64_t inc;
    char *key;
};

struct ctl_wallist {
    struct ctl_walobj *v;
    size_t n, cap;
};

static int ctl_parse_wal_key(const char *key, int32_t *node, uint64_t *inc)
{
    const char *p = key + 4, *slash;
    char *end;
    long nd;
    if (strncmp(key, "wal/", 4) != 0 || *p < '0' || *p > '9')
        return -1;
    errno = 0;
    nd = strtol(p, &end, 10);
    if (errno || *end != '/' || nd < 0 || nd > INT32_MAX)
        return -1;
    p = end + 1;
    slash = strchr(p, '/');
    if (!slash || slash - p != 16)
        return -1;
    for (const char *q = p; q < slash; q++)
        if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f')))
            return -1;
    *inc = strtoull(p, NULL, 16);
    *node = (int32_t)nd;
    return 0;
}

static int ctl_wal_list_cb(void *arg, const struct stratus_object_info *info)
{
    struct ctl_wallist *l = arg;
    int32_t node;
    uint64_t inc;
    if (ctl_parse_wal_key(info->key, &node, &inc) < 0)
        return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = (struct ctl_walobj){.node = node, .inc = inc, .key = xstrdup(info->key)};
    return 0;
}

static struct ctl_walinc *ctl_dead_find(struct stratus_controller *c, int32_t node, uint64_t inc)
{
    for (size_t i = 0; i < c->ndead; i++)
        if (c->dead[i].node == node && c->dead[i].inc == inc)
            return &c->dead[i];
    return NULL;
}

/* Deletes the object WAL of incarnations that are not registered and that no open parts/<stream>
 * names, once they stayed so for the grace period (prepared_ttl): a new owner reads a dead
 * owner's WAL right after its claim, which is when parts/ stops naming it. */
static void ctl_wal_gc(struct stratus_controller *c)
{
    struct ctl_wallist l = {0};
    struct stratus_errbuf eb;
    int64_t now = stratus_mono_ms();
    size_t i, j;

    if (stratus_storage_list(c->st, "wal/", NULL, ctl_wal_list_cb, &l, &eb) < 0) {
        LOG_WARN("controller", "wal gc: list: %s", eb.msg);
        goto out;
    }
    for (i = 0; i < c->ndead; i++)
        c->dead[i].seen = 0;
    for (i = 0; i < l.n; i = j) {
        int32_t node = l.v[i].node;
        uint64_t inc = l.v[i].inc, live_inc = 0;
        struct ctl_walinc *d;
        int needed;
        /* keys of one incarnation are adjacent (listing order) */
        for (j = i + 1; j < l.n && l.v[j].node == node && l.v[j].inc == inc; j++)
            ;
        needed = (stratus_meta_broker_live(c->m, node, &live_inc) && live_inc == inc) ||
                 stratus_meta_wal_needed(c->m, node, inc);
        d = ctl_dead_find(c, node, inc);
        if (needed)
            continue; /* not marked seen: dropped from the table below */
        if (!d) {
            c->dead = xrealloc(c->dead, (c->ndead + 1) * sizeof *c->dead);
            d = &c->dead[c->ndead++];
            *d = (struct ctl_walinc){.node = node, .inc = inc, .since = now};
        }
        d->seen = 1;
        if (now - d->since < c->ttl_ms || !ctl_still_leader(c))
            continue;
        for (size_t k = i; k < j; k += 100) {
            const char *keys[100];
            size_t nk = j - k < 100 ? j - k : 100;
            for (size_t q = 0; q < nk; q++)
                keys[q] = l.v[k + q].key;
            if (stratus_storage_del(c->st, keys, nk, &eb) < 0) {
                LOG_WARN("controller", "wal gc: delete: %s", eb.msg);
                break;
            }
        }
        LOG_INFO("controller", "wal gc: deleted %zu WAL objects of node %d incarnation %016" PRIx64,
                 j - i, node, inc);
    }
    /* forget incarnations that are needed again or whose WAL is gone */
    for (i = 0, j = 0; i < c->ndead; i++)
        if (c->dead[i].seen)
            c->dead[j++] = c->dead[i];
    c->ndead = j;
out:
    for (i = 0; i < l.n; i++)
        free(l.v[i].key);
    free(l.v);
}

/* ---- the thread --------------------------------------------------------------------------- */

static void ctl_wait(struct stratus_controller *c, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    while (!c->stop && !c->dirty) {
        if (pthread_cond_timedwait(&c->cond, &c->mu, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&c->mu);
}

static void *ctl_main(void *arg)
{
    struct stratus_controller *c = arg;
    pthread_setname_np(pthread_self(), "controller"); /* top -H, perf, gdb */
    for (;;) {
        pthread_mutex_lock(&c->mu);
        if (c->stop) {
            pthread_mutex_unlock(&c->mu);
            break;
        }
        c->dirty = 0;
        pthread_mutex_unlock(&c->mu);
        if (!atomic_load(&c->leader))
            ctl_campaign(c);
        if (atomic_load(&c->leader) && ctl_still_leader(c)) {
            ctl_reconcile(c);
            if (atomic_load(&c->leader) && stratus_mono_ms() >= c->next_gc) {
                int64_t every = c->ttl_ms / 10 > 1000 ? c->ttl_ms / 10 : 1000;
                ctl_gc(c);
                if (atomic_load(&c->leader))
                    ctl_deleted_topics_gc(c);
                if (atomic_load(&c->leader))
                    ctl_object_gc(c);
                if (c->st && atomic_load(&c->leader))
                    ctl_wal_gc(c);
                c->next_gc = stratus_mono_ms() + every;
            }
            atomic_fetch_add(&c->passes, 1);
        }
        ctl_wait(c, CTL_PERIOD_MS);
    }
    return NULL;
}

int stratus_controller_start(struct stratus_meta *m,
                             struct stratus_storage *st,
                             int64_t prepared_ttl_ms,
                             struct stratus_controller **out,
                             struct stratus_errbuf *eb)
{
    struct stratus_controller *c = xcalloc(1, sizeof *c);
    pthread_condattr_t ca;
    int err;

    *out = NULL;
    c->m = m;
    c->st = st;
    c->ttl_ms = prepared_ttl_ms > 0 ? prepared_ttl_ms : 600000;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&c->leader, 0);
    atomic_init(&c->passes, 0);
    if ((err = pthread_create(&c->thread, NULL, ctl_main, c)) != 0) {
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return stratus_errf(eb, STRATUS_ENOMEM, "controller: thread: %s", strerror(err));
    }
    *out = c;
    return 0;
}

void stratus_controller_notify(struct stratus_controller *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->dirty = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

int stratus_controller_is_leader(struct stratus_controller *c)
{
    /* The lease is checked here too, not only on the controller's next pass: a broker that
     * unregisters drops its lease before revoking it, so it stops calling itself the
     * controller before another broker can win. */
    int64_t lease;
    if (!c || !atomic_load(&c->leader))
        return 0;
    lease = stratus_meta_lease(c->m);
    return lease != 0 && lease == (int64_t)atomic_load(&c->won_lease);
}

uint64_t stratus_controller_passes(struct stratus_controller *c)
{
    return c ? (uint64_t)atomic_load(&c->passes) : 0;
}

void stratus_controller_stop(struct stratus_controller *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    if (atomic_load(&c->leader)) {
        struct stratus_errbuf eb;
        if (stratus_meta_resign_controller(c->m, c->term, &eb) < 0)
            LOG_DEBUG("controller", "resign: %s", eb.msg);
        atomic_store(&c->leader, 0);
    }
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c->dead);
    free(c);
}
