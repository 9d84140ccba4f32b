/* mockbroker.c - runs librdkafka's in-memory mock cluster (rdkafka_mock.h) in its own process,
 * the reference peer of the benchmark harness (tests/bench/run.sh). The mock keeps records in
 * memory only and writes nothing durable; it does not implement CreateTopics, so topics are
 * created here from the command line (auto-created topics get librdkafka's default of 4
 * partitions).
 *
 * Usage: stratus-mockbroker [-B brokers] [-t TOPIC:PARTITIONS]... [-T PREFIX:COUNT:PARTITIONS]...
 *   -B N           brokers in the cluster (1)
 *   -t NAME:P      create topic NAME with P partitions (repeatable)
 *   -T PFX:K:P     create topics PFX-0 .. PFX-(K-1) with P partitions each (repeatable)
 * Prints one line `BOOTSTRAP host:port[,...]` on stdout once the cluster listens, and runs until
 * SIGTERM or SIGINT. SPDX-License-Identifier: Apache-2.0
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: stratus-mockbroker [-B brokers] [-t TOPIC:PARTITIONS]... "
                    "[-T PREFIX:COUNT:PARTITIONS]...\n");
    exit(2);
}

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *name, int parts)
{
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, parts, 1);
    if (e) {
        fprintf(stderr, "stratus-mockbroker: create %s: %s\n", name, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int brokers = 1, ch, rc = 1;
    char err[256];
    /* parse once to validate, topics are created after the cluster exists */
    while ((ch = getopt(argc, argv, "B:t:T:h")) != -1) {
        if (ch == 'B')
            brokers = atoi(optarg);
        else if (ch != 't' && ch != 'T')
            usage();
    }
    if (brokers < 1)
        usage();

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* the handle the mock needs for its bookkeeping; it never connects anywhere */
    if (rd_kafka_conf_set(conf, "bootstrap.servers", "", err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "stratus-mockbroker: %s\n", err);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "stratus-mockbroker: rd_kafka_new: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "stratus-mockbroker: rd_kafka_mock_cluster_new failed\n");
        goto out_rk;
    }

    optind = 1;
    while ((ch = getopt(argc, argv, "B:t:T:h")) != -1) {
        char name[512];
        if (ch == 't') {
            const char *colon = strrchr(optarg, ':');
            if (!colon || colon == optarg || (size_t)(colon - optarg) >= sizeof name)
                usage();
            memcpy(name, optarg, (size_t)(colon - optarg));
            name[colon - optarg] = 0;
            if (create_topic(mc, name, atoi(colon + 1)))
                goto out_mc;
        } else if (ch == 'T') {
            char pfx[400];
            int count, parts;
            if (sscanf(optarg, "%399[^:]:%d:%d", pfx, &count, &parts) != 3 || count < 1 ||
                parts < 1)
                usage();
            for (int i = 0; i < count; i++) {
                snprintf(name, sizeof name, "%s-%d", pfx, i);
                if (create_topic(mc, name, parts))
                    goto out_mc;
            }
        }
    }

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    while (!g_stop)
        pause();
    rc = 0;
out_mc:
    rd_kafka_mock_cluster_destroy(mc);
out_rk:
    rd_kafka_destroy(rk);
    return rc;
}
