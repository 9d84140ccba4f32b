/* wal.h - the write-ahead log: durable, group-committed appends of opaque records.
 *
 * The WAL is a preallocated file used as a ring. Appends from any thread are queued; a writer
 * thread packs every pending record into one aligned O_DIRECT|O_DSYNC write (several writes in
 * flight), and calls each record's completion once the write covering it is durable, in LSN
 * order. Where the file system refuses O_DIRECT (tmpfs), it falls back to buffered writes +
 * fdatasync with a warning, never to no sync at all. An LSN is the logical byte position of a
 * record in the ring (monotonic, never reused). trim() frees the ring up to an LSN once the
 * records before it are safe elsewhere (uploaded); the trim point is durable. On open, replay()
 * returns every intact record after the trim point and stops at the first torn or corrupt one.
 * The on-disk format is documented at the top of wal.c.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_STREAM_WAL_H
#define STRATUS_STREAM_WAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "stratus/stratus_err.h"

struct stratus_wal;
struct stratus_storage;

struct stratus_wal_conf {
    const char *path;          /* the WAL file; created and preallocated if absent */
    uint64_t size_bytes;       /* ring size (default 1 GiB); rounded to the alignment */
    uint32_t max_write_bytes;  /* largest single write (default 1 MiB) */
    int max_inflight;          /* writes in flight at once (default 4) */
    uint64_t max_pending_bytes;/* appends queued but not yet written, ceiling (default 256 MiB) */
    int force_buffered;        /* 1 = do not try O_DIRECT (tests) */
    /* Added by the WAL (grow only at the end; zero = default): */
    uint32_t batch_delay_us;   /* a writer waits up to this long for a batch to fill before
                                  issuing it while it is under half of max_write_bytes (0) */
    int skip_zero_fill;        /* 1 = only fallocate a new file; by default it is also written
                                  with zeros once, so later O_DSYNC writes need no metadata
                                  (extent conversion) commit: ~1.7x faster on ext4 */
    /* Object WAL ([wal] type = object, walobj.c): records go into objects of the storage
     * plugin instead of the file at path (path, size_bytes and the O_DIRECT knobs are unused).
     * object_storage != NULL selects it. */
    struct stratus_storage *object_storage; /* borrowed; outlives the WAL */
    const char *object_prefix;   /* "wal/<node>/<incarnation>/" (copied); NULL or "" =
                                    "wal/local/" (single node: replayed after a restart) */
    uint32_t object_interval_ms; /* group commit window (default 150) */
    uint64_t object_max_bytes;   /* cut an object early at this size (default 8 MiB) */
    /* Ack fence (cluster mode; NULL = none): returns the monotonic ms (stratus_mono_ms) after
     * which a finished PUT must not acknowledge its records: they complete with STRATUS_EAGAIN
     * instead (not acknowledged; the WAL stays usable). Called on the writer thread, before
     * and after every PUT (past before: the PUT is skipped); must not block. */
    int64_t (*ack_deadline)(void *arg);
    void *ack_deadline_arg;
    /* Where each write's latency goes (the file WAL: pwrite + sync; the object WAL: the PUT);
     * a histogram of the metrics registry, borrowed; NULL = not observed. */
    struct stratus_metric *write_hist;
    /* 1 = only the writer threads write. By default a batch that an event loop's thread
     * (stratus_loop_current()) starts while the disk is idle is written by that thread at the
     * end of its loop iteration (stratus_loop_at_end), with everything the iteration appended:
     * no hand-off to a writer and back. Batches past 64 KiB, a full ring and batch_delay_us
     * stay with the writers. */
    int writers_only;
    /* Told of every group commit write of the file WAL after it finishes, on the thread that
     * made it: when it began (stratus_mono_us) and how long it took. Must not block
     * (coldgate.c uses it to keep cold reads from slowing the WAL down). NULL = none. */
    void (*write_observer)(void *arg, int64_t start_us, int64_t dt_us);
    void *write_observer_arg;
    /* 1 = copy every record into the WAL's own buffers. By default stratus_wal_append_ref's
     * large data is written straight from the request buffer it arrived in (no copy). */
    int copy_always;
};

/* Completion of one append: err is 0 when durable, or a STRATUS_E* code when the write
 * failed (the file WAL is then unusable and every later append fails too; the object WAL
 * fails only that object's records, and STRATUS_EAGAIN means the ack fence passed). Called on
 * the WAL's writer thread: do not block; post the result to the thread that needs it. */
typedef void stratus_wal_done_fn(void *arg, int err, uint64_t lsn);

/* Called by replay() for each intact record in LSN order; rec is borrowed for the call.
 * A non-zero return stops the replay and is returned by it. */
typedef int stratus_wal_replay_fn(void *arg, uint64_t lsn, const void *rec, size_t len);

/* @locality any (startup). Opens or creates the WAL file. */
int stratus_wal_open(const struct stratus_wal_conf *conf, struct stratus_wal **out,
                     struct stratus_errbuf *eb);

/* @locality startup, before start(). Replays the records after the trim point. */
int stratus_wal_replay(struct stratus_wal *wal, stratus_wal_replay_fn *fn, void *arg,
                       struct stratus_errbuf *eb);

/* @locality startup. Starts the writer thread; appends are accepted from then on. */
int stratus_wal_start(struct stratus_wal *wal, struct stratus_errbuf *eb);

/* @locality any. Queues one record made of iovcnt pieces (copied before return). done is called
 * exactly once, unless this returns an error. Returns STRATUS_ENOMEM when the pending-bytes
 * ceiling is reached, STRATUS_ERANGE when the record is larger than the ring can ever hold,
 * STRATUS_ECLOSED after close began, STRATUS_EIO after a failed write. When the ring is full
 * the record waits (pending) until trim() frees space. */
int stratus_wal_append(struct stratus_wal *wal, const struct iovec *iov, int iovcnt,
                       stratus_wal_done_fn *done, void *arg, uint64_t *lsn_out /* OUT, may be NULL */);

/* @locality any. stratus_wal_append, where crcs[i] >= 0 is stratus_crc32c(0, iov[i]) as the
 * caller already computed it (a Kafka batch's CRC field covers its bytes 21..end, checked on
 * arrival), so the record CRC joins it in (stratus_crc32c_combine) instead of reading those
 * bytes again; crcs[i] < 0: computed here. The record and its CRC are exactly those
 * stratus_wal_append would write -- replay checks every byte as before -- provided each known
 * CRC is right: a wrong one makes the record fail replay, so it can never hide a torn write. */
int stratus_wal_append_crc(struct stratus_wal *wal, const struct iovec *iov, const int64_t *crcs,
                           int iovcnt, stratus_wal_done_fn *done, void *arg,
                           uint64_t *lsn_out /* OUT, may be NULL */);

/* @locality any. stratus_wal_append_crc, where pieces nhead.. (the data: at least 64 KiB,
 * back to back in memory) lie inside owner, an rcbuf made by stratus_rcbuf_new_aligned(n,
 * 512): they are then not copied but written to the file straight from owner's memory (a REF
 * record, wal.c), which the WAL holds a reference to until the write is done, so the data
 * must not change after this call. Anything else (no owner, small or scattered data, the
 * object WAL, conf->copy_always, a device needing more alignment) is copied as by
 * stratus_wal_append_crc. Replay returns the record exactly as for a copied one. */
int stratus_wal_append_ref(struct stratus_wal *wal, const struct iovec *iov, const int64_t *crcs,
                           int iovcnt, int nhead, const void *owner, stratus_wal_done_fn *done,
                           void *arg, uint64_t *lsn_out /* OUT, may be NULL */);

/* @locality any. Group commit hint: between hold and release (a few appends in a row, e.g.
 * one produce request's partitions; never across a wait) a batch under 64 KiB is not issued,
 * so the appends share one write instead of the first going out alone. Larger batches still
 * go; release wakes a writer. Holds nest and may come from several threads. */
void stratus_wal_hold(struct stratus_wal *wal);
void stratus_wal_release(struct stratus_wal *wal);

/* @locality any. Frees every record whose LSN is < upto_lsn. Durable before return
 * (it writes the superblock), so call it from a background thread. */
int stratus_wal_trim(struct stratus_wal *wal, uint64_t upto_lsn, struct stratus_errbuf *eb);

struct stratus_wal_stats {
    uint64_t appends, append_bytes, writes, write_bytes, fsyncs;
    uint64_t head_lsn;    /* next LSN to be assigned */
    uint64_t durable_lsn; /* every record below this is durable */
    uint64_t trim_lsn;    /* every record below this is freed */
    uint64_t pending_bytes;
    uint64_t write_us_total; /* sum of write latencies, for a mean (the histogram: conf) */
    int direct_io;        /* 1 when O_DIRECT is in use */
    /* the last replay's 4 MiB windows: read ahead by its helper thread while the one before
     * was parsed, or read in place (the first, records larger than a window) */
    uint64_t replay_reads_ahead, replay_reads_inline;
    uint64_t loop_writes; /* of writes, those made by the loop thread that filled the batch */
    uint64_t ref_records, ref_bytes; /* appends written in place (REF), and their data bytes */
};
void stratus_wal_get_stats(struct stratus_wal *wal, struct stratus_wal_stats *out);

/* Reads the object WAL under prefix (another broker's incarnation, for recovery; or anything
 * written with that prefix): every intact record of every object, in LSN order, as replay()
 * does. Blocking (storage GETs). */
int stratus_wal_read_objects(struct stratus_storage *st, const char *prefix,
                             stratus_wal_replay_fn *fn, void *arg, struct stratus_errbuf *eb);
/* Deletes every WAL object under prefix (a dead incarnation nobody needs any more). */
int stratus_wal_delete_objects(struct stratus_storage *st, const char *prefix,
                               struct stratus_errbuf *eb);

/* @locality any, once. Writes everything queued, waits for completions, stops the writer and
 * frees the WAL. */
void stratus_wal_close(struct stratus_wal *wal);

/* ---- internal: the object WAL behind the functions above (walobj.c) ----------------------
 * stratus_wal_open() picks it when conf->object_storage is set and every stratus_wal_*
 * function then forwards here; call the stratus_wal_* functions, never these. Differences
 * from the file WAL: a failed PUT (after the storage wrapper's retries) completes its records
 * with the error but the WAL stays usable; hold/release are no-ops; trim frees whole objects. */
struct stratus_walobj;
int stratus_walobj_open(const struct stratus_wal_conf *conf, struct stratus_walobj **out,
                        struct stratus_errbuf *eb);
int stratus_walobj_replay(struct stratus_walobj *w, stratus_wal_replay_fn *fn, void *arg,
                          struct stratus_errbuf *eb);
int stratus_walobj_start(struct stratus_walobj *w, struct stratus_errbuf *eb);
int stratus_walobj_append(struct stratus_walobj *w, const struct iovec *iov, const int64_t *crcs,
                          int iovcnt, stratus_wal_done_fn *done, void *arg, uint64_t *lsn_out);
int stratus_walobj_trim(struct stratus_walobj *w, uint64_t upto_lsn, struct stratus_errbuf *eb);
void stratus_walobj_get_stats(struct stratus_walobj *w, struct stratus_wal_stats *out);
void stratus_walobj_close(struct stratus_walobj *w);

/* ---- internal: what the file WAL (wal.c) and the object WAL share, defined in wal.c ------- */

/* One append's completion, queued with its batch until the batch is written. */
struct stratus_wal_comp {
    stratus_wal_done_fn *done;
    void *arg;
    uint64_t lsn;
};

/* Checks an append's arguments (iovcnt pieces, at least one byte, a done function): 0 with
 * *len the record's size, or STRATUS_EINVAL. */
int stratus_wal_append_len(const struct iovec *iov, int iovcnt, stratus_wal_done_fn *done,
                           uint64_t *len);

/* Room for one more completion in *comps (n used, *cap allocated; grown by doubling from 16):
 * 0, or STRATUS_ENOMEM with *comps unchanged. */
int stratus_wal_comps_reserve(struct stratus_wal_comp **comps, size_t n, size_t *cap);

/* Copies the iovcnt pieces back to back to dst and returns crc (CRC-32C) continued over them,
 * joining in crcs[i] >= 0 (crcs may be NULL) as piece i's CRC without reading it again. */
uint32_t stratus_wal_copy_crc(unsigned char *dst, uint32_t crc, const struct iovec *iov,
                              const int64_t *crcs, int iovcnt);

#endif
