/* link: stratus_cluster stratus_util */
/* test_etcd_auth.c - the etcd client with authentication on a real etcd whose simple tokens
 * live 2 s (--auth-token-ttl 2): user/role set up over the JSON API, auth enabled; a client
 * with the right password works and keeps working after its token expired (refresh on
 * "invalid auth token"), a watch works under auth, a wrong password gives STRATUS_EAUTH and a
 * client without credentials is refused.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "etcd_harness.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

static struct etcd_member g_m[1];
static atomic_int g_events;

static void count_cb(void *arg, const struct stratus_etcd_event *ev)
{
    (void)arg;
    if (ev->type == STRATUS_ETCD_EVENT_PUT)
        atomic_fetch_add(&g_events, 1);
}

/* User admin is not part of the client's API: set it up with etcdctl. */
static int setup_auth(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "ETCDCTL_API=3 etcdctl --endpoints=%s user add root:rootpw >/dev/null && "
             "ETCDCTL_API=3 etcdctl --endpoints=%s user grant-role root root >/dev/null 2>&1; "
             "ETCDCTL_API=3 etcdctl --endpoints=%s auth enable >/dev/null",
             g_m[0].url, g_m[0].url, g_m[0].url);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    static const char *extra[] = {"--auth-token-ttl", "2", NULL};
    struct stratus_etcd_config cfg = {
        .prefix = "t/auth/", .request_timeout_ms = 3000, .username = "root", .password = "rootpw"};
    struct stratus_etcd *c = NULL, *bad = NULL, *anon = NULL;
    struct stratus_etcd_watch *wt = NULL;
    struct stratus_etcd_watch_opts o = {.key = "k", .key_len = 1};
    struct stratus_errbuf eb;
    struct stratus_etcd_resp r;

    etcd_require_binary();
    if (system("command -v etcdctl >/dev/null 2>&1") != 0) {
        printf("SKIP: etcdctl not installed\n");
        return 77;
    }
    g_m[0].extra[0] = extra[0];
    g_m[0].extra[1] = extra[1];
    if (etcd_cluster_start(g_m, 1, "auth") < 0 || etcd_wait_ready(g_m[0].url, 15000) < 0 ||
        setup_auth() < 0) {
        etcd_cluster_destroy(g_m, 1);
        fprintf(stderr, "cannot start etcd with auth\n");
        return 1;
    }
    cfg.endpoints = g_m[0].url;
    CHECK_EQ(stratus_etcd_open(&cfg, &c, &eb), 0);
    CHECK_EQ(stratus_etcd_put(c, "k", 1, "v1", 2, 0, 0, NULL, &eb), 0);
    CHECK_EQ(stratus_etcd_get(c, "k", 1, &r, &eb), 0);
    CHECK(r.n_kvs == 1 && strcmp(r.kvs[0].value, "v1") == 0);
    stratus_etcd_resp_free(&r);
    CHECK_EQ(stratus_etcd_watch_start(c, &o, count_cb, NULL, &wt, &eb), 0);
    for (int i = 0; i < 100 && !stratus_etcd_watch_connected(wt); i++)
        harness_sleep_ms(20);
    CHECK(stratus_etcd_watch_connected(wt));
    /* the token expires (TTL 2 s, checked by etcd about every second): requests refresh it */
    harness_sleep_ms(3500);
    if (stratus_etcd_put(c, "k", 1, "v2", 2, 0, 0, NULL, &eb) != 0)
        fprintf(stderr, "put after expiry: %s\n", eb.msg);
    CHECK_EQ(stratus_etcd_get(c, "k", 1, &r, &eb), 0);
    CHECK(r.n_kvs == 1 && strcmp(r.kvs[0].value, "v2") == 0);
    stratus_etcd_resp_free(&r);
    {
        struct stratus_etcd_txn_result t;
        struct stratus_etcd_op put = {
            .type = STRATUS_ETCD_OP_PUT, .key = "k", .key_len = 1, .value = "v3", .value_len = 2};
        CHECK_EQ(stratus_etcd_txn(c, NULL, 0, &put, 1, NULL, 0, &t, &eb), 0);
        CHECK_EQ(t.succeeded, 1);
        stratus_etcd_txn_result_free(&t);
    }
    for (int i = 0; i < 100 && atomic_load(&g_events) < 2; i++)
        harness_sleep_ms(20);
    CHECK(atomic_load(&g_events) >= 2); /* the watch saw v2 and v3 */
    stratus_etcd_watch_stop(wt);

    cfg.password = "wrong";
    CHECK_EQ(stratus_etcd_open(&cfg, &bad, &eb), 0);
    CHECK_EQ(stratus_etcd_get(bad, "k", 1, &r, &eb), STRATUS_EAUTH);
    cfg.username = NULL;
    cfg.password = NULL;
    CHECK_EQ(stratus_etcd_open(&cfg, &anon, &eb), 0);
    CHECK(stratus_etcd_get(anon, "k", 1, &r, &eb) < 0);
    stratus_etcd_close(anon);
    stratus_etcd_close(bad);
    stratus_etcd_close(c);
    etcd_cluster_destroy(g_m, 1);
    TEST_REPORT();
}
