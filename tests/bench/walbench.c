/* walbench.c - measures the WAL on this machine's disk: appends/s, MB/s and p50/p99 append ->
 * completion latency for 1 KiB, 16 KiB and 256 KiB records with 1, 8 and 64 concurrent
 * appenders (each appender has one append outstanding: it waits for its completion), for the
 * O_DIRECT|O_DSYNC path and the buffered write + fdatasync fallback; plus the raw cost of one
 * buffered pwrite + fdatasync per record, the baseline the WAL replaces. Each case also prints
 * the process's CPU time per write (appenders and WAL threads together).
 *
 * Not a ctest. Built by the normal build as <build>/bench/stratus-walbench (tests/bench/
 * CMakeLists.txt). Run: stratus-walbench [-d dir] [-t seconds] [-i inflight] [-w max_write_bytes] [-D delay_us]
 *                    [-m direct|buffered|both] [-r]   (-r: also the raw fdatasync baseline)
 * SPDX-License-Identifier: Apache-2.0
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stream/wal.h"
#include "util/clock.h"
#include "util/log.h"

struct appender {
    struct stratus_wal *wal;
    size_t size;
    volatile int *stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, err;
    uint32_t *lat; /* microseconds */
    size_t nlat, caplat;
};

static void on_done(void *arg, int err, uint64_t lsn)
{
    struct appender *a = arg;
    (void)lsn;
    pthread_mutex_lock(&a->mu);
    a->done = 1;
    a->err = err;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void *appender_main(void *arg)
{
    struct appender *a = arg;
    unsigned char *buf = malloc(a->size);
    memset(buf, 0xab, a->size);
    while (!*a->stop) {
        struct iovec iov = {buf, a->size};
        int64_t t0 = stratus_mono_us();
        a->done = 0;
        int rc = stratus_wal_append(a->wal, &iov, 1, on_done, a, NULL);
        if (rc == STRATUS_ENOMEM) {
            usleep(100);
            continue;
        }
        if (rc != 0) {
            fprintf(stderr, "append: %s\n", stratus_err_name(rc));
            break;
        }
        pthread_mutex_lock(&a->mu);
        while (!a->done)
            pthread_cond_wait(&a->cv, &a->mu);
        pthread_mutex_unlock(&a->mu);
        if (a->err)
            break;
        if (a->nlat == a->caplat) {
            a->caplat = a->caplat ? a->caplat * 2 : 4096;
            a->lat = realloc(a->lat, a->caplat * sizeof *a->lat);
        }
        a->lat[a->nlat++] = (uint32_t)(stratus_mono_us() - t0);
    }
    free(buf);
    return NULL;
}

struct trimmer {
    struct stratus_wal *wal;
    volatile int *stop;
};

static void *trimmer_main(void *arg)
{
    struct trimmer *t = arg;
    struct stratus_errbuf eb;
    while (!*t->stop) {
        struct stratus_wal_stats st;
        stratus_wal_get_stats(t->wal, &st);
        stratus_wal_trim(t->wal, st.durable_lsn, &eb);
        usleep(5000);
    }
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

static void run_case(const struct stratus_wal_conf *conf, size_t size, int nthreads, double secs)
{
    struct stratus_wal *wal;
    struct stratus_errbuf eb;
    if (stratus_wal_open(conf, &wal, &eb) || stratus_wal_start(wal, &eb)) {
        fprintf(stderr, "wal: %s\n", eb.msg);
        exit(1);
    }
    volatile int stop = 0;
    struct appender *ap = calloc((size_t)nthreads, sizeof *ap);
    pthread_t *th = calloc((size_t)nthreads, sizeof *th), tt;
    struct trimmer tr = {wal, &stop};
    struct stratus_wal_stats s0, s1;
    stratus_wal_get_stats(wal, &s0);
    pthread_create(&tt, NULL, trimmer_main, &tr);
    int64_t t0 = stratus_mono_us(), c0 = cpu_us();
    for (int i = 0; i < nthreads; i++) {
        ap[i].wal = wal;
        ap[i].size = size;
        ap[i].stop = &stop;
        pthread_mutex_init(&ap[i].mu, NULL);
        pthread_cond_init(&ap[i].cv, NULL);
        pthread_create(&th[i], NULL, appender_main, &ap[i]);
    }
    usleep((useconds_t)(secs * 1e6));
    stop = 1;
    size_t n = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        n += ap[i].nlat;
    }
    double el = (double)(stratus_mono_us() - t0) / 1e6;
    int64_t cpu = cpu_us() - c0;
    pthread_join(tt, NULL);
    stratus_wal_get_stats(wal, &s1);
    uint32_t *all = malloc((n ? n : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < nthreads; i++) {
        memcpy(all + k, ap[i].lat, ap[i].nlat * sizeof *all);
        k += ap[i].nlat;
        free(ap[i].lat);
        pthread_mutex_destroy(&ap[i].mu);
        pthread_cond_destroy(&ap[i].cv);
    }
    qsort(all, n, sizeof *all, cmp_u32);
    uint64_t writes = s1.writes - s0.writes;
    printf("%-8s %7zuB x%-3d %10.0f/s %9.1f MB/s  p50 %7.3f ms  p99 %7.3f ms  writes %7.0f/s "
           "avg %6.0f KiB  write %6.3f ms  cpu %5.0f us/write\n",
           s1.direct_io ? "direct" : "buffered", size, nthreads, (double)n / el,
           (double)n * (double)size / el / 1e6, n ? all[n / 2] / 1000.0 : 0,
           n ? all[n * 99 / 100] / 1000.0 : 0, (double)writes / el,
           writes ? (double)(s1.write_bytes - s0.write_bytes) / (double)writes / 1024 : 0,
           writes ? (double)(s1.write_us_total - s0.write_us_total) / (double)writes / 1000 : 0,
           writes ? (double)cpu / (double)writes : 0);
    fflush(stdout);
    free(all);
    free(ap);
    free(th);
    stratus_wal_trim(wal, s1.durable_lsn, &eb);
    stratus_wal_close(wal);
}

/* One buffered pwrite + fdatasync per record, one thread: what the WAL replaces. */
static void run_raw(const char *dir, size_t size, double secs)
{
    char path[512];
    snprintf(path, sizeof path, "%s/walbench.raw", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    unsigned char *buf = malloc(size);
    memset(buf, 0xcd, size);
    uint64_t off = 0, n = 0;
    uint32_t *lat = malloc(1000000 * sizeof *lat);
    int64_t t0 = stratus_mono_us(), end = t0 + (int64_t)(secs * 1e6);
    while (stratus_mono_us() < end && n < 1000000) {
        int64_t a = stratus_mono_us();
        if (pwrite(fd, buf, size, (off_t)off) != (ssize_t)size || fdatasync(fd) != 0)
            break;
        lat[n++] = (uint32_t)(stratus_mono_us() - a);
        off += size;
    }
    double el = (double)(stratus_mono_us() - t0) / 1e6;
    qsort(lat, n, sizeof *lat, cmp_u32);
    printf("raw write+fdatasync (appending file) %7zuB x1   %10.0f/s  p50 %7.3f ms  p99 %7.3f ms\n",
           size, (double)n / el, n ? lat[n / 2] / 1000.0 : 0, n ? lat[n * 99 / 100] / 1000.0 : 0);
    free(lat);
    free(buf);
    close(fd);
    unlink(path);
}

int main(int argc, char **argv)
{
    const char *dir = "/var/tmp", *mode = "both";
    double secs = 2;
    int inflight = 4, raw = 0, opt;
    uint32_t maxw = 1u << 20, delay = 0;
    while ((opt = getopt(argc, argv, "d:t:i:w:D:m:r")) != -1) {
        switch (opt) {
        case 'd': dir = optarg; break;
        case 't': secs = atof(optarg); break;
        case 'i': inflight = atoi(optarg); break;
        case 'w': maxw = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'D': delay = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'm': mode = optarg; break;
        case 'r': raw = 1; break;
        default:
            fprintf(stderr, "usage: walbench [-d dir] [-t s] [-i inflight] [-w bytes] [-D us] "
                            "[-m direct|buffered|both] [-r]\n");
            return 2;
        }
    }
    stratus_log_level = STRATUS_LOG_WARN;
    char path[512];
    snprintf(path, sizeof path, "%s/walbench.wal", dir);
    static const size_t sizes[] = {1024, 16 * 1024, 256 * 1024};
    static const int threads[] = {1, 8, 64};
    printf("dir %s inflight %d max_write %u delay_us %u, %.1f s per case\n", dir, inflight, maxw,
           delay, secs);
    for (int m = 0; m < 2; m++) {
        if ((m == 0 && !strcmp(mode, "buffered")) || (m == 1 && !strcmp(mode, "direct")))
            continue;
        unlink(path);
        struct stratus_wal_conf conf = {0};
        conf.path = path;
        conf.size_bytes = 512ull << 20;
        conf.max_write_bytes = maxw;
        conf.max_inflight = inflight;
        conf.batch_delay_us = delay;
        conf.force_buffered = m == 1;
        for (size_t s = 0; s < 3; s++)
            for (size_t t = 0; t < 3; t++)
                run_case(&conf, sizes[s], threads[t], secs);
    }
    unlink(path);
    if (raw)
        for (size_t s = 0; s < 3; s++)
            run_raw(dir, sizes[s], secs);
    return 0;
}
