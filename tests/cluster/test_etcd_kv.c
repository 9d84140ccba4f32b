/* link: stratus_cluster stratus_util */
/* test_etcd_kv.c - the etcd client against a real single-member etcd: binary KV round trips,
 * the key prefix, prefix ranges (limit, revision, keys_only, count_only), deletes, txn success
 * and failure paths with every compare target, optimistic concurrency from two threads, leases
 * (expiry, keepalive, revoke, loss callback), watches (order, prev_kv, txn events, compaction)
 * and a watch that survives an etcd restart on the same data dir and port; auth with token
 * refresh runs in test_etcd_auth.c.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "etcd_harness.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

static struct etcd_member g_m[1];

static struct stratus_etcd *open_client(const char *prefix)
{
    struct stratus_etcd_config cfg = {
        .endpoints = g_m[0].url, .prefix = prefix, .request_timeout_ms = 3000};
    struct stratus_etcd *c = NULL;
    struct stratus_errbuf eb;
    int rc = stratus_etcd_open(&cfg, &c, &eb);
    CHECK_EQ(rc, 0);
    if (rc)
        fprintf(stderr, "open: %s\n", eb.msg);
    return c;
}

static int put_str(struct stratus_etcd *c, const char *k, const char *v, int64_t lease)
{
    struct stratus_errbuf eb;
    int rc = stratus_etcd_put(c, k, strlen(k), v, strlen(v), lease, 0, NULL, &eb);
    if (rc)
        fprintf(stderr, "put %s: %s\n", k, eb.msg);
    return rc;
}

/* The value of k ("" when absent), in buf. */
static const char *get_str(struct stratus_etcd *c, const char *k, char *buf, size_t cap)
{
    struct stratus_etcd_resp r;
    struct stratus_errbuf eb;
    buf[0] = 0;
    if (stratus_etcd_get(c, k, strlen(k), &r, &eb) == 0) {
        if (r.n_kvs == 1)
            snprintf(buf, cap, "%s", r.kvs[0].value);
        stratus_etcd_resp_free(&r);
    } else {
        snprintf(buf, cap, "<error %s>", eb.msg);
    }
    return buf;
}

static void test_kv_binary(void)
{
    struct stratus_etcd *c = open_client("t/kv/"), *raw = open_client(NULL);
    struct stratus_etcd_resp r, p;
    struct stratus_errbuf eb;
    unsigned char key[7] = {'b', 0, 1, 0xff, 0xfe, '\n', 'z'}, val[256];
    char buf[64];

    for (int i = 0; i < 256; i++)
        val[i] = (unsigned char)(255 - i);
    CHECK_EQ(stratus_etcd_put(c, key, sizeof key, val, sizeof val, 0, 0, &r, &eb), 0);
    CHECK(r.revision > 0);
    stratus_etcd_resp_free(&r);
    CHECK_EQ(stratus_etcd_get(c, key, sizeof key, &r, &eb), 0);
    CHECK_EQ(r.n_kvs, 1);
    if (r.n_kvs == 1) {
        CHECK_EQ(r.kvs[0].key_len, sizeof key);
        CHECK(memcmp(r.kvs[0].key, key, sizeof key) == 0);
        CHECK_EQ(r.kvs[0].value_len, sizeof val);
        CHECK(memcmp(r.kvs[0].value, val, sizeof val) == 0);
        CHECK_EQ(r.kvs[0].version, 1);
        CHECK(r.kvs[0].create_revision > 0 && r.kvs[0].mod_revision == r.kvs[0].create_revision);
    }
    stratus_etcd_resp_free(&r);
    /* The prefix is real: the raw client sees "t/kv/" + key. */
    {
        unsigned char full[5 + sizeof key];
        memcpy(full, "t/kv/", 5);
        memcpy(full + 5, key, sizeof key);
        CHECK_EQ(stratus_etcd_get(raw, full, sizeof full, &r, &eb), 0);
        CHECK_EQ(r.n_kvs, 1);
        stratus_etcd_resp_free(&r);
    }
    /* Absent key: no kvs, no error. Empty value round trips. */
    CHECK_EQ(stratus_etcd_get(c, "nope", 4, &r, &eb), 0);
    CHECK_EQ(r.n_kvs, 0);
    CHECK_EQ(r.count, 0);
    stratus_etcd_resp_free(&r);
    CHECK_EQ(put_str(c, "empty", "", 0), 0);
    CHECK_EQ(stratus_etcd_get(c, "empty", 5, &r, &eb), 0);
    CHECK(r.n_kvs == 1 && r.kvs[0].value_len == 0 && r.kvs[0].value[0] == 0);
    stratus_etcd_resp_free(&r);
    /* put with prev_kv */
    CHECK_EQ(put_str(c, "pk", "one", 0), 0);
    CHECK_EQ(stratus_etcd_put(c, "pk", 2, "two", 3, 0, STRATUS_ETCD_PREV_KV, &p, &eb), 0);
    CHECK(p.n_kvs == 1 && strcmp(p.kvs[0].value, "one") == 0 && strcmp(p.kvs[0].key, "pk") == 0);
    stratus_etcd_resp_free(&p);
    CHECK_STR(get_str(c, "pk", buf, sizeof buf), "two");
    /* delete single with prev_kv */
    CHECK_EQ(stratus_etcd_delete(c, "pk", 2, STRATUS_ETCD_PREV_KV, &p, &eb), 0);
    CHECK_EQ(p.count, 1);
    CHECK(p.n_kvs == 1 && strcmp(p.kvs[0].value, "two") == 0);
    stratus_etcd_resp_free(&p);
    CHECK_EQ(stratus_etcd_delete(c, "pk", 2, 0, &p, &eb), 0);
    CHECK_EQ(p.count, 0);
    stratus_etcd_resp_free(&p);
    /* a lease that does not exist */
    CHECK_EQ(stratus_etcd_put(c, "x", 1, "v", 1, 12345, 0, NULL, &eb), STRATUS_ENOTFOUND);
    stratus_etcd_close(c);
    stratus_etcd_close(raw);
}

static void test_ranges(void)
{
    struct stratus_etcd *c = open_client("t/range/");
    struct stratus_etcd_resp r;
    struct stratus_etcd_op op = {
        .type = STRATUS_ETCD_OP_RANGE, .key = "r/", .key_len = 2, .flags = STRATUS_ETCD_PREFIX};
    struct stratus_errbuf eb;
    int64_t rev_before = 0;
    char k[16], v[16];

    for (int i = 0; i < 10; i++) {
        snprintf(k, sizeof k, "r/%02d", i);
        snprintf(v, sizeof v, "v%d", i);
        CHECK_EQ(put_str(c, k, v, 0), 0);
    }
    CHECK_EQ(put_str(c, "r0", "outside", 0), 0); /* shares "r" but not "r/" */
    CHECK_EQ(put_str(c, "s", "outside", 0), 0);
    CHECK_EQ(stratus_etcd_range(c, &op, &r, &eb), 0);
    CHECK_EQ(r.n_kvs, 10);
    CHECK_EQ(r.count, 10);
    CHECK_EQ(r.more, 0);
    for (size_t i = 0; i < r.n_kvs; i++) {
        snprintf(k, sizeof k, "r/%02zu", i);
        CHECK_STR(r.kvs[i].key, k);
    }
    rev_before = r.revision;
    stratus_etcd_resp_free(&r);
    op.limit = 3;
    CHECK_EQ(stratus_etcd_range(c, &op, &r, &eb), 0);
    CHECK_EQ(r.n_kvs, 3);
    CHECK_EQ(r.count, 10);
    CHECK_EQ(r.more, 1);
    stratus_etcd_resp_free(&r);
    op.limit = 0;
    op.count_only = 1;
    CHECK_EQ(stratus_etcd_range(c, &op, &r, &eb), 0);
    CHECK_EQ(r.n_kvs, 0);
    CHECK_EQ(r.count, 10);
    stratus_etcd_resp_free(&r);
    op.count_only = 0;
    op.keys_only = 1;
    CHECK_EQ(stratus_etcd_range(c, &op, &r, &eb), 0);
    CHECK_EQ(r.n_kvs, 10);
    CHECK(r.n_kvs == 10 && r.kvs[4].value_len == 0 && strcmp(r.kvs[4].key, "r/04") == 0);
    stratus_etcd_resp_free(&r);
    /* explicit [r/03, r/06) */
    op.keys_only = 0;
    op.flags = 0;
    op.key = "r/03";
    op.key_len = 4;
    op.range_end = "r/06";
    op.range_end_len = 4;
    CHECK_EQ(stratus_etcd_range(c, &op, &r, &eb), 0);
    CHECK_EQ(r.n_kvs, 3);
    stratus_etcd_resp_free(&r);
    /* read at an old revision */
    CHECK_EQ(put_str(c, "r/00", "changed", 0), 0);
    op = (struct stratus_etcd_op){
        .type = STRATUS_ETCD_OP_RANGE, .key = "r/00", .key_len = 4, .revision = rev_before};
    CHECK_EQ(stratus_etcd_range(c, &op, &r, &eb), 0);
    CHECK(r.n_kvs == 1 && strcmp(r.kvs[0].value, "v0") == 0);
    stratus_etcd_resp_free(&r);
    op.revision = rev_before + 1000; /* future */
    CHECK_EQ(stratus_etcd_range(c, &op, &r, &eb), STRATUS_ERANGE);
    /* prefix delete */
    CHECK_EQ(stratus_etcd_delete(c, "r/", 2, STRATUS_ETCD_PREFIX | STRATUS_ETCD_PREV_KV, &r, &eb),
             0);
    CHECK_EQ(r.count, 10);
    CHECK_EQ(r.n_kvs, 10);
    stratus_etcd_resp_free(&r);
    op = (struct stratus_etcd_op){
        .type = STRATUS_ETCD_OP_RANGE, .key = "", .key_len = 0, .flags = STRATUS_ETCD_PREFIX};
    CHECK_EQ(stratus_etcd_range(c, &op, &r, &eb), 0); /* the whole client prefix */
    CHECK_EQ(r.n_kvs, 2);                             /* r0 and s */
    stratus_etcd_resp_free(&r);
    stratus_etcd_close(c);
}

static void test_txn(void)
{
    struct stratus_etcd *c = open_client("t/txn/");
    struct stratus_etcd_txn_result t;
    struct stratus_etcd_resp r;
    struct stratus_errbuf eb;
    struct stratus_etcd_cmp cmp = {.key = "k",
                                   .key_len = 1,
                                   .target = STRATUS_ETCD_CMP_CREATE,
                                   .result = STRATUS_ETCD_EQUAL,
                                   .number = 0};
    struct stratus_etcd_op put = {
        .type = STRATUS_ETCD_OP_PUT, .key = "k", .key_len = 1, .value = "first", .value_len = 5};
    struct stratus_etcd_op get = {.type = STRATUS_ETCD_OP_RANGE, .key = "k", .key_len = 1};
    struct stratus_etcd_op two[2] = {
        {.type = STRATUS_ETCD_OP_PUT, .key = "a", .key_len = 1, .value = "1", .value_len = 1},
        {.type = STRATUS_ETCD_OP_DELETE, .key = "k", .key_len = 1, .flags = STRATUS_ETCD_PREV_KV}};
    int64_t mod;
    char buf[64];

    /* create-if-absent: succeeds once, then fails and returns the range */
    CHECK_EQ(stratus_etcd_txn(c, &cmp, 1, &put, 1, &get, 1, &t, &eb), 0);
    CHECK_EQ(t.succeeded, 1);
    CHECK_EQ(t.n_responses, 1);
    CHECK(t.n_responses == 1 && t.types[0] == STRATUS_ETCD_OP_PUT);
    CHECK(t.revision > 0);
    mod = t.revision;
    stratus_etcd_txn_result_free(&t);
    put.value = "second";
    put.value_len = 6;
    CHECK_EQ(stratus_etcd_txn(c, &cmp, 1, &put, 1, &get, 1, &t, &eb), 0);
    CHECK_EQ(t.succeeded, 0);
    CHECK(t.n_responses == 1 && t.types[0] == STRATUS_ETCD_OP_RANGE && t.responses[0].n_kvs == 1 &&
          strcmp(t.responses[0].kvs[0].value, "first") == 0);
    CHECK_EQ(t.revision, mod);
    stratus_etcd_txn_result_free(&t);
    CHECK_STR(get_str(c, "k", buf, sizeof buf), "first");

    /* every target and operator */
    {
        struct {
            enum stratus_etcd_cmp_target target;
            enum stratus_etcd_cmp_result result;
            int64_t number;
            const char *value;
            int expect;
        } cases[] = {
            {STRATUS_ETCD_CMP_MOD, STRATUS_ETCD_EQUAL, mod, NULL, 1},
            {STRATUS_ETCD_CMP_MOD, STRATUS_ETCD_EQUAL, mod - 1, NULL, 0},
            {STRATUS_ETCD_CMP_MOD, STRATUS_ETCD_NOT_EQUAL, mod - 1, NULL, 1},
            {STRATUS_ETCD_CMP_MOD, STRATUS_ETCD_LESS, mod + 1, NULL, 1},
            {STRATUS_ETCD_CMP_MOD, STRATUS_ETCD_LESS, mod, NULL, 0},
            {STRATUS_ETCD_CMP_MOD, STRATUS_ETCD_GREATER, mod - 1, NULL, 1},
            {STRATUS_ETCD_CMP_CREATE, STRATUS_ETCD_EQUAL, mod, NULL, 1},
            {STRATUS_ETCD_CMP_CREATE, STRATUS_ETCD_GREATER, 0, NULL, 1},
            {STRATUS_ETCD_CMP_VERSION, STRATUS_ETCD_EQUAL, 1, NULL, 1},
            {STRATUS_ETCD_CMP_VERSION, STRATUS_ETCD_GREATER, 1, NULL, 0},
            {STRATUS_ETCD_CMP_VALUE, STRATUS_ETCD_EQUAL, 0, "first", 1},
            {STRATUS_ETCD_CMP_VALUE, STRATUS_ETCD_EQUAL, 0, "firs", 0},
            {STRATUS_ETCD_CMP_VALUE, STRATUS_ETCD_NOT_EQUAL, 0, "other", 1},
            {STRATUS_ETCD_CMP_VALUE, STRATUS_ETCD_LESS, 0, "g", 1},
            {STRATUS_ETCD_CMP_VALUE, STRATUS_ETCD_GREATER, 0, "g", 0},
            {STRATUS_ETCD_CMP_LEASE, STRATUS_ETCD_EQUAL, 0, NULL, 1},
            {STRATUS_ETCD_CMP_LEASE, STRATUS_ETCD_GREATER, 0, NULL, 0},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            struct stratus_etcd_cmp cm = {.key = "k",
                                          .key_len = 1,
                                          .target = cases[i].target,
                                          .result = cases[i].result,
                                          .number = cases[i].number,
                                          .value = cases[i].value,
                                          .value_len = cases[i].value ? strlen(cases[i].value) : 0};
            int rc = stratus_etcd_txn(c, &cm, 1, NULL, 0, NULL, 0, &t, &eb);
            CHECK_EQ(rc, 0);
            if (t.succeeded != cases[i].expect)
                fprintf(stderr, "compare case %zu: succeeded=%d\n", i, t.succeeded);
            CHECK_EQ(t.succeeded, cases[i].expect);
            stratus_etcd_txn_result_free(&t);
        }
    }
    /* two ops in the success branch, several compares */
    {
        struct stratus_etcd_cmp cms[2] = {{.key = "k",
                                           .key_len = 1,
                                           .target = STRATUS_ETCD_CMP_VALUE,
                                           .result = STRATUS_ETCD_EQUAL,
                                           .value = "first",
                                           .value_len = 5},
                                          {.key = "a",
                                           .key_len = 1,
                                           .target = STRATUS_ETCD_CMP_VERSION,
                                           .result = STRATUS_ETCD_EQUAL,
                                           .number = 0}};
        CHECK_EQ(stratus_etcd_txn(c, cms, 2, two, 2, NULL, 0, &t, &eb), 0);
        CHECK_EQ(t.succeeded, 1);
        CHECK_EQ(t.n_responses, 2);
        if (t.n_responses == 2) {
            CHECK(t.types[0] == STRATUS_ETCD_OP_PUT && t.types[1] == STRATUS_ETCD_OP_DELETE);
            CHECK_EQ(t.responses[1].count, 1);
            CHECK(t.responses[1].n_kvs == 1 && strcmp(t.responses[1].kvs[0].value, "first") == 0);
        }
        stratus_etcd_txn_result_free(&t);
        CHECK_EQ(stratus_etcd_get(c, "k", 1, &r, &eb), 0);
        CHECK_EQ(r.n_kvs, 0);
        stratus_etcd_resp_free(&r);
        CHECK_STR(get_str(c, "a", buf, sizeof buf), "1");
    }
    stratus_etcd_close(c);
}

/* Two threads, N rounds: both read the counter (same mod_revision), meet at a barrier, then
 * both try compare(mod_revision) -> put(value+1). Exactly one must win each round. */
#define OCC_ROUNDS 20
struct occ {
    struct stratus_etcd *c;
    pthread_barrier_t *bar;
    int wins[OCC_ROUNDS];
    int errors;
};

static void *occ_main(void *arg)
{
    struct occ *o = arg;
    struct stratus_errbuf eb;
    for (int round = 0; round < OCC_ROUNDS; round++) {
        struct stratus_etcd_resp r;
        struct stratus_etcd_txn_result t;
        int64_t mod = 0;
        long val = 0;
        char nv[32];
        if (stratus_etcd_get(o->c, "ctr", 3, &r, &eb) == 0) {
            if (r.n_kvs == 1) {
                mod = r.kvs[0].mod_revision;
                val = strtol(r.kvs[0].value, NULL, 10);
            }
            stratus_etcd_resp_free(&r);
        } else {
            o->errors++;
        }
        pthread_barrier_wait(o->bar);
        snprintf(nv, sizeof nv, "%ld", val + 1);
        {
            struct stratus_etcd_cmp cm = {.key = "ctr",
                                          .key_len = 3,
                                          .target = STRATUS_ETCD_CMP_MOD,
                                          .result = STRATUS_ETCD_EQUAL,
                                          .number = mod};
            struct stratus_etcd_op put = {.type = STRATUS_ETCD_OP_PUT,
                                          .key = "ctr",
                                          .key_len = 3,
                                          .value = nv,
                                          .value_len = strlen(nv)};
            if (stratus_etcd_txn(o->c, &cm, 1, &put, 1, NULL, 0, &t, &eb) == 0) {
                o->wins[round] = t.succeeded;
                stratus_etcd_txn_result_free(&t);
            } else {
                o->errors++;
            }
        }
        pthread_barrier_wait(o->bar); /* both done before the next read */
    }
    return NULL;
}

static void test_occ(void)
{
    struct stratus_etcd *c1 = open_client("t/occ/"), *c2 = open_client("t/occ/");
    pthread_barrier_t bar;
    struct occ a = {.c = c1, .bar = &bar}, b = {.c = c2, .bar = &bar};
    pthread_t ta, tb;
    char buf[32];
    int ok = 1;

    CHECK_EQ(put_str(c1, "ctr", "0", 0), 0);
    pthread_barrier_init(&bar, NULL, 2);
    pthread_create(&ta, NULL, occ_main, &a);
    pthread_create(&tb, NULL, occ_main, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&bar);
    CHECK_EQ(a.errors + b.errors, 0);
    for (int i = 0; i < OCC_ROUNDS; i++)
        ok &= a.wins[i] + b.wins[i] == 1;
    CHECK(ok);
    snprintf(buf, sizeof buf, "%d", OCC_ROUNDS);
    {
        char got[64];
        CHECK_STR(get_str(c1, "ctr", got, sizeof got), buf);
    }
    stratus_etcd_close(c1);
    stratus_etcd_close(c2);
}

static atomic_int g_lost_count;
static atomic_llong g_lost_lease;
static atomic_int g_lost_code;
static void lease_lost(void *arg, int64_t lease, int code)
{
    (void)arg;
    atomic_store(&g_lost_lease, lease);
    atomic_store(&g_lost_code, code);
    atomic_fetch_add(&g_lost_count, 1);
}

static void test_leases(void)
{
    struct stratus_etcd *c = open_client("t/lease/"), *other = open_client("t/lease/");
    struct stratus_errbuf eb;
    int64_t l_exp = 0, l_keep = 0, l_rev = 0, ttl = 0, granted = 0;
    char buf[64];

    CHECK_EQ(stratus_etcd_lease_grant(c, 2, 0, &l_exp, &ttl, &eb), 0);
    CHECK(l_exp != 0);
    CHECK(ttl >= 2);
    CHECK_EQ(stratus_etcd_lease_grant(c, 2, 0, &l_keep, &ttl, &eb), 0);
    CHECK_EQ(stratus_etcd_lease_grant(c, 30, 0, &l_rev, NULL, &eb), 0);
    CHECK_EQ(put_str(c, "exp", "x", l_exp), 0);
    CHECK_EQ(put_str(c, "keep", "x", l_keep), 0);
    CHECK_EQ(put_str(c, "rev", "x", l_rev), 0);
    CHECK_EQ(stratus_etcd_lease_keep(c, l_keep, ttl, lease_lost, NULL, &eb), 0);
    CHECK_EQ(stratus_etcd_lease_keep(c, l_keep, ttl, lease_lost, NULL, &eb), STRATUS_EEXIST);
    CHECK_EQ(stratus_etcd_lease_timetolive(c, l_rev, &ttl, &granted, &eb), 0);
    CHECK(ttl > 25 && ttl <= 30);
    CHECK_EQ(granted, 30);
    /* revoke deletes the key at once */
    CHECK_EQ(stratus_etcd_lease_revoke(c, l_rev, &eb), 0);
    CHECK_STR(get_str(c, "rev", buf, sizeof buf), "");
    CHECK_EQ(stratus_etcd_lease_timetolive(c, l_rev, &ttl, NULL, &eb), STRATUS_ENOTFOUND);
    CHECK_EQ(stratus_etcd_lease_keepalive_once(c, l_rev, &ttl, &eb), STRATUS_ENOTFOUND);
    /* after 4 s (twice the TTL): the kept key is there, the other expired */
    harness_sleep_ms(4000);
    CHECK_STR(get_str(c, "exp", buf, sizeof buf), "");
    CHECK_STR(get_str(c, "keep", buf, sizeof buf), "x");
    CHECK_EQ(atomic_load(&g_lost_count), 0);
    /* Another client revokes the kept lease: the keepalive thread reports the loss. */
    CHECK_EQ(stratus_etcd_lease_revoke(other, l_keep, &eb), 0);
    for (int i = 0; i < 40 && atomic_load(&g_lost_count) == 0; i++)
        harness_sleep_ms(100);
    CHECK_EQ(atomic_load(&g_lost_count), 1);
    CHECK_EQ(atomic_load(&g_lost_lease), l_keep);
    CHECK_EQ(atomic_load(&g_lost_code), STRATUS_ENOTFOUND);
    CHECK_EQ(stratus_etcd_lease_unkeep(c, l_keep), STRATUS_ENOTFOUND);
    CHECK_STR(get_str(c, "keep", buf, sizeof buf), "");
    stratus_etcd_close(c);
    stratus_etcd_close(other);
}

/* A watch callback that records events. */
#define MAX_EV 256
struct rec {
    pthread_mutex_t mu;
    int n;
    enum stratus_etcd_event_type type[MAX_EV];
    char key[MAX_EV][32];
    char val[MAX_EV][32];
    char prev[MAX_EV][32];
    int64_t rev[MAX_EV];
};

static void rec_cb(void *arg, const struct stratus_etcd_event *ev)
{
    struct rec *r = arg;
    pthread_mutex_lock(&r->mu);
    if (r->n < MAX_EV) {
        r->type[r->n] = ev->type;
        snprintf(r->key[r->n], 32, "%s", ev->kv.key ? ev->kv.key : "");
        snprintf(r->val[r->n], 32, "%s", ev->kv.value ? ev->kv.value : "");
        snprintf(r->prev[r->n], 32, "%s", ev->has_prev_kv ? ev->prev_kv.value : "-");
        r->rev[r->n] = ev->revision;
        r->n++;
    }
    pthread_mutex_unlock(&r->mu);
}

static int rec_wait(struct rec *r, int n, int timeout_ms)
{
    for (int i = 0; i < timeout_ms / 20; i++) {
        int have;
        pthread_mutex_lock(&r->mu);
        have = r->n;
        pthread_mutex_unlock(&r->mu);
        if (have >= n)
            return have;
        harness_sleep_ms(20);
    }
    return r->n;
}

static void test_watch(void)
{
    struct stratus_etcd *c = open_client("t/watch/");
    struct stratus_etcd_watch *w = NULL;
    struct rec *r = calloc(1, sizeof *r);
    struct stratus_etcd_resp resp;
    struct stratus_errbuf eb;
    struct stratus_etcd_watch_opts o = {
        .key = "w/", .key_len = 2, .flags = STRATUS_ETCD_PREFIX | STRATUS_ETCD_PREV_KV};
    int64_t start;
    int ok;

    pthread_mutex_init(&r->mu, NULL);
    CHECK_EQ(stratus_etcd_put(c, "w/a", 3, "0", 1, 0, 0, &resp, &eb), 0);
    start = resp.revision + 1; /* events after this put */
    stratus_etcd_resp_free(&resp);
    CHECK_EQ(put_str(c, "w/a", "1", 0), 0);
    CHECK_EQ(put_str(c, "other", "x", 0), 0); /* outside the watched prefix */
    CHECK_EQ(put_str(c, "w/b", "2", 0), 0);
    o.start_revision = start;
    CHECK_EQ(stratus_etcd_watch_start(c, &o, rec_cb, r, &w, &eb), 0);
    CHECK_EQ(rec_wait(r, 2, 3000), 2);
    CHECK_EQ(stratus_etcd_delete(c, "w/a", 3, 0, NULL, &eb), 0);
    {
        /* one txn = two events at one revision */
        struct stratus_etcd_op ops[2] = {
            {.type = STRATUS_ETCD_OP_PUT, .key = "w/c", .key_len = 3, .value = "3", .value_len = 1},
            {.type = STRATUS_ETCD_OP_PUT,
             .key = "w/d",
             .key_len = 3,
             .value = "4",
             .value_len = 1}};
        struct stratus_etcd_txn_result t;
        CHECK_EQ(stratus_etcd_txn(c, NULL, 0, ops, 2, NULL, 0, &t, &eb), 0);
        stratus_etcd_txn_result_free(&t);
    }
    CHECK_EQ(rec_wait(r, 5, 3000), 5);
    pthread_mutex_lock(&r->mu);
    CHECK(r->type[0] == STRATUS_ETCD_EVENT_PUT && !strcmp(r->key[0], "w/a") &&
          !strcmp(r->val[0], "1") && !strcmp(r->prev[0], "0"));
    CHECK(r->type[1] == STRATUS_ETCD_EVENT_PUT && !strcmp(r->key[1], "w/b") &&
          !strcmp(r->prev[1], "-"));
    CHECK(r->type[2] == STRATUS_ETCD_EVENT_DELETE && !strcmp(r->key[2], "w/a") &&
          !strcmp(r->prev[2], "1"));
    CHECK(!strcmp(r->key[3], "w/c") && !strcmp(r->key[4], "w/d") && r->rev[3] == r->rev[4]);
    ok = 1;
    for (int i = 1; i < r->n; i++)
        ok &= r->rev[i] >= r->rev[i - 1];
    CHECK(ok);
    CHECK_EQ(stratus_etcd_watch_revision(w), r->rev[4]);
    pthread_mutex_unlock(&r->mu);
    CHECK(stratus_etcd_watch_connected(w));

    /* Restart etcd (SIGKILL, same data dir and port): the watch resumes from its revision and
     * gets the writes made while it was disconnected, once each, in order. */
    etcd_member_kill(&g_m[0]);
    harness_sleep_ms(300);
    CHECK_EQ(etcd_member_spawn(&g_m[0]), 0);
    CHECK_EQ(etcd_wait_ready(g_m[0].url, 10000), 0);
    for (int i = 0; i < 5; i++) {
        char k[16], v[16];
        snprintf(k, sizeof k, "w/r%d", i);
        snprintf(v, sizeof v, "%d", 10 + i);
        CHECK_EQ(put_str(c, k, v, 0), 0);
    }
    CHECK_EQ(rec_wait(r, 10, 8000), 10);
    harness_sleep_ms(200);
    pthread_mutex_lock(&r->mu);
    CHECK_EQ(r->n, 10);
    ok = 1;
    for (int i = 5; i < r->n && i < 10; i++) {
        char k[16];
        snprintf(k, sizeof k, "w/r%d", i - 5);
        ok &= strcmp(r->key[i], k) == 0 && r->rev[i] > r->rev[i - 1];
    }
    CHECK(ok);
    pthread_mutex_unlock(&r->mu);
    CHECK(stratus_etcd_watch_reconnects(w) >= 1);
    stratus_etcd_watch_stop(w);

    /* Compaction: a watch from before the compact revision is told so and ends. */
    {
        struct rec *r2 = calloc(1, sizeof *r2);
        struct stratus_etcd_watch *w2 = NULL;
        int64_t now_rev;
        pthread_mutex_init(&r2->mu, NULL);
        CHECK_EQ(stratus_etcd_put(c, "w/z", 3, "z", 1, 0, 0, &resp, &eb), 0);
        now_rev = resp.revision;
        stratus_etcd_resp_free(&resp);
        CHECK_EQ(stratus_etcd_compact(c, now_rev, &eb), 0);
        o.start_revision = start;
        CHECK_EQ(stratus_etcd_watch_start(c, &o, rec_cb, r2, &w2, &eb), 0);
        CHECK_EQ(rec_wait(r2, 1, 3000), 1);
        CHECK(r2->type[0] == STRATUS_ETCD_EVENT_COMPACTED);
        CHECK_EQ(r2->rev[0], now_rev);
        stratus_etcd_watch_stop(w2);
        /* reading a compacted revision */
        {
            struct stratus_etcd_op op = {
                .type = STRATUS_ETCD_OP_RANGE, .key = "w/a", .key_len = 3, .revision = start};
            CHECK_EQ(stratus_etcd_range(c, &op, &resp, &eb), STRATUS_ERANGE);
        }
        pthread_mutex_destroy(&r2->mu);
        free(r2);
    }
    /* A watch "from now" gets only later events; stopping an idle watch is prompt. */
    {
        struct rec *r3 = calloc(1, sizeof *r3);
        struct stratus_etcd_watch *w3 = NULL;
        struct stratus_etcd_watch_opts o3 = {.key = "w/now", .key_len = 5};
        int64_t t0;
        pthread_mutex_init(&r3->mu, NULL);
        CHECK_EQ(put_str(c, "w/now", "before", 0), 0);
        CHECK_EQ(stratus_etcd_watch_start(c, &o3, rec_cb, r3, &w3, &eb), 0);
        for (int i = 0; i < 100 && !stratus_etcd_watch_connected(w3); i++)
            harness_sleep_ms(20);
        CHECK_EQ(put_str(c, "w/now", "after", 0), 0);
        CHECK_EQ(rec_wait(r3, 1, 3000), 1);
        CHECK_STR(r3->val[0], "after");
        t0 = stratus_mono_ms();
        stratus_etcd_watch_stop(w3);
        CHECK(stratus_mono_ms() - t0 < 500);
        pthread_mutex_destroy(&r3->mu);
        free(r3);
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
    stratus_etcd_close(c);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Request latency against the local member (printed; STRATUS_ETCD_BENCH=N sets the count). */
static void test_latency(void)
{
    struct stratus_etcd *c = open_client("t/lat/");
    const char *env = getenv("STRATUS_ETCD_BENCH");
    int n = env ? atoi(env) : 300;
    int64_t *put_us, *txn_us, *get_us;
    struct stratus_errbuf eb;
    int errors = 0;

    if (n < 10)
        n = 10;
    put_us = calloc((size_t)n, sizeof *put_us);
    txn_us = calloc((size_t)n, sizeof *txn_us);
    get_us = calloc((size_t)n, sizeof *get_us);
    for (int i = 0; i < n; i++) {
        struct stratus_etcd_resp r;
        struct stratus_etcd_txn_result t;
        char v[64];
        int64_t t0 = stratus_mono_us(), mod;
        snprintf(v, sizeof v, "object-%d-committed-at-epoch-7", i);
        errors += stratus_etcd_put(c, "p", 1, v, strlen(v), 0, 0, &r, &eb) != 0;
        put_us[i] = stratus_mono_us() - t0;
        mod = r.revision;
        stratus_etcd_resp_free(&r);
        /* the fenced-commit shape: compare mod_revision of one key, put another */
        {
            struct stratus_etcd_cmp cm = {.key = "p",
                                          .key_len = 1,
                                          .target = STRATUS_ETCD_CMP_MOD,
                                          .result = STRATUS_ETCD_EQUAL,
                                          .number = mod};
            struct stratus_etcd_op put = {.type = STRATUS_ETCD_OP_PUT,
                                          .key = "o",
                                          .key_len = 1,
                                          .value = v,
                                          .value_len = strlen(v)};
            t0 = stratus_mono_us();
            errors += stratus_etcd_txn(c, &cm, 1, &put, 1, NULL, 0, &t, &eb) != 0;
            txn_us[i] = stratus_mono_us() - t0;
            errors += !t.succeeded;
            stratus_etcd_txn_result_free(&t);
        }
        t0 = stratus_mono_us();
        errors += stratus_etcd_get(c, "o", 1, &r, &eb) != 0;
        get_us[i] = stratus_mono_us() - t0;
        stratus_etcd_resp_free(&r);
    }
    qsort(put_us, (size_t)n, sizeof *put_us, cmp_i64);
    qsort(txn_us, (size_t)n, sizeof *txn_us, cmp_i64);
    qsort(get_us, (size_t)n, sizeof *get_us, cmp_i64);
    printf("latency over %d requests (us): put p50 %lld p99 %lld | txn p50 %lld p99 %lld | "
           "get p50 %lld p99 %lld\n",
           n, (long long)put_us[n / 2], (long long)put_us[n * 99 / 100], (long long)txn_us[n / 2],
           (long long)txn_us[n * 99 / 100], (long long)get_us[n / 2],
           (long long)get_us[n * 99 / 100]);
    CHECK_EQ(errors, 0);
    CHECK(txn_us[n * 99 / 100] < 1000000); /* a loose bound: loaded CI machines */
    free(put_us);
    free(txn_us);
    free(get_us);
    stratus_etcd_close(c);
}

static void test_errors(void)
{
    struct stratus_etcd_config cfg = {.endpoints = "ftp://x"};
    struct stratus_etcd *c = NULL;
    struct stratus_errbuf eb;
    int port = harness_free_port();
    char ep[64];

    CHECK_EQ(stratus_etcd_open(&cfg, &c, &eb), STRATUS_EINVAL);
    cfg.endpoints = "";
    CHECK_EQ(stratus_etcd_open(&cfg, &c, &eb), STRATUS_EINVAL);
    /* nothing listens: EAGAIN quickly */
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", port);
    cfg.endpoints = ep;
    CHECK_EQ(stratus_etcd_open(&cfg, &c, &eb), 0);
    CHECK_EQ(stratus_etcd_get(c, "k", 1, NULL, &eb), STRATUS_EAGAIN);
    stratus_etcd_close(c);
    /* a dead endpoint first, then the live one: failover, and the live one is remembered */
    {
        char eps[160];
        snprintf(eps, sizeof eps, "%s,%s", ep, g_m[0].url);
        cfg.endpoints = eps;
        CHECK_EQ(stratus_etcd_open(&cfg, &c, &eb), 0);
        CHECK_EQ(stratus_etcd_get(c, "k", 1, NULL, &eb), 0);
        CHECK_STR(stratus_etcd_current_endpoint(c), g_m[0].url);
        stratus_etcd_close(c);
    }
}

int main(void)
{
    etcd_require_binary();
    if (etcd_cluster_start(g_m, 1, "kv") < 0 || etcd_wait_ready(g_m[0].url, 15000) < 0) {
        etcd_cluster_destroy(g_m, 1);
        fprintf(stderr, "cannot start etcd\n");
        return 1;
    }
    test_kv_binary();
    test_ranges();
    test_txn();
    test_occ();
    test_errors();
    test_latency();
    test_leases();
    test_watch();
    etcd_cluster_destroy(g_m, 1);
    TEST_REPORT();
}
