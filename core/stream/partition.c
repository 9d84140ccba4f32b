/* partition.c - a partition's hot path: append (validate, assign offsets, log cache, WAL),
 * WAL completions (high watermark), reads from the log cache, offsets, WAL replay into the
 * cache, cache eviction, and the cold-read / offset-for-time entry points that hand work to
 * the I/O pool.
 *
 * Owns struct stratus_partition (stream_int.h says which thread touches which field) and its
 * log cache: one malloc'd struct stratus_lc_batch per record batch, in offset order, holding a
 * copy of the batch or a reference to the request frame it arrived in (append_owned).
 * Batches are reference-counted: fetch borrows them (read_lent) to write them to the socket
 * without a copy, so an evicted batch lives until its last reader lets go. Batches
 * are readable once below the high watermark; they may be evicted only once uploaded.
 * The WAL record written per append call is described in stream_int.h; its CRC joins in each
 * batch's own CRC (checked by validate) rather than reading the batch a second time.
 * Ownership (cluster mode, stream.h): the role (OWNER from creation in single-node mode) gates
 * appends (OWNER only) and reads (OWNER, RESIGNING); claim rewrites the stream's local index
 * entries from the metastore's and resets the cache, recover_record applies a dead owner's
 * WAL records (batches marked STRATUS_LSN_NONE), resign flushes through the uploader, fence
 * drops everything. own_gen makes completions and upload rounds of an earlier ownership
 * harmless. A WAL completion with STRATUS_EAGAIN (past the ack deadline) is not acknowledged
 * and stops the partition (ack_lost) until it is fenced or claimed again.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/kerr.h"
#include "proto/records.h"
#include "stream_int.h"
#include "util/alloc.h"
#include "util/bytes.h"
#include "util/clock.h"
#include "util/hugeframes.h"
#include "util/log.h"

/* Record batch v2: the CRC-32C at byte 17 covers bytes 21..end (records.c) */
#define BATCH_CRC_OFF 17
#define BATCH_CRC_FROM 21

/* ---- lifecycle ---- */

struct stratus_partition *stratus_partition_new(struct stratus_stream *s, const char *topic,
                                                int32_t index, uint64_t stream_id,
                                                int32_t leader_epoch)
{
    struct stratus_partition *p = xcalloc(1, sizeof *p);

    p->s = s;
    snprintf(p->topic, sizeof p->topic, "%s", topic);
    p->index = index;
    p->stream_id = stream_id;
    atomic_init(&p->leader_epoch, leader_epoch);
    atomic_init(&p->refs, 1);
    atomic_init(&p->role, STRATUS_CLUSTER(s) ? STRATUS_ROLE_NONE : STRATUS_ROLE_OWNER);
    pthread_mutex_init(&p->lock, NULL);
    p->retention_ms = 604800000;
    p->retention_bytes = -1;
    p->max_message_bytes = 16777216;
    return p;
}

void stratus_partition_ref(struct stratus_partition *p)
{
    atomic_fetch_add(&p->refs, 1);
}

/* Drops one reference to a cached batch (the cache's own, or a reader's); the last frees it. */
static void lc_unref(struct stratus_lc_batch *b)
{
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        stratus_rcbuf_unref(b->owner);
        free(b);
    }
}

void stratus_lc_unref(void *ref)
{
    lc_unref(ref);
}

/* A batch with a copy of its bytes (data right after the struct). Large ones (a WAL replay's)
 * come from the huge-frame arena when it runs: memory a process touches for the first time is
 * mapped about 1.4x as fast in huge pages on a VM (docs/benchmarks.md, round 24). */
static struct stratus_lc_batch *lc_batch_copy(const uint8_t *data, size_t len)
{
    size_t n = sizeof(struct stratus_lc_batch) + len;
    struct stratus_lc_batch *b = n >= STRATUS_HUGEFRAMES_MIN ? stratus_hugeframes_alloc(n, 64)
                                                              : NULL;
    if (!b)
        b = xmalloc(n);
    b->data = (uint8_t *)(b + 1);
    b->owner = NULL;
    b->len = (uint32_t)len;
    b->mem = (uint32_t)malloc_usable_size(b);
    memcpy(b->data, data, len);
    return b;
}

/* Frees a batch that never entered the cache. */
static void lc_batch_discard(struct stratus_lc_batch *b)
{
    if (b) {
        stratus_rcbuf_unref(b->owner);
        free(b);
    }
}

static void lc_free_all(struct stratus_partition *p)
{
    for (size_t i = 0; i < p->lc_n; i++)
        lc_unref(p->lc[p->lc_head + i]);
    atomic_fetch_sub(&p->s->lc_bytes, p->lc_bytes);
    p->lc_bytes = 0;
    p->lc_n = p->lc_up = p->lc_head = 0;
}

void stratus_partition_release(struct stratus_partition *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    lc_free_all(p);
    free(p->lc);
    stratus_pstate_clear(&p->producers);
    while (p->dup_waiters) { /* none: every waiter's WAL completion holds a reference */
        struct stratus_dup_wait *w = p->dup_waiters;
        p->dup_waiters = w->next;
        free(w);
    }
    pthread_mutex_destroy(&p->lock);
    free(p);
}

const char *stratus_partition_topic(const struct stratus_partition *p)
{
    return p->topic;
}

int32_t stratus_partition_index(const struct stratus_partition *p)
{
    return p->index;
}

int32_t stratus_partition_leader_epoch(const struct stratus_partition *p)
{
    return atomic_load(&p->leader_epoch);
}

int stratus_partition_role(struct stratus_partition *p)
{
    return atomic_load(&p->role);
}

int stratus_partition_stuck(struct stratus_partition *p)
{
    int stuck;
    pthread_mutex_lock(&p->lock);
    stuck = atomic_load(&p->role) == STRATUS_ROLE_OWNER && (p->ack_lost || p->wal_failed);
    pthread_mutex_unlock(&p->lock);
    return stuck;
}

uint64_t stratus_partition_stream_id(const struct stratus_partition *p)
{
    return p->stream_id;
}

/* Reads are answered by an owner, and by a resigning owner until its hand-over ends. */
static int servable(struct stratus_partition *p)
{
    int r = atomic_load(&p->role);
    return r == STRATUS_ROLE_OWNER || r == STRATUS_ROLE_RESIGNING;
}

void stratus_partition_offsets(struct stratus_partition *p, int64_t *log_start,
                               int64_t *high_watermark, int64_t *log_end)
{
    pthread_mutex_lock(&p->lock);
    if (log_start)
        *log_start = p->log_start;
    if (high_watermark)
        *high_watermark = p->hw;
    if (log_end)
        *log_end = p->log_end;
    pthread_mutex_unlock(&p->lock);
}

void stratus_partition_notify(struct stratus_partition *p)
{
    stratus_commit_hook_fn *fn = atomic_load_explicit(&p->s->hook, memory_order_acquire);
    if (fn)
        fn(p->s->hook_arg, p);
}

int stratus_partition_load_offsets(struct stratus_partition *p, struct stratus_errbuf *eb)
{
    uint8_t key[STRATUS_IDX_KEY_MAX], *v = NULL;
    size_t klen = stratus_index_key_stream(key, p->stream_id), vlen = 0;
    struct stratus_index_stream st = {0};
    struct stratus_index_iter *it;
    int64_t end;
    int rc;

    rc = stratus_index_get(p->s->idx, key, klen, &v, &vlen, eb);
    if (rc == 0) {
        rc = stratus_index_stream_decode(v, vlen, &st);
        free(v);
        if (rc)
            return stratus_errf(eb, rc, "index: stream %llu state is corrupt",
                                (unsigned long long)p->stream_id);
    } else if (rc != STRATUS_ENOTFOUND) {
        return rc;
    }
    end = st.log_start_offset;
    it = stratus_index_iter_new(p->s->idx);
    klen = stratus_index_key_range(key, p->stream_id, INT64_MAX);
    stratus_index_iter_seek_for_prev(it, key, klen);
    if (stratus_index_iter_has_prefix(it, key, 9)) {
        size_t kl;
        uint64_t sid;
        int64_t last;
        const uint8_t *k = stratus_index_iter_key(it, &kl);
        if (stratus_index_parse_range_key(k, kl, &sid, &last) == 0 && last + 1 > end)
            end = last + 1;
    }
    rc = stratus_index_iter_status(it, eb);
    stratus_index_iter_free(it);
    pthread_mutex_lock(&p->lock);
    p->log_start = st.log_start_offset;
    p->hw = p->log_end = end;
    pthread_mutex_unlock(&p->lock);
    if (rc == 0)
        rc = stratus_pstate_load(p, eb);
    return rc;
}

/* ---- the log cache (caller holds p->lock) ---- */

static void lc_push(struct stratus_partition *p, struct stratus_lc_batch *b)
{
    if (p->lc_head + p->lc_n == p->lc_cap) {
        if (p->lc_head > p->lc_cap / 2) {
            memmove(p->lc, p->lc + p->lc_head, p->lc_n * sizeof *p->lc);
            p->lc_head = 0;
        } else {
            p->lc_cap = p->lc_cap ? p->lc_cap * 2 : 64;
            p->lc = xrealloc(p->lc, p->lc_cap * sizeof *p->lc);
        }
    }
    atomic_init(&b->refs, 1);
    p->lc[p->lc_head + p->lc_n++] = b;
    p->lc_bytes += b->mem;
    atomic_fetch_add(&p->s->lc_bytes, b->mem);
}

/* Removes the oldest cached batch and returns it with the cache's reference, for the caller
 * to drop (outside the lock when it drops many). */
static struct stratus_lc_batch *lc_take(struct stratus_partition *p)
{
    struct stratus_lc_batch *b = p->lc[p->lc_head];

    p->lc_head++;
    p->lc_n--;
    if (p->lc_up)
        p->lc_up--;
    p->lc_bytes -= b->mem;
    atomic_fetch_sub(&p->s->lc_bytes, b->mem);
    if (p->lc_n == 0)
        p->lc_head = 0;
    return b;
}

static void lc_pop(struct stratus_partition *p)
{
    lc_unref(lc_take(p));
}

/* Position (relative to lc_head) of the first cached batch with last >= offset, or lc_n. */
static size_t lc_find(struct stratus_partition *p, int64_t offset)
{
    size_t lo = 0, hi = p->lc_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->lc[p->lc_head + mid]->last < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint64_t stratus_partition_evict(struct stratus_partition *p, uint64_t want_bytes)
{
    uint64_t freed = 0;
    struct stratus_lc_batch **gone = NULL;
    size_t ngone = 0, cap = 0;

    /* The batches leave the cache under the lock and are freed after it: at a budget of
     * gigabytes one eviction drops 10% of it, tens of thousands of frees, and every append and
     * WAL completion of the partition waits for this lock. */
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (!p->lc_n || !p->lc_up)
            break;
        int expired = p->lc[p->lc_head]->last < p->log_start;
        if (!expired && freed >= want_bytes)
            break;
        if (ngone == cap) {
            cap = cap ? cap * 2 : 256;
            gone = xrealloc(gone, cap * sizeof *gone);
        }
        gone[ngone] = lc_take(p);
        freed += gone[ngone++]->mem;
        if (!expired)
            atomic_fetch_add(&p->s->lc_evictions, 1);
    }
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < ngone; i++)
        lc_unref(gone[i]);
    free(gone);
    return freed;
}

uint64_t stratus_partition_cached_bytes(struct stratus_partition *p)
{
    uint64_t n;
    pthread_mutex_lock(&p->lock);
    n = p->lc_bytes;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* Drops every cached batch; returns the bytes of those not uploaded (for settle()). Caller
 * holds p->lock. */
static uint64_t lc_drop_all(struct stratus_partition *p)
{
    uint64_t pending = 0;

    for (size_t i = p->lc_up; i < p->lc_n; i++)
        pending += p->lc[p->lc_head + i]->len;
    lc_free_all(p);
    return pending;
}

/* Pending bytes that will never be uploaded here (discarded): settled for flush. */
static void settle(struct stratus_stream *s, uint64_t bytes)
{
    if (!bytes)
        return;
    atomic_fetch_sub(&s->pending_bytes, bytes);
    atomic_fetch_add(&s->settled_bytes, bytes);
}

void stratus_partition_mark_deleted(struct stratus_partition *p)
{
    struct stratus_stream *s = p->s;
    uint64_t pending;

    pthread_mutex_lock(&p->lock);
    p->deleted = 1;
    pending = lc_drop_all(p);
    pthread_mutex_unlock(&p->lock);
    settle(s, pending);
}

/* ---- append ---- */

struct append_ctx {
    struct stratus_partition *p;
    uint64_t gen; /* the ownership it was appended under (p->own_gen) */
    int64_t next; /* high watermark once this record is durable */
    stratus_append_done_fn *done;
    void *arg;
};

static void append_wal_done(void *arg, int err, uint64_t lsn)
{
    struct append_ctx *c = arg;
    struct stratus_partition *p = c->p;

    struct stratus_dup_wait *ready = NULL, **wp;
    int16_t kerr = KAFKA_ERR_NONE;
    int first_lost = 0;

    (void)lsn;
    pthread_mutex_lock(&p->lock);
    if (c->gen != p->own_gen) {
        /* fenced or handed over meanwhile: the cache this went into is gone */
        kerr = KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
    } else if (err == STRATUS_EAGAIN) {
        /* durable after the ack deadline (object WAL, cluster mode): not acknowledged, and
         * nothing after it may become visible; the node agent fences the partition */
        first_lost = !p->ack_lost;
        p->ack_lost = 1;
        kerr = KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
    } else if (err) {
        p->wal_failed = 1;
        kerr = KAFKA_ERR_KAFKA_STORAGE_ERROR;
    } else if (p->ack_lost) {
        kerr = KAFKA_ERR_NOT_LEADER_OR_FOLLOWER; /* behind one that was not acknowledged */
    } else if (c->next > p->hw) {
        p->hw = c->next;
    }
    /* duplicates whose original is now durable (or failed); none when fenced meanwhile:
     * the fence answered them */
    for (wp = &p->dup_waiters; c->gen == p->own_gen && *wp;) {
        struct stratus_dup_wait *w = *wp;
        if (kerr != KAFKA_ERR_NONE || w->need <= p->hw) {
            *wp = w->next;
            w->next = ready;
            ready = w;
        } else {
            wp = &w->next;
        }
    }
    pthread_mutex_unlock(&p->lock);
    while (ready) {
        struct stratus_dup_wait *w = ready;
        ready = w->next;
        w->done(w->arg, kerr);
        free(w);
    }
    if (first_lost)
        LOG_WARN("stream", "WAL write completed after the ack deadline (not acknowledged) "
                 "topic=%s partition=%d: appends answer NOT_LEADER_OR_FOLLOWER until it is "
                 "fenced",
                 p->topic, p->index);
    if (kerr != KAFKA_ERR_NONE) {
        if (err && err != STRATUS_EAGAIN)
            LOG_ERROR("stream", "WAL write failed topic=%s partition=%d: %s", p->topic,
                      p->index, stratus_strerror(err));
        c->done(c->arg, kerr);
    } else {
        c->done(c->arg, KAFKA_ERR_NONE);
        stratus_partition_notify(p);
    }
    stratus_partition_release(p);
    free(c);
}

static int16_t kerr_of_validate(int rc)
{
    switch (rc) {
    case STRATUS_ENOTSUP:
        return KAFKA_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    case STRATUS_EINVAL:
        return KAFKA_ERR_INVALID_RECORD;
    default:
        return KAFKA_ERR_CORRUPT_MESSAGE;
    }
}

void stratus_partition_append(struct stratus_partition *p, const uint8_t *records, size_t len,
                              struct stratus_append_result *res, stratus_append_done_fn *done,
                              void *arg)
{
    stratus_partition_append_owned(p, (uint8_t *)(uintptr_t)records, len, NULL, res, done, arg);
}

void stratus_partition_append_owned(struct stratus_partition *p, uint8_t *records, size_t len,
                                    const void *owner, struct stratus_append_result *res,
                                    stratus_append_done_fn *done, void *arg)
{
    struct stratus_stream *s = p->s;
    struct stratus_errbuf eb = {{0}};
    struct stratus_lc_batch **bs = NULL;
    struct stratus_batch_info *bis = NULL;
    struct stratus_pentry *work = NULL; /* working copies of the producers' entries */
    int nwork = 0;
    struct iovec *iov = NULL;
    int64_t *crcs = NULL;
    struct append_ctx *ctx = NULL;
    uint8_t hdr[STRATUS_WALREC_HEADER_SIZE];
    int nb = 0, rc;
    int64_t nrec = 0, off, now = -1, base;
    uint64_t lsn = 0, total = 0;
    size_t pos = 0;

    memset(res, 0, sizeof *res);
    res->base_offset = -1;
    res->log_append_time = -1;
    res->log_start_offset = -1;
    rc = stratus_records_validate(records, len, &nb, &nrec, &eb);
    if (rc) {
        res->error = kerr_of_validate(rc);
        snprintf(res->msg, sizeof res->msg, "%s", eb.msg);
        return;
    }
    if (nb <= 0) {
        res->error = KAFKA_ERR_CORRUPT_MESSAGE;
        snprintf(res->msg, sizeof res->msg, "no record batch");
        return;
    }
    /* Copy every batch outside the lock (or reference it inside owner). A referenced batch
     * is charged its share of the frame's allocation (its bytes times the frame's allocated
     * size over the frame's length), so that the allocator's rounding of the frames the cache
     * keeps alive counts against the budget (at 12 GiB, with a producer at 240 MB/s, the heap
     * held 13.05 GB for 11.6 GB of cached bytes before). */
    size_t frame_len = owner ? stratus_rcbuf_len(owner) : 0;
    uint64_t frame_mem = owner ? stratus_rcbuf_footprint(owner) : 0;
    bs = xcalloc((size_t)nb, sizeof *bs);
    bis = xcalloc((size_t)nb, sizeof *bis);
    for (int i = 0; i < nb; i++) {
        struct stratus_batch_info bi;
        if (stratus_batch_parse(records + pos, len - pos, &bi, &eb) != 0) {
            res->error = KAFKA_ERR_CORRUPT_MESSAGE;
            snprintf(res->msg, sizeof res->msg, "%s", eb.msg);
            nb = i;
            goto fail;
        }
        if (owner) {
            bs[i] = xmalloc(sizeof **bs);
            bs[i]->data = records + pos;
            bs[i]->owner = owner;
            stratus_rcbuf_ref(owner);
            bs[i]->mem = (uint32_t)(malloc_usable_size(bs[i]) +
                                    ((uint64_t)bi.size * frame_mem + frame_len - 1) / frame_len);
        } else {
            bs[i] = lc_batch_copy(records + pos, (size_t)bi.size);
        }
        bs[i]->len = (uint32_t)bi.size;
        bs[i]->base = 0;
        bs[i]->last = bi.last_offset_delta; /* relative until offsets are assigned */
        bs[i]->max_ts = bi.max_timestamp;
        bis[i] = bi;
        pos += (size_t)bi.size;
        total += (uint64_t)bi.size;
    }
    /* the WAL record: header, then per batch its first 21 bytes (base offset .. CRC, rewritten
     * below) and the rest, whose CRC-32C is the batch's CRC field (checked by validate above,
     * rewritten by set_log_append_time): the WAL joins that in instead of a second pass */
    iov = xcalloc(2 * (size_t)nb + 1, sizeof *iov);
    crcs = xcalloc(2 * (size_t)nb + 1, sizeof *crcs);
    ctx = xcalloc(1, sizeof *ctx);

    pthread_mutex_lock(&p->lock);
    if (p->deleted) {
        pthread_mutex_unlock(&p->lock);
        res->error = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        snprintf(res->msg, sizeof res->msg, "topic deleted");
        goto fail;
    }
    if (atomic_load(&p->role) != STRATUS_ROLE_OWNER || p->ack_lost) {
        pthread_mutex_unlock(&p->lock);
        res->error = KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
        snprintf(res->msg, sizeof res->msg, "this broker does not lead the partition");
        goto fail;
    }
    if (p->wal_failed) {
        pthread_mutex_unlock(&p->lock);
        res->error = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        snprintf(res->msg, sizeof res->msg, "the WAL failed; appends are refused");
        goto fail;
    }
    for (int i = 0; i < nb; i++)
        if ((int64_t)bs[i]->len > p->max_message_bytes) {
            int64_t mmb = p->max_message_bytes;
            pthread_mutex_unlock(&p->lock);
            res->error = KAFKA_ERR_MESSAGE_TOO_LARGE;
            snprintf(res->msg, sizeof res->msg, "record batch of %u bytes is larger than "
                     "max.message.bytes=%lld", bs[i]->len, (long long)mmb);
            goto fail;
        }
    /* Idempotent producers (producer.c): each batch against a working copy of its producer's
     * entry; a duplicate answers the whole append with the original offsets, as Kafka does. */
    for (int i = 0; i < nb; i++) {
        struct stratus_pentry *w = NULL;
        struct stratus_pbatch dup;
        int16_t kerr;
        if (bis[i].producer_id < 0)
            continue;
        for (int k = 0; k < nwork; k++)
            if (work[k].pid == bis[i].producer_id)
                w = &work[k];
        if (!w) {
            const struct stratus_pentry *e = stratus_pstate_find(&p->producers,
                                                                 bis[i].producer_id);
            if (!work)
                work = xcalloc((size_t)nb, sizeof *work);
            w = &work[nwork++];
            if (e) {
                *w = *e;
            } else {
                w->pid = bis[i].producer_id;
                w->epoch = -1;
                w->last_off = -1;
            }
        }
        kerr = (int16_t)stratus_pstate_check(w, bis[i].producer_epoch, bis[i].base_sequence,
                                             bis[i].last_offset_delta,
                                             p->producers.expired_pid_end, &dup, res->msg,
                                             sizeof res->msg);
        if (kerr == STRATUS_PSTATE_DUP) {
            int durable = dup.last < p->hw;
            res->base_offset = dup.base;
            res->log_append_time = p->log_append_time ? dup.ts : -1;
            res->log_start_offset = p->log_start;
            if (!durable) { /* answer once the original is durable, never before */
                struct stratus_dup_wait *dw = xcalloc(1, sizeof *dw);
                dw->need = dup.last + 1;
                dw->done = done;
                dw->arg = arg;
                dw->next = p->dup_waiters;
                p->dup_waiters = dw;
            }
            pthread_mutex_unlock(&p->lock);
            LOG_DEBUG("stream", "duplicate batch topic=%s partition=%d producer=%lld seq=%d "
                      "offset=%lld durable=%d", p->topic, p->index,
                      (long long)bis[i].producer_id, bis[i].base_sequence,
                      (long long)dup.base, durable);
            if (durable)
                done(arg, KAFKA_ERR_NONE);
            goto fail; /* frees the copies; res->error stays NONE */
        }
        if (kerr != KAFKA_ERR_NONE) {
            pthread_mutex_unlock(&p->lock);
            res->error = kerr;
            goto fail;
        }
    }
    if (p->log_append_time)
        now = stratus_wall_ms();
    base = off = p->log_end;
    for (int i = 0; i < nb; i++) {
        struct stratus_lc_batch *b = bs[i];
        int64_t delta = b->last;
        stratus_batch_set_base_offset(b->data, off);
        stratus_batch_set_leader_epoch(b->data, atomic_load(&p->leader_epoch));
        if (now >= 0) {
            stratus_batch_set_log_append_time(b->data, b->len, now);
            b->max_ts = now;
        }
        b->base = off;
        b->last = off + delta;
        off = b->last + 1;
        iov[2 * i + 1].iov_base = b->data;
        iov[2 * i + 1].iov_len = BATCH_CRC_FROM;
        crcs[2 * i + 1] = -1;
        iov[2 * i + 2].iov_base = b->data + BATCH_CRC_FROM;
        iov[2 * i + 2].iov_len = b->len - BATCH_CRC_FROM;
        crcs[2 * i + 2] = (int64_t)stratus_be32_get(b->data + BATCH_CRC_OFF);
    }
    put_le32(hdr, STRATUS_WALREC_MAGIC);
    hdr[4] = 1;
    hdr[5] = 0;
    hdr[6] = hdr[7] = 0;
    put_le64(hdr + 8, p->stream_id);
    put_le64(hdr + 16, (uint64_t)base);
    put_le64(hdr + 24, (uint64_t)(off - 1));
    put_le32(hdr + 32, (uint32_t)atomic_load(&p->leader_epoch));
    put_le32(hdr + 36, (uint32_t)nb);
    put_le32(hdr + 40, (uint32_t)total);
    iov[0].iov_base = hdr;
    iov[0].iov_len = sizeof hdr;
    crcs[0] = -1;
    ctx->p = p;
    ctx->gen = p->own_gen;
    ctx->next = off;
    ctx->done = done;
    ctx->arg = arg;
    stratus_partition_ref(p);
    /* Under the partition lock, so that LSN order is offset order within the partition. */
    /* the batches lie back to back in the request frame (owner): a large run of them goes to
     * the WAL's write straight from it, without a copy (stratus_wal_append_ref) */
    rc = stratus_wal_append_ref(s->wal, iov, crcs, 2 * nb + 1, 1, owner, append_wal_done, ctx,
                                &lsn);
    if (rc) {
        pthread_mutex_unlock(&p->lock);
        atomic_fetch_sub(&p->refs, 1); /* the ref taken for ctx; p is still referenced */
        res->error = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        snprintf(res->msg, sizeof res->msg, "WAL append: %s", stratus_strerror(rc));
        goto fail;
    }
    for (int i = 0; i < nb; i++) {
        bs[i]->lsn = lsn;
        lc_push(p, bs[i]);
    }
    if (nwork) { /* record the producers' batches with their offsets */
        int64_t wall = stratus_wall_ms();
        for (int i = 0; i < nb; i++) {
            int32_t fs = bis[i].base_sequence, ls;
            if (bis[i].producer_id < 0)
                continue;
            ls = stratus_pstate_seq_add(fs, bis[i].last_offset_delta);
            for (int k = 0; k < nwork; k++) {
                struct stratus_pentry *w = &work[k];
                if (w->pid != bis[i].producer_id)
                    continue;
                for (int j = 0; j < w->nb; j++)
                    if (w->b[j].base < 0 && w->b[j].first_seq == fs && w->b[j].last_seq == ls) {
                        w->b[j].base = bs[i]->base;
                        w->b[j].last = bs[i]->last;
                        w->b[j].ts = bs[i]->max_ts;
                        break;
                    }
                w->last_off = bs[i]->last;
                w->updated_ms = wall;
            }
        }
        for (int k = 0; k < nwork; k++)
            stratus_pstate_put(&p->producers, &work[k]);
    }
    p->log_end = off;
    res->base_offset = base;
    res->log_append_time = now;
    res->log_start_offset = p->log_start;
    pthread_mutex_unlock(&p->lock);

    atomic_fetch_add(&s->pending_bytes, total);
    atomic_fetch_add(&s->appended_bytes, total);
    {
        int_fast64_t zero = 0;
        atomic_compare_exchange_strong(&s->oldest_pending_ms, &zero, stratus_mono_ms());
    }
    if (atomic_load(&s->pending_bytes) >= s->conf.object_target_bytes ||
        atomic_load(&s->lc_bytes) > s->conf.log_cache_bytes)
        stratus_uploader_wake(s); /* uploads, or only evicts (see uploader.c) */
    free(bs);
    free(bis);
    free(work);
    free(iov);
    free(crcs);
    return;
fail:
    for (int i = 0; i < nb; i++)
        lc_batch_discard(bs[i]);
    free(bs);
    free(bis);
    free(work);
    free(iov);
    free(crcs);
    free(ctx);
}

/* ---- replay ---- */

int stratus_partition_replay_record(struct stratus_stream *s, struct stratus_partition *p,
                                    uint64_t lsn, const uint8_t *rec, size_t len)
{
    uint32_t nb = get_le32(rec + 36), dlen = get_le32(rec + 40);
    size_t pos = STRATUS_WALREC_HEADER_SIZE;
    uint64_t added = 0;

    if ((size_t)dlen != len - STRATUS_WALREC_HEADER_SIZE)
        return STRATUS_ECORRUPT;
    pthread_mutex_lock(&p->lock);
    for (uint32_t i = 0; i < nb; i++) {
        struct stratus_batch_info bi;
        struct stratus_lc_batch *b;
        int64_t last;

        if (stratus_batch_parse(rec + pos, len - pos, &bi, NULL) != 0)
            break;
        last = bi.base_offset + bi.last_offset_delta;
        if (bi.producer_id >= 0) /* idempotent: snapshot + replay overlap is fine */
            stratus_pstate_replay(&p->producers, bi.producer_id, bi.producer_epoch,
                                  bi.base_sequence,
                                  stratus_pstate_seq_add(bi.base_sequence, bi.last_offset_delta),
                                  bi.base_offset, last, bi.max_timestamp);
        if (last < p->log_end) { /* already in an uploaded object */
            pos += (size_t)bi.size;
            continue;
        }
        if (bi.base_offset != p->log_end)
            LOG_WARN("stream", "WAL replay: topic=%s partition=%d batch at %lld, expected %lld",
                     p->topic, p->index, (long long)bi.base_offset, (long long)p->log_end);
        if (bi.base_offset < p->log_end) { /* overlaps: cannot happen with whole batches */
            pos += (size_t)bi.size;
            continue;
        }
        b = lc_batch_copy(rec + pos, (size_t)bi.size);
        b->len = (uint32_t)bi.size;
        b->base = bi.base_offset;
        b->last = last;
        b->max_ts = bi.max_timestamp;
        b->lsn = lsn;
        lc_push(p, b);
        p->log_end = last + 1;
        p->hw = p->log_end; /* replayed records are durable */
        added += b->len;
        pos += (size_t)bi.size;
    }
    pthread_mutex_unlock(&p->lock);
    if (added) {
        int_fast64_t zero = 0;
        atomic_fetch_add(&s->pending_bytes, added);
        atomic_fetch_add(&s->appended_bytes, added);
        atomic_compare_exchange_strong(&s->oldest_pending_ms, &zero, stratus_mono_ms());
    }
    return 0;
}

/* The stream id of a WAL record, or 0 when the record is not one of ours. */
uint64_t stratus_partition_walrec_stream(const uint8_t *rec, size_t len)
{
    if (len < STRATUS_WALREC_HEADER_SIZE || get_le32(rec) != STRATUS_WALREC_MAGIC || rec[4] != 1)
        return 0;
    return get_le64(rec + 8);
}

/* ---- reads ---- */

/* The part both reads share, under p->lock: res's offsets, then the cached batches to return,
 * [*at, *at + *n) holding *total bytes. Returns 0 (res->error may be set; *n may be 0), or
 * STRATUS_EAGAIN when the offset is no longer in the log cache. */
static int read_span(struct stratus_partition *p, int64_t offset, size_t max_bytes, int min_one,
                     struct stratus_fetch_result *res, size_t *at, size_t *n, size_t *total)
{
    *n = *total = 0;
    res->high_watermark = p->hw;
    res->last_stable_offset = p->hw;
    res->log_start_offset = p->log_start;
    if (!servable(p)) {
        res->error = KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
        return 0;
    }
    if (offset < p->log_start || offset > p->hw) {
        res->error = KAFKA_ERR_OFFSET_OUT_OF_RANGE;
        return 0;
    }
    if (offset == p->hw)
        return 0;
    *at = lc_find(p, offset);
    if (*at == p->lc_n || p->lc[p->lc_head + *at]->base > offset)
        return STRATUS_EAGAIN;
    for (size_t i = *at; i < p->lc_n; i++) {
        struct stratus_lc_batch *b = p->lc[p->lc_head + i];
        if (b->last >= p->hw)
            break;
        if (*total + b->len > max_bytes && !(min_one && *n == 0))
            break;
        *total += b->len;
        (*n)++;
    }
    return 0;
}

int stratus_partition_read(struct stratus_partition *p, int64_t offset, size_t max_bytes,
                           int min_one, struct stratus_fetch_result *res)
{
    size_t at = 0, n, total;
    int rc;

    memset(res, 0, sizeof *res);
    pthread_mutex_lock(&p->lock);
    rc = read_span(p, offset, max_bytes, min_one, res, &at, &n, &total);
    if (rc == 0 && total) {
        uint8_t *d = malloc(total);
        size_t o = 0;
        if (!d) {
            res->error = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        } else {
            for (size_t i = at; i < at + n; i++) {
                struct stratus_lc_batch *b = p->lc[p->lc_head + i];
                memcpy(d + o, b->data, b->len);
                o += b->len;
            }
            res->data = d;
            res->len = total;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int stratus_partition_read_lent(struct stratus_partition *p, int64_t offset, size_t max_bytes,
                                int min_one, struct stratus_fetch_result *res,
                                struct stratus_lent **segs, int *nsegs)
{
    size_t at = 0, n, total;
    int rc;

    memset(res, 0, sizeof *res);
    *segs = NULL;
    *nsegs = 0;
    pthread_mutex_lock(&p->lock);
    rc = read_span(p, offset, max_bytes, min_one, res, &at, &n, &total);
    if (rc == 0 && n) {
        struct stratus_lent *v = malloc(n * sizeof *v);
        if (!v) {
            res->error = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        } else {
            for (size_t i = 0; i < n; i++) {
                struct stratus_lc_batch *b = p->lc[p->lc_head + at + i];
                atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
                v[i].data = b->data;
                v[i].len = b->len;
                v[i].ref = b;
                v[i].unref = stratus_lc_unref;
            }
            *segs = v;
            *nsegs = (int)n;
            res->len = total;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void stratus_lent_release(struct stratus_lent *segs, int nsegs)
{
    for (int i = 0; i < nsegs; i++)
        segs[i].unref(segs[i].ref);
    free(segs);
}

struct cold_job {
    struct stratus_partition *p;
    int64_t offset;
    size_t max_bytes;
    int min_one;
    int lend; /* lend the blocks' bytes (res.segs) instead of copying them */
    stratus_read_done_fn *done;
    void *arg;
};

static void cold_job_run(void *arg)
{
    struct cold_job *j = arg;
    struct stratus_partition *p = j->p;
    struct stratus_fetch_result res;
    struct stratus_errbuf eb = {{0}};
    int rc;

    int64_t stop, next = j->offset;
    size_t from_objects = 0;
    int sequential = 0;

    memset(&res, 0, sizeof res);
    pthread_mutex_lock(&p->lock);
    res.high_watermark = res.last_stable_offset = p->hw;
    res.log_start_offset = p->log_start;
    /* read objects only up to where the log cache begins: the rest comes from memory below
     * (a consumer starting just under the cache would otherwise read max_bytes from storage) */
    stop = p->hw;
    if (p->lc_n && p->lc[p->lc_head]->base > j->offset && p->lc[p->lc_head]->base < stop)
        stop = p->lc[p->lc_head]->base;
    pthread_mutex_unlock(&p->lock);
    if (!servable(p)) {
        res.error = KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
    } else if (j->offset < res.log_start_offset || j->offset > res.high_watermark) {
        res.error = KAFKA_ERR_OFFSET_OUT_OF_RANGE;
    } else if (j->offset < res.high_watermark) {
        rc = stratus_coldread(p, j->offset, j->max_bytes, j->min_one, stop, &res.data,
                              &res.len, j->lend ? &res.segs : NULL, &res.nsegs, &next,
                              &sequential, &eb);
        from_objects = res.len;
        /* Where the objects end below the high watermark the rest is in the log cache: it is
         * not appended here (a copy of up to max_bytes on this pool thread, into fresh memory);
         * the consumer's next fetch gets it from the cache without a copy. Measured (workload
         * 2c, 128 partitions whose first record had left the cache): half of the bytes served
         * went through that copy; broker CPU 0.76 -> 0.28-0.40 s per GiB served. */
        if (rc == STRATUS_ENOTFOUND) {
            /* not in an object (yet, or any more): the log cache may have it */
            rc = stratus_partition_read(p, j->offset, j->max_bytes, j->min_one, &res);
            if (rc == STRATUS_EAGAIN) {
                memset(&res, 0, sizeof res);
                stratus_partition_offsets(p, &res.log_start_offset, &res.high_watermark, NULL);
                res.last_stable_offset = res.high_watermark;
                res.error = j->offset < res.log_start_offset ? KAFKA_ERR_OFFSET_OUT_OF_RANGE
                                                             : KAFKA_ERR_KAFKA_STORAGE_ERROR;
            }
        } else if (rc) {
            LOG_WARN("stream", "cold read topic=%s partition=%d offset=%lld: %s", p->topic,
                     p->index, (long long)j->offset, eb.msg);
            res.error = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        } else {
            atomic_fetch_add(&p->s->cold_reads, 1);
            atomic_fetch_add(&p->s->cold_read_bytes, from_objects); /* not the cached tail */
        }
    }
    j->done(j->arg, &res);
    /* the response is on its way: load what this consumer reads next */
    if (sequential)
        stratus_coldread_ahead(p, next, j->max_bytes, stop);
    stratus_partition_release(p);
    free(j);
}

static void read_cold(struct stratus_partition *p, int64_t offset, size_t max_bytes, int min_one,
                      int lend, stratus_read_done_fn *done, void *arg)
{
    struct cold_job *j = xcalloc(1, sizeof *j);

    stratus_partition_ref(p);
    j->p = p;
    j->offset = offset;
    j->max_bytes = max_bytes;
    j->min_one = min_one;
    j->lend = lend;
    j->done = done;
    j->arg = arg;
    if (stratus_stream_submit(p->s, cold_job_run, j) != 0) {
        struct stratus_fetch_result res;
        memset(&res, 0, sizeof res);
        stratus_partition_offsets(p, &res.log_start_offset, &res.high_watermark, NULL);
        res.last_stable_offset = res.high_watermark;
        res.error = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        done(arg, &res);
        stratus_partition_release(p);
        free(j);
    }
}

void stratus_partition_read_cold(struct stratus_partition *p, int64_t offset, size_t max_bytes,
                                 int min_one, stratus_read_done_fn *done, void *arg)
{
    read_cold(p, offset, max_bytes, min_one, 0, done, arg);
}

void stratus_partition_read_cold_lent(struct stratus_partition *p, int64_t offset,
                                      size_t max_bytes, int min_one, stratus_read_done_fn *done,
                                      void *arg)
{
    read_cold(p, offset, max_bytes, min_one, 1, done, arg);
}

/* ---- offsets by time ---- */

/* A copy of one log-cache batch, taken under the lock and searched outside it. */
struct lc_copy {
    uint8_t *data;
    size_t len;
    int64_t base, last, max_ts, log_start;
};

/* Copies the first cached batch after offset `after` (visible, at or after the log start)
 * whose max timestamp >= ts; for ts == -3 the first one with the largest max timestamp.
 * Returns 1 with a copy, 0 when there is none. */
static int lc_time_candidate(struct stratus_partition *p, int64_t ts, int64_t after,
                             struct lc_copy *c)
{
    struct stratus_lc_batch *pick = NULL;

    memset(c, 0, sizeof *c);
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->lc_n; i++) {
        struct stratus_lc_batch *b = p->lc[p->lc_head + i];
        if (b->last >= p->hw)
            break;
        if (b->last < p->log_start || b->last <= after)
            continue;
        if (ts == -3) {
            if (!pick || b->max_ts > pick->max_ts)
                pick = b;
        } else if (b->max_ts >= ts) {
            pick = b;
            break;
        }
    }
    if (pick) {
        c->data = xmalloc(pick->len);
        memcpy(c->data, pick->data, pick->len);
        c->len = pick->len;
        c->base = pick->base;
        c->last = pick->last;
        c->max_ts = pick->max_ts;
        c->log_start = p->log_start;
    }
    pthread_mutex_unlock(&p->lock);
    return pick != NULL;
}

/* ts >= 0 in the log cache: the first record at or after ts (Kafka's rule, see stream.h). */
static int lc_offset_for_time(struct stratus_partition *p, int64_t ts, int64_t *offset,
                              int64_t *timestamp, struct stratus_errbuf *eb)
{
    struct lc_copy c;
    int64_t after = -1;

    *offset = -1;
    *timestamp = -1;
    while (lc_time_candidate(p, ts, after, &c)) {
        int found = stratus_coldread_batch_time(p, c.data, c.len, ts, c.log_start, offset,
                                                timestamp);
        free(c.data);
        if (found < 0)
            return stratus_errf(eb, found, "offset for time: out of memory");
        if (found)
            return 0;
        after = c.last;
    }
    return 0;
}

int stratus_partition_offset_for_time(struct stratus_partition *p, int64_t ts, int64_t *offset,
                                      int64_t *timestamp, struct stratus_errbuf *eb)
{
    int64_t lc_off = -1, lc_ts = -1, cold_off = -1, cold_ts = -1, hw;
    int rc;

    *offset = -1;
    *timestamp = -1;
    if (!servable(p))
        return stratus_errf(eb, STRATUS_EEXIST, "topic %s partition %d is not led by this "
                            "broker", p->topic, p->index);
    if (ts == -2 || ts == -1) { /* EARLIEST / LATEST */
        int64_t ls;
        stratus_partition_offsets(p, &ls, &hw, NULL);
        *offset = ts == -2 ? ls : hw;
        return 0;
    }
    if (ts == -3) {
        /* KIP-734: the first batch with the largest max timestamp, from the log cache and from
         * objects (the earlier one on a tie), then its first record with that timestamp. */
        struct lc_copy c;
        uint8_t *cold = NULL, *pick;
        size_t cold_len = 0, pick_len;
        int64_t cold_max = -1, min_off;
        int have_lc = lc_time_candidate(p, -3, -1, &c), found;

        rc = stratus_coldread_max_time_batch(p, &cold, &cold_len, &cold_max, eb);
        if (rc) {
            if (have_lc)
                free(c.data);
            return rc;
        }
        if (have_lc && (!cold || c.max_ts > cold_max ||
                        (c.max_ts == cold_max && c.base < (int64_t)stratus_be64_get(cold)))) {
            pick = c.data;
            pick_len = c.len;
            min_off = c.log_start;
        } else {
            pick = cold;
            pick_len = cold_len;
            stratus_partition_offsets(p, &min_off, NULL, NULL);
        }
        found = pick ? stratus_coldread_batch_time(p, pick, pick_len, -3, min_off, offset,
                                                   timestamp)
                     : 0;
        if (have_lc)
            free(c.data);
        free(cold);
        if (found < 0)
            return stratus_errf(eb, found, "offset for time: out of memory");
        return 0;
    }
    /* The log cache first, then objects up to what the cache found: a batch evicted from the
     * cache meanwhile was uploaded before, so the objects have it. The earlier answer wins. */
    rc = lc_offset_for_time(p, ts, &lc_off, &lc_ts, eb);
    if (rc)
        return rc;
    rc = stratus_coldread_offset_for_time(p, ts, lc_off >= 0 ? lc_off : INT64_MAX, &cold_off,
                                          &cold_ts, eb);
    if (rc)
        return rc;
    if (cold_off >= 0 && (lc_off < 0 || cold_off < lc_off)) {
        *offset = cold_off;
        *timestamp = cold_ts;
    } else {
        *offset = lc_off;
        *timestamp = lc_ts;
    }
    return 0;
}

/* ---- ownership (cluster mode; stream.h "partition ownership") ---- */

int stratus_walrec_info(const uint8_t *rec, size_t len, uint64_t *stream_id, int32_t *epoch,
                        int64_t *base, int64_t *last)
{
    if (len < STRATUS_WALREC_HEADER_SIZE || get_le32(rec) != STRATUS_WALREC_MAGIC ||
        rec[4] != 1 || (size_t)get_le32(rec + 40) != len - STRATUS_WALREC_HEADER_SIZE)
        return STRATUS_ECORRUPT;
    if (stream_id)
        *stream_id = get_le64(rec + 8);
    if (base)
        *base = (int64_t)get_le64(rec + 16);
    if (last)
        *last = (int64_t)get_le64(rec + 24);
    if (epoch)
        *epoch = (int32_t)get_le32(rec + 32);
    return 0;
}

/* Adds to ib the deletion of every key of stream sid under the 9-byte prefix of key. */
static int delete_stream_keys(struct stratus_stream *s, struct stratus_index_batch *ib,
                              const uint8_t *key, size_t klen, struct stratus_errbuf *eb)
{
    struct stratus_index_iter *it = stratus_index_iter_new(s->idx);
    int rc;

    for (stratus_index_iter_seek(it, key, klen); stratus_index_iter_has_prefix(it, key, 9);
         stratus_index_iter_next(it)) {
        size_t kl;
        const uint8_t *k = stratus_index_iter_key(it, &kl);
        stratus_index_batch_delete(ib, k, kl);
    }
    rc = stratus_index_iter_status(it, eb);
    stratus_index_iter_free(it);
    return rc;
}

/* Completes the duplicates waiting on p (taken from it under its lock) with kerr. */
static void complete_waiters(struct stratus_dup_wait *w, int16_t kerr)
{
    while (w) {
        struct stratus_dup_wait *next = w->next;
        w->done(w->arg, kerr);
        free(w);
        w = next;
    }
}

int stratus_partition_claim(struct stratus_partition *p, int32_t epoch,
                            const struct stratus_index_range *ranges, size_t n,
                            int64_t log_start, const uint8_t *pstate, size_t pstate_len,
                            int keep_cache, struct stratus_errbuf *eb)
{
    struct stratus_stream *s = p->s;
    struct stratus_index_batch *ib = NULL;
    struct stratus_index_time_run run = {0};
    struct stratus_pstate ps = {0};
    struct stratus_dup_wait *waiters;
    uint8_t key[STRATUS_IDX_KEY_MAX];
    size_t klen;
    uint64_t dropped = 0, again = 0;
    int64_t end;
    int role, rc;

    if (!STRATUS_CLUSTER(s))
        return stratus_errf(eb, STRATUS_EINVAL, "claim: single-node mode owns every partition");
    role = atomic_load(&p->role);
    if (role != STRATUS_ROLE_NONE && role != STRATUS_ROLE_RECOVERING)
        return stratus_errf(eb, STRATUS_EINVAL, "claim topic=%s partition=%d: already served "
                            "here (role %d)", p->topic, p->index, role);
    if (log_start < 0)
        return stratus_errf(eb, STRATUS_EINVAL, "claim: log start %lld", (long long)log_start);
    for (size_t i = 0; i < n; i++) {
        const struct stratus_index_range *r = &ranges[i];
        if (r->stream_id != p->stream_id || r->base_offset > r->last_offset ||
            (i && r->base_offset <= ranges[i - 1].last_offset))
            return stratus_errf(eb, STRATUS_EINVAL, "claim topic=%s partition=%d: range %zu "
                                "(stream %llu, %lld..%lld) is not of this stream or out of "
                                "order", p->topic, p->index, i,
                                (unsigned long long)r->stream_id, (long long)r->base_offset,
                                (long long)r->last_offset);
    }
    if (pstate && pstate_len && stratus_pstate_decode(&ps, pstate, pstate_len) != 0) {
        /* losing it only weakens duplicate detection (decode left expired_pid_end at
         * INT64_MAX: unknown producers are accepted at any sequence) */
        LOG_WARN("stream", "claim topic=%s partition=%d: producer state is corrupt; dropped",
                 p->topic, p->index);
    }
    end = n ? ranges[n - 1].last_offset + 1 : log_start;
    if (end < log_start)
        end = log_start;

    /* The stream's local index entries become exactly the committed ones: one synced batch
     * (deletes first: a put of the same key later in the batch wins). No 'O' records: cold
     * reads derive object keys from ids, and retention leaves objects alone in cluster mode. */
    ib = stratus_index_batch_new();
    pthread_mutex_lock(&s->meta_lock);
    klen = stratus_index_key_range(key, p->stream_id, INT64_MIN);
    rc = delete_stream_keys(s, ib, key, klen, eb);
    if (rc == 0) {
        klen = stratus_index_key_time(key, p->stream_id, INT64_MIN);
        rc = delete_stream_keys(s, ib, key, klen, eb);
    }
    if (rc == 0) {
        struct stratus_index_stream st = {.log_start_offset = log_start};
        uint8_t v[STRATUS_IDX_STREAM_VALUE_SIZE];
        for (size_t i = 0; i < n; i++) {
            uint8_t rv[STRATUS_IDX_RANGE_VALUE_SIZE];
            stratus_index_range_encode(&ranges[i], rv);
            klen = stratus_index_key_range(key, p->stream_id, ranges[i].last_offset);
            stratus_index_batch_put(ib, key, klen, rv, sizeof rv);
            stratus_index_time_step(ib, &run, &ranges[i]);
        }
        stratus_index_stream_encode(&st, v);
        klen = stratus_index_key_stream(key, p->stream_id);
        stratus_index_batch_put(ib, key, klen, v, sizeof v);
        klen = stratus_index_key_producer(key, p->stream_id);
        if (pstate && pstate_len)
            stratus_index_batch_put(ib, key, klen, pstate, pstate_len);
        else
            stratus_index_batch_delete(ib, key, klen);
        rc = stratus_index_batch_write(s->idx, ib, 1, eb);
    }
    pthread_mutex_unlock(&s->meta_lock);
    stratus_index_batch_free(ib);
    if (rc) {
        stratus_pstate_clear(&ps);
        return rc;
    }

    pthread_mutex_lock(&p->lock);
    p->own_gen++;
    p->ack_lost = 0;
    p->wal_failed = 0; /* an object WAL's failed PUT is transient; a broken file WAL refuses
                          appends by itself */
    if (!keep_cache) {
        dropped = lc_drop_all(p);
    } else {
        /* keep what follows the committed end (a restart's WAL replay); whatever is below
         * it is in committed objects */
        while (p->lc_n && p->lc[p->lc_head]->last < end) {
            if (p->lc_up == 0)
                dropped += p->lc[p->lc_head]->len;
            lc_pop(p);
        }
        if (p->lc_n && p->lc[p->lc_head]->base != end) {
            LOG_WARN("stream", "claim topic=%s partition=%d: cached data starts at %lld, the "
                     "committed end is %lld; cache dropped", p->topic, p->index,
                     (long long)p->lc[p->lc_head]->base, (long long)end);
            dropped += lc_drop_all(p);
        }
        for (size_t i = 0; i < p->lc_up; i++) /* uploaded but not committed: again pending */
            again += p->lc[p->lc_head + i]->len;
        p->lc_up = 0;
    }
    stratus_pstate_clear(&p->producers);
    p->producers = ps;
    for (size_t i = 0; i < p->lc_n; i++) { /* the kept batches' producers, on top */
        struct stratus_lc_batch *b = p->lc[p->lc_head + i];
        struct stratus_batch_info bi;
        if (stratus_batch_parse(b->data, b->len, &bi, NULL) == 0 && bi.producer_id >= 0)
            stratus_pstate_replay(&p->producers, bi.producer_id, bi.producer_epoch,
                                  bi.base_sequence,
                                  stratus_pstate_seq_add(bi.base_sequence, bi.last_offset_delta),
                                  bi.base_offset, b->last, bi.max_timestamp);
    }
    p->log_start = log_start;
    p->log_end = p->hw = p->lc_n ? p->lc[p->lc_head + p->lc_n - 1]->last + 1 : end;
    p->cold_have = 0;
    atomic_store(&p->leader_epoch, epoch);
    atomic_store(&p->role, STRATUS_ROLE_RECOVERING);
    waiters = p->dup_waiters;
    p->dup_waiters = NULL;
    pthread_mutex_unlock(&p->lock);
    complete_waiters(waiters, KAFKA_ERR_NOT_LEADER_OR_FOLLOWER);
    settle(s, dropped);
    if (again) {
        int_fast64_t zero = 0;
        atomic_fetch_add(&s->pending_bytes, again);
        atomic_fetch_add(&s->appended_bytes, again);
        atomic_compare_exchange_strong(&s->oldest_pending_ms, &zero, stratus_mono_ms());
    }
    LOG_INFO("stream", "claimed topic=%s partition=%d epoch=%d ranges=%zu log_start=%lld "
             "committed_end=%lld log_end=%lld", p->topic, p->index, epoch, n,
             (long long)log_start, (long long)end, (long long)p->log_end);
    return 0;
}

int stratus_partition_recover_record(struct stratus_partition *p, const uint8_t *rec,
                                     size_t len, struct stratus_errbuf *eb)
{
    struct stratus_stream *s = p->s;
    uint64_t sid = 0, added = 0;
    uint32_t nb;
    size_t pos;
    int64_t end;

    if (stratus_walrec_info(rec, len, &sid, NULL, NULL, NULL) != 0)
        return stratus_errf(eb, STRATUS_ECORRUPT, "recover: not an engine WAL record");
    if (sid != p->stream_id)
        return stratus_errf(eb, STRATUS_EINVAL, "recover: record of stream %llu, partition "
                            "stream %llu", (unsigned long long)sid,
                            (unsigned long long)p->stream_id);
    nb = get_le32(rec + 36);
    pthread_mutex_lock(&p->lock);
    if (atomic_load(&p->role) != STRATUS_ROLE_RECOVERING) {
        pthread_mutex_unlock(&p->lock);
        return stratus_errf(eb, STRATUS_EINVAL, "recover topic=%s partition=%d: not "
                            "recovering", p->topic, p->index);
    }
    /* check every batch first: a record is applied whole or not at all */
    end = p->log_end;
    pos = STRATUS_WALREC_HEADER_SIZE;
    for (uint32_t i = 0; i < nb; i++) {
        struct stratus_batch_info bi;
        int64_t last;
        if (stratus_batch_parse(rec + pos, len - pos, &bi, NULL) != 0) {
            pthread_mutex_unlock(&p->lock);
            return stratus_errf(eb, STRATUS_ECORRUPT, "recover: malformed batch %u", i);
        }
        last = bi.base_offset + bi.last_offset_delta;
        if (last >= end) {
            if (bi.base_offset != end) {
                pthread_mutex_unlock(&p->lock);
                return stratus_errf(eb, STRATUS_ECORRUPT, "recover topic=%s partition=%d: "
                                    "batch at %lld, the log ends at %lld", p->topic, p->index,
                                    (long long)bi.base_offset, (long long)end);
            }
            end = last + 1;
        }
        pos += (size_t)bi.size;
    }
    if (pos != len) {
        pthread_mutex_unlock(&p->lock);
        return stratus_errf(eb, STRATUS_ECORRUPT, "recover: %zu bytes after the batches",
                            len - pos);
    }
    pos = STRATUS_WALREC_HEADER_SIZE;
    for (uint32_t i = 0; i < nb; i++) {
        struct stratus_batch_info bi;
        struct stratus_lc_batch *b;
        int64_t last;

        stratus_batch_parse(rec + pos, len - pos, &bi, NULL);
        last = bi.base_offset + bi.last_offset_delta;
        if (bi.producer_id >= 0) /* idempotent, as in replay */
            stratus_pstate_replay(&p->producers, bi.producer_id, bi.producer_epoch,
                                  bi.base_sequence,
                                  stratus_pstate_seq_add(bi.base_sequence, bi.last_offset_delta),
                                  bi.base_offset, last, bi.max_timestamp);
        if (last >= p->log_end) {
            b = lc_batch_copy(rec + pos, (size_t)bi.size);
            b->len = (uint32_t)bi.size;
            b->base = bi.base_offset;
            b->last = last;
            b->max_ts = bi.max_timestamp;
            b->lsn = STRATUS_LSN_NONE; /* not in this broker's WAL */
            lc_push(p, b);
            p->log_end = p->hw = last + 1; /* durable: in the dead owner's WAL */
            added += b->len;
        }
        pos += (size_t)bi.size;
    }
    pthread_mutex_unlock(&p->lock);
    if (added) {
        int_fast64_t zero = 0;
        atomic_fetch_add(&s->pending_bytes, added);
        atomic_fetch_add(&s->appended_bytes, added);
        atomic_compare_exchange_strong(&s->oldest_pending_ms, &zero, stratus_mono_ms());
    }
    return 0;
}

void stratus_partition_serve(struct stratus_partition *p)
{
    int was = STRATUS_ROLE_RECOVERING;

    pthread_mutex_lock(&p->lock);
    atomic_compare_exchange_strong(&p->role, &was, STRATUS_ROLE_OWNER);
    pthread_mutex_unlock(&p->lock);
    if (was == STRATUS_ROLE_RECOVERING) {
        LOG_INFO("stream", "serving topic=%s partition=%d epoch=%d", p->topic, p->index,
                 atomic_load(&p->leader_epoch));
        stratus_partition_notify(p);
    }
}

void stratus_partition_fence(struct stratus_partition *p)
{
    struct stratus_dup_wait *waiters;
    uint64_t dropped, hold = UINT64_MAX;
    int was;

    pthread_mutex_lock(&p->lock);
    was = atomic_exchange(&p->role, STRATUS_ROLE_NONE);
    p->own_gen++; /* completions in flight answer NOT_LEADER_OR_FOLLOWER */
    p->ack_lost = 0;
    /* records not uploaded yet: the next owner recovers them from this broker's WAL */
    for (size_t i = p->lc_up; i < p->lc_n; i++) {
        uint64_t lsn = p->lc[p->lc_head + i]->lsn;
        if (lsn != STRATUS_LSN_NONE && lsn < hold)
            hold = lsn;
    }
    dropped = lc_drop_all(p);
    stratus_pstate_clear(&p->producers);
    p->log_end = p->hw;
    p->cold_have = 0;
    waiters = p->dup_waiters;
    p->dup_waiters = NULL;
    pthread_mutex_unlock(&p->lock);
    complete_waiters(waiters, KAFKA_ERR_NOT_LEADER_OR_FOLLOWER);
    settle(p->s, dropped);
    if (hold != UINT64_MAX && p->s->conf.wal.object_storage) /* another broker can read it */
        stratus_stream_hold_wal(p->s, hold);
    if (was != STRATUS_ROLE_NONE || dropped)
        LOG_WARN("stream", "fenced topic=%s partition=%d (was role %d, %llu bytes not "
                 "committed dropped)", p->topic, p->index, was, (unsigned long long)dropped);
    stratus_partition_notify(p);
}

int stratus_partition_resign(struct stratus_partition *p, int64_t timeout_ms,
                             int64_t *end_offset, struct stratus_errbuf *eb)
{
    struct stratus_stream *s = p->s;
    int64_t deadline = stratus_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0), target;
    uint64_t gen, dropped;
    int role, rc;

    pthread_mutex_lock(&p->lock);
    role = atomic_load(&p->role);
    if (role == STRATUS_ROLE_OWNER)
        atomic_store(&p->role, STRATUS_ROLE_RESIGNING); /* appends refused from now on */
    gen = p->own_gen;
    pthread_mutex_unlock(&p->lock);
    if (role == STRATUS_ROLE_NONE)
        return stratus_errf(eb, STRATUS_EEXIST, "resign topic=%s partition=%d: not owned "
                            "(fenced)", p->topic, p->index);
    if (role == STRATUS_ROLE_RECOVERING)
        return stratus_errf(eb, STRATUS_EINVAL, "resign topic=%s partition=%d: still "
                            "recovering", p->topic, p->index);
    /* every accepted append durable */
    for (;;) {
        int done, fenced, deleted, lost;
        pthread_mutex_lock(&p->lock);
        done = p->hw == p->log_end;
        fenced = p->own_gen != gen;
        deleted = p->deleted;
        lost = p->ack_lost;
        target = p->log_end;
        pthread_mutex_unlock(&p->lock);
        if (fenced)
            return stratus_errf(eb, STRATUS_EEXIST, "resign topic=%s partition=%d: fenced",
                                p->topic, p->index);
        if (lost && !done)
            return stratus_errf(eb, STRATUS_EAGAIN, "resign topic=%s partition=%d: the WAL "
                                "did not acknowledge appends before the ack deadline",
                                p->topic, p->index);
        if (deleted)
            return stratus_errf(eb, STRATUS_ENOTFOUND, "resign topic=%s partition=%d: topic "
                                "deleted", p->topic, p->index);
        if (done)
            break;
        if (stratus_mono_ms() > deadline)
            return stratus_errf(eb, STRATUS_EAGAIN, "resign topic=%s partition=%d: appends "
                                "still in flight after %lld ms", p->topic, p->index,
                                (long long)timeout_ms);
        {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    /* upload and commit everything of p */
    rc = stratus_uploader_flush_parts(s, &p, &gen, &target, 1, deadline, 1, eb);
    if (rc)
        return rc;
    pthread_mutex_lock(&p->lock);
    if (p->own_gen != gen) {
        pthread_mutex_unlock(&p->lock);
        return stratus_errf(eb, STRATUS_EEXIST, "resign topic=%s partition=%d: fenced",
                            p->topic, p->index);
    }
    target = p->log_end;
    dropped = lc_drop_all(p); /* 0: everything is uploaded */
    stratus_pstate_clear(&p->producers);
    p->own_gen++;
    p->cold_have = 0;
    atomic_store(&p->role, STRATUS_ROLE_NONE);
    pthread_mutex_unlock(&p->lock);
    settle(s, dropped);
    if (end_offset)
        *end_offset = target;
    LOG_INFO("stream", "resigned topic=%s partition=%d end=%lld", p->topic, p->index,
             (long long)target);
    stratus_partition_notify(p);
    return 0;
}
