/* main.c - stratusd: command line, signals, and the broker's lifetime. Nothing else.
 *
 *   stratusd --config FILE [--set section.key=value ...]
 *   stratusd --check-config FILE [--set ...]
 *   stratusd --describe-plugin PATH
 *   stratusd --version | --help
 * SIGTERM and SIGINT drain in-flight requests and stop cleanly.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "conf/conf.h"
#include "plugin/plugin.h"
#include "util/log.h"

#ifdef STRATUS_JEMALLOC
#include <jemalloc/jemalloc.h>

/* jemalloc's start-up options (MALLOC_CONF in the environment is applied after these, so an
 * operator's setting wins). dirty_decay_ms:-1 keeps freed pages for reuse instead of handing
 * them back to the kernel a little at a time: the log cache and the produce frames churn
 * hundreds of MB/s through the same few hundred MB, and each page handed back was faulted in
 * and zeroed again by the next frame. Workload 1, 3 alternating pairs: 1.00 -> 0.87 CPU s per
 * GiB, half the page faults, peak RSS +10% (docs/benchmarks.md, round 14).
 * lg_extent_max_active_fit:20 lets any freed extent be split for a smaller request. jemalloc's
 * default (6) reuses an extent only up to 64 times the request's size, so once the freed
 * frames had merged into extents of tens of MB, the ~80 KiB frames never fitted them again:
 * with nothing purged, the process mapped fresh memory all along (at a 512 MiB log cache,
 * 535 MB allocated and 3.3 GB resident after 20 s of producing at 240 MB/s; 0.7 GB with it;
 * docs/benchmarks.md, round 17). */
const char *malloc_conf = "dirty_decay_ms:-1,muzzy_decay_ms:-1,lg_extent_max_active_fit:20";

/* The decay jemalloc runs with, for the first log line (-2 when it cannot say). */
static long allocator_decay_ms(void)
{
    ssize_t v = -2;
    size_t len = sizeof v;
    if (mallctl("opt.dirty_decay_ms", &v, &len, NULL, 0) != 0)
        return -2;
    return (long)v;
}
#else
static long allocator_decay_ms(void)
{
    return -2;
}
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: stratusd --config FILE [--set SECTION.KEY=VALUE ...]\n"
            "       stratusd --check-config FILE [--set SECTION.KEY=VALUE ...]\n"
            "       stratusd --describe-plugin PATH\n"
            "       stratusd --version | --help\n"
            "\n"
            "Stratus is a Kafka-protocol broker whose data lives in object storage.\n"
            "\n"
            "  --config FILE          run the broker with this INI configuration\n"
            "  --check-config FILE    validate the configuration (and plugin keys), then exit\n"
            "  --set S.K=V            override key K of section [S] (repeatable)\n"
            "  --describe-plugin PATH print a plugin's name, kind, version and config keys\n"
            "  --version              print the version\n"
            "  --help                 print this help\n");
}

int main(int argc, char **argv)
{
    const char *config = NULL, *describe = NULL;
    int check_only = 0, rc;
    struct stratus_conf *conf = NULL;
    struct stratus_errbuf eb = {{0}};
    const char **sets = calloc((size_t)argc, sizeof *sets);
    int nsets = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            free(sets);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("stratusd %s (plugin ABI %d.%d, allocator %s)\n", STRATUS_VERSION,
                   STRATUS_ABI_MAJOR, STRATUS_ABI_MINOR, STRATUS_ALLOCATOR);
            free(sets);
            return 0;
        } else if ((!strcmp(a, "--config") || !strcmp(a, "-c")) && i + 1 < argc) {
            config = argv[++i];
        } else if (!strcmp(a, "--check-config") && i + 1 < argc) {
            config = argv[++i];
            check_only = 1;
        } else if (!strcmp(a, "--set") && i + 1 < argc) {
            sets[nsets++] = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            sets[nsets++] = a + 6;
        } else if (!strcmp(a, "--describe-plugin") && i + 1 < argc) {
            describe = argv[++i];
        } else {
            fprintf(stderr, "stratusd: unknown or incomplete argument '%s'\n\n", a);
            usage(stderr);
            free(sets);
            return 2;
        }
    }

    if (describe) {
        struct stratus_plugin *p;
        free(sets);
        if (stratus_plugin_load(describe, 0, &p, &eb) != 0) {
            fprintf(stderr, "stratusd: %s\n", eb.msg);
            return 1;
        }
        stratus_plugin_describe(p, stdout);
        return 0;
    }
    if (!config && nsets == 0) {
        usage(stderr);
        free(sets);
        return 2;
    }
    if (config) {
        rc = stratus_conf_load(config, &conf, &eb);
    } else {
        conf = stratus_conf_new();
        rc = 0;
    }
    for (int i = 0; rc == 0 && i < nsets; i++)
        rc = stratus_conf_set(conf, sets[i], &eb);
    free(sets);
    if (rc != 0) {
        fprintf(stderr, "stratusd: %s\n", eb.msg);
        stratus_conf_free(conf);
        return 1;
    }
    if (check_only) {
        rc = stratus_broker_check_config(conf, &eb);
        if (rc != 0)
            fprintf(stderr, "stratusd: %s\n", eb.msg);
        else
            printf("stratusd: configuration %s is valid\n", config ? config : "(--set)");
        stratus_conf_free(conf);
        return rc ? 1 : 0;
    }

    /* Block the signals in every thread; this thread waits for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct stratus_broker *b;
    if (allocator_decay_ms() != -2)
        LOG_INFO("broker", "stratusd %s allocator=%s dirty_decay_ms=%ld", STRATUS_VERSION,
                 STRATUS_ALLOCATOR, allocator_decay_ms());
    else
        LOG_INFO("broker", "stratusd %s allocator=%s", STRATUS_VERSION, STRATUS_ALLOCATOR);
    rc = stratus_broker_start(conf, &b, &eb);
    if (rc != 0) {
        LOG_ERROR("broker", "cannot start: %s", eb.msg);
        stratus_conf_free(conf);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    LOG_INFO("broker", "received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    stratus_broker_stop(b, -1);
    stratus_conf_free(conf);
    return 0;
}
