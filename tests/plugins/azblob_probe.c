/* azblob_probe.c - a small driver of a storage plugin through the broker's own loader and call
 * wrappers (as stratus-conformance does), for tests/plugins/test_azblob_*.py: it runs the
 * commands given after "--" against one instance and prints one result line per command, so
 * the Python tests can check what landed in Azurite with their own client.
 *
 *   azblob_probe PLUGIN.so [--set key=value ...] -- CMD ... [, CMD ...]
 *     put KEY SIZE SEED [absent | match=ETAG | match=@]   "put rc=STRATUS_OK etag=..."
 *     head KEY                                  "head rc=... size=N etag=...[ msg=...]"
 *     check KEY SIZE SEED                                  "check rc=... same|differ got=N"
 *     race KEY SIZE THREADS      THREADS if_absent puts at once (seeds 1..THREADS)
 *                                "race winners=W eexist=E other=O content=winner|wrong"
 *     del KEY                                              "del rc=...[ msg=...]"
 *     sleep MS                                             "sleep MS"
 * Commands are separated by ","; "match=@" uses the etag of the last put or head. Object
 * bytes are a xorshift stream of SEED, so content is checked without keeping it.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "conf/conf.h"
#include "plugin/plugin.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct stratus_storage *st;
static char last_etag[128];

static unsigned char *probe_data(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n ? n : 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; p && i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    return p;
}

struct probe_racer {
    pthread_t tid;
    pthread_barrier_t *go;
    const char *key;
    size_t size;
    unsigned seed;
    int rc;
};

static void *probe_race_main(void *arg)
{
    struct probe_racer *r = arg;
    struct stratus_errbuf eb = {{0}};
    struct stratus_put_opts o = {.size = sizeof o, .if_absent = 1};
    unsigned char *d = probe_data(r->size, r->seed);
    pthread_barrier_wait(r->go);
    r->rc = d ? stratus_storage_put(st, r->key, d, r->size, &o, NULL, &eb) : STRATUS_ENOMEM;
    if (r->rc < 0 && r->rc != STRATUS_EEXIST)
        fprintf(stderr, "race put %u: %s\n", r->seed, eb.msg);
    free(d);
    return NULL;
}

/* Reads the whole object and compares it with the stream of seed. */
static int
probe_same(const char *key, size_t size, unsigned seed, size_t *got, struct stratus_errbuf *eb)
{
    unsigned char *want = probe_data(size, seed), *buf = malloc(size + 16);
    int rc = STRATUS_ENOMEM;
    *got = 0;
    if (want && buf) {
        rc = stratus_storage_get(st, key, 0, size + 16, buf, got, eb);
        if (rc == 0)
            rc = (*got == size && memcmp(want, buf, size) == 0) ? 1 : 0;
    }
    free(want);
    free(buf);
    return rc;
}

static int probe_cmd(char **a, int n)
{
    struct stratus_errbuf eb = {{0}};
    if (n >= 4 && strcmp(a[0], "put") == 0) {
        struct stratus_put_opts o = {.size = sizeof o};
        char etag[128] = "";
        size_t size = strtoull(a[2], NULL, 10);
        if (n >= 5 && strcmp(a[4], "absent") == 0)
            o.if_absent = 1;
        else if (n >= 5 && strncmp(a[4], "match=", 6) == 0)
            o.if_match = strcmp(a[4] + 6, "@") == 0 ? last_etag : a[4] + 6;
        unsigned char *d = probe_data(size, (unsigned)atoi(a[3]));
        int rc = d ? stratus_storage_put(st, a[1], d, size, &o, etag, &eb) : STRATUS_ENOMEM;
        free(d);
        if (rc == 0)
            snprintf(last_etag, sizeof last_etag, "%s", etag);
        printf("put rc=%s etag=%s msg=%s\n", stratus_err_name(rc), etag, rc ? eb.msg : "");
    } else if (n >= 2 && strcmp(a[0], "head") == 0) {
        struct stratus_object_info info = {0};
        int rc = stratus_storage_head(st, a[1], &info, &eb);
        if (rc == 0)
            snprintf(last_etag, sizeof last_etag, "%s", info.etag);
        printf("head rc=%s size=%llu etag=%s%s%s\n", stratus_err_name(rc),
               (unsigned long long)info.size, info.etag, rc ? " msg=" : "", rc ? eb.msg : "");
    } else if (n >= 4 && strcmp(a[0], "check") == 0) {
        size_t got;
        int rc = probe_same(a[1], strtoull(a[2], NULL, 10), (unsigned)atoi(a[3]), &got, &eb);
        printf("check rc=%s %s got=%zu\n", stratus_err_name(rc < 0 ? rc : 0),
               rc == 1 ? "same" : "differ", got);
    } else if (n >= 4 && strcmp(a[0], "race") == 0) {
        int nt = atoi(a[3]), winners = 0, eexist = 0, other = 0, winner = 0;
        if (nt < 1 || nt > 64)
            return -1;
        struct probe_racer rs[64];
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, (unsigned)nt);
        for (int i = 0; i < nt; i++) {
            rs[i] = (struct probe_racer){
                .go = &go, .key = a[1], .size = strtoull(a[2], NULL, 10), .seed = (unsigned)i + 1};
            pthread_create(&rs[i].tid, NULL, probe_race_main, &rs[i]);
        }
        for (int i = 0; i < nt; i++) {
            pthread_join(rs[i].tid, NULL);
            if (rs[i].rc == 0) {
                winners++;
                winner = i + 1;
            } else if (rs[i].rc == STRATUS_EEXIST) {
                eexist++;
            } else {
                other++;
            }
        }
        pthread_barrier_destroy(&go);
        size_t got;
        int same = winners == 1 ? probe_same(a[1], rs[0].size, (unsigned)winner, &got, &eb) : 0;
        printf("race winners=%d eexist=%d other=%d content=%s\n", winners, eexist, other,
               same == 1 ? "winner" : "wrong");
    } else if (n >= 2 && strcmp(a[0], "sleep") == 0) {
        long ms = atol(a[1]);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        printf("sleep %ld\n", ms);
    } else if (n >= 2 && strcmp(a[0], "del") == 0) {
        const char *ks[] = {a[1]};
        int rc = stratus_storage_del(st, ks, 1, &eb);
        printf("del rc=%s%s%s\n", stratus_err_name(rc), rc ? " msg=" : "", rc ? eb.msg : "");
    } else {
        return -1;
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_conf *conf = stratus_conf_new();
    char assign[4096];
    int i;
    if (argc < 3) {
        fprintf(stderr, "usage: azblob_probe PLUGIN.so [--set k=v ...] -- CMD ...\n");
        return 2;
    }
    snprintf(assign, sizeof assign, "storage.plugin=%s", argv[1]);
    stratus_conf_set(conf, assign, &eb);
    stratus_conf_set(conf, "storage.retry_max_attempts=3", &eb);
    stratus_conf_set(conf, "storage.retry_base_delay=10ms", &eb);
    for (i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            snprintf(assign, sizeof assign, "storage.%s", argv[++i]);
            if (stratus_conf_set(conf, assign, &eb) < 0) {
                fprintf(stderr, "azblob_probe: %s\n", eb.msg);
                return 2;
            }
        }
    }
    if (stratus_storage_open(conf, "storage", NULL, &st, &eb) < 0) {
        printf("open rc=failed msg=%s\n", eb.msg);
        stratus_conf_free(conf);
        return 1;
    }
    int rc = 0;
    for (i++; i < argc;) {
        int j = i;
        while (j < argc && strcmp(argv[j], ",") != 0)
            j++;
        if (probe_cmd(argv + i, j - i) < 0) {
            fprintf(stderr, "azblob_probe: bad command '%s'\n", argv[i]);
            rc = 2;
            break;
        }
        i = j + 1;
    }
    stratus_storage_close(st);
    stratus_conf_free(conf);
    return rc;
}
