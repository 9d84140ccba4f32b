/* stream.h - the storage engine as the API layer sees it: topics, partitions, append, read.
 *
 * The engine owns the WAL (wal.h), the log cache (hot tail of every partition, in memory), the
 * uploader (WAL -> stream-set objects in the storage plugin -> RocksDB offset index -> WAL
 * trim), the cold reader (index lookup, cache plugin, ranged GETs on an I/O pool), retention,
 * and the topic catalog (persisted in the RocksDB index).
 *
 * Threads. Functions marked @locality any are non-blocking (they take only short in-memory
 * locks) and may run on a network thread. Functions marked @locality worker may block on disk or
 * a plugin: the API layer runs them through stratus_stream_submit(). Completions (append_done,
 * read_done, the commit hook) are called on engine threads (WAL writer, I/O pool): they must
 * not block; they post the result to the thread that needs it.
 *
 * Visibility: a record is readable (below the high watermark) only once the WAL write covering
 * it is durable, so a consumer never sees a record that a crash could take back.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_STREAM_STREAM_H
#define STRATUS_STREAM_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "stratus/stratus_err.h"
#include "wal.h"

struct stratus_storage;
struct stratus_cache;
struct stratus_stream;
struct stratus_partition;

struct stratus_stream_conf {
    const char *data_dir;          /* base directory */
    const char *index_path;        /* RocksDB directory (default DATA_DIR/index) */
    struct stratus_wal_conf wal;   /* wal.path default DATA_DIR/wal/stratus.wal */
    uint64_t log_cache_bytes;      /* hot-tail memory budget over all partitions: batches and
                                    * the request frames they are kept in (default 512 MiB) */
    uint64_t object_target_bytes;  /* upload when this much is pending (default 16 MiB) */
    int64_t upload_interval_ms;    /* ... or when the oldest pending data is this old (2000) */
    int upload_in_place;           /* large batches go to storage from where they are, not
                                    * copied into the object (uploader.c; single node only) */
    int io_threads;                /* cold-read / admin worker threads (default 4) */
    int readahead_blocks;          /* cold-read blocks (1 MiB) read ahead of sequential
                                    * consumers, held at most at once (0 = no read-ahead) */
    int cold_read_yield;           /* 1 = fewer cold reads at once while they slow the WAL's
                                    * writes down (coldgate.h); 0 = io_threads always */
    int64_t retention_check_ms;    /* how often retention runs (default 30000) */
    int32_t default_partitions;    /* num.partitions for auto-created topics (default 1) */
    int32_t node_id;
    /* Cluster mode: hooks (NULL = single node: every partition is owned, topics are created
     * locally) and the most streams one object may hold (0 = no limit; 40 in cluster mode). */
    const struct stratus_stream_cluster_ops *cluster;
    int max_streams_per_object;
    /* Cluster mode with the object WAL: when a fence drops a partition's records that were
     * acknowledged but not uploaded, the WAL keeps them (no trim past them) this long, for the
     * partition's next owner to recover them from this broker's WAL (default 600000 = 10 min). */
    int64_t fenced_wal_hold_ms;
    /* The storage plugin the object WAL writes to is the engine's `st`. */
};

/* ---- cluster mode (docs/cluster-design.md) ---------------------------------------------- */

struct stratus_index_range;
struct stratus_index_object;

/* The hooks the engine calls in cluster mode (set in stratus_stream_conf.cluster; NULL in
 * single-node mode). All run on engine threads (uploader, I/O pool) and may block on etcd. */
struct stratus_stream_cluster_ops {
    void *arg;
    /* n consecutive ids of the global counter `name` ("object"); *first gets the first. */
    int (*alloc_ids)(void *arg, const char *name, uint64_t n, uint64_t *first,
                     struct stratus_errbuf *eb);
    /* Records the object as prepared (before its PUT), so that it is collected if it is never
     * committed. */
    int (*prepare_object)(void *arg, uint64_t object_id, const char *key,
                          struct stratus_errbuf *eb);
    /* Commits an uploaded object: ranges[i] (with producer snapshot pstate[i] of pstate_len[i]
     * bytes) belongs to parts[i], whose ownership fences the commit. Returns 0 when committed
     * (lost[] all 0); STRATUS_EEXIST when some partitions are no longer owned by this broker:
     * lost[i] = 1 for those, and the others were committed (or *committed = 0 when nothing
     * was); another error when the outcome is unknown or nothing was committed (retry later). */
    int (*commit_object)(void *arg, const struct stratus_index_object *obj,
                         const struct stratus_index_range *ranges,
                         struct stratus_partition *const *parts, const uint8_t *const *pstate,
                         const size_t *pstate_len, size_t n, int *lost,
                         struct stratus_errbuf *eb);
    /* Called when a partition is lost (fenced) by the engine itself (failed commit). */
    void (*lost)(void *arg, struct stratus_partition *p);
    /* Retention and DeleteRecords: moves p's committed log start to new_log_start and drops
     * its committed ranges dropped[0..n) (every range wholly below it; n may be 0), fenced on
     * p's ownership, BEFORE the engine changes its local index. 0 when done; STRATUS_EEXIST
     * when p is owned elsewhere (the engine then changes nothing, fences p and calls lost);
     * another error: nothing changed here, try again later. NULL: the log start moves only
     * locally. */
    int (*trim)(void *arg, struct stratus_partition *p, int64_t new_log_start,
                const struct stratus_index_range *dropped, size_t n, struct stratus_errbuf *eb);
};

/* @locality startup. Opens the index, loads the topic catalog, replays the WAL into the log
 * cache, and starts the WAL writer, uploader, I/O pool and retention threads. `st` and `cache`
 * are borrowed and must outlive the engine. */
int stratus_stream_open(const struct stratus_stream_conf *conf, struct stratus_storage *st,
                        struct stratus_cache *cache, struct stratus_stream **out,
                        struct stratus_errbuf *eb);

/* @locality any, once, after the network has stopped. Completes pending appends, stops the
 * threads, closes the index. Data still in the WAL stays there for the next start. */
void stratus_stream_close(struct stratus_stream *s);

/* @locality any. Runs fn(arg) on an I/O worker thread (for the @locality worker calls below).
 * Returns STRATUS_ECLOSED when shutting down (fn is then not called). */
typedef void stratus_work_fn(void *arg);
int stratus_stream_submit(struct stratus_stream *s, stratus_work_fn *fn, void *arg);

/* Called on an engine thread whenever a partition's high watermark moves (new durable data)
 * or its log start moves; used to wake long-poll fetches. Set once before traffic starts. */
typedef void stratus_commit_hook_fn(void *arg, struct stratus_partition *p);
void stratus_stream_set_commit_hook(struct stratus_stream *s, stratus_commit_hook_fn *fn,
                                    void *arg);

/* ---- topics ------------------------------------------------------------------------------ */

#define STRATUS_TOPIC_NAME_MAX 249

struct stratus_topic_info {
    char name[STRATUS_TOPIC_NAME_MAX + 1];
    uint8_t id[16]; /* topic UUID, random v4, never all zero */
    int32_t partitions;
};

/* One name=value pair (borrowed strings; value NULL means "reset to default"). */
struct stratus_kv {
    const char *name;
    const char *value;
};

/* Sources, as DescribeConfigs reports them. */
enum stratus_config_source {
    STRATUS_CONFIG_SRC_DYNAMIC_TOPIC = 1,
    STRATUS_CONFIG_SRC_DYNAMIC_BROKER = 2,
    STRATUS_CONFIG_SRC_STATIC_BROKER = 4,
    STRATUS_CONFIG_SRC_DEFAULT = 5,
};

/* ConfigType of DescribeConfigs v3+. */
enum stratus_config_type {
    STRATUS_CONFIG_T_BOOLEAN = 1,
    STRATUS_CONFIG_T_STRING = 2,
    STRATUS_CONFIG_T_INT = 3,
    STRATUS_CONFIG_T_SHORT = 4,
    STRATUS_CONFIG_T_LONG = 5,
    STRATUS_CONFIG_T_DOUBLE = 6,
    STRATUS_CONFIG_T_LIST = 7,
    STRATUS_CONFIG_T_CLASS = 8,
    STRATUS_CONFIG_T_PASSWORD = 9,
};

/* One topic config as DescribeConfigs reports it; strings owned by the array's allocation. */
struct stratus_config_entry {
    char name[128];
    char value[512];
    int source;     /* enum stratus_config_source */
    int is_default; /* value is the default */
    int read_only;
    int sensitive;
    int type;       /* enum stratus_config_type */
    const char *doc; /* static */
};

/* @locality any (in memory). A snapshot of every topic, sorted by name; *out is malloc'd and
 * owned by the caller (free()). */
int stratus_stream_list_topics(struct stratus_stream *s, struct stratus_topic_info **out,
                               size_t *n);

/* @locality any. Fills out for name; STRATUS_ENOTFOUND when there is no such topic. */
int stratus_stream_find_topic(struct stratus_stream *s, const char *name,
                              struct stratus_topic_info *out);
int stratus_stream_find_topic_id(struct stratus_stream *s, const uint8_t id[16],
                                 struct stratus_topic_info *out);

/* @locality worker. Creates a topic. Returns a Kafka error code (KAFKA_ERR_NONE,
 * TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS, INVALID_CONFIG,
 * INVALID_REPLICATION_FACTOR...) and a message in msg. partitions -1 = the default. With
 * validate_only nothing changes. id_out (may be NULL) gets the new topic's UUID. */
int16_t stratus_stream_create_topic(struct stratus_stream *s, const char *name,
                                    int32_t partitions, const struct stratus_kv *configs,
                                    size_t nconfigs, int validate_only, uint8_t id_out[16],
                                    char *msg, size_t msgcap);

/* @locality worker. Deletes a topic (its index entries, and its objects' ranges become
 * garbage for retention). UNKNOWN_TOPIC_OR_PARTITION if absent. */
int16_t stratus_stream_delete_topic(struct stratus_stream *s, const char *name, char *msg,
                                    size_t msgcap);

/* @locality worker. Grows a topic to new_total partitions (INVALID_PARTITIONS if not larger). */
int16_t stratus_stream_create_partitions(struct stratus_stream *s, const char *name,
                                         int32_t new_total, int validate_only, char *msg,
                                         size_t msgcap);

/* @locality any. Every topic config (honoured and accepted ones), with sources and defaults.
 * *out is malloc'd, owned by the caller. UNKNOWN_TOPIC_OR_PARTITION if absent. */
int16_t stratus_stream_describe_topic_configs(struct stratus_stream *s, const char *name,
                                              struct stratus_config_entry **out, size_t *n);

/* @locality worker. Sets (value != NULL) or resets (value == NULL) topic configs, all or none;
 * with incremental = 0 the configs not named are reset (AlterConfigs), with 1 they stay. */
int16_t stratus_stream_alter_topic_configs(struct stratus_stream *s, const char *name,
                                           const struct stratus_kv *configs, size_t n,
                                           int incremental, int validate_only, char *msg,
                                           size_t msgcap);

/* ---- partitions ------------------------------------------------------------------------- */

/* @locality any. A counted reference to a partition, or NULL if the topic or the partition does
 * not exist. Release it with stratus_partition_release(). */
struct stratus_partition *stratus_stream_partition(struct stratus_stream *s, const char *topic,
                                                   int32_t partition);
void stratus_partition_release(struct stratus_partition *p);

/* @locality any. Brackets several stratus_partition_append calls made in a row (one produce
 * request's partitions) so that their WAL records share one write (stratus_wal_hold): every
 * begin needs its end, with no wait between them. */
void stratus_stream_append_begin(struct stratus_stream *s);
void stratus_stream_append_end(struct stratus_stream *s);

/* The partition's topic name, index, and leader epoch (bumped whenever it is opened). */
const char *stratus_partition_topic(const struct stratus_partition *p);
int32_t stratus_partition_index(const struct stratus_partition *p);
int32_t stratus_partition_leader_epoch(const struct stratus_partition *p);

/* @locality any. Offsets: log start (earliest readable), high watermark (next offset after the
 * last durable record), log end (next offset to assign, >= high watermark). */
void stratus_partition_offsets(struct stratus_partition *p, int64_t *log_start,
                               int64_t *high_watermark, int64_t *log_end);

struct stratus_append_result {
    int16_t error;            /* Kafka error code; KAFKA_ERR_NONE on success */
    int64_t base_offset;      /* offset given to the first record */
    int64_t log_append_time;  /* -1 unless the topic uses LogAppendTime */
    int64_t log_start_offset;
    char msg[160];            /* detail for the error, if any */
};

/* Called once when the appended batches are durable (kerr NONE) or failed to be (WAL error:
 * KAFKA_STORAGE_ERROR). On an engine thread; must not block. */
typedef void stratus_append_done_fn(void *arg, int16_t kerr);

/* @locality any, non-blocking. Validates the records blob (stratus_records_validate, topic
 * max.message.bytes), assigns offsets, applies LogAppendTime, adds the batches to the log cache
 * and queues them to the WAL. The caller's buffer is borrowed for the call only. On a
 * validation error res->error is set and done is NOT called; otherwise done is called exactly
 * once. Errors set here: CORRUPT_MESSAGE, INVALID_RECORD, UNSUPPORTED_FOR_MESSAGE_FORMAT,
 * MESSAGE_TOO_LARGE, UNKNOWN_TOPIC_OR_PARTITION (deleted meanwhile), and KAFKA_STORAGE_ERROR
 * when the WAL refused the record (failed earlier, or its pending ceiling is reached): nothing
 * is stored then and done is not called either. */
void stratus_partition_append(struct stratus_partition *p, const uint8_t *records, size_t len,
                              struct stratus_append_result *res, stratus_append_done_fn *done,
                              void *arg);

/* stratus_partition_append without the copy: records lie inside owner, a stratus_rcbuf
 * (util/alloc.h, e.g. the request frame), which the log cache references for as long as it
 * keeps the batches; the batches' offsets, epoch and LogAppendTime are rewritten in place.
 * owner NULL copies, as stratus_partition_append. */
void stratus_partition_append_owned(struct stratus_partition *p, uint8_t *records, size_t len,
                                    const void *owner, struct stratus_append_result *res,
                                    stratus_append_done_fn *done, void *arg);

struct stratus_fetch_result {
    int16_t error;             /* NONE or OFFSET_OUT_OF_RANGE or KAFKA_STORAGE_ERROR */
    int64_t high_watermark;
    int64_t last_stable_offset;
    int64_t log_start_offset;
    uint8_t *data;             /* whole batches, malloc'd; the receiver owns and frees it */
    size_t len;
    /* stratus_partition_read_cold_lent only: the batches as lent pieces instead of data
     * (NULL when none or when data holds them; release with stratus_lent_release) */
    struct stratus_lent *segs;
    int nsegs;
};

/* @locality any, non-blocking. Reads whole batches starting with the one containing offset,
 * below the high watermark, up to max_bytes (but at least one whole batch when min_one is set,
 * as Kafka does for the first partition of a fetch). Returns 0 with res filled (possibly
 * empty when offset == high watermark, or res->error OFFSET_OUT_OF_RANGE), or STRATUS_EAGAIN
 * when the offset is no longer in the log cache: then use stratus_partition_read_cold(). */
int stratus_partition_read(struct stratus_partition *p, int64_t offset, size_t max_bytes,
                           int min_one, struct stratus_fetch_result *res);

/* Bytes lent to a reader (a log-cache batch by stratus_partition_read_lent, a piece of a cold
 * read's block by stratus_partition_read_cold_lent): data stays valid and unchanged until
 * stratus_lent_release(), even once the batch is evicted or the block leaves the cache. */
struct stratus_lent {
    const uint8_t *data;
    size_t len;
    void *ref;                  /* what holds the bytes */
    void (*unref)(void *ref);   /* drops the reader's reference to it */
};

/* @locality any, non-blocking. stratus_partition_read without the copy: the batches read are
 * lent instead (*segs: a malloc'd array of *nsegs, NULL when none; res->data stays NULL and
 * res->len is their total). The caller releases them with stratus_lent_release(), which frees
 * the array. Same return values and errors as stratus_partition_read. */
int stratus_partition_read_lent(struct stratus_partition *p, int64_t offset, size_t max_bytes,
                                int min_one, struct stratus_fetch_result *res,
                                struct stratus_lent **segs, int *nsegs);
void stratus_lent_release(struct stratus_lent *segs, int nsegs);

/* @locality any. The same read from objects (offset index, cache plugin, ranged GETs), run on
 * the I/O pool. done gets the result (it owns res->data) on an I/O thread. It stops where the
 * log cache begins (the next read from there is a log-cache one); an offset in no object is
 * read from the log cache when it is there. */
typedef void stratus_read_done_fn(void *arg, struct stratus_fetch_result *res);
void stratus_partition_read_cold(struct stratus_partition *p, int64_t offset, size_t max_bytes,
                                 int min_one, stratus_read_done_fn *done, void *arg);
/* The same without the copy out of the blocks read: what comes from objects is lent
 * (res->segs, the receiver releases them; res->data stays NULL), what comes from the log
 * cache instead is copied into res->data as above. */
void stratus_partition_read_cold_lent(struct stratus_partition *p, int64_t offset,
                                      size_t max_bytes, int min_one, stratus_read_done_fn *done,
                                      void *arg);

/* @locality worker. ListOffsets by timestamp, at record granularity as Kafka answers it: in the
 * first batch (from the log start) whose max timestamp is >= ts, the first record whose
 * timestamp is >= ts (records of LogAppendTime batches carry the batch's max timestamp), with
 * that record's timestamp; *offset = -1 when none. ts = -3 asks for the first record with the
 * largest timestamp (KIP-734): the first batch with the largest max timestamp, then its first
 * record with that timestamp. ts = -2 / -1: log start / high watermark (timestamp -1).
 * Compressed batches are decompressed to find the record. Returns STRATUS_EEXIST when the
 * partition is not served here (map it to NOT_LEADER_OR_FOLLOWER). */
int stratus_partition_offset_for_time(struct stratus_partition *p, int64_t ts, int64_t *offset,
                                      int64_t *timestamp, struct stratus_errbuf *eb);

/* ---- partition ownership (cluster mode) ------------------------------------------------- */

/* In single-node mode every partition is STRATUS_ROLE_OWNER from creation. In cluster mode a
 * partition starts as NONE; appends, reads, ListOffsets and DeleteRecords on it answer
 * NOT_LEADER_OR_FOLLOWER (stratus_partition_append sets res->error; read returns it in
 * res->error). */
enum stratus_part_role {
    STRATUS_ROLE_NONE = 0,       /* not served here */
    STRATUS_ROLE_RECOVERING = 1, /* claimed; metadata loaded; tail being recovered: not served */
    STRATUS_ROLE_OWNER = 2,      /* served */
    STRATUS_ROLE_RESIGNING = 3,  /* appends refused; in-flight data being uploaded */
};
int stratus_partition_role(struct stratus_partition *p);
/* @locality any. 1 when p is OWNER but refuses appends until it is claimed again: a WAL write
 * finished after the ack deadline (object WAL), or failed (an object WAL PUT that failed for
 * good). The node agent then fences and re-claims it (recovering from its own WAL objects). */
int stratus_partition_stuck(struct stratus_partition *p);

/* @locality worker. Makes p RECOVERING at leader epoch `epoch` from committed metadata:
 * the stream's local index entries (ranges, time index, object records) are replaced by
 * ranges[0..n) (sorted by offset; objects named by stratus_objfmt_key(object_id)), the log
 * start becomes log_start, the producer state is loaded from pstate (NULL = none). The log
 * cache is dropped unless keep_cache (the same node reclaiming after a restart with a local
 * WAL): then cached batches beyond the committed end stay. log end = high watermark = the
 * committed end (last range's last offset + 1, or log_start when there is none), or the cached
 * end when kept. */
int stratus_partition_claim(struct stratus_partition *p, int32_t epoch,
                            const struct stratus_index_range *ranges, size_t n,
                            int64_t log_start, const uint8_t *pstate, size_t pstate_len,
                            int keep_cache, struct stratus_errbuf *eb);

/* @locality worker, while RECOVERING. Applies one record of a dead owner's WAL (the engine's
 * WAL record format, stream id already matched by the caller): batches at or beyond the
 * partition's log end are added to the log cache as durable and pending upload, with their
 * producer state; older ones are skipped. A record that does not start exactly at the log end
 * (a gap) is refused with STRATUS_ECORRUPT. */
int stratus_partition_recover_record(struct stratus_partition *p, const uint8_t *rec,
                                     size_t len, struct stratus_errbuf *eb);

/* @locality worker. The WAL record's stream id, leader epoch, base and last offset; 0 or
 * STRATUS_ECORRUPT when rec is not an engine WAL record. */
int stratus_walrec_info(const uint8_t *rec, size_t len, uint64_t *stream_id, int32_t *epoch,
                        int64_t *base, int64_t *last);

/* @locality any. RECOVERING -> OWNER: served from now on. */
void stratus_partition_serve(struct stratus_partition *p);

/* @locality worker. Hands p over: appends are refused (NOT_LEADER_OR_FOLLOWER) from now on,
 * waits (at most timeout_ms) until every accepted append is durable, uploads and commits
 * everything pending of p (a flush), then drops its log cache and makes it NONE. *end_offset
 * gets the committed end. On failure (timeout, upload or commit error) p stays RESIGNING with
 * its data, and the call may be repeated. STRATUS_EEXIST when the commit found p fenced (then p
 * is NONE, its uncommitted data dropped). */
int stratus_partition_resign(struct stratus_partition *p, int64_t timeout_ms,
                             int64_t *end_offset, struct stratus_errbuf *eb);

/* @locality any. Ownership lost without a hand-over (fenced, lease lost): p becomes NONE at
 * once; appends in flight complete with NOT_LEADER_OR_FOLLOWER; the log cache and anything
 * not committed is dropped (it was never acknowledged past the ack deadline, or someone else
 * recovers it from the WAL). */
void stratus_partition_fence(struct stratus_partition *p);

/* ---- topic catalog from the metastore (cluster mode) ------------------------------------ */

/* @locality worker. Installs or updates a topic as the metastore describes it: id, partitions
 * (grow only) with their global stream ids, and its configs (replacing the set ones). New
 * partitions start as NONE. Persisted in the local index like a created topic. */
int stratus_stream_install_topic(struct stratus_stream *s, const char *name, const uint8_t id[16],
                                 int32_t partitions, const uint64_t *stream_ids,
                                 const struct stratus_kv *configs, size_t nconfigs,
                                 struct stratus_errbuf *eb);
/* @locality worker. Removes a topic the metastore deleted (as stratus_stream_delete_topic,
 * without deleting objects: other brokers' ranges may share them). */
int stratus_stream_uninstall_topic(struct stratus_stream *s, const char *name,
                                   struct stratus_errbuf *eb);
/* @locality any. Validates a topic create / config change without applying it (the API layer
 * in cluster mode checks before writing the metastore): Kafka error + msg. */
int16_t stratus_stream_validate_topic(const char *name, int32_t partitions,
                                      const struct stratus_kv *configs, size_t nconfigs,
                                      char *msg, size_t msgcap);
/* The stream id of partition p (global in cluster mode). */
uint64_t stratus_partition_stream_id(const struct stratus_partition *p);

/* ---- idempotent producers and log admin (producer.c, logadmin.c) ------------------------ */

/* An active idempotent producer of a partition, as DescribeProducers reports it. */
struct stratus_producer_info {
    int64_t producer_id;
    int16_t epoch;
    int32_t last_sequence;
    int64_t last_timestamp;
};

/* @locality any. The partition's producers with at least one batch; *out malloc'd (caller
 * frees; NULL when n is 0). */
int stratus_partition_producers(struct stratus_partition *p, struct stratus_producer_info **out,
                                size_t *n);

/* @locality worker. A new producer id from the persisted counter (synced: never reused). */
int stratus_stream_new_producer_id(struct stratus_stream *s, int64_t *pid,
                                   struct stratus_errbuf *eb);

/* @locality worker. DeleteRecords: moves the log start to offset (-1 = high watermark)
 * durably; *low_watermark gets the log start after the call. Returns a Kafka error:
 * OFFSET_OUT_OF_RANGE beyond the high watermark (or below -1), KAFKA_STORAGE_ERROR when the
 * index or the storage failed, UNKNOWN_TOPIC_OR_PARTITION for a deleted topic. */
int16_t stratus_partition_delete_records(struct stratus_partition *p, int64_t offset,
                                         int64_t *low_watermark, char *msg, size_t msgcap);

/* @locality worker. Bytes of the partition at or after its log start: in objects (the offset
 * index's ranges) plus what is in the log cache and not uploaded yet. */
int stratus_partition_size_bytes(struct stratus_partition *p, uint64_t *bytes,
                                 struct stratus_errbuf *eb);

/* The storage plugin's name (for DescribeLogDirs' "remote://NAME"). */
const char *stratus_stream_storage_name(struct stratus_stream *s);

/* ---- observability ---------------------------------------------------------------------- */

struct stratus_stream_stats {
    uint64_t log_cache_bytes, log_cache_evictions;
    uint64_t objects_uploaded, object_bytes_uploaded, upload_failures;
    uint64_t objects_bulk; /* of objects_uploaded: put marked bulk (another object waited) */
    uint64_t pending_upload_bytes;
    uint64_t cold_reads, cold_read_bytes;
    uint64_t readahead_blocks, readahead_used; /* blocks read ahead; of them taken by a read */
    int cold_read_limit;      /* storage reads cold reads may make at once now (coldgate.h) */
    uint64_t cold_read_waits; /* cold storage reads that waited for that limit */
    uint64_t retention_deleted_objects;
    struct stratus_wal_stats wal;
};
void stratus_stream_get_stats(struct stratus_stream *s, struct stratus_stream_stats *out);

/* @locality worker. Uploads everything pending now and waits for it (tests, clean shutdown). */
int stratus_stream_flush(struct stratus_stream *s, struct stratus_errbuf *eb);

/* @locality worker. Runs one retention pass now (what the retention thread does every
 * retention_check_ms): time/size retention, deleted topics' ranges, unreferenced objects. */
int stratus_stream_run_retention(struct stratus_stream *s, struct stratus_errbuf *eb);

/* @locality any. The engine's RocksDB index (borrowed; lives until stratus_stream_close()), for
 * subsystems that keep their own records in it (group offsets, 'G' keys). */
struct stratus_index *stratus_stream_index(struct stratus_stream *s);

#endif
