/* index.h - the broker's RocksDB index: a thin wrapper (open, get, put, delete, write batches,
 * iterators, counters) plus the key schema and the record encodings every user of the index
 * shares (topic catalog, partition stream state, offset index, objects table, counters).
 *
 * The key schema and value layouts are documented at the top of index.c. Keys are built with
 * the stratus_index_key_* helpers so that numbers sort as numbers (big-endian, sign-flipped).
 * Every call may block on disk: call from worker / engine threads, never a network thread.
 * One struct stratus_index is thread-safe (RocksDB is); counters take an internal mutex.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef STRATUS_INDEX_INDEX_H
#define STRATUS_INDEX_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "stratus/stratus_err.h"

struct stratus_index;
struct stratus_index_batch;
struct stratus_index_iter;

/* Key prefixes (first byte of every key); see index.c. */
#define STRATUS_IDX_TOPIC   'T' /* 'T' name                       -> topic record */
#define STRATUS_IDX_STREAM  'S' /* 'S' stream id (u64be)          -> stream state */
#define STRATUS_IDX_DELSTR  'D' /* 'D' stream id (u64be)          -> "" (stream of a deleted topic) */
#define STRATUS_IDX_RANGE   'R' /* 'R' stream id, last offset     -> range record */
#define STRATUS_IDX_OBJECT  'O' /* 'O' object id (u64be)          -> object record */
#define STRATUS_IDX_COUNTER 'C' /* 'C' name                       -> u64be */
#define STRATUS_IDX_GROUP   'G' /* reserved: committed group offsets */
#define STRATUS_IDX_PRODUCER 'P' /* reserved: producer state (idempotence, transactions) */
#define STRATUS_IDX_META    'M' /* 'M' name                       -> schema version, cluster id */
#define STRATUS_IDX_TIME    'X' /* 'X' stream id, running max ts  -> time index entry */

#define STRATUS_IDX_KEY_MAX 300

struct stratus_index_conf {
    const char *path;
    uint64_t block_cache_bytes; /* default 64 MiB */
};

/* @locality startup. Opens (creating if missing) the index at conf->path. */
int stratus_index_open(const struct stratus_index_conf *conf, struct stratus_index **out,
                       struct stratus_errbuf *eb);
void stratus_index_close(struct stratus_index *idx);

/* Reads key. On success *val is malloc'd (caller frees) and *vlen set; STRATUS_ENOTFOUND when
 * absent. */
int stratus_index_get(struct stratus_index *idx, const void *key, size_t klen, uint8_t **val,
                      size_t *vlen, struct stratus_errbuf *eb);
/* sync = 1: the write is in RocksDB's WAL and fsync'd before return. */
int stratus_index_put(struct stratus_index *idx, const void *key, size_t klen, const void *val,
                      size_t vlen, int sync, struct stratus_errbuf *eb);
int stratus_index_delete(struct stratus_index *idx, const void *key, size_t klen, int sync,
                         struct stratus_errbuf *eb);

/* Atomic multi-key writes. */
struct stratus_index_batch *stratus_index_batch_new(void);
void stratus_index_batch_put(struct stratus_index_batch *b, const void *key, size_t klen,
                             const void *val, size_t vlen);
void stratus_index_batch_delete(struct stratus_index_batch *b, const void *key, size_t klen);
int stratus_index_batch_count(const struct stratus_index_batch *b);
int stratus_index_batch_write(struct stratus_index *idx, struct stratus_index_batch *b, int sync,
                              struct stratus_errbuf *eb);
void stratus_index_batch_free(struct stratus_index_batch *b);

/* Iterators over a consistent view. seek() goes to the first key >= key; seek_for_prev() to
 * the last key <= key. key()/value() are borrowed until the next move. */
struct stratus_index_iter *stratus_index_iter_new(struct stratus_index *idx);
void stratus_index_iter_seek(struct stratus_index_iter *it, const void *key, size_t klen);
void stratus_index_iter_seek_for_prev(struct stratus_index_iter *it, const void *key,
                                      size_t klen);
int stratus_index_iter_valid(struct stratus_index_iter *it);
void stratus_index_iter_next(struct stratus_index_iter *it);
const uint8_t *stratus_index_iter_key(struct stratus_index_iter *it, size_t *klen);
const uint8_t *stratus_index_iter_value(struct stratus_index_iter *it, size_t *vlen);
/* 1 when the iterator is valid and its key starts with prefix. */
int stratus_index_iter_has_prefix(struct stratus_index_iter *it, const void *prefix, size_t plen);
/* 0, or the error the iteration met (STRATUS_EIO with a message). */
int stratus_index_iter_status(struct stratus_index_iter *it, struct stratus_errbuf *eb);
void stratus_index_iter_free(struct stratus_index_iter *it);

/* Allocates n consecutive values of the named counter (persisted, synced before return); the
 * first is written to *first. A new counter starts at 1. Thread-safe. */
int stratus_index_counter_next(struct stratus_index *idx, const char *name, uint64_t n,
                               uint64_t *first, struct stratus_errbuf *eb);

/* ---- keys (return the key length; buf must hold STRATUS_IDX_KEY_MAX bytes) ---- */
size_t stratus_index_key_topic(uint8_t *buf, const char *name);
size_t stratus_index_key_stream(uint8_t *buf, uint64_t stream_id);
size_t stratus_index_key_delstream(uint8_t *buf, uint64_t stream_id);
size_t stratus_index_key_range(uint8_t *buf, uint64_t stream_id, int64_t last_offset);
size_t stratus_index_key_object(uint8_t *buf, uint64_t object_id);
size_t stratus_index_key_counter(uint8_t *buf, const char *name);
size_t stratus_index_key_producer(uint8_t *buf, uint64_t stream_id); /* 'P' snapshot */
/* Decoders of the numeric parts; 0 or STRATUS_ECORRUPT when the key has the wrong shape. */
int stratus_index_parse_range_key(const uint8_t *k, size_t klen, uint64_t *stream_id,
                                  int64_t *last_offset);
int stratus_index_parse_id_key(const uint8_t *k, size_t klen, uint8_t prefix, uint64_t *id);

/* ---- values ---- */

/* One range of a partition stream in an object (offset index entry). */
struct stratus_index_range {
    uint64_t stream_id;
    int64_t base_offset;
    int64_t last_offset;
    int64_t max_timestamp;
    uint64_t object_id;
    uint64_t position; /* byte offset of the range in the object */
    uint32_t length;   /* bytes */
    uint32_t batches;  /* record batches in the range */
};
#define STRATUS_IDX_RANGE_VALUE_SIZE 45
void stratus_index_range_encode(const struct stratus_index_range *r,
                                uint8_t out[STRATUS_IDX_RANGE_VALUE_SIZE]);
/* Fills r from the key and value of a range record. */
int stratus_index_range_decode(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen,
                               struct stratus_index_range *r);

/* One stream-set object. */
struct stratus_index_object {
    uint64_t object_id;
    uint64_t size;
    uint32_t live_ranges; /* 0 = every range is gone: delete the object, then this record */
    int64_t created_ms;
    char key[256];
};
size_t stratus_index_object_encode(const struct stratus_index_object *o, uint8_t *out,
                                   size_t cap);
int stratus_index_object_decode(const uint8_t *v, size_t vlen, struct stratus_index_object *o);

/* Per-partition stream state. */
struct stratus_index_stream {
    int64_t log_start_offset;
};
#define STRATUS_IDX_STREAM_VALUE_SIZE 9
void stratus_index_stream_encode(const struct stratus_index_stream *st,
                                 uint8_t out[STRATUS_IDX_STREAM_VALUE_SIZE]);
int stratus_index_stream_decode(const uint8_t *v, size_t vlen, struct stratus_index_stream *st);

/* ---- time index ('X'; the invariant and its upkeep are described in index.c) ---- */

/* One time index entry: the stream's running maximum of range max timestamps rose to
 * `timestamp` at the range [base_offset, last_offset] (the first range reaching it). */
struct stratus_index_time {
    uint64_t stream_id;
    int64_t timestamp;
    int64_t base_offset;
    int64_t last_offset;
};
#define STRATUS_IDX_TIME_VALUE_SIZE 17
size_t stratus_index_key_time(uint8_t *buf, uint64_t stream_id, int64_t timestamp);
void stratus_index_time_encode(const struct stratus_index_time *t,
                               uint8_t out[STRATUS_IDX_TIME_VALUE_SIZE]);
int stratus_index_time_decode(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen,
                              struct stratus_index_time *t);

/* The running maximum of a stream while its entries are built in offset order. */
struct stratus_index_time_run {
    int have;       /* 0: no range yet */
    int64_t max_ts; /* when have */
};
/* Adds to b (when not NULL) the entry of range r if r's max timestamp raises run, and updates
 * run. Ranges must be fed in offset order. Returns 1 when r makes an entry, else 0. */
int stratus_index_time_step(struct stratus_index_batch *b, struct stratus_index_time_run *run,
                            const struct stratus_index_range *r);
/* Both lookups position `it` (the caller's iterator, so that a following range seek reads the
 * same consistent view) and return 0 with *out, STRATUS_ENOTFOUND, or STRATUS_ECORRUPT/EIO.
 * _seek: the stream's first entry with timestamp >= ts, i.e. the first range whose max
 * timestamp >= ts. _last: the stream's last entry (its largest max timestamp, and the first
 * range that has it). */
int stratus_index_time_seek(struct stratus_index_iter *it, uint64_t stream_id, int64_t ts,
                            struct stratus_index_time *out, struct stratus_errbuf *eb);
int stratus_index_time_last(struct stratus_index_iter *it, uint64_t stream_id,
                            struct stratus_index_time *out, struct stratus_errbuf *eb);
/* The stream's running maximum as its entries stand (run->have = 0 when it has none). */
int stratus_index_time_run_load(struct stratus_index *idx, uint64_t stream_id,
                                struct stratus_index_time_run *run, struct stratus_errbuf *eb);

/* Big-endian helpers shared with the encoders of other files. */
void stratus_be64_put(uint8_t *p, uint64_t v);
uint64_t stratus_be64_get(const uint8_t *p);
void stratus_be32_put(uint8_t *p, uint32_t v);
uint32_t stratus_be32_get(const uint8_t *p);
void stratus_be16_put(uint8_t *p, uint16_t v);
uint16_t stratus_be16_get(const uint8_t *p);

#endif
