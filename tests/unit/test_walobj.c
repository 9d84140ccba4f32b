/* link: stratus_stream stratus_plugin stratus_conf stratus_metrics stratus_util */
/* test_walobj.c - the object WAL (wal.h, walobj.c) on storage-local in a temp dir: appends from
 * several threads complete in LSN order and become objects; many small appends share few PUTs;
 * object_max_bytes cuts a batch before the interval; close writes what is queued; replay after
 * reopen returns exactly the records not trimmed, byte-identical, and new LSNs continue; trim
 * deletes whole objects only; read_objects/delete_objects of another prefix (a deeper prefix is
 * not included); the ack fence (deadline past before the PUT, and passed during it) completes
 * with STRATUS_EAGAIN and later appends succeed; a failed PUT fails its records but not the WAL;
 * a corrupted byte fails read_objects and replay naming the key. Prints the append->completion
 * latency p50/p99 with a 100 ms interval.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "plugin/plugin.h"
#include "stream/wal.h"
#include "test.h"
#include "util/clock.h"
#include "util/log.h"
#include "wal_records.h"

static struct stratus_storage *g_st;
static char g_dir[256];

/* ---- records (wal_records.h), each of a size derived from its id -------------------------- */

static uint32_t rec_size(uint32_t id)
{
    return 8 + (id * 2654435761u >> 8) % 600;
}

static size_t rec_make(unsigned char *buf, uint32_t id)
{
    return wr_rec_make(buf, id, rec_size(id));
}

static int rec_ok(const unsigned char *buf, size_t len, uint32_t *id)
{
    return wr_rec_ok(buf, len, id) && len == rec_size(*id);
}

/* ---- completions --------------------------------------------------------------------------- */

#define MAXREC 20000

struct comp {
    uint64_t lsn;       /* from append */
    uint64_t done_lsn;  /* from the completion */
    int err, done;
    int64_t t_append_us, t_done_us;
};

static struct comp g_c[MAXREC];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_order[MAXREC]; /* LSNs in completion order */
static size_t g_norder;

static void reset_comps(void)
{
    pthread_mutex_lock(&g_mu);
    memset(g_c, 0, sizeof g_c);
    g_norder = 0;
    pthread_mutex_unlock(&g_mu);
}

static void on_done(void *arg, int err, uint64_t lsn)
{
    struct comp *c = arg;
    pthread_mutex_lock(&g_mu);
    c->err = err;
    c->done_lsn = lsn;
    c->t_done_us = stratus_mono_us();
    c->done++;
    if (g_norder < MAXREC)
        g_order[g_norder++] = lsn;
    pthread_mutex_unlock(&g_mu);
}

/* Waits until records [from, to) completed; 1 when they did within timeout_ms. */
static int wait_done(uint32_t from, uint32_t to, int timeout_ms)
{
    int64_t end = stratus_mono_ms() + timeout_ms;
    for (;;) {
        int all = 1;
        pthread_mutex_lock(&g_mu);
        for (uint32_t i = from; i < to && all; i++)
            all = g_c[i].done > 0;
        pthread_mutex_unlock(&g_mu);
        if (all)
            return 1;
        if (stratus_mono_ms() > end)
            return 0;
        usleep(1000);
    }
}

static int append_id(struct stratus_wal *wal, uint32_t id)
{
    unsigned char buf[700];
    size_t len = rec_make(buf, id);
    struct iovec iov[2] = {{buf, 5}, {buf + 5, len - 5}};
    g_c[id].t_append_us = stratus_mono_us();
    return stratus_wal_append(wal, iov, 2, on_done, &g_c[id], &g_c[id].lsn);
}

/* ---- storage helpers --------------------------------------------------------------------- */

struct keys {
    char k[256][128];
    int n;
};

static int keys_cb(void *arg, const struct stratus_object_info *info)
{
    struct keys *ks = arg;
    if (ks->n < 256)
        snprintf(ks->k[ks->n++], sizeof ks->k[0], "%s", info->key);
    return 0;
}

static int list_keys(const char *prefix, struct keys *ks)
{
    struct stratus_errbuf eb = {{0}};
    ks->n = 0;
    return stratus_storage_list(g_st, prefix, NULL, keys_cb, ks, &eb);
}

static uint64_t key_lsn(const char *key)
{
    const char *s = strrchr(key, '/');
    return strtoull(s ? s + 1 : key, NULL, 10);
}

static struct stratus_wal *wal_open(const char *prefix, uint32_t interval_ms, uint64_t max_bytes,
                                    int64_t (*deadline)(void *))
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_wal_conf wc = {.object_storage = g_st,
                                  .object_prefix = prefix,
                                  .object_interval_ms = interval_ms,
                                  .object_max_bytes = max_bytes,
                                  .ack_deadline = deadline};
    struct stratus_wal *wal = NULL;
    int rc = stratus_wal_open(&wc, &wal, &eb);
    CHECK_EQ(rc, 0);
    if (rc != 0)
        fprintf(stderr, "wal open: %s\n", eb.msg);
    return wal;
}

/* ---- replay collection ---------------------------------------------------------------------- */

struct seen {
    uint32_t ids[MAXREC];
    uint64_t lsns[MAXREC];
    size_t n;
    int bad;
    uint64_t last;
};

static int seen_cb(void *arg, uint64_t lsn, const void *rec, size_t len)
{
    struct seen *s = arg;
    uint32_t id;
    if (!rec_ok(rec, len, &id) || id >= MAXREC || (s->n && lsn <= s->last) || s->n >= MAXREC) {
        s->bad++;
        return 0;
    }
    s->ids[s->n] = id;
    s->lsns[s->n++] = lsn;
    s->last = lsn;
    return 0;
}

/* ---- 1. order, batching, replay, trim -------------------------------------------------------- */

#define NTHREADS 4
#define PER_THREAD 500

struct worker {
    struct stratus_wal *wal;
    uint32_t base;
    int fails;
};

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    for (uint32_t i = 0; i < PER_THREAD; i++) {
        if (append_id(wk->wal, wk->base + i) != 0)
            wk->fails++;
        if (i % 100 == 99)
            usleep(100 * 1000); /* spread over a few intervals */
    }
    return NULL;
}

static void test_order_batching_replay_trim(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_wal_stats ws;
    struct stratus_storage_opstats ops0[STRATUS_SOP__COUNT], ops1[STRATUS_SOP__COUNT];
    struct keys ks;
    static struct seen seen;
    const uint32_t n = NTHREADS * PER_THREAD;
    const char *prefix = "wal/1/1/";

    reset_comps();
    struct stratus_wal *wal = wal_open(prefix, 100, 0, NULL);
    if (!wal)
        return;
    CHECK_EQ(stratus_wal_replay(wal, seen_cb, &seen, &eb), 0); /* empty prefix */
    CHECK_EQ(seen.n, 0);
    CHECK_EQ(stratus_wal_start(wal, &eb), 0);
    stratus_storage_stats(g_st, ops0);

    pthread_t th[NTHREADS];
    struct worker wk[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        wk[t] = (struct worker){wal, (uint32_t)t * PER_THREAD, 0};
        pthread_create(&th[t], NULL, worker_main, &wk[t]);
    }
    for (int t = 0; t < NTHREADS; t++) {
        pthread_join(th[t], NULL);
        CHECK_EQ(wk[t].fails, 0);
    }
    CHECK(wait_done(0, n, 10000));
    /* completions: each once, no error, with the LSN append returned, in LSN order */
    int errs = 0, mism = 0, order_ok = 1;
    for (uint32_t i = 0; i < n; i++) {
        errs += g_c[i].err != 0 || g_c[i].done != 1;
        mism += g_c[i].done_lsn != g_c[i].lsn;
    }
    CHECK_EQ(errs, 0);
    CHECK_EQ(mism, 0);
    CHECK_EQ(g_norder, n);
    for (size_t i = 1; i < g_norder; i++)
        order_ok &= g_order[i] > g_order[i - 1];
    CHECK(order_ok);

    /* batching: few PUTs, each one object */
    stratus_wal_get_stats(wal, &ws);
    stratus_storage_stats(g_st, ops1);
    printf("batching: %llu appends -> %llu PUTs (%llu bytes)\n", (unsigned long long)ws.appends,
           (unsigned long long)ws.writes, (unsigned long long)ws.write_bytes);
    CHECK_EQ(ws.appends, n);
    CHECK(ws.writes >= 1);
    CHECK(ws.writes * 20 <= ws.appends);
    CHECK_EQ(ops1[STRATUS_SOP_PUT].calls - ops0[STRATUS_SOP_PUT].calls, ws.writes);
    CHECK_EQ(ws.durable_lsn, ws.head_lsn);
    CHECK_EQ(ws.pending_bytes, 0);
    CHECK_EQ(list_keys(prefix, &ks), 0);
    CHECK_EQ((uint64_t)ks.n, ws.writes);
    uint64_t head = ws.head_lsn;
    stratus_wal_close(wal);

    /* replay after reopen: every record once, byte-identical, at the LSN append returned */
    memset(&seen, 0, sizeof seen);
    wal = wal_open(prefix, 100, 0, NULL);
    if (!wal)
        return;
    CHECK_EQ(stratus_wal_replay(wal, seen_cb, &seen, &eb), 0);
    CHECK_EQ(seen.bad, 0);
    CHECK_EQ(seen.n, n);
    int lsn_bad = 0;
    for (size_t i = 0; i < seen.n; i++)
        lsn_bad += g_c[seen.ids[i]].lsn != seen.lsns[i];
    CHECK_EQ(lsn_bad, 0);
    stratus_wal_get_stats(wal, &ws);
    CHECK_EQ(ws.head_lsn, head);
    CHECK_EQ(ws.trim_lsn, 0);

    /* new LSNs continue after the replayed ones */
    CHECK_EQ(stratus_wal_start(wal, &eb), 0);
    reset_comps();
    CHECK_EQ(append_id(wal, 0), 0);
    CHECK(wait_done(0, 1, 5000));
    CHECK_EQ(g_c[0].err, 0);
    CHECK_EQ(g_c[0].lsn, head);

    /* trim inside an object deletes nothing of it; at an object boundary, the objects below */
    CHECK_EQ(list_keys(prefix, &ks), 0);
    int nobj = ks.n;
    CHECK(nobj >= 3);
    uint64_t b1 = key_lsn(ks.k[1]), b2 = key_lsn(ks.k[2]);
    CHECK_EQ(stratus_wal_trim(wal, b1 + 1, &eb), 0);
    CHECK_EQ(list_keys(prefix, &ks), 0);
    CHECK_EQ(ks.n, nobj - 1);
    CHECK_EQ(key_lsn(ks.k[0]), b1);
    CHECK_EQ(stratus_wal_trim(wal, b2, &eb), 0);
    CHECK_EQ(list_keys(prefix, &ks), 0);
    CHECK_EQ(ks.n, nobj - 2);
    CHECK_EQ(key_lsn(ks.k[0]), b2);
    stratus_wal_get_stats(wal, &ws);
    CHECK_EQ(ws.trim_lsn, b2);
    stratus_wal_close(wal);

    /* replay returns exactly the records with LSN >= b2 (the earlier ids plus the new one) */
    static struct seen again;
    size_t want = 0;
    for (size_t i = 0; i < seen.n; i++)
        want += seen.lsns[i] >= b2;
    wal = wal_open(prefix, 100, 0, NULL);
    if (!wal)
        return;
    CHECK_EQ(stratus_wal_replay(wal, seen_cb, &again, &eb), 0);
    CHECK_EQ(again.bad, 0);
    CHECK_EQ(again.n, want + 1);
    CHECK(again.n > 0 && again.lsns[0] == b2);
    int same = 1;
    for (size_t i = 0, j = seen.n - want; i < want; i++, j++)
        same &= again.lsns[i] == seen.lsns[j] && again.ids[i] == seen.ids[j];
    CHECK(same);
    CHECK(again.n > 0 && again.lsns[again.n - 1] == head && again.ids[again.n - 1] == 0);
    stratus_wal_get_stats(wal, &ws);
    CHECK_EQ(ws.trim_lsn, b2);
    stratus_wal_close(wal);

    /* read_objects of this prefix from elsewhere gives the same; a shorter prefix ("wal/1/")
     * does not reach into the deeper one; delete_objects empties it */
    static struct seen other;
    CHECK_EQ(stratus_wal_read_objects(g_st, prefix, seen_cb, &other, &eb), 0);
    CHECK_EQ(other.n, again.n);
    CHECK_EQ(other.bad, 0);
    memset(&other, 0, sizeof other);
    CHECK_EQ(stratus_wal_read_objects(g_st, "wal/1/", seen_cb, &other, &eb), 0);
    CHECK_EQ(other.n, 0);
    CHECK_EQ(stratus_wal_delete_objects(g_st, prefix, &eb), 0);
    CHECK_EQ(list_keys(prefix, &ks), 0);
    CHECK_EQ(ks.n, 0);
}

/* ---- 2. read_objects of another prefix while a WAL runs -------------------------------------- */

static void test_read_other_prefix(void)
{
    struct stratus_errbuf eb = {{0}};
    static struct seen s;

    reset_comps();
    struct stratus_wal *dead = wal_open("wal/7/3/", 20, 0, NULL);
    struct stratus_wal *live = wal_open("wal/8/1/", 20, 0, NULL);
    if (!dead || !live)
        return;
    CHECK_EQ(stratus_wal_start(dead, &eb), 0);
    CHECK_EQ(stratus_wal_start(live, &eb), 0);
    for (uint32_t i = 0; i < 50; i++)
        CHECK_EQ(append_id(i % 2 ? live : dead, i), 0);
    CHECK(wait_done(0, 50, 5000));
    stratus_wal_close(dead); /* "broker 7 died" */
    CHECK_EQ(stratus_wal_read_objects(g_st, "wal/7/3/", seen_cb, &s, &eb), 0);
    CHECK_EQ(s.bad, 0);
    CHECK_EQ(s.n, 25);
    int even = 1;
    for (size_t i = 0; i < s.n; i++)
        even &= s.ids[i] % 2 == 0 && s.ids[i] == 2 * i;
    CHECK(even);
    CHECK_EQ(stratus_wal_delete_objects(g_st, "wal/7/3/", &eb), 0);
    memset(&s, 0, sizeof s);
    CHECK_EQ(stratus_wal_read_objects(g_st, "wal/7/3/", seen_cb, &s, &eb), 0);
    CHECK_EQ(s.n, 0);
    stratus_wal_close(live);
    struct keys ks;
    CHECK_EQ(list_keys("wal/8/1/", &ks), 0);
    CHECK(ks.n >= 1);
}

/* ---- 3. object_max_bytes and close ----------------------------------------------------------- */

static void test_max_bytes_and_close(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_wal_stats ws;
    static struct seen s;

    reset_comps();
    /* a 10 s interval: only the size cut (4 KiB) can complete records before close */
    struct stratus_wal *wal = wal_open("wal/5/1/", 10000, 4096, NULL);
    if (!wal)
        return;
    CHECK_EQ(stratus_wal_start(wal, &eb), 0);
    uint32_t i = 0;
    for (; i < 40; i++)
        CHECK_EQ(append_id(wal, i), 0);
    int64_t t0 = stratus_mono_ms();
    CHECK(wait_done(0, 10, 3000)); /* the first 4 KiB went out long before 10 s */
    CHECK(stratus_mono_ms() - t0 < 3000);
    stratus_wal_get_stats(wal, &ws);
    CHECK(ws.writes >= 1);
    /* a record larger than object_max_bytes gets an object of its own */
    static unsigned char big[20000];
    memset(big, 0xab, sizeof big);
    struct iovec iov = {big, sizeof big};
    CHECK_EQ(stratus_wal_append(wal, &iov, 1, on_done, &g_c[i], &g_c[i].lsn), 0);
    i++;
    CHECK_EQ(append_id(wal, i), 0);
    i++;
    stratus_wal_close(wal); /* writes the queued tail */
    int ok = 1;
    for (uint32_t j = 0; j < i; j++)
        ok &= g_c[j].done == 1 && g_c[j].err == 0;
    CHECK(ok);
    struct keys ks;
    CHECK_EQ(list_keys("wal/5/1/", &ks), 0);
    CHECK(ks.n >= 4);
    int big_alone = 0;
    for (int k = 0; k < ks.n; k++)
        if (key_lsn(ks.k[k]) == g_c[40].lsn)
            big_alone = k + 1 < ks.n && key_lsn(ks.k[k + 1]) == g_c[41].lsn;
    CHECK(big_alone);
    /* big is not a rec_make record: count it apart */
    wal = wal_open("wal/5/1/", 100, 4096, NULL);
    if (!wal)
        return;
    CHECK_EQ(stratus_wal_replay(wal, seen_cb, &s, &eb), 0);
    CHECK_EQ(s.n, 41);
    CHECK_EQ(s.bad, 1);
    stratus_wal_close(wal);
}

/* ---- 4. the ack fence ------------------------------------------------------------------------ */

static _Atomic int64_t g_deadline;
static atomic_int g_deadline_mode; /* 0: g_deadline; 1: future on the first call, then past */
static atomic_int g_deadline_calls;

static int64_t deadline_fn(void *arg)
{
    (void)arg;
    if (atomic_load(&g_deadline_mode) == 1)
        return atomic_fetch_add(&g_deadline_calls, 1) == 0 ? INT64_MAX : 0;
    return atomic_load(&g_deadline);
}

static void test_ack_fence(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_wal_stats ws;
    struct keys ks;

    reset_comps();
    atomic_store(&g_deadline, 0); /* long past */
    struct stratus_wal *wal = wal_open("wal/2/1/", 30, 0, deadline_fn);
    if (!wal)
        return;
    CHECK_EQ(stratus_wal_start(wal, &eb), 0);
    for (uint32_t i = 0; i < 10; i++)
        CHECK_EQ(append_id(wal, i), 0);
    CHECK(wait_done(0, 10, 5000));
    int eagain = 0;
    for (uint32_t i = 0; i < 10; i++)
        eagain += g_c[i].err == STRATUS_EAGAIN;
    CHECK_EQ(eagain, 10);
    stratus_wal_get_stats(wal, &ws);
    CHECK_EQ(ws.writes, 0); /* past before the PUT: nothing written */
    CHECK_EQ(list_keys("wal/2/1/", &ks), 0);
    CHECK_EQ(ks.n, 0);

    /* the deadline passes while the PUT runs: written, but not acknowledged */
    atomic_store(&g_deadline_calls, 0);
    atomic_store(&g_deadline_mode, 1);
    for (uint32_t i = 10; i < 15; i++)
        CHECK_EQ(append_id(wal, i), 0);
    CHECK(wait_done(10, 15, 5000));
    eagain = 0;
    for (uint32_t i = 10; i < 15; i++)
        eagain += g_c[i].err == STRATUS_EAGAIN;
    CHECK_EQ(eagain, 5);
    stratus_wal_get_stats(wal, &ws);
    CHECK_EQ(ws.writes, 1);

    /* the fence moves into the future: appends are acknowledged again */
    atomic_store(&g_deadline_mode, 0);
    atomic_store(&g_deadline, stratus_mono_ms() + 3600 * 1000);
    for (uint32_t i = 15; i < 40; i++)
        CHECK_EQ(append_id(wal, i), 0);
    CHECK(wait_done(15, 40, 5000));
    int ok = 0;
    for (uint32_t i = 15; i < 40; i++)
        ok += g_c[i].err == 0;
    CHECK_EQ(ok, 25);
    stratus_wal_get_stats(wal, &ws);
    CHECK_EQ(ws.durable_lsn, ws.head_lsn);
    stratus_wal_close(wal);
}

/* ---- 5. a failed PUT fails its records, not the WAL ----------------------------------------- */

static void test_put_failure(void)
{
    struct stratus_errbuf eb = {{0}};

    reset_comps();
    /* storage-local cannot create directory wal/3/1/ while wal/3/1 is an object */
    CHECK_EQ(stratus_storage_put(g_st, "wal/3/1", "x", 1, NULL, NULL, &eb), 0);
    struct stratus_wal *wal = wal_open("wal/3/1/", 20, 0, NULL);
    if (!wal)
        return;
    CHECK_EQ(stratus_wal_start(wal, &eb), 0);
    for (uint32_t i = 0; i < 5; i++)
        CHECK_EQ(append_id(wal, i), 0);
    CHECK(wait_done(0, 5, 10000));
    int failed = 0;
    for (uint32_t i = 0; i < 5; i++)
        failed += g_c[i].err < 0;
    CHECK_EQ(failed, 5);
    const char *k = "wal/3/1";
    CHECK_EQ(stratus_storage_del(g_st, &k, 1, &eb), 0);
    for (uint32_t i = 5; i < 10; i++)
        CHECK_EQ(append_id(wal, i), 0);
    CHECK(wait_done(5, 10, 10000));
    int ok = 0;
    for (uint32_t i = 5; i < 10; i++)
        ok += g_c[i].err == 0;
    CHECK_EQ(ok, 5);
    stratus_wal_close(wal);
    static struct seen s;
    CHECK_EQ(stratus_wal_read_objects(g_st, "wal/3/1/", seen_cb, &s, &eb), 0);
    CHECK_EQ(s.n, 5);
    CHECK(s.n == 5 && s.ids[0] == 5 && s.lsns[0] == g_c[5].lsn);
}

/* ---- 6. corruption --------------------------------------------------------------------------- */

static void test_corrupt(void)
{
    struct stratus_errbuf eb = {{0}};
    struct keys ks;
    static struct seen s;

    reset_comps();
    struct stratus_wal *wal = wal_open("wal/6/1/", 20, 0, NULL);
    if (!wal)
        return;
    CHECK_EQ(stratus_wal_start(wal, &eb), 0);
    for (uint32_t i = 0; i < 30; i++) {
        CHECK_EQ(append_id(wal, i), 0);
        if (i == 14)
            CHECK(wait_done(0, 15, 5000)); /* two objects at least */
    }
    stratus_wal_close(wal);
    CHECK_EQ(list_keys("wal/6/1/", &ks), 0);
    CHECK(ks.n >= 2);
    if (ks.n < 2)
        return;
    /* flip one payload byte of the last object, on disk */
    char path[512];
    snprintf(path, sizeof path, "%s/objects/%s", g_dir, ks.k[ks.n - 1]);
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (!f)
        return;
    fseek(f, 32 + 16 + 3, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 32 + 16 + 3, SEEK_SET);
    fputc(c ^ 0x20, f);
    fclose(f);
    eb.msg[0] = 0;
    CHECK_EQ(stratus_wal_read_objects(g_st, "wal/6/1/", seen_cb, &s, &eb), STRATUS_ECORRUPT);
    printf("corrupt: %s\n", eb.msg);
    CHECK(strstr(eb.msg, ks.k[ks.n - 1]) != NULL);
    CHECK(s.n > 0 && s.n < 30); /* the intact objects before it were read */
    /* replay of that prefix refuses too */
    wal = wal_open("wal/6/1/", 20, 0, NULL);
    if (!wal)
        return;
    memset(&s, 0, sizeof s);
    eb.msg[0] = 0;
    CHECK_EQ(stratus_wal_replay(wal, seen_cb, &s, &eb), STRATUS_ECORRUPT);
    CHECK(strstr(eb.msg, ks.k[ks.n - 1]) != NULL);
    stratus_wal_close(wal);
}

/* ---- 7. latency ------------------------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_latency(void)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_wal_stats ws;
    enum { N = 800 };
    static int64_t lat[N];

    reset_comps();
    struct stratus_wal *wal = wal_open("wal/4/1/", 100, 0, NULL);
    if (!wal)
        return;
    CHECK_EQ(stratus_wal_start(wal, &eb), 0);
    for (uint32_t i = 0; i < N; i++) {
        CHECK_EQ(append_id(wal, i), 0);
        usleep(2500); /* ~400 appends/s for 2 s */
    }
    CHECK(wait_done(0, N, 10000));
    stratus_wal_get_stats(wal, &ws);
    stratus_wal_close(wal);
    int errs = 0;
    for (uint32_t i = 0; i < N; i++) {
        errs += g_c[i].err != 0;
        lat[i] = g_c[i].t_done_us - g_c[i].t_append_us;
    }
    CHECK_EQ(errs, 0);
    qsort(lat, N, sizeof lat[0], cmp_i64);
    double p50 = (double)lat[N / 2] / 1000, p99 = (double)lat[N * 99 / 100] / 1000;
    printf("latency (interval 100 ms, storage-local with fsync): append->completion p50 %.1f ms "
           "p99 %.1f ms max %.1f ms; %llu PUTs, mean PUT %.2f ms\n",
           p50, p99, (double)lat[N - 1] / 1000, (unsigned long long)ws.writes,
           ws.writes ? (double)ws.write_us_total / (double)ws.writes / 1000 : 0.0);
    CHECK(p50 >= 10);   /* records wait for their batch's window */
    CHECK(p99 <= 1100); /* ... and not much longer than one window */
}

int main(void)
{
    struct stratus_errbuf eb = {{0}};
    char buf[512];
    const char *pd = getenv("STRATUS_PLUGIN_DIR");

    stratus_log_level = STRATUS_LOG_WARN;
    snprintf(g_dir, sizeof g_dir, "/tmp/stratus-test-walobj-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    struct stratus_conf *conf = stratus_conf_new();
    CHECK_EQ(stratus_conf_set(conf, "storage.plugin=local", &eb), 0);
    snprintf(buf, sizeof buf, "storage.path=%s/objects", g_dir);
    CHECK_EQ(stratus_conf_set(conf, buf, &eb), 0);
    if (stratus_storage_open(conf, "storage", pd ? pd : "plugins", &g_st, &eb) != 0) {
        fprintf(stderr, "storage open: %s\n", eb.msg);
        CHECK(0);
        TEST_REPORT();
    }
    test_order_batching_replay_trim();
    test_read_other_prefix();
    test_max_bytes_and_close();
    test_ack_fence();
    test_put_failure();
    test_corrupt();
    test_latency();
    stratus_storage_close(g_st);
    stratus_conf_free(conf);
    if (!test_failed) {
        snprintf(buf, sizeof buf, "rm -rf '%s'", g_dir);
        if (system(buf) != 0)
            fprintf(stderr, "could not remove %s\n", g_dir);
    }
    TEST_REPORT();
}
