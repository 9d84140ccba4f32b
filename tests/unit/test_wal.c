/* link: stratus_stream stratus_util */
/* test_wal.c - the write-ahead log: completion order with many appending threads, replay after
 * close (every record once, in order, intact), trim then reopen, several laps of the ring,
 * a torn tail (and a torn batch followed by a restart), ring-full backpressure released by
 * trim, records with caller-known CRCs (a wrong one is refused by replay) appended under holds,
 * held requests waiting for their acks (one write per request alone; no lost writer wakeup),
 * requests made on an event loop's thread written by that thread at the end of its iteration
 * (one write for the iteration, completions on the loop; not with writers_only; mixed with
 * plain appending threads, everything completes once, in order),
 * records straddling replay's read windows (read ahead, not again in place),
 * the O_DIRECT path on a real disk (/var/tmp) and the buffered path on /dev/shm; writes that
 * really fail (a read-only descriptor swapped in) complete their records with errors, on the
 * writer threads (never on an appender, which may hold the lock its completions take), later
 * appends are refused and close() returns.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stream/wal.h"
#include "util/alloc.h"
#include "util/crc32c.h"
#include "test.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/loop.h"
#include "wal_records.h"

#define SB_AREA 8192u

static char g_path[512];

/* ---- records (wal_records.h) ---------------------------------------------------------- */

static uint32_t size_for(uint32_t id)
{
    static const uint32_t sizes[] = {8, 100, 1000, 4000, 4096, 5000, 33, 20000, 64, 300};
    return sizes[(id * 2654435761u >> 8) % 10];
}

/* ---- completion tracking --------------------------------------------------------------- */

struct tracker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t done, errors, order_violations;
    uint64_t last_lsn;
    int have_last;
    uint64_t *lsn_of; /* by id, when tracked */
};

static void tracker_init(struct tracker *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
}

static void tracker_fini(struct tracker *t)
{
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
}

static void on_done(void *arg, int err, uint64_t lsn)
{
    struct tracker *t = arg;
    pthread_mutex_lock(&t->mu);
    if (err)
        t->errors++;
    if (t->have_last && lsn <= t->last_lsn)
        t->order_violations++;
    t->last_lsn = lsn;
    t->have_last = 1;
    t->done++;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* Waits until t->done >= n or timeout_ms; returns done. */
static uint64_t tracker_wait(struct tracker *t, uint64_t n, int timeout_ms)
{
    int64_t until = stratus_mono_ms() + timeout_ms;
    pthread_mutex_lock(&t->mu);
    while (t->done < n && stratus_mono_ms() < until) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
    }
    uint64_t d = t->done;
    pthread_mutex_unlock(&t->mu);
    return d;
}

/* ---- replay collection ----------------------------------------------------------------- */

struct collect {
    uint32_t *ids;
    uint64_t *lsns;
    size_t n, cap;
    int bad, order;
};

static int on_replay(void *arg, uint64_t lsn, const void *rec, size_t len)
{
    struct collect *c = arg;
    uint32_t id;
    if (!wr_rec_ok(rec, len, &id)) {
        c->bad++;
        return 0;
    }
    if (c->n && lsn <= c->lsns[c->n - 1])
        c->order++;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->ids = realloc(c->ids, c->cap * sizeof *c->ids);
        c->lsns = realloc(c->lsns, c->cap * sizeof *c->lsns);
    }
    c->ids[c->n] = id;
    c->lsns[c->n] = lsn;
    c->n++;
    return 0;
}

static void collect_free(struct collect *c)
{
    free(c->ids);
    free(c->lsns);
    memset(c, 0, sizeof *c);
}

static struct stratus_wal_conf conf_for(const char *path, uint64_t ring)
{
    struct stratus_wal_conf c = {0};
    c.path = path;
    c.size_bytes = ring;
    c.max_write_bytes = 256 * 1024;
    c.max_inflight = 4;
    c.max_pending_bytes = 64u << 20;
    c.skip_zero_fill = ring > (64u << 20);
    return c;
}

/* Opens, replays into c (may be NULL), starts. */
static struct stratus_wal *wal_up(const struct stratus_wal_conf *conf, struct collect *c)
{
    struct stratus_wal *wal = NULL;
    struct stratus_errbuf eb = {{0}};
    int rc = stratus_wal_open(conf, &wal, &eb);
    CHECK_EQ(rc, 0);
    if (rc) {
        fprintf(stderr, "open: %s\n", eb.msg);
        return NULL;
    }
    if (c) {
        rc = stratus_wal_replay(wal, on_replay, c, &eb);
        CHECK_EQ(rc, 0);
        CHECK_EQ(c->bad, 0);
        CHECK_EQ(c->order, 0);
    }
    rc = stratus_wal_start(wal, &eb);
    CHECK_EQ(rc, 0);
    if (rc)
        fprintf(stderr, "start: %s\n", eb.msg);
    return wal;
}

static int append_rec(struct stratus_wal *wal, uint32_t id, uint32_t len, struct tracker *t,
                      uint64_t *lsn)
{
    unsigned char *buf = malloc(len < 8 ? 8 : len);
    size_t n = wr_rec_make(buf, id, len);
    /* two pieces, to exercise the iovec path */
    struct iovec iov[2] = {{buf, n / 2}, {buf + n / 2, n - n / 2}};
    int rc = stratus_wal_append(wal, iov, 2, on_done, t, lsn);
    free(buf);
    return rc;
}

/* ---- 1. many threads: completion order, then replay returns all once, in order ----------- */

struct appender {
    struct stratus_wal *wal;
    struct tracker *t;
    uint32_t first, count;
    int failures;
};

static void *appender_main(void *arg)
{
    struct appender *a = arg;
    for (uint32_t i = 0; i < a->count; i++) {
        uint32_t id = a->first + i;
        int rc;
        while ((rc = append_rec(a->wal, id, size_for(id), a->t, NULL)) == STRATUS_ENOMEM)
            usleep(100);
        if (rc)
            a->failures++;
        if (i % 64 == 0)
            usleep(50); /* vary the batching */
    }
    return NULL;
}

static void test_threads(const char *dir, int force_buffered)
{
    enum { NTHREADS = 8, PER = 1500 };
    struct tracker t;
    struct collect c = {0};
    pthread_t th[NTHREADS];
    struct appender ap[NTHREADS];

    snprintf(g_path, sizeof g_path, "%s/threads.wal", dir);
    unlink(g_path);
    struct stratus_wal_conf conf = conf_for(g_path, 64u << 20);
    conf.force_buffered = force_buffered;
    tracker_init(&t);
    struct stratus_wal *wal = wal_up(&conf, &c);
    if (!wal)
        return;
    CHECK_EQ(c.n, 0);
    for (int i = 0; i < NTHREADS; i++) {
        ap[i] = (struct appender){wal, &t, (uint32_t)(i * PER), PER, 0};
        pthread_create(&th[i], NULL, appender_main, &ap[i]);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(ap[i].failures, 0);
    }
    struct stratus_wal_stats st;
    stratus_wal_close(wal);
    CHECK_EQ(t.done, NTHREADS * PER);
    CHECK_EQ(t.errors, 0);
    CHECK_EQ(t.order_violations, 0);

    wal = wal_up(&conf, &c);
    if (!wal)
        return;
    stratus_wal_get_stats(wal, &st);
    printf("threads(%s): %zu records replayed, direct=%d\n", dir, c.n, st.direct_io);
    CHECK_EQ(st.direct_io, force_buffered ? 0 : st.direct_io);
    CHECK_EQ(c.n, NTHREADS * PER);
    unsigned char *seen = calloc(NTHREADS * PER, 1);
    int dups = 0, out_of_range = 0;
    uint32_t last_of_thread[NTHREADS];
    int per_thread_order = 0;
    for (int i = 0; i < NTHREADS; i++)
        last_of_thread[i] = UINT32_MAX;
    for (size_t i = 0; i < c.n; i++) {
        uint32_t id = c.ids[i];
        if (id >= NTHREADS * PER) {
            out_of_range++;
            continue;
        }
        dups += seen[id];
        seen[id] = 1;
        uint32_t th_i = id / PER;
        /* one thread's appends return in its own order */
        if (last_of_thread[th_i] != UINT32_MAX && id <= last_of_thread[th_i])
            per_thread_order++;
        last_of_thread[th_i] = id;
    }
    CHECK_EQ(dups, 0);
    CHECK_EQ(out_of_range, 0);
    CHECK_EQ(per_thread_order, 0);
    free(seen);
    stratus_wal_close(wal);
    collect_free(&c);
    tracker_fini(&t);
    unlink(g_path);
}

/* ---- 2. trim then reopen ---------------------------------------------------------------- */

static void test_trim(const char *dir)
{
    enum { N = 200 };
    struct tracker t;
    struct collect c = {0};
    uint64_t lsn[N];
    struct stratus_errbuf eb;

    snprintf(g_path, sizeof g_path, "%s/trim.wal", dir);
    unlink(g_path);
    struct stratus_wal_conf conf = conf_for(g_path, 8u << 20);
    tracker_init(&t);
    struct stratus_wal *wal = wal_up(&conf, NULL);
    if (!wal)
        return;
    for (uint32_t i = 0; i < N; i++) {
        CHECK_EQ(append_rec(wal, i, size_for(i), &t, &lsn[i]), 0);
        if (i % 17 == 0)
            tracker_wait(&t, i + 1, 5000); /* several batches */
    }
    CHECK_EQ(tracker_wait(&t, N, 10000), N);
    CHECK_EQ(stratus_wal_trim(wal, lsn[50], &eb), 0);
    struct stratus_wal_stats st;
    stratus_wal_get_stats(wal, &st);
    CHECK_EQ(st.trim_lsn, lsn[50]);
    stratus_wal_close(wal);

    wal = wal_up(&conf, &c);
    CHECK_EQ(c.n, N - 50);
    CHECK(c.n > 0 && c.ids[0] == 50 && c.ids[c.n - 1] == N - 1);
    /* trim to a position inside a record: that record is freed too */
    collect_free(&c);
    CHECK_EQ(stratus_wal_trim(wal, lsn[120] + 1, &eb), 0);
    stratus_wal_close(wal);
    wal = wal_up(&conf, &c);
    CHECK_EQ(c.n, N - 121);
    CHECK(c.n > 0 && c.ids[0] == 121);
    /* trim everything */
    collect_free(&c);
    stratus_wal_get_stats(wal, &st);
    CHECK_EQ(stratus_wal_trim(wal, st.durable_lsn, &eb), 0);
    stratus_wal_close(wal);
    wal = wal_up(&conf, &c);
    CHECK_EQ(c.n, 0);
    stratus_wal_close(wal);
    collect_free(&c);
    tracker_fini(&t);
    unlink(g_path);
}

/* ---- 3. several laps, with reopens mid-way ----------------------------------------------- */

static void test_laps(const char *dir)
{
    enum { N = 3000 };
    struct tracker t;
    struct collect c = {0};
    static uint64_t lsn[N];
    struct stratus_errbuf eb;
    uint32_t kept_from = 0;
    uint64_t total_bytes = 0;

    snprintf(g_path, sizeof g_path, "%s/laps.wal", dir);
    unlink(g_path);
    struct stratus_wal_conf conf = conf_for(g_path, 256 * 1024);
    conf.max_write_bytes = 64 * 1024;
    tracker_init(&t);
    struct stratus_wal *wal = wal_up(&conf, NULL);
    if (!wal)
        return;
    for (uint32_t i = 0; i < N; i++) {
        int rc;
        while ((rc = append_rec(wal, i, size_for(i), &t, &lsn[i])) == STRATUS_ENOMEM)
            usleep(100);
        CHECK_EQ(rc, 0);
        total_bytes += size_for(i);
        /* keep about 48 KiB un-trimmed: trim to the oldest record within that window */
        if (i % 8 == 7) {
            CHECK_EQ(tracker_wait(&t, i + 1, 10000), i + 1);
            struct stratus_wal_stats st;
            stratus_wal_get_stats(wal, &st);
            while (kept_from < i && st.durable_lsn > lsn[kept_from] &&
                   st.durable_lsn - lsn[kept_from] > 48 * 1024)
                kept_from++;
            CHECK_EQ(stratus_wal_trim(wal, lsn[kept_from], &eb), 0);
        }
        if (i == N / 3 || i == 2 * N / 3) {
            /* reopen mid-way: the records after the trim point come back */
            CHECK_EQ(tracker_wait(&t, i + 1, 10000), i + 1);
            struct stratus_wal_stats st;
            stratus_wal_get_stats(wal, &st);
            uint64_t trim = st.trim_lsn;
            stratus_wal_close(wal);
            wal = wal_up(&conf, &c);
            uint32_t first = 0;
            while (first <= i && lsn[first] < trim)
                first++;
            CHECK_EQ(c.n, i + 1 - first);
            int mism = 0;
            for (size_t k = 0; k < c.n; k++)
                mism += c.ids[k] != first + k || c.lsns[k] != lsn[first + k];
            CHECK_EQ(mism, 0);
            collect_free(&c);
        }
    }
    CHECK_EQ(tracker_wait(&t, N, 20000), N);
    CHECK_EQ(t.errors, 0);
    CHECK_EQ(t.order_violations, 0);
    struct stratus_wal_stats st;
    stratus_wal_get_stats(wal, &st);
    uint64_t trim = st.trim_lsn;
    printf("laps: head lsn %llu = %.1f laps of a 256 KiB ring, %llu writes\n",
           (unsigned long long)st.head_lsn, (double)st.head_lsn / (256 * 1024),
           (unsigned long long)st.writes);
    CHECK(st.head_lsn > 5ull * 256 * 1024);
    stratus_wal_close(wal);
    wal = wal_up(&conf, &c);
    uint32_t first = 0;
    while (first < N && lsn[first] < trim)
        first++;
    CHECK_EQ(c.n, N - first);
    int mism = 0;
    for (size_t k = 0; k < c.n; k++)
        mism += c.ids[k] != first + k || c.lsns[k] != lsn[first + k];
    CHECK_EQ(mism, 0);
    stratus_wal_close(wal);
    collect_free(&c);
    tracker_fini(&t);
    unlink(g_path);
}

/* ---- records near and above the replay window's size ------------------------------------ */

/* Records of 0.3-1.2 MiB (what 1 MiB produce batches make) straddle most of replay's 4 MiB
 * windows; two are larger than a window. Replay returns each intact, and reads the windows
 * ahead: only the first and the two larger records are read in place (before the fix a
 * straddling record discarded the read-ahead and read the ring again from its start, so
 * nearly every window was read synchronously). */
static void test_large_records(const char *dir)
{
    enum { N = 48 };
    struct tracker t;
    struct collect c = {0};
    uint64_t total = 0;

    snprintf(g_path, sizeof g_path, "%s/large.wal", dir);
    unlink(g_path);
    struct stratus_wal_conf conf = conf_for(g_path, 128u << 20);
    conf.max_write_bytes = 1u << 20;
    conf.max_pending_bytes = 256u << 20;
    tracker_init(&t);
    struct stratus_wal *wal = wal_up(&conf, NULL);
    if (!wal)
        return;
    for (uint32_t i = 0; i < N; i++) {
        uint32_t len = i == 10 || i == 30 ? (5u << 20) + 12345 : 300000 + (i * 379721u % 900000);
        CHECK_EQ(append_rec(wal, i, len, &t, NULL), 0);
        total += len;
    }
    CHECK_EQ(tracker_wait(&t, N, 30000), N);
    CHECK_EQ(t.errors, 0);
    stratus_wal_close(wal);
    wal = wal_up(&conf, &c);
    if (!wal)
        return;
    CHECK_EQ(c.n, N);
    int mism = 0;
    for (size_t k = 0; k < c.n; k++)
        mism += c.ids[k] != k;
    CHECK_EQ(mism, 0);
    struct stratus_wal_stats st;
    stratus_wal_get_stats(wal, &st);
    printf("large records: %llu MiB replayed, windows %llu read ahead, %llu in place\n",
           (unsigned long long)(total >> 20), (unsigned long long)st.replay_reads_ahead,
           (unsigned long long)st.replay_reads_inline);
    CHECK(st.replay_reads_inline <= 3);
    CHECK(st.replay_reads_ahead >= total / (4u << 20) - 3);
    stratus_wal_close(wal);
    collect_free(&c);
    tracker_fini(&t);
    unlink(g_path);
}

/* ---- 4. torn tail --------------------------------------------------------------------- */

static void corrupt_at(const char *path, uint64_t ring, uint64_t lsn, uint64_t delta)
{
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    unsigned char b;
    off_t off = (off_t)(SB_AREA + lsn % ring + delta);
    CHECK_EQ(pread(fd, &b, 1, off), 1);
    b ^= 0x5a;
    CHECK_EQ(pwrite(fd, &b, 1, off), 1);
    fsync(fd);
    close(fd);
}

static void test_torn_tail(const char *dir)
{
    enum { N = 40 };
    struct tracker t;
    struct collect c = {0};
    uint64_t lsn[N + 20];
    const uint64_t ring = 4u << 20;

    snprintf(g_path, sizeof g_path, "%s/torn.wal", dir);
    unlink(g_path);
    struct stratus_wal_conf conf = conf_for(g_path, ring);
    tracker_init(&t);
    struct stratus_wal *wal = wal_up(&conf, NULL);
    if (!wal)
        return;
    for (uint32_t i = 0; i < N; i++) {
        CHECK_EQ(append_rec(wal, i, 3000, &t, &lsn[i]), 0);
        tracker_wait(&t, i + 1, 5000); /* one batch each */
    }
    stratus_wal_close(wal);
    /* the last record's payload: replay stops before it */
    corrupt_at(g_path, ring, lsn[N - 1], 32 + 100);
    wal = wal_up(&conf, &c);
    CHECK_EQ(c.n, N - 1);
    CHECK(c.n == N - 1 && c.ids[N - 2] == N - 2);
    collect_free(&c);
    /* appending continues cleanly after the torn record */
    for (uint32_t i = 100; i < 110; i++)
        CHECK_EQ(append_rec(wal, i, 3000, &t, &lsn[N + i - 100]), 0);
    CHECK_EQ(tracker_wait(&t, N + 10, 5000), N + 10);
    stratus_wal_close(wal);
    wal = wal_up(&conf, &c);
    CHECK_EQ(c.n, N - 1 + 10);
    int mism = 0;
    for (size_t k = 0; k < c.n; k++)
        mism += c.ids[k] != (k < N - 1 ? k : 100 + (k - (N - 1)));
    CHECK_EQ(mism, 0);
    collect_free(&c);
    stratus_wal_close(wal);

    /* a torn batch in the middle of the log (the header of record 20): what followed it on disk
     * belongs to a dead run and must never come back, even after the next run writes less */
    wal = wal_up(&conf, &c);
    collect_free(&c);
    stratus_wal_close(wal);
    corrupt_at(g_path, ring, lsn[20], 9); /* the lsn field */
    wal = wal_up(&conf, &c);
    CHECK_EQ(c.n, 20);
    collect_free(&c);
    CHECK_EQ(append_rec(wal, 500, 100, &t, NULL), 0);
    CHECK_EQ(tracker_wait(&t, N + 11, 5000), N + 11);
    stratus_wal_close(wal);
    wal = wal_up(&conf, &c);
    CHECK_EQ(c.n, 21);
    CHECK(c.n == 21 && c.ids[19] == 19 && c.ids[20] == 500);
    collect_free(&c);
    stratus_wal_close(wal);
    tracker_fini(&t);
    unlink(g_path);
}

/* A torn record inside a batch (not at a block boundary): the next run restarts at the next
 * block with a GEN record pointing back at it, and replay jumps there. */
static void test_torn_inside_batch(const char *dir)
{
    struct tracker t;
    struct collect c = {0};
    uint64_t lsn[3];
    const uint64_t ring = 1u << 20;

    snprintf(g_path, sizeof g_path, "%s/torn2.wal", dir);
    unlink(g_path);
    struct stratus_wal_conf conf = conf_for(g_path, ring);
    conf.batch_delay_us = 50000; /* three appends land in one batch */
    conf.max_inflight = 1;
    tracker_init(&t);
    struct stratus_wal *wal = wal_up(&conf, NULL);
    if (!wal)
        return;
    tracker_wait(&t, 0, 100);
    usleep(100000); /* the GEN batch is written alone */
    for (uint32_t i = 0; i < 3; i++)
        CHECK_EQ(append_rec(wal, i, 200, &t, &lsn[i]), 0);
    CHECK_EQ(tracker_wait(&t, 3, 5000), 3);
    CHECK(lsn[2] - lsn[0] < 4096 && lsn[0] / 4096 == lsn[2] / 4096);
    stratus_wal_close(wal);
    corrupt_at(g_path, ring, lsn[2], 40);
    for (int round = 0; round < 3; round++) {
        wal = wal_up(&conf, &c);
        CHECK_EQ(c.n, 2 + round);
        collect_free(&c);
        CHECK_EQ(append_rec(wal, 10 + round, 200, &t, NULL), 0);
        CHECK_EQ(tracker_wait(&t, 4 + round, 5000), 4 + round);
        stratus_wal_close(wal);
    }
    wal = wal_up(&conf, &c);
    CHECK_EQ(c.n, 5);
    CHECK(c.n == 5 && c.ids[0] == 0 && c.ids[1] == 1 && c.ids[2] == 10 && c.ids[4] == 12);
    collect_free(&c);
    stratus_wal_close(wal);
    tracker_fini(&t);
    unlink(g_path);
}

/* ---- 5. ring full: appends wait, the ceiling says ENOMEM, trim releases ------------------ */

static void test_ring_full(const char *dir)
{
    struct tracker t;
    struct stratus_errbuf eb;
    const uint64_t ring = 256 * 1024;

    snprintf(g_path, sizeof g_path, "%s/full.wal", dir);
    unlink(g_path);
    struct stratus_wal_conf conf = conf_for(g_path, ring);
    conf.max_pending_bytes = 512 * 1024;
    conf.max_write_bytes = 16 * 1024;
    tracker_init(&t);
    struct stratus_wal *wal = wal_up(&conf, NULL);
    if (!wal)
        return;
    uint32_t appended = 0;
    int rc = 0;
    while ((rc = append_rec(wal, appended, 8000, &t, NULL)) == 0)
        appended++;
    CHECK_EQ(rc, STRATUS_ENOMEM);
    tracker_wait(&t, appended, 500);
    uint64_t done = tracker_wait(&t, 0, 0);
    printf("ring full: %u appended, %llu durable before trim\n", appended,
           (unsigned long long)done);
    CHECK(done < appended);
    CHECK(done * 8000 < ring);
    struct stratus_wal_stats st;
    stratus_wal_get_stats(wal, &st);
    CHECK(st.pending_bytes > ring);
    usleep(100000);
    CHECK_EQ(tracker_wait(&t, 0, 0), done); /* nothing moves without a trim */
    /* trim releases: keep trimming to durable until every append completed */
    int64_t until = stratus_mono_ms() + 10000;
    while (tracker_wait(&t, 0, 0) < appended && stratus_mono_ms() < until) {
        stratus_wal_get_stats(wal, &st);
        CHECK_EQ(stratus_wal_trim(wal, st.durable_lsn, &eb), 0);
        tracker_wait(&t, tracker_wait(&t, 0, 0) + 1, 50);
    }
    CHECK_EQ(tracker_wait(&t, 0, 0), appended);
    CHECK_EQ(t.errors, 0);
    CHECK_EQ(t.order_violations, 0);
    CHECK_EQ(append_rec(wal, 99999, 8000, &t, NULL), 0);
    CHECK_EQ(tracker_wait(&t, appended + 1, 5000), appended + 1);
    /* too large for the ring */
    unsigned char *big = calloc(1, ring);
    struct iovec iov = {big, ring / 2};
    CHECK_EQ(stratus_wal_append(wal, &iov, 1, on_done, &t, NULL), STRATUS_ERANGE);
    free(big);
    stratus_wal_close(wal);
    tracker_fini(&t);
    unlink(g_path);
}

/* ---- 6. close with a full ring: the unwritten records complete with ECLOSED ------------ */

static void test_close_full(const char *dir)
{
    struct tracker t;
    const uint64_t ring = 128 * 1024;

    snprintf(g_path, sizeof g_path, "%s/closefull.wal", dir);
    unlink(g_path);
    struct stratus_wal_conf conf = conf_for(g_path, ring);
    conf.max_pending_bytes = 512 * 1024;
    conf.max_write_bytes = 16 * 1024;
    tracker_init(&t);
    struct stratus_wal *wal = wal_up(&conf, NULL);
    if (!wal)
        return;
    uint32_t n = 0;
    while (n < 40 && append_rec(wal, n, 8000, &t, NULL) == 0)
        n++;
    CHECK_EQ(n, 40);
    stratus_wal_close(wal);
    CHECK_EQ(t.done, n);
    CHECK(t.errors > 0);
    CHECK_EQ(t.order_violations, 0);
    struct collect c = {0};
    wal = wal_up(&conf, &c);
    CHECK_EQ(c.n + t.errors, n);
    stratus_wal_close(wal);
    collect_free(&c);
    tracker_fini(&t);
    unlink(g_path);
}

/* ---- 6b. a write that fails --------------------------------------------------------------- */

/* Appends under a lock that each completion also takes (as an append runs under its
 * partition's lock and append_wal_done takes it). */
struct locked_tracker {
    pthread_mutex_t lock;
    struct tracker t;
};

static void on_done_locked(void *arg, int err, uint64_t lsn)
{
    struct locked_tracker *lt = arg;
    pthread_mutex_lock(&lt->lock);
    pthread_mutex_unlock(&lt->lock);
    on_done(&lt->t, err, lsn);
}

static int append_locked(struct stratus_wal *wal, struct locked_tracker *lt, uint32_t id)
{
    unsigned char buf[3000];
    size_t n = wr_rec_make(buf, id, sizeof buf);
    struct iovec iov = {buf, n};
    pthread_mutex_lock(&lt->lock);
    int rc = stratus_wal_append(wal, &iov, 1, on_done_locked, lt, NULL);
    pthread_mutex_unlock(&lt->lock);
    return rc;
}

struct fail_appender {
    struct stratus_wal *wal;
    struct locked_tracker *lt;
    uint32_t first, accepted;
};

static void *fail_appender_main(void *arg)
{
    struct fail_appender *a = arg;
    for (uint32_t i = 0; i < 500; i++) {
        if (append_locked(a->wal, a->lt, a->first + i) != 0)
            break;
        a->accepted++;
    }
    return NULL;
}

/* The WAL's file descriptor is swapped for a read-only one (found through /proc/self/fd), so
 * the next writes really fail: their records complete with STRATUS_EIO, never on the
 * appending thread (it holds the lock the completions take: no deadlock), later appends are
 * refused, and close() returns. */
static void test_write_failure(const char *dir)
{
    struct locked_tracker lt;
    char link[64], target[600];

    snprintf(g_path, sizeof g_path, "%s/fail.wal", dir);
    unlink(g_path);
    struct stratus_wal_conf conf = conf_for(g_path, 4u << 20);
    pthread_mutex_init(&lt.lock, NULL);
    tracker_init(&lt.t);
    struct stratus_wal *wal = wal_up(&conf, NULL);
    if (!wal)
        return;
    for (uint32_t i = 0; i < 10; i++)
        CHECK_EQ(append_locked(wal, &lt, i), 0);
    CHECK_EQ(tracker_wait(&lt.t, 10, 10000), 10);
    CHECK_EQ(lt.t.errors, 0);

    int walfd = -1;
    for (int fd = 0; fd < 1024 && walfd < 0; fd++) {
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t k = readlink(link, target, sizeof target - 1);
        if (k > 0) {
            target[k] = 0;
            if (strcmp(target, g_path) == 0)
                walfd = fd;
        }
    }
    CHECK(walfd >= 0);
    int ro = open(g_path, O_RDONLY);
    CHECK(ro >= 0);
    CHECK_EQ(dup2(ro, walfd), walfd);
    close(ro);

    /* four threads append until refused: records pile up behind the failing write, and some
     * batches are claimed (given up) while their appenders still copy */
    struct fail_appender fa[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        fa[i] = (struct fail_appender){wal, &lt, 1000u * (uint32_t)(i + 1), 0};
        pthread_create(&th[i], NULL, fail_appender_main, &fa[i]);
    }
    uint32_t appended = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        appended += fa[i].accepted;
    }
    CHECK(appended > 0);
    CHECK_EQ(tracker_wait(&lt.t, 10 + appended, 10000), 10 + appended);
    CHECK_EQ(lt.t.errors, appended); /* each record after the swap failed */
    CHECK_EQ(lt.t.order_violations, 0);
    CHECK_EQ(append_locked(wal, &lt, 99), STRATUS_EIO);
    stratus_wal_close(wal);
    printf("write failure: %u appends failed and completed, later appends refused\n", appended);
    tracker_fini(&lt.t);
    pthread_mutex_destroy(&lt.lock);
    unlink(g_path);
}

/* ---- reference records: large data written in place from an aligned request frame -------- */

struct ref_ids {
    uint64_t lsn[400];
    uint32_t head[400], skip[400], len[400];
    int is_ref[400];
};

/* Appends record id (len bytes) as a produce request would: its first head bytes from a
 * separate buffer, the rest from a 512-aligned frame where it starts at an odd offset, among
 * bytes that are not the record's (scribbled after the append: they must not matter). */
static int append_framed(struct stratus_wal *wal, uint32_t id, uint32_t len, uint32_t head,
                         int with_owner, struct tracker *t, struct ref_ids *r)
{
    unsigned char *rec = malloc(len);
    size_t n = wr_rec_make(rec, id, len);
    uint32_t at = 1 + id * 37u % 700u;
    unsigned char *frame = stratus_rcbuf_new_aligned(at + n - head + 100, 512);
    memset(frame, 0xA5, at);
    memcpy(frame + at, rec + head, n - head);
    memset(frame + at + n - head, 0x5A, 100);
    size_t d = n - head, a = d / 3;
    struct iovec iov[3] = {{rec, head}, {frame + at, a}, {frame + at + a, d - a}};
    int64_t crcs[3] = {-1, -1, (int64_t)stratus_crc32c(0, frame + at + a, d - a)};
    int rc = stratus_wal_append_ref(wal, iov, crcs, 3, 1, with_owner ? frame : NULL, on_done, t,
                                    &r->lsn[id]);
    memset(frame, 0xEE, at); /* not the record's: not written, or written but not checked */
    memset(frame + at + n - head, 0xEE, 100);
    r->head[id] = head;
    r->skip[id] = at % 512;
    r->len[id] = (uint32_t)n;
    r->is_ref[id] = with_owner && d >= 64 * 1024;
    stratus_rcbuf_unref(frame); /* the WAL keeps its own reference until the write is done */
    free(rec);
    return rc;
}

/* The version fields of the two superblock slots. */
static void sb_versions(const char *path, uint32_t v[2])
{
    unsigned char b[12];
    int fd = open(path, O_RDONLY);
    v[0] = v[1] = 0;
    if (fd < 0)
        return;
    for (int i = 0; i < 2; i++)
        if (pread(fd, b, sizeof b, (off_t)i * 4096) == (ssize_t)sizeof b)
            memcpy(&v[i], b + 8, 4);
    close(fd);
}

/* The LSN of the first byte of the data of REF record id (wal.c's layout). */
static uint64_t ref_data_lsn(const struct ref_ids *r, uint32_t id)
{
    uint64_t s = (r->lsn[id] + 32 + 16 + r->head[id] + 511) / 512 * 512;
    return s + r->skip[id];
}

static void test_ref_records(const char *dir, int copy_always, int buffered)
{
    enum { N = 400 };
    struct tracker t;
    struct collect c = {0};
    static struct ref_ids r;
    struct stratus_errbuf eb;
    struct stratus_wal_stats st;
    uint64_t refs = 0;
    uint32_t kept_from = 0;

    memset(&r, 0, sizeof r);
    snprintf(g_path, sizeof g_path, "%s/ref.wal", dir);
    unlink(g_path);
    struct stratus_wal_conf conf = conf_for(g_path, 16u << 20);
    conf.max_write_bytes = 1u << 20;
    conf.max_pending_bytes = 256u << 20;
    conf.copy_always = copy_always;
    conf.force_buffered = buffered;
    tracker_init(&t);
    struct stratus_wal *wal = wal_up(&conf, NULL);
    if (!wal)
        return;
    /* sizes from 8 KiB (copied: under 64 KiB) to 1.3 MiB, some without an owner, in held
     * groups (several REF and DATA records share writes); ~5 laps of the 16 MiB ring */
    for (uint32_t i = 0; i < N; i++) {
        uint32_t len = i % 7 == 3 ? 8000 + i * 13u : 60000 + i * 2654435761u % 1300000u;
        int owner = i % 11 != 5;
        if (i % 4 == 0)
            stratus_wal_hold(wal);
        CHECK_EQ(append_framed(wal, i, len, 8 + i % 50, owner, &t, &r), 0);
        refs += r.is_ref[i];
        if (i % 4 == 3) {
            stratus_wal_release(wal);
            CHECK_EQ(tracker_wait(&t, i + 1, 20000), i + 1);
            stratus_wal_get_stats(wal, &st);
            while (kept_from < i && st.durable_lsn - r.lsn[kept_from] > (6u << 20))
                kept_from++;
            CHECK_EQ(stratus_wal_trim(wal, r.lsn[kept_from], &eb), 0);
        }
    }
    CHECK_EQ(tracker_wait(&t, N, 20000), N);
    CHECK_EQ(t.errors, 0);
    CHECK_EQ(t.order_violations, 0);
    stratus_wal_get_stats(wal, &st);
    printf("ref records (%s%s): %llu of %d in place, %.1f laps, %llu writes\n",
           st.direct_io ? "O_DIRECT" : "buffered", copy_always ? ", copy_always" : "",
           (unsigned long long)st.ref_records, N, (double)st.head_lsn / (16 << 20),
           (unsigned long long)st.writes);
    CHECK_EQ(st.ref_records, copy_always ? 0 : refs);
    CHECK(refs > N / 2);
    CHECK(st.head_lsn > 4ull * (16u << 20));
    uint64_t trim = st.trim_lsn;
    stratus_wal_close(wal);
    /* a ring that may hold REF records says so in both superblock slots (version 2: builds
     * before REF records refuse it rather than stop their replay at the first one) */
    uint32_t v[2];
    sb_versions(g_path, v);
    CHECK_EQ(v[0], copy_always ? 1u : 2u);
    CHECK_EQ(v[1], copy_always ? 1u : 2u);

    /* every record after the trim point comes back intact, in order, at its LSN */
    uint32_t first = 0;
    while (first < N && r.lsn[first] < trim)
        first++;
    wal = wal_up(&conf, &c);
    CHECK_EQ(c.n, N - first);
    int mism = 0;
    for (size_t k = 0; k < c.n; k++)
        mism += c.ids[k] != first + k || c.lsns[k] != r.lsn[first + k];
    CHECK_EQ(mism, 0);
    collect_free(&c);
    stratus_wal_close(wal);
    if (copy_always)
        goto out;

    /* a span's bytes outside the data are not checked; a byte of the data is */
    uint32_t last = N - 1;
    while (!r.is_ref[last])
        last--;
    uint32_t j = last - 1;
    while (!r.is_ref[j] || r.skip[j] == 0)
        j--;
    corrupt_at(g_path, 16u << 20, ref_data_lsn(&r, j) - 1, 0);
    wal = wal_up(&conf, &c);
    CHECK_EQ(c.n, N - first);
    collect_free(&c);
    stratus_wal_close(wal);
    corrupt_at(g_path, 16u << 20, ref_data_lsn(&r, last) + r.len[last] / 2, 0);
    wal = wal_up(&conf, &c);
    CHECK_EQ(c.n, last - first); /* stops at the damaged record */
    if (c.n)
        CHECK_EQ(c.ids[c.n - 1], last - 1);
    collect_free(&c);
    stratus_wal_close(wal);
    /* copying from now on does not make the REF records still in the ring readable by an
     * older build: version 2 stays */
    conf.copy_always = 1;
    wal = wal_up(&conf, &c);
    stratus_wal_close(wal);
    collect_free(&c);
    sb_versions(g_path, v);
    CHECK_EQ(v[0], 2u);
    CHECK_EQ(v[1], 2u);
out:
    tracker_fini(&t);
    unlink(g_path);
}

/* ---- 7. API edges ------------------------------------------------------------------------ */

static void test_edges(const char *dir)
{
    struct tracker t;
    struct stratus_wal *wal = NULL;
    struct stratus_errbuf eb;
    unsigned char b[16] = {0};
    struct iovec iov = {b, sizeof b};

    snprintf(g_path, sizeof g_path, "%s/edges.wal", dir);
    unlink(g_path);
    struct stratus_wal_conf conf = conf_for(g_path, 1u << 20);
    tracker_init(&t);
    CHECK_EQ(stratus_wal_open(&conf, &wal, &eb), 0);
    CHECK_EQ(stratus_wal_append(wal, &iov, 1, on_done, &t, NULL), STRATUS_EINVAL); /* not started */
    CHECK_EQ(stratus_wal_start(wal, &eb), 0);
    CHECK_EQ(stratus_wal_replay(wal, on_replay, NULL, &eb), STRATUS_EINVAL);
    CHECK_EQ(stratus_wal_append(wal, &iov, 0, on_done, &t, NULL), STRATUS_EINVAL); /* empty */
    stratus_wal_close(wal);
    /* a garbage superblock is refused, not trusted */
    int fd = open(g_path, O_RDWR);
    CHECK(fd >= 0);
    CHECK_EQ(pwrite(fd, "garbage!", 8, 0), 8);
    CHECK_EQ(pwrite(fd, "garbage!", 8, 4096), 8);
    close(fd);
    CHECK_EQ(stratus_wal_open(&conf, &wal, &eb), STRATUS_ECORRUPT);
    /* one torn superblock slot: the other one is used */
    unlink(g_path);
    CHECK_EQ(stratus_wal_open(&conf, &wal, &eb), 0);
    CHECK_EQ(stratus_wal_start(wal, &eb), 0); /* writes slot 0 (seq 2) */
    stratus_wal_close(wal);
    fd = open(g_path, O_RDWR);
    CHECK_EQ(pwrite(fd, "x", 1, 20), 1); /* slot 0 torn */
    close(fd);
    CHECK_EQ(stratus_wal_open(&conf, &wal, &eb), 0);
    if (wal)
        stratus_wal_close(wal);
    tracker_fini(&t);
    unlink(g_path);
}

/* ---- 11. known CRCs (stratus_wal_append_crc) and holds ----------------------------------- */

/* Appends record id in three pieces, the middle one with a CRC given by the caller (right, or
 * deliberately wrong). */
static int append_known(struct stratus_wal *wal, uint32_t id, uint32_t len, int wrong,
                        struct tracker *t)
{
    unsigned char *buf = malloc(len);
    size_t n = wr_rec_make(buf, id, len);
    size_t a = n / 3, b = n / 3;
    struct iovec iov[3] = {{buf, a}, {buf + a, b}, {buf + a + b, n - a - b}};
    int64_t crcs[3] = {-1, (int64_t)stratus_crc32c(0, buf + a, b), -1};
    if (wrong)
        crcs[1] ^= 1;
    int rc = stratus_wal_append_crc(wal, iov, crcs, 3, on_done, t, NULL);
    free(buf);
    return rc;
}

static void test_known_crc(const char *dir)
{
    struct tracker t;
    struct collect c = {0};
    snprintf(g_path, sizeof g_path, "%s/crc.wal", dir);
    unlink(g_path);
    struct stratus_wal_conf conf = conf_for(g_path, 4u << 20);
    tracker_init(&t);
    struct stratus_wal *wal = wal_up(&conf, NULL);
    if (!wal)
        return;
    /* 40 records, in held groups of 4 (one produce request's partitions) */
    for (uint32_t id = 0; id < 40; id += 4) {
        stratus_wal_hold(wal);
        for (uint32_t k = 0; k < 4; k++)
            CHECK_EQ(append_known(wal, id + k, 30 + size_for(id + k), 0, &t), 0);
        stratus_wal_release(wal);
    }
    CHECK_EQ(tracker_wait(&t, 40, 10000), 40);
    /* then one whose known CRC is wrong: written, but replay must refuse it */
    CHECK_EQ(append_known(wal, 40, 5000, 1, &t), 0);
    CHECK_EQ(tracker_wait(&t, 41, 10000), 41);
    CHECK_EQ(t.errors, 0);
    stratus_wal_close(wal);
    wal = wal_up(&conf, &c);
    CHECK_EQ(c.n, 40);
    for (size_t i = 0; i < c.n; i++)
        CHECK_EQ(c.ids[i], (uint32_t)i);
    if (wal)
        stratus_wal_close(wal);
    collect_free(&c);
    tracker_fini(&t);
    unlink(g_path);
}

/* ---- held requests: one write per request, no lost wakeup ---------------------------------- */

struct requester {
    struct stratus_wal *wal;
    struct tracker t;
    uint32_t first, count;
    int failures, timeouts;
};

/* Like a produce request with acks=all: hold, 1-3 appends, release, wait for the acks, again.
 * Nothing else happens while a request waits, so a writer not woken for its batch shows up as
 * a timeout. */
static void *requester_main(void *arg)
{
    struct requester *r = arg;
    uint64_t want = 0;
    for (uint32_t i = 0; i < r->count; i++) {
        uint32_t id = r->first + i * 3, n = 1 + i % 3;
        stratus_wal_hold(r->wal);
        for (uint32_t k = 0; k < n; k++)
            if (append_rec(r->wal, id + k, 50 + (id + k) % 3000, &r->t, NULL) != 0)
                r->failures++;
        stratus_wal_release(r->wal);
        want += n;
        if (tracker_wait(&r->t, want, 5000) < want) {
            r->timeouts++;
            break;
        }
    }
    return NULL;
}

/* Starts n requesters of per requests each (per: a multiple of 3), ids from first. */
static void requesters_start(struct requester *rq, pthread_t *th, int n, struct stratus_wal *wal,
                             uint32_t first, uint32_t per)
{
    for (int i = 0; i < n; i++) {
        memset(&rq[i], 0, sizeof rq[i]);
        rq[i].wal = wal;
        rq[i].first = first + (uint32_t)i * per * 3;
        rq[i].count = per;
        tracker_init(&rq[i].t);
        pthread_create(&th[i], NULL, requester_main, &rq[i]);
    }
}

/* Joins them: every request acknowledged in time, without error, in LSN order. */
static void requesters_join(struct requester *rq, pthread_t *th, int n, uint32_t per)
{
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(rq[i].failures, 0);
        CHECK_EQ(rq[i].timeouts, 0);
        CHECK_EQ(rq[i].t.errors, 0);
        CHECK_EQ(rq[i].t.order_violations, 0);
        CHECK_EQ(rq[i].t.done, (uint64_t)per * 2); /* 1, 2, 3 appends in turn */
    }
}

static void test_hold_wakeups(const char *dir)
{
    enum { NTHREADS = 4, PER = 300 };
    struct requester rq[NTHREADS];
    pthread_t th[NTHREADS];
    struct stratus_wal_stats s0, s1;

    snprintf(g_path, sizeof g_path, "%s/hold.wal", dir);
    unlink(g_path);
    struct stratus_wal_conf conf = conf_for(g_path, 16u << 20);
    struct stratus_wal *wal = wal_up(&conf, NULL);
    if (!wal)
        return;
    /* alone, a held request's appends share one write */
    memset(&rq[0], 0, sizeof rq[0]);
    tracker_init(&rq[0].t);
    /* first one record alone and its completion: whatever the start of the run writes (the
     * generation record's batch) is done before the rounds count writes (on a loaded machine
     * it could land inside round 0) */
    CHECK_EQ(append_rec(wal, 99999, 100, &rq[0].t, NULL), 0);
    CHECK_EQ(tracker_wait(&rq[0].t, 1, 5000), 1);
    for (int round = 0; round < 5; round++) {
        stratus_wal_get_stats(wal, &s0);
        stratus_wal_hold(wal);
        for (uint32_t k = 0; k < 4; k++)
            CHECK_EQ(append_rec(wal, (uint32_t)round * 4 + k, 700, &rq[0].t, NULL), 0);
        stratus_wal_release(wal);
        CHECK_EQ(tracker_wait(&rq[0].t, (uint64_t)(round + 1) * 4 + 1, 5000),
                 (uint64_t)(round + 1) * 4 + 1);
        stratus_wal_get_stats(wal, &s1);
        CHECK_EQ(s1.writes - s0.writes, 1);
    }
    tracker_fini(&rq[0].t);
    /* several at once, each waiting for its own acks */
    requesters_start(rq, th, NTHREADS, wal, 1000, PER);
    requesters_join(rq, th, NTHREADS, PER);
    stratus_wal_get_stats(wal, &s1);
    printf("hold wakeups: %llu appends in %llu writes\n", (unsigned long long)s1.appends,
           (unsigned long long)s1.writes);
    stratus_wal_close(wal);
    for (int i = 0; i < NTHREADS; i++)
        tracker_fini(&rq[i].t);
    unlink(g_path);
}

/* ---- requests on an event loop's thread ----------------------------------------------- */

static pthread_t g_loop_thread;
static atomic_int g_done_on_loop, g_done_elsewhere;

static void on_done_where(void *arg, int err, uint64_t lsn)
{
    if (pthread_equal(pthread_self(), g_loop_thread))
        atomic_fetch_add(&g_done_on_loop, 1);
    else
        atomic_fetch_add(&g_done_elsewhere, 1);
    on_done(arg, err, lsn);
}

struct loop_reqs {
    struct stratus_wal *wal;
    struct tracker *t;
    uint32_t first, nreq; /* requests of 1, 2, 3, 1... appends, each under a hold */
    atomic_int failures;
};

static uint32_t loop_reqs_appends(uint32_t nreq)
{
    uint32_t n = 0;
    for (uint32_t r = 0; r < nreq; r++)
        n += 1 + r % 3;
    return n;
}

static void loop_reqs_task(void *arg)
{
    struct loop_reqs *q = arg;
    uint32_t id = q->first;
    for (uint32_t r = 0; r < q->nreq; r++) {
        stratus_wal_hold(q->wal);
        for (uint32_t k = 0; k < 1 + r % 3; k++, id++) {
            unsigned char buf[600];
            size_t n = wr_rec_make(buf, id, 100 + id % 400);
            struct iovec iov = {buf, n};
            if (stratus_wal_append(q->wal, &iov, 1, on_done_where, q->t, NULL) != 0)
                atomic_fetch_add(&q->failures, 1);
        }
        stratus_wal_release(q->wal);
    }
}

static void *wal_loop_main(void *arg)
{
    g_loop_thread = pthread_self();
    stratus_loop_run(arg);
    return NULL;
}

static void loop_stop_task(void *arg)
{
    stratus_loop_stop(arg);
}

static void test_loop_writes(const char *dir, int writers_only)
{
    struct stratus_errbuf eb = {{0}};
    struct stratus_wal_stats s0, s1;
    struct tracker t;
    static struct loop_reqs q5[5]; /* one per round: a task may still run when its acks come */
    pthread_t lt;

    snprintf(g_path, sizeof g_path, "%s/loopw.wal", dir);
    unlink(g_path);
    struct stratus_wal_conf conf = conf_for(g_path, 16u << 20);
    conf.writers_only = writers_only;
    struct stratus_wal *wal = wal_up(&conf, NULL);
    struct stratus_loop *loop = stratus_loop_new("walloop", &eb);
    CHECK(wal && loop);
    if (!wal || !loop)
        return;
    CHECK_EQ(pthread_create(&lt, NULL, wal_loop_main, loop), 0);
    tracker_init(&t);
    /* the generation record's batch, appended on the loop too: a writer thread that wrote it
     * could still be in its delivery pass (after the callback) when round 0's batch is done,
     * and would then deliver round 0 itself, as the WAL allows */
    static struct loop_reqs q0;
    memset(&q0, 0, sizeof q0);
    q0.wal = wal;
    q0.t = &t;
    q0.first = 90000;
    q0.nreq = 1;
    CHECK_EQ(stratus_loop_post(loop, loop_reqs_task, &q0), 0);
    CHECK_EQ(tracker_wait(&t, 1, 5000), 1);
    uint64_t want = 1;
    atomic_store(&g_done_on_loop, 0);
    atomic_store(&g_done_elsewhere, 0);
    /* one task = five requests in one loop iteration: one write, made by the loop thread */
    for (int round = 0; round < 5; round++) {
        struct loop_reqs *q = &q5[round];
        memset(q, 0, sizeof *q);
        q->wal = wal;
        q->t = &t;
        q->first = 1000 + (uint32_t)round * 100;
        q->nreq = 5;
        stratus_wal_get_stats(wal, &s0);
        CHECK_EQ(stratus_loop_post(loop, loop_reqs_task, q), 0);
        want += loop_reqs_appends(q->nreq);
        CHECK_EQ(tracker_wait(&t, want, 5000), want);
        stratus_wal_get_stats(wal, &s1);
        CHECK_EQ(atomic_load(&q->failures), 0);
        if (!writers_only) /* writers may take the batch between two of the requests */
            CHECK_EQ(s1.writes - s0.writes, 1);
        CHECK_EQ(s1.loop_writes - s0.loop_writes, writers_only ? 0 : 1);
    }
    uint64_t appended = want - 1;
    CHECK_EQ((uint64_t)atomic_load(&g_done_on_loop), writers_only ? 0 : appended);
    CHECK_EQ((uint64_t)atomic_load(&g_done_elsewhere), writers_only ? appended : 0);

    /* the loop's requests beside plain threads' (whose batches the writers take): all done,
     * once each, in LSN order */
    enum { NTHREADS = 2, PER = 300, NTASKS = 100 }; /* PER: a multiple of 3 */
    struct requester rq[NTHREADS];
    pthread_t th[NTHREADS];
    static struct loop_reqs qs[NTASKS];
    requesters_start(rq, th, NTHREADS, wal, 100000, PER);
    stratus_wal_get_stats(wal, &s0);
    for (int i = 0; i < NTASKS; i++) {
        memset(&qs[i], 0, sizeof qs[i]);
        qs[i].wal = wal;
        qs[i].t = &t;
        qs[i].first = 10000 + (uint32_t)i * 10;
        qs[i].nreq = 1 + (uint32_t)i % 4;
        want += loop_reqs_appends(qs[i].nreq);
        CHECK_EQ(stratus_loop_post(loop, loop_reqs_task, &qs[i]), 0);
        usleep(200 + 300 * (i % 3));
    }
    CHECK_EQ(tracker_wait(&t, want, 10000), want);
    requesters_join(rq, th, NTHREADS, PER);
    for (int i = 0; i < NTHREADS; i++)
        tracker_fini(&rq[i].t);
    for (int i = 0; i < NTASKS; i++)
        CHECK_EQ(atomic_load(&qs[i].failures), 0);
    CHECK_EQ(t.errors, 0);
    CHECK_EQ(t.order_violations, 0);
    stratus_wal_get_stats(wal, &s1);
    if (writers_only)
        CHECK_EQ(s1.loop_writes, 0);
    printf("loop writes (writers_only=%d): %llu of %llu writes beside 2 appending threads\n",
           writers_only, (unsigned long long)(s1.loop_writes - s0.loop_writes),
           (unsigned long long)(s1.writes - s0.writes));
    CHECK_EQ(stratus_loop_post(loop, loop_stop_task, loop), 0);
    pthread_join(lt, NULL);
    stratus_wal_close(wal);
    stratus_loop_free(loop);
    tracker_fini(&t);
    unlink(g_path);
}

static void make_dir(char *out, size_t n, const char *base)
{
    snprintf(out, n, "%s/stratus-wal-test-%d", base, (int)getpid());
    mkdir(out, 0755);
}

int main(void)
{
    char disk[256], shm[256];
    stratus_log_level = STRATUS_LOG_WARN;
    make_dir(disk, sizeof disk, "/var/tmp");
    make_dir(shm, sizeof shm, "/dev/shm");

    test_threads(disk, 0);
    test_threads(shm, 1);
    test_trim(disk);
    test_laps(disk);
    test_laps(shm);
    test_large_records(disk);
    test_torn_tail(disk);
    test_torn_inside_batch(disk);
    test_ring_full(disk);
    test_close_full(disk);
    test_close_full(shm);
    test_write_failure(disk);
    test_write_failure(shm);
    test_edges(shm);
    test_known_crc(disk);
    test_ref_records(disk, 0, 0);
    test_ref_records(shm, 0, 1);
    test_ref_records(disk, 1, 0);
    test_hold_wakeups(disk);
    test_hold_wakeups(shm);
    test_loop_writes(disk, 0);
    test_loop_writes(shm, 0);
    test_loop_writes(disk, 1);

    /* the O_DIRECT path is taken on a real disk; force_buffered and tmpfs fall back */
    {
        struct stratus_wal_stats st;
        struct stratus_wal *wal;
        struct stratus_errbuf eb;
        snprintf(g_path, sizeof g_path, "%s/mode.wal", disk);
        struct stratus_wal_conf conf = conf_for(g_path, 1u << 20);
        CHECK_EQ(stratus_wal_open(&conf, &wal, &eb), 0);
        stratus_wal_get_stats(wal, &st);
        CHECK_EQ(st.direct_io, 1);
        stratus_wal_close(wal);
        unlink(g_path);
        snprintf(g_path, sizeof g_path, "%s/mode.wal", shm);
        conf.force_buffered = 1;
        CHECK_EQ(stratus_wal_open(&conf, &wal, &eb), 0);
        stratus_wal_get_stats(wal, &st);
        CHECK_EQ(st.direct_io, 0);
        struct tracker t;
        tracker_init(&t);
        CHECK_EQ(stratus_wal_start(wal, &eb), 0);
        CHECK_EQ(append_rec(wal, 1, 100, &t, NULL), 0);
        CHECK_EQ(tracker_wait(&t, 1, 5000), 1);
        stratus_wal_get_stats(wal, &st);
        CHECK(st.fsyncs > 0);
        stratus_wal_close(wal);
        tracker_fini(&t);
        unlink(g_path);
        conf.force_buffered = 0;
        CHECK_EQ(stratus_wal_open(&conf, &wal, &eb), 0);
        stratus_wal_get_stats(wal, &st);
        printf("tmpfs without force_buffered: direct_io=%d\n", st.direct_io);
        stratus_wal_close(wal);
        unlink(g_path);
    }
    rmdir(disk);
    rmdir(shm);
    TEST_REPORT();
}
