/* link: stratus_cluster stratus_util */
/* test_meta.c - the metastore (core/cluster/meta.c) against a real single-member etcd:
 * registration (duplicate node id refused, lease loss reported, re-registration), the watched
 * copy following another client's writes, id allocation unique under two threads, claims that
 * bump the epoch and fence the previous claim's commits (lost[] set, the rest committed),
 * the node agent's claim refused on a changed assignment or a lost lease, release hand-over, committed ranges loaded in offset order, log start and group offsets
 * fenced on the claim, prepared objects; retention trims (ranges -> deadrange keys and the log
 * start, split over several txns, fenced by a newer claim), the dead-object bookkeeping, and a
 * deleted topic's streams dropped (tombstone, no claim, old owners fenced); and the latency of
 * fenced commits of 8 partitions.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cluster/meta.h"
#include "etcd_harness.h"
#include "meta_fixture.h"
#include "index/index.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

static struct etcd_member g_m[1];

static struct stratus_meta *open_meta(const char *prefix, int32_t node)
{
    struct stratus_meta_conf conf = {
        .etcd = {.endpoints = g_m[0].url, .prefix = prefix, .request_timeout_ms = 3000},
        .node_id = node,
        .host = "127.0.0.1",
        .port = 9090 + node,
        .rack = "r1",
        .session_ttl_s = 3};
    struct stratus_meta *m = NULL;
    struct stratus_errbuf eb;
    int rc = stratus_meta_open(&conf, &m, &eb);
    CHECK_EQ(rc, 0);
    if (rc < 0)
        fprintf(stderr, "open: %s\n", eb.msg);
    return m;
}

/* ---- registration ------------------------------------------------------------------------- */

static atomic_int g_lost;
static void on_lost(void *arg)
{
    (void)arg;
    atomic_fetch_add(&g_lost, 1);
}

static atomic_int g_reregistered;
static void on_lost_reregister(void *arg)
{
    struct stratus_meta *m = arg;
    struct stratus_errbuf eb;
    if (stratus_meta_register(m, NULL, NULL, &eb) == 0)
        atomic_fetch_add(&g_reregistered, 1);
    else
        fprintf(stderr, "re-register: %s\n", eb.msg);
}

static void test_register(void)
{
    struct stratus_meta *a = open_meta("t/reg/", 1), *b = open_meta("t/reg/", 1);
    struct stratus_errbuf eb;
    uint64_t inc1, incb;
    int64_t now, dl, lease;

    CHECK_EQ(stratus_meta_lease(a), 0);
    CHECK_EQ(stratus_meta_incarnation(a), 0);
    CHECK_EQ(stratus_meta_ack_deadline(a), 0);
    CHECK_EQ(stratus_meta_register(a, on_lost, NULL, &eb), 0);
    CHECK(stratus_meta_lease(a) != 0);
    inc1 = stratus_meta_incarnation(a);
    CHECK(inc1 != 0);
    now = stratus_mono_ms();
    dl = stratus_meta_ack_deadline(a);
    CHECK(dl > now && dl <= now + 3000);
    CHECK_EQ(stratus_meta_register(a, on_lost, NULL, &eb), STRATUS_EINVAL); /* already */
    /* another process with the same node id is refused while the first lives */
    CHECK_EQ(stratus_meta_register(b, on_lost, NULL, &eb), STRATUS_EEXIST);
    CHECK_EQ(stratus_meta_lease(b), 0);
    /* keepalives move the deadline forward */
    harness_sleep_ms(2200);
    CHECK(stratus_meta_ack_deadline(a) > dl);
    CHECK(stratus_meta_ack_deadline(a) > stratus_mono_ms());
    CHECK_EQ(atomic_load(&g_lost), 0);
    /* clean stop: the id is free at once */
    CHECK_EQ(stratus_meta_unregister(a, &eb), 0);
    CHECK_EQ(stratus_meta_lease(a), 0);
    CHECK_EQ(stratus_meta_register(b, on_lost, NULL, &eb), 0);
    CHECK(stratus_meta_incarnation(b) != 0 && stratus_meta_incarnation(b) != inc1);
    incb = stratus_meta_incarnation(b);
    /* the lease revoked behind the broker's back: lost() runs, then it registers again */
    lease = stratus_meta_lease(b);
    CHECK_EQ(stratus_etcd_lease_revoke(stratus_meta_etcd(a), lease, &eb), 0);
    WAIT_FOR(atomic_load(&g_lost) == 1, 4000);
    CHECK_EQ(atomic_load(&g_lost), 1);
    CHECK_EQ(stratus_meta_lease(b), 0);
    CHECK_EQ(stratus_meta_ack_deadline(b), 0);
    CHECK_EQ(stratus_meta_register(b, on_lost, NULL, &eb), 0);
    CHECK(stratus_meta_lease(b) != 0 && stratus_meta_lease(b) != lease);
    /* a new lease, the same incarnation: the process's object WAL keeps its name */
    CHECK_EQ(stratus_meta_incarnation(b), incb);
    CHECK_EQ(stratus_meta_register(a, on_lost, NULL, &eb), STRATUS_EEXIST);
    CHECK_EQ(stratus_meta_unregister(b, &eb), 0);
    CHECK_EQ(atomic_load(&g_lost), 1);

    /* lost() may register again right away, on the keepalive thread */
    CHECK_EQ(stratus_meta_register(a, on_lost_reregister, a, &eb), 0);
    lease = stratus_meta_lease(a);
    CHECK_EQ(stratus_etcd_lease_revoke(stratus_meta_etcd(b), lease, &eb), 0);
    WAIT_FOR(atomic_load(&g_reregistered) == 1, 4000);
    CHECK_EQ(atomic_load(&g_reregistered), 1);
    CHECK(stratus_meta_lease(a) != 0 && stratus_meta_lease(a) != lease);
    CHECK_EQ(stratus_meta_incarnation(a), inc1); /* kept across unregister and re-register */
    CHECK_EQ(stratus_meta_broker_live(a, 1, NULL), 0); /* no watch: the copy stays empty */
    CHECK_EQ(stratus_meta_register(b, on_lost, NULL, &eb), STRATUS_EEXIST);
    /* close while registered: the lease is not revoked (it expires) */
    stratus_meta_close(a);
    CHECK_EQ(stratus_meta_register(b, on_lost, NULL, &eb), STRATUS_EEXIST);
    WAIT_FOR(stratus_meta_register(b, on_lost, NULL, &eb) == 0, 6000);
    CHECK(stratus_meta_lease(b) != 0);
    CHECK_EQ(stratus_meta_unregister(b, &eb), 0);
    stratus_meta_close(b);
    CHECK_EQ(atomic_load(&g_lost), 1);
}

/* ---- the watched copy --------------------------------------------------------------------- */

static atomic_int g_changes[STRATUS_META_RESYNC + 1];
static atomic_int g_hold, g_held; /* test_resync: hold the watch thread in the callback */
static void on_change(void *arg, enum stratus_meta_kind kind, const char *key)
{
    (void)arg;
    (void)key;
    atomic_fetch_add(&g_changes[kind], 1);
    if (atomic_load(&g_hold)) {
        atomic_store(&g_held, 1);
        while (atomic_load(&g_hold))
            harness_sleep_ms(10);
    }
}

static int topic_exists(struct stratus_meta *m, const char *name, int32_t partitions)
{
    struct stratus_meta_topic t;
    int ok;
    if (stratus_meta_topic(m, name, &t) < 0)
        return 0;
    ok = t.partitions == partitions;
    stratus_meta_topic_free(&t);
    return ok;
}

static int topic_ncfg(struct stratus_meta *m, const char *name)
{
    struct stratus_meta_topic t;
    int n;
    if (stratus_meta_topic(m, name, &t) < 0)
        return -1;
    n = (int)t.ncfg;
    stratus_meta_topic_free(&t);
    return n;
}

static int owner_of(struct stratus_meta *m, const char *topic, int32_t p)
{
    struct stratus_meta_assign a;
    if (stratus_meta_assignment(m, topic, p, &a) < 0)
        return -2;
    return a.owner;
}

static int part_epoch(struct stratus_meta *m, uint64_t stream)
{
    struct stratus_meta_part p;
    return stratus_meta_part(m, stream, &p) == 0 ? p.epoch : -1;
}

static size_t n_requests(struct stratus_meta *m)
{
    struct stratus_meta_assign *r;
    size_t n;
    stratus_meta_reassign_requests(m, &r, &n);
    free(r);
    return n;
}

static void
make_topic(struct stratus_meta *m, const char *name, int32_t parts, struct stratus_meta_topic *t)
{
    struct stratus_errbuf eb;
    uint64_t first = 0;
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    CHECK_EQ(stratus_meta_alloc_ids(m, "stream", (uint64_t)parts, &first, &eb), 0);
    t->partitions = parts;
    t->streams = calloc((size_t)parts, sizeof *t->streams);
    for (int32_t i = 0; i < parts; i++)
        t->streams[i] = first + (uint64_t)i;
    for (int i = 0; i < 16; i++)
        t->id[i] = (uint8_t)(0xa0 + i);
}

static void test_watch(void)
{
    struct stratus_meta *w = open_meta("t/watch/", 1), *o = open_meta("t/watch/", 2);
    struct stratus_errbuf eb;
    struct stratus_meta_topic t, got;
    struct stratus_meta_claim cl;
    struct stratus_meta_broker *bs;
    struct stratus_meta_assign *as;
    size_t n;
    uint64_t inc = 0;
    char *cn[2] = {"retention.ms", "cleanup.policy"}, *cv[2] = {"1000", "delete"};

    CHECK_EQ(stratus_meta_register(w, NULL, NULL, &eb), 0);
    CHECK_EQ(stratus_meta_start_watch(w, on_change, NULL, &eb), 0);
    CHECK_EQ(stratus_meta_start_watch(w, on_change, NULL, &eb), STRATUS_EINVAL);
    CHECK_EQ(stratus_meta_broker_live(w, 1, NULL), 1); /* loaded by the initial range */
    CHECK_EQ(stratus_meta_controller(w), -1);

    CHECK_EQ(stratus_meta_register(o, NULL, NULL, &eb), 0);
    WAIT_FOR(stratus_meta_broker_live(w, 2, &inc), 3000);
    CHECK_EQ(stratus_meta_broker_live(w, 2, &inc), 1);
    CHECK_EQ(inc, stratus_meta_incarnation(o));
    stratus_meta_brokers(w, &bs, &n);
    CHECK_EQ(n, 2);
    if (n == 2) {
        CHECK_EQ(bs[0].id, 1);
        CHECK_EQ(bs[1].id, 2);
        CHECK_STR(bs[1].host, "127.0.0.1");
        CHECK_EQ(bs[1].port, 9092);
        CHECK_STR(bs[1].rack, "r1");
    }
    free(bs);

    make_topic(o, "orders", 3, &t);
    t.cfg_names = cn;
    t.cfg_values = cv;
    t.ncfg = 2;
    CHECK_EQ(stratus_meta_create_topic(o, &t, &eb), 0);
    CHECK_EQ(stratus_meta_create_topic(o, &t, &eb), STRATUS_EEXIST);
    WAIT_FOR(topic_exists(w, "orders", 3), 3000);
    CHECK_EQ(stratus_meta_topic(w, "orders", &got), 0);
    CHECK_EQ(got.partitions, 3);
    CHECK(got.streams && got.streams[2] == t.streams[2]);
    CHECK_EQ(memcmp(got.id, t.id, 16), 0);
    CHECK_EQ(got.ncfg, 2);
    CHECK(got.mod_revision > 0);
    /* update: CAS on mod_revision */
    got.ncfg = 1;
    CHECK_EQ(stratus_meta_update_topic(o, &got, &eb), 0);
    CHECK_EQ(stratus_meta_update_topic(o, &got, &eb), STRATUS_EEXIST);
    got.ncfg = 2;
    stratus_meta_topic_free(&got);
    WAIT_FOR(topic_ncfg(w, "orders") == 1, 3000);
    CHECK_EQ(topic_ncfg(w, "orders"), 1);

    /* assignments: every partition listed, owner -1 until assigned */
    stratus_meta_assignments(w, &as, &n);
    CHECK_EQ(n, 3);
    CHECK(n == 3 && as[1].owner == -1 && as[1].partition == 1 && as[1].stream == t.streams[1]);
    free(as);
    CHECK_EQ(stratus_meta_set_assign(o, "orders", 1, 2, -1, &eb), 0);
    CHECK_EQ(stratus_meta_set_assign(o, "orders", 2, 1, 2, &eb), 0);
    WAIT_FOR(owner_of(w, "orders", 2) == 1, 3000);
    CHECK_EQ(owner_of(w, "orders", 1), 2);
    CHECK_EQ(owner_of(w, "orders", 0), -1);
    {
        struct stratus_meta_assign a;
        CHECK_EQ(stratus_meta_assignment(w, "orders", 2, &a), 0);
        CHECK_EQ(a.target, 2);
        CHECK_EQ(stratus_meta_assignment(w, "orders", 3, &a), STRATUS_ENOTFOUND);
        CHECK_EQ(stratus_meta_assignment(w, "nope", 0, &a), STRATUS_ENOTFOUND);
    }
    /* parts */
    CHECK_EQ(stratus_meta_claim(o, t.streams[0], &cl, &eb), 0);
    WAIT_FOR(part_epoch(w, t.streams[0]) == 1, 3000);
    {
        struct stratus_meta_part p;
        CHECK_EQ(stratus_meta_part(w, t.streams[0], &p), 0);
        CHECK_EQ(p.owner, 2);
        CHECK_EQ(p.inc, stratus_meta_incarnation(o));
        CHECK_EQ(p.released, 0);
        CHECK_EQ(stratus_meta_wal_needed(w, 2, stratus_meta_incarnation(o)), 1);
        CHECK_EQ(stratus_meta_wal_needed(w, 2, 12345), 0);
        CHECK_EQ(stratus_meta_part(w, 999999, &p), STRATUS_ENOTFOUND);
    }
    stratus_meta_claim_free(&cl);
    /* reassign requests and drain */
    CHECK_EQ(stratus_meta_request_move(o, "orders", 1, 1, &eb), 0);
    WAIT_FOR(n_requests(w) == 1, 3000);
    stratus_meta_reassign_requests(w, &as, &n);
    CHECK_EQ(n, 1);
    CHECK(n == 1 && strcmp(as[0].topic, "orders") == 0 && as[0].partition == 1 &&
          as[0].target == 1 && as[0].stream == t.streams[1]);
    free(as);
    CHECK_EQ(stratus_meta_request_move(o, "orders", 1, -1, &eb), 0);
    CHECK_EQ(stratus_meta_delete_request(o, "orders", 1, &eb), STRATUS_ENOTFOUND);
    WAIT_FOR(n_requests(w) == 0, 3000);
    CHECK_EQ(n_requests(w), 0);
    CHECK_EQ(stratus_meta_set_drain(o, 2, 1, &eb), 0);
    WAIT_FOR(stratus_meta_draining(w, 2), 3000);
    CHECK_EQ(stratus_meta_draining(w, 2), 1);
    CHECK_EQ(stratus_meta_draining(w, 1), 0);
    CHECK_EQ(stratus_meta_set_drain(o, 2, 0, &eb), 0);
    WAIT_FOR(!stratus_meta_draining(w, 2), 3000);
    CHECK_EQ(stratus_meta_draining(w, 2), 0);

    /* delete: the topic and its assignments go */
    CHECK_EQ(stratus_meta_delete_topic(o, "orders", &eb), 0);
    CHECK_EQ(stratus_meta_delete_topic(o, "orders", &eb), STRATUS_ENOTFOUND);
    WAIT_FOR(!topic_exists(w, "orders", 3), 3000);
    CHECK_EQ(topic_exists(w, "orders", 3), 0);
    {
        struct stratus_etcd_resp r;
        struct stratus_etcd_op op = {.type = STRATUS_ETCD_OP_RANGE,
                                     .key = "assign/orders/",
                                     .key_len = 14,
                                     .flags = STRATUS_ETCD_PREFIX,
                                     .count_only = 1};
        CHECK_EQ(stratus_etcd_range(stratus_meta_etcd(o), &op, &r, &eb), 0);
        CHECK_EQ(r.count, 0);
        stratus_etcd_resp_free(&r);
    }
    /* the other broker leaves */
    CHECK_EQ(stratus_meta_unregister(o, &eb), 0);
    WAIT_FOR(!stratus_meta_broker_live(w, 2, NULL), 3000);
    CHECK_EQ(stratus_meta_broker_live(w, 2, NULL), 0);
    CHECK(atomic_load(&g_changes[STRATUS_META_BROKERS]) >= 2);
    CHECK(atomic_load(&g_changes[STRATUS_META_TOPICS]) >= 3);
    CHECK(atomic_load(&g_changes[STRATUS_META_ASSIGN]) >= 2);
    CHECK(atomic_load(&g_changes[STRATUS_META_PARTS]) >= 1);
    CHECK(atomic_load(&g_changes[STRATUS_META_REASSIGN]) >= 2);
    CHECK(atomic_load(&g_changes[STRATUS_META_DRAIN]) >= 2);
    free(t.streams);
    CHECK_EQ(stratus_meta_unregister(w, &eb), 0);
    stratus_meta_close(o);
    stratus_meta_close(w);
}

/* The watch resumes after an etcd restart from a compacted revision: the copy is reloaded
 * (RESYNC) and shows what changed meanwhile. To make the resume come after the compaction, the
 * change callback is held (g_hold) while etcd restarts and the history is compacted. */
static void test_resync(void)
{
    struct stratus_meta *w = open_meta("t/resync/", 1), *o = open_meta("t/resync/", 2);
    struct stratus_errbuf eb;
    struct stratus_etcd_resp r;
    int before;
    uint64_t streams[1] = {77};
    struct stratus_meta_topic t = {.name = "hold", .partitions = 1, .streams = streams};

    CHECK_EQ(stratus_meta_start_watch(w, on_change, NULL, &eb), 0);
    before = atomic_load(&g_changes[STRATUS_META_RESYNC]);
    atomic_store(&g_hold, 1);
    CHECK_EQ(stratus_meta_create_topic(o, &t, &eb), 0);
    WAIT_FOR(atomic_load(&g_held), 3000);
    CHECK_EQ(atomic_load(&g_held), 1); /* the watch thread waits in the callback */
    etcd_member_stop(&g_m[0]);
    CHECK_EQ(etcd_member_spawn(&g_m[0]), 0);
    CHECK_EQ(etcd_wait_ready(g_m[0].url, 15000), 0);
    snprintf(t.name, sizeof t.name, "during");
    CHECK_EQ(stratus_meta_create_topic(o, &t, &eb), 0);
    CHECK_EQ(stratus_etcd_put(stratus_meta_etcd(o), "filler", 6, "x", 1, 0, 0, &r, &eb), 0);
    CHECK_EQ(stratus_etcd_compact(stratus_meta_etcd(o), r.revision, &eb), 0);
    stratus_etcd_resp_free(&r);
    atomic_store(&g_hold, 0);
    WAIT_FOR(atomic_load(&g_changes[STRATUS_META_RESYNC]) > before, 8000);
    CHECK(atomic_load(&g_changes[STRATUS_META_RESYNC]) > before);
    CHECK(topic_exists(w, "during", 1));
    CHECK(topic_exists(w, "hold", 1));
    /* and the new watch follows later changes */
    snprintf(t.name, sizeof t.name, "after");
    CHECK_EQ(stratus_meta_create_topic(o, &t, &eb), 0);
    WAIT_FOR(topic_exists(w, "after", 1), 3000);
    CHECK(topic_exists(w, "after", 1));
    CHECK_EQ(stratus_meta_delete_topic(o, "during", &eb), 0);
    WAIT_FOR(!topic_exists(w, "during", 1), 3000);
    CHECK(!topic_exists(w, "during", 1));
    stratus_meta_close(o);
    stratus_meta_close(w);
}

/* The controller's fenced assignment write: on the term and on the assign key it decided on. */
static void test_assign_cas(void)
{
    struct stratus_meta *m = open_meta("t/cas/", 1), *o = open_meta("t/cas/", 2);
    struct stratus_errbuf eb;
    struct stratus_meta_topic t;
    struct stratus_meta_assign a, stale;
    int64_t term = 0, term2 = 0;

    CHECK_EQ(stratus_meta_register(m, NULL, NULL, &eb), 0);
    CHECK_EQ(stratus_meta_register(o, NULL, NULL, &eb), 0);
    CHECK_EQ(stratus_meta_start_watch(m, NULL, NULL, &eb), 0);
    make_topic(m, "c", 2, &t);
    CHECK_EQ(stratus_meta_create_topic(m, &t, &eb), 0);
    free(t.streams);
    CHECK_EQ(stratus_meta_try_controller(m, &term, &eb), 0);
    CHECK(term > 0);
    CHECK_EQ(stratus_meta_try_controller(o, &term2, &eb), STRATUS_EEXIST);
    WAIT_FOR(stratus_meta_controller(m) == 1, 3000);
    CHECK_EQ(stratus_meta_controller(m), 1);
    WAIT_FOR(topic_exists(m, "c", 2), 3000);
    CHECK_EQ(stratus_meta_assignment(m, "c", 0, &a), 0);
    CHECK_EQ(a.mod_revision, 0);
    stale = a;
    CHECK_EQ(stratus_meta_assign_cas(m, term, &a, 1, -1, 0, &eb), 0);
    CHECK(a.mod_revision > 0 && a.owner == 1 && a.target == -1);
    /* a decision taken on the old state is refused */
    CHECK_EQ(stratus_meta_assign_cas(m, term, &stale, 2, -1, 0, &eb), STRATUS_EEXIST);
    /* the request is consumed in the same txn */
    CHECK_EQ(stratus_meta_request_move(o, "c", 0, 2, &eb), 0);
    CHECK_EQ(stratus_meta_assign_cas(m, term, &a, 1, 2, 1, &eb), 0);
    CHECK_EQ(stratus_meta_delete_request(o, "c", 0, &eb), STRATUS_ENOTFOUND);
    WAIT_FOR(owner_of(m, "c", 0) == 1 && n_requests(m) == 0, 3000);
    {
        struct stratus_meta_assign cur;
        CHECK_EQ(stratus_meta_assignment(m, "c", 0, &cur), 0);
        CHECK_EQ(cur.target, 2);
        CHECK_EQ(cur.mod_revision, a.mod_revision);
    }
    /* a term that no longer leads */
    CHECK_EQ(stratus_meta_assign_cas(m, term + 1000, &a, 1, -1, 0, &eb), STRATUS_ECLOSED);
    CHECK_EQ(stratus_meta_resign_controller(m, term, &eb), 0);
    CHECK_EQ(stratus_meta_assign_cas(m, term, &a, 1, -1, 0, &eb), STRATUS_ECLOSED);
    CHECK_EQ(stratus_meta_try_controller(o, &term2, &eb), 0);
    CHECK(term2 > term);
    WAIT_FOR(stratus_meta_controller(m) == 2, 3000);
    CHECK_EQ(stratus_meta_controller(m), 2);
    /* unregister drops the controller key with the lease */
    CHECK_EQ(stratus_meta_unregister(o, &eb), 0);
    WAIT_FOR(stratus_meta_controller(m) == -1, 3000);
    CHECK_EQ(stratus_meta_controller(m), -1);
    CHECK_EQ(stratus_meta_unregister(m, &eb), 0);
    CHECK_EQ(stratus_meta_try_controller(m, &term, &eb), STRATUS_EINVAL); /* not registered */
    stratus_meta_close(o);
    stratus_meta_close(m);
}

/* ---- ids ---------------------------------------------------------------------------------- */

#define IDS_PER_THREAD 150
struct idthr {
    struct stratus_meta *m;
    uint64_t got[IDS_PER_THREAD * 3];
    int failures;
};

static void *ids_main(void *arg)
{
    struct idthr *t = arg;
    struct stratus_errbuf eb;
    for (int i = 0; i < IDS_PER_THREAD; i++) {
        uint64_t first;
        if (stratus_meta_alloc_ids(t->m, "object", 3, &first, &eb) < 0) {
            t->failures++;
            continue;
        }
        for (int j = 0; j < 3; j++)
            t->got[i * 3 + j] = first + (uint64_t)j;
    }
    return NULL;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void test_ids(void)
{
    static struct idthr t[2];
    static uint64_t all[2 * IDS_PER_THREAD * 3];
    pthread_t th[2];
    size_t n = 0;
    int dups = 0;
    struct stratus_errbuf eb;
    uint64_t first;

    t[0].m = open_meta("t/ids/", 1);
    t[1].m = open_meta("t/ids/", 2);
    CHECK_EQ(stratus_meta_alloc_ids(t[0].m, "fresh", 5, &first, &eb), 0);
    CHECK_EQ(first, 1); /* a new counter starts at 1 */
    CHECK_EQ(stratus_meta_alloc_ids(t[1].m, "fresh", 1, &first, &eb), 0);
    CHECK_EQ(first, 6);
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, ids_main, &t[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(t[0].failures + t[1].failures, 0);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < IDS_PER_THREAD * 3; j++)
            all[n++] = t[i].got[j];
    qsort(all, n, sizeof all[0], u64_cmp);
    for (size_t i = 1; i < n; i++)
        dups += all[i] == all[i - 1];
    CHECK_EQ(dups, 0);
    CHECK_EQ(all[0], 1);
    CHECK_EQ(all[n - 1], n); /* dense: nothing skipped */
    stratus_meta_close(t[0].m);
    stratus_meta_close(t[1].m);
}

/* ---- claims, commits, release ------------------------------------------------------------- */

static struct stratus_index_range
mkrange(uint64_t stream, uint64_t obj, int64_t base, int64_t last, uint64_t pos)
{
    struct stratus_index_range r = {.stream_id = stream,
                                    .base_offset = base,
                                    .last_offset = last,
                                    .max_timestamp = 1700000000000 + last,
                                    .object_id = obj,
                                    .position = pos,
                                    .length = (uint32_t)(100 + last),
                                    .batches = 2};
    return r;
}

static void test_claims(void)
{
    struct stratus_meta *m1 = open_meta("t/claim/", 1), *m2 = open_meta("t/claim/", 2),
                        *m3 = open_meta("t/claim/", 3);
    struct stratus_errbuf eb;
    struct stratus_meta_claim c1[3], c2, c3, tmp;
    struct stratus_index_object obj = {.object_id = 100, .size = 4096, .created_ms = 1};
    struct stratus_index_range r[3];
    struct stratus_meta_commit_item it[3];
    struct stratus_meta_topic t;
    int lost[3];
    size_t committed;
    uint64_t s[3];
    const uint8_t ps[] = {1, 2, 0, 3, 255};

    CHECK_EQ(stratus_meta_claim(m1, 1, &tmp, &eb), STRATUS_EINVAL); /* not registered */
    CHECK_EQ(stratus_meta_register(m1, NULL, NULL, &eb), 0);
    CHECK_EQ(stratus_meta_register(m2, NULL, NULL, &eb), 0);
    CHECK_EQ(stratus_meta_register(m3, NULL, NULL, &eb), 0);
    make_topic(m1, "t", 3, &t);
    CHECK_EQ(stratus_meta_create_topic(m1, &t, &eb), 0);
    for (int i = 0; i < 3; i++) {
        s[i] = t.streams[i];
        CHECK_EQ(stratus_meta_claim(m1, s[i], &c1[i], &eb), 0);
        CHECK_EQ(c1[i].epoch, 1);
        CHECK_EQ(c1[i].had_prev, 0);
        CHECK_EQ(c1[i].stream, s[i]);
    }
    /* first object: all three commit */
    snprintf(obj.key, sizeof obj.key, "data/00/100.sso");
    CHECK_EQ(stratus_meta_prepare_object(m1, 100, obj.key, &eb), 0);
    CHECK_EQ(mx_prepared_exists(m1, 100), 1);
    CHECK_EQ(stratus_meta_object_committed(m1, 100, &eb), 0);
    for (int i = 0; i < 3; i++) {
        r[i] = mkrange(s[i], 100, 0, 9, (uint64_t)i * 200);
        it[i] = (struct stratus_meta_commit_item){.claim = &c1[i], .range = &r[i]};
    }
    CHECK_EQ(stratus_meta_commit_object(m1, &obj, it, 3, lost, &committed, &eb), 0);
    CHECK_EQ(committed, 3);
    CHECK(!lost[0] && !lost[1] && !lost[2]);
    CHECK_EQ(mx_prepared_exists(m1, 100), 0);
    CHECK_EQ(stratus_meta_object_committed(m1, 100, &eb), 1);

    /* node 2 claims stream 1 (m1 did not release: state open) */
    CHECK_EQ(stratus_meta_claim(m2, s[1], &c2, &eb), 0);
    CHECK_EQ(c2.epoch, 2);
    CHECK_EQ(c2.had_prev, 1);
    CHECK_EQ(c2.prev.owner, 1);
    CHECK_EQ(c2.prev.epoch, 1);
    CHECK_EQ(c2.prev.inc, stratus_meta_incarnation(m1));
    CHECK_EQ(c2.prev.released, 0);

    /* second object from m1: stream 1 is fenced, the others commit */
    obj.object_id = 101;
    snprintf(obj.key, sizeof obj.key, "data/00/101.sso");
    CHECK_EQ(stratus_meta_prepare_object(m1, 101, obj.key, &eb), 0);
    for (int i = 0; i < 3; i++) {
        r[i] = mkrange(s[i], 101, 10, 100, (uint64_t)i * 300);
        it[i] = (struct stratus_meta_commit_item){.claim = &c1[i], .range = &r[i]};
    }
    it[0].pstate = ps;
    it[0].pstate_len = sizeof ps;
    CHECK_EQ(stratus_meta_commit_object(m1, &obj, it, 3, lost, &committed, &eb), STRATUS_EEXIST);
    CHECK_EQ(committed, 2);
    CHECK_EQ(lost[0], 0);
    CHECK_EQ(lost[1], 1);
    CHECK_EQ(lost[2], 0);
    CHECK_EQ(mx_prepared_exists(m1, 101), 0);
    {
        struct stratus_etcd_resp er;
        CHECK_EQ(
            stratus_etcd_get(stratus_meta_etcd(m1), "objects/00000000000000000101", 28, &er, &eb),
            0);
        CHECK(er.n_kvs == 1 && strstr(er.kvs[0].value, "\"ranges\":2") &&
              strstr(er.kvs[0].value, "\"key\":\"data/00/101.sso\"") &&
              strstr(er.kvs[0].value, "\"node\":1"));
        stratus_etcd_resp_free(&er);
    }

    /* load_stream: ranges in offset order (9 before 100: zero-padded keys), pstate, log start */
    {
        struct stratus_index_range *rs;
        size_t n;
        int64_t ls;
        uint8_t *p;
        size_t pl;
        CHECK_EQ(stratus_meta_load_stream(m1, s[0], &rs, &n, &ls, &p, &pl, &eb), 0);
        CHECK_EQ(n, 2);
        if (n == 2) {
            CHECK_EQ(rs[0].last_offset, 9);
            CHECK_EQ(rs[0].object_id, 100);
            CHECK_EQ(rs[1].base_offset, 10);
            CHECK_EQ(rs[1].last_offset, 100);
            CHECK_EQ(rs[1].object_id, 101);
            CHECK_EQ(rs[1].position, 0);
            CHECK_EQ(rs[1].length, 200);
            CHECK_EQ(rs[1].batches, 2);
            CHECK_EQ(rs[1].max_timestamp, 1700000000100);
            CHECK_EQ(rs[1].stream_id, s[0]);
        }
        CHECK_EQ(ls, 0);
        CHECK(p && pl == sizeof ps && memcmp(p, ps, pl) == 0);
        free(rs);
        free(p);
        CHECK_EQ(stratus_meta_load_stream(m1, s[1], &rs, &n, &ls, &p, &pl, &eb), 0);
        CHECK_EQ(n, 1); /* the fenced range was not committed */
        CHECK(p == NULL);
        free(rs);
        /* log start: fenced on the claim */
        CHECK_EQ(stratus_meta_set_log_start(m1, &c1[2], 42, &eb), 0);
        CHECK_EQ(stratus_meta_set_log_start(m1, &c1[1], 7, &eb), STRATUS_EEXIST);
        CHECK_EQ(stratus_meta_load_stream(m1, s[2], &rs, &n, &ls, &p, &pl, &eb), 0);
        CHECK_EQ(n, 2);
        CHECK_EQ(ls, 42);
        free(rs);
        free(p);
        CHECK_EQ(stratus_meta_load_stream(m1, 987654, &rs, &n, &ls, &p, &pl, &eb), 0);
        CHECK_EQ(n, 0);
        free(rs);
    }

    /* more ops than etcd takes in one txn: refused before sending */
    {
        struct stratus_meta_commit_item many[64];
        int lost64[64];
        for (int i = 0; i < 64; i++)
            many[i] = (struct stratus_meta_commit_item){
                .claim = &c1[0], .range = &r[0], .pstate = ps, .pstate_len = sizeof ps};
        CHECK_EQ(stratus_meta_commit_object(m1, &obj, many, 64, lost64, &committed, &eb),
                 STRATUS_EINVAL);
        CHECK_EQ(committed, 0);
    }

    /* release hand-over: node 2 gives stream 1 (partition 1) to node 3 */
    CHECK_EQ(stratus_meta_release(m1, &c1[1], "t", 1, 3, &eb), STRATUS_EEXIST); /* fenced */
    CHECK_EQ(stratus_meta_release(m2, &c2, "t", 1, 3, &eb), 0);
    {
        struct stratus_etcd_resp er;
        CHECK_EQ(
            stratus_etcd_get(stratus_meta_etcd(m1), "assign/t/00000000000000000001", 29, &er, &eb),
            0);
        CHECK(er.n_kvs == 1 && strcmp(er.kvs[0].value, "{\"owner\":3,\"target\":-1}") == 0);
        stratus_etcd_resp_free(&er);
    }
    CHECK_EQ(stratus_meta_claim(m3, s[1], &c3, &eb), 0);
    CHECK_EQ(c3.epoch, 3);
    CHECK_EQ(c3.prev.owner, 2);
    CHECK_EQ(c3.prev.released, 1);
    /* the released claim no longer commits either */
    CHECK_EQ(stratus_meta_set_log_start(m2, &c2, 1, &eb), STRATUS_EEXIST);

    /* group offsets fenced on the coordinator partition's claim */
    {
        uint8_t *v;
        size_t vl;
        const uint8_t g[] = "offsets-v1";
        CHECK_EQ(stratus_meta_group_load(m3, "g1", &v, &vl, &eb), STRATUS_ENOTFOUND);
        CHECK_EQ(stratus_meta_group_store(m3, &c3, "g1", g, sizeof g, &eb), 0);
        CHECK_EQ(stratus_meta_group_store(m2, &c2, "g1", g, 3, &eb), STRATUS_EEXIST);
        CHECK_EQ(stratus_meta_group_load(m1, "g1", &v, &vl, &eb), 0);
        CHECK(vl == sizeof g && memcmp(v, g, vl) == 0);
        free(v);
        CHECK_EQ(stratus_meta_group_store(m3, &c3, "g1", NULL, 0, &eb), 0);
        CHECK_EQ(stratus_meta_group_load(m1, "g1", &v, &vl, &eb), STRATUS_ENOTFOUND);
    }

    /* prepared objects for the GC */
    CHECK_EQ(stratus_meta_prepare_object(m3, 555, "data/05/555.sso", &eb), 0);
    {
        struct stratus_meta_prepared *pp;
        size_t n;
        CHECK_EQ(stratus_meta_list_prepared(m1, &pp, &n, &eb), 0);
        CHECK_EQ(n, 1);
        CHECK(n == 1 && pp[0].object_id == 555 && strcmp(pp[0].key, "data/05/555.sso") == 0 &&
              pp[0].node == 3 && pp[0].ms > 0 && pp[0].ms <= stratus_wall_ms());
        free(pp);
        CHECK_EQ(stratus_meta_delete_prepared(m1, 555, &eb), 0);
        CHECK_EQ(mx_prepared_exists(m1, 555), 0);
    }

    for (int i = 0; i < 3; i++)
        stratus_meta_claim_free(&c1[i]);
    stratus_meta_claim_free(&c2);
    stratus_meta_claim_free(&c3);
    free(t.streams);
    stratus_meta_unregister(m1, &eb);
    stratus_meta_unregister(m2, &eb);
    stratus_meta_unregister(m3, &eb);
    stratus_meta_close(m1);
    stratus_meta_close(m2);
    stratus_meta_close(m3);
}

/* ---- retention trim, dead ranges, deleted topics ------------------------------------------ */

static int key_exists(struct stratus_meta *m, const char *key)
{
    struct stratus_etcd_resp er;
    struct stratus_errbuf eb;
    int v;
    if (stratus_etcd_get(stratus_meta_etcd(m), key, strlen(key), &er, &eb) < 0)
        return -1;
    v = (int)er.n_kvs;
    stratus_etcd_resp_free(&er);
    return v;
}

static int64_t prefix_count(struct stratus_meta *m, const char *pfx)
{
    struct stratus_etcd_op op = {.type = STRATUS_ETCD_OP_RANGE,
                                 .key = pfx,
                                 .key_len = strlen(pfx),
                                 .flags = STRATUS_ETCD_PREFIX,
                                 .count_only = 1};
    struct stratus_etcd_resp er;
    struct stratus_errbuf eb;
    int64_t v;
    if (stratus_etcd_range(stratus_meta_etcd(m), &op, &er, &eb) < 0)
        return -1;
    v = er.count;
    stratus_etcd_resp_free(&er);
    return v;
}

/* Commits one object holding one range of each item (a single-range helper). */
static int commit1(struct stratus_meta *m,
                   uint64_t oid,
                   const struct stratus_meta_claim *c,
                   const struct stratus_index_range *r)
{
    struct stratus_index_object obj = {.object_id = oid, .size = 1000, .created_ms = 1};
    struct stratus_meta_commit_item it = {.claim = c, .range = r};
    struct stratus_errbuf eb;
    int lost;
    size_t committed;
    snprintf(obj.key, sizeof obj.key, "data/%02d/%llu.sso", (int)(oid % 100),
             (unsigned long long)oid);
    return stratus_meta_commit_object(m, &obj, &it, 1, &lost, &committed, &eb);
}

static void test_trim(void)
{
    struct stratus_meta *m1 = open_meta("t/trim/", 1), *m2 = open_meta("t/trim/", 2);
    struct stratus_errbuf eb;
    struct stratus_meta_topic t;
    struct stratus_meta_claim c1, c2, cb, cx;
    struct stratus_index_range r[80], *rs;
    struct stratus_index_object obj = {.object_id = 300, .size = 5000, .created_ms = 1};
    struct stratus_meta_commit_item two[2];
    struct stratus_meta_dead_object d;
    int lost[2];
    size_t n, committed;
    int64_t ls;
    uint8_t *p;
    size_t pl;
    uint64_t sa, sb, *ids;
    char k[200];

    CHECK_EQ(stratus_meta_register(m1, NULL, NULL, &eb), 0);
    CHECK_EQ(stratus_meta_register(m2, NULL, NULL, &eb), 0);
    make_topic(m1, "tt", 2, &t);
    CHECK_EQ(stratus_meta_create_topic(m1, &t, &eb), 0);
    sa = t.streams[0];
    sb = t.streams[1];
    CHECK_EQ(stratus_meta_claim(m1, sa, &c1, &eb), 0);
    CHECK_EQ(stratus_meta_claim(m1, sb, &cb, &eb), 0);
    /* object 300 holds a range of each stream; objects 301.. one range of stream a each */
    snprintf(obj.key, sizeof obj.key, "data/00/300.sso");
    r[0] = mkrange(sa, 300, 0, 9, 0);
    r[79] = mkrange(sb, 300, 0, 4, 500);
    two[0] = (struct stratus_meta_commit_item){.claim = &c1, .range = &r[0]};
    two[1] = (struct stratus_meta_commit_item){.claim = &cb, .range = &r[79]};
    CHECK_EQ(stratus_meta_commit_object(m1, &obj, two, 2, lost, &committed, &eb), 0);
    for (int i = 1; i < 75; i++) {
        r[i] = mkrange(sa, 300 + (uint64_t)i, 10 * i, 10 * i + 9, 0);
        CHECK_EQ(commit1(m1, 300 + (uint64_t)i, &c1, &r[i]), 0);
    }

    /* trim of 3 ranges: one txn */
    CHECK_EQ(stratus_meta_trim(m1, &c1, 30, r, 3, &eb), 0);
    CHECK_EQ(stratus_meta_load_stream(m1, sa, &rs, &n, &ls, &p, &pl, &eb), 0);
    CHECK_EQ(n, 72);
    CHECK(n > 0 && rs[0].base_offset == 30 && rs[0].object_id == 303);
    CHECK_EQ(ls, 30);
    free(rs);
    free(p);
    snprintf(k, sizeof k, "deadrange/%020d/%020llu/%020d", 300, (unsigned long long)sa, 9);
    CHECK_EQ(key_exists(m1, k), 1);
    snprintf(k, sizeof k, "deadrange/%020d/%020llu/%020d", 302, (unsigned long long)sa, 29);
    CHECK_EQ(key_exists(m1, k), 1);
    snprintf(k, sizeof k, "ranges/%020llu/%020d", (unsigned long long)sa, 19);
    CHECK_EQ(key_exists(m1, k), 0);
    CHECK_EQ(stratus_meta_list_dead_objects(m1, &ids, &n, &eb), 0);
    CHECK(n == 3 && ids[0] == 300 && ids[1] == 301 && ids[2] == 302);
    free(ids);
    CHECK_EQ(stratus_meta_dead_object(m1, 300, &d, &eb), 0);
    CHECK(d.exists && d.ranges == 2 && d.dead == 1 && strcmp(d.key, "data/00/300.sso") == 0);
    CHECK_EQ(stratus_meta_dead_object(m1, 301, &d, &eb), 0);
    CHECK(d.exists && d.ranges == 1 && d.dead == 1);

    /* trim of 70 ranges (141 ops): split into fenced txns, all applied */
    CHECK_EQ(stratus_meta_trim(m1, &c1, 735, &r[3], 70, &eb), 0);
    CHECK_EQ(stratus_meta_load_stream(m1, sa, &rs, &n, &ls, &p, &pl, &eb), 0);
    CHECK_EQ(n, 2);
    CHECK(n == 2 && rs[0].base_offset == 730 && rs[1].last_offset == 749);
    CHECK_EQ(ls, 735); /* the target log start may be inside the first remaining range */
    free(rs);
    free(p);
    CHECK_EQ(prefix_count(m1, "deadrange/"), 73);

    /* fenced by a newer claim: nothing changes */
    CHECK_EQ(stratus_meta_claim(m2, sa, &c2, &eb), 0);
    CHECK_EQ(stratus_meta_trim(m1, &c1, 750, &r[73], 1, &eb), STRATUS_EEXIST);
    CHECK_EQ(stratus_meta_trim(m1, &c1, 740, NULL, 0, &eb), STRATUS_EEXIST);
    CHECK_EQ(stratus_meta_load_stream(m2, sa, &rs, &n, &ls, &p, &pl, &eb), 0);
    CHECK_EQ(n, 2);
    CHECK_EQ(ls, 735);
    free(rs);
    free(p);
    CHECK_EQ(prefix_count(m1, "deadrange/"), 73);
    /* the new owner trims the next range: only the log start when none is dropped */
    CHECK_EQ(stratus_meta_trim(m2, &c2, 738, NULL, 0, &eb), 0);
    CHECK_EQ(stratus_meta_load_stream(m2, sa, &rs, &n, &ls, &p, &pl, &eb), 0);
    CHECK_EQ(n, 2);
    CHECK_EQ(ls, 738);
    free(rs);
    free(p);

    /* forget: objects/<id> and its deadrange keys go in one txn */
    CHECK_EQ(stratus_meta_forget_object(m1, 301, &eb), 0);
    CHECK_EQ(key_exists(m1, "objects/00000000000000000301"), 0);
    CHECK_EQ(prefix_count(m1, "deadrange/00000000000000000301/"), 0);
    CHECK_EQ(prefix_count(m1, "deadrange/"), 72);

    /* topic deletion: deltopic entry; drop_stream tombstones and kills every range */
    CHECK_EQ(stratus_meta_delete_topic(m1, "tt", &eb), 0);
    CHECK_EQ(stratus_meta_delete_topic(m1, "tt", &eb), STRATUS_ENOTFOUND);
    {
        struct stratus_meta_topic *dt;
        size_t nd;
        CHECK_EQ(stratus_meta_list_deleted_topics(m1, &dt, &nd, &eb), 0);
        CHECK_EQ(nd, 1);
        if (nd == 1) {
            CHECK_EQ(dt[0].partitions, 2);
            CHECK(dt[0].streams[0] == sa && dt[0].streams[1] == sb);
            CHECK_EQ(stratus_meta_drop_stream(m1, sa, &eb), 0);
            CHECK_EQ(stratus_meta_drop_stream(m1, sb, &eb), 0);
            CHECK_EQ(stratus_meta_drop_stream(m1, sb, &eb), 0); /* idempotent */
            CHECK_EQ(stratus_meta_forget_deleted_topic(m1, dt[0].name, &eb), 0);
        }
        stratus_meta_topics_free(dt, nd);
        CHECK_EQ(stratus_meta_list_deleted_topics(m1, &dt, &nd, &eb), 0);
        CHECK_EQ(nd, 0);
        stratus_meta_topics_free(dt, nd);
    }
    snprintf(k, sizeof k, "ranges/%020llu/", (unsigned long long)sa);
    CHECK_EQ(prefix_count(m1, k), 0);
    snprintf(k, sizeof k, "ranges/%020llu/", (unsigned long long)sb);
    CHECK_EQ(prefix_count(m1, k), 0);
    snprintf(k, sizeof k, "logstart/%020llu", (unsigned long long)sa);
    CHECK_EQ(key_exists(m1, k), 0);
    CHECK_EQ(prefix_count(m1, "deadrange/"), 75); /* 72 + the 2 of a + the 1 of b */
    CHECK_EQ(stratus_meta_dead_object(m1, 300, &d, &eb), 0);
    CHECK(d.exists && d.ranges == 2 && d.dead == 2); /* now collectable */
    /* the old owners are fenced, and nobody claims a deleted stream */
    CHECK_EQ(stratus_meta_trim(m1, &cb, 5, &r[79], 1, &eb), STRATUS_EEXIST);
    CHECK_EQ(commit1(m2, 400, &c2, &r[74]), STRATUS_EEXIST);
    CHECK_EQ(stratus_meta_claim(m2, sb, &cx, &eb), STRATUS_ENOTFOUND);

    stratus_meta_claim_free(&c1);
    stratus_meta_claim_free(&c2);
    stratus_meta_claim_free(&cb);
    free(t.streams);
    stratus_meta_unregister(m1, &eb);
    stratus_meta_unregister(m2, &eb);
    stratus_meta_close(m1);
    stratus_meta_close(m2);
}

/* ---- commit latency ----------------------------------------------------------------------- */

static int i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_commit_latency(void)
{
    enum { N = 500, K = 8 };
    struct stratus_meta *m = open_meta("t/lat/", 1);
    struct stratus_errbuf eb;
    struct stratus_meta_claim c[K];
    struct stratus_index_range r[K];
    struct stratus_meta_commit_item it[K];
    static int64_t us[N];
    int lost[K], fails = 0;
    size_t committed;
    int64_t t0;
    uint8_t pst[64];

    memset(pst, 7, sizeof pst);
    CHECK_EQ(stratus_meta_register(m, NULL, NULL, &eb), 0);
    for (int i = 0; i < K; i++)
        CHECK_EQ(stratus_meta_claim(m, 1000 + (uint64_t)i, &c[i], &eb), 0);
    t0 = stratus_mono_us();
    for (int n = 0; n < N; n++) {
        struct stratus_index_object obj = {.object_id = 10000 + (uint64_t)n, .size = 1 << 20};
        int64_t s;
        snprintf(obj.key, sizeof obj.key, "data/%02x/%d.sso", n & 0xff, 10000 + n);
        for (int i = 0; i < K; i++) {
            r[i] = mkrange(1000 + (uint64_t)i, obj.object_id, n * 100, n * 100 + 99,
                           (uint64_t)i * 4096);
            it[i] = (struct stratus_meta_commit_item){
                .claim = &c[i], .range = &r[i], .pstate = pst, .pstate_len = sizeof pst};
        }
        s = stratus_mono_us();
        if (stratus_meta_commit_object(m, &obj, it, K, lost, &committed, &eb) < 0 || committed != K)
            fails++;
        us[n] = stratus_mono_us() - s;
    }
    {
        double secs = (double)(stratus_mono_us() - t0) / 1e6;
        qsort(us, N, sizeof us[0], i64_cmp);
        printf("commit_object (%d partitions, 1 etcd member on /dev/shm): %d commits in %.2f s = "
               "%.0f commits/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
               K, N, secs, N / secs, us[N / 2] / 1000.0, us[N * 99 / 100] / 1000.0,
               us[N - 1] / 1000.0);
    }
    CHECK_EQ(fails, 0);
    {
        struct stratus_index_range *rs;
        size_t n;
        int64_t ls;
        uint8_t *p;
        size_t pl;
        CHECK_EQ(stratus_meta_load_stream(m, 1003, &rs, &n, &ls, &p, &pl, &eb), 0);
        CHECK_EQ(n, N);
        CHECK(n == N && rs[N - 1].last_offset == (N - 1) * 100 + 99);
        free(rs);
        free(p);
    }
    for (int i = 0; i < K; i++)
        stratus_meta_claim_free(&c[i]);
    stratus_meta_unregister(m, &eb);
    stratus_meta_close(m);
}

/* The node agent's claim: refused when the assignment changed since the copy it decided on, or
 * when its lease is gone behind its back (a broker paused past its session); parts/ untouched. */
static void test_claim_assigned(void)
{
    struct stratus_meta *m = open_meta("t/cla/", 1), *o = open_meta("t/cla/", 2);
    struct stratus_etcd_config rc = {.endpoints = g_m[0].url, .prefix = "t/cla/",
                                     .request_timeout_ms = 3000};
    struct stratus_etcd *raw = NULL;
    struct stratus_errbuf eb;
    struct stratus_meta_topic t;
    struct stratus_meta_assign a, a1, a2;
    struct stratus_meta_claim c1 = {0}, c2 = {0}, cx = {0};
    int64_t term = 0;
    uint64_t s0;

    CHECK_EQ(stratus_etcd_open(&rc, &raw, &eb), 0);
    CHECK_EQ(stratus_meta_register(m, NULL, NULL, &eb), 0);
    CHECK_EQ(stratus_meta_register(o, NULL, NULL, &eb), 0);
    CHECK_EQ(stratus_meta_start_watch(m, NULL, NULL, &eb), 0);
    CHECK_EQ(stratus_meta_start_watch(o, NULL, NULL, &eb), 0);
    make_topic(m, "ca", 1, &t);
    CHECK_EQ(stratus_meta_create_topic(m, &t, &eb), 0);
    s0 = t.streams[0];
    free(t.streams);
    CHECK_EQ(stratus_meta_try_controller(m, &term, &eb), 0);
    WAIT_FOR(topic_exists(m, "ca", 1), 3000);
    CHECK_EQ(stratus_meta_assignment(m, "ca", 0, &a), 0);
    CHECK_EQ(stratus_meta_assign_cas(m, term, &a, 1, -1, 0, &eb), 0);
    WAIT_FOR(owner_of(m, "ca", 0) == 1, 3000);
    CHECK_EQ(stratus_meta_assignment(m, "ca", 0, &a1), 0);
    CHECK_EQ(a1.stream, s0);
    CHECK_EQ(stratus_meta_claim_assigned(m, &a1, &c1, &eb), 0);
    CHECK_EQ(c1.epoch, 1);
    /* failed over to 2: node 1's old copy no longer claims */
    CHECK_EQ(stratus_meta_assign_cas(m, term, &a, 2, -1, 0, &eb), 0);
    CHECK_EQ(stratus_meta_claim_assigned(m, &a1, &cx, &eb), STRATUS_EEXIST);
    CHECK(strstr(eb.msg, "assignment changed") != NULL);
    WAIT_FOR(owner_of(o, "ca", 0) == 2, 3000);
    CHECK_EQ(stratus_meta_assignment(o, "ca", 0, &a2), 0);
    CHECK_EQ(stratus_meta_claim_assigned(o, &a2, &c2, &eb), 0);
    CHECK_EQ(c2.epoch, 2);
    CHECK_EQ(c2.prev.owner, 1);
    /* node 2's lease expires behind its back: even with a current assignment, no claim */
    CHECK_EQ(stratus_etcd_lease_revoke(raw, stratus_meta_lease(o), &eb), 0);
    CHECK_EQ(stratus_meta_claim_assigned(o, &a2, &cx, &eb), STRATUS_EEXIST);
    WAIT_FOR(part_epoch(m, s0) == 2, 3000);
    CHECK_EQ(part_epoch(m, s0), 2); /* parts/ kept node 2's claim of epoch 2 */
    stratus_meta_claim_free(&c1);
    stratus_meta_claim_free(&c2);
    stratus_meta_unregister(m, &eb);
    stratus_meta_close(o);
    stratus_meta_close(m);
    stratus_etcd_close(raw);
}

int main(void)
{
    if (mx_etcd_start(g_m, "meta") < 0)
        return 1;
    test_register();
    test_watch();
    test_ids();
    test_assign_cas();
    test_claim_assigned();
    test_claims();
    test_trim();
    test_commit_latency();
    test_resync();
    etcd_cluster_destroy(g_m, 1);
    TEST_REPORT();
}
