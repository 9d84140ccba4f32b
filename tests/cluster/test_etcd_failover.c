/* link: stratus_cluster stratus_util */
/* test_etcd_failover.c - a 3-member loopback etcd cluster: the client writes continuously and a
 * watch follows the writes; SIGKILL the leader -> the client fails over to another endpoint and
 * writes resume within a few seconds; the watch re-establishes on a live member and every
 * acknowledged write is delivered once, in revision order.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "etcd_harness.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

#define N_MEMBERS  3
#define MAX_WRITES 4096

static struct etcd_member g_m[N_MEMBERS];

struct writer {
    struct stratus_etcd *c;
    atomic_int stop;
    atomic_int n_ok; /* acknowledged writes: keys "f/<i>" for i < n_ok; ok_ms[i] is written
                        before n_ok passes i (the main thread reads both while it runs) */
    atomic_int n_err;
    int64_t ok_ms[MAX_WRITES]; /* when each write was acknowledged */
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    int n;
    while (!atomic_load(&w->stop) && (n = atomic_load(&w->n_ok)) < MAX_WRITES) {
        struct stratus_errbuf eb;
        char k[32];
        snprintf(k, sizeof k, "f/%05d", n);
        if (stratus_etcd_put(w->c, k, strlen(k), "v", 1, 0, 0, NULL, &eb) == 0) {
            w->ok_ms[n] = stratus_mono_ms();
            atomic_store(&w->n_ok, n + 1);
        } else {
            w->n_err++;
            harness_sleep_ms(50);
        }
        harness_sleep_ms(10);
    }
    return NULL;
}

struct seen {
    pthread_mutex_t mu;
    int n;
    int bad_order;
    int64_t last_rev;
    unsigned char got[MAX_WRITES];
    int dup;
};

static void seen_cb(void *arg, const struct stratus_etcd_event *ev)
{
    struct seen *s = arg;
    int i;
    if (ev->type != STRATUS_ETCD_EVENT_PUT)
        return;
    pthread_mutex_lock(&s->mu);
    if (ev->revision <= s->last_rev)
        s->bad_order++;
    s->last_rev = ev->revision;
    i = atoi(ev->kv.key + 2);
    if (i >= 0 && i < MAX_WRITES) {
        /* a repeated put (ambiguous timeout, then retried) is a new revision, not a duplicate
         * delivery; count duplicates only per revision order above */
        s->got[i] = 1;
    }
    s->n++;
    pthread_mutex_unlock(&s->mu);
}

int main(void)
{
    struct stratus_etcd_config cfg = {
        .prefix = "t/failover/", .request_timeout_ms = 1000, .connect_timeout_ms = 300};
    struct stratus_etcd *c = NULL;
    struct stratus_etcd_watch *wt = NULL;
    struct stratus_errbuf eb;
    struct writer *w = calloc(1, sizeof *w);
    struct seen *s = calloc(1, sizeof *s);
    char eps[512], leader_url[64] = "";
    pthread_t th;
    int leader = -1, before, first_after = -1, missing = 0;
    int64_t kill_ms, gap_ms;

    etcd_require_binary();
    pthread_mutex_init(&s->mu, NULL);
    if (etcd_cluster_start(g_m, N_MEMBERS, "fo") < 0) {
        etcd_cluster_destroy(g_m, N_MEMBERS);
        return 1;
    }
    etcd_cluster_endpoints(g_m, N_MEMBERS, eps, sizeof eps);
    if (etcd_wait_ready(eps, 20000) < 0) {
        etcd_cluster_destroy(g_m, N_MEMBERS);
        fprintf(stderr, "cannot start the etcd cluster\n");
        return 1;
    }
    cfg.endpoints = eps;
    CHECK_EQ(stratus_etcd_open(&cfg, &c, &eb), 0);
    CHECK_EQ(stratus_etcd_endpoint_count(c), N_MEMBERS);
    /* Find the leader through each member's status. */
    for (int tries = 0; tries < 50 && leader < 0; tries++) {
        struct stratus_etcd_member_status st[N_MEMBERS];
        for (int i = 0; i < N_MEMBERS; i++) {
            if (stratus_etcd_status(c, i, &st[i], &eb) < 0)
                st[i].member_id = 0;
        }
        for (int i = 0; i < N_MEMBERS; i++)
            if (st[i].member_id && st[i].member_id == st[i].leader_id)
                leader = i;
        if (leader < 0)
            harness_sleep_ms(100);
        else
            CHECK_STR(st[leader].version, "3.4.23");
    }
    CHECK(leader >= 0);
    if (leader < 0)
        goto out;
    snprintf(leader_url, sizeof leader_url, "%s", g_m[leader].url);
    /* Make the leader the client's current endpoint, so the kill hits its connections. */
    for (int i = 0; i < 10 && strcmp(stratus_etcd_current_endpoint(c), leader_url) != 0; i++) {
        struct stratus_etcd_member_status st;
        stratus_etcd_status(c, leader, &st, &eb);
    }
    CHECK_STR(stratus_etcd_current_endpoint(c), leader_url);
    {
        struct stratus_etcd_watch_opts o = {
            .key = "f/", .key_len = 2, .flags = STRATUS_ETCD_PREFIX, .start_revision = 1};
        CHECK_EQ(stratus_etcd_watch_start(c, &o, seen_cb, s, &wt, &eb), 0);
    }
    w->c = c;
    pthread_create(&th, NULL, writer_main, w);
    harness_sleep_ms(1000);
    before = w->n_ok;
    CHECK(before > 10);
    kill_ms = stratus_mono_ms();
    etcd_member_kill(&g_m[leader]);
    /* writes resume */
    for (int i = 0; i < 150; i++) {
        harness_sleep_ms(100);
        if (w->n_ok > before + 20)
            break;
    }
    atomic_store(&w->stop, 1);
    pthread_join(th, NULL);
    for (int i = before; i < w->n_ok; i++) {
        if (w->ok_ms[i] > kill_ms) {
            first_after = i;
            break;
        }
    }
    CHECK(first_after >= 0);
    gap_ms = first_after >= 0 ? w->ok_ms[first_after] - kill_ms : -1;
    printf("failover: leader %s killed; first acknowledged write after %lld ms (%d failed "
           "attempts meanwhile), now on %s\n",
           leader_url, (long long)gap_ms, w->n_err, stratus_etcd_current_endpoint(c));
    CHECK(gap_ms >= 0 && gap_ms < 8000);
    CHECK(strcmp(stratus_etcd_current_endpoint(c), leader_url) != 0);
    /* The watch delivers every acknowledged write. */
    for (int i = 0; i < 100; i++) {
        int all = 1;
        pthread_mutex_lock(&s->mu);
        for (int k = 0; k < w->n_ok; k++)
            all &= s->got[k];
        pthread_mutex_unlock(&s->mu);
        if (all)
            break;
        harness_sleep_ms(100);
    }
    pthread_mutex_lock(&s->mu);
    for (int k = 0; k < w->n_ok; k++)
        missing += !s->got[k];
    printf("watch: %d events for %d acknowledged writes, %d reconnects, %d missing\n", s->n,
           w->n_ok, stratus_etcd_watch_reconnects(wt), missing);
    CHECK_EQ(missing, 0);
    CHECK_EQ(s->bad_order, 0);
    CHECK(s->n >= w->n_ok);
    pthread_mutex_unlock(&s->mu);
    CHECK(stratus_etcd_watch_reconnects(wt) >= 1);
out:
    stratus_etcd_watch_stop(wt);
    stratus_etcd_close(c);
    etcd_cluster_destroy(g_m, N_MEMBERS);
    pthread_mutex_destroy(&s->mu);
    free(s);
    free(w);
    TEST_REPORT();
}
