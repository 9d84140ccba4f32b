/* index.c - the RocksDB index: open with sane options, get/put/delete, write batches,
 * iterators, persisted counters, and the key schema with its value encodings.
 *
 * Options: create_if_missing, an LRU block cache (64 MiB default) with bloom filters, LZ4
 * compression when available, 2 background jobs. Writes that must survive a crash (object
 * commits, catalog changes, counters, log start moves) pass sync = 1 (fsync of RocksDB's WAL).
 *
 * Key schema (first byte is the record kind; numbers are big-endian; signed offsets are
 * stored with the sign bit flipped so that they sort numerically):
 *   'T' <topic name>                 topic record (encoded by core/stream/topic.c):
 *        u8 version=1, id[16], i32 partitions, per partition {u64 stream id, i32 leader
 *        epoch}, u32 nconfigs, per config {u16 name len, name, u32 value len, value}
 *   'S' <u64 stream id>              stream state: u8 version=1, i64 log start offset
 *   'D' <u64 stream id>              empty: the stream belongs to a deleted topic; retention
 *                                    drops its ranges, then this record and 'S'
 *   'R' <u64 stream id><i64 last>    offset index: one range of a stream in an object:
 *        u8 version=1, u64 object id, u64 position, u32 length, i64 base offset,
 *        i64 max timestamp, u32 batches. Keyed by the range's LAST offset, so "the first
 *        range with last_offset >= X" is one seek to 'R' sid X.
 *   'O' <u64 object id>              objects table: u8 version=1, u64 size, u32 live ranges,
 *        i64 created ms, u16 key len, key. live ranges 0 = to delete from storage.
 *   'C' <name>                       counter: u64 next value ("object", "stream")
 *   'M' <name>                       metadata (schema version...); "timeidx" = u8 1 once the
 *                                    time index below exists for every stream
 *   'X' <u64 stream id><i64 ts>      time index (ListOffsets by timestamp): u8 version=1,
 *        i64 base offset, i64 last offset of one range. Invariant: a stream's 'X' entries are
 *        exactly the points where the running maximum of its ranges' max timestamps, taken in
 *        offset order over the ranges the index holds for it, strictly rises; entry (T, range)
 *        says that range is the first whose max timestamp reaches T. Entries rise in both
 *        timestamp and offset, so "the first range whose max timestamp >= ts" (Kafka's first
 *        batch with maxTimestamp >= ts, at range granularity) is the range of the first entry
 *        at or after 'X' sid ts: one seek, however many ranges the stream has; the stream's
 *        last entry holds its largest timestamp and the first range with it (ListOffsets -3).
 *        Upkeep, always in the write batch that changes the ranges, under the stream engine's
 *        meta_lock: the uploader adds the entries of the ranges it commits, continuing from
 *        the stream's last entry (the persisted running maximum: nothing to rebuild after a
 *        restart). Retention, dropping a stream's oldest ranges, deletes their entries and
 *        rebuilds the entries of the remaining ranges that lie before the first surviving
 *        entry. Why rebuild rather than only delete: a dropped range with a large timestamp
 *        suppressed the entries of later, smaller ranges, and without them a lookup for a
 *        smaller target would have to scan every range from the log start. The surviving
 *        entries stay right (each one's timestamp exceeds every earlier range's, dropped or
 *        not), and the rebuilt ones all sit below the first of them. Ranges of a deleted
 *        stream lose their entries with them. An index written before 'X' existed (no 'M'
 *        "timeidx") gets its entries built from 'R' at open.
 *   'P' <u64 stream id>              idempotent-producer snapshot of a partition, replaced
 *        at each upload commit (in the same batch as its ranges) and rebuilt further by WAL
 *        replay: u8 version=1, u32 count, per producer {i64 producer id, i16 epoch,
 *        i64 last offset, i64 updated ms, u8 nbatches, per batch {i32 first seq, i32 last seq,
 *        i64 base offset, i64 last offset, i64 max timestamp}} (encoded by
 *        core/stream/producer.c; only batches durable at the snapshot). 'C' "producer" is the
 *        producer id counter (InitProducerId; ids are never reused).
 *   'G' <u16 glen><group><u16 tlen><topic><u32 partition ^ 0x80000000>
 *                                    committed offset of a consumer group (core/group/offsets.c):
 *        u8 version=1, i64 offset, i32 leader epoch, i64 commit time (wall ms), u16 metadata
 *        len, metadata (<= 4096 bytes). One group's offsets share the prefix 'G' glen group.
 *        Written in synced batches by the group coordinator; loaded at startup; deleted by
 *        DeleteGroups and by offsets retention of groups without members.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "index.h"

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

struct stratus_index {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *topts;
    rocksdb_cache_t *cache;
    rocksdb_filterpolicy_t *filter; /* owned by topts once set */
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts_sync;
    rocksdb_writeoptions_t *wopts_nosync;
    pthread_mutex_t counter_lock;
};

struct stratus_index_batch {
    rocksdb_writebatch_t *wb;
};

struct stratus_index_iter {
    rocksdb_iterator_t *it;
};

/* ---- big-endian helpers ---- */

void stratus_be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint64_t stratus_be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

void stratus_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t stratus_be32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void stratus_be16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

uint16_t stratus_be16_get(const uint8_t *p)
{
    return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

static uint64_t flip(int64_t v)
{
    return (uint64_t)v ^ 0x8000000000000000ull;
}

static int64_t unflip(uint64_t v)
{
    return (int64_t)(v ^ 0x8000000000000000ull);
}

static int time_index_upgrade(struct stratus_index *idx, struct stratus_errbuf *eb);

/* ---- open / close ---- */

int stratus_index_open(const struct stratus_index_conf *conf, struct stratus_index **out,
                       struct stratus_errbuf *eb)
{
    struct stratus_index *idx = xcalloc(1, sizeof *idx);
    char *err = NULL;
    uint64_t cache_bytes = conf->block_cache_bytes ? conf->block_cache_bytes : 64ull << 20;
    int rc;

    pthread_mutex_init(&idx->counter_lock, NULL);
    idx->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(idx->opts, 1);
    rocksdb_options_increase_parallelism(idx->opts, 2);
    rocksdb_options_set_max_background_jobs(idx->opts, 2);
    rocksdb_options_set_compression(idx->opts, rocksdb_lz4_compression);
    rocksdb_options_set_max_open_files(idx->opts, 512);
    rocksdb_options_set_keep_log_file_num(idx->opts, 4);
    idx->cache = rocksdb_cache_create_lru(cache_bytes);
    idx->topts = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(idx->topts, idx->cache);
    idx->filter = rocksdb_filterpolicy_create_bloom(10);
    rocksdb_block_based_options_set_filter_policy(idx->topts, idx->filter);
    rocksdb_options_set_block_based_table_factory(idx->opts, idx->topts);
    idx->ropts = rocksdb_readoptions_create();
    idx->wopts_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(idx->wopts_sync, 1);
    idx->wopts_nosync = rocksdb_writeoptions_create();

    idx->db = rocksdb_open(idx->opts, conf->path, &err);
    if (err) {
        rc = stratus_errf(eb, STRATUS_EIO, "index open %s: %s", conf->path, err);
        rocksdb_free(err);
        goto fail;
    }
    rc = time_index_upgrade(idx, eb);
    if (rc)
        goto fail;
    *out = idx;
    return 0;
fail:
    stratus_index_close(idx);
    return rc;
}

void stratus_index_close(struct stratus_index *idx)
{
    if (!idx)
        return;
    if (idx->db)
        rocksdb_close(idx->db);
    rocksdb_writeoptions_destroy(idx->wopts_nosync);
    rocksdb_writeoptions_destroy(idx->wopts_sync);
    rocksdb_readoptions_destroy(idx->ropts);
    rocksdb_options_destroy(idx->opts);
    rocksdb_block_based_options_destroy(idx->topts); /* also frees the filter policy */
    rocksdb_cache_destroy(idx->cache);
    pthread_mutex_destroy(&idx->counter_lock);
    free(idx);
}

/* ---- single-key ops ---- */

int stratus_index_get(struct stratus_index *idx, const void *key, size_t klen, uint8_t **val,
                      size_t *vlen, struct stratus_errbuf *eb)
{
    char *err = NULL;
    size_t n = 0;
    char *v = rocksdb_get(idx->db, idx->ropts, key, klen, &n, &err);

    if (err) {
        int rc = stratus_errf(eb, STRATUS_EIO, "index get: %s", err);
        rocksdb_free(err);
        return rc;
    }
    if (!v)
        return STRATUS_ENOTFOUND;
    *val = xmalloc(n ? n : 1);
    memcpy(*val, v, n);
    *vlen = n;
    rocksdb_free(v);
    return 0;
}

int stratus_index_put(struct stratus_index *idx, const void *key, size_t klen, const void *val,
                      size_t vlen, int sync, struct stratus_errbuf *eb)
{
    char *err = NULL;

    rocksdb_put(idx->db, sync ? idx->wopts_sync : idx->wopts_nosync, key, klen, val, vlen, &err);
    if (err) {
        int rc = stratus_errf(eb, STRATUS_EIO, "index put: %s", err);
        rocksdb_free(err);
        return rc;
    }
    return 0;
}

int stratus_index_delete(struct stratus_index *idx, const void *key, size_t klen, int sync,
                         struct stratus_errbuf *eb)
{
    char *err = NULL;

    rocksdb_delete(idx->db, sync ? idx->wopts_sync : idx->wopts_nosync, key, klen, &err);
    if (err) {
        int rc = stratus_errf(eb, STRATUS_EIO, "index delete: %s", err);
        rocksdb_free(err);
        return rc;
    }
    return 0;
}

/* ---- batches ---- */

struct stratus_index_batch *stratus_index_batch_new(void)
{
    struct stratus_index_batch *b = xcalloc(1, sizeof *b);
    b->wb = rocksdb_writebatch_create();
    return b;
}

void stratus_index_batch_put(struct stratus_index_batch *b, const void *key, size_t klen,
                             const void *val, size_t vlen)
{
    rocksdb_writebatch_put(b->wb, key, klen, val, vlen);
}

void stratus_index_batch_delete(struct stratus_index_batch *b, const void *key, size_t klen)
{
    rocksdb_writebatch_delete(b->wb, key, klen);
}

int stratus_index_batch_count(const struct stratus_index_batch *b)
{
    return rocksdb_writebatch_count(b->wb);
}

int stratus_index_batch_write(struct stratus_index *idx, struct stratus_index_batch *b, int sync,
                              struct stratus_errbuf *eb)
{
    char *err = NULL;

    rocksdb_write(idx->db, sync ? idx->wopts_sync : idx->wopts_nosync, b->wb, &err);
    if (err) {
        int rc = stratus_errf(eb, STRATUS_EIO, "index write batch: %s", err);
        rocksdb_free(err);
        return rc;
    }
    return 0;
}

void stratus_index_batch_free(struct stratus_index_batch *b)
{
    if (!b)
        return;
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

/* ---- iterators ---- */

struct stratus_index_iter *stratus_index_iter_new(struct stratus_index *idx)
{
    struct stratus_index_iter *it = xcalloc(1, sizeof *it);
    it->it = rocksdb_create_iterator(idx->db, idx->ropts);
    return it;
}

void stratus_index_iter_seek(struct stratus_index_iter *it, const void *key, size_t klen)
{
    rocksdb_iter_seek(it->it, key, klen);
}

void stratus_index_iter_seek_for_prev(struct stratus_index_iter *it, const void *key,
                                      size_t klen)
{
    rocksdb_iter_seek_for_prev(it->it, key, klen);
}

int stratus_index_iter_valid(struct stratus_index_iter *it)
{
    return rocksdb_iter_valid(it->it) ? 1 : 0;
}

void stratus_index_iter_next(struct stratus_index_iter *it)
{
    rocksdb_iter_next(it->it);
}

const uint8_t *stratus_index_iter_key(struct stratus_index_iter *it, size_t *klen)
{
    return (const uint8_t *)rocksdb_iter_key(it->it, klen);
}

const uint8_t *stratus_index_iter_value(struct stratus_index_iter *it, size_t *vlen)
{
    return (const uint8_t *)rocksdb_iter_value(it->it, vlen);
}

int stratus_index_iter_has_prefix(struct stratus_index_iter *it, const void *prefix, size_t plen)
{
    size_t klen;
    const uint8_t *k;

    if (!rocksdb_iter_valid(it->it))
        return 0;
    k = (const uint8_t *)rocksdb_iter_key(it->it, &klen);
    return klen >= plen && memcmp(k, prefix, plen) == 0;
}

int stratus_index_iter_status(struct stratus_index_iter *it, struct stratus_errbuf *eb)
{
    char *err = NULL;

    rocksdb_iter_get_error(it->it, &err);
    if (err) {
        int rc = stratus_errf(eb, STRATUS_EIO, "index iterator: %s", err);
        rocksdb_free(err);
        return rc;
    }
    return 0;
}

void stratus_index_iter_free(struct stratus_index_iter *it)
{
    if (!it)
        return;
    rocksdb_iter_destroy(it->it);
    free(it);
}

/* ---- counters ---- */

int stratus_index_counter_next(struct stratus_index *idx, const char *name, uint64_t n,
                               uint64_t *first, struct stratus_errbuf *eb)
{
    uint8_t key[STRATUS_IDX_KEY_MAX], val[8];
    size_t klen = stratus_index_key_counter(key, name), vlen = 0;
    uint8_t *cur = NULL;
    uint64_t next = 1;
    int rc;

    pthread_mutex_lock(&idx->counter_lock);
    rc = stratus_index_get(idx, key, klen, &cur, &vlen, eb);
    if (rc == 0) {
        if (vlen != 8) {
            free(cur);
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "index counter %s: bad value", name);
            goto out;
        }
        next = stratus_be64_get(cur);
        free(cur);
    } else if (rc != STRATUS_ENOTFOUND) {
        goto out;
    }
    stratus_be64_put(val, next + n);
    rc = stratus_index_put(idx, key, klen, val, sizeof val, 1, eb);
    if (rc == 0)
        *first = next;
out:
    pthread_mutex_unlock(&idx->counter_lock);
    return rc;
}

/* ---- keys ---- */

static size_t key_name(uint8_t *buf, uint8_t prefix, const char *name)
{
    size_t n = strlen(name);
    if (n > STRATUS_IDX_KEY_MAX - 1)
        n = STRATUS_IDX_KEY_MAX - 1;
    buf[0] = prefix;
    memcpy(buf + 1, name, n);
    return n + 1;
}

static size_t key_id(uint8_t *buf, uint8_t prefix, uint64_t id)
{
    buf[0] = prefix;
    stratus_be64_put(buf + 1, id);
    return 9;
}

size_t stratus_index_key_topic(uint8_t *buf, const char *name)
{
    return key_name(buf, STRATUS_IDX_TOPIC, name);
}

size_t stratus_index_key_stream(uint8_t *buf, uint64_t stream_id)
{
    return key_id(buf, STRATUS_IDX_STREAM, stream_id);
}

size_t stratus_index_key_delstream(uint8_t *buf, uint64_t stream_id)
{
    return key_id(buf, STRATUS_IDX_DELSTR, stream_id);
}

size_t stratus_index_key_range(uint8_t *buf, uint64_t stream_id, int64_t last_offset)
{
    key_id(buf, STRATUS_IDX_RANGE, stream_id);
    stratus_be64_put(buf + 9, flip(last_offset));
    return 17;
}

size_t stratus_index_key_object(uint8_t *buf, uint64_t object_id)
{
    return key_id(buf, STRATUS_IDX_OBJECT, object_id);
}

size_t stratus_index_key_counter(uint8_t *buf, const char *name)
{
    return key_name(buf, STRATUS_IDX_COUNTER, name);
}

size_t stratus_index_key_producer(uint8_t *buf, uint64_t stream_id)
{
    return key_id(buf, STRATUS_IDX_PRODUCER, stream_id);
}

int stratus_index_parse_range_key(const uint8_t *k, size_t klen, uint64_t *stream_id,
                                  int64_t *last_offset)
{
    if (klen != 17 || k[0] != STRATUS_IDX_RANGE)
        return STRATUS_ECORRUPT;
    *stream_id = stratus_be64_get(k + 1);
    *last_offset = unflip(stratus_be64_get(k + 9));
    return 0;
}

int stratus_index_parse_id_key(const uint8_t *k, size_t klen, uint8_t prefix, uint64_t *id)
{
    if (klen != 9 || k[0] != prefix)
        return STRATUS_ECORRUPT;
    *id = stratus_be64_get(k + 1);
    return 0;
}

/* ---- values ---- */

void stratus_index_range_encode(const struct stratus_index_range *r,
                                uint8_t out[STRATUS_IDX_RANGE_VALUE_SIZE])
{
    out[0] = 1;
    stratus_be64_put(out + 1, r->object_id);
    stratus_be64_put(out + 9, r->position);
    stratus_be32_put(out + 17, r->length);
    stratus_be64_put(out + 21, (uint64_t)r->base_offset);
    stratus_be64_put(out + 29, (uint64_t)r->max_timestamp);
    stratus_be32_put(out + 37, r->batches);
    memset(out + 41, 0, 4); /* reserved */
}

int stratus_index_range_decode(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen,
                               struct stratus_index_range *r)
{
    if (stratus_index_parse_range_key(k, klen, &r->stream_id, &r->last_offset) != 0)
        return STRATUS_ECORRUPT;
    if (vlen < STRATUS_IDX_RANGE_VALUE_SIZE || v[0] != 1)
        return STRATUS_ECORRUPT;
    r->object_id = stratus_be64_get(v + 1);
    r->position = stratus_be64_get(v + 9);
    r->length = stratus_be32_get(v + 17);
    r->base_offset = (int64_t)stratus_be64_get(v + 21);
    r->max_timestamp = (int64_t)stratus_be64_get(v + 29);
    r->batches = stratus_be32_get(v + 37);
    if (r->base_offset > r->last_offset)
        return STRATUS_ECORRUPT;
    return 0;
}

size_t stratus_index_object_encode(const struct stratus_index_object *o, uint8_t *out,
                                   size_t cap)
{
    size_t klen = strnlen(o->key, sizeof o->key - 1);
    if (cap < 23 + klen)
        return 0;
    out[0] = 1;
    stratus_be64_put(out + 1, o->size);
    stratus_be32_put(out + 9, o->live_ranges);
    stratus_be64_put(out + 13, (uint64_t)o->created_ms);
    stratus_be16_put(out + 21, (uint16_t)klen);
    memcpy(out + 23, o->key, klen);
    return 23 + klen;
}

int stratus_index_object_decode(const uint8_t *v, size_t vlen, struct stratus_index_object *o)
{
    size_t klen;

    if (vlen < 23 || v[0] != 1)
        return STRATUS_ECORRUPT;
    klen = stratus_be16_get(v + 21);
    if (klen >= sizeof o->key || 23 + klen > vlen)
        return STRATUS_ECORRUPT;
    o->size = stratus_be64_get(v + 1);
    o->live_ranges = stratus_be32_get(v + 9);
    o->created_ms = (int64_t)stratus_be64_get(v + 13);
    memcpy(o->key, v + 23, klen);
    o->key[klen] = 0;
    return 0;
}

void stratus_index_stream_encode(const struct stratus_index_stream *st,
                                 uint8_t out[STRATUS_IDX_STREAM_VALUE_SIZE])
{
    out[0] = 1;
    stratus_be64_put(out + 1, (uint64_t)st->log_start_offset);
}

int stratus_index_stream_decode(const uint8_t *v, size_t vlen, struct stratus_index_stream *st)
{
    if (vlen < STRATUS_IDX_STREAM_VALUE_SIZE || v[0] != 1)
        return STRATUS_ECORRUPT;
    st->log_start_offset = (int64_t)stratus_be64_get(v + 1);
    return 0;
}

/* ---- time index ---- */

size_t stratus_index_key_time(uint8_t *buf, uint64_t stream_id, int64_t timestamp)
{
    key_id(buf, STRATUS_IDX_TIME, stream_id);
    stratus_be64_put(buf + 9, flip(timestamp));
    return 17;
}

void stratus_index_time_encode(const struct stratus_index_time *t,
                               uint8_t out[STRATUS_IDX_TIME_VALUE_SIZE])
{
    out[0] = 1;
    stratus_be64_put(out + 1, (uint64_t)t->base_offset);
    stratus_be64_put(out + 9, (uint64_t)t->last_offset);
}

int stratus_index_time_decode(const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen,
                              struct stratus_index_time *t)
{
    if (klen != 17 || k[0] != STRATUS_IDX_TIME)
        return STRATUS_ECORRUPT;
    if (vlen < STRATUS_IDX_TIME_VALUE_SIZE || v[0] != 1)
        return STRATUS_ECORRUPT;
    t->stream_id = stratus_be64_get(k + 1);
    t->timestamp = unflip(stratus_be64_get(k + 9));
    t->base_offset = (int64_t)stratus_be64_get(v + 1);
    t->last_offset = (int64_t)stratus_be64_get(v + 9);
    if (t->base_offset > t->last_offset)
        return STRATUS_ECORRUPT;
    return 0;
}

int stratus_index_time_step(struct stratus_index_batch *b, struct stratus_index_time_run *run,
                            const struct stratus_index_range *r)
{
    struct stratus_index_time t = {.stream_id = r->stream_id, .timestamp = r->max_timestamp,
                                   .base_offset = r->base_offset,
                                   .last_offset = r->last_offset};
    uint8_t key[STRATUS_IDX_KEY_MAX], val[STRATUS_IDX_TIME_VALUE_SIZE];
    size_t klen;

    if (run->have && r->max_timestamp <= run->max_ts)
        return 0;
    run->have = 1;
    run->max_ts = r->max_timestamp;
    if (b) {
        klen = stratus_index_key_time(key, r->stream_id, r->max_timestamp);
        stratus_index_time_encode(&t, val);
        stratus_index_batch_put(b, key, klen, val, sizeof val);
    }
    return 1;
}

/* Decodes the entry under it when it belongs to stream_id. */
static int time_here(struct stratus_index_iter *it, uint64_t stream_id,
                     struct stratus_index_time *out, struct stratus_errbuf *eb)
{
    uint8_t prefix[9];
    size_t kl, vl;
    const uint8_t *k, *v;
    int rc;

    key_id(prefix, STRATUS_IDX_TIME, stream_id);
    if (!stratus_index_iter_has_prefix(it, prefix, sizeof prefix)) {
        rc = stratus_index_iter_status(it, eb);
        return rc ? rc : STRATUS_ENOTFOUND;
    }
    k = stratus_index_iter_key(it, &kl);
    v = stratus_index_iter_value(it, &vl);
    if (stratus_index_time_decode(k, kl, v, vl, out) != 0)
        return stratus_errf(eb, STRATUS_ECORRUPT, "index: corrupt time entry of stream %llu",
                            (unsigned long long)stream_id);
    return 0;
}

int stratus_index_time_seek(struct stratus_index_iter *it, uint64_t stream_id, int64_t ts,
                            struct stratus_index_time *out, struct stratus_errbuf *eb)
{
    uint8_t key[STRATUS_IDX_KEY_MAX];
    size_t klen = stratus_index_key_time(key, stream_id, ts);

    stratus_index_iter_seek(it, key, klen);
    return time_here(it, stream_id, out, eb);
}

int stratus_index_time_last(struct stratus_index_iter *it, uint64_t stream_id,
                            struct stratus_index_time *out, struct stratus_errbuf *eb)
{
    uint8_t key[STRATUS_IDX_KEY_MAX];
    size_t klen = stratus_index_key_time(key, stream_id, INT64_MAX);

    stratus_index_iter_seek_for_prev(it, key, klen);
    return time_here(it, stream_id, out, eb);
}

int stratus_index_time_run_load(struct stratus_index *idx, uint64_t stream_id,
                                struct stratus_index_time_run *run, struct stratus_errbuf *eb)
{
    struct stratus_index_iter *it = stratus_index_iter_new(idx);
    struct stratus_index_time t;
    int rc = stratus_index_time_last(it, stream_id, &t, eb);

    stratus_index_iter_free(it);
    run->have = 0;
    run->max_ts = 0;
    if (rc == STRATUS_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    run->have = 1;
    run->max_ts = t.timestamp;
    return 0;
}

/* Builds the 'X' entries of every stream from its 'R' ranges when the index predates them
 * (no 'M' "timeidx"), then writes the marker. Idempotent: the entries are a function of the
 * ranges, so a crash halfway simply redoes it at the next open. */
static int time_index_upgrade(struct stratus_index *idx, struct stratus_errbuf *eb)
{
    uint8_t mkey[STRATUS_IDX_KEY_MAX], prefix = STRATUS_IDX_RANGE, one = 1, *v = NULL;
    size_t mklen = key_name(mkey, STRATUS_IDX_META, "timeidx"), vlen = 0, entries = 0;
    struct stratus_index_batch *b = NULL;
    struct stratus_index_iter *it = NULL;
    struct stratus_index_time_run run = {0};
    uint64_t cur = 0;
    int rc = stratus_index_get(idx, mkey, mklen, &v, &vlen, eb);

    free(v);
    if (rc != STRATUS_ENOTFOUND)
        return rc; /* 0: already there */
    b = stratus_index_batch_new();
    it = stratus_index_iter_new(idx);
    for (stratus_index_iter_seek(it, &prefix, 1); stratus_index_iter_has_prefix(it, &prefix, 1);
         stratus_index_iter_next(it)) {
        struct stratus_index_range r;
        size_t kl, vl;
        const uint8_t *k = stratus_index_iter_key(it, &kl), *val = stratus_index_iter_value(it, &vl);
        if (stratus_index_range_decode(k, kl, val, vl, &r) != 0) {
            rc = stratus_errf(eb, STRATUS_ECORRUPT, "index: corrupt range record");
            goto out;
        }
        if (entries == 0 || r.stream_id != cur) {
            cur = r.stream_id;
            run.have = 0;
        }
        entries++;
        stratus_index_time_step(b, &run, &r);
        if (stratus_index_batch_count(b) >= 65536) {
            rc = stratus_index_batch_write(idx, b, 0, eb);
            if (rc)
                goto out;
            stratus_index_batch_free(b);
            b = stratus_index_batch_new();
        }
    }
    rc = stratus_index_iter_status(it, eb);
    if (rc)
        goto out;
    stratus_index_batch_put(b, mkey, mklen, &one, 1);
    rc = stratus_index_batch_write(idx, b, 1, eb);
out:
    stratus_index_iter_free(it);
    stratus_index_batch_free(b);
    return rc;
}
