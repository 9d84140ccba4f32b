/* stream_int.h - the storage engine's internal structs, shared by the files of core/stream/:
 * stream.c (open/close, threads, I/O pool, flush, stats), topic.c (catalog and configs),
 * partition.c (append, log cache, reads, offsets), coldread.c (reads from objects),
 * uploader.c (log cache -> objects -> index -> WAL trim), retention.c.
 *
 * Locks, in the order they may be taken (never the reverse):
 *   cat_write (catalog writers) -> cat_lock (rwlock on the topic array) -> meta_lock (index
 *   metadata commits) -> partition lock -> up_lock / pool_lock.
 * The WAL record the engine writes per append call (little-endian, 44 bytes, then the
 * batches back to back, base offsets already assigned):
 *   u32 magic "SWA1" (0x31415753), u16 version 1, u16 flags 0, u64 stream id,
 *   i64 base offset, i64 last offset, i32 leader epoch, u32 batch count, u32 data length
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_STREAM_STREAM_INT_H
#define STRATUS_STREAM_STREAM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "coldgate.h"
#include "index/index.h"
#include "stream.h"

#define STRATUS_WALREC_MAGIC 0x31415753u
#define STRATUS_WALREC_HEADER_SIZE 44
#define STRATUS_BLOCK_SIZE (1u << 20) /* cold-read block, aligned in the object */

/* The LSN of a cached batch that is not in this broker's WAL (recovered from a dead owner's
 * WAL by stratus_partition_recover_record): it never holds back a WAL trim. */
#define STRATUS_LSN_NONE UINT64_MAX

/* One record batch in the log cache; data is the batch with its offsets assigned. */
struct stratus_lc_batch {
    int64_t base, last; /* first and last offset */
    int64_t max_ts;     /* the batch's maxTimestamp (after LogAppendTime) */
    uint64_t lsn;       /* LSN of the WAL record holding it, or STRATUS_LSN_NONE */
    uint32_t len;
    uint32_t mem;       /* memory it holds, charged to the log cache's budget: this struct and
                         * the copy (their allocation), or its share of the owner frame's */
    atomic_uint refs;   /* 1 while cached + 1 per reader it is lent to (partition.c) */
    uint8_t *data;      /* the batch: right after this struct, or inside owner */
    const void *owner;  /* the stratus_rcbuf (util/alloc.h) holding data (a request frame,
                         * referenced), or NULL */
};

/* Idempotent-producer state of one partition (producer.c): per producer id its epoch and the
 * last STRATUS_PRODUCER_BATCHES batches it appended here, oldest first. */
#define STRATUS_PRODUCER_BATCHES 5
struct stratus_pbatch {
    int32_t first_seq, last_seq;
    int64_t base, last; /* offsets */
    int64_t ts;         /* the batch's max timestamp (after LogAppendTime) */
};
struct stratus_pentry {
    int64_t pid;
    int16_t epoch;
    uint8_t nb;
    struct stratus_pbatch b[STRATUS_PRODUCER_BATCHES];
    int64_t last_off;   /* last offset of the newest batch ever applied (replay skips older) */
    int64_t updated_ms; /* wall clock of the last append (producer.id.expiration.ms) */
};
struct stratus_pstate {
    struct stratus_pentry *v; /* sorted by pid */
    size_t n, cap;
    /* One past the highest producer id whose state was dropped here (expired, or lost with a
     * corrupt or version-1 snapshot: INT64_MAX); 0 when none was. An unknown producer below it
     * may have written here before and continues at any sequence (KIP-360); one at or above
     * it never wrote here and must start at sequence 0. */
    int64_t expired_pid_end;
};
/* A Produce retry answered as a duplicate of a batch not yet durable: done(arg) runs once the
 * high watermark reaches `need` (or with KAFKA_STORAGE_ERROR when the WAL fails). */
struct stratus_dup_wait {
    struct stratus_dup_wait *next;
    int64_t need;
    stratus_append_done_fn *done;
    void *arg;
};

/* A partition. Shared by the network threads (append, read), the WAL writer (completions),
 * the uploader, retention and the I/O pool; refcounted (the topic holds one reference).
 * Fields marked [const] never change after creation; [lock] are guarded by `lock`, which is
 * held only for in-memory work. */
struct stratus_partition {
    struct stratus_stream *s;                  /* [const] */
    char topic[STRATUS_TOPIC_NAME_MAX + 1];    /* [const] */
    int32_t index;                             /* [const] */
    atomic_int leader_epoch;                   /* bumped at each open; set by claim */
    uint64_t stream_id;                        /* [const] */
    atomic_int refs;
    /* enum stratus_part_role: OWNER from creation in single-node mode; in cluster mode
     * written (under `lock`) by claim, serve, resign and fence; read without the lock by
     * the fast paths, and re-checked under it by append. */
    atomic_int role;

    pthread_mutex_t lock;
    int64_t log_start;  /* [lock] written by retention */
    int64_t hw;         /* [lock] written by WAL completions (and replay) */
    int64_t log_end;    /* [lock] written by append */
    /* Log cache: lc[lc_head .. lc_head + lc_n) in offset order; the first lc_up of them are in
     * objects (uploaded, or discarded for a deleted topic) and only those may be evicted.
     * [lock]; lc_up is raised only by the uploader thread and topic deletion. */
    struct stratus_lc_batch **lc;
    size_t lc_head, lc_n, lc_cap, lc_up;
    uint64_t lc_bytes;  /* [lock] bytes of this partition's cached batches */
    /* Honoured topic configs, copied here by topic.c. [lock] */
    int64_t retention_ms, retention_bytes;
    int64_t max_message_bytes;
    int log_append_time;
    int deleted;    /* [lock] topic deleted: no appends, nothing uploaded */
    int wal_failed; /* [lock] a WAL write failed: appends refused */
    /* [lock] a WAL completion came back after the ack deadline (STRATUS_EAGAIN, cluster
     * mode): appends are refused and later completions of this ownership are not
     * acknowledged, until the node agent fences or claims the partition (which clears it) */
    int ack_lost;
    /* [lock] ownership generation: bumped by claim, fence and the end of resign. An append's
     * WAL completion and an uploader round compare it with the one they started under, so
     * that nothing of an earlier ownership moves the high watermark or the uploaded prefix. */
    uint64_t own_gen;
    struct stratus_pstate producers;      /* [lock] idempotent producers (producer.c) */
    struct stratus_dup_wait *dup_waiters; /* [lock] duplicates waiting for durability */
    /* [lock] where the last cold read stopped: the batch of offset cold_off starts at byte
     * cold_pos of object cold_obj (coldread.c starts the next read there, not at the range's
     * first batch), when cold_have */
    uint64_t cold_obj, cold_pos;
    int64_t cold_off;
    int cold_have;
};

/* A topic of the catalog. Every field is guarded by the stream's cat_lock (written with it held
 * for writing, by catalog writers that also hold cat_write). */
struct stratus_topic_cfg {
    char *name, *value; /* as the user set them */
};
struct stratus_topic {
    char name[STRATUS_TOPIC_NAME_MAX + 1];
    uint8_t id[16];
    int32_t nparts;
    struct stratus_partition **parts; /* one reference each */
    struct stratus_topic_cfg *cfg;
    size_t ncfg;
};

struct stratus_job {
    struct stratus_job *next;
    stratus_work_fn *fn;
    void *arg;
};

struct cold_blk; /* coldread.c */
struct stratus_stream {
    uint64_t uid;                    /* [const] unique among the streams of this process */
    struct stratus_stream_conf conf; /* strings point at the copies below */
    char *data_dir, *index_path, *wal_path;
    struct stratus_storage *st;      /* borrowed */
    struct stratus_cache *cache;     /* borrowed, may be NULL */
    struct stratus_index *idx;
    struct stratus_wal *wal;
    /* Set once, but in cluster mode after the node agent began claiming partitions (whose
     * serve() notifies): published with release after hook_arg, read with acquire. */
    _Atomic(stratus_commit_hook_fn *) hook;
    void *hook_arg;

    /* catalog */
    pthread_mutex_t cat_write;
    pthread_rwlock_t cat_lock;
    struct stratus_topic **topics; /* sorted by name */
    size_t ntopics, tcap;

    pthread_mutex_t meta_lock; /* index commits by the uploader, retention, topic deletion */

    /* accounting */
    atomic_uint_fast64_t lc_bytes, lc_evictions;
    atomic_uint_fast64_t pending_bytes;  /* appended, not yet uploaded nor discarded */
    atomic_uint_fast64_t appended_bytes; /* monotonic */
    atomic_uint_fast64_t settled_bytes;  /* monotonic: uploaded or discarded */
    atomic_int_fast64_t oldest_pending_ms; /* mono ms of the oldest pending data, 0 = none */
    atomic_uint_fast64_t objects_uploaded, object_bytes_uploaded, upload_failures;
    atomic_uint_fast64_t objects_bulk;
    atomic_uint_fast64_t cold_reads, cold_read_bytes, retention_deleted_objects;

    /* cold reads in flight, limited while they slow the WAL down (coldgate.h) */
    struct stratus_coldgate gate;
    /* cold-read read-ahead (coldread.c): conf.readahead_blocks slots */
    pthread_mutex_t ra_lock;
    pthread_cond_t ra_cond;            /* a slot left the loading state */
    struct stratus_ra_slot *ra;        /* [ra_lock] */
    int nra;
    atomic_uint_fast64_t ra_blocks, ra_used;
    /* coldread.c: the blocks held now (by a read, a thread, or a Fetch response they are lent
     * to), found by key before the read-ahead slots and the cache */
    pthread_mutex_t live_lock;
    struct cold_blk **live; /* [live_lock] */
    size_t nlive, live_cap; /* [live_lock] */

    /* uploader */
    pthread_t up_thread;
    int up_started;
    pthread_mutex_t up_lock;
    pthread_cond_t up_cond, up_done_cond;
    int up_stop;                 /* [up_lock] */
    uint64_t flush_req, flush_done; /* [up_lock] */
    int flush_err;               /* [up_lock] */
    char flush_msg[256];         /* [up_lock] the message of the last failed round */
    /* [hold_lock] the lowest WAL LSN of records a fence dropped before upload, kept from the
     * trim until hold_until_ms (mono); UINT64_MAX = no hold */
    pthread_mutex_t hold_lock;
    uint64_t hold_lsn;
    int64_t hold_until_ms;
    uint8_t *up_buf;             /* [uploader thread] last round's object buffer, reused */
    size_t up_cap;               /* [uploader thread] its allocated size */
    /* [uploader thread] cluster mode: object ids allocated from the metastore in blocks of
     * STRATUS_OBJECT_ID_BLOCK, handed out locally: next free one and the end of the block */
    uint64_t oid_next, oid_end;

    /* retention */
    pthread_t ret_thread;
    int ret_started;
    pthread_mutex_t ret_lock;
    pthread_cond_t ret_cond;
    int ret_stop; /* [ret_lock] */
    pthread_mutex_t ret_run; /* one retention pass at a time */

    /* I/O pool */
    pthread_t *pool;
    int npool;
    pthread_mutex_t pool_lock;
    pthread_cond_t pool_cond;
    struct stratus_job *jobs_head, *jobs_tail; /* [pool_lock] */
    int pool_stop;                             /* [pool_lock] */
};

/* ---- topic.c ---- */
int stratus_topic_load_all(struct stratus_stream *s, struct stratus_errbuf *eb);
void stratus_topic_free_all(struct stratus_stream *s);
/* References to every partition of the catalog (caller releases each, frees the array). */
struct stratus_partition **stratus_topic_all_partitions(struct stratus_stream *s, size_t *n);

/* ---- stream.c ---- */
/* The stream whose I/O pool runs this thread (NULL on any other thread). */
extern _Thread_local const struct stratus_stream *stratus_pool_of_thread;

/* ---- partition.c ---- */
/* stratus_lent.unref of a log-cache batch. */
void stratus_lc_unref(void *ref);
struct stratus_partition *stratus_partition_new(struct stratus_stream *s, const char *topic,
                                                int32_t index, uint64_t stream_id,
                                                int32_t leader_epoch);
void stratus_partition_ref(struct stratus_partition *p);
/* Loads log start and log end from the index (startup, catalog changes). */
int stratus_partition_load_offsets(struct stratus_partition *p, struct stratus_errbuf *eb);
/* Replays one WAL record (startup). */
int stratus_partition_replay_record(struct stratus_stream *s, struct stratus_partition *p,
                                    uint64_t lsn, const uint8_t *rec, size_t len);
/* The stream id of a WAL record written by partition.c, or 0 when it is not one. */
uint64_t stratus_partition_walrec_stream(const uint8_t *rec, size_t len);
/* Drops cached batches below the log start (and, with budget, uploaded ones while the global
 * cache is over budget). Returns bytes freed. */
uint64_t stratus_partition_evict(struct stratus_partition *p, uint64_t want_bytes);
/* Bytes of p's log cache (under its lock). */
uint64_t stratus_partition_cached_bytes(struct stratus_partition *p);
/* Marks the partition deleted and discards its cache. */
void stratus_partition_mark_deleted(struct stratus_partition *p);
/* 1 when the engine runs in cluster mode (conf.cluster set). */
#define STRATUS_CLUSTER(s) ((s)->conf.cluster != NULL)
void stratus_partition_notify(struct stratus_partition *p);

/* ---- producer.c (idempotent producers; callers hold the partition lock unless noted) ---- */
#define STRATUS_PRODUCER_EXPIRATION_MS (24 * 3600 * 1000LL) /* producer.id.expiration.ms */
struct stratus_pentry *stratus_pstate_find(struct stratus_pstate *ps, int64_t pid);
/* Checks one batch of producer `w->pid` against w (a working copy of its entry; a new producer
 * has epoch -1 and no batches), following Kafka 3.x's ProducerStateManager, except that a
 * new producer whose id is at or above expired_pid_end (struct stratus_pstate) must start at
 * sequence 0: Kafka accepts any sequence there. Returns
 * KAFKA_ERR_NONE and appends the batch to w (offsets filled later by the caller), or
 * STRATUS_PSTATE_DUP with *dup set to the original batch, or a Kafka error (INVALID_PRODUCER_EPOCH,
 * OUT_OF_ORDER_SEQUENCE_NUMBER) with a message. */
#define STRATUS_PSTATE_DUP (-2)
int stratus_pstate_check(struct stratus_pentry *w, int16_t epoch, int32_t first_seq,
                         int32_t nrecords_minus_1, int64_t expired_pid_end,
                         struct stratus_pbatch *dup, char *msg, size_t msgcap);
/* Replaces or inserts e (by pid). */
void stratus_pstate_put(struct stratus_pstate *ps, const struct stratus_pentry *e);
/* Applies a stored batch (WAL replay): idempotent, batches at or below the entry's last_off
 * are skipped. */
void stratus_pstate_replay(struct stratus_pstate *ps, int64_t pid, int16_t epoch,
                           int32_t first_seq, int32_t last_seq, int64_t base, int64_t last,
                           int64_t ts);
void stratus_pstate_clear(struct stratus_pstate *ps);
/* The last sequence after first_seq + delta (wrapping at INT32_MAX as Kafka does). */
int32_t stratus_pstate_seq_add(int32_t first_seq, int32_t delta);
/* Snapshot of the durable part (batches with last < hw) of ps; entries idle for longer than
 * STRATUS_PRODUCER_EXPIRATION_MS are dropped from ps first. *out malloc'd; format in
 * producer.c. */
void stratus_pstate_encode(struct stratus_pstate *ps, int64_t hw, int64_t now_ms, uint8_t **out,
                           size_t *len);
/* Loads a snapshot into ps (cleared first). 0 or STRATUS_ECORRUPT (ps then empty, with
 * expired_pid_end INT64_MAX: its history is unknown). */
int stratus_pstate_decode(struct stratus_pstate *ps, const uint8_t *v, size_t len);
/* Adds to ib the 'P' snapshot of p (takes p->lock). */
void stratus_pstate_snapshot(struct stratus_partition *p, struct stratus_index_batch *ib);
/* Loads p's 'P' snapshot from the index (startup; takes p->lock). */
int stratus_pstate_load(struct stratus_partition *p, struct stratus_errbuf *eb);

/* ---- uploader.c ---- */
#define STRATUS_OBJECT_ID_BLOCK 64
void *stratus_uploader_main(void *arg);
int stratus_uploader_round(struct stratus_stream *s, struct stratus_errbuf *eb);
void stratus_uploader_wake(struct stratus_stream *s);
/* The order in which a round takes parts (reordered in place, stable): by role (resigning and
 * recovering, owned, the rest), then by the WAL position of the oldest batch not uploaded
 * (uploader.c says why). Takes each partition's lock in turn. */
void stratus_uploader_order(struct stratus_partition **parts, size_t n);
/* Asks the uploader thread for one round and waits for it; returns the round's result
 * (STRATUS_ECLOSED when the uploader is stopping). @locality worker. */
int stratus_uploader_run_round(struct stratus_stream *s, struct stratus_errbuf *eb);
/* Runs rounds until, for each parts[i], every batch below targets[i] is uploaded (waiting for
 * it to become durable), or the partition left the ownership generation gens[i] (fenced,
 * handed over, deleted: STRATUS_EEXIST when fence_is_error, else it just counts as done).
 * STRATUS_EAGAIN at deadline_ms (monotonic), or the error of a failed round. @locality
 * worker. */
int stratus_uploader_flush_parts(struct stratus_stream *s, struct stratus_partition *const *parts,
                                 const uint64_t *gens, const int64_t *targets, size_t n,
                                 int64_t deadline_ms, int fence_is_error,
                                 struct stratus_errbuf *eb);

/* ---- retention.c ---- */
/* Moves p's log start up to new_start (DeleteRecords): drops the ranges wholly below it and
 * persists the log start in one synced index batch, serialized with retention passes. */
int stratus_retention_set_log_start(struct stratus_stream *s, struct stratus_partition *p,
                                    int64_t new_start, struct stratus_errbuf *eb);
void *stratus_retention_main(void *arg);
int stratus_retention_run(struct stratus_stream *s, struct stratus_errbuf *eb);
void stratus_retention_wake(struct stratus_stream *s);

/* ---- coldread.c ---- */
/* Reads whole batches of p from objects (offset index, cache plugin, ranged GETs) starting
 * with the batch holding offset; *next_offset gets the offset after the last batch returned.
 * STRATUS_ENOTFOUND when no object holds the offset. With segs, the batches are lent as pieces
 * of the blocks read (*segs, *nsegs; *out stays NULL) instead of copied into *out.
 * *sequential (may be NULL) is set to 1
 * when the read began where the partition's previous cold read stopped and stopped itself
 * before the data ran out: a consumer reading on, worth reading ahead for. Blocking, runs on
 * an I/O thread. */
int stratus_coldread(struct stratus_partition *p, int64_t offset, size_t max_bytes, int min_one,
                     int64_t hw, uint8_t **out, size_t *len, struct stratus_lent **segs,
                     int *nsegs, int64_t *next_offset, int *sequential,
                     struct stratus_errbuf *eb);
/* Read-ahead: loads the blocks the partition's next cold read from offset (max_bytes, below
 * hw) will need and that the last one did not, into the stream's read-ahead slots, where that
 * read takes them without a copy. Does nothing without slots or a stop hint at offset.
 * Blocking, runs on an I/O thread, after the read's result went out. */
void stratus_coldread_ahead(struct stratus_partition *p, int64_t offset, size_t max_bytes,
                            int64_t hw);
/* Slots setup (stream open, before the I/O pool starts) and teardown (after it stopped). */
void stratus_coldread_ra_init(struct stratus_stream *s);
void stratus_coldread_ra_free(struct stratus_stream *s);
/* Time lookup inside one batch (len bytes): for ts >= 0 the first record with offset >=
 * min_offset and timestamp >= ts; for ts == -3 the first record (offset >= min_offset) with the
 * largest timestamp. Returns 1 with *offset and *timestamp, 0 when no record qualifies, or
 * STRATUS_ENOMEM. A batch whose records cannot be read is logged and answered at batch
 * granularity (its first offset >= min_offset, its max timestamp). Any thread, no lock. */
int stratus_coldread_batch_time(struct stratus_partition *p, const uint8_t *batch, size_t len,
                                int64_t ts, int64_t min_offset, int64_t *offset,
                                int64_t *timestamp);
/* ts >= 0: the first record in objects, at or after the log start and below
 * min(stop_offset, high watermark), whose timestamp >= ts: Kafka's rule, the first batch whose
 * maxTimestamp >= ts that holds such a record (ranges skipped by their index max timestamp).
 * *offset = -1 when none. Blocking, runs on an I/O thread. */
int stratus_coldread_offset_for_time(struct stratus_partition *p, int64_t ts, int64_t stop_offset,
                                     int64_t *offset, int64_t *timestamp,
                                     struct stratus_errbuf *eb);
/* The first batch in objects with the largest maxTimestamp (at or after the log start, below
 * the high watermark), copied into *batch (malloc'd, caller frees; NULL when there is none)
 * with its size and max timestamp. Blocking, runs on an I/O thread. */
int stratus_coldread_max_time_batch(struct stratus_partition *p, uint8_t **batch, size_t *len,
                                    int64_t *max_ts, struct stratus_errbuf *eb);

/* Keeps the WAL from being trimmed at or past lsn for conf.fenced_wal_hold_ms from now (the
 * lowest hold wins; each call restarts the time). stratus_partition_fence calls it. */
void stratus_stream_hold_wal(struct stratus_stream *s, uint64_t lsn);

#endif
