/* limits.c - the machine's own limits, the ceiling the benchmark harness compares Stratus to:
 *   tcp     loopback TCP bandwidth: a sender thread writes 1 MiB buffers to a receiver thread
 *           over 127.0.0.1 for a few seconds.
 *   disk    aligned O_DIRECT|O_DSYNC sequential writes of 256 KiB and 1 MiB (the WAL's write
 *           sizes) to a preallocated file in the given directory, with 1 and 4 writers (the
 *           WAL keeps 4 writes in flight): MB/s and per-write latency p50/p99/p99.9/max.
 *           Then the ceiling of durable ingest with the WAL and storage-local on this one disk:
 *           every byte is written twice, by the 4 WAL writers (1 MiB overwrites of the ring
 *           file) and into a new 32 MiB object file (storage-local's put: 512 KiB direct
 *           writes, fsync, rename, directory fsync), the two kept in step (neither more than
 *           64 MiB ahead), so the figure is the rate at which both streams carry the bytes.
 *   memory  the first touch of fresh anonymous memory (512 MiB, one write per 4 KiB page),
 *           in 4 KiB pages and in transparent huge pages: what a process pays for memory it
 *           has not used before (a broker's warm-up, a WAL replay's log cache). On a VM whose
 *           host maps guest memory lazily, or takes freed guest memory back, this is dear.
 *   paced RATE SIZE  (only when asked) one thread making RATE O_DIRECT|O_DSYNC writes a
 *           second of SIZE bytes for -t seconds: a WAL's group-commit traffic with no broker,
 *           which the harness runs beside the mock as a reference for workload 5.
 * Usage: stratus-limits [-d DIR] [-t SECONDS] [tcp] [disk] [memory] [paced RATE SIZE]
 *        (tcp, disk and memory by default; DIR=/var/tmp)
 * Prints a human line per figure on stderr and one `RESULT {json}` line per figure on stdout.
 * The scratch file (DIR/stratus-limits.<pid>, 1 GiB) is removed at exit.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_SIZE (1024ull << 20)
#define TCP_BUF (1u << 20)

static double g_secs = 3.0;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- loopback TCP ---------------------------------------------------------------------- */
struct tcp_rx {
    int fd;
    uint64_t bytes;
    double cpu_s; /* the receiver thread's CPU time */
};

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *tcp_receiver(void *arg)
{
    struct tcp_rx *rx = arg;
    char *buf = malloc(TCP_BUF);
    double c0 = thread_cpu_s();
    for (;;) {
        ssize_t n = read(rx->fd, buf, TCP_BUF);
        if (n <= 0)
            break;
        rx->bytes += (uint64_t)n;
    }
    rx->cpu_s = thread_cpu_s() - c0;
    free(buf);
    return NULL;
}

static int run_tcp(void)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1) ||
        getsockname(ls, (struct sockaddr *)&a, &alen)) {
        perror("stratus-limits: tcp listen");
        return -1;
    }
    int cs = socket(AF_INET, SOCK_STREAM, 0);
    if (cs < 0 || connect(cs, (struct sockaddr *)&a, sizeof a)) {
        perror("stratus-limits: tcp connect");
        return -1;
    }
    setsockopt(cs, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct tcp_rx rx = {.fd = accept(ls, NULL, NULL)};
    if (rx.fd < 0) {
        perror("stratus-limits: accept");
        return -1;
    }
    pthread_t t;
    pthread_create(&t, NULL, tcp_receiver, &rx);
    char *buf = malloc(TCP_BUF);
    memset(buf, 0x5a, TCP_BUF);
    uint64_t t0 = mono_ns(), end = t0 + (uint64_t)(g_secs * 1e9), sent = 0;
    double c0 = thread_cpu_s();
    while (mono_ns() < end) {
        size_t off = 0;
        while (off < TCP_BUF) {
            ssize_t n = write(cs, buf + off, TCP_BUF - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                perror("stratus-limits: tcp write");
                return -1;
            }
            off += (size_t)n;
        }
        sent += TCP_BUF;
    }
    double tx_cpu = thread_cpu_s() - c0;
    shutdown(cs, SHUT_WR);
    pthread_join(t, NULL);
    double secs = (double)(mono_ns() - t0) / 1e9;
    double mbs = (double)rx.bytes / secs / 1e6;
    double gib = (double)sent / (1024.0 * 1024 * 1024);
    /* CPU seconds per GiB of each side: the sender's is the floor for any broker serving
     * Fetch over loopback TCP (one copy into the socket, and on loopback the receive-side
     * protocol work runs in the sender's context too) */
    fprintf(stderr, "limits tcp loopback: %.0f MB/s (1 MiB writes, %.1f s); CPU s/GiB sender "
            "%.3f, receiver %.3f\n", mbs, secs, tx_cpu / gib, rx.cpu_s / gib);
    printf("RESULT {\"limit\":\"tcp\",\"mb_s\":%.1f,\"secs\":%.2f,\"tx_cpu_s_gib\":%.3f,"
           "\"rx_cpu_s_gib\":%.3f}\n", mbs, secs, tx_cpu / gib, rx.cpu_s / gib);
    close(cs);
    close(rx.fd);
    close(ls);
    free(buf);
    return 0;
}

/* ---- O_DIRECT|O_DSYNC writes ------------------------------------------------------------- */
struct disk_w {
    pthread_t tid;
    int fd;
    size_t bs;
    uint64_t base, span; /* this writer's region of the file */
    uint64_t end_ns;
    uint32_t *lat_us;
    size_t nlat, cap;
    double cpu_s; /* the writer thread's CPU time over its writes */
    int err;
    /* lockstep with another stream (run_durable): bytes written by this side, by the other */
    _Atomic uint64_t *mine, *other;
};

#define STEP_LEAD (64ull << 20) /* how far one stream may run ahead of the other */

/* Waits while this side is more than STEP_LEAD ahead of the other; 0, or -1 at the end. */
static int step_wait(_Atomic uint64_t *mine, _Atomic uint64_t *other, uint64_t end_ns)
{
    while (mine && atomic_load(mine) > atomic_load(other) + STEP_LEAD) {
        if (mono_ns() >= end_ns)
            return -1;
        usleep(100);
    }
    return 0;
}

static void *disk_writer(void *arg)
{
    struct disk_w *w = arg;
    void *buf;
    if (posix_memalign(&buf, 4096, w->bs)) {
        w->err = ENOMEM;
        return NULL;
    }
    memset(buf, 0xa5, w->bs);
    double c0 = thread_cpu_s();
    uint64_t off = 0;
    while (mono_ns() < w->end_ns) {
        if (step_wait(w->mine, w->other, w->end_ns) < 0)
            break;
        uint64_t t0 = mono_ns();
        ssize_t n = pwrite(w->fd, buf, w->bs, (off_t)(w->base + off));
        if (n != (ssize_t)w->bs) {
            w->err = n < 0 ? errno : EIO;
            break;
        }
        uint64_t dt = (mono_ns() - t0) / 1000;
        if (w->nlat == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 4096;
            w->lat_us = realloc(w->lat_us, w->cap * sizeof *w->lat_us);
        }
        w->lat_us[w->nlat++] = (uint32_t)(dt > UINT32_MAX ? UINT32_MAX : dt);
        if (w->mine)
            atomic_fetch_add(w->mine, w->bs);
        off += w->bs;
        if (off + w->bs > w->span)
            off = 0;
    }
    w->cpu_s = thread_cpu_s() - c0;
    free(buf);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)((double)n * p / 100.0);
    if (i >= n)
        i = n - 1;
    return (double)v[i] / 1000.0;
}

static int run_disk_case(int fd, size_t bs, int writers)
{
    struct disk_w w[8];
    memset(w, 0, sizeof w);
    uint64_t end = mono_ns() + (uint64_t)(g_secs * 1e9), t0 = mono_ns();
    uint64_t span = (FILE_SIZE / (uint64_t)writers) & ~((uint64_t)(1 << 20) - 1);
    for (int i = 0; i < writers; i++) {
        w[i].fd = fd;
        w[i].bs = bs;
        w[i].base = span * (uint64_t)i;
        w[i].span = span;
        w[i].end_ns = end;
        pthread_create(&w[i].tid, NULL, disk_writer, &w[i]);
    }
    size_t total = 0;
    double cpu = 0;
    for (int i = 0; i < writers; i++) {
        pthread_join(w[i].tid, NULL);
        cpu += w[i].cpu_s;
        if (w[i].err) {
            fprintf(stderr, "stratus-limits: O_DIRECT write: %s\n", strerror(w[i].err));
            return -1;
        }
        total += w[i].nlat;
    }
    double secs = (double)(mono_ns() - t0) / 1e9;
    uint32_t *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < writers; i++) {
        memcpy(all + k, w[i].lat_us, w[i].nlat * sizeof *all);
        k += w[i].nlat;
        free(w[i].lat_us);
    }
    qsort(all, total, sizeof *all, cmp_u32);
    double mbs = (double)total * (double)bs / secs / 1e6;
    /* CPU seconds per GiB written: what a WAL or an object put with O_DIRECT costs at the
     * least (submission and completion; on this VM each write is a virtio doorbell) */
    double cpu_gib = total ? cpu / ((double)total * (double)bs / (1024.0 * 1024 * 1024)) : 0;
    fprintf(stderr,
            "limits disk O_DIRECT|O_DSYNC %zu KiB x%d writers: %.0f MB/s %.0f writes/s, "
            "latency ms p50 %.2f p99 %.2f p99.9 %.2f max %.2f; CPU s/GiB %.3f\n",
            bs >> 10, writers, mbs, (double)total / secs, pct(all, total, 50), pct(all, total, 99),
            pct(all, total, 99.9), total ? (double)all[total - 1] / 1000.0 : 0.0, cpu_gib);
    printf("RESULT {\"limit\":\"disk\",\"write_kib\":%zu,\"writers\":%d,\"mb_s\":%.1f,"
           "\"writes_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
           "\"cpu_s_gib\":%.3f}\n",
           bs >> 10, writers, mbs, (double)total / secs, pct(all, total, 50), pct(all, total, 99),
           pct(all, total, 99.9), total ? (double)all[total - 1] / 1000.0 : 0.0, cpu_gib);
    free(all);
    return 0;
}

/* The object side of run_durable: new files as storage-local's put writes them. */
struct obj_w {
    pthread_t tid;
    const char *dir;
    uint64_t end_ns;
    _Atomic uint64_t *mine, *other;
    unsigned nfiles;
    int err;
};

#define OBJ_SIZE (32u << 20)
#define OBJ_CHUNK (512u << 10)

static void *obj_writer(void *arg)
{
    struct obj_w *o = arg;
    char tmp[4200], final[4200];
    void *buf;
    if (posix_memalign(&buf, 4096, OBJ_CHUNK)) {
        o->err = ENOMEM;
        return NULL;
    }
    memset(buf, 0x5a, OBJ_CHUNK);
    int dfd = open(o->dir, O_RDONLY | O_DIRECTORY);
    while (!o->err && mono_ns() < o->end_ns) {
        snprintf(tmp, sizeof tmp, "%s/.tmp-%u", o->dir, o->nfiles);
        snprintf(final, sizeof final, "%s/obj-%u", o->dir, o->nfiles);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_DIRECT, 0600);
        if (fd < 0) {
            o->err = errno;
            break;
        }
        for (uint32_t off = 0; off < OBJ_SIZE; off += OBJ_CHUNK) {
            if (step_wait(o->mine, o->other, o->end_ns) < 0)
                break;
            if (write(fd, buf, OBJ_CHUNK) != (ssize_t)OBJ_CHUNK) {
                o->err = errno ? errno : EIO;
                break;
            }
            atomic_fetch_add(o->mine, OBJ_CHUNK);
        }
        if (!o->err && (fsync(fd) < 0 || rename(tmp, final) < 0 || (dfd >= 0 && fsync(dfd) < 0)))
            o->err = errno;
        close(fd);
        o->nfiles++;
    }
    if (dfd >= 0)
        close(dfd);
    free(buf);
    return NULL;
}

/* Durable ingest on one disk: 4 WAL writers on fd and one object writer in dir, in step. */
static int run_durable(int fd, const char *dir)
{
    char odir[4096];
    _Atomic uint64_t wal_bytes = 0, obj_bytes = 0;
    struct disk_w w[4];
    struct obj_w o = {0};
    int rc = 0;

    snprintf(odir, sizeof odir, "%s/stratus-limits-objects.%d", dir, (int)getpid());
    if (mkdir(odir, 0700) < 0) {
        fprintf(stderr, "stratus-limits: mkdir %s: %s\n", odir, strerror(errno));
        return -1;
    }
    memset(w, 0, sizeof w);
    /* twice the other cases' time: two streams that interfere vary more */
    uint64_t t0 = mono_ns(), end = t0 + (uint64_t)(2 * g_secs * 1e9);
    uint64_t span = (FILE_SIZE / 4) & ~((uint64_t)(1 << 20) - 1);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct disk_w){.fd = fd, .bs = 1u << 20, .base = span * (uint64_t)i,
                               .span = span, .end_ns = end, .mine = &wal_bytes,
                               .other = &obj_bytes};
        pthread_create(&w[i].tid, NULL, disk_writer, &w[i]);
    }
    o = (struct obj_w){.dir = odir, .end_ns = end, .mine = &obj_bytes, .other = &wal_bytes};
    pthread_create(&o.tid, NULL, obj_writer, &o);
    for (int i = 0; i < 4; i++) {
        pthread_join(w[i].tid, NULL);
        free(w[i].lat_us);
        if (w[i].err)
            o.err = o.err ? o.err : w[i].err;
    }
    pthread_join(o.tid, NULL);
    double secs = (double)(mono_ns() - t0) / 1e9;
    for (unsigned i = 0; i <= o.nfiles; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/obj-%u", odir, i);
        unlink(p);
        snprintf(p, sizeof p, "%s/.tmp-%u", odir, i);
        unlink(p);
    }
    rmdir(odir);
    if (o.err) {
        fprintf(stderr, "stratus-limits: durable ingest: %s\n", strerror(o.err));
        return -1;
    }
    uint64_t wb = atomic_load(&wal_bytes), ob = atomic_load(&obj_bytes);
    double both = (double)(wb < ob ? wb : ob) / secs / 1e6;
    fprintf(stderr,
            "limits durable ingest on one disk (WAL 1 MiB x4 + 32 MiB object files, in step): "
            "%.0f MB/s ingested = %.0f MB/s written (WAL %.0f, objects %.0f)\n",
            both, (double)(wb + ob) / secs / 1e6, (double)wb / secs / 1e6,
            (double)ob / secs / 1e6);
    printf("RESULT {\"limit\":\"durable\",\"mb_s\":%.1f,\"wal_mb_s\":%.1f,"
           "\"obj_mb_s\":%.1f}\n",
           both, (double)wb / secs / 1e6, (double)ob / secs / 1e6);
    return rc;
}

/* Opens DIR/stratus-limits.<pid> with O_DIRECT|O_DSYNC (unlinked at once), allocated and
 * written once with zeros so the writes measured are overwrites, as the WAL ring's are.
 * Returns the fd, or -1 with a message. */
static int open_scratch(const char *dir, uint64_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/stratus-limits.%d", dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_DSYNC, 0600);
    if (fd < 0) {
        fprintf(stderr, "stratus-limits: open %s O_DIRECT|O_DSYNC: %s\n", path, strerror(errno));
        return -1;
    }
    unlink(path);
    int rc = posix_fallocate(fd, 0, (off_t)size);
    if (rc) {
        fprintf(stderr, "stratus-limits: fallocate: %s\n", strerror(rc));
        close(fd);
        return -1;
    }
    void *buf;
    if (posix_memalign(&buf, 4096, 1 << 20)) {
        close(fd);
        return -1;
    }
    memset(buf, 0, 1 << 20);
    for (uint64_t off = 0; off < size; off += 1 << 20)
        if (pwrite(fd, buf, 1 << 20, (off_t)off) != 1 << 20) {
            fprintf(stderr, "stratus-limits: prefill: %s\n", strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
    free(buf);
    return fd;
}

static int run_disk(const char *dir)
{
    int fd = open_scratch(dir, FILE_SIZE);
    if (fd < 0)
        return -1;
    int rc;
    rc = 0;
    static const size_t sizes[] = {256u << 10, 1u << 20};
    static const int writers[] = {1, 4};
    for (size_t s = 0; s < 2 && !rc; s++)
        for (size_t w = 0; w < 2 && !rc; w++)
            rc = run_disk_case(fd, sizes[s], writers[w]);
    if (!rc)
        rc = run_durable(fd, dir);
    close(fd);
    return rc;
}

/* ---- first touch of fresh memory --------------------------------------------------------- */
#define TOUCH_BYTES ((size_t)512 << 20)
#define TOUCH_HUGE ((size_t)2 << 20)

static int run_touch_case(int huge)
{
    uint8_t *m = mmap(NULL, TOUCH_BYTES + TOUCH_HUGE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        fprintf(stderr, "stratus-limits: memory: %s\n", strerror(errno));
        return -1;
    }
    /* 2 MiB aligned, so that every huge page can be one */
    uint8_t *p = (uint8_t *)(((uintptr_t)m + TOUCH_HUGE - 1) & ~(uintptr_t)(TOUCH_HUGE - 1));
    (void)madvise(p, TOUCH_BYTES, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    double c0 = thread_cpu_s();
    uint64_t t0 = mono_ns();
    for (size_t off = 0; off < TOUCH_BYTES; off += 4096)
        p[off] = 1;
    double secs = (double)(mono_ns() - t0) / 1e9, cpu = thread_cpu_s() - c0;
    uint64_t t1 = mono_ns();
    for (size_t off = 0; off < TOUCH_BYTES; off += 4096)
        p[off] = 2;
    double again = (double)(mono_ns() - t1) / 1e9;
    double mbs = (double)TOUCH_BYTES / 1e6 / secs, gib = (double)TOUCH_BYTES / (1u << 30);
    fprintf(stderr,
            "limits first touch of %zu MiB in %s: %.0f MB/s (%.3f s), CPU s/GiB %.3f; "
            "touched again: %.3f s\n",
            TOUCH_BYTES >> 20, huge ? "huge pages" : "4 KiB pages", mbs, secs, cpu / gib, again);
    printf("RESULT {\"limit\":\"touch\",\"pages\":\"%s\",\"mb_s\":%.1f,\"secs\":%.3f,"
           "\"cpu_s_gib\":%.3f,\"again_secs\":%.3f}\n",
           huge ? "huge" : "4k", mbs, secs, cpu / gib, again);
    munmap(m, TOUCH_BYTES + TOUCH_HUGE);
    return 0;
}

static int run_memory(void)
{
    return run_touch_case(0) || run_touch_case(1) ? -1 : 0;
}

/* ---- paced durable writes (a reference for workload 5) ---------------------------------- */
/* One thread making `rate` O_DIRECT|O_DSYNC writes a second of `bs` bytes, each due at a fixed
 * time (a late write is not made up in a burst), sequentially through a 64 MiB file, for
 * g_secs: the disk traffic of a WAL's group commits without any broker. The harness runs it
 * beside the in-memory mock cluster, at the write rate and size Stratus's WAL made in the
 * same workload, to show what those durable writes alone cost the client's tail here. */
static int run_paced(const char *dir, double rate, size_t bs)
{
    const uint64_t span = 64ull << 20;
    bs = (bs + 4095) & ~(size_t)4095;
    if (rate <= 0 || bs == 0 || bs > (8u << 20)) {
        fprintf(stderr, "stratus-limits: paced needs RATE > 0 and 0 < SIZE <= 8 MiB\n");
        return -1;
    }
    int fd = open_scratch(dir, span);
    if (fd < 0)
        return -1;
    void *buf;
    if (posix_memalign(&buf, 4096, bs)) {
        close(fd);
        return -1;
    }
    memset(buf, 0xa5, bs);
    size_t cap = (size_t)(rate * g_secs) + 16, n = 0;
    uint32_t *lat = malloc(cap * sizeof *lat);
    uint64_t t0 = mono_ns(), end = t0 + (uint64_t)(g_secs * 1e9), off = 0;
    double gap_ns = 1e9 / rate, c0 = thread_cpu_s();
    int rc = 0;
    for (uint64_t i = 0; n < cap; i++) {
        uint64_t due = t0 + (uint64_t)((double)i * gap_ns);
        if (due >= end)
            break;
        uint64_t now = mono_ns();
        if (now < due) {
            struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        } else if (now - due > (uint64_t)gap_ns) {
            continue; /* behind by more than one interval: skip this slot */
        }
        uint64_t w0 = mono_ns();
        if (pwrite(fd, buf, bs, (off_t)off) != (ssize_t)bs) {
            fprintf(stderr, "stratus-limits: paced write: %s\n", strerror(errno));
            rc = -1;
            break;
        }
        uint64_t dt = (mono_ns() - w0) / 1000;
        lat[n++] = (uint32_t)(dt > UINT32_MAX ? UINT32_MAX : dt);
        off = off + bs + bs > span ? 0 : off + bs;
    }
    double cpu = thread_cpu_s() - c0, secs = (double)(mono_ns() - t0) / 1e9;
    qsort(lat, n, sizeof *lat, cmp_u32);
    if (!rc) {
        fprintf(stderr,
                "limits paced O_DIRECT|O_DSYNC %zu KiB: %.0f writes/s (asked %.0f) for %.1f s, "
                "latency ms p50 %.2f p99 %.2f max %.2f; CPU %.2f s\n",
                bs >> 10, (double)n / secs, rate, secs, pct(lat, n, 50), pct(lat, n, 99),
                n ? (double)lat[n - 1] / 1000.0 : 0.0, cpu);
        printf("RESULT {\"limit\":\"paced\",\"write_kib\":%zu,\"writes_s\":%.1f,"
               "\"asked_writes_s\":%.1f,\"secs\":%.2f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
               "\"max_ms\":%.3f,\"cpu_s\":%.3f}\n",
               bs >> 10, (double)n / secs, rate, secs, pct(lat, n, 50), pct(lat, n, 99),
               n ? (double)lat[n - 1] / 1000.0 : 0.0, cpu);
    }
    free(lat);
    free(buf);
    close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = "/var/tmp";
    int ch, want_tcp = 0, want_disk = 0, want_mem = 0, want_paced = 0, rc = 0;
    double rate = 0;
    size_t size = 0;
    while ((ch = getopt(argc, argv, "d:t:h")) != -1) {
        switch (ch) {
        case 'd': dir = optarg; break;
        case 't': g_secs = atof(optarg); break;
        default:
            fprintf(stderr, "usage: stratus-limits [-d DIR] [-t SECONDS] [tcp] [disk] [memory] "
                            "[paced WRITES_PER_S BYTES]\n");
            return 2;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (!strcmp(argv[i], "tcp"))
            want_tcp = 1;
        else if (!strcmp(argv[i], "disk"))
            want_disk = 1;
        else if (!strcmp(argv[i], "memory"))
            want_mem = 1;
        else if (!strcmp(argv[i], "paced") && i + 2 < argc) {
            want_paced = 1;
            rate = atof(argv[i + 1]);
            size = (size_t)strtoull(argv[i + 2], NULL, 10);
            i += 2;
        } else {
            fprintf(stderr, "stratus-limits: unknown mode %s\n", argv[i]);
            return 2;
        }
    }
    if (want_paced)
        return run_paced(dir, rate, size) ? 1 : 0;
    if (!want_tcp && !want_disk && !want_mem)
        want_tcp = want_disk = want_mem = 1;
    if (want_tcp && run_tcp())
        rc = 1;
    if (want_disk && run_disk(dir))
        rc = 1;
    if (want_mem && run_memory())
        rc = 1;
    return rc;
}
