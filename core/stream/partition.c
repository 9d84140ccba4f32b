/* partition.c - a partition's hot path: append (validate, assign offsets, log cache, WAL),
 * WAL completions (high watermark), reads from the log cache, offsets, WAL replay into the
 * cache, cache eviction, and the cold-read / offset-for-time entry points that hand work to
 * the I/O pool.
 *
 * Owns struct stratus_partition (stream_int.h says which thread touches which field) and its
 * log cache: one malloc'd struct stratus_lc_batch per record batch, in offset order. Batches
 * are readable once below the high watermark; they may be evicted only once uploaded.
 * The WAL record written per append call is described in stream_int.h; its CRC joins in each
 * batch's own CRC (checked by validate) rather than reading the batch a second time.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "proto/kerr.h"
#include "proto/records.h"
#include "stream_int.h"
#include "util/alloc.h"
#include "util/bytes.h"
#include "util/clock.h"
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
    p->leader_epoch = leader_epoch;
    atomic_init(&p->refs, 1);
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

static void lc_free_all(struct stratus_partition *p)
{
    for (size_t i = 0; i < p->lc_n; i++)
        free(p->lc[p->lc_head + i]);
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
    return p->leader_epoch;
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
    if (p->s->hook)
        p->s->hook(p->s->hook_arg, p);
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
    p->lc[p->lc_head + p->lc_n++] = b;
    p->lc_bytes += b->len;
    atomic_fetch_add(&p->s->lc_bytes, b->len);
}

static void lc_pop(struct stratus_partition *p)
{
    struct stratus_lc_batch *b = p->lc[p->lc_head];

    p->lc_head++;
    p->lc_n--;
    if (p->lc_up)
        p->lc_up--;
    p->lc_bytes -= b->len;
    atomic_fetch_sub(&p->s->lc_bytes, b->len);
    free(b);
    if (p->lc_n == 0)
        p->lc_head = 0;
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

    pthread_mutex_lock(&p->lock);
    while (p->lc_n && p->lc_up && p->lc[p->lc_head]->last < p->log_start) {
        freed += p->lc[p->lc_head]->len;
        lc_pop(p);
    }
    while (p->lc_n && p->lc_up && freed < want_bytes) {
        freed += p->lc[p->lc_head]->len;
        lc_pop(p);
        atomic_fetch_add(&p->s->lc_evictions, 1);
    }
    pthread_mutex_unlock(&p->lock);
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

void stratus_partition_mark_deleted(struct stratus_partition *p)
{
    struct stratus_stream *s = p->s;
    uint64_t pending = 0;

    pthread_mutex_lock(&p->lock);
    p->deleted = 1;
    for (size_t i = p->lc_up; i < p->lc_n; i++)
        pending += p->lc[p->lc_head + i]->len;
    lc_free_all(p);
    pthread_mutex_unlock(&p->lock);
    atomic_fetch_sub(&s->pending_bytes, pending);
    atomic_fetch_add(&s->settled_bytes, pending);
}

/* ---- append ---- */

struct append_ctx {
    struct stratus_partition *p;
    int64_t next; /* high watermark once this record is durable */
    stratus_append_done_fn *done;
    void *arg;
};

static void append_wal_done(void *arg, int err, uint64_t lsn)
{
    struct append_ctx *c = arg;
    struct stratus_partition *p = c->p;

    struct stratus_dup_wait *ready = NULL, **wp;

    (void)lsn;
    pthread_mutex_lock(&p->lock);
    if (err == 0) {
        if (c->next > p->hw)
            p->hw = c->next;
    } else {
        p->wal_failed = 1;
    }
    for (wp = &p->dup_waiters; *wp;) { /* duplicates whose original is now durable */
        struct stratus_dup_wait *w = *wp;
        if (err || w->need <= p->hw) {
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
        w->done(w->arg, err ? KAFKA_ERR_KAFKA_STORAGE_ERROR : KAFKA_ERR_NONE);
        free(w);
    }
    if (err) {
        LOG_ERROR("stream", "WAL write failed topic=%s partition=%d: %s", p->topic, p->index,
                  stratus_strerror(err));
        c->done(c->arg, KAFKA_ERR_KAFKA_STORAGE_ERROR);
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
    /* Copy every batch outside the lock. */
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
        bs[i] = xmalloc(sizeof **bs + (size_t)bi.size);
        memcpy(bs[i]->data, records + pos, (size_t)bi.size);
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
                                             bis[i].last_offset_delta, &dup, res->msg,
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
        stratus_batch_set_leader_epoch(b->data, p->leader_epoch);
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
    put_le32(hdr + 32, (uint32_t)p->leader_epoch);
    put_le32(hdr + 36, (uint32_t)nb);
    put_le32(hdr + 40, (uint32_t)total);
    iov[0].iov_base = hdr;
    iov[0].iov_len = sizeof hdr;
    crcs[0] = -1;
    ctx->p = p;
    ctx->next = off;
    ctx->done = done;
    ctx->arg = arg;
    stratus_partition_ref(p);
    /* Under the partition lock, so that LSN order is offset order within the partition. */
    rc = stratus_wal_append_crc(s->wal, iov, crcs, 2 * nb + 1, append_wal_done, ctx, &lsn);
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
        free(bs[i]);
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
        b = xmalloc(sizeof *b + (size_t)bi.size);
        memcpy(b->data, rec + pos, (size_t)bi.size);
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

int stratus_partition_read(struct stratus_partition *p, int64_t offset, size_t max_bytes,
                           int min_one, struct stratus_fetch_result *res)
{
    size_t at, n = 0, total = 0, i;

    memset(res, 0, sizeof *res);
    pthread_mutex_lock(&p->lock);
    res->high_watermark = p->hw;
    res->last_stable_offset = p->hw;
    res->log_start_offset = p->log_start;
    if (offset < p->log_start || offset > p->hw) {
        res->error = KAFKA_ERR_OFFSET_OUT_OF_RANGE;
        goto out;
    }
    if (offset == p->hw)
        goto out;
    at = lc_find(p, offset);
    if (at == p->lc_n || p->lc[p->lc_head + at]->base > offset) {
        pthread_mutex_unlock(&p->lock);
        return STRATUS_EAGAIN;
    }
    for (i = at; i < p->lc_n; i++) {
        struct stratus_lc_batch *b = p->lc[p->lc_head + i];
        if (b->last >= p->hw)
            break;
        if (total + b->len > max_bytes && !(min_one && n == 0))
            break;
        total += b->len;
        n++;
    }
    if (total) {
        uint8_t *d = malloc(total);
        size_t o = 0;
        if (!d) {
            res->error = KAFKA_ERR_KAFKA_STORAGE_ERROR;
            goto out;
        }
        for (i = at; i < at + n; i++) {
            struct stratus_lc_batch *b = p->lc[p->lc_head + i];
            memcpy(d + o, b->data, b->len);
            o += b->len;
        }
        res->data = d;
        res->len = total;
    }
out:
    pthread_mutex_unlock(&p->lock);
    return 0;
}

struct cold_job {
    struct stratus_partition *p;
    int64_t offset;
    size_t max_bytes;
    int min_one;
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

    memset(&res, 0, sizeof res);
    pthread_mutex_lock(&p->lock);
    res.high_watermark = res.last_stable_offset = p->hw;
    res.log_start_offset = p->log_start;
    pthread_mutex_unlock(&p->lock);
    if (j->offset < res.log_start_offset || j->offset > res.high_watermark) {
        res.error = KAFKA_ERR_OFFSET_OUT_OF_RANGE;
    } else if (j->offset < res.high_watermark) {
        int64_t next = j->offset;
        rc = stratus_coldread(p, j->offset, j->max_bytes, j->min_one, res.high_watermark,
                              &res.data, &res.len, &next, &eb);
        if (rc == 0 && res.len < j->max_bytes && next > j->offset && next < res.high_watermark) {
            /* the objects end before the high watermark: continue from the log cache */
            struct stratus_fetch_result more;
            if (stratus_partition_read(p, next, j->max_bytes - res.len, 0, &more) == 0 &&
                more.error == KAFKA_ERR_NONE && more.len) {
                uint8_t *d = realloc(res.data, res.len + more.len);
                if (d) {
                    memcpy(d + res.len, more.data, more.len);
                    res.data = d;
                    res.len += more.len;
                }
            }
            if (rc == 0)
                free(more.data);
        }
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
            atomic_fetch_add(&p->s->cold_read_bytes, res.len);
        }
    }
    j->done(j->arg, &res);
    stratus_partition_release(p);
    free(j);
}

void stratus_partition_read_cold(struct stratus_partition *p, int64_t offset, size_t max_bytes,
                                 int min_one, stratus_read_done_fn *done, void *arg)
{
    struct cold_job *j = xcalloc(1, sizeof *j);

    stratus_partition_ref(p);
    j->p = p;
    j->offset = offset;
    j->max_bytes = max_bytes;
    j->min_one = min_one;
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
