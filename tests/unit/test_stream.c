/* link: stratus_stream */
/* test_stream.c - the storage engine end to end, against the storage-local plugin:
 * topic catalog and configs (persisted across reopen), appends to several partitions read back
 * byte for byte from the log cache, flush -> objects -> reopen -> cold reads, WAL trimmed,
 * replay after an unclean exit (a child process that _exits after its acks), retention.ms
 * moving the log start and deleting objects, deleted topics' garbage, offset_for_time,
 * corrupt and oversized batches refused with nothing stored.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "plugin/plugin.h"
#include "proto/kerr.h"
#include "stream/stream.h"
#include "test.h"
#include "util/clock.h"
#include "util/crc32c.h"

static char g_dir[256];
static struct stratus_storage *g_st;

/* ---- record batches ---- */

static size_t put_varint(uint8_t *p, int64_t v)
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

static void be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t rbe(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* A valid v2 batch of nrec records with vlen-byte values derived from seed; returns its size.
 * out needs 61 + nrec * (vlen + 32) bytes. */
static size_t build_batch(uint8_t *out, int nrec, int64_t ts, size_t vlen, uint32_t seed)
{
    size_t pos = 61;
    for (int i = 0; i < nrec; i++) {
        uint8_t body[4096 + 64];
        size_t b = 0;
        body[b++] = 0; /* attributes */
        b += put_varint(body + b, i);
        b += put_varint(body + b, i);
        b += put_varint(body + b, -1);
        b += put_varint(body + b, (int64_t)vlen);
        for (size_t k = 0; k < vlen; k++)
            body[b++] = (uint8_t)(seed * 31 + (uint32_t)i * 7 + (uint32_t)k);
        b += put_varint(body + b, 0);
        pos += put_varint(out + pos, (int64_t)b);
        memcpy(out + pos, body, b);
        pos += b;
    }
    be(out, 0, 8);
    be(out + 8, pos - 12, 4);
    be(out + 12, (uint64_t)-1, 4);
    out[16] = 2;
    be(out + 21, 0, 2);
    be(out + 23, (uint64_t)(nrec - 1), 4);
    be(out + 27, (uint64_t)ts, 8);
    be(out + 35, (uint64_t)(ts + nrec - 1), 8);
    be(out + 43, (uint64_t)-1, 8);
    be(out + 51, (uint64_t)-1, 2);
    be(out + 53, (uint64_t)-1, 4);
    be(out + 57, (uint64_t)nrec, 4);
    be(out + 17, stratus_crc32c(0, out + 21, pos - 21), 4);
    return pos;
}

/* ---- waiting for completions ---- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_done, g_done_err, g_hook_calls;

static void on_done(void *arg, int16_t kerr)
{
    (void)arg;
    pthread_mutex_lock(&g_mu);
    g_done++;
    if (kerr != KAFKA_ERR_NONE)
        g_done_err++;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

static int wait_done(int want)
{
    int64_t deadline = stratus_mono_ms() + 20000;
    pthread_mutex_lock(&g_mu);
    while (g_done < want && stratus_mono_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&g_cv, &g_mu, &ts);
    }
    int ok = g_done >= want;
    pthread_mutex_unlock(&g_mu);
    return ok;
}

static void on_hook(void *arg, struct stratus_partition *p)
{
    (void)arg;
    (void)p;
    pthread_mutex_lock(&g_mu);
    g_hook_calls++;
    pthread_mutex_unlock(&g_mu);
}

struct cold_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    struct stratus_fetch_result res;
};

static void on_cold(void *arg, struct stratus_fetch_result *res)
{
    struct cold_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->res = *res;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void read_cold(struct stratus_partition *p, int64_t off, size_t max, int min_one,
                      struct stratus_fetch_result *out)
{
    struct cold_wait w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    stratus_partition_read_cold(p, off, max, min_one, on_cold, &w);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    *out = w.res;
}

/* ---- engine setup ---- */

static struct stratus_cache *g_cache;
static int g_small; /* small log cache and object target: the uploader runs by itself */

static struct stratus_stream *open_stream(void)
{
    struct stratus_stream_conf c = {0};
    struct stratus_stream *s = NULL;
    struct stratus_errbuf eb = {{0}};
    char data[300];

    snprintf(data, sizeof data, "%s/data", g_dir);
    c.data_dir = data;
    c.wal.size_bytes = 64ull << 20;
    c.wal.force_buffered = 1;
    c.upload_interval_ms = 600000; /* uploads only on flush, unless the target is reached */
    c.object_target_bytes = 64ull << 20;
    c.log_cache_bytes = 256ull << 20;
    c.io_threads = 2;
    c.retention_check_ms = 3600000;
    if (g_small) {
        c.log_cache_bytes = 256 << 10;
        c.object_target_bytes = 64 << 10;
        c.upload_interval_ms = 50;
    }
    if (stratus_stream_open(&c, g_st, g_small ? g_cache : NULL, &s, &eb) != 0) {
        fprintf(stderr, "stream open: %s\n", eb.msg);
        return NULL;
    }
    stratus_stream_set_commit_hook(s, on_hook, NULL);
    return s;
}

static int count_objects(const char *dir)
{
    /* objects live at <dir>/data/<hh>/<id>.sso */
    char sub[600];
    int n = 0;
    DIR *d;
    struct dirent *e;

    snprintf(sub, sizeof sub, "%s/objects/data", dir);
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

/* Expected bytes of what we appended: our batches with base offset and epoch set. */
struct expect {
    uint8_t *buf;
    size_t len, cap;
    int64_t offsets[2048];   /* base offset of batch i */
    size_t positions[2048];  /* position of batch i in buf */
    int nbatches;
    int64_t next;
};

static void expect_add(struct expect *e, const uint8_t *b, size_t len, int64_t base, int32_t epoch)
{
    if (e->len + len > e->cap) {
        e->cap = (e->len + len) * 2;
        e->buf = realloc(e->buf, e->cap);
    }
    memcpy(e->buf + e->len, b, len);
    be(e->buf + e->len, (uint64_t)base, 8);
    be(e->buf + e->len + 12, (uint64_t)(uint32_t)epoch, 4);
    e->offsets[e->nbatches] = base;
    e->positions[e->nbatches] = e->len;
    e->nbatches++;
    e->len += len;
}

/* Appends nb batches to p (records per batch vary), recording what to expect. */
static void append_many(struct stratus_partition *p, struct expect *e, int nb, uint32_t seed,
                        int64_t ts)
{
    static uint8_t buf[70000];
    for (int i = 0; i < nb; i++) {
        int nrec = 1 + (int)((seed + (uint32_t)i) % 5);
        size_t vlen = 10 + ((seed * 13 + (uint32_t)i * 101) % 900);
        size_t len = build_batch(buf, nrec, ts + i, vlen, seed + (uint32_t)i);
        struct stratus_append_result r;
        stratus_partition_append(p, buf, len, &r, on_done, NULL);
        CHECK_EQ(r.error, KAFKA_ERR_NONE);
        if (r.error != KAFKA_ERR_NONE) {
            fprintf(stderr, "append: %s\n", r.msg);
            continue;
        }
        CHECK_EQ(r.base_offset, e->next);
        expect_add(e, buf, len, r.base_offset, stratus_partition_leader_epoch(p));
        e->next += nrec;
    }
}

static const struct stratus_config_entry *find_cfg(const struct stratus_config_entry *v, size_t n,
                                                    const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

/* ---- tests ---- */

static void test_catalog(void)
{
    struct stratus_stream *s = open_stream();
    char msg[256], longname[260];
    uint8_t id[16], id2[16];
    struct stratus_topic_info ti;
    struct stratus_config_entry *cfg = NULL;
    size_t n = 0;
    struct stratus_kv good[] = {{"retention.ms", "86400000"}, {"segment.bytes", "1048576"}};
    struct stratus_kv compact[] = {{"cleanup.policy", "compact"}};
    struct stratus_kv unknown[] = {{"no.such.config", "1"}};
    struct stratus_kv badval[] = {{"retention.ms", "abc"}};
    struct stratus_kv gzip[] = {{"compression.type", "gzip"}};
    struct stratus_kv badts[] = {{"message.timestamp.type", "Whenever"}};

    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(stratus_stream_create_topic(s, "orders", 3, good, 2, 0, id, msg, sizeof msg),
             KAFKA_ERR_NONE);
    CHECK(memcmp(id, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16) != 0);
    CHECK_EQ(id[6] >> 4, 4);
    CHECK_EQ(stratus_stream_create_topic(s, "orders", 1, NULL, 0, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_TOPIC_ALREADY_EXISTS);
    CHECK_EQ(stratus_stream_create_topic(s, "", 1, NULL, 0, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_INVALID_TOPIC_EXCEPTION);
    CHECK_EQ(stratus_stream_create_topic(s, "..", 1, NULL, 0, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_INVALID_TOPIC_EXCEPTION);
    CHECK_EQ(stratus_stream_create_topic(s, "a/b", 1, NULL, 0, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_INVALID_TOPIC_EXCEPTION);
    memset(longname, 'x', 250);
    longname[250] = 0;
    CHECK_EQ(stratus_stream_create_topic(s, longname, 1, NULL, 0, 1, NULL, msg, sizeof msg),
             KAFKA_ERR_INVALID_TOPIC_EXCEPTION);
    longname[249] = 0;
    CHECK_EQ(stratus_stream_create_topic(s, longname, 1, NULL, 0, 1, NULL, msg, sizeof msg),
             KAFKA_ERR_NONE);
    CHECK_EQ(stratus_stream_find_topic(s, longname, &ti), STRATUS_ENOTFOUND); /* validate_only */
    CHECK_EQ(stratus_stream_create_topic(s, "t0", 0, NULL, 0, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_INVALID_PARTITIONS);
    CHECK_EQ(stratus_stream_create_topic(s, "t1", 1, compact, 1, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_INVALID_CONFIG);
    CHECK_STR(msg, "cleanup.policy=compact is not supported yet");
    CHECK_EQ(stratus_stream_create_topic(s, "t1", 1, unknown, 1, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_INVALID_CONFIG);
    CHECK(strstr(msg, "no.such.config") != NULL);
    CHECK_EQ(stratus_stream_create_topic(s, "t1", 1, badval, 1, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_INVALID_CONFIG);
    CHECK(strstr(msg, "retention.ms") != NULL);
    CHECK_EQ(stratus_stream_create_topic(s, "t1", 1, gzip, 1, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_INVALID_CONFIG);
    CHECK_EQ(stratus_stream_create_topic(s, "t1", 1, badts, 1, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_INVALID_CONFIG);
    CHECK_EQ(stratus_stream_find_topic(s, "t1", &ti), STRATUS_ENOTFOUND);
    CHECK_EQ(stratus_stream_create_topic(s, "gone", -1, NULL, 0, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_NONE);
    CHECK_EQ(stratus_stream_find_topic(s, "gone", &ti), 0);
    CHECK_EQ(ti.partitions, 1);

    CHECK_EQ(stratus_stream_describe_topic_configs(s, "orders", &cfg, &n), KAFKA_ERR_NONE);
    CHECK(n >= 25);
    {
        const struct stratus_config_entry *e = find_cfg(cfg, n, "retention.ms");
        CHECK(e && strcmp(e->value, "86400000") == 0 &&
              e->source == STRATUS_CONFIG_SRC_DYNAMIC_TOPIC && !e->is_default);
        e = find_cfg(cfg, n, "max.message.bytes");
        CHECK(e && strcmp(e->value, "16777216") == 0 && e->source == STRATUS_CONFIG_SRC_DEFAULT &&
              e->is_default && e->type == STRATUS_CONFIG_T_INT && e->doc);
        e = find_cfg(cfg, n, "unclean.leader.election.enable");
        CHECK(e && strcmp(e->value, "false") == 0 && strstr(e->doc, "no effect"));
    }
    free(cfg);

    {
        struct stratus_kv inc[] = {{"retention.bytes", "1000000"}};
        struct stratus_kv full[] = {{"max.message.bytes", "2000"}};
        CHECK_EQ(stratus_stream_alter_topic_configs(s, "orders", inc, 1, 1, 0, msg, sizeof msg),
                 KAFKA_ERR_NONE);
        CHECK_EQ(stratus_stream_describe_topic_configs(s, "orders", &cfg, &n), KAFKA_ERR_NONE);
        CHECK_STR(find_cfg(cfg, n, "retention.bytes")->value, "1000000");
        CHECK_STR(find_cfg(cfg, n, "retention.ms")->value, "86400000");
        free(cfg);
        CHECK_EQ(stratus_stream_alter_topic_configs(s, "orders", full, 1, 0, 0, msg, sizeof msg),
                 KAFKA_ERR_NONE);
        CHECK_EQ(stratus_stream_alter_topic_configs(s, "orders", compact, 1, 1, 0, msg,
                                                    sizeof msg), KAFKA_ERR_INVALID_CONFIG);
        CHECK_EQ(stratus_stream_alter_topic_configs(s, "nope", full, 1, 1, 0, msg, sizeof msg),
                 KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    }
    CHECK_EQ(stratus_stream_create_partitions(s, "orders", 2, 0, msg, sizeof msg),
             KAFKA_ERR_INVALID_PARTITIONS);
    CHECK_EQ(stratus_stream_create_partitions(s, "orders", 4, 0, msg, sizeof msg),
             KAFKA_ERR_NONE);
    CHECK_EQ(stratus_stream_delete_topic(s, "gone", msg, sizeof msg), KAFKA_ERR_NONE);
    CHECK_EQ(stratus_stream_delete_topic(s, "gone", msg, sizeof msg),
             KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    struct stratus_partition *p = stratus_stream_partition(s, "orders", 3);
    CHECK(p != NULL);
    int32_t epoch = p ? stratus_partition_leader_epoch(p) : -1;
    stratus_partition_release(p);
    CHECK(stratus_stream_partition(s, "orders", 4) == NULL);
    stratus_stream_close(s);

    /* reopen: everything persisted */
    s = open_stream();
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(stratus_stream_find_topic(s, "orders", &ti), 0);
    CHECK_EQ(ti.partitions, 4);
    CHECK(memcmp(ti.id, id, 16) == 0);
    CHECK_EQ(stratus_stream_find_topic_id(s, id, &ti), 0);
    CHECK_STR(ti.name, "orders");
    memset(id2, 0, sizeof id2);
    CHECK_EQ(stratus_stream_find_topic_id(s, id2, &ti), STRATUS_ENOTFOUND);
    CHECK_EQ(stratus_stream_find_topic(s, "gone", &ti), STRATUS_ENOTFOUND);
    CHECK_EQ(stratus_stream_describe_topic_configs(s, "orders", &cfg, &n), KAFKA_ERR_NONE);
    CHECK_STR(find_cfg(cfg, n, "max.message.bytes")->value, "2000");
    CHECK_EQ(find_cfg(cfg, n, "max.message.bytes")->source, STRATUS_CONFIG_SRC_DYNAMIC_TOPIC);
    CHECK_STR(find_cfg(cfg, n, "retention.ms")->value, "604800000"); /* reset by full alter */
    CHECK_EQ(find_cfg(cfg, n, "retention.ms")->source, STRATUS_CONFIG_SRC_DEFAULT);
    free(cfg);
    p = stratus_stream_partition(s, "orders", 3);
    CHECK(p && stratus_partition_leader_epoch(p) == epoch + 1);
    stratus_partition_release(p);
    {
        struct stratus_topic_info *all = NULL;
        size_t nt = 0;
        CHECK_EQ(stratus_stream_list_topics(s, &all, &nt), 0);
        CHECK_EQ(nt, 1);
        free(all);
    }
    CHECK_EQ(stratus_stream_delete_topic(s, "orders", msg, sizeof msg), KAFKA_ERR_NONE);
    stratus_stream_close(s);
}

static struct expect g_exp[3];

static void check_read_all(struct stratus_partition *p, const struct expect *e, int cold)
{
    struct stratus_fetch_result r;
    if (cold) {
        read_cold(p, 0, 64u << 20, 1, &r);
    } else {
        CHECK_EQ(stratus_partition_read(p, 0, 64u << 20, 1, &r), 0);
    }
    CHECK_EQ(r.error, KAFKA_ERR_NONE);
    CHECK_EQ(r.high_watermark, e->next);
    CHECK_EQ(r.len, e->len);
    CHECK(r.len == e->len && memcmp(r.data, e->buf, e->len) == 0);
    free(r.data);
    /* from the middle of batch 7: starts with batch 7; at most ~3 batches by max_bytes */
    if (e->nbatches > 10) {
        size_t want = e->positions[10] - e->positions[7];
        int64_t off = e->offsets[7] + (e->offsets[8] - e->offsets[7]) / 2;
        if (cold) {
            read_cold(p, off, want, 0, &r);
        } else {
            CHECK_EQ(stratus_partition_read(p, off, want, 0, &r), 0);
        }
        CHECK_EQ(r.error, KAFKA_ERR_NONE);
        CHECK_EQ(r.len, want);
        CHECK(r.len == want && memcmp(r.data, e->buf + e->positions[7], want) == 0);
        free(r.data);
        /* min_one with a tiny max_bytes: exactly one batch */
        if (cold) {
            read_cold(p, e->offsets[3], 1, 1, &r);
        } else {
            CHECK_EQ(stratus_partition_read(p, e->offsets[3], 1, 1, &r), 0);
        }
        CHECK_EQ(r.len, e->positions[4] - e->positions[3]);
        free(r.data);
        /* without min_one: nothing */
        if (cold) {
            read_cold(p, e->offsets[3], 1, 0, &r);
        } else {
            CHECK_EQ(stratus_partition_read(p, e->offsets[3], 1, 0, &r), 0);
        }
        CHECK_EQ(r.len, 0);
        free(r.data);
    }
    /* at the high watermark: empty, no error; past it: out of range */
    CHECK_EQ(stratus_partition_read(p, e->next, 1000, 1, &r), 0);
    CHECK_EQ(r.error, KAFKA_ERR_NONE);
    CHECK_EQ(r.len, 0);
    CHECK_EQ(stratus_partition_read(p, e->next + 1, 1000, 1, &r), 0);
    CHECK_EQ(r.error, KAFKA_ERR_OFFSET_OUT_OF_RANGE);
}

static void test_append_flush_cold(void)
{
    struct stratus_stream *s = open_stream();
    struct stratus_partition *ps[3];
    struct stratus_stream_stats st;
    struct stratus_errbuf eb = {{0}};
    char msg[256];
    int before;

    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(stratus_stream_create_topic(s, "events", 3, NULL, 0, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_NONE);
    for (int i = 0; i < 3; i++)
        ps[i] = stratus_stream_partition(s, "events", i);
    pthread_mutex_lock(&g_mu);
    before = g_done;
    pthread_mutex_unlock(&g_mu);
    for (int round = 0; round < 4; round++)
        for (int i = 0; i < 3; i++)
            append_many(ps[i], &g_exp[i], 20 + i, (uint32_t)(round * 100 + i), 1700000000000);
    CHECK(wait_done(before + 4 * (20 + 21 + 22)));
    CHECK_EQ(g_done_err, 0);
    for (int i = 0; i < 3; i++) {
        int64_t ls, hw, le;
        stratus_partition_offsets(ps[i], &ls, &hw, &le);
        CHECK_EQ(ls, 0);
        CHECK_EQ(hw, g_exp[i].next);
        CHECK_EQ(le, g_exp[i].next);
        check_read_all(ps[i], &g_exp[i], 0);
    }

    /* a corrupt batch: refused, nothing stored */
    {
        uint8_t buf[4096];
        size_t len = build_batch(buf, 2, 1, 100, 9);
        struct stratus_append_result r;
        int64_t le0, le1;
        buf[len - 5] ^= 0x40;
        stratus_partition_offsets(ps[0], NULL, NULL, &le0);
        stratus_partition_append(ps[0], buf, len, &r, on_done, NULL);
        CHECK_EQ(r.error, KAFKA_ERR_CORRUPT_MESSAGE);
        stratus_partition_offsets(ps[0], NULL, NULL, &le1);
        CHECK_EQ(le1, le0);
        /* truncated */
        buf[len - 5] ^= 0x40;
        stratus_partition_append(ps[0], buf, len - 3, &r, on_done, NULL);
        CHECK_EQ(r.error, KAFKA_ERR_CORRUPT_MESSAGE);
        /* max.message.bytes */
        struct stratus_kv small[] = {{"max.message.bytes", "100"}};
        CHECK_EQ(stratus_stream_alter_topic_configs(s, "events", small, 1, 1, 0, msg, sizeof msg),
                 KAFKA_ERR_NONE);
        stratus_partition_append(ps[0], buf, len, &r, on_done, NULL);
        CHECK_EQ(r.error, KAFKA_ERR_MESSAGE_TOO_LARGE);
        small[0].value = NULL;
        CHECK_EQ(stratus_stream_alter_topic_configs(s, "events", small, 1, 1, 0, msg, sizeof msg),
                 KAFKA_ERR_NONE);
        stratus_partition_offsets(ps[0], NULL, NULL, &le1);
        CHECK_EQ(le1, le0);
        check_read_all(ps[0], &g_exp[0], 0);
    }

    /* LogAppendTime */
    {
        struct stratus_kv lat[] = {{"message.timestamp.type", "LogAppendTime"}};
        uint8_t buf[4096];
        size_t len = build_batch(buf, 3, 5, 50, 1);
        struct stratus_append_result r;
        struct stratus_partition *p;
        struct stratus_fetch_result fr;
        int64_t t0 = stratus_wall_ms();
        CHECK_EQ(stratus_stream_create_topic(s, "stamped", 1, lat, 1, 0, NULL, msg, sizeof msg),
                 KAFKA_ERR_NONE);
        p = stratus_stream_partition(s, "stamped", 0);
        pthread_mutex_lock(&g_mu);
        before = g_done;
        pthread_mutex_unlock(&g_mu);
        stratus_partition_append(p, buf, len, &r, on_done, NULL);
        CHECK_EQ(r.error, KAFKA_ERR_NONE);
        CHECK(r.log_append_time >= t0);
        CHECK(wait_done(before + 1));
        CHECK_EQ(stratus_partition_read(p, 0, 1 << 20, 1, &fr), 0);
        CHECK_EQ(fr.len, len);
        if (fr.len == len) {
            CHECK((rbe(fr.data + 21, 2) & 0x08) != 0);
            CHECK_EQ((int64_t)rbe(fr.data + 35, 8), r.log_append_time);
            CHECK_EQ(rbe(fr.data + 17, 4), stratus_crc32c(0, fr.data + 21, len - 21));
        }
        free(fr.data);
        stratus_partition_release(p);
        CHECK_EQ(stratus_stream_delete_topic(s, "stamped", msg, sizeof msg), KAFKA_ERR_NONE);
    }

    /* flush: objects in storage, WAL trimmed past every record written before */
    struct stratus_stream_stats st0;
    stratus_stream_get_stats(s, &st0);
    CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    stratus_stream_get_stats(s, &st);
    CHECK(st.wal.trim_lsn >= st0.wal.durable_lsn);
    CHECK(st.objects_uploaded >= 1);
    CHECK_EQ(st.pending_upload_bytes, 0);
    CHECK_EQ(st.upload_failures, 0);
    CHECK(st.wal.trim_lsn > 0);
    CHECK(count_objects(g_dir) >= 1);
    /* still readable from the cache after the upload */
    check_read_all(ps[1], &g_exp[1], 0);
    for (int i = 0; i < 3; i++)
        stratus_partition_release(ps[i]);
    stratus_stream_close(s);

    /* reopen: the log cache is empty, everything comes from objects */
    s = open_stream();
    CHECK(s != NULL);
    if (!s)
        return;
    stratus_stream_get_stats(s, &st);
    CHECK_EQ(st.pending_upload_bytes, 0);
    CHECK_EQ(st.log_cache_bytes, 0);
    for (int i = 0; i < 3; i++) {
        struct stratus_fetch_result r;
        int64_t ls, hw, le;
        ps[i] = stratus_stream_partition(s, "events", i);
        stratus_partition_offsets(ps[i], &ls, &hw, &le);
        CHECK_EQ(hw, g_exp[i].next);
        CHECK_EQ(le, g_exp[i].next);
        CHECK_EQ(stratus_partition_read(ps[i], 0, 1000, 1, &r), STRATUS_EAGAIN);
        check_read_all(ps[i], &g_exp[i], 1);
    }
    stratus_stream_get_stats(s, &st);
    CHECK(st.cold_reads >= 3);
    /* new appends continue at the right offsets, and mix cache + objects */
    pthread_mutex_lock(&g_mu);
    before = g_done;
    pthread_mutex_unlock(&g_mu);
    append_many(ps[2], &g_exp[2], 5, 777, 1700000001000);
    CHECK(wait_done(before + 5));
    check_read_all(ps[2], &g_exp[2], 1); /* cold read crosses into ... only objects */
    {
        struct stratus_fetch_result r;
        int64_t off = g_exp[2].offsets[g_exp[2].nbatches - 5];
        CHECK_EQ(stratus_partition_read(ps[2], off, 1 << 20, 1, &r), 0);
        CHECK_EQ(r.len, g_exp[2].len - g_exp[2].positions[g_exp[2].nbatches - 5]);
        free(r.data);
    }
    for (int i = 0; i < 3; i++)
        stratus_partition_release(ps[i]);
    stratus_stream_close(s);
}

/* A child process appends, waits for its acks, and exits without closing anything. */
static void child_append_and_die(void)
{
    struct stratus_stream *s = open_stream();
    struct stratus_partition *p;
    char msg[256];
    int before;

    if (!s)
        _exit(2);
    stratus_stream_create_topic(s, "doomed", 1, NULL, 0, 0, NULL, msg, sizeof msg);
    p = stratus_stream_partition(s, "events", 0);
    pthread_mutex_lock(&g_mu);
    before = g_done;
    pthread_mutex_unlock(&g_mu);
    append_many(p, &g_exp[0], 30, 4242, 1700000002000);
    {
        struct stratus_partition *d = stratus_stream_partition(s, "doomed", 0);
        struct expect tmp = {0};
        append_many(d, &tmp, 10, 1, 1700000002000);
        free(tmp.buf);
    }
    if (!wait_done(before + 40) || g_done_err)
        _exit(3);
    _exit(test_failed ? 4 : 0);
}

static void test_replay(void)
{
    pid_t pid;
    int status = 0;
    struct stratus_stream *s;
    struct stratus_partition *p;
    struct stratus_stream_stats st;
    struct stratus_errbuf eb = {{0}};
    char msg[256];

    fflush(NULL);
    pid = fork();
    if (pid == 0)
        child_append_and_die();
    CHECK(pid > 0);
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* the child appended to g_exp[0] in its own memory: redo the same in ours */
    {
        struct expect *e = &g_exp[0];
        static uint8_t buf[70000];
        for (int i = 0; i < 30; i++) {
            uint32_t seed = 4242;
            int nrec = 1 + (int)((seed + (uint32_t)i) % 5);
            size_t vlen = 10 + ((seed * 13 + (uint32_t)i * 101) % 900);
            size_t len = build_batch(buf, nrec, 1700000002000 + i, vlen, seed + (uint32_t)i);
            expect_add(e, buf, len, e->next, 2); /* third open of the topic: epoch 2 */
            e->next += nrec;
        }
    }
    s = open_stream();
    CHECK(s != NULL);
    if (!s)
        return;
    stratus_stream_get_stats(s, &st);
    CHECK(st.pending_upload_bytes > 0);
    p = stratus_stream_partition(s, "events", 0);
    {
        int64_t hw, le;
        stratus_partition_offsets(p, NULL, &hw, &le);
        CHECK_EQ(hw, g_exp[0].next);
        CHECK_EQ(le, g_exp[0].next);
    }
    /* the tail is in the cache again (byte for byte), the head in objects */
    {
        struct expect *e = &g_exp[0];
        int first = e->nbatches - 30;
        struct stratus_fetch_result r;
        CHECK_EQ(stratus_partition_read(p, e->offsets[first], 64 << 20, 1, &r), 0);
        CHECK_EQ(r.len, e->len - e->positions[first]);
        CHECK(r.len == e->len - e->positions[first] &&
              memcmp(r.data, e->buf + e->positions[first], r.len) == 0);
        free(r.data);
    }
    check_read_all(p, &g_exp[0], 1);
    {
        struct stratus_topic_info ti;
        CHECK_EQ(stratus_stream_find_topic(s, "doomed", &ti), 0);
    }
    /* delete the replayed topic; its WAL records must be skipped on the next start */
    CHECK_EQ(stratus_stream_delete_topic(s, "doomed", msg, sizeof msg), KAFKA_ERR_NONE);
    stratus_partition_release(p);
    stratus_stream_close(s);

    s = open_stream();
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK(stratus_stream_partition(s, "doomed", 0) == NULL);
    p = stratus_stream_partition(s, "events", 0);
    check_read_all(p, &g_exp[0], 1);
    /* upload the replayed data; after another restart nothing is duplicated */
    stratus_stream_get_stats(s, &st);
    uint64_t durable0 = st.wal.durable_lsn;
    CHECK(st.pending_upload_bytes > 0);
    CHECK(st.wal.trim_lsn < durable0);
    CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    stratus_stream_get_stats(s, &st);
    CHECK_EQ(st.pending_upload_bytes, 0);
    CHECK(st.wal.trim_lsn >= durable0);
    stratus_partition_release(p);
    stratus_stream_close(s);

    s = open_stream();
    CHECK(s != NULL);
    if (!s)
        return;
    stratus_stream_get_stats(s, &st);
    CHECK_EQ(st.pending_upload_bytes, 0);
    p = stratus_stream_partition(s, "events", 0);
    {
        int64_t hw;
        stratus_partition_offsets(p, NULL, &hw, NULL);
        CHECK_EQ(hw, g_exp[0].next);
    }
    check_read_all(p, &g_exp[0], 1);
    stratus_partition_release(p);
    stratus_stream_close(s);
}

static void test_retention_and_time(void)
{
    struct stratus_stream *s = open_stream();
    struct stratus_partition *p;
    struct stratus_errbuf eb = {{0}};
    struct stratus_stream_stats st;
    struct expect e = {0};
    char msg[256];
    int before, hooks0, objs0;
    int64_t now = stratus_wall_ms(), off, ts;

    CHECK(s != NULL);
    if (!s)
        return;
    /* drop the other topics so the objects of this test hold only this topic */
    CHECK_EQ(stratus_stream_delete_topic(s, "events", msg, sizeof msg), KAFKA_ERR_NONE);
    CHECK_EQ(stratus_stream_run_retention(s, &eb), 0);
    stratus_stream_get_stats(s, &st);
    CHECK(st.retention_deleted_objects >= 1);
    objs0 = count_objects(g_dir);
    CHECK_EQ(objs0, 0);

    CHECK_EQ(stratus_stream_create_topic(s, "logs", 1, NULL, 0, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_NONE);
    p = stratus_stream_partition(s, "logs", 0);
    pthread_mutex_lock(&g_mu);
    before = g_done;
    pthread_mutex_unlock(&g_mu);
    /* 10 days old (older than the 7-day default) -> object 1 */
    append_many(p, &e, 10, 1, now - 10 * 86400000ll);
    CHECK(wait_done(before + 10));
    CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    int64_t first_new = e.next;
    /* 2 days old -> object 2; fresh -> object 3 */
    append_many(p, &e, 10, 2, now - 2 * 86400000ll);
    CHECK(wait_done(before + 20));
    CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    int64_t fresh = e.next;
    append_many(p, &e, 10, 3, now);
    CHECK(wait_done(before + 30));
    CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    CHECK_EQ(count_objects(g_dir), 3);

    /* offset_for_time across objects */
    CHECK_EQ(stratus_partition_offset_for_time(p, now - 3 * 86400000ll, &off, &ts, &eb), 0);
    CHECK_EQ(off, first_new);
    CHECK_EQ(ts, now - 2 * 86400000ll); /* the first record of batch 0 of seed 2 */
    CHECK_EQ(stratus_partition_offset_for_time(p, 0, &off, &ts, &eb), 0);
    CHECK_EQ(off, 0);
    CHECK_EQ(stratus_partition_offset_for_time(p, now + 86400000ll, &off, &ts, &eb), 0);
    CHECK_EQ(off, -1);
    CHECK_EQ(stratus_partition_offset_for_time(p, -3, &off, &ts, &eb), 0);
    CHECK_EQ(off, e.next - 1);
    CHECK_EQ(stratus_partition_offset_for_time(p, -2, &off, &ts, &eb), 0);
    CHECK_EQ(off, 0);

    /* retention.ms default (7 days): the first object goes, log start moves */
    pthread_mutex_lock(&g_mu);
    hooks0 = g_hook_calls;
    pthread_mutex_unlock(&g_mu);
    stratus_stream_get_stats(s, &st);
    uint64_t del0 = st.retention_deleted_objects;
    CHECK_EQ(stratus_stream_run_retention(s, &eb), 0);
    {
        int64_t ls, hw;
        stratus_partition_offsets(p, &ls, &hw, NULL);
        CHECK_EQ(ls, first_new);
        CHECK_EQ(hw, e.next);
    }
    pthread_mutex_lock(&g_mu);
    CHECK(g_hook_calls > hooks0);
    pthread_mutex_unlock(&g_mu);
    stratus_stream_get_stats(s, &st);
    CHECK_EQ(st.retention_deleted_objects, del0 + 1);
    CHECK_EQ(count_objects(g_dir), 2);
    {
        struct stratus_fetch_result r;
        CHECK_EQ(stratus_partition_read(p, 0, 1000, 1, &r), 0);
        CHECK_EQ(r.error, KAFKA_ERR_OFFSET_OUT_OF_RANGE);
        CHECK_EQ(r.log_start_offset, first_new);
        read_cold(p, first_new, 64 << 20, 1, &r);
        CHECK_EQ(r.error, KAFKA_ERR_NONE);
        CHECK_EQ(r.len, e.len - e.positions[10]);
        CHECK(r.len == e.len - e.positions[10] && memcmp(r.data, e.buf + e.positions[10], r.len) == 0);
        free(r.data);
    }
    /* a 1-day retention drops the 2-day-old range too */
    {
        struct stratus_kv day[] = {{"retention.ms", "86400000"}};
        int64_t ls;
        CHECK_EQ(stratus_stream_alter_topic_configs(s, "logs", day, 1, 1, 0, msg, sizeof msg),
                 KAFKA_ERR_NONE);
        CHECK_EQ(stratus_stream_run_retention(s, &eb), 0);
        stratus_partition_offsets(p, &ls, NULL, NULL);
        CHECK_EQ(ls, fresh);
        CHECK_EQ(count_objects(g_dir), 1);
    }
    stratus_partition_release(p);
    stratus_stream_close(s);

    /* the log start is persisted */
    s = open_stream();
    CHECK(s != NULL);
    if (!s)
        return;
    p = stratus_stream_partition(s, "logs", 0);
    {
        int64_t ls, hw;
        stratus_partition_offsets(p, &ls, &hw, NULL);
        CHECK_EQ(ls, fresh);
        CHECK_EQ(hw, e.next);
    }
    stratus_partition_release(p);
    CHECK_EQ(stratus_stream_delete_topic(s, "logs", msg, sizeof msg), KAFKA_ERR_NONE);
    CHECK_EQ(stratus_stream_run_retention(s, &eb), 0);
    CHECK_EQ(count_objects(g_dir), 0);
    stratus_stream_close(s);
    free(e.buf);
}

/* The uploader on its own (target bytes, age), log cache eviction, cold reads through the
 * memory cache plugin. */
static void test_budget(void)
{
    struct stratus_stream *s;
    struct stratus_partition *p;
    struct stratus_stream_stats st;
    struct expect e = {0};
    char msg[256];
    int before;
    int64_t deadline;

    g_small = 1;
    s = open_stream();
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(stratus_stream_create_topic(s, "big", 1, NULL, 0, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_NONE);
    p = stratus_stream_partition(s, "big", 0);
    pthread_mutex_lock(&g_mu);
    before = g_done;
    pthread_mutex_unlock(&g_mu);
    for (int i = 0; i < 8; i++)
        append_many(p, &e, 100, (uint32_t)i * 1000, stratus_wall_ms());
    CHECK(wait_done(before + 800));
    deadline = stratus_mono_ms() + 20000;
    do {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
        stratus_stream_get_stats(s, &st);
    } while (st.pending_upload_bytes && stratus_mono_ms() < deadline);
    CHECK_EQ(st.pending_upload_bytes, 0);
    CHECK(st.objects_uploaded >= 2);
    CHECK(st.log_cache_evictions > 0);
    CHECK(st.log_cache_bytes <= (256 << 10));
    CHECK(e.len > (1u << 20));
    {
        struct stratus_fetch_result r;
        struct stratus_cache_stats cs = {.size = sizeof cs};
        CHECK_EQ(stratus_partition_read(p, 0, 1 << 20, 1, &r), STRATUS_EAGAIN);
        for (int pass = 0; pass < 2; pass++) { /* the second pass hits the block cache */
            read_cold(p, 0, 64 << 20, 1, &r);
            CHECK_EQ(r.error, KAFKA_ERR_NONE);
            CHECK_EQ(r.len, e.len);
            CHECK(r.len == e.len && memcmp(r.data, e.buf, e.len) == 0);
            free(r.data);
        }
        stratus_cache_get_stats(g_cache, &cs);
        CHECK(cs.hits > 0);
    }
    stratus_partition_release(p);
    CHECK_EQ(stratus_stream_delete_topic(s, "big", msg, sizeof msg), KAFKA_ERR_NONE);
    stratus_stream_close(s);
    free(e.buf);
    g_small = 0;
}

int main(void)
{
    struct stratus_conf *conf;
    struct stratus_errbuf eb = {{0}};
    const char *pdir = getenv("STRATUS_PLUGIN_DIR");
    char buf[512];

    snprintf(g_dir, sizeof g_dir, "/tmp/stratus-test-stream-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    conf = stratus_conf_new();
    CHECK_EQ(stratus_conf_set(conf, "storage.plugin=local", &eb), 0);
    snprintf(buf, sizeof buf, "storage.path=%s/objects", g_dir);
    CHECK_EQ(stratus_conf_set(conf, buf, &eb), 0);
    if (stratus_storage_open(conf, "storage", pdir ? pdir : "plugins", &g_st, &eb) != 0) {
        fprintf(stderr, "storage open: %s\n", eb.msg);
        CHECK(0);
        TEST_REPORT();
    }
    CHECK_EQ(stratus_conf_set(conf, "cache.plugin=memory", &eb), 0);
    CHECK_EQ(stratus_conf_set(conf, "cache.capacity=64MiB", &eb), 0);
    if (stratus_cache_open(conf, "cache", pdir ? pdir : "plugins", &g_cache, &eb) != 0) {
        fprintf(stderr, "cache open: %s\n", eb.msg);
        CHECK(0);
        TEST_REPORT();
    }
    test_catalog();
    test_append_flush_cold();
    test_replay();
    test_budget();
    test_retention_and_time();
    stratus_cache_close(g_cache);
    stratus_storage_close(g_st);
    stratus_conf_free(conf);
    snprintf(buf, sizeof buf, "rm -rf %s", g_dir);
    if (test_failed == 0 && system(buf) != 0)
        fprintf(stderr, "cleanup failed\n");
    TEST_REPORT();
}
