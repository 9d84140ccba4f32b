/* cluster_cmd.c - `stratus cluster ...`: look at and steer a cluster through its etcd metastore
 * (core/cluster/meta.h), with the [cluster] section of a broker's config file.
 *
 *   stratus cluster status --config FILE            brokers (live), controller, partitions per
 *                                                   broker, moves in progress, draining brokers
 *   stratus cluster drain --config FILE [--node N]  moves every partition off broker N (default:
 *                                                   the config's node_id) and waits for it
 *   stratus cluster undrain --config FILE [--node N]
 * It never registers as a broker: it only reads the watched copy and writes drain/<id>.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "cluster_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/meta.h"
#include "conf/conf.h"
#include "util/clock.h"

static long conf_ms(const struct stratus_conf *conf, const char *key, long def)
{
    const char *v = stratus_conf_get(conf, "cluster", key);
    char *end;
    long n;

    if (!v)
        return def;
    n = strtol(v, &end, 10);
    if (end == v)
        return def;
    if (!strcmp(end, "s"))
        n *= 1000;
    else if (!strcmp(end, "m"))
        n *= 60000;
    return n;
}

static int open_meta(const struct stratus_conf *conf, int32_t node, struct stratus_meta **m)
{
    struct stratus_meta_conf mc;
    struct stratus_errbuf eb = {{0}};
    const char *ms = stratus_conf_get(conf, "cluster", "metastore");

    if (!ms || strcmp(ms, "etcd") != 0) {
        fprintf(stderr, "stratus cluster: the config has no [cluster] metastore = etcd\n");
        return -1;
    }
    memset(&mc, 0, sizeof mc);
    mc.etcd.endpoints = stratus_conf_get(conf, "cluster", "etcd_endpoints");
    mc.etcd.prefix = stratus_conf_get(conf, "cluster", "etcd_prefix");
    if (!mc.etcd.prefix)
        mc.etcd.prefix = "/stratus/";
    mc.etcd.connect_timeout_ms = (int)conf_ms(conf, "etcd_connect_timeout", 1000);
    mc.etcd.request_timeout_ms = (int)conf_ms(conf, "etcd_request_timeout", 5000);
    mc.etcd.ca_file = stratus_conf_get(conf, "cluster", "etcd_ca_file");
    mc.etcd.cert_file = stratus_conf_get(conf, "cluster", "etcd_cert_file");
    mc.etcd.key_file = stratus_conf_get(conf, "cluster", "etcd_key_file");
    mc.etcd.username = stratus_conf_get(conf, "cluster", "etcd_username");
    mc.etcd.password = stratus_conf_get(conf, "cluster", "etcd_password");
    mc.node_id = node;
    if (!mc.etcd.endpoints) {
        fprintf(stderr, "stratus cluster: [cluster] etcd_endpoints is not set\n");
        return -1;
    }
    if (stratus_meta_open(&mc, m, &eb) != 0 || stratus_meta_start_watch(*m, NULL, NULL, &eb) != 0) {
        fprintf(stderr, "stratus cluster: etcd %s: %s\n", mc.etcd.endpoints, eb.msg);
        if (*m)
            stratus_meta_close(*m);
        return -1;
    }
    return 0;
}

static int owned_by(const struct stratus_meta_assign *as, size_t n, int32_t id)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += as[i].owner == id;
    return k;
}

static int status(struct stratus_meta *m)
{
    struct stratus_meta_broker *b = NULL;
    struct stratus_meta_assign *as = NULL;
    size_t nb = 0, na = 0, moving = 0, orphan = 0;

    if (stratus_meta_brokers(m, &b, &nb) != 0 || stratus_meta_assignments(m, &as, &na) != 0) {
        fprintf(stderr, "stratus cluster: reading the metastore failed\n");
        free(b);
        return 2;
    }
    printf("controller: %d\n", stratus_meta_controller(m));
    printf("brokers: %zu live\n", nb);
    for (size_t i = 0; i < nb; i++)
        printf("  %d  %s:%d%s%s  partitions=%d%s\n", b[i].id, b[i].host, b[i].port,
               b[i].rack[0] ? "  rack=" : "", b[i].rack, owned_by(as, na, b[i].id),
               stratus_meta_draining(m, b[i].id) ? "  DRAINING" : "");
    for (size_t i = 0; i < na; i++) {
        if (as[i].target >= 0 && as[i].target != as[i].owner) {
            if (!moving++)
                printf("moves in progress:\n");
            printf("  %s-%d  %d -> %d\n", as[i].topic, as[i].partition, as[i].owner,
                   as[i].target);
        }
        if (as[i].owner < 0 || !stratus_meta_broker_live(m, as[i].owner, NULL))
            orphan++;
    }
    printf("partitions: %zu, without a live owner: %zu, moving: %zu\n", na, orphan, moving);
    free(b);
    free(as);
    return 0;
}

static int drain(struct stratus_meta *m, int32_t node, int on)
{
    struct stratus_errbuf eb = {{0}};
    int64_t until = stratus_mono_ms() + 120000;

    if (stratus_meta_set_drain(m, node, on, &eb) != 0) {
        fprintf(stderr, "stratus cluster: %s\n", eb.msg);
        return 2;
    }
    if (!on) {
        printf("broker %d: drain ended\n", node);
        return 0;
    }
    for (;;) {
        struct stratus_meta_assign *as = NULL;
        size_t na = 0;
        int left = -1;
        if (stratus_meta_assignments(m, &as, &na) == 0)
            left = owned_by(as, na, node);
        free(as);
        if (left == 0) {
            printf("broker %d: drained\n", node);
            return 0;
        }
        if (stratus_mono_ms() > until) {
            fprintf(stderr, "stratus cluster: broker %d still owns %d partitions after 120 s\n",
                    node, left);
            return 1;
        }
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int stratus_cli_cluster(const struct stratus_conf *conf, const char *sub, int32_t node)
{
    struct stratus_meta *m = NULL;
    int rc;

    if (node < 0) {
        const char *v = stratus_conf_get(conf, "broker", "node_id");
        node = v ? (int32_t)atoi(v) : 1;
    }
    if (!sub || (strcmp(sub, "status") && strcmp(sub, "drain") && strcmp(sub, "undrain"))) {
        fprintf(stderr, "stratus cluster: status, drain or undrain\n");
        return 2;
    }
    if (open_meta(conf, node, &m) != 0)
        return 2;
    if (!strcmp(sub, "status"))
        rc = status(m);
    else
        rc = drain(m, node, !strcmp(sub, "drain"));
    stratus_meta_close(m);
    return rc;
}
