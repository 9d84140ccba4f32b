/* link: stratus_cluster stratus_util */
/* test_etcd_election.c - election and fenced commits against a real single-member etcd: two
 * campaigners, one leader; the leader's lease revoked -> the other takes over (with a larger
 * term); the old leader's fenced commits fail while the new one's succeed; epoch-key fences
 * (value and mod_revision); resign; a campaign that times out or is canceled.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cluster/election.h"
#include "etcd_harness.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

static struct etcd_member g_m[1];

static struct stratus_etcd *open_client(void)
{
    struct stratus_etcd_config cfg = {
        .endpoints = g_m[0].url, .prefix = "t/elect/", .request_timeout_ms = 3000};
    struct stratus_etcd *c = NULL;
    struct stratus_errbuf eb;
    CHECK_EQ(stratus_etcd_open(&cfg, &c, &eb), 0);
    return c;
}

struct campaigner {
    struct stratus_etcd *c;
    int64_t lease;
    const char *name;
    int rc;
    struct stratus_etcd_kv won;
    atomic_int done;
    int64_t done_ms;
};

static void *campaign_main(void *arg)
{
    struct campaigner *p = arg;
    struct stratus_errbuf eb;
    p->rc = stratus_election_campaign(p->c, "controller", p->name, strlen(p->name), p->lease, 10000,
                                      NULL, &p->won, &eb);
    p->done_ms = stratus_mono_ms();
    atomic_store(&p->done, 1);
    return NULL;
}

static void test_election(void)
{
    struct stratus_etcd *c1 = open_client(), *c2 = open_client();
    struct stratus_errbuf eb;
    struct stratus_etcd_kv k;
    struct campaigner a = {.c = c1, .name = "broker-1"}, b = {.c = c2, .name = "broker-2"};
    pthread_t ta, tb;
    int64_t ttl, term1, term2, revoke_ms;

    CHECK_EQ(stratus_election_leader(c1, "controller", &k, &eb), STRATUS_ENOTFOUND);
    CHECK_EQ(stratus_etcd_lease_grant(c1, 5, 0, &a.lease, &ttl, &eb), 0);
    CHECK_EQ(stratus_etcd_lease_keep(c1, a.lease, ttl, NULL, NULL, &eb), 0);
    CHECK_EQ(stratus_etcd_lease_grant(c2, 5, 0, &b.lease, &ttl, &eb), 0);
    CHECK_EQ(stratus_etcd_lease_keep(c2, b.lease, ttl, NULL, NULL, &eb), 0);
    /* a campaign needs a lease */
    CHECK_EQ(stratus_election_try(c1, "controller", "x", 1, 0, NULL, &eb), STRATUS_EINVAL);

    pthread_create(&ta, NULL, campaign_main, &a);
    pthread_join(ta, NULL);
    CHECK_EQ(a.rc, 0);
    term1 = a.won.create_revision;
    CHECK(term1 > 0);
    pthread_create(&tb, NULL, campaign_main, &b);
    harness_sleep_ms(700);
    CHECK_EQ(atomic_load(&b.done), 0); /* b waits: a leads */
    CHECK_EQ(stratus_election_leader(c2, "controller", &k, &eb), 0);
    CHECK_STR(k.value, "broker-1");
    CHECK_EQ(k.create_revision, term1);
    CHECK_EQ(k.lease, a.lease);
    stratus_etcd_kv_free(&k);
    /* trying again under the same lease: still the leader, same term */
    CHECK_EQ(stratus_election_try(c1, "controller", "broker-1", 8, a.lease, &k, &eb), 0);
    CHECK_EQ(k.create_revision, term1);
    stratus_etcd_kv_free(&k);
    CHECK_EQ(stratus_election_try(c1, "controller", "broker-3", 8, b.lease + 1, NULL, &eb),
             STRATUS_EEXIST);

    /* The leader's lease is revoked (as if it expired): b takes over promptly. */
    revoke_ms = stratus_mono_ms();
    CHECK_EQ(stratus_etcd_lease_revoke(c1, a.lease, &eb), 0);
    pthread_join(tb, NULL);
    CHECK_EQ(b.rc, 0);
    CHECK(b.done_ms - revoke_ms < 2000);
    term2 = b.won.create_revision;
    CHECK(term2 > term1);
    CHECK_EQ(stratus_election_leader(c1, "controller", &k, &eb), 0);
    CHECK_STR(k.value, "broker-2");
    stratus_etcd_kv_free(&k);

    /* Fenced commits: the old leader's term cannot commit, the new one's can. */
    {
        struct stratus_etcd_cmp f_old = stratus_election_fence("controller", term1);
        struct stratus_etcd_cmp f_new = stratus_election_fence("controller", term2);
        struct stratus_etcd_op put = {.type = STRATUS_ETCD_OP_PUT,
                                      .key = "assign/p0",
                                      .key_len = 9,
                                      .value = "old",
                                      .value_len = 3};
        struct stratus_etcd_txn_result t;
        struct stratus_etcd_resp r;
        CHECK_EQ(stratus_election_commit(c1, &f_old, 1, &put, 1, &t, &eb), STRATUS_EEXIST);
        CHECK_EQ(t.succeeded, 0);
        /* the failure branch shows who holds the fence now */
        CHECK(t.n_responses == 1 && t.responses[0].n_kvs == 1 &&
              t.responses[0].kvs[0].create_revision == term2);
        stratus_etcd_txn_result_free(&t);
        put.value = "new";
        CHECK_EQ(stratus_election_commit(c2, &f_new, 1, &put, 1, NULL, &eb), 0);
        CHECK_EQ(stratus_etcd_get(c1, "assign/p0", 9, &r, &eb), 0);
        CHECK(r.n_kvs == 1 && strcmp(r.kvs[0].value, "new") == 0);
        stratus_etcd_resp_free(&r);
    }

    /* resign: only the current term can, and then somebody else wins at once */
    CHECK_EQ(stratus_election_resign(c1, "controller", term1, &eb), STRATUS_EEXIST);
    CHECK_EQ(stratus_election_resign(c2, "controller", term2, &eb), 0);
    CHECK_EQ(stratus_election_leader(c1, "controller", &k, &eb), STRATUS_ENOTFOUND);
    {
        int64_t l3;
        CHECK_EQ(stratus_etcd_lease_grant(c1, 5, 0, &l3, NULL, &eb), 0);
        CHECK_EQ(stratus_election_try(c1, "controller", "broker-1", 8, l3, &k, &eb), 0);
        CHECK(k.create_revision > term2);
        stratus_etcd_kv_free(&k);
        /* b cannot win before the timeout, and a cancel flag stops a campaign */
        {
            int64_t t0 = stratus_mono_ms();
            volatile int cancel = 0;
            CHECK_EQ(
                stratus_election_campaign(c2, "controller", "b", 1, b.lease, 300, NULL, NULL, &eb),
                STRATUS_EAGAIN);
            CHECK(stratus_mono_ms() - t0 < 1500);
            cancel = 1;
            CHECK_EQ(stratus_election_campaign(c2, "controller", "b", 1, b.lease, -1, &cancel, NULL,
                                               &eb),
                     STRATUS_ECLOSED);
        }
        CHECK_EQ(stratus_etcd_lease_revoke(c1, l3, &eb), 0);
    }
    stratus_etcd_kv_free(&a.won);
    stratus_etcd_kv_free(&b.won);
    stratus_etcd_close(c1);
    stratus_etcd_close(c2);
}

/* The epoch-key pattern: ownership of a partition = (owner, epoch) in one key; commits compare
 * the epoch (by value) or the revision the owner read it at (mod_revision). */
static void test_epoch_fence(void)
{
    struct stratus_etcd *c = open_client();
    struct stratus_errbuf eb;
    struct stratus_etcd_resp r;
    struct stratus_etcd_op commit = {.type = STRATUS_ETCD_OP_PUT,
                                     .key = "obj/1",
                                     .key_len = 5,
                                     .value = "committed",
                                     .value_len = 9};
    struct stratus_etcd_cmp by_value = {.key = "epoch/p0",
                                        .key_len = 8,
                                        .target = STRATUS_ETCD_CMP_VALUE,
                                        .result = STRATUS_ETCD_EQUAL,
                                        .value = "5",
                                        .value_len = 1};
    struct stratus_etcd_cmp by_rev = {.key = "epoch/p0",
                                      .key_len = 8,
                                      .target = STRATUS_ETCD_CMP_MOD,
                                      .result = STRATUS_ETCD_EQUAL};

    CHECK_EQ(stratus_etcd_put(c, "epoch/p0", 8, "5", 1, 0, 0, &r, &eb), 0);
    by_rev.number = r.revision;
    stratus_etcd_resp_free(&r);
    CHECK_EQ(stratus_election_commit(c, &by_value, 1, &commit, 1, NULL, &eb), 0);
    CHECK_EQ(stratus_election_commit(c, &by_rev, 1, &commit, 1, NULL, &eb), 0);
    /* a new owner takes the partition at epoch 6 */
    CHECK_EQ(stratus_etcd_put(c, "epoch/p0", 8, "6", 1, 0, 0, NULL, &eb), 0);
    commit.key = "obj/2";
    CHECK_EQ(stratus_election_commit(c, &by_value, 1, &commit, 1, NULL, &eb), STRATUS_EEXIST);
    CHECK_EQ(stratus_election_commit(c, &by_rev, 1, &commit, 1, NULL, &eb), STRATUS_EEXIST);
    CHECK_EQ(stratus_etcd_get(c, "obj/2", 5, &r, &eb), 0);
    CHECK_EQ(r.n_kvs, 0); /* the stale owner committed nothing */
    stratus_etcd_resp_free(&r);
    CHECK_EQ(stratus_election_commit(c, NULL, 0, &commit, 1, NULL, &eb), STRATUS_EINVAL);
    stratus_etcd_close(c);
}

int main(void)
{
    etcd_require_binary();
    if (etcd_cluster_start(g_m, 1, "elect") < 0 || etcd_wait_ready(g_m[0].url, 15000) < 0) {
        etcd_cluster_destroy(g_m, 1);
        fprintf(stderr, "cannot start etcd\n");
        return 1;
    }
    test_election();
    test_epoch_fence();
    etcd_cluster_destroy(g_m, 1);
    TEST_REPORT();
}
