/* stream_fixture.h - the kit the storage-engine unit tests share (test_stream, test_timeidx,
 * test_offset_time, test_idem, test_group), one copy instead of one per test:
 *   - bytes: zigzag varints and big-endian integers;
 *   - v2 record batches: fx_record_put() writes one uncompressed record, fx_batch_seal() fills
 *     the 61-byte header (lengths, magic 2, attributes, timestamps, producer, count, CRC-32C)
 *     of records already laid out after it;
 *   - acks: fx_on_done, the append completion callback, counts completions and errors in the
 *     process-wide fx_acks; fx_acks_wait() waits for a count;
 *   - the environment: fx_env_open() makes /tmp/stratus-test-<name>-XXXXXX and opens the
 *     storage-local plugin on <dir>/objects (plugins from $STRATUS_PLUGIN_DIR, else ./plugins),
 *     optionally the memory cache plugin; fx_env_close() closes them and removes the directory
 *     when no check failed. fx_stream_open() opens the engine on <dir>/data;
 *   - cold reads waited for (fx_read_cold) and the count of objects storage-local holds.
 * Each test is its own executable (tests/CMakeLists.txt), so the state here (fx_acks, fx_env)
 * is one per test. Everything is static and marked unused: a test compiles what it calls.
 * The prefix fx_ stands for this file. Include after test.h (the helpers CHECK).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_TEST_STREAM_FIXTURE_H
#define STRATUS_TEST_STREAM_FIXTURE_H

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "plugin/plugin.h"
#include "proto/kerr.h"
#include "stream/stream.h"
#include "test.h"
#include "util/clock.h"
#include "util/crc32c.h"

#define FX_UNUSED __attribute__((unused))

/* ---- bytes ---------------------------------------------------------------------------- */

/* The zigzag varint of v at p; returns its size (at most 10). */
FX_UNUSED static size_t fx_varint_put(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;

    while (z >= 0x80) {
        p[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (uint8_t)z;
    return n;
}

/* The size fx_varint_put() would write. */
FX_UNUSED static size_t fx_varint_len(int64_t v)
{
    uint8_t tmp[10];
    return fx_varint_put(tmp, v);
}

/* The low n bytes of v at p, big-endian. */
FX_UNUSED static void fx_be_put(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

FX_UNUSED static uint64_t fx_be_get(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* ---- v2 record batches ---------------------------------------------------------------- */

/* Batch header: baseOffset(8) batchLength(4) partitionLeaderEpoch(4) magic(1) crc(4)
 * attributes(2) lastOffsetDelta(4) baseTimestamp(8) maxTimestamp(8) producerId(8)
 * producerEpoch(2) baseSequence(4) recordCount(4); the records follow. */
#define FX_BATCH_HEADER 61

/* What fx_batch_seal() writes besides the lengths; fx_batch_plain() gives a batch of no
 * producer (producer id, epoch and base sequence -1) and attributes 0. */
struct fx_batch {
    int16_t attributes; /* the codec in the low 3 bits, 0x08 LogAppendTime */
    int32_t nrec;
    int64_t base_ts, max_ts;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_seq;
};

FX_UNUSED static struct fx_batch fx_batch_plain(int32_t nrec, int64_t base_ts, int64_t max_ts)
{
    struct fx_batch b = {.attributes = 0,
                         .nrec = nrec,
                         .base_ts = base_ts,
                         .max_ts = max_ts,
                         .producer_id = -1,
                         .producer_epoch = -1,
                         .base_seq = -1};
    return b;
}

/* One record at p: length, attributes 0, the deltas, a null key, value[vlen], no headers.
 * Returns its size (at most vlen + 32). */
FX_UNUSED static size_t fx_record_put(uint8_t *p, int64_t ts_delta, int64_t off_delta,
                                      const void *value, size_t vlen)
{
    size_t body = 1 + fx_varint_len(ts_delta) + fx_varint_len(off_delta) + fx_varint_len(-1) +
                  fx_varint_len((int64_t)vlen) + vlen + fx_varint_len(0);
    size_t n = fx_varint_put(p, (int64_t)body);

    p[n++] = 0; /* attributes */
    n += fx_varint_put(p + n, ts_delta);
    n += fx_varint_put(p + n, off_delta);
    n += fx_varint_put(p + n, -1); /* key */
    n += fx_varint_put(p + n, (int64_t)vlen);
    memcpy(p + n, value, vlen);
    n += vlen;
    n += fx_varint_put(p + n, 0); /* headers */
    return n;
}

/* Fills the header of the batch at out whose records (compressed or not) occupy
 * out[FX_BATCH_HEADER, len): base offset 0, leader epoch -1, magic 2, the CRC-32C last.
 * Returns len. */
FX_UNUSED static size_t fx_batch_seal(uint8_t *out, size_t len, const struct fx_batch *b)
{
    fx_be_put(out, 0, 8);
    fx_be_put(out + 8, len - 12, 4);
    fx_be_put(out + 12, (uint64_t)-1, 4);
    out[16] = 2;
    fx_be_put(out + 21, (uint64_t)(uint16_t)b->attributes, 2);
    fx_be_put(out + 23, (uint64_t)(b->nrec - 1), 4);
    fx_be_put(out + 27, (uint64_t)b->base_ts, 8);
    fx_be_put(out + 35, (uint64_t)b->max_ts, 8);
    fx_be_put(out + 43, (uint64_t)b->producer_id, 8);
    fx_be_put(out + 51, (uint64_t)b->producer_epoch, 2);
    fx_be_put(out + 53, (uint64_t)b->base_seq, 4);
    fx_be_put(out + 57, (uint64_t)b->nrec, 4);
    fx_be_put(out + 17, stratus_crc32c(0, out + 21, len - 21), 4);
    return len;
}

/* ---- acks ----------------------------------------------------------------------------- */

/* How long the tests wait for acks, in ms. */
#define FX_ACK_MS 20000

/* Every completion fx_on_done has seen, and how many of them were errors. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, errors;
} fx_acks FX_UNUSED = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

/* The stratus_append_done_fn the tests pass (arg unused). */
FX_UNUSED static void fx_on_done(void *arg, int16_t kerr)
{
    (void)arg;
    pthread_mutex_lock(&fx_acks.mu);
    fx_acks.done++;
    if (kerr != KAFKA_ERR_NONE)
        fx_acks.errors++;
    pthread_cond_broadcast(&fx_acks.cv);
    pthread_mutex_unlock(&fx_acks.mu);
}

/* Completions so far: take it before appending, then wait for it plus the appends. */
FX_UNUSED static int fx_acks_done(void)
{
    pthread_mutex_lock(&fx_acks.mu);
    int n = fx_acks.done;
    pthread_mutex_unlock(&fx_acks.mu);
    return n;
}

FX_UNUSED static int fx_acks_errors(void)
{
    pthread_mutex_lock(&fx_acks.mu);
    int n = fx_acks.errors;
    pthread_mutex_unlock(&fx_acks.mu);
    return n;
}

/* Waits up to timeout_ms for want completions in all; 1 if they came, 0 if not. */
FX_UNUSED static int fx_acks_wait(int want, int timeout_ms)
{
    int64_t deadline = stratus_mono_ms() + timeout_ms;

    pthread_mutex_lock(&fx_acks.mu);
    while (fx_acks.done < want && stratus_mono_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&fx_acks.cv, &fx_acks.mu, &ts);
    }
    int ok = fx_acks.done >= want;
    pthread_mutex_unlock(&fx_acks.mu);
    return ok;
}

/* Appends one batch and, unless it is refused (r->error), waits up to timeout_ms for it to be
 * durable. Returns 1 when it was acked, 0 when refused or not acked in time. */
FX_UNUSED static int fx_append_acked(struct stratus_partition *p, const uint8_t *b, size_t len,
                                     struct stratus_append_result *r, int timeout_ms)
{
    int want = fx_acks_done() + 1;

    stratus_partition_append(p, b, len, r, fx_on_done, NULL);
    if (r->error != KAFKA_ERR_NONE)
        return 0;
    return fx_acks_wait(want, timeout_ms);
}

/* ---- the environment ------------------------------------------------------------------ */

static struct {
    char dir[256];      /* /tmp/stratus-test-<name>-XXXXXX */
    char data_dir[300]; /* <dir>/data, the engine's */
    struct stratus_conf *conf;
    struct stratus_storage *st;  /* storage-local on <dir>/objects */
    struct stratus_cache *cache; /* memory, 64 MiB: only after fx_env_open_cache() */
} fx_env FX_UNUSED;

FX_UNUSED static const char *fx_plugin_dir(void)
{
    const char *pdir = getenv("STRATUS_PLUGIN_DIR");
    return pdir ? pdir : "plugins";
}

/* Makes the directory (exits 1 if it cannot) and opens storage-local; two checks. Returns 0,
 * or -1 (a failed check) when the plugin does not open. */
FX_UNUSED static int fx_env_open(const char *name)
{
    struct stratus_errbuf eb = {{0}};
    char buf[512];

    snprintf(fx_env.dir, sizeof fx_env.dir, "/tmp/stratus-test-%s-XXXXXX", name);
    if (!mkdtemp(fx_env.dir)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(fx_env.data_dir, sizeof fx_env.data_dir, "%s/data", fx_env.dir);
    fx_env.conf = stratus_conf_new();
    CHECK_EQ(stratus_conf_set(fx_env.conf, "storage.plugin=local", &eb), 0);
    snprintf(buf, sizeof buf, "storage.path=%s/objects", fx_env.dir);
    CHECK_EQ(stratus_conf_set(fx_env.conf, buf, &eb), 0);
    if (stratus_storage_open(fx_env.conf, "storage", fx_plugin_dir(), &fx_env.st, &eb) != 0) {
        fprintf(stderr, "storage open: %s\n", eb.msg);
        fx_env.st = NULL;
        CHECK(0);
        return -1;
    }
    return 0;
}

/* Opens the memory cache plugin (64 MiB) as fx_env.cache; two checks. 0, or -1 (a failed
 * check). */
FX_UNUSED static int fx_env_open_cache(void)
{
    struct stratus_errbuf eb = {{0}};

    CHECK_EQ(stratus_conf_set(fx_env.conf, "cache.plugin=memory", &eb), 0);
    CHECK_EQ(stratus_conf_set(fx_env.conf, "cache.capacity=64MiB", &eb), 0);
    if (stratus_cache_open(fx_env.conf, "cache", fx_plugin_dir(), &fx_env.cache, &eb) != 0) {
        fprintf(stderr, "cache open: %s\n", eb.msg);
        fx_env.cache = NULL;
        CHECK(0);
        return -1;
    }
    return 0;
}

/* Closes what fx_env_open*() opened; removes the directory unless a check failed (kept for
 * a look). */
FX_UNUSED static void fx_env_close(void)
{
    char buf[512];

    if (fx_env.cache)
        stratus_cache_close(fx_env.cache);
    if (fx_env.st)
        stratus_storage_close(fx_env.st);
    stratus_conf_free(fx_env.conf);
    fx_env.cache = NULL;
    fx_env.st = NULL;
    fx_env.conf = NULL;
    snprintf(buf, sizeof buf, "rm -rf %s", fx_env.dir);
    if (test_failed == 0 && system(buf) != 0)
        fprintf(stderr, "cleanup failed\n");
}

/* The engine settings the tests start from: data in <dir>/data, a 64 MiB buffered WAL,
 * uploads only on flush (10 min interval, 64 MiB object target) as pieces (upload_in_place,
 * as the broker's default upload.in_place = true),
 * a 256 MiB log cache, two I/O threads, retention checked hourly. */
FX_UNUSED static void fx_stream_conf(struct stratus_stream_conf *c)
{
    memset(c, 0, sizeof *c);
    c->data_dir = fx_env.data_dir;
    c->wal.size_bytes = 64ull << 20;
    c->wal.force_buffered = 1;
    c->upload_interval_ms = 600000;
    c->object_target_bytes = 64ull << 20;
    c->upload_in_place = 1;
    c->log_cache_bytes = 256ull << 20;
    c->io_threads = 2;
    c->retention_check_ms = 3600000;
}

/* Opens the engine on fx_env.st with c (NULL: fx_stream_conf()) and cache (may be NULL);
 * NULL, with the reason on stderr, when it does not open. */
FX_UNUSED static struct stratus_stream *fx_stream_open(const struct stratus_stream_conf *c,
                                                       struct stratus_cache *cache)
{
    struct stratus_stream_conf def;
    struct stratus_stream *s = NULL;
    struct stratus_errbuf eb = {{0}};

    if (!c) {
        fx_stream_conf(&def);
        c = &def;
    }
    if (stratus_stream_open(c, fx_env.st, cache, &s, &eb) != 0) {
        fprintf(stderr, "stream open: %s\n", eb.msg);
        return NULL;
    }
    return s;
}

/* fx_stream_open() with the settings of fx_stream_conf() and no cache. */
FX_UNUSED static struct stratus_stream *fx_stream_open_defaults(void)
{
    return fx_stream_open(NULL, NULL);
}

/* ---- reads and objects ---------------------------------------------------------------- */

struct fx_cold_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    struct stratus_fetch_result res;
};

FX_UNUSED static void fx_on_cold(void *arg, struct stratus_fetch_result *res)
{
    struct fx_cold_wait *w = arg;

    pthread_mutex_lock(&w->mu);
    w->res = *res;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* stratus_partition_read_cold(), waited for; the caller frees out->data. */
FX_UNUSED static void fx_read_cold(struct stratus_partition *p, int64_t off, size_t max,
                                   int min_one, struct stratus_fetch_result *out)
{
    struct fx_cold_wait w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

    stratus_partition_read_cold(p, off, max, min_one, fx_on_cold, &w);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    *out = w.res;
}

/* The offset after the last record batch in d[0, len) (v2 batches back to back), or -1. */
FX_UNUSED static int64_t fx_next_offset(const uint8_t *d, size_t len)
{
    size_t pos = 0;
    int64_t next = -1;
    while (len - pos >= 27) {
        const uint8_t *b = d + pos;
        int64_t base = 0;
        for (int i = 0; i < 8; i++)
            base = (int64_t)((uint64_t)base << 8 | b[i]);
        uint32_t blen = (uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 | (uint32_t)b[10] << 8 | b[11];
        int32_t delta = (int32_t)((uint32_t)b[23] << 24 | (uint32_t)b[24] << 16 |
                                  (uint32_t)b[25] << 8 | b[26]);
        if (blen > len - pos - 12)
            break;
        next = base + delta + 1;
        pos += 12 + (size_t)blen;
    }
    return next;
}

/* Like fx_read_cold, then on from where it stopped (a cold read ends where the log cache
 * begins; a consumer's next fetch reads on) until max bytes or the high watermark: the whole
 * span as one buffer, as a consumer would see it over several fetches. */
FX_UNUSED static void fx_read_cold_all(struct stratus_partition *p, int64_t off, size_t max,
                                       int min_one, struct stratus_fetch_result *out)
{
    fx_read_cold(p, off, max, min_one, out);
    while (out->error == KAFKA_ERR_NONE && out->len && out->len < max) {
        int64_t next = fx_next_offset(out->data, out->len);
        struct stratus_fetch_result more;
        if (next < 0 || next >= out->high_watermark)
            break;
        fx_read_cold(p, next, max - out->len, 0, &more);
        if (more.error != KAFKA_ERR_NONE || more.len == 0) {
            free(more.data);
            break;
        }
        uint8_t *d = realloc(out->data, out->len + more.len);
        if (!d) {
            free(more.data);
            break;
        }
        memcpy(d + out->len, more.data, more.len);
        out->data = d;
        out->len += more.len;
        free(more.data);
    }
}

/* The objects storage-local holds: <dir>/objects/data/<hh>/<id>.sso. */
FX_UNUSED static int fx_count_objects(void)
{
    char sub[600];
    int n = 0;
    DIR *d;
    struct dirent *e;

    snprintf(sub, sizeof sub, "%s/objects/data", fx_env.dir);
    d = opendir(sub);
    if (!d)
        return 0;
    while ((e = readdir(d))) {
        char p2[900];
        DIR *d2;
        struct dirent *e2;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p2, sizeof p2, "%s/%s", sub, e->d_name);
        d2 = opendir(p2);
        if (!d2)
            continue;
        while ((e2 = readdir(d2)))
            if (strstr(e2->d_name, ".sso"))
                n++;
        closedir(d2);
    }
    closedir(d);
    return n;
}

#endif
