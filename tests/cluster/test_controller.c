/* link: stratus_cluster stratus_util */
/* test_controller.c - the controller (core/cluster/controller.c) against a real single-member
 * etcd with three brokers (three meta handles, each with its candidate): one leader at a time;
 * a 30-partition topic spreads 10/10/10 and __consumer_offsets appears; a reassign request
 * becomes {owner, target}; a draining broker gets every partition moved away; a pending move
 * whose target dies is re-targeted; a dead broker's partitions fail over within seconds; the
 * leader unregisters and another takes over; expired prepared objects are collected; objects
 * all of whose ranges were trimmed (or belonged to a deleted topic) are deleted, others kept.
 * The test plays the node agents' part where one is needed (the hand-over after a move).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cluster/controller.h"
#include "cluster/meta.h"
#include "conf/conf.h"
#include "etcd_harness.h"
#include "meta_fixture.h"
#include "index/index.h"
#include "plugin/plugin.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define NB 3

static struct etcd_member g_m[1];

struct node {
    int32_t id;
    struct stratus_meta *m;
    _Atomic(struct stratus_controller *) ctl;
    int up;
};
static struct node g_n[NB];
static atomic_int g_two_leaders; /* set by the sampler if it ever saw two leaders */
static atomic_int g_sampler_stop;

static void on_change(void *arg, enum stratus_meta_kind kind, const char *key)
{
    struct node *n = arg;
    (void)kind;
    (void)key;
    stratus_controller_notify(atomic_load(&n->ctl));
}

static void *sampler_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&g_sampler_stop)) {
        int leaders = 0, seen[NB];
        for (int i = 0; i < NB; i++) {
            seen[i] = stratus_controller_is_leader(atomic_load(&g_n[i].ctl));
            leaders += seen[i];
        }
        if (leaders > 1 && !atomic_exchange(&g_two_leaders, 1)) {
            fprintf(stderr, "sampler: two controllers at once:");
            for (int i = 0; i < NB; i++)
                if (seen[i])
                    fprintf(stderr, " node %d", (int)g_n[i].id);
            fprintf(stderr, "\n");
        }
        harness_sleep_ms(5);
    }
    return NULL;
}

static int leader_index(void)
{
    int idx = -1, count = 0;
    for (int i = 0; i < NB; i++)
        if (stratus_controller_is_leader(atomic_load(&g_n[i].ctl))) {
            idx = i;
            count++;
        }
    return count == 1 ? idx : -1;
}

/* The view of node `viewer`: counts of eventual owners per broker id for one topic; returns the
 * number of partitions with owner -1. */
static int owners(struct stratus_meta *m, const char *topic, int counts[NB + 1], int *targets)
{
    struct stratus_meta_assign *as;
    size_t n;
    int unassigned = 0;
    memset(counts, 0, sizeof(int) * (NB + 1));
    *targets = 0;
    stratus_meta_assignments(m, &as, &n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(as[i].topic, topic) != 0)
            continue;
        if (as[i].owner < 0)
            unassigned++;
        else if (as[i].owner <= NB)
            counts[as[i].owner]++;
        if (as[i].target >= 0)
            (*targets)++;
    }
    free(as);
    return unassigned;
}

static int
all_assigned_to(struct stratus_meta *m, const char *topic, int32_t a, int32_t b, int32_t parts)
{
    struct stratus_meta_assign *as;
    size_t n;
    int ok = 0;
    stratus_meta_assignments(m, &as, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(as[i].topic, topic) == 0 && (as[i].owner == a || as[i].owner == b))
            ok++;
    free(as);
    return ok == parts;
}

static struct stratus_meta_assign get_assign(struct stratus_meta *m, const char *t, int32_t p)
{
    struct stratus_meta_assign a;
    memset(&a, 0, sizeof a);
    a.owner = a.target = -9;
    stratus_meta_assignment(m, t, p, &a);
    return a;
}

/* What a node agent does after resigning: hand the partition to its target. */
static int hand_over_all(struct stratus_meta *m, const char *topic)
{
    struct stratus_meta_assign *as;
    size_t n;
    struct stratus_errbuf eb;
    int moved = 0;
    stratus_meta_assignments(m, &as, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(as[i].topic, topic) == 0 && as[i].target >= 0) {
            CHECK_EQ(stratus_meta_set_assign(m, topic, as[i].partition, as[i].target, -1, &eb), 0);
            moved++;
        }
    free(as);
    return moved;
}

static int first_owned_by(struct stratus_meta *m, const char *topic, int32_t owner, int32_t notp)
{
    struct stratus_meta_assign *as;
    size_t n;
    int p = -1;
    stratus_meta_assignments(m, &as, &n);
    for (size_t i = 0; i < n && p < 0; i++)
        if (strcmp(as[i].topic, topic) == 0 && as[i].owner == owner && as[i].target < 0 &&
            as[i].partition != notp)
            p = as[i].partition;
    free(as);
    return p;
}

static void test_controller(void)
{
    struct stratus_errbuf eb;
    struct stratus_meta_topic t;
    pthread_t sampler;
    int counts[NB + 1], targets, L, a, b;
    uint64_t first;
    char val[128];
    struct stratus_meta *obs; /* an observer: a meta that only watches */

    /* prepared objects: one long expired, one fresh (GC runs at once when a leader wins) */
    {
        struct stratus_meta_conf conf = {.etcd = {.endpoints = g_m[0].url, .prefix = "t/ctl/"},
                                         .node_id = 99};
        CHECK_EQ(stratus_meta_open(&conf, &obs, &eb), 0);
        CHECK_EQ(stratus_meta_start_watch(obs, NULL, NULL, &eb), 0);
        snprintf(val, sizeof val, "{\"key\":\"data/01/1.sso\",\"node\":1,\"ms\":%" PRId64 "}",
                 stratus_wall_ms() - 3600 * 1000);
        CHECK_EQ(stratus_etcd_put(stratus_meta_etcd(obs), "prepared/00000000000000000001", 29, val,
                                  strlen(val), 0, 0, NULL, &eb),
                 0);
        CHECK_EQ(stratus_meta_prepare_object(obs, 2, "data/02/2.sso", &eb), 0);
    }

    for (int i = 0; i < NB; i++) {
        struct stratus_meta_conf conf = {
            .etcd = {.endpoints = g_m[0].url, .prefix = "t/ctl/", .request_timeout_ms = 3000},
            .node_id = i + 1,
            .host = "127.0.0.1",
            .port = 9092 + i,
            .session_ttl_s = 3};
        g_n[i].id = i + 1;
        CHECK_EQ(stratus_meta_open(&conf, &g_n[i].m, &eb), 0);
        CHECK_EQ(stratus_meta_register(g_n[i].m, NULL, NULL, &eb), 0);
        g_n[i].up = 1;
    }
    for (int i = 0; i < NB; i++)
        CHECK_EQ(stratus_meta_start_watch(g_n[i].m, on_change, &g_n[i], &eb), 0);
    for (int i = 0; i < NB; i++) {
        struct stratus_controller *c = NULL;
        CHECK_EQ(stratus_controller_start(g_n[i].m, NULL, 60000, &c, &eb), 0);
        atomic_store(&g_n[i].ctl, c);
    }
    pthread_create(&sampler, NULL, sampler_main, NULL);

    /* one leader, and everybody's copy names it */
    WAIT_FOR(leader_index() >= 0, 5000);
    L = leader_index();
    CHECK(L >= 0);
    if (L < 0)
        goto out;
    WAIT_FOR(stratus_meta_controller(obs) == g_n[L].id, 3000);
    CHECK_EQ(stratus_meta_controller(obs), g_n[L].id);
    /* GC: the expired prepared object is collected, the fresh one stays */
    WAIT_FOR(mx_prepared_exists(obs, 1) == 0, 3000);
    CHECK_EQ(mx_prepared_exists(obs, 1), 0);
    CHECK_EQ(mx_prepared_exists(obs, 2), 1);
    /* __consumer_offsets is created and assigned */
    WAIT_FOR(owners(obs, STRATUS_CONTROLLER_OFFSETS_TOPIC, counts, &targets) == 0 &&
                 counts[1] + counts[2] + counts[3] == 16,
             5000);
    CHECK_EQ(owners(obs, STRATUS_CONTROLLER_OFFSETS_TOPIC, counts, &targets), 0);
    CHECK_EQ(counts[1] + counts[2] + counts[3], 16);

    /* a 30-partition topic spreads 10/10/10 */
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "t30");
    CHECK_EQ(stratus_meta_alloc_ids(obs, "stream", 30, &first, &eb), 0);
    t.partitions = 30;
    t.streams = calloc(30, sizeof *t.streams);
    for (int i = 0; i < 30; i++)
        t.streams[i] = first + (uint64_t)i;
    CHECK_EQ(stratus_meta_create_topic(obs, &t, &eb), 0);
    free(t.streams);
    WAIT_FOR(owners(obs, "t30", counts, &targets) == 0 && counts[1] + counts[2] + counts[3] == 30,
             5000);
    CHECK_EQ(owners(obs, "t30", counts, &targets), 0);
    CHECK_EQ(counts[1], 10);
    CHECK_EQ(counts[2], 10);
    CHECK_EQ(counts[3], 10);
    CHECK_EQ(targets, 0);

    /* a reassign request -> {owner, target}, the request consumed */
    a = (L + 1) % NB; /* two non-leaders */
    b = (L + 2) % NB;
    {
        int p = first_owned_by(obs, "t30", g_n[a].id, -1);
        struct stratus_meta_assign *rq;
        size_t nrq = 1;
        CHECK(p >= 0);
        CHECK_EQ(stratus_meta_request_move(obs, "t30", p, g_n[b].id, &eb), 0);
        WAIT_FOR(get_assign(obs, "t30", p).target == g_n[b].id, 3000);
        CHECK_EQ(get_assign(obs, "t30", p).owner, g_n[a].id);
        CHECK_EQ(get_assign(obs, "t30", p).target, g_n[b].id);
        WAIT_FOR((stratus_meta_reassign_requests(obs, &rq, &nrq), free(rq), nrq == 0), 3000);
        CHECK_EQ(nrq, 0);
        /* the owner hands over */
        CHECK_EQ(stratus_meta_set_assign(obs, "t30", p, g_n[b].id, -1, &eb), 0);
        /* a request for a broker that is not live is dropped */
        CHECK_EQ(stratus_meta_request_move(obs, "t30", p, 77, &eb), 0);
        WAIT_FOR((stratus_meta_reassign_requests(obs, &rq, &nrq), free(rq), nrq == 0), 3000);
        CHECK_EQ(nrq, 0);
        harness_sleep_ms(300);
        CHECK_EQ(get_assign(obs, "t30", p).owner, g_n[b].id);
        CHECK_EQ(get_assign(obs, "t30", p).target, -1);
    }

    /* drain node a: every partition of it gets a target elsewhere; after the hand-overs it owns
     * nothing and nothing moves back */
    CHECK_EQ(stratus_meta_set_drain(obs, g_n[a].id, 1, &eb), 0);
    WAIT_FOR((owners(obs, "t30", counts, &targets), targets == counts[g_n[a].id] && targets > 0),
             3000);
    owners(obs, "t30", counts, &targets);
    CHECK_EQ(targets, counts[g_n[a].id]);
    CHECK(counts[g_n[a].id] > 0);
    {
        struct stratus_meta_assign *as;
        size_t n;
        int bad = 0;
        stratus_meta_assignments(obs, &as, &n);
        for (size_t i = 0; i < n; i++)
            if (as[i].owner == g_n[a].id && (as[i].target < 0 || as[i].target == g_n[a].id))
                bad++;
        free(as);
        CHECK_EQ(bad, 0);
    }
    CHECK(hand_over_all(obs, "t30") > 0);
    CHECK(hand_over_all(obs, STRATUS_CONTROLLER_OFFSETS_TOPIC) >= 0);
    WAIT_FOR((owners(obs, "t30", counts, &targets), counts[g_n[a].id] == 0 && targets == 0), 3000);
    harness_sleep_ms(1200); /* a controller pass or two */
    owners(obs, "t30", counts, &targets);
    CHECK_EQ(counts[g_n[a].id], 0);
    CHECK_EQ(targets, 0);
    CHECK_EQ(counts[g_n[L].id] + counts[g_n[b].id], 30);
    CHECK_EQ(stratus_meta_set_drain(obs, g_n[a].id, 0, &eb), 0);

    /* a pending move to node a (owner b); then node a dies: the move is re-targeted to the
     * leader, and a's partitions fail over (a owns some again after the undrain? no: a owns
     * nothing now, so give it one first) */
    {
        int pa = first_owned_by(obs, "t30", g_n[b].id, -1);
        int pmove = first_owned_by(obs, "t30", g_n[b].id, pa);
        int64_t t0;
        CHECK(pa >= 0 && pmove >= 0);
        /* node a gets pa (directly, as after a completed move) */
        CHECK_EQ(stratus_meta_set_assign(obs, "t30", pa, g_n[a].id, -1, &eb), 0);
        CHECK_EQ(stratus_meta_request_move(obs, "t30", pmove, g_n[a].id, &eb), 0);
        WAIT_FOR(get_assign(obs, "t30", pmove).target == g_n[a].id, 3000);
        CHECK_EQ(get_assign(obs, "t30", pmove).target, g_n[a].id);
        CHECK_EQ(get_assign(obs, "t30", pa).owner, g_n[a].id);
        t0 = stratus_mono_ms();
        CHECK_EQ(stratus_meta_unregister(g_n[a].m, &eb), 0);
        g_n[a].up = 0;
        WAIT_FOR(all_assigned_to(obs, "t30", g_n[L].id, g_n[b].id, 30) &&
                     get_assign(obs, "t30", pmove).target != g_n[a].id,
                 5000);
        printf("failover of a dead broker's partitions: %lld ms\n",
               (long long)(stratus_mono_ms() - t0));
        CHECK(stratus_mono_ms() - t0 < 3000);
        CHECK(all_assigned_to(obs, "t30", g_n[L].id, g_n[b].id, 30));
        CHECK(all_assigned_to(obs, STRATUS_CONTROLLER_OFFSETS_TOPIC, g_n[L].id, g_n[b].id, 16));
        CHECK_EQ(get_assign(obs, "t30", pa).target, -1);
        CHECK(get_assign(obs, "t30", pa).owner == g_n[L].id ||
              get_assign(obs, "t30", pa).owner == g_n[b].id);
        CHECK_EQ(get_assign(obs, "t30", pmove).owner, g_n[b].id);
        CHECK_EQ(get_assign(obs, "t30", pmove).target, g_n[L].id); /* re-targeted */
    }

    /* the leader unregisters: b takes over, and L's partitions fail over to b */
    {
        int64_t t0 = stratus_mono_ms();
        CHECK_EQ(stratus_meta_unregister(g_n[L].m, &eb), 0);
        g_n[L].up = 0;
        WAIT_FOR(leader_index() == b, 5000);
        printf("controller takeover: %lld ms\n", (long long)(stratus_mono_ms() - t0));
        CHECK_EQ(leader_index(), b);
        CHECK_EQ(stratus_controller_is_leader(atomic_load(&g_n[L].ctl)), 0);
        WAIT_FOR(stratus_meta_controller(obs) == g_n[b].id, 3000);
        CHECK_EQ(stratus_meta_controller(obs), g_n[b].id);
        WAIT_FOR(all_assigned_to(obs, "t30", g_n[b].id, g_n[b].id, 30), 5000);
        CHECK(all_assigned_to(obs, "t30", g_n[b].id, g_n[b].id, 30));
        /* the pending move to the dead leader: no live target left, cancelled */
        owners(obs, "t30", counts, &targets);
        CHECK_EQ(targets, 0);
        WAIT_FOR(stratus_controller_passes(atomic_load(&g_n[b].ctl)) > 0, 3000);
        CHECK(stratus_controller_passes(atomic_load(&g_n[b].ctl)) > 0);
    }

out:
    atomic_store(&g_sampler_stop, 1);
    pthread_join(sampler, NULL);
    CHECK_EQ(atomic_load(&g_two_leaders), 0);
    for (int i = 0; i < NB; i++) {
        struct stratus_controller *c = atomic_exchange(&g_n[i].ctl, NULL);
        stratus_controller_stop(c);
    }
    for (int i = 0; i < NB; i++) {
        if (g_n[i].up)
            stratus_meta_unregister(g_n[i].m, &eb);
        stratus_meta_close(g_n[i].m);
    }
    stratus_meta_close(obs);
}

/* ---- object WAL GC ------------------------------------------------------------------------ */

static int obj_exists(struct stratus_storage *st, const char *key)
{
    struct stratus_object_info info;
    struct stratus_errbuf eb;
    int rc = stratus_storage_head(st, key, &info, &eb);
    return rc == 0 ? 1 : rc == STRATUS_ENOTFOUND ? 0 : -1;
}

static void put_obj(struct stratus_storage *st, const char *key)
{
    struct stratus_errbuf eb;
    CHECK_EQ(stratus_storage_put(st, key, "wal", 3, NULL, NULL, &eb), 0);
}

/* Dead incarnations' WAL objects go after the grace period (prepared_ttl, 2 s here); the live
 * incarnation's, one that an open partition names, and keys of another shape stay; the named
 * one goes once its partition is released. */
static void test_wal_gc(struct stratus_storage *st)
{
    struct stratus_meta_conf conf = {
        .etcd = {.endpoints = g_m[0].url, .prefix = "t/walgc/", .request_timeout_ms = 3000},
        .node_id = 1,
        .host = "127.0.0.1",
        .port = 9092,
        .session_ttl_s = 3};
    struct stratus_meta *m = NULL;
    struct stratus_controller *c = NULL;
    struct stratus_errbuf eb;
    struct node n = {.id = 1};
    char live[128];
    const char *dead1 = "wal/7/00000000000000aa/00000000000000000000.wal",
               *dead2 = "wal/7/00000000000000aa/00000000000000004096.wal",
               *named = "wal/8/00000000000000bb/00000000000000000000.wal",
               *other = "wal/local/00000000000000000000.wal";
    const char *open_v = "{\"epoch\":1,\"owner\":8,\"inc\":\"187\",\"state\":\"open\"}",
               *rel_v = "{\"epoch\":1,\"owner\":8,\"inc\":\"187\",\"state\":\"released\"}";
    int64_t t0;

    CHECK_EQ(stratus_meta_open(&conf, &m, &eb), 0);
    CHECK_EQ(stratus_meta_register(m, NULL, NULL, &eb), 0);
    snprintf(live, sizeof live, "wal/1/%016" PRIx64 "/00000000000000000000.wal",
             stratus_meta_incarnation(m));
    put_obj(st, dead1);
    put_obj(st, dead2);
    put_obj(st, named);
    put_obj(st, other);
    put_obj(st, live);
    CHECK_EQ(stratus_etcd_put(stratus_meta_etcd(m), "parts/00000000000000000005", 26, open_v,
                              strlen(open_v), 0, 0, NULL, &eb),
             0);
    n.m = m;
    CHECK_EQ(stratus_meta_start_watch(m, on_change, &n, &eb), 0);
    t0 = stratus_mono_ms();
    CHECK_EQ(stratus_controller_start(m, st, 2000, &c, &eb), 0);
    atomic_store(&n.ctl, c);
    WAIT_FOR(stratus_controller_is_leader(c), 5000);
    CHECK(stratus_controller_is_leader(c));
    harness_sleep_ms(1000);
    CHECK_EQ(obj_exists(st, dead1), 1); /* not before the grace period */
    WAIT_FOR(obj_exists(st, dead1) == 0 && obj_exists(st, dead2) == 0, 8000);
    CHECK(stratus_mono_ms() - t0 >= 2000);
    CHECK_EQ(obj_exists(st, dead1), 0);
    CHECK_EQ(obj_exists(st, dead2), 0);
    CHECK_EQ(obj_exists(st, named), 1);
    CHECK_EQ(obj_exists(st, other), 1);
    CHECK_EQ(obj_exists(st, live), 1);
    /* the partition naming node 8's incarnation is released: its WAL goes too */
    CHECK_EQ(stratus_etcd_put(stratus_meta_etcd(m), "parts/00000000000000000005", 26, rel_v,
                              strlen(rel_v), 0, 0, NULL, &eb),
             0);
    WAIT_FOR(obj_exists(st, named) == 0, 8000);
    CHECK_EQ(obj_exists(st, named), 0);
    CHECK_EQ(obj_exists(st, live), 1);
    CHECK_EQ(obj_exists(st, other), 1);
    stratus_controller_stop(atomic_exchange(&n.ctl, NULL));
    CHECK_EQ(stratus_meta_unregister(m, &eb), 0);
    stratus_meta_close(m);
}

/* ---- object GC: objects all of whose ranges were trimmed ---------------------------------- */

static int commit_two(struct stratus_meta *m,
                      uint64_t oid,
                      const char *key,
                      const struct stratus_meta_claim *ca,
                      const struct stratus_index_range *ra,
                      const struct stratus_meta_claim *cb,
                      const struct stratus_index_range *rb)
{
    struct stratus_index_object obj = {.object_id = oid, .size = 3, .created_ms = 1};
    struct stratus_meta_commit_item it[2] = {{.claim = ca, .range = ra},
                                             {.claim = cb, .range = rb}};
    struct stratus_errbuf eb;
    int lost[2];
    size_t committed;
    snprintf(obj.key, sizeof obj.key, "%s", key);
    return stratus_meta_commit_object(m, &obj, it, cb ? 2 : 1, lost, &committed, &eb);
}

static int objects_key(struct stratus_meta *m, uint64_t oid)
{
    char k[64];
    struct stratus_etcd_resp er;
    struct stratus_errbuf eb;
    int v;
    snprintf(k, sizeof k, "objects/%020" PRIu64, oid);
    if (stratus_etcd_get(stratus_meta_etcd(m), k, strlen(k), &er, &eb) < 0)
        return -1;
    v = (int)er.n_kvs;
    stratus_etcd_resp_free(&er);
    return v;
}

/* Object 10 holds a range of streams a and b, both trimmed: deleted from storage, its keys
 * gone. Object 11 holds a range of a and b, only a's trimmed: kept. Object 12 holds the only
 * range of a deleted topic's stream: deleted once the controller dropped the topic's streams. */
static void test_object_gc(struct stratus_storage *st)
{
    struct stratus_meta_conf conf = {
        .etcd = {.endpoints = g_m[0].url, .prefix = "t/objgc/", .request_timeout_ms = 3000},
        .node_id = 1,
        .host = "127.0.0.1",
        .port = 9092,
        .session_ttl_s = 3};
    struct stratus_meta *m = NULL;
    struct stratus_controller *c = NULL;
    struct stratus_errbuf eb;
    struct stratus_meta_claim ca, cb, cc;
    struct stratus_index_range ra[2], rb[2], rc1;
    struct stratus_meta_topic t, g;
    struct node n = {.id = 1};
    uint64_t first = 0;
    const char *k10 = "data/10/10.sso", *k11 = "data/11/11.sso", *k12 = "data/12/12.sso";

    CHECK_EQ(stratus_meta_open(&conf, &m, &eb), 0);
    CHECK_EQ(stratus_meta_register(m, NULL, NULL, &eb), 0);
    CHECK_EQ(stratus_meta_alloc_ids(m, "stream", 3, &first, &eb), 0);
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "kept");
    t.partitions = 2;
    t.streams = calloc(2, sizeof *t.streams);
    t.streams[0] = first;
    t.streams[1] = first + 1;
    CHECK_EQ(stratus_meta_create_topic(m, &t, &eb), 0);
    g = t;
    snprintf(g.name, sizeof g.name, "gone");
    g.partitions = 1;
    g.streams = calloc(1, sizeof *g.streams);
    g.streams[0] = first + 2;
    CHECK_EQ(stratus_meta_create_topic(m, &g, &eb), 0);
    CHECK_EQ(stratus_meta_claim(m, first, &ca, &eb), 0);
    CHECK_EQ(stratus_meta_claim(m, first + 1, &cb, &eb), 0);
    CHECK_EQ(stratus_meta_claim(m, first + 2, &cc, &eb), 0);
    for (int i = 0; i < 2; i++) {
        ra[i] = (struct stratus_index_range){.stream_id = first,
                                             .base_offset = 10 * i,
                                             .last_offset = 10 * i + 9,
                                             .object_id = 10 + i,
                                             .length = 1,
                                             .max_timestamp = 1,
                                             .batches = 1};
        rb[i] = ra[i];
        rb[i].stream_id = first + 1;
        rb[i].position = 1;
    }
    rc1 = (struct stratus_index_range){.stream_id = first + 2,
                                       .last_offset = 4,
                                       .object_id = 12,
                                       .length = 1,
                                       .max_timestamp = 1,
                                       .batches = 1};
    put_obj(st, k10);
    put_obj(st, k11);
    put_obj(st, k12);
    CHECK_EQ(commit_two(m, 10, k10, &ca, &ra[0], &cb, &rb[0]), 0);
    CHECK_EQ(commit_two(m, 11, k11, &ca, &ra[1], &cb, &rb[1]), 0);
    CHECK_EQ(commit_two(m, 12, k12, &cc, &rc1, NULL, NULL), 0);
    /* a: both ranges trimmed; b: only object 10's */
    CHECK_EQ(stratus_meta_trim(m, &ca, 20, ra, 2, &eb), 0);
    CHECK_EQ(stratus_meta_trim(m, &cb, 10, rb, 1, &eb), 0);
    CHECK_EQ(stratus_meta_delete_topic(m, "gone", &eb), 0);

    n.m = m;
    CHECK_EQ(stratus_meta_start_watch(m, on_change, &n, &eb), 0);
    CHECK_EQ(stratus_controller_start(m, st, 2000, &c, &eb), 0);
    atomic_store(&n.ctl, c);
    WAIT_FOR(stratus_controller_is_leader(c), 5000);
    CHECK(stratus_controller_is_leader(c));
    WAIT_FOR(obj_exists(st, k10) == 0 && obj_exists(st, k12) == 0 && objects_key(m, 12) == 0, 8000);
    CHECK_EQ(obj_exists(st, k10), 0);
    CHECK_EQ(objects_key(m, 10), 0);
    CHECK_EQ(obj_exists(st, k12), 0);
    CHECK_EQ(objects_key(m, 12), 0);
    CHECK_EQ(obj_exists(st, k11), 1); /* b's range in it is live */
    CHECK_EQ(objects_key(m, 11), 1);
    {
        uint64_t *ids;
        size_t nid;
        CHECK_EQ(stratus_meta_list_dead_objects(m, &ids, &nid, &eb), 0);
        CHECK(nid == 1 && ids[0] == 11); /* 10's and 12's deadrange keys are gone */
        free(ids);
    }
    /* b's range of object 11 is trimmed too: 11 goes */
    CHECK_EQ(stratus_meta_trim(m, &cb, 20, &rb[1], 1, &eb), 0);
    WAIT_FOR(obj_exists(st, k11) == 0 && objects_key(m, 11) == 0, 8000);
    CHECK_EQ(obj_exists(st, k11), 0);
    CHECK_EQ(objects_key(m, 11), 0);
    stratus_controller_stop(atomic_exchange(&n.ctl, NULL));
    stratus_meta_claim_free(&ca);
    stratus_meta_claim_free(&cb);
    stratus_meta_claim_free(&cc);
    free(t.streams);
    free(g.streams);
    CHECK_EQ(stratus_meta_unregister(m, &eb), 0);
    stratus_meta_close(m);
}

int main(void)
{
    if (mx_etcd_start(g_m, "ctl") < 0)
        return 1;
    test_controller();
    {
        struct stratus_errbuf eb;
        struct stratus_storage *st = NULL;
        struct stratus_conf *conf = stratus_conf_new();
        const char *pd = getenv("STRATUS_PLUGIN_DIR");
        char dir[64] = "/tmp/stratus-test-ctl-XXXXXX", buf[256];
        CHECK(mkdtemp(dir) != NULL);
        snprintf(buf, sizeof buf, "storage.path=%s", dir);
        CHECK_EQ(stratus_conf_set(conf, "storage.plugin=local", &eb), 0);
        CHECK_EQ(stratus_conf_set(conf, buf, &eb), 0);
        if (stratus_storage_open(conf, "storage", pd ? pd : "plugins", &st, &eb) == 0) {
            test_wal_gc(st);
            test_object_gc(st);
            stratus_storage_close(st);
        } else {
            fprintf(stderr, "storage open: %s\n", eb.msg);
            CHECK(0);
        }
        stratus_conf_free(conf);
        snprintf(buf, sizeof buf, "rm -rf '%s'", dir);
        if (system(buf) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    etcd_cluster_destroy(g_m, 1);
    TEST_REPORT();
}
