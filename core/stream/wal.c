/* wal.c - the write-ahead log (see wal.h): a preallocated ring file written with aligned
 * O_DIRECT|O_DSYNC group-commit writes, several in flight, completions in LSN order.
 *
 * Owns: the WAL file descriptor, the batch queue, the aligned write buffers, the writer
 * threads and the superblock. Guarded by wal->mu (every field below "guarded by mu");
 * trim() and start() serialise superblock writes with wal->sb_mu. An object WAL
 * (conf->object_storage set) is walobj.c: every public function below forwards to it first.
 *
 * ON-DISK FORMAT (all integers little-endian; BLK = 4096 bytes)
 *   File = [superblock slot 0: BLK][superblock slot 1: BLK][ring: ring_size bytes]
 *   ring_size is a multiple of BLK. An LSN is a logical byte position: the byte at LSN x lives at
 *   file offset 2*BLK + (x % ring_size). LSNs only grow; one trip around the ring is a "lap".
 *
 *   Superblock (one slot, rest of the block zero). Two slots alternate (slot = seq % 2) so a
 *   torn superblock write always leaves the previous one intact; open() takes the valid slot
 *   with the highest seq. Version 2 says the ring may hold REF records (below), which builds
 *   before them cannot read: they refuse a WAL whose slots are both version 2 instead of
 *   stopping their replay at the first REF record. A run that may write REF records (or
 *   replayed one) writes version 2, into both slots at start; otherwise version 1.
 *     0  u64 magic "STRWALSB"     8  u32 version (1 or 2)    12 u32 block size (4096)
 *     16 u64 ring_size            24 u64 trim_lsn: records with LSN < trim_lsn are freed
 *     32 u64 replay_lsn: where replay starts parsing, a batch boundary <= trim_lsn
 *     40 u64 generation: bumped (durably) by every start(), before its first write
 *     48 u64 seq                  56 u32 crc32c of bytes 0..55
 *
 *   Records are packed back-to-back at 32-byte aligned LSNs; none crosses the end of the ring.
 *   Header (32 bytes):
 *     0  u32 magic 0x4C415753 ("SWAL")   4  u32 crc32c of the header (this field as zero) and,
 *                                           for DATA, of the payload
 *     8  u64 lsn (must equal the record's position: stale data of an earlier lap never matches)
 *     16 u32 len: DATA payload bytes; PAD/WRAP/GEN: bytes that follow the header and are skipped
 *     20 u16 type: 1 DATA, 2 PAD, 3 WRAP, 4 GEN     22 u16 zero
 *     24 u64 generation of the run that wrote it (GEN: u64 prev_end follows in the skipped part
 *        -- see below -- and is covered by its crc)
 *   A DATA record occupies 32 + align32(len) bytes (the tail padding is zero).
 *   A REF record (type 5) holds the same kind of payload, head || data, laid out so that the
 *   data can be written straight from the memory it arrived in (an aligned request frame):
 *     32 u32 head_len   36 u32 data_len   40 u32 skip   44 u32 zero
 *     48 the head bytes, then zeros up to the next 512-aligned LSN S
 *     S  the span: whole 512-byte blocks of that memory around the data; data = span[skip..]
 *   len = the bytes after the 32-byte header, so the record ends at S + span length, itself
 *   512-aligned; the crc covers the header (crc zero), the sub-header, the head and the data,
 *   not the span's other bytes. Replay returns head || data as for DATA.
 *   Every write ("batch") starts on a BLK boundary and ends on one: its tail is a PAD record
 *   reaching the next boundary (the gap is always 0 or >= 32 bytes). When the next record would
 *   cross the end of the ring, the batch ends with a WRAP record reaching the end of the lap and
 *   the next batch starts at the next lap (only the block holding the WRAP header is written).
 *   A GEN record (len 32: u64 prev_end, 24 zero bytes) opens the first batch of every run.
 *
 * REPLAY reads the ring in 4 MiB windows, the next one read ahead by a helper thread while the
 * current one is parsed. It starts at replay_lsn and accepts a record when magic, lsn, type,
 * bounds and crc hold, and its generation equals the one of the records before it (the first
 * record may have any).
 * At the first invalid record (a torn or never-written tail) at position P, it accepts only a
 * GEN record at align_up(P, BLK) with prev_end == P and a higher generation (where a later run
 * restarted after that crash); otherwise it stops. Records of a dead run lying past the point
 * where its successor restarted therefore never come back: they have an older generation, and
 * the generation is durable before the new run writes. head = align_up(end of the last valid
 * record). Records with LSN < trim_lsn are parsed but not returned.
 *
 * The ring is full when a batch's end - replay_lsn would exceed ring_size: batches then wait
 * (appends stay pending up to max_pending_bytes, then STRATUS_ENOMEM) until trim() moves
 * replay_lsn. trim(x) frees up to the last batch boundary <= x (an in-memory list of batch
 * starts gives it), so any x is accepted.
 *
 * Threads: max_inflight writer threads; each takes the oldest pending batch (one under 64 KiB
 * only when no write is in flight and no appender holds the WAL: adaptive group commit; a
 * hold (stratus_wal_hold) spans one produce request's appends, so that they share a write),
 * waits for the appenders still copying into it, and pwrite()s it (O_DSYNC, or write + fdatasync when
 * buffered). Whichever thread finds the oldest undelivered batch done delivers completions,
 * one thread at a time, in LSN order, outside the lock. A writer whose write completed goes
 * round and takes the next batch itself; an idle writer is woken (one, on idle_cv) only when
 * it would issue at once (wal_issuable: a sealed batch, or data with no write in flight and
 * no hold, or a batch past WAL_ISSUE_MIN), and not again while one woken is on its way.
 * Loop writes (unless conf->writers_only or a batch delay): an appender running on an event
 * loop (a network thread) that starts a batch wakes no writer; it asks its loop to run
 * wal_kick at the end of the iteration, which writes the batch from that thread if it is
 * still small, no write is in flight and nobody holds the WAL, and delivers the completions
 * there (no partition lock is held at that point); like a writer it then goes round and
 * writes the small batch other threads filled meanwhile (up to WAL_LOOP_ROUNDS writes), not
 * waking a writer for it. Otherwise the writers take it as above;
 * close() also waits for a loop thread's write in progress.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics/metrics.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/bytes.h"
#include "util/copy.h"
#include "util/crc32c.h"
#include "util/log.h"
#include "util/loop.h"
#include "util/sched.h"

#define WAL_BLK 4096u
#define WAL_SB_AREA (2 * (uint64_t)WAL_BLK)
#define WAL_HDR 32u
#define WAL_SB_MAGIC 0x42534C4157525453ull /* "STRWALSB" little-endian */
#define WAL_SB_VERSION 1u     /* no REF record in the ring */
#define WAL_SB_VERSION_REF 2u /* the ring may hold REF records */
#define WAL_REC_MAGIC 0x4C415753u
#define WAL_READ_WINDOW (4u << 20)
#define WAL_ISSUE_MIN (64u * 1024) /* see wal_writer_main */
#define WAL_LOOP_ROUNDS 4 /* batches a loop thread writes back to back in one wal_kick */

#define WAL_REF_ALIGN 512u     /* a reference record's span: LSN, length and memory alignment */
#define WAL_REF_SUB 16u        /* its sub-header after the record header */
#define WAL_REF_MIN (64u * 1024) /* smaller data is copied: the span's rounding is not worth it */
#define WAL_MAX_REFS 64        /* reference records per batch (two iovecs each in the write) */

enum { WAL_T_DATA = 1, WAL_T_PAD = 2, WAL_T_WRAP = 3, WAL_T_GEN = 4, WAL_T_REF = 5 };
enum { WAL_B_OPEN, WAL_B_SEALED, WAL_B_INFLIGHT, WAL_B_DONE };

/* A reference record's span: len bytes at ptr (inside owner, an aligned rcbuf the batch holds a
 * reference to) written in place where buf's bytes reach offset bat. */
struct wal_ref {
    uint32_t bat;
    uint32_t len;
    const unsigned char *ptr;
    const void *owner;
};

/* One aligned write. Owned by the wal's queue; fields guarded by mu except buf contents. */
struct wal_batch {
    struct wal_batch *next;
    uint64_t start;    /* LSN, BLK-aligned */
    uint64_t end;      /* logical end once sealed (BLK-aligned or a lap end) */
    uint32_t used;     /* LSN bytes placed from start */
    uint32_t lcap;     /* LSN bytes the batch may span (max_write, or its one larger record) */
    uint32_t bused;    /* bytes placed in buf: used less the spans of its reference records */
    uint32_t cap;      /* buffer size */
    unsigned char *buf;
    struct wal_ref *refs; /* reference records' spans, in LSN order (WAL_MAX_REFS; lazily) */
    int nrefs;
    int state;
    int wrap;          /* sealed with a WRAP record up to the lap end */
    int copiers;       /* appenders still copying into buf */
    int err;
    uint64_t bytes;    /* pending bytes accounted to this batch */
    int64_t opened_us;
    struct stratus_wal_comp *comps;
    size_t ncomp, capcomp;
};

struct stratus_wal {
    struct stratus_walobj *obj; /* set: an object WAL (walobj.c); nothing below is used */
    char *path;
    int fd;
    int direct;
    uint64_t ring;
    uint32_t max_write;
    int nwriters;
    uint64_t max_pending;
    uint32_t delay_us;
    int loop_writes;         /* loop threads write the batches they start (wal_kick) */
    /* atomic: superblock writes read them under sb_mu only */
    atomic_int refs_ok;      /* large data from aligned rcbufs is written in place (REF) */
    atomic_int live_refs;    /* the ring may hold REF records of an earlier run or of this
                                one before refs_ok went off (the superblock says version 2) */
    struct stratus_metric *write_hist; /* borrowed, may be NULL */
    void (*write_observer)(void *arg, int64_t start_us, int64_t dt_us); /* may be NULL */
    void *write_observer_arg;

    /* superblock state, guarded by sb_mu (and mu for the copies writers read) */
    pthread_mutex_t sb_mu;
    uint64_t sb_seq, gen;
    unsigned char *sbbuf;

    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* writers waiting for ring space or a batch's delay; closing */
    pthread_cond_t idle_cv;  /* idle writers: work (wal_wake_one), closing, failure */
    pthread_cond_t copy_cv;  /* a batch's copiers reached zero */
    /* guarded by mu: */
    int started, closing, scanned, failed, delivering;
    int idle;                /* writers waiting for work on work_cv (not the delay wait) */
    int woken;               /* of those, signalled and not yet running (wal_wake_one) */
    int holds;               /* stratus_wal_hold() calls not yet released */
    int deliver_err;
    struct wal_batch *first, *tail, *next_issue, *open;
    uint64_t next_start;     /* start of the next new batch */
    uint64_t durable_lsn, trim_lsn, replay_lsn, scan_end;
    uint64_t pending_bytes;
    int inflight;
    uint64_t *bounds;        /* ring of batch starts >= replay_lsn, in order */
    size_t nbounds, bounds_head, bounds_cap;
    unsigned char **freebufs;
    int nfree;
    struct stratus_wal_stats st;
    pthread_t *threads;
    int nthreads;
};

/* ---- little helpers ------------------------------------------------------------------- */

static uint64_t wal_align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}
static uint64_t wal_lap_end(const struct stratus_wal *wal, uint64_t lsn)
{
    return (lsn / wal->ring + 1) * wal->ring;
}
static uint64_t wal_rec_total(uint64_t len)
{
    return WAL_HDR + wal_align_up(len, 32);
}

/* A REF record at lsn with head_len head bytes: where its span starts (relative to lsn). */
static uint64_t wal_ref_head_area(uint64_t lsn, uint64_t head_len)
{
    return wal_align_up(lsn + WAL_HDR + WAL_REF_SUB + head_len, WAL_REF_ALIGN) - lsn;
}

/* Fills a record header at p and returns the crc seed (header with a zero crc field). */
static void wal_hdr_fill(unsigned char *p, uint64_t lsn, uint32_t len, uint16_t type, uint64_t gen)
{
    put_le32(p, WAL_REC_MAGIC);
    put_le32(p + 4, 0);
    put_le64(p + 8, lsn);
    put_le32(p + 16, len);
    put_le16(p + 20, type);
    put_le16(p + 22, 0);
    put_le64(p + 24, gen);
}

static int wal_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const unsigned char *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* pwritev of every byte of v[0..n) (consumed as it goes); 0 or -errno. */
static int wal_pwritev_all(int fd, struct iovec *v, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwritev(fd, v, n > IOV_MAX ? IOV_MAX : n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        off += (uint64_t)w;
        while (n > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++, n--;
        }
        if (n > 0) {
            v->iov_base = (unsigned char *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static int wal_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    unsigned char *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO; /* the file is shorter than its superblock says */
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Makes a write durable: nothing to do under O_DSYNC, fdatasync when buffered. */
static int wal_sync(struct stratus_wal *wal)
{
    if (wal->direct)
        return 0;
    if (fdatasync(wal->fd) != 0)
        return -errno;
    return 1;
}

/* ---- batch boundaries (the trim points) ------------------------------------------------ */

static void wal_bound_push(struct stratus_wal *wal, uint64_t lsn)
{
    if (wal->nbounds && wal->bounds[(wal->bounds_head + wal->nbounds - 1) % wal->bounds_cap] >= lsn)
        return;
    if (wal->nbounds == wal->bounds_cap) {
        size_t ncap = wal->bounds_cap ? wal->bounds_cap * 2 : 256;
        uint64_t *nb = xmalloc(ncap * sizeof *nb);
        for (size_t i = 0; i < wal->nbounds; i++)
            nb[i] = wal->bounds[(wal->bounds_head + i) % wal->bounds_cap];
        free(wal->bounds);
        wal->bounds = nb;
        wal->bounds_cap = ncap;
        wal->bounds_head = 0;
    }
    wal->bounds[(wal->bounds_head + wal->nbounds) % wal->bounds_cap] = lsn;
    wal->nbounds++;
}

/* The last boundary <= upto (upto itself when it is durable_lsn), or replay_lsn. */
static uint64_t wal_bound_find(struct stratus_wal *wal, uint64_t upto)
{
    uint64_t best = wal->replay_lsn;
    if (upto == wal->durable_lsn)
        return upto;
    for (size_t i = 0; i < wal->nbounds; i++) {
        uint64_t b = wal->bounds[(wal->bounds_head + i) % wal->bounds_cap];
        if (b > upto)
            break;
        if (b > best)
            best = b;
    }
    return best;
}

static void wal_bound_drop_below(struct stratus_wal *wal, uint64_t lsn)
{
    while (wal->nbounds && wal->bounds[wal->bounds_head] < lsn) {
        wal->bounds_head = (wal->bounds_head + 1) % wal->bounds_cap;
        wal->nbounds--;
    }
}

/* ---- superblock ------------------------------------------------------------------------ */

/* Writes the next superblock slot durably. Caller holds sb_mu. */
static int wal_sb_write(struct stratus_wal *wal, uint64_t trim, uint64_t replay, uint64_t gen)
{
    unsigned char *p = wal->sbbuf;
    uint64_t seq = wal->sb_seq + 1;
    memset(p, 0, WAL_BLK);
    put_le64(p, WAL_SB_MAGIC);
    put_le32(p + 8, wal->refs_ok || wal->live_refs ? WAL_SB_VERSION_REF : WAL_SB_VERSION);
    put_le32(p + 12, WAL_BLK);
    put_le64(p + 16, wal->ring);
    put_le64(p + 24, trim);
    put_le64(p + 32, replay);
    put_le64(p + 40, gen);
    put_le64(p + 48, seq);
    put_le32(p + 56, stratus_crc32c(0, p, 56));
    int rc = wal_pwrite_all(wal->fd, p, WAL_BLK, (seq % 2) * WAL_BLK);
    if (rc == 0)
        rc = wal_sync(wal) < 0 ? -EIO : 0;
    if (rc == 0)
        wal->sb_seq = seq;
    return rc;
}

struct wal_sb {
    uint64_t ring, trim, replay, gen, seq;
};

/* 1 when the block holds a valid superblock, 0 when it is all zero, -1 otherwise. */
static int wal_sb_parse(const unsigned char *p, struct wal_sb *sb)
{
    if (get_le64(p) != WAL_SB_MAGIC || get_le32(p + 56) != stratus_crc32c(0, p, 56)) {
        for (unsigned i = 0; i < WAL_BLK; i++)
            if (p[i])
                return -1;
        return 0;
    }
    uint32_t version = get_le32(p + 8);
    if ((version != WAL_SB_VERSION && version != WAL_SB_VERSION_REF) || get_le32(p + 12) != WAL_BLK)
        return -1;
    sb->ring = get_le64(p + 16);
    sb->trim = get_le64(p + 24);
    sb->replay = get_le64(p + 32);
    sb->gen = get_le64(p + 40);
    sb->seq = get_le64(p + 48);
    if (sb->ring == 0 || sb->ring % WAL_BLK || sb->replay > sb->trim || sb->replay % WAL_BLK)
        return -1;
    return 1;
}

/* ---- open ------------------------------------------------------------------------------ */

/* The alignment O_DIRECT writes to the WAL need of memory and offsets (statx's DIOALIGN), or
 * 512 where the kernel does not say (a write it refuses anyway goes through a bounce buffer,
 * wal_write_out); 1 for buffered writes. */
static uint32_t wal_dio_align(const struct stratus_wal *wal)
{
    if (!wal->direct)
        return 1;
#ifdef STATX_DIOALIGN
    struct statx stx;
    if (statx(wal->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_mem_align)
        return stx.stx_dio_mem_align > stx.stx_dio_offset_align ? stx.stx_dio_mem_align
                                                                : stx.stx_dio_offset_align;
#endif
    return WAL_REF_ALIGN;
}

static int wal_open_fd(const char *path, int direct)
{
    int flags = O_RDWR | O_CREAT | O_CLOEXEC;
    if (direct)
        flags |= O_DIRECT | O_DSYNC;
    return open(path, flags, 0644);
}

/* Writes zeros over [from, to) of the file (preallocation that also converts extents). */
static int wal_zero_fill(struct stratus_wal *wal, uint64_t from, uint64_t to)
{
    size_t chunk = 1u << 20;
    void *z = NULL;
    int rc = 0;
    if (posix_memalign(&z, WAL_BLK, chunk) != 0)
        return -ENOMEM;
    memset(z, 0, chunk);
    while (from < to && rc == 0) {
        size_t n = (size_t)(to - from < chunk ? to - from : chunk);
        rc = wal_pwrite_all(wal->fd, z, n, from);
        from += n;
    }
    free(z);
    if (rc == 0 && wal_sync(wal) < 0)
        rc = -EIO;
    return rc;
}

/* Reads or creates the superblock. Returns 0; -EINVAL with *hard == 0 when O_DIRECT I/O is
 * refused (the caller retries buffered); or a STRATUS_E* code with *hard == 1. */
static int wal_load(struct stratus_wal *wal, const struct stratus_wal_conf *conf, int *hard,
                    struct stratus_errbuf *eb)
{
    struct stat sbst;
    struct wal_sb s0, s1, *best = NULL;
    int v0, v1, rc;

    *hard = 0;
    if (fstat(wal->fd, &sbst) != 0) {
        *hard = 1;
        return stratus_errf(eb, STRATUS_EIO, "wal: fstat %s: %s", wal->path, strerror(errno));
    }
    if (sbst.st_size >= (off_t)WAL_SB_AREA) {
        rc = wal_pread_all(wal->fd, wal->sbbuf, WAL_BLK, 0);
        if (rc == -EINVAL && wal->direct)
            return -EINVAL;
        if (rc != 0) {
            *hard = 1;
            return stratus_errf(eb, STRATUS_EIO, "wal: read superblock of %s: %s", wal->path,
                                strerror(-rc));
        }
        v0 = wal_sb_parse(wal->sbbuf, &s0);
        rc = wal_pread_all(wal->fd, wal->sbbuf, WAL_BLK, WAL_BLK);
        if (rc != 0) {
            *hard = 1;
            return stratus_errf(eb, STRATUS_EIO, "wal: read superblock of %s: %s", wal->path,
                                strerror(-rc));
        }
        v1 = wal_sb_parse(wal->sbbuf, &s1);
        if (v0 == 1)
            best = &s0;
        if (v1 == 1 && (!best || s1.seq > best->seq))
            best = &s1;
        if (!best && (v0 < 0 || v1 < 0)) {
            *hard = 1;
            return stratus_errf(eb, STRATUS_ECORRUPT, "wal: %s has no valid superblock", wal->path);
        }
    }
    if (best) {
        if (best->ring != wal->ring)
            LOG_WARN("wal", "ring size of %s is %llu on disk, configured %llu: using the disk's",
                     wal->path, (unsigned long long)best->ring, (unsigned long long)wal->ring);
        wal->ring = best->ring;
        if ((uint64_t)sbst.st_size < WAL_SB_AREA + wal->ring) {
            *hard = 1;
            return stratus_errf(eb, STRATUS_ECORRUPT, "wal: %s is shorter than its ring (%llu)",
                                wal->path, (unsigned long long)wal->ring);
        }
        wal->sb_seq = best->seq;
        wal->gen = best->gen;
        wal->trim_lsn = best->trim;
        wal->replay_lsn = best->replay;
        return 0;
    }

    /* a new file (or one whose creation never finished: both slots zero) */
    uint64_t total = WAL_SB_AREA + wal->ring;
    if (fallocate(wal->fd, 0, 0, (off_t)total) != 0) {
        if (errno != EOPNOTSUPP) {
            *hard = 1;
            return stratus_errf(eb, STRATUS_EIO, "wal: fallocate %s (%llu bytes): %s", wal->path,
                                (unsigned long long)total, strerror(errno));
        }
        if (ftruncate(wal->fd, (off_t)total) != 0) {
            *hard = 1;
            return stratus_errf(eb, STRATUS_EIO, "wal: ftruncate %s: %s", wal->path,
                                strerror(errno));
        }
    }
    wal->sb_seq = 0;
    wal->gen = 0;
    wal->trim_lsn = wal->replay_lsn = 0;
    /* zero the ring and slot 0, then write seq 1 into slot 1 */
    rc = conf->skip_zero_fill ? 0 : wal_zero_fill(wal, WAL_SB_AREA, total);
    if (rc == -EINVAL && wal->direct)
        return -EINVAL;
    if (rc == 0) {
        memset(wal->sbbuf, 0, WAL_BLK);
        rc = wal_pwrite_all(wal->fd, wal->sbbuf, WAL_BLK, 0);
    }
    if (rc == -EINVAL && wal->direct)
        return -EINVAL;
    if (rc == 0)
        rc = wal_sb_write(wal, 0, 0, 0);
    if (rc == -EINVAL && wal->direct)
        return -EINVAL;
    if (rc != 0) {
        *hard = 1;
        return stratus_errf(eb, STRATUS_EIO, "wal: initialise %s: %s", wal->path, strerror(-rc));
    }
    LOG_INFO("wal", "created %s ring=%llu direct=%d", wal->path, (unsigned long long)wal->ring,
             wal->direct);
    return 0;
}

int stratus_wal_open(const struct stratus_wal_conf *conf, struct stratus_wal **out,
                     struct stratus_errbuf *eb)
{
    struct stratus_wal *wal;
    int rc, hard;

    *out = NULL;
    if (conf && conf->object_storage) {
        struct stratus_walobj *obj;
        rc = stratus_walobj_open(conf, &obj, eb);
        if (rc != 0)
            return rc;
        wal = xcalloc(1, sizeof *wal);
        wal->obj = obj;
        wal->fd = -1;
        *out = wal;
        return 0;
    }
    if (!conf || !conf->path || !*conf->path)
        return stratus_errf(eb, STRATUS_EINVAL, "wal: no path");
    wal = xcalloc(1, sizeof *wal);
    wal->fd = -1;
    wal->path = xstrdup(conf->path);
    wal->ring = wal_align_up(conf->size_bytes ? conf->size_bytes : (1ull << 30), WAL_BLK);
    wal->max_write = (uint32_t)wal_align_up(conf->max_write_bytes ? conf->max_write_bytes : (1u << 20),
                                            WAL_BLK);
    wal->nwriters = conf->max_inflight > 0 ? conf->max_inflight : 4;
    if (wal->nwriters > 64)
        wal->nwriters = 64;
    wal->max_pending = conf->max_pending_bytes ? conf->max_pending_bytes : (256ull << 20);
    wal->delay_us = conf->batch_delay_us;
    wal->loop_writes = !conf->writers_only && !conf->batch_delay_us;
    wal->write_hist = conf->write_hist;
    wal->write_observer = conf->write_observer;
    wal->write_observer_arg = conf->write_observer_arg;
    pthread_mutex_init(&wal->mu, NULL);
    pthread_mutex_init(&wal->sb_mu, NULL);
    pthread_cond_init(&wal->work_cv, NULL);
    pthread_cond_init(&wal->idle_cv, NULL);
    pthread_cond_init(&wal->copy_cv, NULL);
    wal->freebufs = xcalloc((size_t)wal->nwriters + 2, sizeof *wal->freebufs);
    if (wal->ring < 4 * (uint64_t)WAL_BLK) {
        rc = stratus_errf(eb, STRATUS_EINVAL, "wal: ring of %llu bytes is too small",
                          (unsigned long long)wal->ring);
        goto fail;
    }
    if (posix_memalign((void **)&wal->sbbuf, WAL_BLK, WAL_BLK) != 0) {
        wal->sbbuf = NULL;
        rc = stratus_errf(eb, STRATUS_ENOMEM, "wal: out of memory");
        goto fail;
    }

    wal->direct = !conf->force_buffered;
    for (;;) {
        wal->fd = wal_open_fd(wal->path, wal->direct);
        if (wal->fd < 0 && errno == EINVAL && wal->direct) {
            LOG_WARN("wal", "O_DIRECT refused for %s: falling back to buffered writes + fdatasync",
                     wal->path);
            wal->direct = 0;
            continue;
        }
        if (wal->fd < 0) {
            rc = stratus_errf(eb, STRATUS_EIO, "wal: open %s: %s", wal->path, strerror(errno));
            goto fail;
        }
        rc = wal_load(wal, conf, &hard, eb);
        if (rc == -EINVAL && !hard && wal->direct) {
            LOG_WARN("wal", "O_DIRECT I/O fails on %s: falling back to buffered writes + fdatasync",
                     wal->path);
            close(wal->fd);
            wal->direct = 0;
            continue;
        }
        if (rc != 0)
            goto fail;
        break;
    }
    if (conf->force_buffered)
        LOG_WARN("wal", "%s: buffered writes + fdatasync (force_buffered)", wal->path);
    wal->refs_ok = !conf->copy_always && wal_dio_align(wal) <= WAL_REF_ALIGN;
    wal->durable_lsn = wal->next_start = wal->scan_end = wal->replay_lsn;
    wal->st.direct_io = wal->direct;
    *out = wal;
    return 0;

fail:
    if (wal->fd >= 0)
        close(wal->fd);
    free(wal->sbbuf);
    free(wal->freebufs);
    free(wal->path);
    pthread_mutex_destroy(&wal->mu);
    pthread_mutex_destroy(&wal->sb_mu);
    pthread_cond_destroy(&wal->work_cv);
    pthread_cond_destroy(&wal->idle_cv);
    pthread_cond_destroy(&wal->copy_cv);
    free(wal);
    return rc;
}

/* ---- replay ---------------------------------------------------------------------------- */

/* Replay reads the ring in WAL_READ_WINDOW windows; a helper thread reads the next window
 * while the current one is parsed, so replay runs at about the larger of the disk's read time
 * and the parse time. Each buffer keeps WAL_READ_WINDOW bytes of headroom in front of the
 * bytes read into it: a record that straddles two windows (most do, once records approach
 * the window's size) is joined by copying the current window's tail in front of the next
 * window, instead of reading the ring again synchronously from the record's start (which made
 * nearly every window of 1 MiB produce batches a synchronous read). */
struct wal_rbuf {
    unsigned char *base; /* posix_memalign'd; the data sits at base + WAL_READ_WINDOW */
    size_t cap;          /* bytes allocated past the headroom */
};

struct wal_reader {
    struct stratus_wal *wal;
    struct wal_rbuf cur;
    const unsigned char *buf; /* window data, inside cur.base */
    uint64_t woff;            /* ring offset of buf[0] */
    size_t wlen;              /* valid bytes */
    /* read-ahead: guarded by mu; next belongs to the helper while pstate == 1 */
    pthread_t th;
    int th_started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct wal_rbuf next;
    uint64_t nahead, nsync; /* windows taken from the read-ahead, read synchronously */
    size_t plen;
    uint64_t poff;
    int pstate; /* 0 none, 1 requested, 2 read, 3 failed */
};

/* The aligned area where a buffer's read goes. */
static unsigned char *wal_rbuf_data(const struct wal_rbuf *b)
{
    return b->base + WAL_READ_WINDOW;
}

/* Grows b to hold n bytes past its headroom (its content is lost); 0 or STRATUS_ENOMEM. */
static int wal_rbuf_reserve(struct wal_rbuf *b, size_t n)
{
    void *nb = NULL;
    if (n <= b->cap && b->base)
        return 0;
    if (posix_memalign(&nb, WAL_BLK, (size_t)WAL_READ_WINDOW + n) != 0)
        return STRATUS_ENOMEM;
    free(b->base);
    b->base = nb;
    b->cap = n;
    return 0;
}

static void *wal_reader_main(void *arg)
{
    struct wal_reader *r = arg;
    pthread_setname_np(pthread_self(), "wal-replay"); /* top -H, perf, gdb */
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->pstate != 1 && !r->stop)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->stop)
            break;
        uint64_t off = r->poff;
        size_t n = r->plen;
        unsigned char *dst = wal_rbuf_data(&r->next);
        pthread_mutex_unlock(&r->mu);
        int rc = wal_pread_all(r->wal->fd, dst, n, WAL_SB_AREA + off);
        pthread_mutex_lock(&r->mu);
        r->pstate = rc == 0 ? 2 : 3;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void wal_reader_init(struct wal_reader *r, struct stratus_wal *wal)
{
    memset(r, 0, sizeof *r);
    r->wal = wal;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->th_started = pthread_create(&r->th, NULL, wal_reader_main, r) == 0;
}

static void wal_reader_fini(struct wal_reader *r)
{
    if (r->th_started) {
        pthread_mutex_lock(&r->mu);
        r->stop = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->th, NULL);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r->cur.base);
    free(r->next.base);
}

/* Waits until the helper is not reading; returns the state. Caller holds r->mu. */
static int wal_reader_settle(struct wal_reader *r)
{
    while (r->pstate == 1)
        pthread_cond_wait(&r->cv, &r->mu);
    return r->pstate;
}

/* Asks the helper for the window after the current one. */
static void wal_reader_ahead(struct stratus_wal *wal, struct wal_reader *r)
{
    uint64_t next = (r->woff + r->wlen) % wal->ring;
    size_t n = WAL_READ_WINDOW;
    if (!r->th_started)
        return;
    if (n > wal->ring - next)
        n = (size_t)(wal->ring - next);
    pthread_mutex_lock(&r->mu);
    wal_reader_settle(r);
    if (wal_rbuf_reserve(&r->next, n) != 0) {
        r->pstate = 0;
        pthread_mutex_unlock(&r->mu);
        return;
    }
    r->poff = next;
    r->plen = n;
    r->pstate = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Makes the read-ahead window current when it (with the current window's tail from keep_from
 * joined in front) holds [off, off+len). Returns 1 when it did. Caller holds r->mu. */
static int wal_reader_take(struct wal_reader *r, uint64_t off, size_t len)
{
    if (wal_reader_settle(r) != 2)
        return 0;
    r->pstate = 0;
    uint64_t pend = r->poff + r->plen;
    if (off >= r->poff && off + len <= pend) { /* wholly in the read-ahead window */
        struct wal_rbuf t = r->cur;
        r->cur = r->next;
        r->next = t;
        r->buf = wal_rbuf_data(&r->cur);
        r->woff = r->poff;
        r->wlen = r->plen;
        return 1;
    }
    uint64_t wend = r->woff + r->wlen;
    if (!r->buf || r->poff != wend || off < r->woff || off >= wend || off + len > pend)
        return 0;
    /* straddles the two windows: copy the current window's tail from off's block in front */
    uint64_t from = off / WAL_BLK * WAL_BLK;
    size_t keep = (size_t)(wend - from);
    if (keep > WAL_READ_WINDOW)
        return 0;
    unsigned char *dst = wal_rbuf_data(&r->next) - keep;
    memcpy(dst, r->buf + (from - r->woff), keep);
    struct wal_rbuf t = r->cur;
    r->cur = r->next;
    r->next = t;
    r->buf = dst;
    r->woff = from;
    r->wlen = keep + r->plen;
    return 1;
}

/* Returns a pointer to ring bytes [off, off+len) (within one lap), or NULL with *err. */
static const unsigned char *wal_read(struct stratus_wal *wal, struct wal_reader *r, uint64_t off,
                                     size_t len, int *err)
{
    if (r->buf && off >= r->woff && off + len <= r->woff + r->wlen)
        return r->buf + (off - r->woff);
    if (r->th_started) {
        pthread_mutex_lock(&r->mu);
        int took = wal_reader_take(r, off, len);
        pthread_mutex_unlock(&r->mu);
        if (took) {
            r->nahead++;
            wal_reader_ahead(wal, r);
            return r->buf + (off - r->woff);
        }
    }
    /* not read ahead (the first window, a record larger than a window, a jump): read here */
    uint64_t start = off / WAL_BLK * WAL_BLK;
    size_t need = (size_t)(wal_align_up(off + len, WAL_BLK) - start);
    size_t n = need > WAL_READ_WINDOW ? need : WAL_READ_WINDOW;
    if (n > wal->ring - start)
        n = (size_t)(wal->ring - start);
    if (wal_rbuf_reserve(&r->cur, n) != 0) {
        r->buf = NULL;
        r->wlen = 0;
        *err = STRATUS_ENOMEM;
        return NULL;
    }
    r->buf = wal_rbuf_data(&r->cur);
    r->nsync++;
    int rc = wal_pread_all(wal->fd, wal_rbuf_data(&r->cur), n, WAL_SB_AREA + start);
    if (rc != 0) {
        r->wlen = 0;
        *err = STRATUS_EIO;
        return NULL;
    }
    r->woff = start;
    r->wlen = n;
    wal_reader_ahead(wal, r);
    return r->buf + (off - start);
}

/* Checks the record at pos. Returns 1 valid (fills *type, *len, *gen, *total, *payload),
 * 0 invalid, or a negative error. */
static int wal_check(struct stratus_wal *wal, struct wal_reader *r, uint64_t pos, uint64_t limit,
                     int *type, uint32_t *len, uint64_t *gen, uint64_t *total,
                     const unsigned char **payload)
{
    int err = 0;
    uint64_t off = pos % wal->ring;
    const unsigned char *h = wal_read(wal, r, off, WAL_HDR, &err);
    unsigned char hc[WAL_HDR];
    if (!h)
        return err;
    if (get_le32(h) != WAL_REC_MAGIC || get_le64(h + 8) != pos || get_le16(h + 22) != 0)
        return 0;
    *type = get_le16(h + 20);
    *len = get_le32(h + 16);
    *gen = get_le64(h + 24);
    uint32_t want = get_le32(h + 4);
    if (*gen == 0 || *gen > wal->gen)
        return 0;
    switch (*type) {
    case WAL_T_DATA:
        if (*len == 0 || *len > wal->ring / 2)
            return 0;
        *total = wal_rec_total(*len);
        break;
    case WAL_T_PAD:
        *total = WAL_HDR + (uint64_t)*len;
        if ((off + *total) % WAL_BLK != 0 || *total > WAL_BLK)
            return 0;
        break;
    case WAL_T_WRAP:
        *total = WAL_HDR + (uint64_t)*len;
        if (off + *total != wal->ring)
            return 0;
        break;
    case WAL_T_GEN:
        if (*len != 32)
            return 0;
        *total = WAL_HDR + 32;
        break;
    case WAL_T_REF:
        if (*len <= WAL_REF_SUB || *len > wal->ring / 2 || (pos + WAL_HDR + *len) % WAL_REF_ALIGN)
            return 0;
        *total = WAL_HDR + (uint64_t)*len;
        break;
    default:
        return 0;
    }
    if (off + *total > wal->ring || pos + *total > limit)
        return 0;
    memcpy(hc, h, WAL_HDR);
    put_le32(hc + 4, 0);
    uint32_t crc = stratus_crc32c(0, hc, WAL_HDR);
    *payload = NULL;
    if (*type == WAL_T_DATA || *type == WAL_T_GEN) {
        const unsigned char *p = wal_read(wal, r, off + WAL_HDR, *type == WAL_T_DATA ? *len : 32, &err);
        if (!p)
            return err;
        crc = stratus_crc32c(crc, p, *type == WAL_T_DATA ? *len : 32);
        *payload = p;
    } else if (*type == WAL_T_REF) {
        /* the whole record in one read: the head is moved next to the data in place below */
        unsigned char *p = (unsigned char *)(uintptr_t)wal_read(wal, r, off + WAL_HDR, *len, &err);
        if (!p)
            return err;
        uint64_t head = get_le32(p), data = get_le32(p + 4), skip = get_le32(p + 8);
        uint64_t area = wal_ref_head_area(pos, head);
        if (get_le32(p + 12) != 0 || data == 0 || area > *total ||
            skip + data > *total - area)
            return 0;
        unsigned char *d = p - WAL_HDR + area + skip;
        crc = stratus_crc32c(crc, p, WAL_REF_SUB + head);
        crc = stratus_crc32c(crc, d, data);
        if (crc != want)
            return 0;
        /* d - head >= p + WAL_REF_SUB (area >= header + sub-header + head): inside the record */
        memmove(d - head, p + WAL_REF_SUB, head);
        *payload = d - head;
        *len = (uint32_t)(head + data);
        return 1;
    }
    return crc == want;
}

/* Parses the ring from replay_lsn; calls fn for DATA records >= trim_lsn when fn != NULL.
 * On success sets scan_end (end of the last valid record) and scanned. */
static int wal_scan(struct stratus_wal *wal, stratus_wal_replay_fn *fn, void *arg,
                    struct stratus_errbuf *eb)
{
    struct wal_reader r;
    uint64_t pos = wal->replay_lsn, limit = wal->replay_lsn + wal->ring, chain_gen = 0;
    uint64_t nrec = 0, nbytes = 0;
    int rc = 0;

    wal_reader_init(&r, wal);
    pthread_mutex_lock(&wal->mu);
    wal->nbounds = 0;
    wal_bound_push(wal, pos);
    pthread_mutex_unlock(&wal->mu);
    for (;;) {
        int type;
        uint32_t len;
        uint64_t gen, total;
        const unsigned char *payload;
        int v = wal_check(wal, &r, pos, limit, &type, &len, &gen, &total, &payload);
        if (v < 0) {
            rc = stratus_errf(eb, v, "wal: read %s at lsn %llu failed", wal->path,
                              (unsigned long long)pos);
            goto out;
        }
        if (v == 1) {
            if (type == WAL_T_GEN) {
                uint64_t prev = get_le64(payload);
                if (chain_gen && (gen <= chain_gen || prev != pos))
                    v = 0;
            } else if (chain_gen && gen != chain_gen) {
                v = 0;
            }
        }
        if (v != 1 && pos % WAL_BLK != 0 && chain_gen) {
            /* torn tail at pos: a later run may have restarted at the next block */
            uint64_t q = wal_align_up(pos, WAL_BLK);
            v = wal_check(wal, &r, q, limit, &type, &len, &gen, &total, &payload);
            if (v < 0) {
                rc = stratus_errf(eb, v, "wal: read %s at lsn %llu failed", wal->path,
                                  (unsigned long long)q);
                goto out;
            }
            if (v == 1 && !(type == WAL_T_GEN && gen > chain_gen && get_le64(payload) == pos))
                v = 0;
            if (v == 1)
                pos = q;
        }
        if (v != 1)
            break;
        chain_gen = gen;
        if (type == WAL_T_REF)
            wal->live_refs = 1;
        if ((type == WAL_T_DATA || type == WAL_T_REF) && pos >= wal->trim_lsn) {
            nrec++;
            nbytes += len;
            if (fn) {
                rc = fn(arg, pos, payload, len);
                if (rc != 0) {
                    stratus_errf(eb, rc, "wal: replay stopped by the callback at lsn %llu",
                                 (unsigned long long)pos);
                    goto out;
                }
            }
        }
        if (type == WAL_T_GEN) {
            pthread_mutex_lock(&wal->mu);
            wal_bound_push(wal, pos);
            pthread_mutex_unlock(&wal->mu);
        }
        pos += total;
        if (type == WAL_T_PAD || type == WAL_T_WRAP) {
            pthread_mutex_lock(&wal->mu);
            wal_bound_push(wal, pos);
            pthread_mutex_unlock(&wal->mu);
        }
    }
    pthread_mutex_lock(&wal->mu);
    wal->scan_end = pos;
    wal->scanned = 1;
    wal->st.replay_reads_ahead = r.nahead;
    wal->st.replay_reads_inline = r.nsync;
    pthread_mutex_unlock(&wal->mu);
    LOG_INFO("wal", "replayed %s: %llu records, %llu bytes, lsn %llu..%llu", wal->path,
             (unsigned long long)nrec, (unsigned long long)nbytes,
             (unsigned long long)wal->replay_lsn, (unsigned long long)pos);
    LOG_DEBUG("wal", "replay windows: %llu read ahead, %llu read in place",
              (unsigned long long)r.nahead, (unsigned long long)r.nsync);
out:
    wal_reader_fini(&r);
    return rc;
}

int stratus_wal_replay(struct stratus_wal *wal, stratus_wal_replay_fn *fn, void *arg,
                       struct stratus_errbuf *eb)
{
    if (wal->obj)
        return stratus_walobj_replay(wal->obj, fn, arg, eb);
    if (wal->started)
        return stratus_errf(eb, STRATUS_EINVAL, "wal: replay after start");
    return wal_scan(wal, fn, arg, eb);
}

/* ---- batches --------------------------------------------------------------------------- */

static unsigned char *wal_buf_get(struct stratus_wal *wal, uint32_t cap)
{
    void *p = NULL;
    if (cap == wal->max_write && wal->nfree > 0)
        return wal->freebufs[--wal->nfree];
    if (posix_memalign(&p, WAL_BLK, cap) != 0)
        return NULL;
    return p;
}

static void wal_buf_put(struct stratus_wal *wal, unsigned char *buf, uint32_t cap)
{
    if (cap == wal->max_write && wal->nfree < wal->nwriters + 2)
        wal->freebufs[wal->nfree++] = buf;
    else
        free(buf);
}

static void wal_batch_free(struct stratus_wal *wal, struct wal_batch *b)
{
    if (b->buf)
        wal_buf_put(wal, b->buf, b->cap);
    for (int i = 0; i < b->nrefs; i++)
        stratus_rcbuf_unref(b->refs[i].owner);
    free(b->refs);
    free(b->comps);
    free(b);
}

/* A new open batch at next_start with room for need LSN bytes, bneed of them in its buffer
 * (less than need for a reference record); NULL on OOM. Caller holds mu. */
static struct wal_batch *wal_batch_new(struct stratus_wal *wal, uint64_t need, uint64_t bneed)
{
    struct wal_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->lcap = need > wal->max_write ? (uint32_t)wal_align_up(need, WAL_BLK) : wal->max_write;
    b->cap = bneed > wal->max_write ? (uint32_t)wal_align_up(bneed, WAL_BLK) : wal->max_write;
    b->buf = wal_buf_get(wal, b->cap);
    if (!b->buf) {
        free(b);
        return NULL;
    }
    b->start = wal->next_start;
    b->state = WAL_B_OPEN;
    b->opened_us = stratus_mono_us();
    if (wal->tail)
        wal->tail->next = b;
    else
        wal->first = b;
    wal->tail = b;
    if (!wal->next_issue)
        wal->next_issue = b;
    wal->open = b;
    wal_bound_push(wal, b->start);
    return b;
}

/* Closes an open batch to appends and fixes its end. Caller holds mu. */
static void wal_batch_seal(struct stratus_wal *wal, struct wal_batch *b, int wrap)
{
    b->wrap = wrap;
    b->end = wrap ? wal_lap_end(wal, b->start) : b->start + wal_align_up(b->used, WAL_BLK);
    b->state = WAL_B_SEALED;
    wal->next_start = b->end;
    if (wal->open == b)
        wal->open = NULL;
}

/* Writes the PAD or WRAP header closing b (no appender touches b any more). Returns the
 * number of bytes to write (LSN bytes from b->start: the spans of its reference records
 * included). */
static size_t wal_batch_finish(struct stratus_wal *wal, struct wal_batch *b)
{
    uint64_t fill_end = b->start + b->used;
    size_t phys = (size_t)(b->end - b->start);
    if (fill_end < b->end) {
        unsigned char *h = b->buf + b->bused;
        uint32_t skip = (uint32_t)(b->end - fill_end - WAL_HDR);
        wal_hdr_fill(h, fill_end, skip, b->wrap ? WAL_T_WRAP : WAL_T_PAD, wal->gen);
        put_le32(h + 4, stratus_crc32c(0, h, WAL_HDR));
        if (b->wrap)
            phys = (size_t)wal_align_up(b->used + WAL_HDR, WAL_BLK);
        else
            memset(h + WAL_HDR, 0, skip);
    }
    return phys;
}

/* Whether an idle writer woken now would issue next_issue (wal_writer_main's rules, short of
 * the batch delay and a full ring). Caller holds mu. */
static int wal_issuable(const struct stratus_wal *wal)
{
    const struct wal_batch *b = wal->next_issue;

    if (!b)
        return 0;
    if (b->state != WAL_B_OPEN)
        return 1;
    if (b->used == 0)
        return 0;
    return (wal->inflight == 0 && wal->holds == 0) || b->used >= WAL_ISSUE_MIN ||
           wal->closing || wal->failed;
}

/* Wakes every writer, waiting for work or for anything else (closing, failure). Caller holds
 * mu. */
static void wal_wake_all(struct stratus_wal *wal)
{
    pthread_cond_broadcast(&wal->work_cv);
    pthread_cond_broadcast(&wal->idle_cv);
}

/* Wakes one idle writer unless every idle writer is already woken and on its way (a burst of
 * appends or releases then costs one wakeup, not one per idle writer). Caller holds mu. */
static void wal_wake_one(struct stratus_wal *wal)
{
    if (wal->idle > wal->woken) {
        wal->woken++;
        pthread_cond_signal(&wal->idle_cv);
    }
}

/* An idle writer's wait for work. Caller holds mu. */
static void wal_idle_wait(struct stratus_wal *wal)
{
    wal->idle++;
    pthread_cond_wait(&wal->idle_cv, &wal->mu);
    wal->idle--;
    if (wal->woken > 0)
        wal->woken--;
}

/* Delivers completions of the done batches at the front, in LSN order. Caller holds mu;
 * it is released around the callbacks. */
static void wal_deliver(struct stratus_wal *wal)
{
    if (wal->delivering)
        return;
    wal->delivering = 1;
    while (wal->first && wal->first->state == WAL_B_DONE) {
        struct wal_batch *b = wal->first;
        wal->first = b->next;
        if (!wal->first)
            wal->tail = NULL;
        int err = b->err ? b->err : wal->deliver_err;
        if (err && !wal->deliver_err)
            wal->deliver_err = err;
        if (!err)
            wal->durable_lsn = b->end;
        wal->pending_bytes -= b->bytes;
        pthread_mutex_unlock(&wal->mu);
        stratus_loop_defer_wakes(); /* each network thread woken once for the whole batch */
        for (size_t i = 0; i < b->ncomp; i++)
            b->comps[i].done(b->comps[i].arg, err, b->comps[i].lsn);
        stratus_loop_flush_wakes();
        pthread_mutex_lock(&wal->mu);
        wal_batch_free(wal, b);
    }
    wal->delivering = 0;
    if (wal->closing)
        wal_wake_all(wal);
}

/* Writes phys LSN bytes of b at its place in the ring: its buffer, with the spans of its
 * reference records in between, in one pwritev. Where the device refuses that memory's
 * alignment (EINVAL), the pieces go through one aligned bounce buffer instead and later
 * appends copy. 0 or -errno. */
static int wal_write_out(struct stratus_wal *wal, struct wal_batch *b, size_t phys)
{
    uint64_t off = WAL_SB_AREA + b->start % wal->ring;
    if (b->nrefs == 0)
        return wal_pwrite_all(wal->fd, b->buf, phys, off);
    struct iovec v[2 * WAL_MAX_REFS + 1];
    int n = 0;
    size_t lpos = 0, bpos = 0;
    for (int i = 0; i < b->nrefs; i++) {
        const struct wal_ref *r = &b->refs[i];
        if (r->bat > bpos)
            v[n++] = (struct iovec){b->buf + bpos, r->bat - bpos};
        lpos += r->bat - bpos;
        v[n++] = (struct iovec){(void *)(uintptr_t)r->ptr, r->len};
        lpos += r->len;
        bpos = r->bat;
    }
    if (phys > lpos)
        v[n++] = (struct iovec){b->buf + bpos, phys - lpos};
    struct iovec keep[2 * WAL_MAX_REFS + 1];
    memcpy(keep, v, (size_t)n * sizeof *v);
    int rc = wal_pwritev_all(wal->fd, v, n, off);
    if (rc != -EINVAL)
        return rc;
    unsigned char *bounce = NULL;
    if (posix_memalign((void **)&bounce, WAL_BLK, wal_align_up(phys, WAL_BLK)) != 0)
        return -ENOMEM;
    for (int i = 0, at = 0; i < n; at += (int)keep[i].iov_len, i++)
        memcpy(bounce + at, keep[i].iov_base, keep[i].iov_len);
    rc = wal_pwrite_all(wal->fd, bounce, phys, off);
    free(bounce);
    pthread_mutex_lock(&wal->mu);
    if (wal->refs_ok && rc == 0)
        LOG_WARN("wal", "%s: writes from request buffers refused (EINVAL): copying from now on",
                 wal->path);
    wal->live_refs = 1; /* the ones already written stay until trimmed */
    wal->refs_ok = 0;
    pthread_mutex_unlock(&wal->mu);
    return rc;
}

/* Writes b (taken off next_issue, INFLIGHT and counted in inflight by the caller), or gives
 * it up with give_up, then completes it and delivers what is done. Caller holds mu; it is
 * released around the write and the completions. */
static void wal_write_batch(struct stratus_wal *wal, struct wal_batch *b, int give_up)
{
    int rc = 0;

    while (b->copiers)
        pthread_cond_wait(&wal->copy_cv, &wal->mu);
    if (give_up) {
        rc = give_up;
    } else {
        pthread_mutex_unlock(&wal->mu);
        size_t phys = wal_batch_finish(wal, b);
        int64_t t0 = stratus_mono_us();
        int w = wal_write_out(wal, b, phys);
        int s = w == 0 ? wal_sync(wal) : 0;
        int64_t dt = stratus_mono_us() - t0;
        if (wal->write_observer)
            wal->write_observer(wal->write_observer_arg, t0, dt);
        pthread_mutex_lock(&wal->mu);
        if (w != 0 || s < 0) {
            LOG_ERROR("wal", "write %s lsn=%llu len=%zu failed: %s", wal->path,
                      (unsigned long long)b->start, phys, strerror(w ? -w : -s));
            rc = STRATUS_EIO;
            wal->failed = 1;
            wal_wake_all(wal);
        }
        wal->st.writes++;
        wal->st.write_bytes += phys;
        wal->st.fsyncs += s > 0;
        wal->st.write_us_total += (uint64_t)dt;
        stratus_metric_observe_us(wal->write_hist, dt);
        if (dt > 1000000) /* every append in it waited as long: worth an operator's look */
            LOG_WARN("wal", "slow write: %lld ms for %zu bytes at lsn %llu (%s)",
                     (long long)(dt / 1000), phys, (unsigned long long)b->start, wal->path);
    }
    wal->inflight--;
    b->state = WAL_B_DONE;
    b->err = rc;
    wal_deliver(wal);
}

/* Run by stratus_loop_at_end on a loop thread whose appends started a batch: writes the
 * batch from this thread when the disk is idle and the batch small (the adaptive group
 * commit of wal_writer_main, without waking a writer to do it and being woken back by it:
 * at 20 MB/s of small produce requests those two hand-offs per write were most of the
 * latency the WAL added). Anything else is left to, or handed to, the writer threads. */
static void wal_kick(void *arg)
{
    struct stratus_wal *wal = arg;

    pthread_mutex_lock(&wal->mu);
    /* Like a writer, this thread goes round after its write and takes the batch that filled
     * meanwhile (other network threads' appends), if it is still small and unheld: handing
     * it to an idle writer instead costs that writer's wake-up, which on busy cores is the
     * tail of the produce latency. Bounded, so that this thread's own sockets are read. */
    for (int round = 0; round < WAL_LOOP_ROUNDS; round++) {
        struct wal_batch *b = wal->next_issue;
        if (!b || b->state != WAL_B_OPEN || b->used == 0 || b->used >= WAL_ISSUE_MIN ||
            wal->inflight != 0 || wal->holds != 0 || wal->closing || wal->failed)
            break;
        wal_batch_seal(wal, b, 0);
        if (b->end - wal->replay_lsn > wal->ring)
            break; /* the ring is full: a writer waits for trim() (woken below) */
        wal->next_issue = b->next;
        b->state = WAL_B_INFLIGHT;
        wal->inflight++;
        wal->st.loop_writes++;
        wal_write_batch(wal, b, 0);
        if (wal->closing || wal->failed)
            wal_wake_all(wal);
    }
    /* what this thread does not write (held, bigger, behind a write in flight that a loop
     * thread made, or the ring full) needs a writer */
    if (wal_issuable(wal))
        wal_wake_one(wal);
    pthread_mutex_unlock(&wal->mu);
}

static void *wal_writer_main(void *arg)
{
    struct stratus_wal *wal = arg;
    pthread_setname_np(pthread_self(), "wal-writer"); /* top -H, perf, gdb */
    (void)stratus_sched_latency_thread(); /* [broker] sched_slice_us; a refusal is logged */

    pthread_mutex_lock(&wal->mu);
    for (;;) {
        struct wal_batch *b = wal->next_issue;
        if (!b || (b->state == WAL_B_OPEN && b->used == 0)) {
            if (wal->closing)
                break;
            wal_idle_wait(wal);
            continue;
        }
        if (b->state == WAL_B_OPEN) {
            /* adaptive group commit: a small batch goes out only when the disk is idle; while
             * a write is in flight it keeps filling (walbench: 64 x 1 KiB appenders 37k/s ->
             * 60k/s); batches past WAL_ISSUE_MIN use every write slot */
            if ((wal->inflight > 0 || wal->holds > 0) && b->used < WAL_ISSUE_MIN &&
                !wal->closing && !wal->failed) {
                wal_idle_wait(wal); /* the write in flight or the release wakes */
                continue;
            }
            int64_t now = stratus_mono_us();
            if (wal->delay_us && !wal->closing && !wal->failed && b->used < b->lcap / 2 &&
                now < b->opened_us + wal->delay_us) {
                int64_t until = b->opened_us + wal->delay_us;
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                int64_t ns = (int64_t)ts.tv_nsec + (until - now) * 1000;
                ts.tv_sec += ns / 1000000000;
                ts.tv_nsec = ns % 1000000000;
                pthread_cond_timedwait(&wal->work_cv, &wal->mu, &ts);
                continue;
            }
            wal_batch_seal(wal, b, 0);
        }
        int give_up = 0;
        if (wal->failed) {
            give_up = STRATUS_EIO;
        } else if (b->end - wal->replay_lsn > wal->ring) {
            if (!wal->closing || wal->inflight > 0) {
                pthread_cond_wait(&wal->work_cv, &wal->mu); /* trim() or a completion wakes */
                continue;
            }
            LOG_WARN("wal", "closing %s with a full ring: lsn %llu.. not written", wal->path,
                     (unsigned long long)b->start);
            give_up = STRATUS_ECLOSED;
        }
        wal->next_issue = b->next;
        b->state = WAL_B_INFLIGHT;
        wal->inflight++;
        if (wal_issuable(wal)) /* a sealed batch behind this one: another write slot */
            wal_wake_one(wal);
        wal_write_batch(wal, b, give_up);
        /* This thread goes round the loop and takes the next batch itself; waking every idle
         * writer after each write (they all went back to sleep but one) cost ~6 context
         * switches per write, most of the broker's CPU at 20 MB/s in small writes. Wake one
         * more only when a second batch is ready for another slot; closing and failure wake
         * all (ring space comes from trim(), which broadcasts). */
        if (wal->closing || wal->failed)
            wal_wake_all(wal);
        else if (wal->next_issue && wal->next_issue->next &&
                 (wal->next_issue->state != WAL_B_OPEN || wal->next_issue->used >= WAL_ISSUE_MIN))
            wal_wake_one(wal);
    }
    pthread_mutex_unlock(&wal->mu);
    return NULL;
}

int stratus_wal_start(struct stratus_wal *wal, struct stratus_errbuf *eb)
{
    int rc;
    if (wal->obj)
        return stratus_walobj_start(wal->obj, eb);
    if (wal->started)
        return stratus_errf(eb, STRATUS_EINVAL, "wal: already started");
    if (!wal->scanned) {
        rc = wal_scan(wal, NULL, NULL, eb);
        if (rc != 0)
            return rc;
    }
    pthread_mutex_lock(&wal->sb_mu);
    uint64_t head = wal_align_up(wal->scan_end, WAL_BLK);
    uint64_t prev_end = wal->scan_end;
    if (head < wal->trim_lsn) {
        /* the log ends before its trim point: records were lost (not a torn tail) */
        LOG_WARN("wal", "%s ends at lsn %llu, before its trim point %llu", wal->path,
                 (unsigned long long)head, (unsigned long long)wal->trim_lsn);
        head = wal_align_up(wal->trim_lsn, WAL_BLK);
        prev_end = head;
    }
    uint64_t replay = wal->replay_lsn;
    if (prev_end == head && head != wal->scan_end)
        replay = head; /* nothing valid between the old replay point and head */
    rc = wal_sb_write(wal, wal->trim_lsn, replay, wal->gen + 1);
    if (rc == 0 && (wal->refs_ok || wal->live_refs))
        rc = wal_sb_write(wal, wal->trim_lsn, replay, wal->gen + 1); /* both slots version 2 */
    if (rc != 0) {
        pthread_mutex_unlock(&wal->sb_mu);
        return stratus_errf(eb, STRATUS_EIO, "wal: superblock write %s: %s", wal->path,
                            strerror(-rc));
    }
    pthread_mutex_lock(&wal->mu);
    wal->gen++;
    wal->replay_lsn = replay;
    if (replay == head) {
        wal->nbounds = 0;
        wal_bound_push(wal, head);
    }
    wal->durable_lsn = wal->next_start = head;
    struct wal_batch *b = wal_batch_new(wal, WAL_BLK, WAL_BLK);
    if (!b) {
        pthread_mutex_unlock(&wal->mu);
        pthread_mutex_unlock(&wal->sb_mu);
        return stratus_errf(eb, STRATUS_ENOMEM, "wal: out of memory");
    }
    wal_hdr_fill(b->buf, b->start, 32, WAL_T_GEN, wal->gen);
    memset(b->buf + WAL_HDR, 0, 32);
    put_le64(b->buf + WAL_HDR, prev_end);
    put_le32(b->buf + 4, stratus_crc32c(0, b->buf, 2 * WAL_HDR));
    b->used = b->bused = 2 * WAL_HDR;
    wal->started = 1;
    wal->threads = xcalloc((size_t)wal->nwriters, sizeof *wal->threads);
    for (int i = 0; i < wal->nwriters; i++) {
        if (pthread_create(&wal->threads[i], NULL, wal_writer_main, wal) != 0)
            break;
        wal->nthreads++;
    }
    pthread_mutex_unlock(&wal->mu);
    pthread_mutex_unlock(&wal->sb_mu);
    if (wal->nthreads == 0)
        return stratus_errf(eb, STRATUS_ENOMEM, "wal: cannot start a writer thread");
    LOG_INFO("wal", "started %s gen=%llu head=%llu trim=%llu direct=%d writers=%d", wal->path,
             (unsigned long long)wal->gen, (unsigned long long)head,
             (unsigned long long)wal->trim_lsn, wal->direct, wal->nthreads);
    return 0;
}

/* The append helpers the object WAL (walobj.c) shares; wal.h says what each does. */

int stratus_wal_append_len(const struct iovec *iov, int iovcnt, stratus_wal_done_fn *done,
                           uint64_t *len)
{
    if (iovcnt < 0 || (iovcnt > 0 && !iov) || !done)
        return STRATUS_EINVAL;
    *len = 0;
    for (int i = 0; i < iovcnt; i++)
        *len += iov[i].iov_len;
    return *len == 0 ? STRATUS_EINVAL : 0;
}

int stratus_wal_comps_reserve(struct stratus_wal_comp **comps, size_t n, size_t *cap)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    struct stratus_wal_comp *nc = realloc(*comps, ncap * sizeof *nc);
    if (!nc)
        return STRATUS_ENOMEM;
    *comps = nc;
    *cap = ncap;
    return 0;
}

uint32_t stratus_wal_copy_crc(unsigned char *dst, uint32_t crc, const struct iovec *iov,
                              const int64_t *crcs, int iovcnt)
{
    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_len)
            continue;
        /* the buffer is next read by the device (O_DIRECT) or the object put: streaming
         * stores, and any CRC to compute is read from the source, not the copy */
        stratus_copy_nt(dst, iov[i].iov_base, iov[i].iov_len);
        /* a piece whose CRC the caller knows is joined in without reading it again; the result
         * is the CRC of the bytes, exactly as if computed over the copy */
        if (crcs && crcs[i] >= 0)
            crc = stratus_crc32c_combine(crc, (uint32_t)crcs[i], iov[i].iov_len);
        else
            crc = stratus_crc32c(crc, iov[i].iov_base, iov[i].iov_len);
        dst += iov[i].iov_len;
    }
    return crc;
}

/* The CRC-32C of the iovcnt pieces continued from crc, joining in crcs[i] >= 0 (crcs may be
 * NULL) without reading those pieces. */
static uint32_t wal_crc_pieces(uint32_t crc, const struct iovec *iov, const int64_t *crcs,
                               int iovcnt)
{
    for (int i = 0; i < iovcnt; i++) {
        if (crcs && crcs[i] >= 0)
            crc = stratus_crc32c_combine(crc, (uint32_t)crcs[i], iov[i].iov_len);
        else
            crc = stratus_crc32c(crc, iov[i].iov_base, iov[i].iov_len);
    }
    return crc;
}

/* Whether pieces [nhead, iovcnt) can go as a REF record's data, written in place from owner:
 * at least WAL_REF_MIN bytes, back to back in memory, inside an rcbuf aligned for it. Fills
 * *span and *span_len (the whole blocks around them) and *skip. */
static int wal_ref_fits(const struct stratus_wal *wal, const struct iovec *iov, int iovcnt,
                        int nhead, const void *owner, const unsigned char **span,
                        uint32_t *span_len, uint32_t *skip)
{
    if (!owner || nhead < 0 || nhead >= iovcnt || stratus_rcbuf_align(owner) < WAL_REF_ALIGN)
        return 0;
    const unsigned char *data = iov[nhead].iov_base, *end = data;
    for (int i = nhead; i < iovcnt; i++) {
        if (iov[i].iov_len && (const unsigned char *)iov[i].iov_base != end)
            return 0;
        end += iov[i].iov_len;
    }
    const unsigned char *o = owner;
    size_t room = wal_align_up(stratus_rcbuf_len(owner), WAL_REF_ALIGN);
    if ((size_t)(end - data) < WAL_REF_MIN || data < o || end > o + stratus_rcbuf_len(owner) ||
        (size_t)(end - data) > wal->ring / 4)
        return 0;
    size_t from = (size_t)(data - o) / WAL_REF_ALIGN * WAL_REF_ALIGN;
    size_t to = wal_align_up((size_t)(end - o), WAL_REF_ALIGN);
    if (to > room)
        return 0;
    *span = o + from;
    *span_len = (uint32_t)(to - from);
    *skip = (uint32_t)((size_t)(data - o) - from);
    return 1;
}

/* Appends one record: a DATA record with every piece copied, or (owner set and the pieces
 * from nhead on fitting wal_ref_fits) a REF record with the first nhead copied and the rest
 * written in place from owner, which the batch then holds until its write is done. */
static int wal_append(struct stratus_wal *wal, const struct iovec *iov, const int64_t *crcs,
                      int iovcnt, int nhead, const void *owner, stratus_wal_done_fn *done,
                      void *arg, uint64_t *lsn_out)
{
    uint64_t len, head = 0, total, btotal, reserve = 0;
    struct wal_batch *b;
    const unsigned char *span = NULL;
    uint32_t span_len = 0, skip = 0;
    int rc = stratus_wal_append_len(iov, iovcnt, done, &len);

    if (rc != 0)
        return rc;
    int ref = wal_ref_fits(wal, iov, iovcnt, nhead, owner, &span, &span_len, &skip);
    if (ref)
        for (int i = 0; i < nhead; i++)
            head += iov[i].iov_len;
    /* a REF record's size depends on where it lands (its span starts 512-aligned): the most
     * it can take counts against the ceilings */
    total = ref ? WAL_HDR + WAL_REF_SUB + head + WAL_REF_ALIGN + span_len : wal_rec_total(len);
    btotal = ref ? total - span_len : total;

    pthread_mutex_lock(&wal->mu);
    if (wal->closing || !wal->started) {
        rc = wal->closing ? STRATUS_ECLOSED : STRATUS_EINVAL;
        goto out;
    }
    if (wal->failed) {
        rc = STRATUS_EIO;
        goto out;
    }
    if (len > UINT32_MAX || wal_align_up(total + WAL_HDR, WAL_BLK) > wal->ring / 2) {
        rc = STRATUS_ERANGE;
        goto out;
    }
    if (wal->pending_bytes + total > wal->max_pending) {
        rc = STRATUS_ENOMEM;
        goto out;
    }
    if (ref && !wal->refs_ok)
        ref = 0, total = btotal = wal_rec_total(len);
    b = wal->open;
    if (b) {
        uint64_t at = b->start + b->used;
        if (ref) {
            total = wal_ref_head_area(at, head) + span_len;
            btotal = total - span_len;
        }
        /* a batch holding REF records keeps a block of its buffer free for the closing PAD or
         * WRAP (its buffer offsets no longer track its LSNs) */
        reserve = ref || b->nrefs ? WAL_BLK : 0;
        /* full first: a WRAP header always fits after a record that did (total >= 64) */
        if (b->used + total > b->lcap || b->bused + btotal + reserve > b->cap ||
            (ref && b->nrefs == WAL_MAX_REFS))
            wal_batch_seal(wal, b, 0), b = NULL;
        else if (at + total > wal_lap_end(wal, b->start))
            wal_batch_seal(wal, b, 1), b = NULL;
    }
    if (!b) {
        if (ref) {
            total = wal_ref_head_area(wal->next_start, head) + span_len;
            btotal = total - span_len;
        }
        if (wal->next_start % wal->ring + total > wal->ring) {
            /* the record cannot start here: a batch holding only a WRAP record */
            b = wal_batch_new(wal, WAL_BLK, WAL_BLK);
            if (!b) {
                rc = STRATUS_ENOMEM;
                goto out;
            }
            wal_batch_seal(wal, b, 1);
            if (ref) { /* the next lap starts block-aligned, as next_start was */
                total = wal_ref_head_area(wal->next_start, head) + span_len;
                btotal = total - span_len;
            }
        }
        b = wal_batch_new(wal, total, btotal + (ref ? WAL_BLK : 0));
        if (!b) {
            rc = STRATUS_ENOMEM;
            goto out;
        }
    }
    rc = stratus_wal_comps_reserve(&b->comps, b->ncomp, &b->capcomp);
    if (rc == 0 && ref && !b->refs) {
        b->refs = calloc(WAL_MAX_REFS, sizeof *b->refs);
        rc = b->refs ? 0 : STRATUS_ENOMEM;
    }
    if (rc != 0)
        goto out;
    int was_empty = b->used == 0;
    uint32_t at = b->used, bat = b->bused;
    uint64_t lsn = b->start + at;
    b->used += (uint32_t)total;
    b->bused += (uint32_t)btotal;
    if (ref) {
        stratus_rcbuf_ref(owner);
        b->refs[b->nrefs++] = (struct wal_ref){b->bused, span_len, span, owner};
        wal->st.ref_records++;
        wal->st.ref_bytes += len - head;
    }
    b->copiers++;
    b->bytes += total;
    b->comps[b->ncomp++] = (struct stratus_wal_comp){done, arg, lsn};
    wal->pending_bytes += total;
    wal->st.appends++;
    wal->st.append_bytes += len;
    uint64_t gen = wal->gen;
    /* Wake a writer only when one would issue now: the first record of a batch while no write
     * is in flight and nobody holds the WAL, or a batch reaching WAL_ISSUE_MIN. While a write
     * is in flight its writer comes round and takes this batch itself; waking another writer
     * per append only to see it go back to sleep was most of the WAL threads' context
     * switches at 20 MB/s. */
    if (was_empty && b->used < WAL_ISSUE_MIN && wal->loop_writes &&
        stratus_loop_at_end(wal_kick, wal) == 0)
        ; /* a loop thread: it writes the batch itself once its iteration is done */
    else if ((was_empty || (at < WAL_ISSUE_MIN && b->used >= WAL_ISSUE_MIN)) && wal_issuable(wal))
        wal_wake_one(wal);
    pthread_mutex_unlock(&wal->mu);

    /* copy and checksum outside the lock: the writer waits for copiers before issuing */
    unsigned char *h = b->buf + bat, *p = h + WAL_HDR;
    uint32_t crc;
    if (ref) {
        wal_hdr_fill(h, lsn, (uint32_t)(total - WAL_HDR), WAL_T_REF, gen);
        put_le32(p, (uint32_t)head);
        put_le32(p + 4, (uint32_t)(len - head));
        put_le32(p + 8, skip);
        put_le32(p + 12, 0);
        crc = stratus_crc32c(stratus_crc32c(0, h, WAL_HDR), p, WAL_REF_SUB);
        crc = stratus_wal_copy_crc(p + WAL_REF_SUB, crc, iov, crcs, nhead);
        memset(p + WAL_REF_SUB + head, 0, (size_t)(btotal - WAL_HDR - WAL_REF_SUB - head));
        crc = wal_crc_pieces(crc, iov + nhead, crcs ? crcs + nhead : NULL, iovcnt - nhead);
    } else {
        wal_hdr_fill(h, lsn, (uint32_t)len, WAL_T_DATA, gen);
        crc = stratus_wal_copy_crc(p, stratus_crc32c(0, h, WAL_HDR), iov, crcs, iovcnt);
        memset(p + len, 0, (size_t)(total - WAL_HDR - len));
    }
    put_le32(h + 4, crc);
    if (lsn_out)
        *lsn_out = lsn;

    pthread_mutex_lock(&wal->mu);
    if (--b->copiers == 0 && b->state != WAL_B_OPEN)
        pthread_cond_broadcast(&wal->copy_cv);
out:
    pthread_mutex_unlock(&wal->mu);
    return rc;
}

int stratus_wal_append(struct stratus_wal *wal, const struct iovec *iov, int iovcnt,
                       stratus_wal_done_fn *done, void *arg, uint64_t *lsn_out)
{
    if (wal->obj)
        return stratus_walobj_append(wal->obj, iov, NULL, iovcnt, done, arg, lsn_out);
    return wal_append(wal, iov, NULL, iovcnt, 0, NULL, done, arg, lsn_out);
}

int stratus_wal_append_crc(struct stratus_wal *wal, const struct iovec *iov, const int64_t *crcs,
                           int iovcnt, stratus_wal_done_fn *done, void *arg, uint64_t *lsn_out)
{
    if (wal->obj)
        return stratus_walobj_append(wal->obj, iov, crcs, iovcnt, done, arg, lsn_out);
    return wal_append(wal, iov, crcs, iovcnt, 0, NULL, done, arg, lsn_out);
}

int stratus_wal_append_ref(struct stratus_wal *wal, const struct iovec *iov, const int64_t *crcs,
                           int iovcnt, int nhead, const void *owner, stratus_wal_done_fn *done,
                           void *arg, uint64_t *lsn_out)
{
    if (wal->obj)
        return stratus_walobj_append(wal->obj, iov, crcs, iovcnt, done, arg, lsn_out);
    return wal_append(wal, iov, crcs, iovcnt, nhead, owner, done, arg, lsn_out);
}

void stratus_wal_hold(struct stratus_wal *wal)
{
    if (wal->obj) /* object batches are cut by time and size only */
        return;
    pthread_mutex_lock(&wal->mu);
    wal->holds++;
    pthread_mutex_unlock(&wal->mu);
}

void stratus_wal_release(struct stratus_wal *wal)
{
    if (wal->obj)
        return;
    pthread_mutex_lock(&wal->mu);
    if (wal->holds > 0 && --wal->holds == 0 && wal_issuable(wal) &&
        !(wal->loop_writes && stratus_loop_at_end(wal_kick, wal) == 0))
        wal_wake_one(wal);
    pthread_mutex_unlock(&wal->mu);
}

int stratus_wal_trim(struct stratus_wal *wal, uint64_t upto_lsn, struct stratus_errbuf *eb)
{
    int rc;
    if (wal->obj)
        return stratus_walobj_trim(wal->obj, upto_lsn, eb);
    pthread_mutex_lock(&wal->sb_mu);
    pthread_mutex_lock(&wal->mu);
    if (upto_lsn > wal->durable_lsn)
        upto_lsn = wal->durable_lsn;
    if (upto_lsn <= wal->trim_lsn) {
        pthread_mutex_unlock(&wal->mu);
        pthread_mutex_unlock(&wal->sb_mu);
        return 0;
    }
    uint64_t replay = wal_bound_find(wal, upto_lsn);
    uint64_t gen = wal->gen;
    pthread_mutex_unlock(&wal->mu);
    rc = wal_sb_write(wal, upto_lsn, replay, gen);
    if (rc != 0) {
        pthread_mutex_unlock(&wal->sb_mu);
        return stratus_errf(eb, STRATUS_EIO, "wal: trim %s: superblock write: %s", wal->path,
                            strerror(-rc));
    }
    pthread_mutex_lock(&wal->mu);
    wal->trim_lsn = upto_lsn;
    if (replay > wal->replay_lsn) {
        wal->replay_lsn = replay;
        wal_bound_drop_below(wal, replay);
    }
    pthread_cond_broadcast(&wal->work_cv);
    pthread_mutex_unlock(&wal->mu);
    pthread_mutex_unlock(&wal->sb_mu);
    return 0;
}

void stratus_wal_get_stats(struct stratus_wal *wal, struct stratus_wal_stats *out)
{
    if (wal->obj) {
        stratus_walobj_get_stats(wal->obj, out);
        return;
    }
    pthread_mutex_lock(&wal->mu);
    *out = wal->st;
    out->head_lsn = wal->open ? wal->open->start + wal->open->used : wal->next_start;
    if (!wal->started)
        out->head_lsn = wal_align_up(wal->scan_end, WAL_BLK);
    out->durable_lsn = wal->durable_lsn;
    out->trim_lsn = wal->trim_lsn;
    out->pending_bytes = wal->pending_bytes;
    out->direct_io = wal->direct;
    pthread_mutex_unlock(&wal->mu);
}

void stratus_wal_close(struct stratus_wal *wal)
{
    if (!wal)
        return;
    if (wal->obj) {
        stratus_walobj_close(wal->obj);
        free(wal);
        return;
    }
    pthread_mutex_lock(&wal->mu);
    wal->closing = 1;
    wal_wake_all(wal);
    pthread_mutex_unlock(&wal->mu);
    for (int i = 0; i < wal->nthreads; i++)
        pthread_join(wal->threads[i], NULL);
    /* a loop thread's write (wal_kick) that began before closing: it wakes all when done */
    pthread_mutex_lock(&wal->mu);
    while (wal->inflight > 0 || wal->delivering)
        pthread_cond_wait(&wal->work_cv, &wal->mu);
    pthread_mutex_unlock(&wal->mu);
    /* the writers leave nothing behind; free whatever a failed start left */
    while (wal->first) {
        struct wal_batch *b = wal->first;
        wal->first = b->next;
        for (size_t i = 0; i < b->ncomp; i++)
            b->comps[i].done(b->comps[i].arg, STRATUS_ECLOSED, b->comps[i].lsn);
        wal_batch_free(wal, b);
    }
    for (int i = 0; i < wal->nfree; i++)
        free(wal->freebufs[i]);
    LOG_INFO("wal", "closed %s durable=%llu", wal->path, (unsigned long long)wal->durable_lsn);
    close(wal->fd);
    free(wal->freebufs);
    free(wal->threads);
    free(wal->bounds);
    free(wal->sbbuf);
    free(wal->path);
    pthread_mutex_destroy(&wal->mu);
    pthread_mutex_destroy(&wal->sb_mu);
    pthread_cond_destroy(&wal->work_cv);
    pthread_cond_destroy(&wal->idle_cv);
    pthread_cond_destroy(&wal->copy_cv);
    free(wal);
}
