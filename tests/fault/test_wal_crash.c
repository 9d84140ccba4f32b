/* link: stratus_stream stratus_util */
/* test_wal_crash.c - the WAL survives SIGKILL at any point. A forked child replays the WAL,
 * then appends numbered records as fast as it can (trimming old ones as it goes) and, for each
 * completion, writes the acknowledged number to a pipe; before each trim it writes the first
 * number it keeps. The parent kills it at a random moment, reads what was acknowledged, reopens
 * the WAL and checks that the records are consecutive, intact, in order, without duplicates,
 * that every acknowledged record is there, and that no kept record was lost. Ten rounds on
 * the same file, so later rounds also recover from earlier crashes (stale writes of a dead run
 * past its restart point must never come back). One record in 32 is a large one written in
 * place from an aligned frame (a REF record).
 * SPDX-License-Identifier: Apache-2.0
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stream/wal.h"
#include "test.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/log.h"

#define ROUNDS 10
#define RING (16u << 20)
#define WINDOW 200 /* records kept un-trimmed behind the acknowledged ones */
#define LSN_SLOTS 4096

enum { MSG_ACK = 1, MSG_KEEP = 2 };
struct msg {
    uint64_t type, value;
};

/* One record in 32 is large (64-160 KiB) and goes in place from an aligned frame (a REF
 * record, as produce's large batches do); the rest are up to 20 KB and copied. */
static int rec_big(uint64_t seq)
{
    return seq % 32 == 7;
}

static uint32_t rec_len(uint64_t seq)
{
    uint64_t x = seq * 0x9E3779B97F4A7C15ull;
    return rec_big(seq) ? 65600 + (uint32_t)((x >> 40) % 98304) : 16 + (uint32_t)((x >> 40) % 20000);
}

static size_t rec_make(unsigned char *buf, uint64_t seq)
{
    uint32_t len = rec_len(seq);
    memcpy(buf, &seq, 8);
    memcpy(buf + 8, &len, 4);
    for (uint32_t i = 12; i < len; i++)
        buf[i] = (unsigned char)(seq + i * 13u);
    return len;
}

static int rec_ok(const unsigned char *buf, size_t len, uint64_t *seq)
{
    uint32_t l;
    if (len < 16)
        return 0;
    memcpy(seq, buf, 8);
    memcpy(&l, buf + 8, 4);
    if (l != len || l != rec_len(*seq))
        return 0;
    for (uint32_t i = 12; i < len; i++)
        if (buf[i] != (unsigned char)(*seq + i * 13u))
            return 0;
    return 1;
}

struct scan {
    uint64_t first, last, n;
    int bad, gaps;
};

static int on_replay(void *arg, uint64_t lsn, const void *rec, size_t len)
{
    struct scan *s = arg;
    uint64_t seq;
    (void)lsn;
    if (!rec_ok(rec, len, &seq)) {
        s->bad++;
        return 0;
    }
    if (s->n == 0)
        s->first = seq;
    else if (seq != s->last + 1)
        s->gaps++;
    s->last = seq;
    s->n++;
    return 0;
}

static struct stratus_wal_conf conf_for(const char *path)
{
    struct stratus_wal_conf c = {0};
    c.path = path;
    c.size_bytes = RING;
    c.max_write_bytes = 256 * 1024;
    c.max_inflight = 4;
    c.max_pending_bytes = 4u << 20;
    return c;
}

/* ---- the child -------------------------------------------------------------------------- */

static int g_pipe;
static volatile uint64_t g_acked = UINT64_MAX; /* highest acknowledged seq */

static void child_done(void *arg, int err, uint64_t lsn)
{
    (void)lsn;
    if (err)
        _exit(3);
    struct msg m = {MSG_ACK, (uint64_t)(uintptr_t)arg};
    if (write(g_pipe, &m, sizeof m) != sizeof m)
        _exit(4);
    __atomic_store_n(&g_acked, m.value, __ATOMIC_RELEASE);
}

static int child_main(const char *path, int fd)
{
    struct stratus_wal *wal;
    struct stratus_errbuf eb;
    struct scan s = {0};
    static uint64_t lsn_of[LSN_SLOTS];
    static unsigned char buf[170000];
    struct stratus_wal_conf conf = conf_for(path);

    g_pipe = fd;
    if (stratus_wal_open(&conf, &wal, &eb) != 0 || stratus_wal_replay(wal, on_replay, &s, &eb) != 0 ||
        stratus_wal_start(wal, &eb) != 0) {
        fprintf(stderr, "child: %s\n", eb.msg);
        return 2;
    }
    uint64_t seq = s.n ? s.last + 1 : 0, kept = s.n ? s.first : 0;
    for (;;) {
        size_t len = rec_make(buf, seq);
        int rc;
        if (rec_big(seq)) { /* head copied, the rest written from the frame */
            size_t at = 1 + seq % 500;
            unsigned char *frame = stratus_rcbuf_new_aligned(at + len, 512);
            memcpy(frame + at, buf + 12, len - 12);
            struct iovec iov[2] = {{buf, 12}, {frame + at, len - 12}};
            rc = stratus_wal_append_ref(wal, iov, NULL, 2, 1, frame, child_done,
                                        (void *)(uintptr_t)seq, &lsn_of[seq % LSN_SLOTS]);
            stratus_rcbuf_unref(frame);
        } else {
            struct iovec iov = {buf, len};
            rc = stratus_wal_append(wal, &iov, 1, child_done, (void *)(uintptr_t)seq,
                                    &lsn_of[seq % LSN_SLOTS]);
        }
        if (rc == 0) {
            seq++;
        } else if (rc == STRATUS_ENOMEM) {
            usleep(50);
        } else {
            fprintf(stderr, "child: append: %s\n", stratus_err_name(rc));
            return 5;
        }
        uint64_t acked = __atomic_load_n(&g_acked, __ATOMIC_ACQUIRE);
        if (acked != UINT64_MAX && acked >= kept + 2 * WINDOW && seq - (acked - WINDOW) < LSN_SLOTS) {
            uint64_t keep = acked - WINDOW;
            struct msg m = {MSG_KEEP, keep};
            if (write(fd, &m, sizeof m) != sizeof m)
                return 6;
            if (stratus_wal_trim(wal, lsn_of[keep % LSN_SLOTS], &eb) != 0) {
                fprintf(stderr, "child: trim: %s\n", eb.msg);
                return 7;
            }
            kept = keep;
        }
    }
}

/* ---- the parent -------------------------------------------------------------------------- */

int main(void)
{
    char dir[256], path[300];
    uint64_t prev_last = 0;
    int have_prev = 0;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

    stratus_log_level = STRATUS_LOG_WARN;
    snprintf(dir, sizeof dir, "/var/tmp/stratus-wal-crash-%d", (int)getpid());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/crash.wal", dir);
    unlink(path);
    srand(seed);
    printf("seed %u\n", seed);

    for (int round = 0; round < ROUNDS; round++) {
        int p[2];
        CHECK_EQ(pipe(p), 0);
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            _exit(child_main(path, p[1]));
        }
        close(p[1]);
        /* kill points from a few ms (often during open/replay) to ~400 ms of appending */
        int kill_ms = round < 2 ? 2 + rand() % 20 : 10 + rand() % 400;
        int64_t deadline = stratus_mono_ms() + kill_ms;
        uint64_t max_acked = 0, acks = 0, keep = 0, ack_order = 0;
        int have_keep = 0, killed = 0;
        struct msg m;
        for (;;) {
            int64_t left = deadline - stratus_mono_ms();
            if (!killed && left <= 0) {
                kill(pid, SIGKILL);
                killed = 1;
            }
            struct pollfd pfd = {p[0], POLLIN, 0};
            if (poll(&pfd, 1, killed ? 1000 : (int)(left > 0 ? left : 0)) == 0)
                continue;
            ssize_t n = read(p[0], &m, sizeof m);
            if (n == 0)
                break;
            if (n < 0 && errno == EINTR)
                continue;
            if (n != (ssize_t)sizeof m) {
                CHECK_EQ(n, (ssize_t)sizeof m);
                break;
            }
            if (m.type == MSG_ACK) {
                if (acks && m.value <= max_acked)
                    ack_order++;
                max_acked = m.value;
                acks++;
            } else {
                keep = m.value;
                have_keep = 1;
            }
        }
        int status;
        waitpid(pid, &status, 0);
        close(p[0]);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        CHECK_EQ(ack_order, 0);

        struct stratus_wal *wal = NULL;
        struct stratus_errbuf eb;
        struct scan s = {0};
        struct stratus_wal_conf conf = conf_for(path);
        int rc = stratus_wal_open(&conf, &wal, &eb);
        CHECK_EQ(rc, 0);
        if (rc == STRATUS_ENOTFOUND || !wal) {
            fprintf(stderr, "open: %s\n", eb.msg);
            continue;
        }
        CHECK_EQ(stratus_wal_replay(wal, on_replay, &s, &eb), 0);
        stratus_wal_close(wal);
        printf("round %d: killed after %d ms, %llu acks (max %llu), replay %llu records %llu..%llu\n",
               round, kill_ms, (unsigned long long)acks, (unsigned long long)max_acked,
               (unsigned long long)s.n, (unsigned long long)s.first, (unsigned long long)s.last);
        CHECK_EQ(s.bad, 0);
        CHECK_EQ(s.gaps, 0);
        if (acks) {
            CHECK(s.n > 0 && s.last >= max_acked); /* every acknowledged record is there */
        }
        if (have_keep) {
            CHECK(s.n > 0 && s.first <= keep); /* nothing acknowledged and kept was lost */
        }
        if (have_prev) {
            CHECK(s.n > 0 && s.last >= prev_last); /* durable across crashes */
        }
        if (s.n) {
            prev_last = s.last;
            have_prev = 1;
        }
    }
    unlink(path);
    rmdir(dir);
    TEST_REPORT();
}
