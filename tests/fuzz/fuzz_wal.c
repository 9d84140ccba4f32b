/* fuzz_wal.c - libFuzzer target for the local WAL's replay parser (core/stream/wal.c): the
 * ring file after a crash can hold anything (torn writes, stale laps, another run's records),
 * and replay must accept only intact records of one generation chain, in LSN order, inside
 * the ring, and never read out of bounds. Then start() on that content and one append must
 * leave a WAL whose next replay returns the appended record intact: whatever came before, an
 * acknowledged record is never lost.
 *
 * Input: 8 parameter bytes, then the ring's bytes (zero-padded to the ring size).
 *   [0] flags: bit 0 recompute every record's CRC, bit 1 set every record's LSN to its
 *       position (so that mutations reach the checks behind them)
 *   [1] ring size in 4 KiB blocks (4..67)   [2..3] replay_lsn in blocks (up to three laps)
 *   [4..5] trim_lsn - replay_lsn in bytes (mod ring)   [6] the superblock's generation
 * The file goes to /dev/shm and is opened buffered, so an iteration costs no disk I/O.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream/wal.h"
#include "util/bytes.h"
#include "util/crc32c.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BLK 4096u
#define HDR 32u
#define REC_MAGIC 0x4C415753u
#define SB_MAGIC 0x42534C4157525453ull

struct seen {
    uint64_t ring, replay, trim, last;
    const uint8_t *ringbuf; /* the ring's bytes as written */
    int n;
    const void *want;       /* second replay: the appended record */
    size_t want_len;
    int found_last;         /* the last record replayed was want */
};

static int on_record(void *arg, uint64_t lsn, const void *rec, size_t len)
{
    struct seen *s = arg;
    /* in order, from the trim point on, whole inside the ring's window from replay_lsn */
    if ((s->n && lsn <= s->last) || lsn < s->trim || lsn < s->replay || lsn % 32 ||
        len == 0 || len > s->ring / 2 || lsn + HDR + len > s->replay + s->ring)
        abort();
    /* the bytes handed out are the ring's bytes at that position */
    if (s->ringbuf && memcmp(rec, s->ringbuf + (lsn % s->ring) + HDR, len) != 0)
        abort();
    s->found_last = s->want && len == s->want_len && memcmp(rec, s->want, len) == 0;
    s->last = lsn;
    s->n++;
    return 0;
}

/* Makes each record-looking header self-consistent, as the flags ask. No record carries a
 * generation above the superblock's (a run makes its generation durable before it writes), so
 * higher ones are lowered to it. */
static void fix_records(uint8_t *ring, uint64_t size, uint64_t replay, uint64_t gen, int flags)
{
    for (uint64_t off = 0; off + HDR <= size; off += 32) {
        uint8_t *h = ring + off;
        if (get_le32(h) != REC_MAGIC)
            continue;
        if (get_le64(h + 24) > gen)
            put_le64(h + 24, gen);
        if (flags & 2) /* the LSN this position has in the window starting at replay */
            put_le64(h + 8, replay + (off + size - replay % size) % size);
        uint32_t len = get_le32(h + 16);
        uint16_t type = get_le16(h + 20);
        uint64_t covered = type == 1 ? len : type == 4 ? 32 : 0;
        if (!(flags & 1) || off + HDR + covered > size)
            continue;
        put_le32(h + 4, 0);
        put_le32(h + 4, stratus_crc32c(stratus_crc32c(0, h, HDR), h + HDR, (size_t)covered));
    }
}

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, err;
};

static void on_done(void *arg, int err, uint64_t lsn)
{
    struct waiter *w = arg;
    (void)lsn;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->err = err;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    struct stratus_errbuf eb;
    struct stratus_wal *wal = NULL;

    if (size < 8)
        return 0;
    stratus_log_level = STRATUS_LOG_ERROR;
    if (!path[0])
        snprintf(path, sizeof path, "/dev/shm/stratus-fuzz-wal-%d.wal", (int)getpid());
    int flags = data[0];
    uint64_t ring = (4 + data[1] % 64) * (uint64_t)BLK;
    uint64_t replay = (get_le16(data + 2) % (3 * ring / BLK)) * BLK;
    uint64_t trim = replay + get_le16(data + 4) % ring;
    uint64_t gen = data[6] ? data[6] : 1;

    uint8_t *file = calloc(1, 2 * BLK + ring);
    if (!file)
        return 0;
    uint8_t *sb = file, *rb = file + 2 * BLK;
    memcpy(rb, data + 8, size - 8 < ring ? size - 8 : ring);
    fix_records(rb, ring, replay, gen, flags);
    put_le64(sb, SB_MAGIC);
    put_le32(sb + 8, 1);
    put_le32(sb + 12, BLK);
    put_le64(sb + 16, ring);
    put_le64(sb + 24, trim);
    put_le64(sb + 32, replay);
    put_le64(sb + 40, gen);
    put_le64(sb + 48, 1);
    put_le32(sb + 56, stratus_crc32c(0, sb, 56));
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0 || write(fd, file, 2 * BLK + ring) != (ssize_t)(2 * BLK + ring))
        abort(); /* /dev/shm is the fuzzer's own scratch space */
    close(fd);

    struct stratus_wal_conf conf = {0};
    conf.path = path;
    conf.size_bytes = ring;
    conf.max_write_bytes = 64 * 1024;
    conf.max_inflight = 1;
    conf.force_buffered = 1;
    struct seen s = {.ring = ring, .replay = replay, .trim = trim, .ringbuf = rb};
    if (stratus_wal_open(&conf, &wal, &eb) != 0)
        abort(); /* a valid superblock of the configured size always opens */
    if (stratus_wal_replay(wal, on_record, &s, &eb) != 0)
        abort(); /* invalid records end the log; they are not errors */

    /* start on whatever was there, free the ring (trim to the head), append, close */
    int ok = stratus_wal_start(wal, &eb) == 0;
    struct stratus_wal_stats st;
    stratus_wal_get_stats(wal, &st);
    if (ok && stratus_wal_trim(wal, st.durable_lsn, &eb) != 0)
        abort();
    static const char rec[] = "an acknowledged record";
    struct iovec iov = {(void *)rec, sizeof rec};
    struct waiter w = {.done = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    if (ok && stratus_wal_append(wal, &iov, 1, on_done, &w, NULL) == 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
    }
    stratus_wal_close(wal);
    wal = NULL;
    if (!ok || !w.done || w.err != 0)
        abort(); /* start and an append on a trimmed ring always succeed */

    /* the acknowledged record comes back, last */
    struct seen s2 = {.ring = ring, .want = rec, .want_len = sizeof rec};
    if (stratus_wal_open(&conf, &wal, &eb) != 0)
        abort();
    stratus_wal_get_stats(wal, &st);
    s2.trim = st.trim_lsn; /* replay_lsn (<= trim) moved with start and trim */
    s2.replay = st.trim_lsn;
    if (stratus_wal_replay(wal, on_record, &s2, &eb) != 0 || !s2.found_last)
        abort();
    stratus_wal_close(wal);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    unlink(path);
    free(file);
    return 0;
}
