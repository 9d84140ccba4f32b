/* link: stratus_plugin stratus_conf stratus_metrics stratus_util */
/* test_cache_memory.c - the memory cache plugin through the core's cache wrappers: hits and
 * misses, the byte budget, LRU order, replacement, prefix invalidation, a block bigger than
 * the budget, a short destination buffer, the always-miss `plugin = none` cache, insert_take
 * (the cache keeps the caller's buffer; accounting, eviction, refusal), and a 4-thread smoke
 * test (copied and taken blocks) that checks every hit returns the right bytes.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <stdlib.h>

#include "conf/conf.h"
#include "metrics/metrics.h"
#include "plugin/plugin.h"
#include "test.h"

static const char *pd;

static struct stratus_cache *open_cache(const char *capacity)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_conf *c = stratus_conf_new();
    struct stratus_cache *cache = NULL;
    char set[128];
    stratus_conf_set(c, "cache.plugin=memory", &eb);
    snprintf(set, sizeof set, "cache.capacity=%s", capacity);
    stratus_conf_set(c, set, &eb);
    if (stratus_cache_open(c, "cache", pd, &cache, &eb) < 0)
        fprintf(stderr, "open: %s\n", eb.msg);
    stratus_conf_free(c); /* the memory cache keeps nothing of the conf */
    return cache;
}

static int has(struct stratus_cache *c, const char *k)
{
    char buf[8192];
    size_t len;
    return stratus_cache_lookup(c, k, buf, sizeof buf, &len) == 0;
}

static void test_basics(void)
{
    struct stratus_cache *c = open_cache("64KiB");
    struct stratus_cache_stats s;
    char block[4096], out[4096];
    size_t len = 0;
    CHECK(c != NULL);
    if (!c)
        return;
    memset(block, 'a', sizeof block);
    CHECK_EQ(stratus_cache_lookup(c, "o/1", out, sizeof out, &len), STRATUS_ENOTFOUND);
    stratus_cache_insert(c, "o/1", block, sizeof block);
    CHECK_EQ(stratus_cache_lookup(c, "o/1", out, sizeof out, &len), 0);
    CHECK_EQ(len, sizeof block);
    CHECK(memcmp(out, block, sizeof block) == 0);
    /* A short buffer: a hit that reports the length and copies nothing. */
    memset(out, 0, sizeof out);
    CHECK_EQ(stratus_cache_lookup(c, "o/1", out, 10, &len), 0);
    CHECK_EQ(len, sizeof block);
    CHECK_EQ(out[0], 0);
    /* Replacement. */
    memset(block, 'b', 100);
    stratus_cache_insert(c, "o/1", block, 100);
    CHECK_EQ(stratus_cache_lookup(c, "o/1", out, sizeof out, &len), 0);
    CHECK(len == 100 && out[0] == 'b');

    /* Budget and LRU: 4 KiB blocks in 64 KiB (each charged a little more than 4 KiB). */
    memset(block, 'c', sizeof block);
    char k[32];
    for (int i = 0; i < 14; i++) {
        snprintf(k, sizeof k, "lru/%02d", i);
        stratus_cache_insert(c, k, block, sizeof block);
    }
    CHECK(has(c, "lru/00")); /* touch 00: now most recent */
    for (int i = 14; i < 20; i++) {
        snprintf(k, sizeof k, "lru/%02d", i);
        stratus_cache_insert(c, k, block, sizeof block);
    }
    stratus_cache_get_stats(c, &s);
    CHECK(s.bytes_used <= s.bytes_budget);
    CHECK_EQ(s.bytes_budget, 64 * 1024);
    CHECK(s.evictions > 0);
    CHECK(has(c, "lru/00"));  /* recently used: kept */
    CHECK(!has(c, "lru/01")); /* least recently used: gone */
    CHECK(has(c, "lru/19"));
    /* Too big for the budget: not stored. */
    char *big = calloc(1, 70 * 1024);
    stratus_cache_insert(c, "big", big, 70 * 1024);
    free(big);
    CHECK(!has(c, "big"));
    CHECK(has(c, "lru/19"));

    /* Invalidate by prefix. */
    stratus_cache_insert(c, "obj-a/0", block, 10);
    stratus_cache_insert(c, "obj-a/1", block, 10);
    stratus_cache_insert(c, "obj-b/0", block, 10);
    stratus_cache_invalidate(c, "obj-a/");
    CHECK(!has(c, "obj-a/0"));
    CHECK(!has(c, "obj-a/1"));
    CHECK(has(c, "obj-b/0"));
    stratus_cache_invalidate(c, "");
    CHECK(!has(c, "obj-b/0"));
    stratus_cache_get_stats(c, &s);
    CHECK_EQ(s.bytes_used, 0);
    CHECK(s.hits > 0 && s.misses > 0 && s.inserts > 0);
    stratus_cache_close(c);
}

static void test_none(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_conf *conf = stratus_conf_new();
    struct stratus_cache *c = NULL;
    struct stratus_cache_stats s;
    char out[8];
    size_t len;
    /* No [cache] section at all. */
    CHECK_EQ(stratus_cache_open(conf, "cache", pd, &c, &eb), 0);
    stratus_cache_insert(c, "k", "v", 1);
    CHECK_EQ(stratus_cache_lookup(c, "k", out, sizeof out, &len), STRATUS_ENOTFOUND);
    stratus_cache_get_stats(c, &s);
    CHECK_EQ(s.misses, 1);
    stratus_cache_close(c);
    /* plugin = none */
    stratus_conf_set(conf, "cache.plugin=none", &eb);
    CHECK_EQ(stratus_cache_open(conf, "cache", pd, &c, &eb), 0);
    CHECK_EQ(stratus_cache_lookup(c, "k", out, sizeof out, &len), STRATUS_ENOTFOUND);
    stratus_cache_close(c);
    /* A bad capacity is a config error. */
    stratus_conf_set(conf, "cache.plugin=memory", &eb);
    stratus_conf_set(conf, "cache.capacity=lots", &eb);
    CHECK(stratus_cache_open(conf, "cache", pd, &c, &eb) < 0);
    CHECK(strstr(eb.msg, "--set: [cache] capacity: bad size 'lots'") != NULL);
    stratus_conf_free(conf);
}

static int64_t plugin_bytes(void)
{
    struct stratus_metric *m = stratus_metrics_find("stratus_plugin_alloc_bytes{plugin=\"memory\"}");
    return m ? stratus_metric_value(m) : -1;
}

/* ABI 1.1 insert_take: the cache keeps the caller's buffer (no copy), counts it as its own,
 * frees it when it evicts, replaces or refuses the block (a leak or a double free fails the
 * ASan build), and mixes with copied blocks under one key. */
static void test_take(void)
{
    struct stratus_cache *c = open_cache("64KiB");
    struct stratus_cache_stats s;
    char out[4096], k[32];
    size_t len = 0;
    int64_t base;
    CHECK(c != NULL);
    if (!c)
        return;
    base = plugin_bytes();
    CHECK(base >= 0);
    CHECK_EQ(stratus_cache_takes(c), 1);
    char *b = stratus_cache_buf_alloc(4096);
    CHECK(b != NULL);
    memset(b, 't', 4096);
    stratus_cache_insert_take(c, "t/1", b, 4096); /* b belongs to the cache now */
    CHECK_EQ(stratus_cache_lookup(c, "t/1", out, sizeof out, &len), 0);
    CHECK(len == 4096 && out[0] == 't' && out[4095] == 't');
    CHECK(plugin_bytes() >= base + 4096); /* the buffer moved onto the plugin's gauge */
    stratus_cache_get_stats(c, &s);
    CHECK(s.bytes_used > 4096);
    /* replaced by a copied block, and back */
    stratus_cache_insert(c, "t/1", "copy", 4);
    CHECK_EQ(stratus_cache_lookup(c, "t/1", out, sizeof out, &len), 0);
    CHECK(len == 4 && memcmp(out, "copy", 4) == 0);
    b = stratus_cache_buf_alloc(100);
    memset(b, 'u', 100);
    stratus_cache_insert_take(c, "t/1", b, 100);
    CHECK_EQ(stratus_cache_lookup(c, "t/1", out, sizeof out, &len), 0);
    CHECK(len == 100 && out[99] == 'u');
    /* eviction of taken blocks within the budget, LRU order kept */
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "tl/%02d", i);
        b = stratus_cache_buf_alloc(4096);
        memset(b, 'a' + i, 4096);
        stratus_cache_insert_take(c, k, b, 4096);
    }
    stratus_cache_get_stats(c, &s);
    CHECK(s.bytes_used <= s.bytes_budget);
    CHECK(s.evictions > 0);
    CHECK(!has(c, "tl/00"));
    CHECK_EQ(stratus_cache_lookup(c, "tl/19", out, sizeof out, &len), 0);
    CHECK(len == 4096 && out[0] == 'a' + 19);
    /* too big for the budget: refused, and the buffer is freed all the same */
    b = stratus_cache_buf_alloc(70 * 1024);
    memset(b, 0, 70 * 1024);
    stratus_cache_insert_take(c, "tbig", b, 70 * 1024);
    CHECK(!has(c, "tbig"));
    stratus_cache_invalidate(c, "");
    stratus_cache_get_stats(c, &s);
    CHECK_EQ(s.bytes_used, 0);
    stratus_cache_close(c);
    CHECK_EQ(plugin_bytes(), base); /* every taken buffer was given back */

    /* a cache without the op (plugin = none) frees what it is handed */
    struct stratus_errbuf eb = {{0}};
    struct stratus_conf *conf = stratus_conf_new();
    CHECK_EQ(stratus_cache_open(conf, "cache", pd, &c, &eb), 0);
    CHECK_EQ(stratus_cache_takes(c), 0);
    b = stratus_cache_buf_alloc(1 << 20); /* a spare-sized buffer: kept for the next alloc */
    stratus_cache_insert_take(c, "k", b, 1 << 20);
    char *again = stratus_cache_buf_alloc(1 << 20);
    CHECK(again != NULL);
    /* block-sized buffers are page-aligned (storage-local reads into them with O_DIRECT),
     * fresh or reused, and the small ones still allocate */
    CHECK_EQ((uintptr_t)again % 4096, 0u);
    char *fresh = stratus_cache_buf_alloc((1 << 20) + 512);
    CHECK(fresh != NULL);
    CHECK_EQ((uintptr_t)fresh % 4096, 0u);
    memset(fresh, 0xab, (1 << 20) + 512);
    stratus_cache_buf_free(fresh);
    stratus_cache_buf_free(again);
    stratus_cache_close(c);
    stratus_conf_free(conf);
}

struct worker {
    pthread_t tid;
    struct stratus_cache *c;
    int id;
    int bad; /* hits with wrong bytes */
    int hits;
};

/* Block content is a function of its key, so any hit can be verified. */
static void make_block(char *b, size_t n, int key)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)(key * 31 + (int)i);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char block[2048], out[2048], want[2048], k[32];
    size_t len;
    unsigned seed = (unsigned)w->id * 7919u + 1;
    for (int i = 0; i < 20000; i++) {
        seed = seed * 1103515245u + 12345u;
        int key = (int)((seed >> 8) % 300);
        snprintf(k, sizeof k, "blk/%d", key);
        if (stratus_cache_lookup(w->c, k, out, sizeof out, &len) == 0) {
            w->hits++;
            make_block(want, sizeof want, key);
            if (len != sizeof want || memcmp(out, want, len) != 0)
                w->bad++;
        } else if (i % 2) {
            make_block(block, sizeof block, key);
            stratus_cache_insert(w->c, k, block, sizeof block);
        } else { /* half the blocks handed over without a copy */
            char *b = stratus_cache_buf_alloc(sizeof block);
            if (b) {
                make_block(b, sizeof block, key);
                stratus_cache_insert_take(w->c, k, b, sizeof block);
            }
        }
        if (i % 5000 == 4999)
            stratus_cache_invalidate(w->c, "blk/1");
    }
    return NULL;
}

static void test_threads(void)
{
    struct stratus_cache *c = open_cache("256KiB"); /* ~120 of 300 blocks fit: evictions */
    struct worker ws[4];
    struct stratus_cache_stats s;
    if (!c)
        return;
    for (int i = 0; i < 4; i++) {
        ws[i] = (struct worker){.c = c, .id = i};
        pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]);
    }
    int bad = 0, hits = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(ws[i].tid, NULL);
        bad += ws[i].bad;
        hits += ws[i].hits;
    }
    stratus_cache_get_stats(c, &s);
    CHECK_EQ(bad, 0);
    CHECK(hits > 0);
    CHECK_EQ(s.hits, (uint64_t)hits);
    CHECK(s.evictions > 0);
    CHECK(s.bytes_used <= s.bytes_budget);
    CHECK_EQ(s.hits + s.misses, 80000);
    stratus_cache_close(c);
}

int main(void)
{
    pd = getenv("STRATUS_PLUGIN_DIR");
    if (!pd) {
        fprintf(stderr, "run under ctest (STRATUS_PLUGIN_DIR)\n");
        return 1;
    }
    test_basics();
    test_none();
    test_take();
    test_threads();
    TEST_REPORT();
}
