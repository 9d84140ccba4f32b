/* link: stratus_stream */
/* test_timeidx.c - the time index ('X' entries, core/index/index.c) behind ListOffsets by
 * timestamp. A partition gets batches whose timestamps go up and down (with a far-future spike
 * early on), uploaded as many small objects; stratus_partition_offset_for_time is compared with
 * a brute-force scan of the batches for every record timestamp (and its neighbours), -3, and
 * targets outside the data: with the log cache, after a restart (objects only), after more
 * uploads, after size retention drops the ranges holding the spike (so the index must be
 * rebuilt for the remaining ranges), after a DeleteRecords inside a range, and again after a
 * restart. After each step the index invariant is checked directly: a stream's 'X' entries are
 * exactly the rises of the running maximum of its ranges' max timestamps. A deleted topic loses
 * its entries. Then a standalone index with 100k ranges: the entries are built by the upgrade
 * at open (an index written without them), and lookups (one 'X' seek plus one 'R' seek) are
 * compared with brute force and timed (printed, not asserted).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "index/index.h"
#include "proto/kerr.h"
#include "stream/stream.h"
#include "stream/stream_int.h"
#include "stream_fixture.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define T     1700000000000LL
#define SPIKE (T + 10000000000LL)

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static int64_t rnd_range(int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* ---- the model: every record and batch appended ---- */

struct mrec {
    int64_t off, ts;
};
struct mbatch {
    int64_t base, last, max_ts;
};
#define MAXREC   8192
#define MAXBATCH 4096
static struct mrec g_recs[MAXREC];
static struct mbatch g_batches[MAXBATCH];
static size_t g_nrecs, g_nbatches;

/* Kafka's rule as the engine implements it (stream.h): the first batch (last offset at or after
 * the log start) whose header max timestamp >= target holding a record at or after the log
 * start with timestamp >= target; for -3 the first batch with the largest max timestamp, then
 * its first record (at or after the log start) with the largest timestamp. */
static void brute(int64_t target, int64_t log_start, int64_t *off, int64_t *ts)
{
    size_t r = 0;

    *off = -1;
    *ts = -1;
    if (target == -3) {
        const struct mbatch *best = NULL;
        for (size_t i = 0; i < g_nbatches; i++)
            if (g_batches[i].last >= log_start && (!best || g_batches[i].max_ts > best->max_ts))
                best = &g_batches[i];
        if (!best)
            return;
        for (size_t i = 0; i < g_nrecs; i++) {
            const struct mrec *m = &g_recs[i];
            if (m->off < best->base || m->off > best->last || m->off < log_start)
                continue;
            if (*off < 0 || m->ts > *ts) {
                *off = m->off;
                *ts = m->ts;
            }
        }
        return;
    }
    for (size_t i = 0; i < g_nbatches; i++) {
        const struct mbatch *b = &g_batches[i];
        while (r < g_nrecs && g_recs[r].off < b->base)
            r++;
        if (b->last < log_start || b->max_ts < target)
            continue;
        for (size_t j = r; j < g_nrecs && g_recs[j].off <= b->last; j++)
            if (g_recs[j].off >= log_start && g_recs[j].ts >= target) {
                *off = g_recs[j].off;
                *ts = g_recs[j].ts;
                return;
            }
    }
}

/* ---- record batches ---- */

/* An uncompressed v2 batch of n records with timestamps ts[]; maxTimestamp their maximum. */
static size_t build_batch(uint8_t *out, int n, const int64_t *ts)
{
    size_t pos = FX_BATCH_HEADER;
    int64_t maxts = ts[0];

    for (int i = 0; i < n; i++) {
        uint8_t value[2] = {'v', (uint8_t)('0' + i)};
        pos += fx_record_put(out + pos, ts[i] - ts[0], i, value, sizeof value);
        if (ts[i] > maxts)
            maxts = ts[i];
    }
    struct fx_batch h = fx_batch_plain(n, ts[0], maxts);
    return fx_batch_seal(out, pos, &h);
}

/* ---- appends ---- */

static int g_sent; /* appends made; fx_acks counts their completions */

static void wait_all(void)
{
    fx_acks_wait(g_sent, 30000);
    CHECK_EQ(fx_acks_done(), g_sent);
    CHECK_EQ(fx_acks_errors(), 0);
}

/* Appends one batch of 1..4 records around trend (one record may be the spike) and records it
 * in the model. */
static void append_one(struct stratus_partition *p, int64_t trend, int spike)
{
    struct stratus_append_result r;
    uint8_t buf[1024];
    int64_t ts[4], maxts;
    int n = (int)rnd_range(1, 4);
    size_t len;

    for (int i = 0; i < n; i++) {
        ts[i] = trend + rnd_range(-40000, 40000);
        if (rnd() % 61 == 0)
            ts[i] = T - 5000000 + rnd_range(0, 1000); /* far in the past */
    }
    if (spike)
        ts[n / 2] = SPIKE;
    len = build_batch(buf, n, ts);
    g_sent++;
    stratus_partition_append(p, buf, len, &r, fx_on_done, NULL);
    CHECK_EQ(r.error, KAFKA_ERR_NONE);
    if (r.error != KAFKA_ERR_NONE || g_nbatches == MAXBATCH || g_nrecs + 4 > MAXREC) {
        fprintf(stderr, "append: %s\n", r.msg);
        exit(1);
    }
    maxts = ts[0];
    for (int i = 0; i < n; i++) {
        g_recs[g_nrecs].off = r.base_offset + i;
        g_recs[g_nrecs].ts = ts[i];
        g_nrecs++;
        if (ts[i] > maxts)
            maxts = ts[i];
    }
    g_batches[g_nbatches].base = r.base_offset;
    g_batches[g_nbatches].last = r.base_offset + n - 1;
    g_batches[g_nbatches].max_ts = maxts;
    g_nbatches++;
}

/* nbatches batches, uploaded as objects of 1..maxper batches each (one range per object).
 * The trend rises 1000 ms a batch; records wander +-40 s around it. */
static void append_uploaded(
    struct stratus_stream *s, struct stratus_partition *p, int nbatches, int maxper, int spike_at)
{
    struct stratus_errbuf eb = {{0}};
    int i = 0;

    while (i < nbatches) {
        int per = (int)rnd_range(1, maxper);
        for (int j = 0; j < per && i < nbatches; j++, i++)
            append_one(p, T + 1000 * (int64_t)g_nbatches, i == spike_at);
        wait_all();
        CHECK_EQ(stratus_stream_flush(s, &eb), 0);
    }
}

/* ---- checks ---- */

/* The invariant of index.c: the stream's 'X' entries are the rises of the running maximum of
 * its ranges' max timestamps, in offset order. Returns the number of entries. */
static size_t check_invariant(struct stratus_index *idx, uint64_t sid, const char *what)
{
    struct stratus_index_iter *it = stratus_index_iter_new(idx);
    struct stratus_index_time *want = NULL;
    struct stratus_index_time_run run = {0};
    struct stratus_errbuf eb = {{0}};
    uint8_t key[STRATUS_IDX_KEY_MAX];
    size_t klen = stratus_index_key_range(key, sid, INT64_MIN), nwant = 0, cap = 0, got = 0;
    int bad = 0;

    for (stratus_index_iter_seek(it, key, klen); stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        struct stratus_index_range r;
        CHECK_EQ(stratus_index_range_decode(k, kl, v, vl, &r), 0);
        if (stratus_index_time_step(NULL, &run, &r)) {
            if (nwant == cap) {
                cap = cap ? cap * 2 : 64;
                want = realloc(want, cap * sizeof *want);
            }
            want[nwant++] =
                (struct stratus_index_time){sid, r.max_timestamp, r.base_offset, r.last_offset};
        }
    }
    klen = stratus_index_key_time(key, sid, INT64_MIN);
    for (stratus_index_iter_seek(it, key, klen); stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        struct stratus_index_time t;
        CHECK_EQ(stratus_index_time_decode(k, kl, v, vl, &t), 0);
        if (got >= nwant || t.timestamp != want[got].timestamp ||
            t.base_offset != want[got].base_offset || t.last_offset != want[got].last_offset)
            bad++;
        got++;
    }
    CHECK_EQ(stratus_index_iter_status(it, &eb), 0);
    stratus_index_iter_free(it);
    CHECK_EQ(got, nwant);
    CHECK_EQ(bad, 0);
    if (got != nwant || bad)
        fprintf(stderr, "%s: time index of stream %llu: %zu entries, %zu expected, %d wrong\n",
                what, (unsigned long long)sid, got, nwant, bad);
    free(want);
    return got;
}

static int64_t g_lookups;

static void
expect(struct stratus_partition *p, int64_t target, int64_t log_start, const char *what, int *fails)
{
    struct stratus_errbuf eb = {{0}};
    int64_t off = -7, ts = -7, woff, wts;
    int rc = stratus_partition_offset_for_time(p, target, &off, &ts, &eb);

    brute(target, log_start, &woff, &wts);
    g_lookups++;
    if (rc != 0 || off != woff || ts != wts) {
        if (++*fails <= 10)
            fprintf(stderr, "%s: target %lld: got (%lld, %lld) rc %d, want (%lld, %lld) %s\n", what,
                    (long long)target, (long long)off, (long long)ts, rc, (long long)woff,
                    (long long)wts, rc ? eb.msg : "");
    }
}

/* Every record timestamp and its neighbours, -3, and targets outside the data. */
static void check_all(struct stratus_stream *s, struct stratus_partition *p, const char *what)
{
    int64_t log_start, hw;
    int fails = 0;

    stratus_partition_offsets(p, &log_start, &hw, NULL);
    CHECK_EQ(hw, g_nrecs ? g_recs[g_nrecs - 1].off + 1 : 0);
    for (size_t i = 0; i < g_nrecs; i++) {
        expect(p, g_recs[i].ts, log_start, what, &fails);
        if (i % 4 == 0) {
            expect(p, g_recs[i].ts - 1, log_start, what, &fails);
            expect(p, g_recs[i].ts + 1, log_start, what, &fails);
        }
    }
    expect(p, -3, log_start, what, &fails);
    expect(p, 0, log_start, what, &fails);
    expect(p, T - 10000000, log_start, what, &fails);
    expect(p, SPIKE, log_start, what, &fails);
    expect(p, SPIKE + 1, log_start, what, &fails);
    expect(p, INT64_MAX, log_start, what, &fails);
    CHECK_EQ(fails, 0);
    check_invariant(s->idx, p->stream_id, what);
}

/* ---- index entries ---- */

static int count_prefix(struct stratus_index *idx, uint8_t kind, uint64_t sid)
{
    struct stratus_index_iter *it = stratus_index_iter_new(idx);
    uint8_t key[9];
    int n = 0;

    key[0] = kind;
    stratus_be64_put(key + 1, sid);
    for (stratus_index_iter_seek(it, key, 9); stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it))
        n++;
    stratus_index_iter_free(it);
    return n;
}

static void test_partition(void)
{
    struct stratus_stream *s = fx_stream_open_defaults();
    struct stratus_partition *p;
    struct stratus_errbuf eb = {{0}};
    struct stratus_kv cfg[] = {{"retention.ms", "-1"}};
    char msg[256], val[32];
    int64_t log_start, hw, spike_last = -1;
    uint64_t sid;
    size_t before;

    CHECK(s != NULL);
    if (!s)
        return;
    CHECK_EQ(stratus_stream_create_topic(s, "tx", 1, cfg, 1, 0, NULL, msg, sizeof msg),
             KAFKA_ERR_NONE);
    p = stratus_stream_partition(s, "tx", 0);
    CHECK(p != NULL);
    if (!p)
        return;
    sid = p->stream_id;
    /* 360 batches in objects of 1..6 batches, the spike in batch 5 */
    append_uploaded(s, p, 360, 6, 5);
    spike_last = g_batches[5].last;
    check_all(s, p, "log cache + objects");
    stratus_partition_release(p);
    stratus_stream_close(s);

    /* restart: the log cache is empty, answers come from objects through the index */
    s = fx_stream_open_defaults();
    CHECK(s != NULL);
    if (!s)
        return;
    p = stratus_stream_partition(s, "tx", 0);
    CHECK(p != NULL);
    if (!p)
        return;
    {
        struct stratus_stream_stats st;
        stratus_stream_get_stats(s, &st);
        CHECK_EQ(st.log_cache_bytes, 0);
    }
    check_all(s, p, "objects after restart");

    /* more uploads continue the persisted running maximum (the spike still dominates, so the
     * new ranges make no entries) */
    before = check_invariant(s->idx, sid, "before more");
    append_uploaded(s, p, 120, 5, -1);
    CHECK_EQ(check_invariant(s->idx, sid, "after more"), before);
    check_all(s, p, "after more uploads");

    /* size retention drops about half the ranges, the spike's among them: the remaining
     * ranges need new entries */
    {
        struct stratus_kv rb[] = {{"retention.bytes", val}};
        uint64_t total = 0;
        int n = 0;
        uint8_t key[STRATUS_IDX_KEY_MAX];
        size_t klen = stratus_index_key_range(key, sid, INT64_MIN);
        struct stratus_index_iter *it = stratus_index_iter_new(s->idx);
        for (stratus_index_iter_seek(it, key, klen); stratus_index_iter_has_prefix(it, key, 9);
             stratus_index_iter_next(it)) {
            size_t kl, vl;
            const uint8_t *k = stratus_index_iter_key(it, &kl),
                          *v = stratus_index_iter_value(it, &vl);
            struct stratus_index_range r;
            if (stratus_index_range_decode(k, kl, v, vl, &r) == 0) {
                total += r.length;
                n++;
            }
        }
        stratus_index_iter_free(it);
        CHECK(n > 100);
        snprintf(val, sizeof val, "%llu", (unsigned long long)(total / 2));
        CHECK_EQ(stratus_stream_alter_topic_configs(s, "tx", rb, 1, 1, 0, msg, sizeof msg),
                 KAFKA_ERR_NONE);
    }
    CHECK_EQ(check_invariant(s->idx, sid, "before retention"), before);
    CHECK_EQ(stratus_stream_run_retention(s, &eb), 0);
    stratus_partition_offsets(p, &log_start, &hw, NULL);
    CHECK(log_start > spike_last);
    CHECK(log_start < hw);
    CHECK(check_invariant(s->idx, sid, "after retention") > before); /* rebuilt entries */
    check_all(s, p, "after size retention");
    {
        struct stratus_kv rb[] = {{"retention.bytes", NULL}};
        CHECK_EQ(stratus_stream_alter_topic_configs(s, "tx", rb, 1, 1, 0, msg, sizeof msg),
                 KAFKA_ERR_NONE);
    }

    /* a new spike, then DeleteRecords inside a range past it: ranges wholly below go */
    append_uploaded(s, p, 30, 4, 10);
    {
        int64_t mid = g_batches[g_nbatches - 10].base + 1; /* inside a batch after the spike */
        CHECK_EQ(stratus_retention_set_log_start(s, p, mid, &eb), 0);
        stratus_partition_offsets(p, &log_start, &hw, NULL);
        CHECK_EQ(log_start, mid);
    }
    check_all(s, p, "after delete records");
    append_uploaded(s, p, 40, 4, -1);
    check_all(s, p, "after delete records + more");
    /* DeleteRecords right after a spike batch that shares its range with three more: the
     * range straddles the log start, its entry points below it (lookups scan from the log
     * start there) */
    {
        size_t sb = g_nbatches;
        append_one(p, T + 1000 * (int64_t)g_nbatches, 1);
        for (int i = 0; i < 3; i++)
            append_one(p, T + 1000 * (int64_t)g_nbatches, 0);
        wait_all();
        CHECK_EQ(stratus_stream_flush(s, &eb), 0);
        append_uploaded(s, p, 20, 3, -1);
        check_all(s, p, "spike range");
        CHECK_EQ(stratus_retention_set_log_start(s, p, g_batches[sb].last + 1, &eb), 0);
        check_all(s, p, "log start inside the spike range");
        append_uploaded(s, p, 20, 3, -1);
        check_all(s, p, "log start inside the spike range + more");
    }
    stratus_partition_release(p);
    stratus_stream_close(s);

    s = fx_stream_open_defaults();
    CHECK(s != NULL);
    if (!s)
        return;
    p = stratus_stream_partition(s, "tx", 0);
    CHECK(p != NULL);
    if (!p)
        return;
    check_all(s, p, "restart after retention");
    stratus_partition_release(p);
    printf("partition: %lld lookups compared with brute force, %zu batches\n", (long long)g_lookups,
           g_nbatches);

    /* a deleted topic's entries go with its ranges */
    CHECK(count_prefix(s->idx, STRATUS_IDX_TIME, sid) > 0);
    CHECK_EQ(stratus_stream_delete_topic(s, "tx", msg, sizeof msg), KAFKA_ERR_NONE);
    CHECK_EQ(stratus_stream_run_retention(s, &eb), 0);
    CHECK_EQ(count_prefix(s->idx, STRATUS_IDX_RANGE, sid), 0);
    CHECK_EQ(count_prefix(s->idx, STRATUS_IDX_TIME, sid), 0);
    stratus_stream_close(s);
}

/* ---- 100k ranges in a standalone index ---- */

#define NR 100000

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* What coldread.c does first: the 'X' seek, then the 'R' seek to the range it names. Returns
 * the range's base offset, or -1. */
static int64_t index_lookup(struct stratus_index *idx, uint64_t sid, int64_t target)
{
    struct stratus_index_iter *it = stratus_index_iter_new(idx);
    struct stratus_index_time te;
    struct stratus_index_range r;
    struct stratus_errbuf eb = {{0}};
    uint8_t key[STRATUS_IDX_KEY_MAX];
    size_t klen;
    int64_t got = -1;
    int rc = target == -3 ? stratus_index_time_last(it, sid, &te, &eb)
                          : stratus_index_time_seek(it, sid, target, &te, &eb);

    if (rc == 0) {
        klen = stratus_index_key_range(key, sid, te.base_offset);
        stratus_index_iter_seek(it, key, klen);
        if (stratus_index_iter_has_prefix(it, key, 9)) {
            size_t kl, vl;
            const uint8_t *k = stratus_index_iter_key(it, &kl),
                          *v = stratus_index_iter_value(it, &vl);
            if (stratus_index_range_decode(k, kl, v, vl, &r) == 0 &&
                r.max_timestamp == te.timestamp)
                got = r.base_offset;
        }
    } else {
        CHECK_EQ(rc, STRATUS_ENOTFOUND);
    }
    stratus_index_iter_free(it);
    return got;
}

/* The old way: every range from the start. */
static int64_t linear_lookup(struct stratus_index *idx, uint64_t sid, int64_t target)
{
    struct stratus_index_iter *it = stratus_index_iter_new(idx);
    uint8_t key[STRATUS_IDX_KEY_MAX];
    size_t klen = stratus_index_key_range(key, sid, INT64_MIN);
    int64_t got = -1;

    for (stratus_index_iter_seek(it, key, klen); stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *v = stratus_index_iter_value(it, &vl);
        struct stratus_index_range r;
        if (stratus_index_range_decode(k, kl, v, vl, &r) == 0 && r.max_timestamp >= target) {
            got = r.base_offset;
            break;
        }
    }
    stratus_index_iter_free(it);
    return got;
}

static struct stratus_index *open_idx(const char *path)
{
    struct stratus_index_conf c = {.path = path};
    struct stratus_index *idx = NULL;
    struct stratus_errbuf eb = {{0}};
    if (stratus_index_open(&c, &idx, &eb) != 0)
        fprintf(stderr, "index open: %s\n", eb.msg);
    return idx;
}

static void test_scale(void)
{
    char path[300];
    struct stratus_index *idx;
    struct stratus_index_batch *b;
    struct stratus_errbuf eb = {{0}};
    int64_t *maxts = malloc(NR * sizeof *maxts), lo = INT64_MAX, hi = INT64_MIN;
    uint8_t key[STRATUS_IDX_KEY_MAX], mkey[16];
    const uint64_t sid = 7;
    size_t klen, entries;
    double t0, t1, t2;
    int bad = 0, nt = 2000;

    snprintf(path, sizeof path, "%s/scale-index", fx_env.dir);
    idx = open_idx(path);
    CHECK(idx != NULL);
    if (!idx || !maxts)
        return;
    /* ranges of 10 offsets; max timestamps wander +-5 min around a trend of 1 s a range, with
     * rare spikes and dips; neighbouring streams 6 and 8 must not leak in */
    b = stratus_index_batch_new();
    for (int i = 0; i < NR; i++) {
        struct stratus_index_range r = {.stream_id = sid,
                                        .base_offset = 10ll * i,
                                        .last_offset = 10ll * i + 9,
                                        .object_id = 1 + i / 100,
                                        .position = 0,
                                        .length = 1000,
                                        .batches = 2};
        uint8_t v[STRATUS_IDX_RANGE_VALUE_SIZE];
        r.max_timestamp = T + 1000ll * i + rnd_range(-300000, 300000);
        if (rnd() % 5000 == 0)
            r.max_timestamp += 50000000;
        if (rnd() % 3000 == 0)
            r.max_timestamp = T - 100000000;
        maxts[i] = r.max_timestamp;
        if (r.max_timestamp < lo)
            lo = r.max_timestamp;
        if (r.max_timestamp > hi)
            hi = r.max_timestamp;
        stratus_index_range_encode(&r, v);
        klen = stratus_index_key_range(key, sid, r.last_offset);
        stratus_index_batch_put(b, key, klen, v, sizeof v);
        if (i < 50) {
            r.stream_id = sid - 1 + 2 * (i % 2);
            r.max_timestamp = INT64_MAX - 1; /* would win every lookup of stream 7 */
            stratus_index_range_encode(&r, v);
            klen = stratus_index_key_range(key, r.stream_id, r.last_offset);
            stratus_index_batch_put(b, key, klen, v, sizeof v);
        }
    }
    /* an index from before the time index: no 'M' "timeidx" */
    mkey[0] = STRATUS_IDX_META;
    memcpy(mkey + 1, "timeidx", 7);
    stratus_index_batch_delete(b, mkey, 8);
    CHECK_EQ(stratus_index_batch_write(idx, b, 1, &eb), 0);
    stratus_index_batch_free(b);
    CHECK_EQ(count_prefix(idx, STRATUS_IDX_TIME, sid), 0);
    stratus_index_close(idx);

    t0 = now_us();
    idx = open_idx(path); /* builds the entries */
    t1 = now_us();
    CHECK(idx != NULL);
    if (!idx)
        return;
    entries = check_invariant(idx, sid, "scale, upgraded");
    CHECK(entries > 100);
    check_invariant(idx, sid - 1, "scale, stream 6");
    check_invariant(idx, sid + 1, "scale, stream 8");
    printf("scale: %d ranges, %zu time entries built at open in %.1f ms\n", NR, entries,
           (t1 - t0) / 1e3);

    /* lookups against brute force */
    {
        int64_t *targets = malloc((size_t)nt * sizeof *targets), *want = malloc((size_t)nt * 8);
        int64_t *got = malloc((size_t)nt * 8);
        if (!targets || !want || !got)
            return;
        for (int i = 0; i < nt; i++) {
            int64_t tgt;
            switch (i % 4) {
            case 0:
                tgt = maxts[rnd() % NR];
                break;
            case 1:
                tgt = maxts[rnd() % NR] + 1;
                break;
            case 2:
                tgt = rnd_range(lo - 10, hi + 10);
                break;
            default:
                tgt = T + 1000ll * (int64_t)(rnd() % NR);
                break;
            }
            if (i == 0)
                tgt = -3;
            targets[i] = tgt;
        }
        for (int i = 0; i < nt; i++) {
            int64_t w = -1;
            if (targets[i] == -3) {
                int best = 0;
                for (int j = 1; j < NR; j++)
                    if (maxts[j] > maxts[best])
                        best = j;
                w = 10ll * best;
            } else {
                for (int j = 0; j < NR; j++)
                    if (maxts[j] >= targets[i]) {
                        w = 10ll * j;
                        break;
                    }
            }
            want[i] = w;
        }
        t1 = now_us();
        for (int i = 0; i < nt; i++)
            got[i] = index_lookup(idx, sid, targets[i]);
        t2 = now_us();
        for (int i = 0; i < nt; i++)
            if (got[i] != want[i] && ++bad <= 5)
                fprintf(stderr, "scale: target %lld: got %lld want %lld\n", (long long)targets[i],
                        (long long)got[i], (long long)want[i]);
        CHECK_EQ(bad, 0);
        printf("scale: %d lookups over %d ranges: %.2f us each (time index seek + range seek)\n",
               nt, NR, (t2 - t1) / nt);
        t1 = now_us();
        for (int i = 1; i <= 20; i++) /* targets[0] is -3 */
            CHECK_EQ(linear_lookup(idx, sid, targets[i]), want[i]);
        t2 = now_us();
        printf("scale: the linear scan it replaces: %.1f us each\n", (t2 - t1) / 20);
        free(targets);
        free(want);
        free(got);
    }
    stratus_index_close(idx);
    /* a second open does not rebuild (the marker is there) and finds the same entries */
    idx = open_idx(path);
    CHECK(idx != NULL);
    if (idx) {
        CHECK_EQ(check_invariant(idx, sid, "scale, reopened"), entries);
        stratus_index_close(idx);
    }
    free(maxts);
}

int main(void)
{
    if (fx_env_open("timeidx") != 0)
        TEST_REPORT();
    test_partition();
    test_scale();
    fx_env_close();
    TEST_REPORT();
}
